//! A 3-member cluster of real `detcd` processes on 127.0.0.1, each with its
//! own temporary data dir:
//!
//! - the members find each other from `--initial-cluster` and serve puts;
//!   200 puts go through all three (followers forward to the leader);
//! - the leader is SIGKILLed; the two others elect a new leader and take
//!   100 more puts;
//! - the killed member restarts on its data dir with the same flags,
//!   catches up, and then every acknowledged put is on all three members
//!   (serializable reads, so each member answers from its own state).

mod process;

use detcd_net::etcd::etcdserverpb::kv_client::KvClient;
use detcd_net::etcd::etcdserverpb::maintenance_client::MaintenanceClient;
use detcd_net::etcd::etcdserverpb::{PutRequest, RangeRequest, StatusRequest};
use process::Detcd;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

const WAIT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const PREFIX: &str = "proc/";
/// The end of the range of keys under `PREFIX` (`'/' + 1`).
const PREFIX_END: &str = "proc0";
const TOKEN: &str = "detcd-processes";

/// A free port below the ephemeral range, held until the member starts, so
/// no outgoing connection takes it in between.
fn bind_below_ephemeral() -> std::net::TcpListener {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize
        + std::process::id() as usize;
    (0..2000)
        .map(|i| 10_000 + (seed + i * 7919) % 22_000)
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port as u16)).ok())
        .expect("a free port below 32000")
}

fn url(l: &std::net::TcpListener) -> String {
    format!("http://{}", l.local_addr().unwrap())
}

/// One member's settings; the same on every start.
struct Member {
    name: String,
    data_dir: PathBuf,
    peer: String,
    client: String,
}

impl Member {
    fn args(&self, initial_cluster: &str) -> Vec<String> {
        let flags = [
            ("--name", self.name.as_str()),
            ("--data-dir", self.data_dir.to_str().unwrap()),
            ("--listen-peer-urls", &self.peer),
            ("--initial-advertise-peer-urls", &self.peer),
            ("--listen-client-urls", &self.client),
            ("--advertise-client-urls", &self.client),
            ("--initial-cluster", initial_cluster),
            ("--initial-cluster-token", TOKEN),
            ("--initial-cluster-state", "new"),
        ];
        flags.iter().flat_map(|(f, v)| [f.to_string(), v.to_string()]).collect()
    }

    fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel())
    }

    fn maintenance(&self) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel())
    }

    /// A lazily connected channel; call inside the runtime.
    fn channel(&self) -> Channel {
        let ep = Endpoint::from_shared(self.client.clone()).unwrap();
        ep.connect_timeout(Duration::from_secs(1)).timeout(REQUEST_TIMEOUT).connect_lazy()
    }
}

fn logs(procs: &mut [Option<Detcd>]) -> String {
    let mut out = String::new();
    for (i, p) in procs.iter_mut().enumerate() {
        if let Some(p) = p {
            out.push_str(&format!("--- m{i} ---\n{}\n", p.log()));
        }
    }
    out
}

/// Retries `op` every 50 ms until it returns `Some`, within `WAIT`.
async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    procs: &mut [Option<Detcd>],
    mut op: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = op().await {
            return v;
        }
        for p in procs.iter_mut().flatten() {
            p.assert_running();
        }
        assert!(Instant::now() < deadline, "no {what} within {WAIT:?}; logs:\n{}", logs(procs));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put(kv: &mut KvClient<Channel>, key: &str, value: &str) -> bool {
    let req = PutRequest { key: key.to_owned().into(), value: value.to_owned().into(), ..Default::default() };
    kv.put(req).await.is_ok()
}

/// Everything under `PREFIX` on this member, from its own state.
async fn serializable_range(kv: &mut KvClient<Channel>) -> Option<BTreeMap<String, String>> {
    let req =
        RangeRequest { key: PREFIX.into(), range_end: PREFIX_END.into(), serializable: true, ..Default::default() };
    let resp = kv.range(req).await.ok()?.into_inner();
    let kvs = resp.kvs.into_iter();
    Some(
        kvs.map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), String::from_utf8_lossy(&kv.value).into_owned()))
            .collect(),
    )
}

/// `(member ID, leader ID)` from a member's Maintenance Status.
async fn status(m: &Member) -> Option<(u64, u64)> {
    let resp = m.maintenance().status(StatusRequest {}).await.ok()?.into_inner();
    Some((resp.header?.member_id, resp.leader))
}

/// Puts `count` keys from `first` on, round-robin through `via`, each retried
/// (the same key and value) until acknowledged; records the acknowledged ones.
async fn write_keys(
    members: &[Member],
    via: &[usize],
    first: usize,
    count: usize,
    acked: &mut BTreeMap<String, String>,
    procs: &mut [Option<Detcd>],
) {
    let mut clients: Vec<KvClient<Channel>> = via.iter().map(|&i| members[i].kv()).collect();
    for n in first..first + count {
        let (key, value) = (format!("{PREFIX}{n:05}"), format!("value-{n}"));
        let c = n % clients.len();
        let kv = &mut clients[c];
        until(&format!("ack of put {key} via m{}", via[c]), procs, || {
            let mut kv = kv.clone();
            let (key, value) = (key.clone(), value.clone());
            async move { put(&mut kv, &key, &value).await.then_some(()) }
        })
        .await;
        acked.insert(key, value);
    }
}

