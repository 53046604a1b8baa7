//! A single member assembled by `Node::start` on real tokio (peer RPC on
//! 127.0.0.1) over a simulated disk: it elects itself, applies writes,
//! serves linearizable reads, expires leases on its own clock, and comes
//! back with its data after a restart.

use bytes::Bytes;
use detcd_core::request::{Command, LeaseGrantRequest, PutRequest, RangeRequest, Response};
use detcd_server::clock::NodeClock;
use detcd_server::node::{Node, NodeConfig};
use detcd_server::storage::{Disk, SimDisk};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn start(disk: &SimDisk, addr: SocketAddr) -> Node {
    let config = NodeConfig::single("default", PathBuf::from("/data"), addr);
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    Node::start(config, disk, Arc::new(NodeClock::new()), 7).await.expect("node starts")
}

/// Polls `cond` until it holds (bounded by `WAIT`).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn get(node: &Node, key: &str) -> Option<Bytes> {
    let req = RangeRequest { key: Bytes::copy_from_slice(key.as_bytes()), ..Default::default() };
    node.shared().state().range(&req).unwrap().kvs.into_iter().next().map(|kv| kv.value)
}

fn put(key: &str, value: &str, lease: i64) -> Command {
    Command::Put(PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        lease,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_member_writes_reads_expires_leases_and_restarts() {
    let disk = SimDisk::new();
    let addr = free_addr();
    let node = start(&disk, addr).await;
    assert_eq!(
        format!("{:x}", node.id()),
        format!("{:x}", detcd_server::cluster::member_id(&[format!("http://{addr}")], "etcd-cluster"))
    );
    until("leadership", || node.is_leader()).await;

    let result = node.write(put("foo", "bar", 0)).await.expect("put applies");
    assert_eq!(result.revision, 2, "a fresh store is at 1; the first put makes 2");
    node.linearize().await.expect("read index");
    assert_eq!(get(&node, "foo").as_deref(), Some(&b"bar"[..]));

    // A lease expires on the leader's clock: jump it past the TTL.
    let granted = node.write(Command::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 })).await.unwrap();
    let Ok(Response::LeaseGrant(lease)) = granted.result else { panic!("grant failed: {granted:?}") };
    node.write(put("leased", "v", lease.id)).await.unwrap().result.unwrap();
    until("the lessor to be promoted", || node.shared().state().lessor().is_primary()).await;
    assert!(get(&node, "leased").is_some());
    node.clock().jump(6_000);
    until("the expired lease's key to go", || get(&node, "leased").is_none()).await;
    assert!(node.shared().state().lessor().get(lease.id).is_none());

    node.shutdown().await;
    let node = start(&disk, addr).await;
    until("leadership after restart", || node.is_leader()).await;
    node.linearize().await.expect("read index after restart");
    assert_eq!(get(&node, "foo").as_deref(), Some(&b"bar"[..]), "acknowledged write survives a restart");
    let r = node.write(put("foo", "baz", 0)).await.unwrap();
    assert!(r.revision > result.revision);
    node.shutdown().await;
}
