//! Snapshot files: detcd-core's snapshot bytes with openraft's metadata, in
//! `<data-dir>/member/snap/`.
//!
//! A file is an envelope (integers little-endian):
//!
//! ```text
//! magic "DETCDRSN" | version u32 | meta length u32 | data length u64
//!   | crc32 of meta and data u32 | meta | data
//! ```
//!
//! `meta` is openraft's `SnapshotMeta` (last applied log id, last
//! membership), postcard-encoded; `data` is `detcd_core::snapshot::encode`
//! of the state, which is also what openraft ships to a lagging member
//! (its `SnapshotData`), so the envelope never travels.
//!
//! Files are named `{seq:016x}-{last_index:016x}.snap` (seq counts up;
//! the index is for people reading a listing). A snapshot is written as
//! `<name>.tmp`, synced, renamed, and the directory synced; then all but
//! the newest two are deleted. Each new file covers more of the log than the
//! last, so the highest seq is the newest. On open, leftover `.tmp` files
//! are removed and the newest snapshot that decodes (envelope, crc, and the
//! core snapshot's own checks) is loaded; a newer one that does not is
//! renamed to `<name>.broken` (kept for inspection, never read again) with
//! an error logged. If snapshot files exist and none of them is valid, the
//! open fails: starting empty would silently drop the state the purged
//! log no longer holds.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use detcd_core::State;

use super::log_store::CommittedLeaderId;
use super::types::{MemberId, MemberNode};
use crate::storage::Disk;

pub type SnapshotMeta = openraft::SnapshotMeta<CommittedLeaderId, MemberId, MemberNode>;
pub type StoredMembership = openraft::StoredMembership<CommittedLeaderId, MemberId, MemberNode>;
/// What openraft carries between members: the core snapshot bytes.
pub type SnapshotData = io::Cursor<Vec<u8>>;

const MAGIC: &[u8; 8] = b"DETCDRSN";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4;

/// The snapshot directory under the data directory, as etcd lays it out.
pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap")
}

/// Wraps core snapshot bytes and their metadata into a file's content.
pub fn encode_envelope(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
    let meta = postcard::to_allocvec(meta).expect("encoding to memory cannot fail");
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(data);
    let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(meta.len()).expect("snapshot metadata under 4 GiB").to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data);
    out
}

/// Checks a file's envelope (magic, version, lengths, crc) and splits it
/// into the metadata and the core snapshot bytes (not decoded here).
pub fn decode_envelope(bytes: &[u8]) -> Result<(SnapshotMeta, &[u8]), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a detcd raft snapshot (bad magic)".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(format!("unsupported envelope version {version} (this build reads {VERSION})"));
    }
    let meta_len = u64::from(u32_at(12));
    let data_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_LEN..];
    if meta_len.checked_add(data_len) != Some(body.len() as u64) {
        return Err(format!("header says {meta_len} + {data_len} bytes, the file holds {}", body.len()));
    }
    let expected = u32_at(24);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(format!("checksum mismatch: header {expected:#010x}, content {actual:#010x}"));
    }
    let (meta, data) = body.split_at(meta_len as usize);
    let meta = postcard::from_bytes(meta).map_err(|e| format!("bad metadata: {e}"))?;
    Ok((meta, data))
}

fn parse_name(name: &str) -> Option<u64> {
    let (seq, index) = name.strip_suffix(".snap")?.split_once('-')?;
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(seq) && hex(index)).then(|| u64::from_str_radix(seq, 16).ok())?
}

fn io_context(op: &str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let what = format!("snapshot: {op} {}", path.display());
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A snapshot file on disk.
#[derive(Clone)]
struct SnapFile {
    seq: u64,
    path: PathBuf,
    meta: SnapshotMeta,
}

/// The snapshot directory: writes new snapshots, keeps the newest two,
/// and reads the current one back for openraft.
pub struct SnapDir {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// Valid snapshot files, oldest first.
    files: Vec<SnapFile>,
}

impl fmt::Debug for SnapDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.files.iter().map(|s| s.path.display().to_string()).collect();
        f.debug_struct("SnapDir").field("files", &names).finish()
    }
}

/// What [`SnapDir::open`] loaded: the newest valid snapshot, decoded.
pub struct Loaded {
    pub meta: SnapshotMeta,
    pub state: State,
    /// Newer snapshot files that were invalid and renamed to `.broken`.
    pub broken: Vec<PathBuf>,
}

