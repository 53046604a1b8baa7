//! The real etcdctl 3.4's lease commands (the seeds' lease session) against
//! detcd and against the real etcd 3.4; and lease expiry on detcd.
//!
//! Lease IDs differ between two servers, so each server's granted IDs are
//! replaced by placeholders, and the remaining seconds of a TTL may differ
//! by one (they are compared with that tolerance); everything else must be
//! equal.

use detcd_tests::{etcdctl, Detcd, Etcd, Output};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `<id>` in an argument stands for the lease the session granted first.
const SESSION: &[&[&str]] = &[
    &["lease", "grant", "10"],
    &["put", "--lease=<id>", "foo", "bar"],
    &["lease", "timetolive", "<id>"],
    &["lease", "timetolive", "--keys", "<id>"],
    &["lease", "list"],
    &["lease", "keep-alive", "--once", "<id>"],
    &["get", "foo"],
    &["lease", "revoke", "<id>"],
    &["get", "foo"],
    &["lease", "timetolive", "<id>"],
    &["lease", "keep-alive", "--once", "<id>"],
    &["lease", "list"],
    &["lease", "revoke", "1234"],
    &["lease", "timetolive", "1234"],
    &["lease", "timetolive", "--keys", "1234"],
    &["lease", "keep-alive", "--once", "1234"],
    &["put", "--lease=1234", "foo", "bar"],
    &["lease", "grant", "9000000001"],
    // Below the minimum TTL (2 s with etcd's default timings on both).
    &["lease", "grant", "1"],
];

/// A session's output with the server's lease IDs replaced by `<lease0>`,
/// `<lease1>`... in grant order, and each `remaining(Ns)` by
/// `remaining(_s)`, the numbers kept aside.
struct Normalized {
    outputs: Vec<Output>,
    remaining: Vec<i64>,
}

