//! Helpers shared by the storage tests.
#![allow(dead_code)]

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use detcd_server::storage::{Disk, Recovered, SimDisk, Wal, WalError, WalOptions};

pub const DIR: &str = "/data/member/wal";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

pub fn opts(segment_size: u64) -> WalOptions {
    WalOptions { segment_size, ..WalOptions::default() }
}

pub fn try_open(disk: &SimDisk, segment_size: u64) -> Result<(Wal, Recovered), WalError> {
    Wal::open(Arc::new(disk.clone()), &dir(), opts(segment_size))
}

pub fn open(disk: &SimDisk, segment_size: u64) -> (Wal, Recovered) {
    try_open(disk, segment_size).expect("open the wal")
}

pub fn entry(index: u64) -> (u64, Vec<u8>) {
    (index, format!("entry {index}").into_bytes())
}

pub fn entries(indices: RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    indices.map(entry).collect()
}

/// The segment files in the WAL directory, in order.
pub fn segments(disk: &dyn Disk, dir: &Path) -> Vec<PathBuf> {
    let names = disk.list(dir).expect("list the wal dir");
    names.into_iter().filter(|n| n.ends_with(".wal")).map(|n| dir.join(n)).collect()
}

/// The offsets where records end, walking the length fields.
pub fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut offset = 0;
    while offset + 9 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        offset += 9 + len;
        ends.push(offset);
    }
    ends
}

/// Writes a file durably on a SimDisk (directory entry included).
pub fn install(disk: &SimDisk, path: &Path, bytes: &[u8]) {
    disk.create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = disk.open_append(path).unwrap();
    file.append(bytes).unwrap();
    file.sync().unwrap();
    disk.sync_dir(path.parent().unwrap()).unwrap();
}

/// What the WAL should hold, maintained by the tests beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub vote: Option<Vec<u8>>,
    pub entries: Vec<(u64, Vec<u8>)>,
    pub purged: Option<u64>,
}

impl Model {
    pub fn of(recovered: &Recovered) -> Model {
        Model { vote: recovered.vote.clone(), entries: recovered.entries.clone(), purged: recovered.purged }
    }

    pub fn next_index(&self) -> u64 {
        match (self.entries.last(), self.purged) {
            (Some(&(last, _)), _) => last + 1,
            (None, Some(purged)) => purged + 1,
            (None, None) => 1,
        }
    }

    pub fn truncate_since(&mut self, since: u64) {
        self.entries.retain(|&(i, _)| i < since);
    }

    pub fn purge_up_to(&mut self, up_to: u64) {
        if self.purged.is_some_and(|p| p >= up_to) {
            return;
        }
        self.purged = Some(up_to);
        self.entries.retain(|&(i, _)| i > up_to);
    }
}