#[test]
fn three_processes_survive_a_leader_sigkill_and_the_restarted_member_catches_up() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut listeners: Vec<(std::net::TcpListener, std::net::TcpListener)> =
        (0..3).map(|_| (bind_below_ephemeral(), bind_below_ephemeral())).collect();
    let members: Vec<Member> = listeners
        .iter()
        .enumerate()
        .map(|(i, (p, c))| Member {
            name: format!("m{i}"),
            data_dir: tmp.path().join(format!("m{i}.detcd")),
            peer: url(p),
            client: url(c),
        })
        .collect();
    let initial: Vec<String> = members.iter().map(|m| format!("{}={}", m.name, m.peer)).collect();
    let initial = initial.join(",");
    let mut procs: Vec<Option<Detcd>> = Vec::new();
    for (m, (peer, client)) in members.iter().zip(listeners.drain(..)) {
        drop((peer, client));
        procs.push(Some(Detcd::start(&m.args(&initial))));
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Up: a put through each member is acknowledged.
        for m in &members {
            let kv = m.kv();
            until(&format!("first put via {}", m.name), &mut procs, || {
                let mut kv = kv.clone();
                async move { put(&mut kv, "probe", "up").await.then_some(()) }
            })
            .await;
        }
        let mut acked = BTreeMap::new();
        write_keys(&members, &[0, 1, 2], 0, 200, &mut acked, &mut procs).await;
        let phase1 = started.elapsed();

        // The leader, as all three members see it.
        let leader_id = until("agreed leader", &mut procs, || async {
            let mut seen = Vec::new();
            for m in &members {
                seen.push(status(m).await?);
            }
            let leader = seen[0].1;
            (leader != 0 && seen.iter().all(|s| s.1 == leader)).then_some((leader, seen))
        })
        .await;
        let (leader_id, ids) = leader_id;
        let ids: Vec<u64> = ids.iter().map(|s| s.0).collect();
        let leader = ids.iter().position(|&id| id == leader_id).expect("the leader is a member");
        procs[leader].take().unwrap().sigkill();
        let killed_at = Instant::now();
        let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

        // The survivors elect a new leader among themselves and take writes.
        let new_leader = until("new leader", &mut procs, || async {
            let mut leaders = Vec::new();
            for &i in &survivors {
                leaders.push(status(&members[i]).await?.1);
            }
            let l = leaders[0];
            (l != 0 && l != leader_id && leaders.iter().all(|&x| x == l)).then_some(l)
        })
        .await;
        assert!(survivors.iter().any(|&i| ids[i] == new_leader), "new leader {new_leader:x} is a survivor");
        let kv = members[survivors[0]].kv();
        until("put after the leader's death", &mut procs, || {
            let mut kv = kv.clone();
            async move { put(&mut kv, "probe", "after-kill").await.then_some(()) }
        })
        .await;
        let failover = killed_at.elapsed();
        write_keys(&members, &survivors, 200, 100, &mut acked, &mut procs).await;

        // The killed member restarts on its data dir and catches up.
        procs[leader] = Some(Detcd::start(&members[leader].args(&initial)));
        let restarted_at = Instant::now();
        let last = acked.keys().next_back().unwrap().clone();
        let mut kv = members[leader].kv();
        until(&format!("{last} on the restarted m{leader}"), &mut procs, || {
            let mut kv = kv.clone();
            let last = last.clone();
            async move {
                let req = RangeRequest { key: last.into(), serializable: true, ..Default::default() };
                let resp = kv.range(req).await.ok()?.into_inner();
                (resp.kvs.len() == 1).then_some(())
            }
        })
        .await;
        let catch_up = restarted_at.elapsed();

        // Every acknowledged put on every member (a follower may still be
        // applying the last commits, so poll, bounded).
        for m in &members {
            let kv = m.kv();
            let got = until(&format!("all acknowledged keys on {}", m.name), &mut procs, || {
                let mut kv = kv.clone();
                let acked = &acked;
                async move {
                    let got = serializable_range(&mut kv).await?;
                    acked.iter().all(|(k, v)| got.get(k) == Some(v)).then_some(got)
                }
            })
            .await;
            assert_eq!(got, acked, "{} holds exactly the acknowledged puts", m.name);
        }
        assert_eq!(serializable_range(&mut kv).await.unwrap().len(), 300);
        eprintln!(
            "killed m{leader} (leader {leader_id:x}); 200 puts up in {phase1:?}, failover {failover:?}, \
             catch-up {catch_up:?}, total {:?}",
            started.elapsed()
        );
    });
    drop(procs);
}
