//! The write-ahead log, modeled on etcd's WAL, over a [`Disk`].
//!
//! A directory of segment files named `{seq:016x}-{first_index:016x}.wal`
//! (seq counts up from 0; `first_index` is the index the next entry had
//! when the segment was started, for people reading a listing). Records
//! (see `wal/record.rs`) are `Vote`, `Entry`, `TruncateSince` (drop entries
//! `>= index`) and `PurgeUpTo` (entries `<= index` are gone), the latter
//! optionally carrying the caller's bytes about the purged entry
//! (`PurgeUpToMeta`). Appends go to the last segment; once it holds
//! `segment_size` bytes the next record starts a new segment, after the old
//! one is synced. A new segment starts with the current vote and purge
//! record, so deleting older segments loses neither.
//!
//! Writes are buffered by the OS until [`Wal::sync`], which issues one
//! fsync for everything written since the previous one (group commit).
//! After any I/O error the `Wal` refuses further calls with
//! [`WalError::Poisoned`]: what reached the disk is unknown, so the only
//! way on is to reopen and recover, as etcd exits on a failed WAL fsync.
//!
//! The WAL only writes; the caller keeps the entries it needs to read
//! (recovery hands them all back once). Recovery rules: [`Wal::open`] and
//! docs/ARCHITECTURE.md. Known limit: the crc does not cover the length
//! field, so a length damaged in the last segment so that it points past
//! the end of the file reads as a torn write and the rest is cut off.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Disk, DiskFile};

mod error;
mod record;
mod replay;

use error::io_err;
pub use error::WalError;

use record::Record;
use replay::{Replay, Tracker};

/// Default size at which a segment is closed: 64 MiB, as etcd.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default largest record payload written or accepted on replay: 64 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment holding at least this many bytes gets no more records.
    pub segment_size: u64,
    /// The largest payload: bigger writes are refused, and a record
    /// declaring a bigger length is corruption (nothing is allocated).
    pub max_record_size: u32,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: DEFAULT_SEGMENT_SIZE, max_record_size: DEFAULT_MAX_RECORD_SIZE }
    }
}

/// What [`Wal::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The last vote saved.
    pub vote: Option<Vec<u8>>,
    /// The live entries `(index, bytes)`, in index order, contiguous.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The highest index passed to [`Wal::purge_up_to`] or
    /// [`Wal::purge_up_to_with`].
    pub purged: Option<u64>,
    /// The bytes given with that purge by [`Wal::purge_up_to_with`]
    /// (`None` after a plain [`Wal::purge_up_to`]).
    pub purged_meta: Option<Vec<u8>>,
    /// The last segment and the offset where it was cut because its end
    /// was a torn write (worth a log line).
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Segments left over from a purge interrupted by a crash (an older run
    /// of segments separated from the rest by a gap in the seqs): ignored
    /// and removed.
    pub stale_segments: Vec<PathBuf>,
}

fn segment_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}.wal")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let (seq, first) = name.strip_suffix(".wal")?.split_once('-')?;
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(seq) && hex(first)).then(|| u64::from_str_radix(seq, 16).ok())?
}

pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: WalOptions,
    /// `(seq, path)` of the live segments; the last one is open in `file`.
    segments: Vec<(u64, PathBuf)>,
    file: Box<dyn DiskFile>,
    /// Bytes of the current segment's header (vote and purge copies).
    header_len: u64,
    vote: Option<Vec<u8>>,
    /// What the caller said about the purged entry (see `purge_up_to_with`).
    purged_meta: Option<Vec<u8>>,
    log: Tracker,
    /// Records encoded but not yet appended to `file`.
    buf: Vec<u8>,
    /// Bytes appended to `file` since its last sync.
    unsynced: bool,
    /// A segment was created since the directory was last synced.
    dir_dirty: bool,
    /// Purged segments to delete once the purge record is durable.
    to_remove: Vec<PathBuf>,
    poisoned: bool,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("log", &self.log)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Wal {
    /// Opens the WAL in `dir` (created if missing) and recovers its state.
    ///
    /// Segments are replayed in seq order. In the last segment, an invalid
    /// final record that a torn write explains is cut off (the file is
    /// truncated and synced, and `torn_tail` says where); any other invalid
    /// record, or any invalid record in an earlier segment, refuses the
    /// open with [`WalError::Corrupt`]. The last segment and the directory
    /// are synced, so everything recovered is durable.
    pub fn open(disk: Arc<dyn Disk>, dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        disk.create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut segments = Vec::new();
        for name in disk.list(dir).map_err(io_err("list", dir))? {
            if !name.ends_with(".wal") {
                continue;
            }
            let file = dir.join(&name);
            let Some(seq) = parse_segment_name(&name) else {
                return Err(WalError::BadSegment { file, reason: "name is not <seq>-<first index>.wal".into() });
            };
            segments.push((seq, file));
        }
        segments.sort();
        if let Some(w) = segments.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(WalError::BadSegment { file: w[1].1.clone(), reason: "duplicate seq".into() });
        }
        if segments.is_empty() {
            return Self::create(disk, dir, opts);
        }

        let mut recovered = Recovered::default();
        // Purges delete segments oldest first; a gap means a crash kept an
        // older run whose removal was not yet durable.
        let start = segments.windows(2).rposition(|w| w[1].0 != w[0].0 + 1).map_or(0, |i| i + 1);
        recovered.stale_segments = segments.drain(..start).map(|(_, path)| path).collect();
        let mut replay = Replay::default();
        let last = segments.len() - 1;
        for (i, (seq, path)) in segments.iter().enumerate() {
            let bytes = disk.read(path).map_err(io_err("read", path))?;
            if let Some(offset) = replay.segment(path, *seq, &bytes, i == last, opts.max_record_size)? {
                recovered.torn_tail = Some((path.clone(), offset));
            }
        }
        let (first_seq, first_path) = &segments[0];
        if *first_seq != 0 && !replay.log.starts_after_purge() {
            return Err(WalError::BadSegment {
                file: first_path.clone(),
                reason: format!(
                    "earlier segments are missing: the log starts at entry {} but the purged index is {}",
                    replay.log.range.map_or("none".to_string(), |(first, _)| first.to_string()),
                    replay.log.purged.map_or("none".to_string(), |p| p.to_string()),
                ),
            });
        }

        let path = segments[last].1.clone();
        let mut file = disk.open_append(&path).map_err(io_err("open", &path))?;
        if let Some((_, offset)) = &recovered.torn_tail {
            file.truncate(*offset).map_err(io_err("truncate", &path))?;
        }
        // What was read may still be only in the OS cache (the process
        // died, the machine did not): make it durable before anyone acts
        // on it. Earlier segments were synced before the next was created.
        file.sync().map_err(io_err("sync", &path))?;
        disk.sync_dir(dir).map_err(io_err("sync", dir))?;
        for stale in &recovered.stale_segments {
            disk.remove(stale).map_err(io_err("remove", stale))?;
        }
        if !recovered.stale_segments.is_empty() {
            disk.sync_dir(dir).map_err(io_err("sync", dir))?;
        }
        recovered.vote = replay.vote.clone();
        recovered.purged = replay.log.purged;
        recovered.purged_meta = replay.purged_meta.clone();
        recovered.entries = replay.entries.into();
        let wal = Wal {
            disk,
            dir: dir.to_path_buf(),
            opts,
            segments,
            file,
            header_len: 0,
            vote: replay.vote,
            purged_meta: replay.purged_meta,
            log: replay.log,
            buf: Vec::new(),
            unsynced: false,
            dir_dirty: false,
            to_remove: Vec::new(),
            poisoned: false,
        };
        Ok((wal, recovered))
    }

    /// A fresh WAL: segment 0, its directory entry synced.
    fn create(disk: Arc<dyn Disk>, dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        let path = dir.join(segment_name(0, 0));
        let file = disk.open_append(&path).map_err(io_err("create", &path))?;
        disk.sync_dir(dir).map_err(io_err("sync", dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            disk.sync_dir(parent).map_err(io_err("sync", parent))?;
        }
        let wal = Wal {
            disk,
            dir: dir.to_path_buf(),
            opts,
            segments: vec![(0, path)],
            file,
            header_len: 0,
            vote: None,
            purged_meta: None,
            log: Tracker::default(),
            buf: Vec::new(),
            unsynced: false,
            dir_dirty: false,
            to_remove: Vec::new(),
            poisoned: false,
        };
        Ok((wal, Recovered::default()))
    }

    /// The index the next appended entry must have; `None` while the log
    /// is empty and nothing was purged (then any index may start it).
    pub fn next_index(&self) -> Option<u64> {
        self.log.next_index()
    }

    /// The highest purged index.
    pub fn purged(&self) -> Option<u64> {
        self.log.purged
    }

    /// The bytes given with the last purge by [`Wal::purge_up_to_with`].
    pub fn purged_meta(&self) -> Option<&[u8]> {
        self.purged_meta.as_deref()
    }

    /// Records the vote (replacing the previous one on recovery).
    pub fn save_vote(&mut self, vote: &[u8]) -> Result<(), WalError> {
        self.run(|w| {
            w.check_size(vote.len())?;
            w.put(Record::Vote(vote))?;
            w.flush()?;
            w.vote = Some(vote.to_vec());
            Ok(())
        })
    }

    /// Appends entries `(index, bytes)`. Indices must be contiguous and
    /// follow the log ([`Wal::next_index`]); otherwise the whole batch is
    /// refused with [`WalError::OutOfOrder`] and nothing is written. The
    /// batch goes to the disk as one write per segment it lands in.
    pub fn append<B: AsRef<[u8]>>(&mut self, entries: &[(u64, B)]) -> Result<(), WalError> {
        self.run(|w| {
            let mut expected = w.log.next_index();
            for (index, data) in entries {
                if let Some(expected) = expected.filter(|e| e != index) {
                    return Err(WalError::OutOfOrder { expected, got: *index });
                }
                w.check_size(8 + data.as_ref().len())?;
                expected = Some(index.saturating_add(1));
            }
            for (index, data) in entries {
                let seq = w.put(Record::Entry { index: *index, data: data.as_ref() })?;
                w.log.push(*index, seq);
            }
            w.flush()
        })
    }

    /// Drops the entries `>= since` (a conflicting suffix). Nothing is
    /// written if no live entry is `>= since`.
    pub fn truncate_since(&mut self, since: u64) -> Result<(), WalError> {
        self.run(|w| {
            match w.log.range {
                Some((_, last)) if last >= since => {}
                _ => return Ok(()),
            }
            w.put(Record::TruncateSince(since))?;
            w.log.truncate_since(since);
            w.flush()
        })
    }

    /// Drops the entries `<= up_to`, which may be beyond the last entry
    /// (the next entry is then `up_to + 1`). A purge at or below an earlier
    /// one writes nothing. Segments that hold no live entry any more are
    /// deleted by the next [`Wal::sync`], once this record is durable.
    pub fn purge_up_to(&mut self, up_to: u64) -> Result<(), WalError> {
        self.purge(up_to, None)
    }

    /// As [`Wal::purge_up_to`], recording `meta` with it (one record, so
    /// both or neither survive a crash): the caller's description of the
    /// purged entry, such as openraft's log id, which carries the term the
    /// index alone does not. Recovery hands back the last one
    /// ([`Recovered::purged_meta`]); new segments start with a copy.
    pub fn purge_up_to_with(&mut self, up_to: u64, meta: &[u8]) -> Result<(), WalError> {
        self.purge(up_to, Some(meta))
    }

    fn purge(&mut self, up_to: u64, meta: Option<&[u8]>) -> Result<(), WalError> {
        self.run(|w| {
            if w.log.purged.is_some_and(|p| p >= up_to) {
                return Ok(());
            }
            match meta {
                Some(meta) => {
                    w.check_size(8 + meta.len())?;
                    w.put(Record::PurgeUpToMeta { index: up_to, meta })?;
                }
                None => {
                    w.put(Record::PurgeUpTo(up_to))?;
                }
            }
            w.purged_meta = meta.map(<[u8]>::to_vec);
            w.log.purge_up_to(up_to);
            w.flush()?;
            // Keep the segment holding the first live entry and the ones
            // after it. Only delete when the live entries start right after
            // the purge (recovery checks that when segments are missing).
            let current = w.segments.last().expect("a current segment").0;
            let keep_from = match w.log.range {
                None => Some(current),
                Some(_) if w.log.starts_after_purge() => w.log.runs.first().map(|&(_, seq)| seq),
                Some(_) => None,
            };
            if let Some(keep_from) = keep_from {
                let old = w.segments.iter().take_while(|(seq, _)| *seq < keep_from).count();
                w.to_remove.extend(w.segments.drain(..old).map(|(_, path)| path));
            }
            Ok(())
        })
    }

    /// Makes everything written so far durable with one fsync (plus a
    /// directory sync when a segment was created), then deletes purged
    /// segments, oldest first.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.run(|w| {
            let path = &w.segments.last().expect("a current segment").1;
            if w.unsynced {
                w.file.sync().map_err(io_err("sync", path))?;
                w.unsynced = false;
            }
            if w.dir_dirty {
                w.disk.sync_dir(&w.dir).map_err(io_err("sync", &w.dir))?;
                w.dir_dirty = false;
            }
            if !w.to_remove.is_empty() {
                for path in std::mem::take(&mut w.to_remove) {
                    match w.disk.remove(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("remove", &path)(e)),
                        _ => {}
                    }
                }
                w.disk.sync_dir(&w.dir).map_err(io_err("sync", &w.dir))?;
            }
            Ok(())
        })
    }

    /// Runs a mutation, poisoning the WAL on an I/O error.
    fn run<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, WalError>) -> Result<T, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let result = f(self);
        if let Err(WalError::Io { .. }) = &result {
            self.poisoned = true;
        }
        result
    }

    fn check_size(&self, len: usize) -> Result<(), WalError> {
        match u32::try_from(len) {
            Ok(l) if l <= self.opts.max_record_size => Ok(()),
            _ => Err(WalError::RecordTooLarge { len, max: self.opts.max_record_size }),
        }
    }

    /// Encodes a record into the buffer, starting a new segment first if
    /// the current one is full; returns the seq of the segment it goes to.
    fn put(&mut self, record: Record<'_>) -> Result<u64, WalError> {
        let size = self.file.len() + self.buf.len() as u64;
        if size >= self.opts.segment_size && size > self.header_len {
            self.rotate()?;
        }
        record.encode(&mut self.buf);
        Ok(self.segments.last().expect("a current segment").0)
    }

    /// Appends the buffered records to the current segment.
    fn flush(&mut self) -> Result<(), WalError> {
        if !self.buf.is_empty() {
            let path = &self.segments.last().expect("a current segment").1;
            self.file.append(&self.buf).map_err(io_err("write", path))?;
            self.buf.clear();
            self.unsynced = true;
        }
        Ok(())
    }

    /// Closes the current segment (synced, with its directory entry, so
    /// only the last segment can ever end in a torn write) and starts the
    /// next one with copies of the vote and purge index.
    fn rotate(&mut self) -> Result<(), WalError> {
        self.flush()?;
        let (seq, path) = self.segments.last().expect("a current segment").clone();
        if self.unsynced {
            self.file.sync().map_err(io_err("sync", &path))?;
            self.unsynced = false;
        }
        if self.dir_dirty {
            self.disk.sync_dir(&self.dir).map_err(io_err("sync", &self.dir))?;
            self.dir_dirty = false;
        }
        let path = self.dir.join(segment_name(seq + 1, self.log.next_index().unwrap_or(0)));
        let mut file = self.disk.open_append(&path).map_err(io_err("create", &path))?;
        if !file.is_empty() {
            file.truncate(0).map_err(io_err("truncate", &path))?;
        }
        self.file = file;
        self.segments.push((seq + 1, path));
        self.dir_dirty = true;
        if let Some(vote) = &self.vote {
            Record::Vote(vote).encode(&mut self.buf);
        }
        match (self.log.purged, &self.purged_meta) {
            (Some(index), Some(meta)) => Record::PurgeUpToMeta { index, meta }.encode(&mut self.buf),
            (Some(index), None) => Record::PurgeUpTo(index).encode(&mut self.buf),
            (None, _) => {}
        }
        self.header_len = self.buf.len() as u64;
        Ok(())
    }
}