fn run_session(endpoint: SocketAddr) -> Normalized {
    let mut ids: Vec<String> = Vec::new();
    let mut outputs = Vec::new();
    let mut remaining = Vec::new();
    for step in SESSION {
        let first = ids.first().cloned().unwrap_or_default();
        let args: Vec<String> = step.iter().map(|a| a.replace("<id>", &first)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut out = etcdctl(endpoint, &args, None);
        if step[..2] == ["lease", "grant"] && out.code == 0 {
            // "lease 694d5765fc71500b granted with TTL(10s)"
            let id = out.stdout.split_whitespace().nth(1).expect("a granted lease's ID").to_string();
            ids.push(id);
        }
        for (n, id) in ids.iter().enumerate() {
            let placeholder = format!("<lease{n}>");
            out.stdout = out.stdout.replace(id.as_str(), &placeholder);
            out.errors = out.errors.iter().map(|e| e.replace(id.as_str(), &placeholder)).collect();
        }
        out.stdout = take_remaining(&out.stdout, &mut remaining);
        outputs.push(out);
    }
    Normalized { outputs, remaining }
}

/// Replaces every `remaining(Ns)` in `s` by `remaining(_s)`, pushing N.
fn take_remaining(s: &str, numbers: &mut Vec<i64>) -> String {
    const OPEN: &str = "remaining(";
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let end = after.find("s)").expect("remaining(Ns)");
        numbers.push(after[..end].parse().expect("whole seconds"));
        out.push_str(&rest[..at + OPEN.len()]);
        out.push('_');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lease_session_matches_real_etcd() {
    let detcd = Detcd::start().await;
    let etcd = Etcd::start();
    let detcd_client = detcd.client;
    let (want, got) =
        tokio::task::spawn_blocking(move || (run_session(etcd.client), run_session(detcd_client))).await.unwrap();
    for (step, (w, g)) in SESSION.iter().zip(want.outputs.iter().zip(&got.outputs)) {
        eprintln!("etcdctl {}: etcd {w:?}, detcd {g:?}", step.join(" "));
    }
    // The oracle really answered (a comparison of two failures proves nothing).
    let w = &want.outputs;
    assert_eq!(w[0].stdout, "lease <lease0> granted with TTL(10s)\n");
    assert_eq!(w[3].stdout, "lease <lease0> granted with TTL(10s), remaining(_s), attached keys([foo])\n");
    assert_eq!(w[4].stdout, "found 1 leases\n<lease0>\n");
    assert_eq!(w[5].stdout, "lease <lease0> keepalived with TTL(10)\n");
    assert_eq!(w[6].stdout, "foo\nbar\n");
    assert_eq!(w[8].stdout, "");
    assert_eq!(w[9].stdout, "lease <lease0> already expired\n");
    assert_eq!(w[13].stdout, "lease 0000000000001234 already expired\n");
    assert!(w[12].errors[0].contains("requested lease not found"));
    assert!(w[17].errors[0].contains("too large lease TTL"));
    assert_eq!(w[18].stdout, "lease <lease1> granted with TTL(2s)\n");

    for (step, (w, g)) in SESSION.iter().zip(want.outputs.iter().zip(&got.outputs)) {
        assert_eq!(g, w, "etcdctl {} differs from etcd", step.join(" "));
    }
    assert_eq!(got.remaining.len(), want.remaining.len());
    for (w, g) in want.remaining.iter().zip(&got.remaining) {
        assert!((8..=10).contains(w), "etcd's remaining TTL {w}");
        assert!((w - g).abs() <= 1, "remaining TTL: etcd {w}s, detcd {g}s");
    }
}

/// etcdctl against `endpoint`, off the async runtime.
async fn ctl(endpoint: SocketAddr, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        etcdctl(endpoint, &args, None)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_renews_and_an_expired_lease_takes_its_key() {
    let detcd = Detcd::start().await;
    let c = detcd.client;
    let granted = ctl(c, &["lease", "grant", "10"]).await;
    assert_eq!(granted.code, 0, "{granted:?}");
    let id = granted.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(ctl(c, &["put", &format!("--lease={id}"), "foo", "bar"]).await.stdout, "OK\n");

    // 7 of 10 s pass: still alive. A keep-alive restarts the full 10 s, so
    // another 6 s later it is still alive.
    detcd.node.clock().jump(7_000);
    let kept = ctl(c, &["lease", "keep-alive", "--once", &id]).await;
    assert_eq!(kept.stdout, format!("lease {id} keepalived with TTL(10)\n"));
    detcd.node.clock().jump(6_000);
    let ttl = ctl(c, &["lease", "timetolive", "--keys", &id]).await;
    assert!(ttl.stdout.starts_with(&format!("lease {id} granted with TTL(10s), remaining(")), "{ttl:?}");
    assert!(ttl.stdout.ends_with("attached keys([foo])\n"), "{ttl:?}");
    assert_eq!(ctl(c, &["get", "foo"]).await.stdout, "foo\nbar\n");

    // Past the deadline: the leader revokes the lease, its key goes.
    detcd.node.clock().jump(5_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while detcd.node.shared().state().lessor().contains(i64::from_str_radix(&id, 16).unwrap()) {
        assert!(Instant::now() < deadline, "the expired lease was not revoked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ctl(c, &["get", "foo"]).await.stdout, "");
    assert_eq!(ctl(c, &["lease", "timetolive", &id]).await.stdout, format!("lease {id} already expired\n"));
    let gone = ctl(c, &["lease", "keep-alive", "--once", &id]).await;
    assert_eq!(gone.errors, vec!["Error: etcdserver: requested lease not found".to_string()]);
    assert_eq!(ctl(c, &["lease", "list"]).await.stdout, "found 0 leases\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lease_expires_in_real_time() {
    let detcd = Detcd::start().await;
    let c = detcd.client;
    let started = Instant::now();
    // Below the minimum: raised to 2 s.
    let granted = ctl(c, &["lease", "grant", "1"]).await;
    let id = granted.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(granted.stdout, format!("lease {id} granted with TTL(2s)\n"));
    assert_eq!(ctl(c, &["put", &format!("--lease={id}"), "short", "lived"]).await.stdout, "OK\n");
    // At most the TTL plus the new leader's extension (one election
    // timeout), the duty tick and the revoke's commit; bounded generously.
    loop {
        let out = ctl(c, &["get", "short"]).await;
        if out.stdout.is_empty() {
            break;
        }
        assert_eq!(out.stdout, "short\nlived\n");
        assert!(started.elapsed() < Duration::from_secs(15), "the 2 s lease did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(2), "expired early: {:?}", started.elapsed());
    assert_eq!(ctl(c, &["lease", "timetolive", &id]).await.stdout, format!("lease {id} already expired\n"));
}
