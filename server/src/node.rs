//! A member: storage, openraft, the peer server and the leader's duties,
//! put together from a `NodeConfig`. The same code runs on real tokio and in
//! the simulator; the caller hands in the disk and the clock.

use crate::clock::{Clock, NodeClock};
use crate::cluster::{self, ClusterError, InitialMember};
use crate::raft::forward::{Forwarder, LeaderCalls, LocalLeader, RenewResult, FORWARD_TIMEOUT};
use crate::raft::network::{PeerNetConfig, PeerNetworkFactory};
use crate::raft::peer_server::{PeerServeConfig, PeerServer};
use crate::raft::runtime::DetcdRuntime;
use crate::raft::snapshot::SnapshotData;
use crate::raft::state_machine::{SharedState, StateMachineStore};
use crate::raft::store::{open_stores, StoreConfig};
use crate::raft::types::{CommandResult, MemberId, MemberNode, TypeConfig};
use crate::storage::Disk;
use detcd_core::request::{Command, LeaseRevokeRequest};
use openraft::error::{InitializeError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use openraft_rt::{AsyncRuntime, WatchReceiver};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub type MemberRaft = openraft::Raft<TypeConfig, StateMachineStore>;

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

/// What a member needs to start (the flags of `etcd` that concern it).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// Where the peer RPC listens.
    pub listen_peer_addr: SocketAddr,
    pub advertise_peer_urls: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub initial_cluster: String,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    /// Applied entries between snapshots (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    pub store: StoreConfig,
}

impl NodeConfig {
    /// etcd's defaults for a member named `name` whose peer URL is `peer_url`
    /// and who listens there, alone in its cluster.
    pub fn single(name: &str, data_dir: PathBuf, listen_peer_addr: SocketAddr) -> NodeConfig {
        let peer_url = format!("http://{listen_peer_addr}");
        NodeConfig {
            name: name.to_string(),
            data_dir,
            listen_peer_addr,
            advertise_peer_urls: vec![peer_url.clone()],
            advertise_client_urls: vec![],
            initial_cluster: format!("{name}={peer_url}"),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".to_string(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            snapshot_count: 100_000,
            store: StoreConfig::default(),
        }
    }

    fn raft_config(&self) -> Result<Arc<Config>, NodeError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let election = ms(self.election_timeout).max(1);
        let config = Config {
            cluster_name: self.initial_cluster_token.clone(),
            heartbeat_interval: ms(self.heartbeat_interval).max(1),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_count.max(1)),
            // openraft's 200 ms default is far too short to ship and install
            // a snapshot of a real store (3/4 of this bounds the transfer).
            install_snapshot_timeout: 60_000,
            ..Default::default()
        };
        config.validate().map(Arc::new).map_err(|e| NodeError::Config(e.to_string()))
    }
}

#[derive(Debug)]
pub enum NodeError {
    Cluster(ClusterError),
    Config(String),
    Storage(std::io::Error),
    Raft(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Cluster(e) => write!(f, "{e}"),
            NodeError::Config(e) => write!(f, "invalid raft settings: {e}"),
            NodeError::Storage(e) => write!(f, "{e}"),
            NodeError::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why a write was not applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WriteError {
    /// This member is not the leader; the leader, if known.
    NotLeader(Option<MemberId>),
    /// No quorum, shutting down, or another consensus failure.
    Unavailable(String),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotLeader(Some(id)) => write!(f, "not the leader (leader is {id:x})"),
            WriteError::NotLeader(None) => f.write_str("etcdserver: no leader"),
            WriteError::Unavailable(e) => write!(f, "etcdserver: {e}"),
        }
    }
}

