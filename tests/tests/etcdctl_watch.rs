//! `etcdctl watch` against detcd and the real etcd 3.4: history from a past
//! revision, prefixes with previous values, a live watch seeing new writes,
//! and a watch from a compacted revision being canceled.

use detcd_tests::{etcdctl, etcdctl_watch, Detcd, Etcd, Output};
use std::net::SocketAddr;
use std::time::Duration;

fn setup(ep: SocketAddr) {
    for args in [&["put", "foo", "v1"][..], &["put", "foo", "v2"], &["put", "foo1", "x"], &["del", "foo"]] {
        assert_eq!(etcdctl(ep, args, None).code, 0, "{args:?}");
    }
}

/// The watches of the session, each with the number of stdout lines etcd
/// prints for it (the watch then keeps waiting and is stopped).
fn session(ep: SocketAddr) -> Vec<Output> {
    let limit = Duration::from_secs(10);
    let mut outs = vec![
        etcdctl_watch(ep, &["--rev=2", "foo"], 8, limit, || {}),
        etcdctl_watch(ep, &["--rev=2", "--prefix", "--prev-kv", "foo"], 16, limit, || {}),
    ];
    // From the next revision (setup ended at 5), so the writes are seen
    // whether or not the watch is created before they land.
    outs.push(etcdctl_watch(ep, &["--rev=6", "live"], 6, limit, || {
        assert_eq!(etcdctl(ep, &["put", "live", "1"], None).code, 0);
        assert_eq!(etcdctl(ep, &["put", "live", "2"], None).code, 0);
    }));
    assert_eq!(etcdctl(ep, &["compaction", "4"], None).code, 0);
    outs.push(etcdctl_watch(ep, &["--rev=2", "foo"], 1, limit, || {}));
    outs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_watch_session_matches_real_etcd() {
    let detcd = Detcd::start().await;
    let etcd = Etcd::start();
    let ours = detcd.client;
    let (want, got) = tokio::task::spawn_blocking(move || {
        setup(etcd.client);
        setup(ours);
        (session(etcd.client), session(ours))
    })
    .await
    .unwrap();
    // The oracle really answered: history, then the live writes, then the
    // compacted watch canceled with etcd's messages and exit status.
    assert_eq!(want[0].stdout, "PUT\nfoo\nv1\nPUT\nfoo\nv2\nDELETE\nfoo\n");
    assert_eq!(want[2].stdout, "PUT\nlive\n1\nPUT\nlive\n2\n");
    assert_eq!(want[3].code, 5);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "watch {i} differs from etcd");
    }
}