impl SnapDir {
    /// Opens `<data_dir>/member/snap` (created if missing) and loads the
    /// newest valid snapshot, if any (see the module docs for what happens
    /// to invalid ones).
    pub fn open(disk: Arc<dyn Disk>, data_dir: &Path) -> io::Result<(SnapDir, Option<Loaded>)> {
        let dir = snap_dir(data_dir);
        disk.create_dir_all(&dir).map_err(io_context("create", &dir))?;
        let mut found = Vec::new();
        let mut removed_tmp = false;
        for name in disk.list(&dir).map_err(io_context("list", &dir))? {
            let path = dir.join(&name);
            if name.ends_with(".snap.tmp") {
                disk.remove(&path).map_err(io_context("remove", &path))?;
                removed_tmp = true;
            } else if let Some(seq) = parse_name(&name) {
                found.push((seq, path));
            }
        }
        if removed_tmp {
            disk.sync_dir(&dir).map_err(io_context("sync", &dir))?;
        }
        found.sort();
        let any = !found.is_empty();
        let mut snaps = SnapDir { disk, dir, files: Vec::new() };
        let mut loaded: Option<Loaded> = None;
        let mut broken = Vec::new();
        // Newest first: load the first valid one; of the older ones only
        // the envelope is checked (they are kept as a fallback).
        for (seq, path) in found.into_iter().rev() {
            let bytes = snaps.disk.read(&path).map_err(io_context("read", &path))?;
            let checked = decode_envelope(&bytes).and_then(|(meta, data)| match loaded {
                Some(_) => Ok((meta, None)),
                None => detcd_core::snapshot::decode(data).map(|s| (meta, Some(s))).map_err(|e| e.to_string()),
            });
            match checked {
                Ok((meta, state)) => {
                    snaps.files.insert(0, SnapFile { seq, path, meta: meta.clone() });
                    if let Some(state) = state {
                        loaded = Some(Loaded { meta, state, broken: Vec::new() });
                    }
                }
                Err(reason) => {
                    let to = path.with_extension("snap.broken");
                    tracing::error!("snapshot: {} is invalid ({reason}); renamed to {}", path.display(), to.display());
                    snaps.disk.rename(&path, &to).map_err(io_context("rename", &path))?;
                    snaps.disk.sync_dir(&snaps.dir).map_err(io_context("sync", &snaps.dir))?;
                    if loaded.is_none() {
                        broken.push(to);
                    }
                }
            }
        }
        match &mut loaded {
            Some(l) => l.broken = broken,
            None if any => {
                let names: Vec<_> = broken.iter().map(|p| p.display().to_string()).collect();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "snapshot: no valid snapshot in {} (invalid ones renamed: {}); \
                         the log may no longer hold the state they covered: refusing to start empty",
                        snaps.dir.display(),
                        names.join(", ")
                    ),
                ));
            }
            None => {}
        }
        Ok((snaps, loaded))
    }

    /// The metadata of the newest snapshot.
    pub fn current(&self) -> Option<&SnapshotMeta> {
        self.files.last().map(|f| &f.meta)
    }

    /// Writes a snapshot durably and makes it the current one, then deletes
    /// all but the newest two. A snapshot that covers no more of the log
    /// than the current one is not written (returns false): files only
    /// ever move forward.
    pub fn save(&mut self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<bool> {
        if self.current().is_some_and(|cur| cur.last_log_id >= meta.last_log_id) {
            return Ok(false);
        }
        let seq = self.files.last().map_or(0, |f| f.seq + 1);
        let index = meta.last_log_id.map_or(0, |l| l.index);
        let path = self.dir.join(format!("{seq:016x}-{index:016x}.snap"));
        let tmp = path.with_extension("snap.tmp");
        let mut file = self.disk.open_append(&tmp).map_err(io_context("create", &tmp))?;
        if !file.is_empty() {
            file.truncate(0).map_err(io_context("truncate", &tmp))?;
        }
        file.append(&encode_envelope(meta, data)).map_err(io_context("write", &tmp))?;
        file.sync().map_err(io_context("sync", &tmp))?;
        drop(file);
        self.disk.rename(&tmp, &path).map_err(io_context("rename", &tmp))?;
        self.disk.sync_dir(&self.dir).map_err(io_context("sync", &self.dir))?;
        self.files.push(SnapFile { seq, path, meta: meta.clone() });
        let old = self.files.len().saturating_sub(2);
        if old > 0 {
            for f in self.files.drain(..old) {
                self.disk.remove(&f.path).map_err(io_context("remove", &f.path))?;
            }
            self.disk.sync_dir(&self.dir).map_err(io_context("sync", &self.dir))?;
        }
        Ok(true)
    }

    /// Reads the current snapshot back (checking its envelope): its
    /// metadata and core snapshot bytes.
    pub fn read_current(&self) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
        let Some(file) = self.files.last() else { return Ok(None) };
        let mut bytes = self.disk.read(&file.path).map_err(io_context("read", &file.path))?;
        let (meta, data_start) = match decode_envelope(&bytes) {
            Ok((meta, data)) => (meta, bytes.len() - data.len()),
            Err(reason) => {
                let msg = format!("snapshot: {}: {reason}", file.path.display());
                return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
            }
        };
        bytes.drain(..data_start);
        Ok(Some((meta, bytes)))
    }

    /// The snapshot files kept, oldest first.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}
