//! Durable storage: the [`Disk`] seam, its real ([`RealDisk`]) and simulated
//! ([`SimDisk`]) implementations, and the write-ahead log ([`Wal`]).
//!
//! Everything here is synchronous and uses only the operations of [`Disk`],
//! so the simulator can swap the file system for one that loses unsynced
//! bytes, tears the last write or fails an fsync, all from a seed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

mod sim_disk;
pub mod wal;

pub use sim_disk::SimDisk;
pub use wal::{Recovered, Wal, WalError, WalOptions};

/// The few file-system operations the storage code needs.
///
/// Durability follows POSIX: bytes appended to a file are durable once
/// [`DiskFile::sync`] returns, and a created, renamed or removed directory
/// entry is durable once [`Disk::sync_dir`] of its directory returns.
pub trait Disk: Send + Sync + 'static {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`, sorted. Names that are not UTF-8
    /// are left out.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens a file for appending, creating it (empty) if it is missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file open for appending.
pub trait DiskFile: Send {
    /// Appends `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended (and any truncation) durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; later appends go after them.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The current length of the file, synced or not.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Disk`] over `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(RealFile { file, len }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Only Unix lets a directory be opened and fsynced; elsewhere the
        // file system orders directory updates itself.
        if cfg!(unix) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

struct RealFile {
    file: File,
    len: u64,
}

impl DiskFile for RealFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.file.write_all(buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Part of `buf` may be in the file: learn the real length.
                if let Ok(meta) = self.file.metadata() {
                    self.len = meta.len();
                }
                Err(e)
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync also flushes the file size, which is all the metadata
        // reading the file back needs.
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}
