//! Replicated put throughput of a 3-member cluster in one process, on real
//! tokio, over the peer RPC on 127.0.0.1, each member on `RealDisk` in its
//! own temporary directory (so every WAL fsync is real). Run by hand (see
//! docs/PERF.md):
//!
//! ```sh
//! cargo run --release -p detcd-bench --bin replicated_put -- [N] [DIR]
//! ```
//!
//! Puts `N` (default 5,000) distinct keys of 256-byte values through the
//! leader's `Node::write`, first from 1 client, then from 64 concurrent
//! clients (tasks), and prints ops/s and the p50/p99 latency of each. The
//! data directories go under `DIR` (default: the system temp dir) and are
//! removed at the end.

use detcd_core::request::{Command, PutRequest};
use detcd_server::clock::NodeClock;
use detcd_server::node::{Node, NodeConfig};
use detcd_server::storage::{Disk, RealDisk};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE: usize = 256;
/// Bound on the election and on the whole of one run.
const WAIT: Duration = Duration::from_secs(120);

async fn three_members(base: &std::path::Path) -> Vec<Node> {
    let listeners: Vec<std::net::TcpListener> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")).collect();
    let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let initial: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("m{i}=http://{a}")).collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut config = NodeConfig::single(&format!("m{i}"), base.join(format!("m{i}")), addrs[i]);
        config.initial_cluster = initial.join(",");
        let disk: Arc<dyn Disk> = Arc::new(RealDisk);
        drop(listener);
        let node = Node::start(config, disk, Arc::new(NodeClock::new()), i as u64 + 1).await.expect("member starts");
        nodes.push(node);
    }
    nodes
}

/// The index of the member all agree leads, once it accepts a write.
async fn leader(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no leader within {WAIT:?}");
        if let Some(i) = nodes.iter().position(|n| n.is_leader()) {
            let id = nodes[i].id();
            if nodes.iter().all(|n| n.current_leader() == Some(id))
                && nodes[i].write(put("warmup".into())).await.is_ok()
            {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn put(key: String) -> Command {
    Command::Put(PutRequest { key: key.into(), value: vec![0x5a_u8; VALUE].into(), ..Default::default() })
}

/// `n` puts from `clients` concurrent tasks through `node`: (elapsed,
/// sorted latencies).
async fn run(node: &Arc<Node>, run: &str, n: usize, clients: usize) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let node = node.clone();
            let keys: Vec<String> = (c..n).step_by(clients).map(|i| format!("{run}/{i:08}")).collect();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(keys.len());
                for key in keys {
                    let t = Instant::now();
                    let done = node.write(put(key)).await.expect("put");
                    assert!(done.result.is_ok(), "put answered {:?}", done.result);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        latencies.extend(tokio::time::timeout(WAIT, task).await.expect("within the bound").expect("client task"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    (elapsed, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse().expect("N is a number")).unwrap_or(5_000);
    let base = args.next().map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new().prefix("detcd-replicated-put-").tempdir_in(&base).expect("temp dir");
    println!("data dirs under {} , {n} puts of {VALUE}-byte values per run", dir.path().display());
    let nodes = three_members(dir.path()).await;
    let leader_at = leader(&nodes).await;
    let nodes: Vec<Arc<Node>> = nodes.into_iter().map(Arc::new).collect();
    let leader = &nodes[leader_at];
    for clients in [1, 64] {
        let (elapsed, lat) = run(leader, &format!("c{clients}"), n, clients).await;
        println!(
            "{clients:>3} client(s): {:>7.0} ops/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({n} puts in {:.2} s)",
            n as f64 / elapsed.as_secs_f64(),
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            elapsed.as_secs_f64()
        );
    }
    for node in nodes {
        Arc::into_inner(node).expect("no client holds a member").shutdown().await;
    }
    dir.close().expect("remove the data dirs");
}
