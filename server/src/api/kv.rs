//! etcd's `KV` service: Range, Put, DeleteRange, Txn, Compact.

use super::ClientApi;
use detcd_core::request::{Command, Response as CoreResponse};
use detcd_core::validate;
use detcd_net::etcd::convert::{self, status};
use detcd_net::etcd::etcdserverpb::{self as pb, kv_server::Kv};
use prost::Message;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl Kv for ClientApi {
    async fn range(&self, request: Request<pb::RangeRequest>) -> Result<Response<pb::RangeResponse>, Status> {
        let req: detcd_core::request::RangeRequest = request.into_inner().try_into()?;
        validate::validate_range(&req).map_err(|e| status(&e))?;
        if !req.serializable {
            self.linearize().await?;
        }
        let resp = self.node.shared().state().range(&req).map_err(|e| status(&e))?;
        Ok(Response::new(convert::range_response(&self.header(), resp)))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let req = request.into_inner();
        self.check_size(req.encoded_len())?;
        let req = req.into();
        validate::validate_put(&req).map_err(|e| status(&e))?;
        match self.propose(Command::Put(req)).await? {
            CoreResponse::Put(r) => Ok(Response::new(convert::put_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let req = request.into_inner();
        self.check_size(req.encoded_len())?;
        let req = req.into();
        validate::validate_delete(&req).map_err(|e| status(&e))?;
        match self.propose(Command::DeleteRange(req)).await? {
            CoreResponse::DeleteRange(r) => Ok(Response::new(convert::delete_range_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }

    async fn txn(&self, request: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let req = request.into_inner();
        self.check_size(req.encoded_len())?;
        let txn: detcd_core::request::TxnRequest = req.try_into()?;
        validate::validate_txn(&txn, &self.limits.txn).map_err(|e| status(&e))?;
        // Every txn goes through the log, read-only ones too (etcd serves
        // those from a read view; a later optimisation).
        match self.propose(Command::Txn(txn)).await? {
            CoreResponse::Txn(r) => Ok(Response::new(convert::txn_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        match self.propose(Command::Compaction(request.into_inner().into())).await? {
            CoreResponse::Compaction(r) => Ok(Response::new(convert::compaction_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(resp: &CoreResponse) -> Status {
    Status::internal(format!("detcd: unexpected response {resp:?}"))
}
