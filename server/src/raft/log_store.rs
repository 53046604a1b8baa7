//! openraft's log storage over detcd's WAL.
//!
//! [`LogStore`] implements `RaftLogStorage` with a [`Wal`] in
//! `<data-dir>/member/wal` for durability and an in-memory copy of the live
//! entries for reads (recovery hands them all back once; appends add to
//! both). [`LogReader`] shares the in-memory part with the store, so
//! replication tasks read without touching the disk or the WAL.
//!
//! What goes into the WAL, each postcard-encoded:
//! - `Entry` records: openraft's `Entry` (its log id must match the index);
//! - the `Vote` record: a [`HardState`], openraft's vote and the last
//!   committed log id, in a versioned envelope (a version byte first). A new
//!   vote is synced before `save_vote` returns; `save_committed` writes the
//!   record without a sync, so it becomes durable with the next sync (the
//!   next append): losing it only means re-applying less on restart;
//! - `PurgeUpToMeta`: the purge index with the purged entry's `LogId`,
//!   whose term openraft needs and the index alone does not carry.
//!
//! Group commit: openraft hands `append` a batch (many client writes at
//! once); it is written as one WAL write and made durable with one fsync
//! before the completion callback runs. The I/O is synchronous on the
//! calling task, as the WAL is; a truncation or purge is written without a
//! sync and becomes durable with the next one (losing it in a crash only
//! brings back entries raft already knows how to deal with).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::vote::RaftLeaderId;
use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig};
use serde::{Deserialize, Serialize};

use super::types::TypeConfig;
use crate::storage::{Disk, Wal, WalOptions};

pub type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;
pub type CommittedLeaderId = <LeaderId as RaftLeaderId>::Committed;
pub type LogId = openraft::LogId<CommittedLeaderId>;
pub type Vote = <TypeConfig as RaftTypeConfig>::Vote;
pub type Entry = <TypeConfig as RaftTypeConfig>::Entry;

/// The WAL directory under the data directory, as etcd lays it out.
pub fn wal_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("member").join("wal")
}

/// What the WAL's `Vote` record holds: raft's hard state, as etcd's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
}

const HARD_STATE_VERSION: u8 = 1;

impl HardState {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![HARD_STATE_VERSION];
        out.extend(postcard::to_allocvec(self).expect("encoding to memory cannot fail"));
        out
    }

    fn decode(bytes: &[u8]) -> io::Result<HardState> {
        match bytes.split_first() {
            Some((&HARD_STATE_VERSION, body)) => postcard::from_bytes(body).map_err(|e| corrupt("hard state", e)),
            Some((v, _)) => Err(corrupt("hard state", format!("unknown version {v}"))),
            None => Err(corrupt("hard state", "empty record")),
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("log store: bad {what} in the wal: {e}"))
}

fn wal_err(e: crate::storage::WalError) -> io::Error {
    io::Error::other(e)
}

/// The log as readers see it: what was appended, truncated and purged,
/// durable or about to be.
#[derive(Debug, Default)]
struct Mem {
    /// The live entries, contiguous by index.
    entries: VecDeque<Entry>,
    hard: HardState,
    purged: Option<LogId>,
}

impl Mem {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.entries.back().map(|e| e.log_id).or(self.purged)
    }

    fn range(&self, range: &impl RangeBounds<u64>) -> Vec<Entry> {
        let Some(first) = self.first_index() else { return Vec::new() };
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        let from = start.saturating_sub(first).min(self.entries.len() as u64) as usize;
        let to = end.saturating_sub(first).min(self.entries.len() as u64) as usize;
        if from >= to {
            return Vec::new();
        }
        self.entries.range(from..to).cloned().collect()
    }
}

fn lock(mem: &Mutex<Mem>) -> MutexGuard<'_, Mem> {
    mem.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// openraft's `RaftLogStorage` over the WAL. See the module docs.
pub struct LogStore {
    /// Only ever used through `&mut self` (`get_mut`, no locking): the
    /// mutex is there because openraft wants the store `Sync` and a WAL
    /// file handle is only `Send`.
    wal: Mutex<Wal>,
    mem: Arc<Mutex<Mem>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mem = lock(&self.mem);
        f.debug_struct("LogStore")
            .field("first", &mem.first_index())
            .field("last", &mem.last_log_id())
            .field("purged", &mem.purged)
            .field("vote", &mem.hard.vote)
            .finish()
    }
}

