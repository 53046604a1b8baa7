//! A follower forwards its clients' writes, linearizable reads and lease
//! keep-alives to the leader over the peer RPC, as etcd does: the real
//! etcdctl 3.4 against a follower of a three-member in-process cluster.

use detcd_tests::{start_cluster, until, Member};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real etcdctl (API v3) against `endpoint`, off the runtime.
async fn etcdctl(endpoint: SocketAddr, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--command-timeout=10s")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl (apt-get install etcd-client) runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("etcdctl {args:?} -> {:?}: {stdout}{stderr}", out.status.code());
        Run { code: out.status.code().unwrap_or(-1), stdout, stderr }
    })
    .await
    .unwrap()
}

/// Every member follows the same leader, and one of them is it.
fn settled(members: &[Member]) -> Option<u64> {
    let leader = members.iter().find(|m| m.node.is_leader())?.node.id();
    let known = members.iter().all(|m| m.node.current_leader() == Some(leader));
    known.then_some(leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_writes_reads_and_keep_alives_to_the_leader() {
    let members = start_cluster(3).await;
    until("every member to follow one leader", || settled(&members).is_some()).await;
    let leader = settled(&members).unwrap();
    let follower = members.iter().find(|m| m.node.id() != leader).unwrap().client;
    let leader_client = members.iter().find(|m| m.node.id() == leader).unwrap().client;

    // A put through the follower is applied on every member.
    let put = etcdctl(follower, &["put", "k", "v"]).await;
    assert_eq!((put.code, put.stdout.as_str()), (0, "OK\n"));
    until("every member to apply the put", || members.iter().all(|m| m.node.shared().state().revision() == 2)).await;
    for m in &members {
        let get = etcdctl(m.client, &["get", "k", "--consistency=s"]).await;
        assert_eq!((get.code, get.stdout.as_str()), (0, "k\nv\n"), "on {}", m.client);
    }

    // A linearizable get through the follower (its read index from the
    // leader) sees it.
    let get = etcdctl(follower, &["get", "k"]).await;
    assert_eq!((get.code, get.stdout.as_str()), (0, "k\nv\n"));

    // A lease granted and kept alive through the follower outlives its TTL.
    let grant = etcdctl(follower, &["lease", "grant", "6"]).await;
    assert_eq!(grant.code, 0, "{grant:?}");
    let id = grant.stdout.split_whitespace().nth(1).expect("lease <id> granted").to_string();
    assert_eq!(grant.stdout, format!("lease {id} granted with TTL(6s)\n"));
    let put = etcdctl(follower, &["put", "lk", "lv", &format!("--lease={id}")]).await;
    assert_eq!((put.code, put.stdout.as_str()), (0, "OK\n"));
    let granted = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let kept = etcdctl(follower, &["lease", "keep-alive", "--once", &id]).await;
    assert_eq!((kept.code, kept.stdout), (0, format!("lease {id} keepalived with TTL(6)\n")));
    let renewed = Instant::now();
    // Past the granted TTL, within the renewed one.
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(granted.elapsed())).await;
    if renewed.elapsed() < Duration::from_secs(5) {
        let get = etcdctl(follower, &["get", "lk"]).await;
        assert_eq!((get.code, get.stdout.as_str()), (0, "lk\nlv\n"), "the renewed lease keeps its key");
        let ttl = etcdctl(leader_client, &["lease", "timetolive", &id]).await;
        assert!(ttl.stdout.contains("granted with TTL(6s), remaining("), "{ttl:?}");
    } else {
        eprintln!("too slow to check the renewed lease outlived its granted TTL");
    }

    // An unknown lease: the leader's answer, through the follower.
    let unknown = etcdctl(follower, &["lease", "keep-alive", "--once", "1234"]).await;
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(unknown.stderr.contains("lease not found"), "{unknown:?}");
}
