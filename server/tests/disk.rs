//! The Disk implementations: what a SimDisk crash keeps, and RealDisk
//! (with a WAL on it) in a temporary directory.

mod common;

use common::*;
use detcd_server::storage::{Disk, RealDisk, SimDisk, Wal};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn p(path: &str) -> PathBuf {
    PathBuf::from(path)
}

fn read(disk: &SimDisk, path: &str) -> Option<Vec<u8>> {
    disk.read(&p(path)).ok()
}

#[test]
fn directory_entries_need_a_directory_sync() {
    let disk = SimDisk::new();
    disk.create_dir_all(&p("/d/sub")).unwrap();
    assert_eq!(disk.list(&p("/d")).unwrap(), vec!["sub"]);
    assert_eq!(disk.list(&p("/nope")).unwrap_err().kind(), ErrorKind::NotFound);
    for name in ["/d/b", "/d/a"] {
        let mut f = disk.open_append(&p(name)).unwrap();
        f.append(name.as_bytes()).unwrap();
        f.sync().unwrap();
    }
    assert_eq!(disk.list(&p("/d")).unwrap(), vec!["a", "b", "sub"]);
    disk.crash();
    assert_eq!(disk.list(&p("/d")).unwrap(), vec!["sub"], "file data was synced, the entries were not");

    let mut f = disk.open_append(&p("/d/a")).unwrap();
    f.append(b"kept").unwrap();
    f.sync().unwrap();
    disk.sync_dir(&p("/d")).unwrap();
    disk.rename(&p("/d/a"), &p("/d/c")).unwrap();
    assert_eq!(read(&disk, "/d/a"), None);
    disk.crash();
    assert_eq!(read(&disk, "/d/a").as_deref(), Some(&b"kept"[..]), "the rename was not synced");
    disk.rename(&p("/d/a"), &p("/d/c")).unwrap();
    disk.sync_dir(&p("/d")).unwrap();
    disk.remove(&p("/d/c")).unwrap();
    disk.crash();
    assert_eq!(read(&disk, "/d/c").as_deref(), Some(&b"kept"[..]), "the removal was not synced");
    disk.remove(&p("/d/c")).unwrap();
    disk.sync_dir(&p("/d")).unwrap();
    disk.crash();
    assert_eq!(disk.list(&p("/d")).unwrap(), vec!["sub"]);
}

fn synced_file(disk: &SimDisk, path: &str, synced: &[u8]) -> Box<dyn detcd_server::storage::DiskFile> {
    let path = p(path);
    disk.create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = disk.open_append(&path).unwrap();
    f.append(synced).unwrap();
    f.sync().unwrap();
    disk.sync_dir(path.parent().unwrap()).unwrap();
    f
}

#[test]
fn a_crash_keeps_synced_bytes_and_kills_handles() {
    let disk = SimDisk::new();
    let mut f = synced_file(&disk, "/d/f", b"synced");
    f.append(b" unsynced").unwrap();
    assert_eq!((f.len(), read(&disk, "/d/f").unwrap().len()), (15, 15));
    let other = disk.clone();
    other.crash();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"synced"[..]));
    assert!(f.append(b"x").is_err() && f.sync().is_err() && f.truncate(0).is_err());
    let mut f = disk.open_append(&p("/d/f")).unwrap();
    assert_eq!(f.len(), 6);
    f.append(b"!").unwrap();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"synced!"[..]));
}

#[test]
fn an_unsynced_truncation_is_undone_by_a_crash() {
    let disk = SimDisk::new();
    let mut f = synced_file(&disk, "/d/f", b"0123456789");
    f.truncate(4).unwrap();
    f.append(b"ab").unwrap();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"0123ab"[..]));
    disk.crash();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"0123456789"[..]));
    let mut f = disk.open_append(&p("/d/f")).unwrap();
    f.truncate(3).unwrap();
    f.sync().unwrap();
    disk.crash();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"012"[..]));
}

