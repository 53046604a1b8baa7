//! openraft's network over the peer RPC (`detcd_net::peer`): the client
//! side. Each member reaches each other member through one gRPC channel,
//! opened on first use from the first of its peer URLs and shared by every
//! network client openraft asks for (replication, heartbeats, snapshots).
//!
//! Every call is bounded by openraft's `RPCOption::soft_ttl()` (simulated
//! links drop messages without a word, so an unbounded call would wait
//! forever) and waits for one of a fixed number of in-flight slots per
//! peer inside that bound. Failures map to openraft's errors:
//! - the deadline passed: `Timeout`, which openraft retries and, repeated,
//!   backs off from;
//! - no connection, a transport or gRPC error, a reply that does not
//!   decode, an unusable peer URL, or the peer's `Raft` answering with a
//!   fatal error (it stopped): `Unreachable`, which backs off at once.

use super::types::{MemberId, MemberNode, TypeConfig};
use super::wire::{self, Addressed, Reply, SnapshotBytes, SnapshotHeader};
use detcd_net::peer::{self, BadPeerUrl, RaftPeerClient, RaftReply, RaftRequest};
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

type C = TypeConfig;

/// Settings of the peer transport's client side.
#[derive(Debug, Clone)]
pub struct PeerNetConfig {
    /// Bound on establishing a connection (each RPC's own deadline bounds
    /// it too).
    pub connect_timeout: Duration,
    /// Requests in flight to one peer at most; more wait (within their
    /// deadline) for a slot.
    pub max_in_flight: usize,
}

impl Default for PeerNetConfig {
    fn default() -> Self {
        PeerNetConfig { connect_timeout: Duration::from_secs(1), max_in_flight: 64 }
    }
}

/// The connection to one peer: a lazily connected, reconnecting channel
/// and its in-flight slots. Cloning shares both.
#[derive(Clone)]
struct PeerConn {
    client: RaftPeerClient<Channel>,
    slots: Arc<Semaphore>,
}

/// A peer as last seen: the URL the connection was made for, so a member
/// whose URL changed gets a new one.
#[derive(Clone)]
struct Peer {
    url: Option<String>,
    conn: Result<PeerConn, BadPeerUrl>,
}

/// openraft's `RaftNetworkFactory`: hands out a [`PeerNetwork`] per target.
/// `SD` is the state machine's `SnapshotData` (openraft requires the two
/// to agree); it crosses the wire as bytes ([`SnapshotBytes`]).
pub struct PeerNetworkFactory<SD = Vec<u8>> {
    id: MemberId,
    config: PeerNetConfig,
    peers: Arc<Mutex<BTreeMap<MemberId, Peer>>>,
    _data: PhantomData<fn() -> SD>,
}

impl<SD> Clone for PeerNetworkFactory<SD> {
    fn clone(&self) -> Self {
        PeerNetworkFactory { id: self.id, config: self.config.clone(), peers: self.peers.clone(), _data: PhantomData }
    }
}

impl<SD> PeerNetworkFactory<SD> {
    /// The factory for member `id` (named as the sender in errors).
    pub fn new(id: MemberId, config: PeerNetConfig) -> Self {
        PeerNetworkFactory { id, config, peers: Arc::default(), _data: PhantomData }
    }

    /// The connection to `target`, made now if there is none for its
    /// current first peer URL. Nothing is dialled until the first request.
    fn peer(&self, target: MemberId, node: &MemberNode) -> Peer {
        let url = node.peer_urls.first().cloned();
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = peers.get(&target) {
            if peer.url == url {
                return peer.clone();
            }
        }
        let conn = match &url {
            None => Err(BadPeerUrl { url: String::new(), reason: "the member has no peer URL" }),
            Some(url) => peer::endpoint(url, self.config.connect_timeout).map(|ep| PeerConn {
                client: peer::client(&ep),
                slots: Arc::new(Semaphore::new(self.config.max_in_flight.max(1))),
            }),
        };
        let peer = Peer { url, conn };
        peers.insert(target, peer.clone());
        peer
    }

