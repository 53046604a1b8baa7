//! A 3-member detcd cluster inside madsim, built from the real `Node` (the
//! same storage adapters, openraft runtime seam and peer RPC as production),
//! each member on its own simulated host and simulated disk. It proves the
//! seam: elect, replicate, lose the leader to a partition, fail over, heal,
//! kill and restart a member that lost its unsynced writes, and converge to
//! one state hash. Run with `RUSTFLAGS="--cfg madsim"`; the seed comes from
//! `MADSIM_TEST_SEED`. The full chaos harness builds on this.
#![cfg(madsim)]

use bytes::Bytes;
use detcd_core::request::{Command, LeaseGrantRequest, PutRequest, Response};
use detcd_server::clock::NodeClock;
use detcd_server::node::{Node, NodeConfig, WriteError};
use detcd_server::storage::{Disk, SimDisk};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MEMBERS: usize = 3;

/// The running `Node` of each member, replaced when a member restarts.
type Registry = Arc<Mutex<BTreeMap<usize, Arc<Node>>>>;

fn addr(i: usize) -> SocketAddr {
    format!("10.0.0.{}:2380", i + 1).parse().unwrap()
}

fn config(i: usize) -> NodeConfig {
    let cluster: Vec<String> = (0..MEMBERS).map(|j| format!("m{j}=http://{}", addr(j))).collect();
    let mut c = NodeConfig::single(&format!("m{i}"), PathBuf::from("/data"), addr(i));
    c.initial_cluster = cluster.join(",");
    c.initial_cluster_token = "sim".into();
    c.snapshot_count = 100;
    c
}

struct Cluster {
    handle: Handle,
    hosts: Vec<NodeId>,
    disks: Vec<SimDisk>,
    nodes: Registry,
}

impl Cluster {
    fn start() -> Cluster {
        let handle = Handle::current();
        let nodes: Registry = Arc::default();
        let disks: Vec<SimDisk> = (0..MEMBERS).map(|_| SimDisk::new()).collect();
        let hosts = (0..MEMBERS)
            .map(|i| {
                let (disk, nodes) = (disks[i].clone(), nodes.clone());
                handle
                    .create_node()
                    .name(format!("m{i}"))
                    .ip(addr(i).ip())
                    .init(move || {
                        let (disk, nodes) = (disk.clone(), nodes.clone());
                        async move {
                            let disk: Arc<dyn Disk> = Arc::new(disk);
                            let node = Node::start(config(i), disk, Arc::new(NodeClock::new()), i as u64 + 1)
                                .await
                                .expect("member starts");
                            nodes.lock().unwrap().insert(i, Arc::new(node));
                            // A node's init future must never return, or madsim
                            // stops the node's tasks.
                            std::future::pending::<()>().await;
                        }
                    })
                    .build()
                    .id()
            })
            .collect();
        Cluster { handle, hosts, disks, nodes }
    }

    fn node(&self, i: usize) -> Option<Arc<Node>> {
        self.nodes.lock().unwrap().get(&i).cloned()
    }

    /// Waits until one of `among` leads, and returns it.
    async fn leader(&self, among: &[usize]) -> usize {
        for _ in 0..300 {
            for &i in among {
                if self.node(i).is_some_and(|n| n.is_leader()) {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader among {among:?} within 30 s of simulated time");
    }

    /// Puts `key{from..to}` through the leader among `among`, as a client
    /// does: a member that answers "not the leader" (a new leader not yet
    /// confirmed by a quorum, or one that just stepped down) did not apply
    /// the write, so it is retried on whoever leads then.
    async fn put_many(&self, among: &[usize], from: usize, to: usize) {
        let mut leader = self.leader(among).await;
        for k in from..to {
            let cmd = Command::Put(PutRequest {
                key: Bytes::from(format!("key{k}")),
                value: Bytes::from(format!("value{k}")),
                ..Default::default()
            });
            let mut tries = 0;
            loop {
                let node = self.node(leader).expect("leader is up");
                match node.write(cmd.clone()).await {
                    Ok(r) => {
                        r.result.expect("put applies");
                        break;
                    }
                    Err(WriteError::NotLeader(_)) if tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        leader = self.leader(among).await;
                    }
                    Err(e) => panic!("write of key{k} failed: {e}"),
                }
            }
        }
    }

    /// Waits until every member has applied the same index with the same
    /// state hash, and returns that hash.
    async fn converged(&self) -> u32 {
        for _ in 0..300 {
            let seen: Vec<(u64, u32)> = (0..MEMBERS)
                .filter_map(|i| self.node(i))
                .map(|n| (n.shared().applied_index(), n.shared().state().hash()))
                .collect();
            if seen.len() == MEMBERS && seen.windows(2).all(|w| w[0] == w[1]) {
                return seen[0].1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("members did not converge within 30 s of simulated time");
    }
}

#[madsim::test]
async fn partition_failover_and_crash_restart_converge() {
    let c = Cluster::start();
    let all: Vec<usize> = (0..MEMBERS).collect();
    c.put_many(&all, 0, 200).await;
    let first = c.leader(&all).await;
    c.converged().await;

    // Cut the leader off: the other two elect one of themselves and go on.
    let net = NetSim::current();
    net.clog_node(c.hosts[first]);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != first).collect();
    c.put_many(&rest, 200, 400).await;
    net.unclog_node(c.hosts[first]);
    c.converged().await;

    // Kill a follower, losing whatever its disk had not synced, and restart
    // it on what is left; it must catch up.
    let leader = c.leader(&all).await;
    let victim = (leader + 1) % MEMBERS;
    c.handle.kill(c.hosts[victim]);
    c.nodes.lock().unwrap().remove(&victim);
    c.disks[victim].crash();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    c.put_many(&survivors, 400, 500).await;
    c.handle.restart(c.hosts[victim]);
    let hash = c.converged().await;

    let node = c.node(victim).unwrap();
    let state = node.shared().state();
    assert_eq!(state.store().len(), 500, "every acknowledged key is on the restarted member");
    assert_eq!(state.hash(), hash);
}

/// A follower's write, linearizable read and lease renewal go to the leader
/// over the simulated peer RPC (called on the follower's host, whose
/// address the RPC goes from).
#[madsim::test]
async fn a_follower_forwards_to_the_leader() {
    let c = Cluster::start();
    let all: Vec<usize> = (0..MEMBERS).collect();
    let f = (c.leader(&all).await + 1) % MEMBERS;
    let follower = c.node(f).expect("follower is up");
    let host = c.handle.get_node(c.hosts[f]).expect("the follower's host");
    let calls = host.spawn(async move {
        for _ in 0..100 {
            if follower.current_leader().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let put = Command::Put(PutRequest { key: Bytes::from("k"), value: Bytes::from("v"), ..Default::default() });
        let written = follower.write(put).await.expect("the leader applies the forwarded put");
        written.result.expect("put applies");
        follower.linearize().await.expect("the leader's read index");
        assert!(follower.shared().state().revision() >= written.revision, "the read index covers the put");
        let grant = Command::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 0 });
        let id = match follower.write(grant).await.expect("grant").result {
            Ok(Response::LeaseGrant(r)) => r.id,
            other => panic!("{other:?}"),
        };
        assert_eq!(follower.lease_renew(id).await, Ok(Ok(60)));
        assert_eq!(follower.lease_renew(id + 1).await, Ok(Ok(0)), "an unknown lease");
    });
    calls.await.expect("the follower's calls");
    c.converged().await;
}
