//! The etcd v3 gRPC API on the client URLs, over a running `Node`.
//!
//! Each service validates a request (etcd's checks, etcd's errors), then
//! either proposes it through the log (`Node::write`) or reads the applied
//! state (after the read index unless the request is serializable). One
//! `ClientApi` value implements every service.

mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;

use crate::node::{Node, WriteError};
use detcd_core::request::{Command, Response as CoreResponse};
use detcd_core::validate::Limits as TxnLimits;
use detcd_net::etcd::convert::{status, Header};
use detcd_net::etcd::etcdserverpb::cluster_server::ClusterServer;
use detcd_net::etcd::etcdserverpb::kv_server::KvServer;
use detcd_net::etcd::etcdserverpb::lease_server::LeaseServer;
use detcd_net::etcd::etcdserverpb::maintenance_server::MaintenanceServer;
use detcd_net::etcd::etcdserverpb::watch_server::WatchServer;
use openraft_rt::WatchReceiver;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::Status;

/// Request limits of the client API (etcd's flags).
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub txn: TxnLimits,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits { max_request_bytes: 1536 * 1024, txn: TxnLimits::default() }
    }
}

/// etcd's gRPC server accepts this much more than `--max-request-bytes`
/// on the wire, so that an oversized request gets etcd's own error rather
/// than a transport one.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// What an internal raft request adds to the client's bytes in etcd (its
/// header); the limit applies to the whole, as etcd's does.
const REQUEST_ENVELOPE_BYTES: usize = 64;

#[derive(Clone)]
pub struct ClientApi {
    node: Arc<Node>,
    limits: ApiLimits,
}

impl ClientApi {
    pub fn new(node: Arc<Node>, limits: ApiLimits) -> ClientApi {
        ClientApi { node, limits }
    }

    /// The response header: this member, the cluster, the current term.
    fn header(&self) -> Header {
        let term = self.node.raft().metrics().borrow_watched().current_term;
        Header::new(self.node.cluster_id(), self.node.id(), term)
    }

    fn check_size(&self, encoded_len: usize) -> Result<(), Status> {
        if encoded_len + REQUEST_ENVELOPE_BYTES > self.limits.max_request_bytes {
            return Err(status(&detcd_core::Error::RequestTooLarge));
        }
        Ok(())
    }

    async fn linearize(&self) -> Result<(), Status> {
        self.node.linearize().await.map_err(write_status)
    }

    /// Replicates `cmd` and returns what applying it answered.
    async fn propose(&self, cmd: Command) -> Result<CoreResponse, Status> {
        let result = self.node.write(cmd).await.map_err(write_status)?;
        result.result.map_err(|e| status(&e))
    }
}

/// etcd's answers when consensus cannot serve a request.
fn write_status(e: WriteError) -> Status {
    match e {
        WriteError::NotLeader(_) => Status::unavailable("etcdserver: no leader"),
        WriteError::Unavailable(_) => Status::unavailable("etcdserver: request timed out"),
    }
}

/// Serves the client API on `addr` until `shutdown` completes.
pub async fn serve(
    api: ClientApi,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let max = api.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let kv = KvServer::new(api.clone()).max_decoding_message_size(max).max_encoding_message_size(usize::MAX);
    let watch = WatchServer::new(api.clone()).max_decoding_message_size(max).max_encoding_message_size(usize::MAX);
    let cluster = ClusterServer::new(api.clone()).max_decoding_message_size(max);
    let maintenance =
        MaintenanceServer::new(api.clone()).max_decoding_message_size(max).max_encoding_message_size(usize::MAX);
    let lease = LeaseServer::new(api).max_decoding_message_size(max).max_encoding_message_size(usize::MAX);
    tonic::transport::Server::builder()
        .add_service(kv)
        .add_service(watch)
        .add_service(lease)
        .add_service(cluster)
        .add_service(maintenance)
        .serve_with_shutdown(addr, shutdown)
        .await
}
