//! Helpers shared by the openraft storage adapter tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use detcd_core::request::{Command, PutRequest, RangeRequest};
use detcd_server::clock::NodeClock;
use detcd_server::raft::log_store::{Entry, LogId, LogStore};
use detcd_server::raft::state_machine::{SharedState, StateMachineStore};
use detcd_server::raft::store::{open_stores, StoreConfig};
use detcd_server::raft::types::{MemberNode, TypeConfig};
use detcd_server::storage::{Disk, SimDisk, WalOptions};
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, Membership};

pub const DATA: &str = "/data";

pub fn data_dir() -> PathBuf {
    PathBuf::from(DATA)
}

pub fn try_open_on(disk: Arc<dyn Disk>, dir: &Path) -> io::Result<(LogStore, StateMachineStore)> {
    open_stores(disk, dir, StoreConfig::default(), Arc::new(NodeClock::new()))
}

pub fn try_open(disk: &SimDisk) -> io::Result<(LogStore, StateMachineStore)> {
    try_open_on(Arc::new(disk.clone()), &data_dir())
}

pub fn open(disk: &SimDisk) -> (LogStore, StateMachineStore) {
    try_open(disk).expect("open the stores")
}

/// The log store alone (no check against a state machine).
pub fn open_log(disk: &SimDisk) -> LogStore {
    LogStore::open(Arc::new(disk.clone()), &data_dir(), WalOptions::default()).expect("open the log store")
}

/// A log id of leader `term` (node 1).
pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 1, index)
}

pub fn put_cmd(key: &str, value: &str) -> Command {
    Command::Put(PutRequest { key: b(key), value: b(value), ..Default::default() })
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A put of `k{index}` = `v{index}` at `index`.
pub fn put(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(put_cmd(&format!("k{index}"), &format!("v{index}"))),
    }
}

pub fn blank(term: u64, index: u64) -> Entry {
    Entry { log_id: log_id(term, index), payload: EntryPayload::Blank }
}

pub fn membership(term: u64, index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    let m = Membership::<u64, MemberNode>::new_with_defaults(vec![voters], []);
    Entry { log_id: log_id(term, index), payload: EntryPayload::Membership(m) }
}

/// Appends and waits for openraft's flush callback: `Ok` means acknowledged.
pub async fn append(log: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.map_err(|_| io::Error::other("flush callback dropped"))?
}

pub async fn apply(sm: &mut StateMachineStore, entries: Vec<Entry>) -> io::Result<()> {
    sm.apply(futures::stream::iter(entries.into_iter().map(|e| Ok((e, None))))).await
}

/// The value of `key` in the shared state.
pub fn get(shared: &SharedState, key: &str) -> Option<Bytes> {
    let resp = shared.state().range(&RangeRequest { key: b(key), ..Default::default() }).expect("range");
    resp.kvs.into_iter().next().map(|kv| kv.value)
}

/// The names in a directory of the disk.
pub fn names(disk: &dyn Disk, dir: &Path) -> Vec<String> {
    disk.list(dir).expect("list")
}

pub fn snap_dir() -> PathBuf {
    data_dir().join("member").join("snap")
}
