//! openraft's network over the peer RPC: the server side. [`PeerService`]
//! decodes each request, hands it to the local `Raft` and encodes its
//! answer (the response, or the fatal error of a stopped node);
//! [`PeerServer`] serves it on the member's peer address. The calls a
//! follower forwards to the leader (`forward.rs`) go to an optional
//! [`LeaderCalls`] hook; without one they are `Unimplemented`.
//!
//! It is generic over the state machine only through its snapshot data
//! ([`SnapshotBytes`]), so it does not depend on the storage adapters.

use super::forward::LeaderCalls;
use super::types::{MemberId, TypeConfig};
use super::wire::{self, Addressed, SnapshotBytes, SnapshotHeader};
use detcd_net::peer::{self, RaftPeer, RaftReply, RaftRequest, SnapshotChunk};
use openraft::storage::RaftStateMachine;
use openraft::{Raft, Snapshot};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

/// Settings of the peer transport's server side.
#[derive(Debug, Clone)]
pub struct PeerServeConfig {
    /// The largest snapshot accepted (it is held in memory until it is
    /// installed).
    pub max_snapshot_bytes: usize,
}

impl Default for PeerServeConfig {
    fn default() -> Self {
        PeerServeConfig { max_snapshot_bytes: usize::try_from(8u64 << 30).unwrap_or(usize::MAX) }
    }
}

/// The `RaftPeer` gRPC service over a local `Raft` handle.
pub struct PeerService<SM: RaftStateMachine<TypeConfig>> {
    raft: Raft<TypeConfig, SM>,
    config: PeerServeConfig,
    leader: Option<Arc<dyn LeaderCalls>>,
}

impl<SM: RaftStateMachine<TypeConfig>> PeerService<SM> {
    pub fn new(raft: Raft<TypeConfig, SM>, config: PeerServeConfig) -> Self {
        PeerService { raft, config, leader: None }
    }

    /// Serves the forwarded client calls with `leader`.
    pub fn with_leader(mut self, leader: Option<Arc<dyn LeaderCalls>>) -> Self {
        self.leader = leader;
        self
    }

    fn leader(&self) -> Result<&dyn LeaderCalls, Status> {
        self.leader.as_deref().ok_or_else(|| Status::unimplemented("this member does not serve client calls"))
    }

    /// Decodes a request and checks that it is meant for this member.
    fn open<T: DeserializeOwned>(&self, request: Request<RaftRequest>) -> Result<T, Status> {
        let msg: Addressed<T> = wire::decode(&request.into_inner().data)
            .map_err(|e| Status::invalid_argument(format!("undecodable request: {e}")))?;
        self.check_target(msg.to)?;
        Ok(msg.msg)
    }

    fn check_target(&self, to: MemberId) -> Result<(), Status> {
        let me = *self.raft.node_id();
        if to != me {
            return Err(Status::failed_precondition(format!("this is member {me:x}, not {to:x}")));
        }
        Ok(())
    }
}

fn respond<T: Serialize>(reply: &T) -> Result<Response<RaftReply>, Status> {
    let data = wire::encode(reply).map_err(|e| Status::internal(format!("encoding the reply: {e}")))?;
    Ok(Response::new(RaftReply { data }))
}

#[tonic::async_trait]
impl<SM> RaftPeer for PeerService<SM>
where
    SM: RaftStateMachine<TypeConfig> + Send + Sync + 'static,
    SM::SnapshotData: SnapshotBytes,
{
    async fn append_entries(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.open(request)?;
        respond(&self.raft.append_entries(req).await.map_err(wire::fatal_only))
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.open(request)?;
        respond(&self.raft.vote(req).await.map_err(wire::fatal_only))
    }

    async fn pre_vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.open(request)?;
        respond(&self.raft.pre_vote(req).await.map_err(wire::fatal_only))
    }

    async fn transfer_leader(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.open(request)?;
        respond(&self.raft.handle_transfer_leader(req).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftReply>, Status> {
        let (header, data) = peer::collect_snapshot(request.into_inner(), self.config.max_snapshot_bytes).await?;
        let header: SnapshotHeader =
            wire::decode(&header).map_err(|e| Status::invalid_argument(format!("undecodable snapshot header: {e}")))?;
        self.check_target(header.to)?;
        header.check_len(data.len()).map_err(Status::aborted)?;
        let snapshot = Snapshot { meta: header.meta, snapshot: SM::SnapshotData::from_bytes(data) };
        respond(&self.raft.install_full_snapshot(header.vote, snapshot).await)
    }

    async fn client_write(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let cmd = self.open(request)?;
        respond(&self.leader()?.client_write(cmd).await)
    }

    async fn read_index(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let () = self.open(request)?;
        respond(&self.leader()?.read_index().await)
    }

    async fn lease_renew(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let id = self.open(request)?;
        respond(&self.leader()?.lease_renew(id).await)
    }
}

/// Serves the peer RPC for `raft` on `addr` until `shutdown` completes.
pub async fn serve_peer<SM>(
    raft: Raft<TypeConfig, SM>,
    addr: SocketAddr,
    config: PeerServeConfig,
    leader: Option<Arc<dyn LeaderCalls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    SM: RaftStateMachine<TypeConfig> + Send + Sync + 'static,
    SM::SnapshotData: SnapshotBytes,
{
    peer::serve(PeerService::new(raft, config).with_leader(leader), addr, shutdown).await
}

/// A running peer server: the task serving it and the switch that stops it.
pub struct PeerServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl PeerServer {
    /// Starts serving the peer RPC for `raft` on `addr` in a new task.
    /// Fails if the address cannot be bound (checked by binding it once
    /// before the server does).
    pub async fn start<SM>(raft: Raft<TypeConfig, SM>, addr: SocketAddr, config: PeerServeConfig) -> io::Result<Self>
    where
        SM: RaftStateMachine<TypeConfig> + Send + Sync + 'static,
        SM::SnapshotData: SnapshotBytes,
    {
        PeerServer::start_with(raft, addr, config, None).await
    }

    /// [`PeerServer::start`], serving the forwarded client calls with
    /// `leader`.
    pub async fn start_with<SM>(
        raft: Raft<TypeConfig, SM>,
        addr: SocketAddr,
        config: PeerServeConfig,
        leader: Option<Arc<dyn LeaderCalls>>,
    ) -> io::Result<Self>
    where
        SM: RaftStateMachine<TypeConfig> + Send + Sync + 'static,
        SM::SnapshotData: SnapshotBytes,
    {
        drop(tokio::net::TcpListener::bind(addr).await?);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_peer(raft, addr, config, leader, async move {
            let _ = rx.await;
        }));
        Ok(PeerServer { addr, shutdown: Some(tx), task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the requests in progress finish for up to
    /// `grace`, then drops what is left. Returns how serving ended.
    pub async fn stop(mut self, grace: Duration) -> Result<(), String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(served)) => served.map_err(|e| e.to_string()),
            Ok(Err(join)) => Err(join.to_string()),
            Err(_) => {
                self.task.abort();
                let _ = (&mut self.task).await;
                Ok(())
            }
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        if self.shutdown.is_some() {
            self.task.abort();
        }
    }
}
