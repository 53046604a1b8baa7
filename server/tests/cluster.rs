//! A 3-member cluster in one process on real tokio, over the peer RPC on
//! 127.0.0.1 (ephemeral ports), with the real storage adapters on
//! simulated disks: election, replication of 10,000 puts, the leader
//! stopped and a new one elected, writes continuing, the old leader
//! restarted on its own data and catching up (by a snapshot, as the new
//! leader purged the log it missed).

use detcd_core::request::{Command, PutRequest, Response};
use detcd_server::clock::NodeClock;
use detcd_server::raft::network::{PeerNetConfig, PeerNetworkFactory};
use detcd_server::raft::peer_server::{PeerServeConfig, PeerServer};
use detcd_server::raft::runtime::DetcdRuntime;
use detcd_server::raft::snapshot::SnapshotData;
use detcd_server::raft::state_machine::{SharedState, StateMachineStore};
use detcd_server::raft::store::{open_stores, StoreConfig};
use detcd_server::raft::types::{MemberId, MemberNode, TypeConfig};
use detcd_server::storage::SimDisk;
use futures::{StreamExt, TryStreamExt};
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use openraft_rt::WatchReceiver;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type NodeRaft = Raft<TypeConfig, StateMachineStore>;

/// Bound on every wait for the cluster to reach a condition.
const WAIT: Duration = Duration::from_secs(30);

