//! The openraft storage adapters on detcd's disk: restarts restore the
//! vote, the log, the committed log id and the newest snapshot; crashes
//! lose only what was never acknowledged; damaged snapshots are skipped or
//! refused as documented in `raft/snapshot.rs`.

mod raft_common;

use std::path::PathBuf;
use std::sync::Arc;

use detcd_server::raft::log_store::{LogStore, Vote};
use detcd_server::raft::state_machine::StateMachineStore;
use detcd_server::storage::{Disk, RealDisk, SimDisk};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::{RaftLogReader, RaftSnapshotBuilder, StorageHelper};
use raft_common::*;

use detcd_server::raft::types::TypeConfig;

/// Writes a history, reopens with `reopen`, and checks everything came back;
/// then lets openraft's startup re-apply the log past the snapshot.
async fn restart_round_trip(first: (LogStore, StateMachineStore), reopen: impl Fn() -> (LogStore, StateMachineStore)) {
    let (mut log, mut sm) = first;
    let vote = Vote::new_committed(2, 1);
    log.save_vote(&vote).await.unwrap();
    // As openraft lays a log out: the initial membership at index 0.
    let mut entries = vec![membership(1, 0, &[1])];
    entries.extend((1..=20).map(|i| put(2, i)));
    append(&mut log, entries.clone()).await.unwrap();
    apply(&mut sm, entries[..=12].to_vec()).await.unwrap();
    let built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(2, 12)));
    apply(&mut sm, entries[13..].to_vec()).await.unwrap();
    log.save_committed(Some(log_id(2, 20))).await.unwrap();
    log.purge(log_id(2, 10)).await.unwrap();
    drop((log, sm));

    let (mut log, mut sm) = reopen();
    assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), Some(vote));
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(2, 10)), Some(log_id(2, 20))));
    assert_eq!(log.get_log_reader().await.try_get_log_entries(0..100).await.unwrap(), entries[11..].to_vec());
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(2, 20)));
    let (applied, members) = sm.applied_state().await.unwrap();
    assert_eq!((applied, *members.log_id()), (Some(log_id(2, 12)), Some(log_id(1, 0))));
    let shared = sm.shared();
    assert_eq!((get(&shared, "k12"), get(&shared, "k13")), (Some(b("v12")), None));
    assert_eq!(shared.applied_index(), 12);
    let current = sm.get_current_snapshot().await.unwrap().expect("a snapshot");
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.into_inner(), built.snapshot.into_inner());

    // openraft's startup re-applies the log from the snapshot to `committed`.
    let initial = StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
    assert_eq!(initial.vote_ref(), &vote);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(2, 20)));
    assert_eq!((get(&shared, "k20"), shared.applied_index()), (Some(b("v20")), 20));
}

#[test]
fn restart_on_simdisk_restores_vote_log_and_latest_snapshot() {
    let disk = SimDisk::new();
    TypeConfig::run(restart_round_trip(open(&disk), || open(&disk)));
}

