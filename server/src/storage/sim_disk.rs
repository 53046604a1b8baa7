//! An in-memory [`Disk`] that models what a crash keeps, for the simulator
//! and the storage tests.
//!
//! Each file has its content and the part of it that is durable (synced).
//! Directory entries are durable only after [`Disk::sync_dir`] of their
//! directory: a crash forgets files created since, and brings back files
//! removed or renamed since. Directories themselves are durable as soon as
//! they are created.
//!
//! Faults:
//! - [`SimDisk::crash`]: every unsynced byte (and unsynced truncation) and
//!   every unsynced directory change is lost;
//! - [`SimDisk::crash_tearing`]: the same, except that in each file whose
//!   last change since its sync was an append, everything before that
//!   append survives and a seeded-random prefix (possibly empty, possibly
//!   all) of the append itself survives: a torn write;
//! - [`SimDisk::fail_next_sync`]: the next file or directory sync fails and
//!   syncs nothing.
//!
//! File handles opened before a crash are dead: every operation on them
//! fails, as the process that held them is gone. Everything is kept in
//! `BTreeMap`s and the only randomness is a ChaCha generator seeded by the
//! caller, so a run replays exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Disk, DiskFile};

/// A cloneable handle on one simulated disk; clones share the disk.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    /// Directory entries as the running process sees them.
    names: BTreeMap<PathBuf, u64>,
    /// Directory entries as a crash would leave them.
    durable_names: BTreeMap<PathBuf, u64>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// Bumped by every crash; handles from an older generation are dead.
    generation: u64,
    fail_next_sync: bool,
}

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    /// `data[..synced_len]` is durable, unless `synced_before_truncate` is
    /// set: then an unsynced truncation cut into the durable bytes, and
    /// these are the durable bytes.
    synced_len: usize,
    synced_before_truncate: Option<Vec<u8>>,
    /// Where the last append since the last sync starts, if the last change
    /// since the sync was an append.
    last_append: Option<usize>,
    /// Open handles of the current generation.
    handles: usize,
}

impl Inode {
    fn sync(&mut self) {
        self.synced_len = self.data.len();
        self.synced_before_truncate = None;
        self.last_append = None;
    }

    fn crash(&mut self, tear: Option<&mut ChaCha8Rng>) {
        match (self.last_append, tear) {
            (Some(start), Some(rng)) => {
                let appended = (self.data.len() - start) as u64;
                let keep = rng.next_u64() % (appended + 1);
                self.data.truncate(start + keep as usize);
            }
            _ => match self.synced_before_truncate.take() {
                Some(durable) => self.data = durable,
                None => self.data.truncate(self.synced_len),
            },
        }
        self.sync();
        self.handles = 0;
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("simdisk: {} not found", path.display()))
}

fn injected_sync_failure() -> io::Error {
    io::Error::other("simdisk: injected sync failure")
}

impl State {
    fn parent_is_dir(&self, path: &Path) -> bool {
        path.parent().is_some_and(|p| self.dirs.contains(p))
    }

    /// Drops the inodes nothing refers to any more.
    fn collect_garbage(&mut self) {
        let used: BTreeSet<u64> = self.names.values().chain(self.durable_names.values()).copied().collect();
        self.inodes.retain(|id, inode| inode.handles > 0 || used.contains(id));
    }

    fn take_sync_failure(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(injected_sync_failure());
        }
        Ok(())
    }

    fn crash(&mut self, mut tear: Option<ChaCha8Rng>) {
        self.generation += 1;
        self.fail_next_sync = false;
        self.names = self.durable_names.clone();
        for inode in self.inodes.values_mut() {
            inode.crash(tear.as_mut());
        }
        self.collect_garbage();
    }
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses every unsynced byte and directory change, and kills every open
    /// handle. Clears a pending [`SimDisk::fail_next_sync`].
    pub fn crash(&self) {
        self.lock().crash(None);
    }

    /// As [`SimDisk::crash`], but each file's last unsynced append keeps a
    /// prefix of a length drawn from a ChaCha generator seeded by `seed`
    /// (files are visited in creation order), and what was written before
    /// that append survives.
    pub fn crash_tearing(&self, seed: u64) {
        self.lock().crash(Some(ChaCha8Rng::seed_from_u64(seed)));
    }

    /// Makes the next [`DiskFile::sync`] or [`Disk::sync_dir`] fail; what it
    /// would have synced stays unsynced.
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// Replaces the content of an existing file, durably (a test's way to
    /// model bit rot or a file cut short).
    pub fn overwrite(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let mut st = self.lock();
        let id = *st.names.get(path).ok_or_else(|| not_found(path))?;
        let inode = st.inodes.get_mut(&id).expect("named inode exists");
        inode.data = data;
        inode.sync();
        Ok(())
    }
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("SimDisk")
            .field("dirs", &st.dirs.len())
            .field("files", &st.names.len())
            .field("generation", &st.generation)
            .finish()
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        for dir in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            if st.names.contains_key(dir) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("simdisk: {} is a file", dir.display()),
                ));
            }
            st.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let names: BTreeSet<String> = (st.names.keys().chain(st.dirs.iter()))
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        Ok(names.into_iter().collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.lock();
        let id = st.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(st.inodes[id].data.clone())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut st = self.lock();
        let id = match st.names.get(path) {
            Some(&id) => id,
            None => {
                if !st.parent_is_dir(path) || st.dirs.contains(path) {
                    return Err(not_found(path));
                }
                let id = st.next_inode;
                st.next_inode += 1;
                st.inodes.insert(id, Inode::default());
                st.names.insert(path.to_path_buf(), id);
                id
            }
        };
        st.inodes.get_mut(&id).expect("named inode exists").handles += 1;
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), id, generation: st.generation }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if !st.parent_is_dir(to) {
            return Err(not_found(to));
        }
        let id = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_path_buf(), id);
        st.collect_garbage();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.names.remove(path).ok_or_else(|| not_found(path))?;
        st.collect_garbage();
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        st.take_sync_failure()?;
        let st = &mut *st;
        st.durable_names.retain(|p, _| p.parent() != Some(dir));
        for (path, &id) in st.names.iter().filter(|(p, _)| p.parent() == Some(dir)) {
            st.durable_names.insert(path.clone(), id);
        }
        st.collect_garbage();
        Ok(())
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    id: u64,
    generation: u64,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.generation != self.generation {
            return Err(io::Error::other("simdisk: the disk crashed since this file was opened"));
        }
        f(&mut st, self.id)
    }
}

impl DiskFile for SimFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).expect("open inode exists");
            inode.last_append = Some(inode.data.len());
            inode.data.extend_from_slice(buf);
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.with(|st, id| {
            st.take_sync_failure()?;
            st.inodes.get_mut(&id).expect("open inode exists").sync();
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).expect("open inode exists");
            let len = usize::try_from(len).map_err(io::Error::other)?;
            if len < inode.synced_len && inode.synced_before_truncate.is_none() {
                inode.synced_before_truncate = Some(inode.data[..inode.synced_len].to_vec());
            }
            inode.data.resize(len, 0);
            inode.last_append = None;
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.with(|st, id| Ok(st.inodes[&id].data.len() as u64)).unwrap_or(0)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let _ = self.with(|st, id| {
            st.inodes.get_mut(&id).expect("open inode exists").handles -= 1;
            st.collect_garbage();
            Ok(())
        });
    }
}
