//! A follower's client calls, forwarded to the leader over the peer RPC, as
//! etcd forwards them: writes (`ClientWrite`), the read index of a
//! linearizable read (`ReadIndex`) and lease renewals (`LeaseRenew`).
//!
//! [`LeaderCalls`] is what the leader does for these calls; [`LocalLeader`]
//! does it on this member (and answers "not the leader" elsewhere), and the
//! peer server serves it to the other members. [`Forwarder`] is the one
//! client side: it finds the leader's peer URL in openraft's membership and
//! calls it over the network factory's channel to it, once, within a
//! timeout. Each call's reply is the postcard of `Result<_, WriteError>`.

use super::network::PeerNetworkFactory;
use super::snapshot::SnapshotData;
use super::state_machine::SharedState;
use super::types::{CommandResult, MemberId};
use super::wire::{self, Addressed};
use crate::clock::{Clock, NodeClock};
use crate::node::{MemberRaft, WriteError};
use detcd_core::request::{Command, LeaseCheckpoint};
use detcd_core::Error;
use detcd_net::peer::{RaftReply, RaftRequest};
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::{ReadPolicy, ServerState};
use openraft_rt::WatchReceiver;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long a forwarded call may take, waiting for the leader included.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a renewal waits for the leader's lessor to be promoted (the
/// node promotes it on its next duty tick, 100 ms, after winning) or for an
/// expired lease's revoke (proposed on a duty tick) to be applied.
const PROMOTION_WAIT: Duration = Duration::from_secs(1);
const PROMOTION_POLL: Duration = Duration::from_millis(10);

/// A renewal's answer: the TTL (0 if the lease is unknown or expired) or
/// the lessor's error; or why the leader could not answer.
pub type RenewResult = Result<Result<i64, Error>, WriteError>;

/// The calls a follower forwards, as the leader serves them.
#[tonic::async_trait]
pub trait LeaderCalls: Send + Sync + 'static {
    /// Replicates `cmd` and returns what applying it answered.
    async fn client_write(&self, cmd: Command) -> Result<CommandResult, WriteError>;
    /// The read index, once leadership is confirmed with a quorum.
    async fn read_index(&self) -> Result<u64, WriteError>;
    /// Renews lease `id` on the primary lessor.
    async fn lease_renew(&self, id: i64) -> RenewResult;
}

/// [`LeaderCalls`] on this member.
pub struct LocalLeader {
    id: MemberId,
    raft: MemberRaft,
    shared: Arc<SharedState>,
    clock: Arc<NodeClock>,
}

impl LocalLeader {
    pub fn new(id: MemberId, raft: MemberRaft, shared: Arc<SharedState>, clock: Arc<NodeClock>) -> Self {
        LocalLeader { id, raft, shared, clock }
    }

    /// An expired lease stays until the leader's revoke is applied; as
    /// etcd, answer its expiry only once it is gone (with its keys), or at
    /// `deadline`.
    async fn wait_revoked(&self, id: i64, deadline: tokio::time::Instant) {
        loop {
            let pending = self.shared.state().lessor().contains(id);
            if !pending || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(PROMOTION_POLL).await;
        }
    }

    /// Replicates that lease `id` has no checkpointed remaining TTL any more
    /// (it was just renewed to its full TTL), so a new leader does not
    /// restart it from the stale remainder. In the background: the renewal
    /// does not wait for the log. A lost proposal only means a later leader
    /// may expire the lease earlier than its renewal promised, and the next
    /// renewal tries again.
    fn reset_checkpoint(&self, id: i64) {
        let raft = self.raft.clone();
        tokio::spawn(async move {
            let reset = Command::LeaseCheckpoint(vec![LeaseCheckpoint { id, remaining_ttl: 0 }]);
            let write = tokio::time::timeout(FORWARD_TIMEOUT, raft.client_write(reset)).await;
            if !matches!(write, Ok(Ok(_))) {
                tracing::debug!(lease = id, "lease checkpoint reset not replicated");
            }
        });
    }
}

