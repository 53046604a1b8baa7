//! The real etcdctl 3.4 against detcd and against the real etcd 3.4, with
//! the same commands (the seeds' key-value sessions): every command must
//! print the same thing and exit the same way on both.

use detcd_tests::{etcdctl, Detcd, Etcd, Output};
use std::net::SocketAddr;

/// One etcdctl invocation: arguments and optional standard input.
type Step = (&'static [&'static str], Option<&'static str>);

const SESSION: &[Step] = &[
    (&["put", "foo", "bar"], None),
    (&["get", "foo"], None),
    (&["put", "foo", "bar2", "--prev-kv"], None),
    (&["put", "foo1", "bar1"], None),
    (&["put", "foo2", "bar2"], None),
    (&["get", "--prefix", "foo"], None),
    (&["get", "--prefix", "--limit=2", "foo"], None),
    (&["get", "foo", "--print-value-only"], None),
    (&["get", "--prefix", "--keys-only", "foo"], None),
    (&["get", "--from-key", "foo1"], None),
    (&["get", "--prefix", "--rev=2", "foo"], None),
    (&["get", "--prefix", "--rev=3", "foo"], None),
    (&["get", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "foo"], None),
    (&["get", "--prefix", "--consistency=s", "foo"], None),
    (&["get", "foo", "--rev=100"], None),
    (&["get", "missing"], None),
    (&["del", "foo2"], None),
    (&["del", "nothing"], None),
    (&["del", "--prefix", "--prev-kv", "foo"], None),
    (&["get", "--prefix", "foo"], None),
    (&["put", "k", "v1"], None),
    (&["put", "k", "v2"], None),
    (&["put", "k", "v3"], None),
    (&["compaction", "9"], None),
    (&["get", "k", "--rev=8"], None),
    (&["get", "k", "--rev=9"], None),
    (&["compaction", "9"], None),
    (&["txn"], Some("value(\"k\") = \"v3\"\n\nput k v4\nget k\n\nput k failed\n\n")),
    (&["txn"], Some("value(\"k\") = \"nope\"\n\nput k v5\n\nget k\n\n")),
    (&["txn"], Some("create(\"lock\") = \"0\"\n\nput lock me\n\nget lock\n\n")),
    (&["txn"], Some("create(\"lock\") = \"0\"\n\nput lock you\n\nget lock\n\n")),
    (&["get", "k", "-w", "json"], None),
];

fn run(endpoint: SocketAddr, step: &Step) -> Output {
    let mut out = etcdctl(endpoint, step.0, step.1);
    if step.0.contains(&"json") {
        // The header names the member and the term, which differ between
        // two servers; everything else must be equal.
        let mut v: serde_json::Value = serde_json::from_str(&out.stdout).expect("etcdctl -w json prints JSON");
        v.as_object_mut().expect("an object").remove("header");
        out.stdout = v.to_string();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_kv_session_matches_real_etcd() {
    let detcd = Detcd::start().await;
    let etcd = Etcd::start();
    // The oracle's own probe read made no writes, so both start at revision 1.
    let detcd_client = detcd.client;
    let results = tokio::task::spawn_blocking(move || {
        SESSION.iter().map(|step| (step.0, run(etcd.client, step), run(detcd_client, step))).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // The oracle really answered (a comparison of two failures proves nothing).
    assert_eq!(results[1].1.stdout, "foo\nbar\n");
    assert!(results[14].1.errors[0].contains("required revision is a future revision"));
    assert!(results[24].1.errors[0].contains("required revision has been compacted"));
    for (args, want, got) in &results {
        eprintln!("etcdctl {}: exit {} {:?} {:?}", args.join(" "), want.code, want.stdout, want.errors);
        assert_eq!(got, want, "etcdctl {} differs from etcd", args.join(" "));
    }
}
