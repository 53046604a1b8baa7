//! Crash recovery of the `detcd` binary on real files (a temporary data
//! dir, real fsync), one member on 127.0.0.1:
//!
//! - SIGKILL in the middle of a write load from four clients: after a
//!   restart on the same data dir every acknowledged put is there. A killed
//!   process keeps what it wrote to the page cache, so this checks that a
//!   put is in the WAL before it is acknowledged and that recovery replays
//!   it, not that the fsync reached the platter (power loss is not modelled).
//! - A byte flipped in a record in the middle of the WAL segment: the member
//!   refuses to start, exits 1 and names the file and the record's offset.
//! - The last few bytes of the WAL cut off (a torn final record): the member
//!   cuts the torn record, says so, and serves everything before it. Every
//!   WAL append is fsynced before its put is acknowledged, so cutting a
//!   synced record destroys an acknowledged write; this models a write torn
//!   by a crash, which the member must survive, not a write it may lose.

mod process;

use detcd_net::etcd::etcdserverpb::kv_client::KvClient;
use detcd_net::etcd::etcdserverpb::{PutRequest, RangeRequest, RangeResponse};
use process::Detcd;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

const START_WAIT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The WAL record header: length u32 LE, type u8, crc32 u32 LE.
const HEADER_LEN: usize = 9;
const ENTRY: u8 = 2;
const PREFIX: &str = "crash/";
/// The end of the range of keys under `PREFIX` (`'/' + 1`).
const PREFIX_END: &str = "crash0";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One member's settings; the same on every start, so restarts reuse the
/// data dir, the ports and so the member ID.
struct Member {
    _tmp: tempfile::TempDir,
    data_dir: PathBuf,
    peer: String,
    client: String,
}

impl Member {
    fn new() -> Member {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("crash.detcd");
        let peer = format!("http://127.0.0.1:{}", free_port());
        let client = format!("http://127.0.0.1:{}", free_port());
        Member { _tmp: tmp, data_dir, peer, client }
    }

    fn start(&self) -> Detcd {
        let data = self.data_dir.to_str().unwrap();
        let args = [
            "--name",
            "crash",
            "--data-dir",
            data,
            "--listen-peer-urls",
            &self.peer,
            "--initial-advertise-peer-urls",
            &self.peer,
            "--listen-client-urls",
            &self.client,
            "--advertise-client-urls",
            &self.client,
            // Everything stays in the WAL: no snapshot, no purge.
            "--snapshot-count",
            "10000000",
        ];
        Detcd::start(&args)
    }

    /// A client (lazily connected, inside `rt`) to the member's client URL.
    fn kv(&self, rt: &tokio::runtime::Runtime) -> KvClient<Channel> {
        let _in_rt = rt.enter();
        let ep = Endpoint::from_shared(self.client.clone()).unwrap();
        KvClient::new(ep.connect_timeout(Duration::from_secs(1)).timeout(REQUEST_TIMEOUT).connect_lazy())
    }