    /// The shared channel to `target` and its in-flight slots, for the
    /// client calls a follower forwards to the leader (`forward.rs`).
    pub(crate) fn channel(
        &self,
        target: MemberId,
        node: &MemberNode,
    ) -> Result<(RaftPeerClient<Channel>, Arc<Semaphore>), BadPeerUrl> {
        self.peer(target, node).conn.map(|c| (c.client, c.slots))
    }
}

impl<SD: SnapshotBytes> RaftNetworkFactory<C> for PeerNetworkFactory<SD> {
    type Network = PeerNetwork<SD>;

    async fn new_client(&mut self, target: MemberId, node: &MemberNode) -> PeerNetwork<SD> {
        PeerNetwork { from: self.id, target, peer: self.peer(target, node), _data: PhantomData }
    }
}

/// openraft's network to one target member.
pub struct PeerNetwork<SD = Vec<u8>> {
    from: MemberId,
    target: MemberId,
    peer: Peer,
    _data: PhantomData<fn() -> SD>,
}

/// The unary RPCs, for dispatch and for naming a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    AppendEntries,
    Vote,
    PreVote,
    TransferLeader,
}

impl Rpc {
    fn kind(self) -> RPCTypes {
        match self {
            Rpc::AppendEntries => RPCTypes::AppendEntries,
            Rpc::Vote | Rpc::PreVote => RPCTypes::Vote,
            Rpc::TransferLeader => RPCTypes::TransferLeader,
        }
    }
}

impl<SD> PeerNetwork<SD> {
    fn unreachable(&self, what: impl fmt::Display) -> Unreachable<C> {
        Unreachable::from_string(format!("member {:x}: {what}", self.target))
    }

    fn timeout(&self, action: RPCTypes, timeout: Duration) -> Timeout<C> {
        Timeout { action, id: self.from, target: self.target, timeout }
    }

    fn conn(&self) -> Result<PeerConn, Unreachable<C>> {
        self.peer.conn.clone().map_err(|e| self.unreachable(e))
    }

    /// Runs `call` on the peer's client once an in-flight slot is free, all
    /// within `ttl`.
    async fn bounded<T, F, Fut>(&self, action: RPCTypes, ttl: Duration, call: F) -> Result<T, RPCError<C>>
    where
        F: FnOnce(RaftPeerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let conn = self.conn()?;
        let rpc = async move {
            let _slot = conn.slots.acquire().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            call(conn.client).await
        };
        match tokio::time::timeout(ttl, rpc).await {
            Err(_) => Err(self.timeout(action, ttl).into()),
            Ok(Err(status)) => Err(self.unreachable(format!("{}: {}", status.code(), status.message())).into()),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// One unary RPC: `msg` addressed to the target, the reply decoded.
    async fn call<Req, Resp>(&self, rpc: Rpc, msg: Req, option: &RPCOption) -> Result<Resp, RPCError<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let data = wire::encode(&Addressed { to: self.target, msg })
            .map_err(|e| self.unreachable(format!("encoding {rpc:?}: {e}")))?;
        let ttl = option.soft_ttl();
        let reply: RaftReply = self
            .bounded(rpc.kind(), ttl, |mut client| async move {
                let request = tonic::Request::new(RaftRequest { data });
                match rpc {
                    Rpc::AppendEntries => client.append_entries(request).await,
                    Rpc::Vote => client.vote(request).await,
                    Rpc::PreVote => client.pre_vote(request).await,
                    Rpc::TransferLeader => client.transfer_leader(request).await,
                }
            })
            .await?;
        self.open(&reply)
    }

    /// The peer's answer: its response, or its `Raft`'s fatal error (which
    /// makes it unreachable for openraft's purposes).
    fn open<Resp: DeserializeOwned>(&self, reply: &RaftReply) -> Result<Resp, RPCError<C>> {
        let reply: Reply<Resp> =
            wire::decode(&reply.data).map_err(|e| self.unreachable(format!("undecodable reply: {e}")))?;
        reply.map_err(|fatal| self.unreachable(format!("raft: {fatal}")).into())
    }
}

impl<SD: SnapshotBytes> RaftNetworkV2<C> for PeerNetwork<SD> {
    type SnapshotData = SD;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.call(Rpc::AppendEntries, rpc, &option).await
    }