#[test]
fn a_torn_crash_keeps_a_seeded_prefix_of_the_last_append() {
    let mut kept = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let disk = SimDisk::new();
        let mut f = synced_file(&disk, "/d/f", b"synced|");
        f.append(b"first|").unwrap();
        f.append(b"0123456789").unwrap();
        disk.crash_tearing(seed);
        let got = read(&disk, "/d/f").unwrap();
        let tail = got.strip_prefix(&b"synced|first|"[..]).unwrap_or_else(|| panic!("seed {seed}: {got:?}"));
        assert!(b"0123456789".starts_with(tail), "seed {seed}: {tail:?}");
        kept.insert(tail.len());

        let again = SimDisk::new();
        let mut f = synced_file(&again, "/d/f", b"synced|");
        f.append(b"first|").unwrap();
        f.append(b"0123456789").unwrap();
        again.crash_tearing(seed);
        assert_eq!(read(&again, "/d/f"), Some(got), "seed {seed} replays");
    }
    assert_eq!(kept.len(), 11, "every prefix length shows up: {kept:?}");

    let disk = SimDisk::new();
    let mut f = synced_file(&disk, "/d/f", b"synced");
    f.append(b"cut").unwrap();
    f.truncate(4).unwrap();
    disk.crash_tearing(1);
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"synced"[..]), "no append was last: plain crash");
}

#[test]
fn a_failed_sync_syncs_nothing() {
    let disk = SimDisk::new();
    let mut f = synced_file(&disk, "/d/f", b"a");
    f.append(b"b").unwrap();
    disk.fail_next_sync();
    assert!(f.sync().is_err());
    disk.crash();
    assert_eq!(read(&disk, "/d/f").as_deref(), Some(&b"a"[..]));

    let mut g = disk.open_append(&p("/d/g")).unwrap();
    g.sync().unwrap();
    disk.fail_next_sync();
    assert!(disk.sync_dir(&p("/d")).is_err());
    disk.sync_dir(&p("/d")).unwrap();
    disk.crash();
    assert_eq!(disk.list(&p("/d")).unwrap(), vec!["f", "g"]);
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!("detcd-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn real_disk_primitives() {
    let tmp = TempDir::new("disk");
    let dir = tmp.0.join("a/b");
    let disk = RealDisk;
    disk.create_dir_all(&dir).unwrap();
    let mut f = disk.open_append(&dir.join("x")).unwrap();
    assert!(f.is_empty());
    f.append(b"hello world").unwrap();
    f.sync().unwrap();
    f.truncate(5).unwrap();
    f.append(b"!").unwrap();
    assert_eq!(f.len(), 6);
    drop(f);
    assert_eq!(disk.read(&dir.join("x")).unwrap(), b"hello!");
    assert_eq!(disk.open_append(&dir.join("x")).unwrap().len(), 6);
    disk.open_append(&dir.join("w")).unwrap();
    disk.rename(&dir.join("x"), &dir.join("y")).unwrap();
    disk.sync_dir(&dir).unwrap();
    assert_eq!(disk.list(&dir).unwrap(), vec!["w", "y"]);
    disk.remove(&dir.join("w")).unwrap();
    assert_eq!(disk.list(&dir).unwrap(), vec!["y"]);
    assert_eq!(disk.read(&dir.join("w")).unwrap_err().kind(), ErrorKind::NotFound);
}

fn open_real(dir: &Path, segment_size: u64) -> (Wal, detcd_server::storage::Recovered) {
    Wal::open(Arc::new(RealDisk), dir, opts(segment_size)).unwrap()
}

#[test]
fn a_wal_on_a_real_disk_round_trips_and_recovers_a_torn_tail() {
    let tmp = TempDir::new("wal");
    let dir = tmp.0.join("member/wal");
    let (mut wal, recovered) = open_real(&dir, 300);
    assert_eq!(Model::of(&recovered), Model::default());
    wal.save_vote(b"vote").unwrap();
    wal.append(&entries(1..=80)).unwrap();
    wal.truncate_since(71).unwrap();
    wal.purge_up_to(20).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let files = segments(&RealDisk, &dir);
    assert!(files.len() >= 4, "{files:?}");

    let (mut wal, recovered) = open_real(&dir, 300);
    assert_eq!(recovered.entries, entries(21..=70));
    assert_eq!((recovered.vote.as_deref(), recovered.purged), (Some(&b"vote"[..]), Some(20)));
    wal.append(&entries(71..=72)).unwrap();
    wal.sync().unwrap();
    drop(wal);

    // Cut the last record of the last segment in half.
    let last = segments(&RealDisk, &dir).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);
    let (_, recovered) = open_real(&dir, 300);
    assert_eq!(recovered.entries, entries(21..=71));
    let (torn_file, offset) = recovered.torn_tail.unwrap();
    assert_eq!(torn_file, last);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), offset);
    assert_eq!(open_real(&dir, 300).1.torn_tail, None);
}