/// A running member.
pub struct Node {
    id: MemberId,
    cluster_id: u64,
    /// `--advertise-client-urls`: this member's own, known before the
    /// membership carries them.
    client_urls: Vec<String>,
    raft: MemberRaft,
    shared: Arc<SharedState>,
    clock: Arc<NodeClock>,
    /// The forwarded calls, as this member serves them when it leads.
    leader: Arc<LocalLeader>,
    /// Where a follower's client calls go to the leader.
    forward: Forwarder,
    peer_server: Option<PeerServer>,
    duties: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Node {
    /// Opens the member's storage on `disk`, starts openraft and the peer
    /// server, bootstraps a new cluster's membership, and starts the leader's
    /// duties (lease expiry, watcher catch-up). `seed` seeds openraft's
    /// randomness (election timeouts), so a simulated run replays.
    pub async fn start(
        config: NodeConfig,
        disk: Arc<dyn Disk>,
        clock: Arc<NodeClock>,
        seed: u64,
    ) -> Result<Node, NodeError> {
        DetcdRuntime::scope(seed, Node::start_scoped(config, disk, clock)).await
    }

    async fn start_scoped(config: NodeConfig, disk: Arc<dyn Disk>, clock: Arc<NodeClock>) -> Result<Node, NodeError> {
        let members = cluster::parse_initial_cluster(&config.initial_cluster).map_err(NodeError::Cluster)?;
        cluster::check_self(&members, &config.name, &config.advertise_peer_urls, &config.initial_cluster)
            .map_err(NodeError::Cluster)?;
        let token = &config.initial_cluster_token;
        let ids: Vec<MemberId> = members.iter().map(|m| cluster::member_id(&m.peer_urls, token)).collect();
        let id = cluster::member_id(&config.advertise_peer_urls, token);
        let cluster_id = cluster::cluster_id(&ids);

        let raft_config = config.raft_config()?;
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let (log, sm) =
            open_stores(disk, &config.data_dir, config.store.clone(), dyn_clock).map_err(NodeError::Storage)?;
        let shared = sm.shared();
        let network = PeerNetworkFactory::<SnapshotData>::new(id, PeerNetConfig::default());
        let raft = MemberRaft::new(id, raft_config, network.clone(), log, sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let leader = Arc::new(LocalLeader::new(id, raft.clone(), shared.clone(), clock.clone()));
        let forward = Forwarder::new(raft.clone(), network, FORWARD_TIMEOUT);
        let hook: Arc<dyn LeaderCalls> = leader.clone();
        let peer_server =
            PeerServer::start_with(raft.clone(), config.listen_peer_addr, PeerServeConfig::default(), Some(hook))
                .await
                .map_err(NodeError::Storage)?;

        if config.initial_cluster_state == ClusterState::New {
            let membership = initial_membership(&members, &ids, &config);
            match raft.initialize(membership).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(NodeError::Raft(e.to_string())),
            }
        }

        let (stop, stopped) = oneshot::channel();
        let client_urls = config.advertise_client_urls.clone();
        let duties = LeaderDuties { id, raft: raft.clone(), shared: shared.clone(), clock: clock.clone(), config };
        let task = DetcdRuntime::spawn(duties.run(stopped));
        Ok(Node {
            id,
            cluster_id,
            client_urls,
            raft,
            shared,
            clock,
            leader,
            forward,
            peer_server: Some(peer_server),
            duties: Some((stop, task)),
        })
    }

    pub fn id(&self) -> MemberId {
        self.id
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// This member's advertised client URLs (`--advertise-client-urls`).
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    pub fn raft(&self) -> &MemberRaft {
        &self.raft
    }

    /// The replicated state and the watch hub, as applied on this member.
    pub fn shared(&self) -> &Arc<SharedState> {
        &self.shared
    }

    pub fn clock(&self) -> &Arc<NodeClock> {
        &self.clock
    }

    /// The leader as this member knows it.
    pub fn current_leader(&self) -> Option<MemberId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics().borrow_watched().clone();
        m.state == ServerState::Leader
    }

    /// The leader another member names, if it is not this one.
    fn elsewhere(&self, e: &WriteError) -> Option<MemberId> {
        match e {
            WriteError::NotLeader(Some(leader)) if *leader != self.id => Some(*leader),
            _ => None,
        }
    }

    /// Replicates `cmd` and returns what applying it answered. On a
    /// follower, the leader does (forwarded once, bounded).
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, WriteError> {
        match self.leader.client_write(cmd.clone()).await {
            Err(e) => match self.elsewhere(&e) {
                Some(leader) => self.forward.client_write(leader, cmd).await,
                None => Err(e),
            },
            done => done,
        }
    }

    /// Waits until this member has applied everything committed before the
    /// call (openraft's read index: the leader confirms it still leads with
    /// a quorum; a follower asks the leader for it). A read of `shared()`
    /// afterwards is linearizable.
    pub async fn linearize(&self) -> Result<(), WriteError> {
        let index = match self.leader.read_index().await {
            Err(e) => match self.elsewhere(&e) {
                Some(leader) => self.forward.read_index(leader).await?,
                None => return Err(e),
            },
            Ok(index) => index,
        };
        tokio::time::timeout(self.forward.timeout(), self.shared.wait_applied(index))
            .await
            .map_err(|_| WriteError::Unavailable(format!("timed out applying up to the read index {index}")))
    }

    /// Renews lease `id` on the leader's lessor (forwarded from a follower):
    /// its TTL, 0 if it is unknown or expired, or the lessor's error.
    pub async fn lease_renew(&self, id: i64) -> RenewResult {
        match self.leader.lease_renew(id).await {
            Err(e) => match self.elsewhere(&e) {
                Some(leader) => self.forward.lease_renew(leader, id).await,
                None => Err(e),
            },
            done => done,
        }
    }

    /// Stops the leader duties, the peer server and openraft.
    pub async fn shutdown(mut self) {
        if let Some((stop, task)) = self.duties.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        if let Some(server) = self.peer_server.take() {
            let _ = server.stop(Duration::from_secs(1)).await;
        }
        let _ = self.raft.shutdown().await;
    }
}

fn initial_membership(
    members: &[InitialMember],
    ids: &[MemberId],
    config: &NodeConfig,
) -> BTreeMap<MemberId, MemberNode> {
    members
        .iter()
        .zip(ids)
        .map(|(m, id)| {
            let client_urls = if m.name == config.name { config.advertise_client_urls.clone() } else { vec![] };
            (*id, MemberNode { name: m.name.clone(), peer_urls: m.peer_urls.clone(), client_urls })
        })
        .collect()
}

/// What the leader does besides consensus: own the lease deadlines (promote
/// on election, demote on loss), revoke expired leases through the log, and
/// catch unsynced watchers up.
struct LeaderDuties {
    id: MemberId,
    raft: MemberRaft,
    shared: Arc<SharedState>,
    clock: Arc<NodeClock>,
    config: NodeConfig,
}

/// How often expiry and watcher catch-up run.
const DUTY_TICK: Duration = Duration::from_millis(100);
/// Revokes proposed per tick at most (etcd rate-limits revokes too).
const MAX_REVOKES_PER_TICK: usize = 100;

impl LeaderDuties {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let mut leading = false;
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => return,
                _ = tokio::time::sleep(DUTY_TICK) => {}
            }
            let metrics = self.raft.metrics().borrow_watched().clone();
            let now_leading = metrics.state == ServerState::Leader && metrics.current_leader == Some(self.id);
            if now_leading != leading {
                leading = now_leading;
                let mut state = self.shared.state();
                if leading {
                    let extend = u64::try_from(self.config.election_timeout.as_millis()).unwrap_or(u64::MAX);
                    state.lessor_mut().promote(self.clock.now(), extend);
                } else {
                    state.lessor_mut().demote();
                }
            }
            if leading {
                self.revoke_expired().await;
            }
            let state = self.shared.state();
            self.shared.hub().sync(state.store());
        }
    }

    async fn revoke_expired(&self) {
        let expired = self.shared.state().lessor().expired(self.clock.now(), MAX_REVOKES_PER_TICK);
        for id in expired {
            // A lost race (already revoked, leadership lost) is fine: the
            // next leader sees the lease again if it is still there.
            let _ = self.raft.client_write(Command::LeaseRevoke(LeaseRevokeRequest { id })).await;
        }
    }
}