    async fn vote(&mut self, rpc: VoteRequest<C>, option: RPCOption) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(Rpc::Vote, rpc, &option).await
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<C>, option: RPCOption) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(Rpc::PreVote, rpc, &option).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.call(Rpc::TransferLeader, req, &option).await
    }

    /// Streams the snapshot in chunks of openraft's `snapshot_max_chunk_size`
    /// (the whole transfer and its installation within `soft_ttl()`, so
    /// `install_snapshot_timeout` must allow for the snapshot's size), and
    /// gives up when `cancel` fires.
    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, SD>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let data = snapshot.snapshot.into_bytes();
        let header = SnapshotHeader { to: self.target, vote, meta: snapshot.meta, len: data.len() as u64 };
        let header = wire::encode(&header).map_err(|e| self.unreachable(format!("encoding snapshot header: {e}")))?;
        let chunk_size = option.snapshot_chunk_size().unwrap_or(peer::DEFAULT_SNAPSHOT_CHUNK_SIZE);
        let chunks = peer::snapshot_chunks(header, data, chunk_size);
        let ttl = option.soft_ttl();
        let send = self.bounded(RPCTypes::InstallSnapshot, ttl, |mut client| async move {
            client.install_snapshot(futures::stream::iter(chunks)).await
        });
        let reply = tokio::select! {
            biased;
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = send => reply?,
        };
        Ok(self.open(&reply)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(urls: &[&str]) -> MemberNode {
        MemberNode { name: "n".into(), peer_urls: urls.iter().map(|u| u.to_string()).collect(), client_urls: vec![] }
    }

    fn option(ms: u64) -> RPCOption {
        RPCOption::new(Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn one_channel_per_peer_url() {
        let mut factory = PeerNetworkFactory::<Vec<u8>>::new(1, PeerNetConfig::default());
        let a = factory.new_client(2, &node(&["http://127.0.0.1:1"])).await;
        let b = factory.new_heartbeat_client(2, &node(&["http://127.0.0.1:1"])).await;
        let slots = |n: &PeerNetwork| n.peer.conn.as_ref().ok().map(|c| Arc::as_ptr(&c.slots));
        assert_eq!(slots(&a), slots(&b), "the same URL shares the connection");
        let c = factory.new_client(2, &node(&["http://127.0.0.1:2", "http://127.0.0.1:1"])).await;
        assert_ne!(slots(&a), slots(&c), "a changed first URL gets a new connection");
        let d = factory.new_client(3, &node(&["http://127.0.0.1:2"])).await;
        assert_ne!(slots(&c), slots(&d), "another member, another connection");
    }

    #[tokio::test]
    async fn unusable_urls_are_unreachable() {
        let mut factory = PeerNetworkFactory::<Vec<u8>>::new(1, PeerNetConfig::default());
        for urls in [&[][..], &["https://127.0.0.1:1"][..], &["127.0.0.1"][..]] {
            let mut net = factory.new_client(2, &node(urls)).await;
            let req = VoteRequest::<C>::new(openraft::impls::Vote::new(1, 1), None);
            match net.vote(req, option(1000)).await {
                Err(RPCError::Unreachable(_)) => {}
                other => panic!("{urls:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        // Bind and release a port so that nothing listens on it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut factory = PeerNetworkFactory::<Vec<u8>>::new(1, PeerNetConfig::default());
        let mut net = factory.new_client(2, &node(&[&format!("http://{addr}")])).await;
        let req = VoteRequest::<C>::new(openraft::impls::Vote::new(1, 1), None);
        match net.vote(req, option(5000)).await {
            Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("member 2"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        // A listener that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut factory = PeerNetworkFactory::<Vec<u8>>::new(1, PeerNetConfig::default());
        let mut net = factory.new_client(2, &node(&[&format!("http://{addr}")])).await;
        let req = VoteRequest::<C>::new(openraft::impls::Vote::new(1, 1), None);
        let started = std::time::Instant::now();
        match net.vote(req, option(200)).await {
            Err(RPCError::Timeout(t)) => {
                assert_eq!((t.id, t.target, t.action), (1, 2, RPCTypes::Vote));
                assert_eq!(t.timeout, option(200).soft_ttl());
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }
}