impl LogStore {
    /// Opens (creating if needed) the log in `<data_dir>/member/wal` and
    /// recovers the vote, the committed log id, the purged log id and the
    /// live entries. A torn last write is cut off (with a warning); any
    /// other damage fails the open (see `Wal::open`).
    pub fn open(disk: Arc<dyn Disk>, data_dir: &Path, opts: WalOptions) -> io::Result<LogStore> {
        let dir = wal_dir(data_dir);
        let (wal, recovered) = Wal::open(disk, &dir, opts).map_err(wal_err)?;
        if let Some((file, offset)) = &recovered.torn_tail {
            tracing::warn!("wal: cut a torn write at the end of {} at byte offset {offset}", file.display());
        }
        for stale in &recovered.stale_segments {
            tracing::warn!("wal: removed {} left over by an interrupted purge", stale.display());
        }
        let hard = match &recovered.vote {
            Some(bytes) => HardState::decode(bytes)?,
            None => HardState::default(),
        };
        let purged = match (recovered.purged, &recovered.purged_meta) {
            (None, _) => None,
            (Some(index), Some(meta)) => {
                let log_id: LogId = postcard::from_bytes(meta).map_err(|e| corrupt("purged log id", e))?;
                if log_id.index != index {
                    return Err(corrupt("purged log id", format!("{log_id} recorded for a purge up to {index}")));
                }
                Some(log_id)
            }
            (Some(index), None) => {
                return Err(corrupt("purge record", format!("purge up to {index} does not name its log id")));
            }
        };
        let mut entries = VecDeque::with_capacity(recovered.entries.len());
        for (index, bytes) in &recovered.entries {
            let entry: Entry = postcard::from_bytes(bytes).map_err(|e| corrupt(&format!("entry {index}"), e))?;
            if entry.log_id.index != *index {
                return Err(corrupt(&format!("entry {index}"), format!("it holds log id {}", entry.log_id)));
            }
            entries.push_back(entry);
        }
        let mem = Mem { entries, hard, purged };
        tracing::info!(
            "log store: recovered entries {:?}..={:?}, purged {:?}, vote {:?}",
            mem.first_index(),
            mem.entries.back().map(|e| e.log_id.index),
            mem.purged,
            mem.hard.vote
        );
        Ok(LogStore { wal: Mutex::new(wal), mem: Arc::new(Mutex::new(mem)) })
    }

    /// The log id of the last purged entry.
    pub fn purged(&self) -> Option<LogId> {
        lock(&self.mem).purged
    }

    /// The log id of the last entry (or the purged one if none is live).
    pub fn last_log_id(&self) -> Option<LogId> {
        lock(&self.mem).last_log_id()
    }

    /// The saved vote and committed log id.
    pub fn hard_state(&self) -> HardState {
        lock(&self.mem).hard.clone()
    }

    /// A reader sharing this store's entries.
    pub fn reader(&self) -> LogReader {
        LogReader { mem: self.mem.clone() }
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_hard_state(&mut self, hard: &HardState, sync: bool) -> io::Result<()> {
        let wal = self.wal();
        wal.save_vote(&hard.encode()).map_err(wal_err)?;
        if sync {
            wal.sync().map_err(wal_err)?;
        }
        Ok(())
    }
}

/// A handle for reading the log (replication tasks hold one each).
#[derive(Debug, Clone)]
pub struct LogReader {
    mem: Arc<Mutex<Mem>>,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(lock(&self.mem).range(&range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(lock(&self.mem).hard.vote)
    }
}

/// The store reads through the same in-memory log as its readers.
impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        self.reader().try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.reader().read_vote().await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mem = lock(&self.mem);
        Ok(LogState { last_purged_log_id: mem.purged, last_log_id: mem.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let hard = HardState { vote: Some(*vote), committed: lock(&self.mem).hard.committed };
        self.write_hard_state(&hard, true)?;
        lock(&self.mem).hard = hard;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let hard = HardState { vote: lock(&self.mem).hard.vote, committed };
        self.write_hard_state(&hard, false)?;
        lock(&self.mem).hard = hard;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(lock(&self.mem).hard.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut records = Vec::with_capacity(entries.len());
        for entry in &entries {
            let bytes = postcard::to_allocvec(entry).map_err(io::Error::other)?;
            records.push((entry.log_id.index, bytes));
        }
        self.wal().append(&records).map_err(wal_err)?;
        lock(&self.mem).entries.extend(entries);
        // Readable now; acknowledged once durable.
        match self.wal().sync() {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                callback.io_completed(Err(wal_err(e)));
                Err(io::Error::other(msg))
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let since = last_log_id.map_or(0, |l| l.index + 1);
        self.wal().truncate_since(since).map_err(wal_err)?;
        let mut mem = lock(&self.mem);
        while mem.entries.back().is_some_and(|e| e.log_id.index >= since) {
            mem.entries.pop_back();
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        if lock(&self.mem).purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let meta = postcard::to_allocvec(&log_id).map_err(io::Error::other)?;
        self.wal().purge_up_to_with(log_id.index, &meta).map_err(wal_err)?;
        let mut mem = lock(&self.mem);
        while mem.entries.front().is_some_and(|e| e.log_id.index <= log_id.index) {
            mem.entries.pop_front();
        }
        mem.purged = Some(log_id);
        Ok(())
    }
}