#[test]
fn restart_on_a_real_directory_restores_vote_log_and_latest_snapshot() {
    let dir = std::env::temp_dir().join(format!("detcd-raft-storage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open_real = || try_open_on(Arc::new(RealDisk), &dir).expect("open on a real directory");
    TypeConfig::run(restart_round_trip(open_real(), open_real));
    let snaps: Vec<String> = RealDisk.list(&dir.join("member/snap")).unwrap();
    assert_eq!(snaps, vec![format!("{:016x}-{:016x}.snap", 0, 12)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crash_loses_only_unsynced_writes() {
    TypeConfig::run(async {
        let disk = SimDisk::new();
        let mut log = open_log(&disk);
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        append(&mut log, (1..=10).map(|i| put(3, i)).collect()).await.unwrap();
        // Neither is synced by itself: both ride on the next append's fsync.
        log.save_committed(Some(log_id(3, 8))).await.unwrap();
        log.purge(log_id(3, 3)).await.unwrap();
        disk.crash();
        let mut log = open_log(&disk);
        assert_eq!(log.get_log_reader().await.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(log.read_committed().await.unwrap(), None);
        assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, None);
        let all: Vec<_> = (1..=10).map(|i| put(3, i)).collect();
        assert_eq!(log.get_log_reader().await.try_get_log_entries(..).await.unwrap(), all);

        log.save_committed(Some(log_id(3, 8))).await.unwrap();
        log.purge(log_id(3, 3)).await.unwrap();
        log.truncate_after(Some(log_id(3, 9))).await.unwrap();
        append(&mut log, vec![put(4, 10)]).await.unwrap();
        disk.crash();
        let mut log = open_log(&disk);
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(3, 8)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(3, 3)), Some(log_id(4, 10))));
    });
}

/// Whatever a torn crash keeps, every acknowledged entry is there, and the
/// log is a contiguous prefix of what was written.
#[test]
fn torn_crashes_never_lose_an_acknowledged_entry() {
    TypeConfig::run(async {
        for seed in 0..32 {
            let disk = SimDisk::new();
            let (mut log, _) = open(&disk);
            let mut acked = Vec::new();
            for batch in 0..4u64 {
                let entries: Vec<_> = (batch * 5 + 1..=batch * 5 + 5).map(|i| put(1, i)).collect();
                append(&mut log, entries.clone()).await.unwrap();
                acked.extend(entries);
            }
            disk.fail_next_sync();
            let unacked: Vec<_> = (21..=25).map(|i| put(1, i)).collect();
            assert!(append(&mut log, unacked.clone()).await.is_err(), "a failed fsync is not an acknowledgement");
            disk.crash_tearing(seed);
            let (mut log, _) = open(&disk);
            let got = log.get_log_reader().await.try_get_log_entries(..).await.unwrap();
            assert!(got.len() >= acked.len(), "seed {seed}: lost acknowledged entries");
            let written: Vec<_> = acked.iter().chain(&unacked).cloned().collect();
            assert_eq!(got[..], written[..got.len()], "seed {seed}");
        }
    });
}

#[test]
fn snapshots_keep_the_newest_two_and_survive_a_crash_mid_write() {
    TypeConfig::run(async {
        let disk = SimDisk::new();
        let (_, mut sm) = open(&disk);
        for i in 1..=3 {
            apply(&mut sm, vec![put(1, i)]).await.unwrap();
            sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        }
        // The same applied state again: nothing new to write.
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let expected = vec![format!("{:016x}-{:016x}.snap", 1, 2), format!("{:016x}-{:016x}.snap", 2, 3)];
        assert_eq!(names(&disk, &snap_dir()), expected);
        // A crash while the next one was being written leaves its temp file.
        let mut tmp = disk.open_append(&snap_dir().join(format!("{:016x}-{:016x}.snap.tmp", 3, 4))).unwrap();
        tmp.append(b"half a snapshot").unwrap();
        tmp.sync().unwrap();
        disk.sync_dir(&snap_dir()).unwrap();
        disk.crash();
        let (_, mut sm) = open(&disk);
        assert_eq!(names(&disk, &snap_dir()), expected, "the temp file is removed");
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
        assert_eq!(get(&sm.shared(), "k3"), Some(b("v3")));
    });
}

fn flip_a_byte(disk: &SimDisk, path: PathBuf) {
    let mut bytes = disk.read(&path).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    disk.overwrite(&path, bytes).unwrap();
}

/// Two snapshots (at 5 and 10) and the log behind them, committed to 10.
async fn two_snapshots(disk: &SimDisk) -> (LogStore, StateMachineStore) {
    let (mut log, mut sm) = open(disk);
    let mut entries = vec![membership(1, 0, &[1])];
    entries.extend((1..=10).map(|i| put(1, i)));
    append(&mut log, entries.clone()).await.unwrap();
    for chunk in [&entries[..=5], &entries[6..]] {
        apply(&mut sm, chunk.to_vec()).await.unwrap();
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    }
    log.save_committed(Some(log_id(1, 10))).await.unwrap();
    (log, sm)
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_older_one_and_the_log() {
    TypeConfig::run(async {
        let disk = SimDisk::new();
        drop(two_snapshots(&disk).await);
        let newest = format!("{:016x}-{:016x}.snap", 1, 10);
        flip_a_byte(&disk, snap_dir().join(&newest));
        let (mut log, mut sm) = open(&disk);
        let older = format!("{:016x}-{:016x}.snap", 0, 5);
        assert_eq!(names(&disk, &snap_dir()), vec![older, format!("{newest}.broken")]);
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 5)));
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(log_id(1, 5)));
        StorageHelper::new(&mut log, &mut sm).with_id(1).get_initial_state().await.unwrap();
        assert_eq!((get(&sm.shared(), "k10"), sm.shared().applied_index()), (Some(b("v10")), 10));
    });
}

#[test]
fn a_corrupt_snapshot_the_log_cannot_make_up_for_refuses_to_open() {
    TypeConfig::run(async {
        // The older snapshot is behind the purged log: entries 6..=10 exist nowhere.
        let disk = SimDisk::new();
        let (mut log, _sm) = two_snapshots(&disk).await;
        log.purge(log_id(1, 10)).await.unwrap();
        append(&mut log, vec![put(1, 11)]).await.unwrap();
        drop(log);
        flip_a_byte(&disk, snap_dir().join(format!("{:016x}-{:016x}.snap", 1, 10)));
        let err = try_open(&disk).unwrap_err().to_string();
        assert!(err.contains("purged up to") && err.contains("entries 6..=10"), "{err}");

        // The only snapshot is damaged: no state to start from.
        let disk = SimDisk::new();
        let (_, mut sm) = open(&disk);
        apply(&mut sm, vec![put(1, 1)]).await.unwrap();
        sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        let only = snap_dir().join(format!("{:016x}-{:016x}.snap", 0, 1));
        disk.overwrite(&only, b"DETCDRSN".to_vec()).unwrap();
        let err = try_open(&disk).unwrap_err().to_string();
        assert!(err.contains("no valid snapshot") && err.contains(".snap.broken"), "{err}");
    });
}
