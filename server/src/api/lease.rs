//! etcd's `Lease` service: LeaseGrant, LeaseRevoke, LeaseKeepAlive,
//! LeaseTimeToLive, LeaseLeases.
//!
//! Grants and revokes go through the log. Keep-alives renew on the leader's
//! primary lessor, outside the log, as etcd's do; a follower forwards them
//! to the leader (`Node::lease_renew`).

use super::{write_status, ClientApi};
use crate::clock::Clock;
use detcd_core::lease::MAX_LEASE_TTL;
use detcd_core::request::{Command, LeaseGrantRequest, LeaseRevokeRequest, Response as CoreResponse};
use detcd_core::Error;
use detcd_net::etcd::convert::{self, status};
use detcd_net::etcd::etcdserverpb::{self as pb, lease_server::Lease};
use futures::Stream;
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};

/// The responses of one keep-alive stream.
pub type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for ClientApi {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let req: LeaseGrantRequest = request.into_inner().into();
        // The apply refuses it too; refusing here saves a log entry.
        if req.ttl > MAX_LEASE_TTL {
            return Err(status(&Error::LeaseTtlTooLarge));
        }
        match self.propose(Command::LeaseGrant(req)).await? {
            CoreResponse::LeaseGrant(r) => Ok(Response::new(convert::lease_grant_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let req: LeaseRevokeRequest = request.into_inner().into();
        match self.propose(Command::LeaseRevoke(req)).await? {
            CoreResponse::LeaseRevoke(r) => Ok(Response::new(convert::lease_revoke_response(&self.header(), r))),
            other => Err(unexpected(&other)),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    /// One response per request, in order. The stream ends when the client
    /// ends its side; an error (not the leader) ends it with that status,
    /// as etcd's does.
    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let start = Some((self.clone(), request.into_inner()));
        let responses = futures::stream::unfold(start, |state| async move {
            let (api, mut requests) = state?;
            // A broken or cancelled client stream just ends ours.
            let req = requests.message().await.ok().flatten()?;
            match api.keep_alive(req.id).await {
                Ok(resp) => Some((Ok(resp), Some((api, requests)))),
                Err(status) => Some((Err(status), None)),
            }
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        self.linearize().await?;
        let header = self.header();
        let now = self.node.clock().now();
        let state = self.node.shared().state();
        let lease = state.lessor().time_to_live(req.id, now).ok();
        let resp = convert::lease_time_to_live_response(&header, state.revision(), req.id, lease, req.keys);
        Ok(Response::new(resp))
    }

    /// Every lease this member knows, soonest deadline first (etcd's order;
    /// by ID where there are no deadlines, on a follower). Served from the
    /// local lessor without a read index, as etcd does.
    async fn lease_leases(
        &self,
        _request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let header = self.header();
        let state = self.node.shared().state();
        let mut leases: Vec<_> = state.lessor().leases().map(|l| (l.expiry, l.id)).collect();
        leases.sort_unstable();
        let resp = convert::lease_leases_response(&header, state.revision(), leases.into_iter().map(|(_, id)| id));
        Ok(Response::new(resp))
    }
}

impl ClientApi {
    /// Renews lease `id` and answers as etcd's keep-alive does: the header
    /// is taken before the renewal (its revision is never after it), and an
    /// unknown or expired lease gets TTL 0.
    async fn keep_alive(&self, id: i64) -> Result<pb::LeaseKeepAliveResponse, Status> {
        let header = self.header();
        let revision = self.node.shared().state().revision();
        let ttl = self.renew(id).await?;
        Ok(convert::lease_keep_alive_response(&header, revision, id, ttl))
    }

    /// The TTL lease `id` was renewed to, 0 if it is unknown or expired.
    async fn renew(&self, id: i64) -> Result<i64, Status> {
        match self.node.lease_renew(id).await {
            Ok(Ok(ttl)) => Ok(ttl),
            Ok(Err(e)) => Err(status(&e)),
            Err(e) => Err(write_status(e)),
        }
    }
}

fn unexpected(resp: &CoreResponse) -> Status {
    Status::internal(format!("detcd: unexpected response {resp:?}"))
}