    /// The only WAL segment (the tests write far less than a segment).
    fn wal_segment(&self) -> PathBuf {
        let dir = self.data_dir.join("member").join("wal");
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        assert_eq!(segments.len(), 1, "WAL segments in {}: {segments:?}", dir.display());
        segments.pop().unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn range_prefix(kv: &mut KvClient<Channel>) -> Result<RangeResponse, tonic::Status> {
    let req = RangeRequest { key: PREFIX.into(), range_end: PREFIX_END.into(), ..Default::default() };
    kv.range(req).await.map(tonic::Response::into_inner)
}

/// Polls (bounded) until a linearizable Range succeeds: the member has
/// elected itself and applied its log.
async fn wait_serving(detcd: &mut Detcd, kv: &mut KvClient<Channel>) {
    let deadline = Instant::now() + START_WAIT;
    loop {
        match range_prefix(kv).await {
            Ok(_) => return,
            Err(e) => {
                if let Some(status) = detcd.try_wait() {
                    panic!("detcd exited with {status} before serving; log:\n{}", detcd.log());
                }
                assert!(Instant::now() < deadline, "detcd does not serve: {e}; log:\n{}", detcd.log());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn put(kv: &mut KvClient<Channel>, key: &str, value: &str) -> Result<(), tonic::Status> {
    let req = PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        ..Default::default()
    };
    kv.put(req).await.map(|_| ())
}

/// Every key under `PREFIX` with its value, and the store's revision.
async fn contents(kv: &mut KvClient<Channel>) -> (BTreeMap<String, String>, i64) {
    let resp = range_prefix(kv).await.expect("range after the restart");
    let revision = resp.header.expect("a response header").revision;
    let kvs = resp
        .kvs
        .into_iter()
        .map(|kv| (String::from_utf8(kv.key.to_vec()).unwrap(), String::from_utf8(kv.value.to_vec()).unwrap()))
        .collect();
    (kvs, revision)
}

fn key(task: usize, i: usize) -> String {
    format!("{PREFIX}{task}/{i:05}")
}

fn value(task: usize, i: usize) -> String {
    format!("value-{task}-{i}")
}

const TASKS: usize = 4;
const MAX_PUTS: usize = 3_000;
const MAX_LOAD: Duration = Duration::from_secs(3);

#[test]
fn every_acknowledged_put_survives_sigkill_under_load() {
    let member = Member::new();
    let rt = runtime();
    let mut detcd = member.start();
    let mut kv = member.kv(&rt);
    rt.block_on(wait_serving(&mut detcd, &mut kv));

    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let issued = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(TASKS));
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (mut kv, acked, issued, running) = (kv.clone(), acked.clone(), issued.clone(), running.clone());
            rt.spawn(async move {
                let mut failed = None;
                for i in 0.. {
                    if issued.fetch_add(1, Ordering::SeqCst) >= MAX_PUTS || start.elapsed() > MAX_LOAD {
                        break;
                    }
                    let (k, v) = (key(t, i), value(t, i));
                    match put(&mut kv, &k, &v).await {
                        Ok(()) => acked.lock().unwrap().push((k, v)),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
                failed
            })
        })
        .collect();

    // Kill once a third of the load is acknowledged (or half its time is
    // up), while the tasks are still writing.
    let kill_at = start + MAX_LOAD / 2;
    while acked.lock().unwrap().len() < MAX_PUTS / 3 && Instant::now() < kill_at {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(running.load(Ordering::SeqCst), TASKS, "the load ended before the kill; log:\n{}", detcd.log());
    let status = detcd.sigkill();
    assert_eq!(status.code(), None, "killed by a signal: {status}");
    let failures: Vec<Option<tonic::Status>> = rt.block_on(async {
        let mut out = Vec::new();
        for task in tasks {
            let joined = tokio::time::timeout(REQUEST_TIMEOUT * 2, task).await;
            out.push(joined.expect("a load task ends after the kill").expect("a load task does not panic"));
        }
        out
    });
    assert!(failures.iter().any(Option::is_some), "no put failed: the kill did not interrupt the load");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(!acked.is_empty(), "no put was acknowledged before the kill");

    let mut detcd = member.start();
    let mut kv = member.kv(&rt);
    rt.block_on(wait_serving(&mut detcd, &mut kv));
    let (stored, revision) = rt.block_on(contents(&mut kv));
    for (k, v) in &acked {
        assert_eq!(stored.get(k), Some(v), "acknowledged {k}={v} lost ({} acknowledged)", acked.len());
    }
    eprintln!(
        "{} puts acknowledged before SIGKILL, {} stored after the restart, revision {revision}",
        acked.len(),
        stored.len()
    );
    assert!(
        revision > acked.len() as i64,
        "revision {revision} after {} acknowledged puts (the first put is revision 2)",
        acked.len()
    );
    // Unacknowledged puts may have been applied too, but nothing else.
    for (k, v) in &stored {
        let (t, i) = k[PREFIX.len()..].split_once('/').unwrap();
        assert_eq!(v, &value(t.parse().unwrap(), i.parse().unwrap()), "{k}");
    }
    detcd.terminate_cleanly();
}

/// Writes `n` keys to a fresh member and stops it with SIGTERM.
fn member_with_keys(rt: &tokio::runtime::Runtime, n: usize) -> Member {
    let member = Member::new();
    let mut detcd = member.start();
    let mut kv = member.kv(rt);
    rt.block_on(async {
        wait_serving(&mut detcd, &mut kv).await;
        for i in 0..n {
            put(&mut kv, &key(0, i), &value(0, i)).await.expect("put");
        }
    });
    detcd.terminate_cleanly();
    member
}

/// The offset, type and payload length of each record in a WAL segment.
fn records(bytes: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        out.push((offset, bytes[offset + 4], len));
        offset += HEADER_LEN + len;
    }
    assert_eq!(offset, bytes.len(), "the segment ends with a whole record");
    out
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_wal_refuses_to_start() {
    let rt = runtime();
    let member = member_with_keys(&rt, 20);
    let segment = member.wal_segment();
    let mut bytes = std::fs::read(&segment).unwrap();
    let recs = records(&bytes);
    assert!(recs.len() > 20, "{} records", recs.len());
    // An entry record in the middle, far from the last record; flip a byte
    // of its payload (the crc does not cover the length, whose damage could
    // pass for a torn write).
    let (offset, _, len) =
        *recs[recs.len() / 2..].iter().find(|&&(_, ty, len)| ty == ENTRY && len > 8).expect("an entry record");
    assert!(offset < recs.last().unwrap().0, "the record flipped is not the last");
    bytes[offset + HEADER_LEN + len / 2] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let mut detcd = member.start();
    let status = detcd.wait_exit(START_WAIT);
    let log = detcd.log();
    assert_eq!(status.code(), Some(1), "exit status {status}; log:\n{log}");
    let expected = format!("wal: corrupt record in {} at byte offset {offset}: crc mismatch", segment.display());
    assert!(log.contains(&expected), "no {expected:?} in the log:\n{log}");
    assert!(!log.contains("serving client requests"), "{log}");
    assert!(std::net::TcpStream::connect(member.client.trim_start_matches("http://")).is_err());
}

/// Writes `N` keys, stops the member, cuts its WAL segment to the length
/// `cut` chooses from the records (returning the offset of the record it
/// tears too), restarts it and checks it reports the torn write there and
/// serves every key before the last; returns the record type torn and
/// whether the last key survived.
fn restart_after_cut(cut: impl Fn(&[(usize, u8, usize)]) -> (usize, u64)) -> (u8, bool) {
    let rt = runtime();
    let member = member_with_keys(&rt, N);
    let segment = member.wal_segment();
    let recs = records(&std::fs::read(&segment).unwrap());
    let (torn, new_len) = cut(&recs);
    let ty = recs.iter().find(|r| r.0 == torn).expect("the torn record").1;
    let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(new_len).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let mut detcd = member.start();
    let mut kv = member.kv(&rt);
    rt.block_on(wait_serving(&mut detcd, &mut kv));
    let (stored, revision) = rt.block_on(contents(&mut kv));
    let log = detcd.log();
    let expected = format!("wal: cut a torn write at the end of {} at byte offset {torn}", segment.display());
    let line = log.lines().find(|l| l.contains(&expected));
    assert!(line.is_some_and(|l| l.contains("WARN")), "no warning {expected:?} in the log:\n{log}");
    for i in 0..N - 1 {
        assert_eq!(stored.get(&key(0, i)), Some(&value(0, i)), "key {i} lost; torn record of type {ty}");
    }
    let last_survived = stored.get(&key(0, N - 1)) == Some(&value(0, N - 1));
    let survivors = if last_survived { N } else { N - 1 };
    assert_eq!(stored.len(), survivors, "{stored:?}");
    assert_eq!(revision, survivors as i64 + 1);
    detcd.terminate_cleanly();
    (ty, last_survived)
}

const N: usize = 20;

/// The last few bytes of the segment cut off, whatever its last record is
/// (after a clean stop, the hard state saving the commit index).
#[test]
fn a_torn_last_wal_record_is_cut_and_the_rest_served() {
    let (ty, last_survived) = restart_after_cut(|recs| {
        let &(offset, _, len) = recs.last().unwrap();
        (offset, (offset + HEADER_LEN + len - 3) as u64)
    });
    if ty != ENTRY {
        assert!(last_survived, "only a record of type {ty} was cut, no entry");
    }
}

/// The segment cut in the middle of the last entry (the last put; the
/// records after it go too), as if the crash came while it was written: the
/// put is lost (it was acknowledged here, as the entry was synced before
/// the cut; a real torn write is never acknowledged), the rest is served.
#[test]
fn a_torn_last_entry_loses_only_that_put() {
    let (ty, last_survived) = restart_after_cut(|recs| {
        let &(offset, _, len) = recs.iter().rev().find(|r| r.1 == ENTRY).unwrap();
        (offset, (offset + HEADER_LEN + len / 2) as u64)
    });
    assert_eq!(ty, ENTRY);
    assert!(!last_survived, "the last put survived the loss of its entry");
}