fn config() -> Arc<Config> {
    let config = Config {
        cluster_name: "detcd-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        // The snapshot and its installation must fit in this (3/4 of it).
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(300),
        max_in_snapshot_log_to_keep: 0,
        // A small chunk size, so the snapshot travels in many chunks.
        snapshot_max_chunk_size: 4096,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

/// Addresses nothing listens on now: bound to port 0, then released.
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

fn member(id: MemberId, addr: SocketAddr) -> MemberNode {
    MemberNode { name: format!("m{id}"), peer_urls: vec![format!("http://{addr}")], client_urls: vec![] }
}

struct Node {
    id: MemberId,
    raft: NodeRaft,
    shared: Arc<SharedState>,
    server: PeerServer,
}

impl Node {
    /// Opens the member's storage on `disk` and starts its raft and its
    /// peer server on `addr`.
    async fn start(id: MemberId, addr: SocketAddr, disk: &SimDisk) -> Node {
        let (log, sm) =
            open_stores(Arc::new(disk.clone()), Path::new("/data"), StoreConfig::default(), Arc::new(NodeClock::new()))
                .expect("open the stores");
        let shared = sm.shared();
        let network = PeerNetworkFactory::<SnapshotData>::new(id, PeerNetConfig::default());
        let raft = DetcdRuntime::scope(id, Raft::new(id, config(), network, log, sm)).await.expect("start raft");
        let server =
            PeerServer::start(raft.clone(), addr, PeerServeConfig::default()).await.expect("bind peer address");
        Node { id, raft, shared, server }
    }

    async fn stop(self) {
        self.raft.shutdown().await.expect("raft shutdown");
        self.server.stop(Duration::from_secs(5)).await.expect("peer server stop");
    }

    fn applied(&self) -> u64 {
        self.shared.applied_index()
    }

    /// (applied index, revision, hash) read together.
    fn fingerprint(&self) -> (u64, i64, u32) {
        let state = self.shared.state();
        (self.shared.applied_index(), state.revision(), state.hash())
    }
}

fn put(key: String, value: String) -> Command {
    Command::Put(PutRequest { key: key.into(), value: value.into(), ..Default::default() })
}

/// The one member all live members agree leads, once it takes writes.
async fn leader(nodes: &[&Node]) -> MemberId {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let leaders: Vec<Option<MemberId>> =
            nodes.iter().map(|n| n.raft.metrics().borrow_watched().current_leader).collect();
        if let Some(Some(l)) = leaders.first() {
            let is_leader =
                nodes.iter().any(|n| n.id == *l && n.raft.metrics().borrow_watched().state == ServerState::Leader);
            if is_leader && leaders.iter().all(|x| x == &Some(*l)) {
                // A new leader takes writes once a quorum acknowledged it
                // (its lease); until then it answers LeaseExpired.
                let node = nodes.iter().find(|n| n.id == *l).unwrap();
                node.raft.wait(Some(WAIT)).leader_with_quorum_acked(None, "leader lease").await.expect("leader lease");
                return *l;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no agreed leader within {WAIT:?}: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `k{i}` = `v{i}` for `i` in `range` through `raft`, 16 at a time;
/// checks each put got its own revision. Returns the last log index.
async fn write(raft: &NodeRaft, range: std::ops::Range<u32>) -> u64 {
    let n = range.len();
    let writes = futures::stream::iter(range.map(|i| raft.client_write(put(format!("k{i}"), format!("v{i}")))))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>();
    let responses = tokio::time::timeout(WAIT, writes).await.expect("writes within the bound").expect("writes");
    assert_eq!(responses.len(), n);
    let mut revisions: Vec<i64> = responses
        .iter()
        .map(|r| match &r.data.result {
            Ok(Response::Put(p)) => p.revision,
            other => panic!("put answered {other:?}"),
        })
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), n, "every put has its own revision");
    responses.iter().map(|r| r.log_id.index).max().unwrap()
}

/// Waits until every node applied `index`, then checks they all have the
/// same state at the same applied index.
async fn converged(nodes: &[&Node], index: u64) -> (u64, i64, u32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let applied: Vec<u64> = nodes.iter().map(|n| n.applied()).collect();
        let at = applied[0];
        if at >= index && applied.iter().all(|&a| a == at) {
            let prints: Vec<_> = nodes.iter().map(|n| n.fingerprint()).collect();
            if prints.iter().all(|p| p.0 == at) {
                assert!(prints.iter().all(|p| p == &prints[0]), "members differ at index {at}: {prints:?}");
                return prints[0];
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "not converged on {index} within {WAIT:?}: {applied:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_replicate_fail_over_and_catch_up() {
    let addrs = free_addrs(3);
    let ids: Vec<MemberId> = vec![1, 2, 3];
    let disks: BTreeMap<MemberId, SimDisk> = ids.iter().map(|&id| (id, SimDisk::new())).collect();
    let mut nodes: BTreeMap<MemberId, Node> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        nodes.insert(id, Node::start(id, addrs[i], &disks[&id]).await);
    }
    let members: BTreeMap<MemberId, MemberNode> =
        ids.iter().enumerate().map(|(i, &id)| (id, member(id, addrs[i]))).collect();
    nodes[&1].raft.initialize(members).await.expect("initialize");

    // A leader, and 10,000 writes through it, applied alike everywhere.
    let first = leader(&nodes.values().collect::<Vec<_>>()).await;
    let last = write(&nodes[&first].raft, 0..10_000).await;
    let (_, revision, _) = converged(&nodes.values().collect::<Vec<_>>(), last).await;
    assert_eq!(revision, 1 + 10_000, "a fresh store is at revision 1; each put adds one");

    // The leader stops; the other two elect one of themselves and go on.
    let old = nodes.remove(&first).unwrap();
    let old_addr = old.server.addr();
    let old_applied = old.applied();
    old.stop().await;
    let rest: Vec<&Node> = nodes.values().collect();
    let second = leader(&rest).await;
    assert_ne!(second, first, "a stopped member cannot lead");
    let last = write(&nodes[&second].raft, 10_000..11_000).await;
    let (_, revision, _) = converged(&nodes.values().collect::<Vec<_>>(), last).await;
    assert_eq!(revision, 1 + 11_000);
    // The new leader compacts its log past what the old one has (a
    // snapshot every 300 entries, no log kept behind it).
    let purged = nodes[&second]
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.purged.is_some_and(|l| l.index > old_applied), "log purged past the stopped member")
        .await;
    assert!(purged.is_ok(), "{purged:?}");

    // The old leader comes back on its own data and catches up.
    let back = Node::start(first, old_addr, &disks[&first]).await;
    assert!(back.applied() <= old_applied + 1, "restarted at {} (stopped at {old_applied})", back.applied());
    nodes.insert(first, back);
    let (at, revision, _) = converged(&nodes.values().collect::<Vec<_>>(), last).await;
    assert_eq!((at, revision), (last, 1 + 11_000));
    let snapshot = nodes[&first].raft.metrics().borrow_watched().snapshot.map(|l| l.index);
    assert!(snapshot.unwrap_or(0) > old_applied, "caught up by a snapshot: {snapshot:?}");

    // And it takes part in what follows.
    let leader_now = leader(&nodes.values().collect::<Vec<_>>()).await;
    let last = write(&nodes[&leader_now].raft, 11_000..11_100).await;
    let (_, revision, _) = converged(&nodes.values().collect::<Vec<_>>(), last).await;
    assert_eq!(revision, 1 + 11_100);

    for (_, node) in nodes {
        node.stop().await;
    }
}
