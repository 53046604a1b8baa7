//! The real etcdctl 3.4's cluster and maintenance commands (`member list`,
//! `endpoint status|health|hashkv`, `alarm list`, `defrag`, `move-leader`,
//! `snapshot save`) against detcd and against the real etcd 3.4.
//!
//! IDs, addresses, versions, database sizes and raft terms and indexes
//! differ between two servers, so the outputs are compared by shape (the
//! same lines, the same fields, the same fixed text, the same kind of value
//! in each field), and detcd's own values are checked on their own.

use detcd_server::cluster::member_id;
use detcd_tests::{start_cluster, until, Detcd, Etcd};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bounds every wait on a server.
const WAIT: Duration = Duration::from_secs(20);

/// What one etcdctl run printed, with its whole standard error (`endpoint
/// health` reports there).
#[derive(Debug, Clone)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn errors(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("Error:")).collect()
    }

    /// stdout and the health lines of stderr (not its JSON log lines).
    fn text(&self) -> String {
        let health = self.stderr.lines().filter(|l| l.contains("is healthy") || l.contains("is unhealthy"));
        let mut text = self.stdout.clone();
        for line in health {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Runs the real etcdctl (API v3) against `endpoints` (comma-separated).
fn etcdctl(endpoints: &str, args: &[&str]) -> Run {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("etcdctl (apt-get install etcd-client) runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What kind of value a field holds, for values that differ between two
/// servers; other text as it is.
fn kind(field: &str) -> String {
    let f = field.trim();
    if let Some(at) = f.find("took = ") {
        return format!("{}<duration>", &f[..at + 7]);
    }
    // Decimal numbers and hex IDs (an ID may happen to have no letter).
    if !f.is_empty() && f.bytes().all(|b| b.is_ascii_hexdigit()) {
        return "<number>".to_string();
    }
    if f.starts_with("http://127.0.0.1:") {
        return "<url>".to_string();
    }
    if let Some((n, unit)) = f.split_once(' ') {
        if n.parse::<f64>().is_ok() && ["B", "kB", "MB", "GB"].contains(&unit) {
            return "<size>".to_string();
        }
    }
    if f.starts_with("3.4.") && f[4..].bytes().all(|b| b.is_ascii_digit()) {
        return "<version>".to_string();
    }
    f.to_string()
}

fn json_shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(json_shape).collect()),
        Value::Number(_) => Value::String("<number>".to_string()),
        Value::String(s) => Value::String(kind(s)),
        other => other.clone(),
    }
}

/// The shape of an output: per line its fields (`, `-separated, or table
/// cells), each reduced to its kind; JSON lines to their structure.
fn shape(text: &str, endpoint: SocketAddr) -> Vec<Vec<String>> {
    let text = text.replace(&endpoint.to_string(), "<endpoint>");
    text.lines()
        .map(|line| {
            if line.starts_with('{') || line.starts_with('[') {
                let v: Value = serde_json::from_str(line).expect("etcdctl -w json prints JSON");
                return vec![json_shape(&v).to_string()];
            }
            if line.starts_with('+') {
                // A table border: its column count.
                return vec![format!("border of {} columns", line.matches('+').count() - 1)];
            }
            let fields: Vec<&str> =
                if line.starts_with('|') { line.split('|').collect() } else { line.split(", ").collect() };
            fields.into_iter().map(kind).collect()
        })
        .collect()
}

const COMMANDS: &[&[&str]] = &[
    &["member", "list"],
    &["member", "list", "-w", "table"],
    &["member", "list", "-w", "json"],
    &["endpoint", "status"],
    &["endpoint", "status", "-w", "table"],
    &["endpoint", "status", "-w", "json"],
    &["endpoint", "health"],
    &["endpoint", "hashkv"],
    &["endpoint", "hashkv", "-w", "json"],
    &["alarm", "list"],
    &["defrag"],
    &["move-leader", "1234"],
    &["endpoint", "hashkv", "--rev=100"],
    &["compaction", "2"],
    &["endpoint", "hashkv", "--rev=2"],
    &["endpoint", "hashkv", "-w", "json"],
    // Last: etcd accepts it and loses its quorum.
    &["member", "add", "m2", "--peer-urls=http://127.0.0.1:1"],
];

fn fields(line: &str) -> Vec<&str> {
    line.trim_end_matches('\n').split(", ").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_cluster_commands_match_real_etcd_in_shape() {
    let detcd = Detcd::start().await;
    let etcd = Etcd::start();
    let (d, e) = (detcd.client, etcd.client);
    let put = tokio::task::spawn_blocking(move || {
        (etcdctl(&d.to_string(), &["put", "k", "v"]).code, etcdctl(&e.to_string(), &["put", "k", "v"]).code)
    });
    assert_eq!(put.await.unwrap(), (0, 0));
    let runs = tokio::task::spawn_blocking(move || {
        COMMANDS
            .iter()
            .map(|args| (*args, etcdctl(&e.to_string(), args), etcdctl(&d.to_string(), args)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();

    // The oracle really answered.
    assert!(runs[0].1.stdout.contains(", started, default, "), "{:?}", runs[0].1);
    assert!(runs[6].1.text().contains("is healthy"), "{:?}", runs[6].1);
    for (args, want, got) in &runs[..11] {
        eprintln!("etcdctl {}: exit {} {:?}", args.join(" "), want.code, want.text());
        assert_eq!((got.code, want.code), (0, 0), "etcdctl {} fails: {got:?}", args.join(" "));
        assert_eq!(shape(&got.text(), d), shape(&want.text(), e), "etcdctl {} differs in shape", args.join(" "));
    }
    // move-leader to a stranger: etcd's error, as etcd.
    let (_, want, got) = &runs[11];
    assert_eq!((got.code, got.errors()), (want.code, want.errors()));
    assert_eq!(want.errors(), ["Error: etcdserver: bad leader transferee"]);
    // Membership changes are refused (etcd accepts them).
    let (_, _, got) = &runs[16];
    assert_eq!(got.code, 1);
    assert!(got.errors()[0].contains("code = Unimplemented desc = detcd: member add is not supported yet"), "{got:?}");

    // HashKV's errors and compaction point, as etcd's.
    for (args, want, got) in &runs[12..15] {
        assert_eq!((got.code, got.errors()), (want.code, want.errors()), "etcdctl {}", args.join(" "));
    }
    assert_eq!(runs[12].1.errors(), ["Error: etcdserver: mvcc: required revision is a future revision"]);
    assert_eq!(runs[14].1.errors(), ["Error: etcdserver: mvcc: required revision has been compacted"]);
    let (_, want, got) = &runs[15];
    assert_eq!(shape(&got.text(), d), shape(&want.text(), e));
    for out in [want, got] {
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v[0]["HashKV"]["compact_revision"], 2, "{out:?}");
    }

    // detcd's own values.
    let id = detcd.node.id();
    let hex = format!("{id:x}");
    let client_url = format!("http://{d}");
    let member = fields(&runs[0].2.stdout);
    assert_eq!(member.len(), 6, "{member:?}");
    assert_eq!((member[0], member[1], member[2]), (hex.as_str(), "started", "default"));
    assert_eq!(member_id(&[member[3].to_string()], "etcd-cluster"), id, "the ID is etcd's, from the peer URL");
    assert_eq!((member[4], member[5]), (client_url.as_str(), "false"));

    let status = fields(&runs[3].2.stdout);
    // (The compaction at 2 since then removed nothing from the history.)
    let (state_revision, state_hash) = {
        let state = detcd.node.shared().state();
        (state.revision(), state.hash_kv(0).unwrap().hash)
    };
    assert_eq!(&status[..3], [d.to_string().as_str(), hex.as_str(), "3.4.0"]);
    assert_eq!(&status[4..6], ["true", "false"], "leader, not a learner");
    let n = |s: &str| s.parse::<u64>().unwrap();
    assert!(n(status[6]) >= 1 && n(status[7]) >= 2, "term and index: {status:?}");
    assert_eq!(status[7], status[8], "everything committed is applied");
    assert_eq!(status[9], "", "no errors");

    let json: Value = serde_json::from_str(&runs[5].2.stdout).unwrap();
    let s = &json[0]["Status"];
    assert_eq!(s["leader"].as_u64(), Some(id));
    assert_eq!(s["header"]["member_id"].as_u64(), Some(id));
    assert_eq!(s["header"]["cluster_id"].as_u64(), Some(detcd.node.cluster_id()));
    assert_eq!(s["header"]["revision"].as_i64(), Some(state_revision));
    assert!(s["dbSize"].as_i64().unwrap() > 0 && s["dbSize"] == s["dbSizeInUse"]);

    assert_eq!(runs[7].2.stdout, format!("{d}, {state_hash}\n"));
    let hashkv: Value = serde_json::from_str(&runs[8].2.stdout).unwrap();
    assert_eq!(hashkv[0]["HashKV"]["compact_revision"], -1, "not compacted, as etcd says it");
    assert_eq!(runs[9].2.stdout, "", "no alarms");
    assert_eq!(runs[10].2.stdout, format!("Finished defragmenting etcd member[{d}]\n"));
}

/// The detcd snapshot in a saved file: the snapshot's header gives its
/// length; zero padding then the SHA-256 of everything before it follow.
fn check_saved_snapshot(path: &Path) -> detcd_core::State {
    let bytes = std::fs::read(path).expect("the snapshot file exists");
    assert_eq!(bytes.len() % 512, 32, "page-aligned data and the hash, as etcdctl checks");
    let (data, sha) = bytes.split_at(bytes.len() - 32);
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let prefix = path.with_extension("data");
    std::fs::write(&prefix, data).unwrap();
    let sum = Command::new("sha256sum").arg(&prefix).output().expect("sha256sum runs");
    let _ = std::fs::remove_file(&prefix);
    assert_eq!(String::from_utf8_lossy(&sum.stdout).split(' ').next(), Some(hex.as_str()), "the trailing SHA-256");
    let len = 24 + u64::from_le_bytes(data[12..20].try_into().unwrap()) as usize;
    assert!(data[len..].iter().all(|&b| b == 0), "zero padding");
    detcd_core::snapshot::decode(&data[..len]).expect("a detcd snapshot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_snapshot_save_writes_the_state() {
    let detcd = Detcd::start().await;
    let etcd = Etcd::start();
    let dir = std::env::temp_dir().join(format!("detcd-snapshot-{}-{}", std::process::id(), detcd.client.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let (d, e) = (detcd.client.to_string(), etcd.client.to_string());
    let (want_path, got_path) = (dir.join("etcd.db"), dir.join("detcd.db"));
    let (wp, gp) = (want_path.display().to_string(), got_path.display().to_string());
    let big = "x".repeat(100_000); // several chunks
    let (want, got) = tokio::task::spawn_blocking(move || {
        assert_eq!(etcdctl(&d, &["put", "small", "v"]).code, 0);
        assert_eq!(etcdctl(&d, &["put", "big", &big]).code, 0);
        (etcdctl(&e, &["snapshot", "save", &wp]), etcdctl(&d, &["snapshot", "save", &gp]))
    })
    .await
    .unwrap();
    assert_eq!(want.code, 0, "{want:?}");
    assert_eq!(want.stdout, format!("Snapshot saved at {}\n", want_path.display()));
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(got.stdout, format!("Snapshot saved at {}\n", got_path.display()));

    let state = check_saved_snapshot(&got_path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(state.hash(), detcd.node.shared().state().hash(), "the saved state is the member's");
    let req = detcd_core::request::RangeRequest { key: "big".into(), ..Default::default() };
    assert_eq!(state.range(&req).unwrap().kvs[0].value.len(), 100_000);
}

async fn etcdctl_async(endpoints: String, args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || etcdctl(&endpoints, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_list_report_status_and_move_the_leader() {
    let members = start_cluster(3).await;
    let all: Vec<String> = members.iter().map(|m| m.client.to_string()).collect();
    let all = all.join(",");
    until("one leader", || members.iter().filter(|m| m.node.is_leader()).count() == 1).await;
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // member list on the first member: every member, its own client URL.
    let list = etcdctl_async(members[0].client.to_string(), args(&["member", "list"])).await;
    assert_eq!(list.code, 0, "{list:?}");
    let mut ids: Vec<u64> = members.iter().map(|m| m.node.id()).collect();
    ids.sort_unstable();
    let lines: Vec<Vec<&str>> = list.stdout.lines().map(|l| l.split(", ").collect()).collect();
    assert_eq!(lines.len(), 3, "{list:?}");
    for (line, id) in lines.iter().zip(&ids) {
        let m = members.iter().position(|m| m.node.id() == *id).unwrap();
        assert_eq!(line[..3], [format!("{id:x}"), "started".into(), format!("m{m}")], "in ID order: {list:?}");
        let url = format!("http://{}", members[m].client);
        if m == 0 {
            assert_eq!(line[4], url, "a member lists its own client URL");
        } else {
            assert!(line[4].is_empty() || line[4] == url, "another's client URL is unknown or right: {line:?}");
        }
        assert_eq!(line[5], "false");
    }

    // Status of all three: each answers for itself and names the leader (a
    // follower learns it from the leader's first heartbeat).
    let ids_by_endpoint: Vec<Option<u64>> = members.iter().map(|m| Some(m.node.id())).collect();
    let deadline = Instant::now() + WAIT;
    let leader = loop {
        let leader = members.iter().find(|m| m.node.is_leader()).map(|m| m.node.id());
        let status = etcdctl_async(all.clone(), args(&["endpoint", "status", "-w", "json"])).await;
        assert_eq!(status.code, 0, "{status:?}");
        let status: Value = serde_json::from_str(&status.stdout).unwrap();
        let status = status.as_array().unwrap();
        let answering: Vec<Option<u64>> = status.iter().map(|s| s["Status"]["header"]["member_id"].as_u64()).collect();
        assert_eq!(answering, ids_by_endpoint);
        let named: Vec<Option<u64>> = status.iter().map(|s| s["Status"]["leader"].as_u64()).collect();
        match leader {
            Some(l) if named == [Some(l); 3] => break l,
            _ => assert!(Instant::now() < deadline, "the members do not agree on a leader: {named:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let target = members.iter().map(|m| m.node.id()).find(|id| *id != leader).unwrap();

    // A write reaches every member's state: the same KV hash on all three.
    // (Through the leader; etcdctl_forward.rs writes through a follower.)
    let leader_client = members.iter().find(|m| m.node.id() == leader).unwrap().client.to_string();
    let put = etcdctl_async(leader_client, args(&["put", "k", "v"])).await;
    assert_eq!(put.code, 0, "{put:?}");
    until("every member to apply the put", || members.iter().all(|m| m.node.shared().state().revision() == 2)).await;
    let hashkv = etcdctl_async(all.clone(), args(&["endpoint", "hashkv"])).await;
    let hashes: Vec<&str> = hashkv.stdout.lines().map(|l| l.split(", ").nth(1).unwrap()).collect();
    assert_eq!(hashes.len(), 3, "{hashkv:?}");
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashkv:?}");

    // move-leader: etcdctl finds the leader and asks it to hand over.
    let moved = etcdctl_async(all.clone(), args(&["move-leader", &format!("{target:x}")])).await;
    assert_eq!(moved.code, 0, "{moved:?}");
    assert_eq!(moved.stdout, format!("Leadership transferred from {leader:x} to {target:x}\n"));
    until("the target to lead", || members.iter().any(|m| m.node.id() == target && m.node.is_leader())).await;
    let bad = etcdctl_async(all.clone(), args(&["move-leader", "1234"])).await;
    assert_eq!((bad.code, bad.errors()), (1, vec!["Error: etcdserver: bad leader transferee"]));
}