#[tonic::async_trait]
impl LeaderCalls for LocalLeader {
    async fn client_write(&self, cmd: Command) -> Result<CommandResult, WriteError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(WriteError::NotLeader(f.leader_id)),
            Err(e) => Err(WriteError::Unavailable(e.to_string())),
        }
    }

    async fn read_index(&self) -> Result<u64, WriteError> {
        match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(read) => Ok(read.log_id().index),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(WriteError::NotLeader(f.leader_id))
            }
            Err(e) => Err(WriteError::Unavailable(e.to_string())),
        }
    }

    async fn lease_renew(&self, id: i64) -> RenewResult {
        let deadline = tokio::time::Instant::now() + PROMOTION_WAIT;
        loop {
            let (state, leader) = {
                let m = self.raft.metrics().borrow_watched().clone();
                (m.state, m.current_leader)
            };
            if state != ServerState::Leader || leader != Some(self.id) {
                return Err(WriteError::NotLeader(leader));
            }
            let now = self.clock.now();
            let renewed = self.shared.state().lessor_mut().renew(id, now);
            match renewed {
                Ok((ttl, reset_checkpoint)) => {
                    if reset_checkpoint {
                        self.reset_checkpoint(id);
                    }
                    return Ok(Ok(ttl));
                }
                Err(Error::LeaseNotFound) => {
                    self.wait_revoked(id, deadline).await;
                    return Ok(Ok(0));
                }
                // The leader's lessor is promoted on the node's next duty
                // tick after the election: wait for it, boundedly.
                Err(Error::NotPrimary) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(PROMOTION_POLL).await;
                }
                Err(Error::NotPrimary) => return Err(WriteError::NotLeader(None)),
                Err(e) => return Ok(Err(e)),
            }
        }
    }
}

/// The forwarded RPCs.
#[derive(Debug, Clone, Copy)]
enum Call {
    ClientWrite,
    ReadIndex,
    LeaseRenew,
}

/// The client side: forwards a call to the leader, once, bounded.
pub struct Forwarder {
    raft: MemberRaft,
    net: PeerNetworkFactory<SnapshotData>,
    timeout: Duration,
}

impl Forwarder {
    /// Forwards over `net`'s channels to the leader `raft`'s membership
    /// names, each call within `timeout`.
    pub fn new(raft: MemberRaft, net: PeerNetworkFactory<SnapshotData>, timeout: Duration) -> Self {
        Forwarder { raft, net, timeout }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn client_write(&self, leader: MemberId, cmd: Command) -> Result<CommandResult, WriteError> {
        self.call(leader, Call::ClientWrite, cmd).await?
    }

    pub async fn read_index(&self, leader: MemberId) -> Result<u64, WriteError> {
        self.call(leader, Call::ReadIndex, ()).await?
    }

    pub async fn lease_renew(&self, leader: MemberId, id: i64) -> RenewResult {
        self.call(leader, Call::LeaseRenew, id).await?
    }

    /// One call to `leader`: the transport's failures are `Unavailable`;
    /// the leader's own answer is returned as it is.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        leader: MemberId,
        call: Call,
        msg: Req,
    ) -> Result<Resp, WriteError> {
        let unavailable = |what: String| WriteError::Unavailable(format!("forwarding to leader {leader:x}: {what}"));
        let node = self.raft.metrics().borrow_watched().membership_config.membership().get_node(&leader).cloned();
        let node = node.ok_or_else(|| unavailable("not in the membership".into()))?;
        let (mut client, slots) = self.net.channel(leader, &node).map_err(|e| unavailable(e.to_string()))?;
        let data = wire::encode(&Addressed { to: leader, msg }).map_err(|e| unavailable(e.to_string()))?;
        let rpc = async move {
            let _slot = slots.acquire().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let request = tonic::Request::new(RaftRequest { data });
            match call {
                Call::ClientWrite => client.client_write(request).await,
                Call::ReadIndex => client.read_index(request).await,
                Call::LeaseRenew => client.lease_renew(request).await,
            }
        };
        let reply: RaftReply = match tokio::time::timeout(self.timeout, rpc).await {
            Err(_) => return Err(unavailable(format!("{call:?} timed out"))),
            Ok(Err(status)) => return Err(unavailable(format!("{call:?}: {}: {}", status.code(), status.message()))),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        wire::decode(&reply.data).map_err(|e| unavailable(format!("undecodable reply: {e}")))
    }
}
