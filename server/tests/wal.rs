//! The WAL over a SimDisk: round trips, rotation, truncation and purge,
//! crashes, torn writes and corruption.

mod common;

use common::*;
use detcd_server::storage::{Disk, SimDisk, WalError, WalOptions};
use std::path::Path;

const BIG: u64 = 1 << 30;

#[test]
fn votes_and_entries_round_trip() {
    let disk = SimDisk::new();
    let (mut wal, recovered) = open(&disk, BIG);
    assert_eq!(Model::of(&recovered), Model::default());
    assert_eq!(recovered.torn_tail, None);
    assert_eq!(wal.next_index(), None);
    wal.save_vote(b"term 1").unwrap();
    wal.append(&entries(1..=3)).unwrap();
    wal.save_vote(b"term 2").unwrap();
    wal.append(&entries(4..=10)).unwrap();
    wal.append::<&[u8]>(&[]).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.next_index(), Some(11));
    drop(wal);

    let (mut wal, recovered) = open(&disk, BIG);
    assert_eq!(recovered.vote.as_deref(), Some(&b"term 2"[..]));
    assert_eq!(recovered.entries, entries(1..=10));
    assert_eq!((recovered.purged, recovered.torn_tail, wal.next_index()), (None, None, Some(11)));
    wal.append(&entries(11..=12)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(&disk, BIG).1.entries, entries(1..=12));
}

#[test]
fn bad_appends_are_refused_without_writing() {
    let disk = SimDisk::new();
    let small = WalOptions { max_record_size: 100, ..opts(BIG) };
    let (mut wal, _) = detcd_server::storage::Wal::open(std::sync::Arc::new(disk.clone()), &dir(), small).unwrap();
    wal.append(&entries(5..=5)).unwrap(); // an empty log may start anywhere
    let err = wal.append(&entries(7..=7)).unwrap_err();
    assert!(matches!(err, WalError::OutOfOrder { expected: 6, got: 7 }), "{err}");
    let err = wal.append(&[entry(6), entry(8)]).unwrap_err();
    assert!(matches!(err, WalError::OutOfOrder { expected: 7, got: 8 }), "{err}");
    let err = wal.append(&[(6, vec![0; 93])]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { len: 101, max: 100 }), "{err}");
    assert!(matches!(wal.save_vote(&[0; 101]), Err(WalError::RecordTooLarge { .. })));
    wal.append(&[(6, vec![0; 92])]).unwrap();
    wal.save_vote(&[1; 100]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let recovered = open(&disk, BIG).1;
    assert_eq!(recovered.entries, vec![entry(5), (6, vec![0; 92])]);
    assert_eq!(recovered.vote, Some(vec![1; 100]));
}

#[test]
fn rotation_spreads_the_log_over_segments() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 256);
    wal.save_vote(b"vote").unwrap();
    for batch in entries(1..=200).chunks(7) {
        wal.append(batch).unwrap();
    }
    wal.sync().unwrap();
    let files = segments(&disk, &dir());
    assert!(files.len() >= 10, "{files:?}");
    for (seq, file) in files.iter().enumerate() {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(&name[..16], format!("{seq:016x}"), "{name}");
        let len = disk.read(file).unwrap().len() as u64;
        if seq + 1 < files.len() {
            assert!(len >= 256, "{name} closed at {len} bytes");
        }
    }
    drop(wal);
    let recovered = open(&disk, 256).1;
    assert_eq!(recovered.entries, entries(1..=200));
    assert_eq!(recovered.vote.as_deref(), Some(&b"vote"[..]));
}

#[test]
fn truncation_and_purge_survive_reopen_and_free_segments() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 256);
    wal.save_vote(b"v1").unwrap();
    wal.append(&entries(1..=100)).unwrap();
    wal.truncate_since(90).unwrap();
    let rewritten: Vec<_> = (90..=95).map(|i| (i, format!("rewritten {i}").into_bytes())).collect();
    wal.append(&rewritten).unwrap();
    wal.sync().unwrap();
    let before = segments(&disk, &dir());
    wal.purge_up_to(40).unwrap();
    assert_eq!(segments(&disk, &dir()), before, "segments go only once the purge is synced");
    wal.sync().unwrap();
    let after = segments(&disk, &dir());
    assert!(after.len() < before.len(), "{} -> {}", before.len(), after.len());
    assert!(!after.contains(&before[0]), "the segment with the vote record is gone");
    drop(wal);

    let (mut wal, recovered) = open(&disk, 256);
    let mut expected = entries(41..=89);
    expected.extend(rewritten);
    assert_eq!(recovered.entries, expected);
    assert_eq!((recovered.purged, recovered.vote.as_deref()), (Some(40), Some(&b"v1"[..])));

    wal.purge_up_to(120).unwrap(); // past the end: the log restarts at 121
    assert_eq!(wal.next_index(), Some(121));
    assert!(matches!(wal.append(&entries(96..=96)), Err(WalError::OutOfOrder { expected: 121, got: 96 })));
    wal.append(&entries(121..=125)).unwrap();
    wal.truncate_since(200).unwrap(); // nothing to drop
    wal.sync().unwrap();
    assert!(segments(&disk, &dir()).len() <= 2);
    drop(wal);
    let recovered = open(&disk, 256).1;
    assert_eq!((recovered.entries, recovered.purged), (entries(121..=125), Some(120)));
    assert_eq!(recovered.vote.as_deref(), Some(&b"v1"[..]));
}

/// A purge can carry the caller's bytes about the purged entry (openraft's
/// log id): they survive reopening, the deletion of the segment that held
/// them (new segments start with a copy) and go with a plain purge.
#[test]
fn purge_meta_survives_reopen_and_segment_deletion() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 256);
    wal.append(&entries(1..=60)).unwrap();
    wal.purge_up_to_with(30, b"term 2 index 30").unwrap();
    wal.append(&entries(61..=150)).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.purged_meta(), Some(&b"term 2 index 30"[..]));
    wal.purge_up_to_with(20, b"lower: ignored").unwrap();
    assert_eq!(wal.purged_meta(), Some(&b"term 2 index 30"[..]));
    let before = segments(&disk, &dir());
    wal.purge_up_to_with(140, b"term 3 index 140").unwrap();
    wal.sync().unwrap();
    assert!(!segments(&disk, &dir()).contains(&before[0]), "old segments deleted");
    drop(wal);

    let (mut wal, recovered) = open(&disk, 256);
    assert_eq!(recovered.entries, entries(141..=150));
    assert_eq!(recovered.purged, Some(140));
    assert_eq!(recovered.purged_meta.as_deref(), Some(&b"term 3 index 140"[..]));
    // Rotation copies it into the next segment's header.
    wal.append(&entries(151..=250)).unwrap();
    wal.purge_up_to(245).unwrap(); // a plain purge drops the meta
    wal.sync().unwrap();
    assert_eq!(wal.purged_meta(), None);
    drop(wal);
    let recovered = open(&disk, 256).1;
    assert_eq!((recovered.purged, recovered.purged_meta), (Some(245), None));
    assert_eq!(recovered.entries, entries(246..=250));
}

#[test]
fn a_crash_loses_unsynced_records_only() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.save_vote(b"v1").unwrap();
    wal.append(&entries(1..=30)).unwrap();
    wal.sync().unwrap();
    wal.append(&entries(31..=33)).unwrap();
    wal.save_vote(b"v2").unwrap();
    wal.truncate_since(10).unwrap();
    wal.purge_up_to(5).unwrap();
    disk.crash();
    assert!(wal.append(&entries(6..=6)).is_err(), "handles die with the crash");
    drop(wal);
    let recovered = open(&disk, BIG).1;
    assert_eq!(recovered.entries, entries(1..=30));
    assert_eq!((recovered.vote.as_deref(), recovered.purged), (Some(&b"v1"[..]), None));

    // Closing a full segment syncs it, so a crash may keep more than the
    // last sync, but never less.
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 200);
    for i in 1..=40 {
        wal.append(&entries(i..=i)).unwrap();
        if i == 25 {
            wal.sync().unwrap();
        }
    }
    disk.crash();
    drop(wal);
    let recovered = open(&disk, 200).1;
    let n = recovered.entries.len() as u64;
    assert!((25..40).contains(&n), "{n}");
    assert_eq!(recovered.entries, entries(1..=n));
}

#[test]
fn torn_crashes_recover_a_prefix_with_every_synced_entry() {
    let mut torn = 0;
    for seed in 0..400u64 {
        let disk = SimDisk::new();
        let segment_size = if seed % 2 == 0 { BIG } else { 300 };
        let (mut wal, _) = open(&disk, segment_size);
        wal.append(&entries(1..=20)).unwrap();
        wal.sync().unwrap();
        let mut next = 21;
        for batch in 0..(seed % 4 + 1) {
            let len = (seed / 4 + batch) % 6 + 1;
            wal.append(&entries(next..=next + len - 1)).unwrap();
            next += len;
        }
        disk.crash_tearing(seed);
        drop(wal);
        let (_, recovered) = try_open(&disk, segment_size).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let n = recovered.entries.len() as u64;
        assert!((20..next).contains(&n), "seed {seed}: {n} entries");
        assert_eq!(recovered.entries, entries(1..=n), "seed {seed}");
        torn += usize::from(recovered.torn_tail.is_some());
    }
    assert!(torn > 100, "only {torn} of 400 crashes tore a record");
}

/// Single-record operations, and the expected state after each record.
fn one_record_per_step(wal: &mut detcd_server::storage::Wal) -> Vec<Model> {
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    for step in 0..24u64 {
        match step % 6 {
            0 => {
                let vote = format!("vote {step}").into_bytes();
                wal.save_vote(&vote).unwrap();
                model.vote = Some(vote);
            }
            3 => {
                let since = model.next_index() - 1;
                wal.truncate_since(since).unwrap();
                model.truncate_since(since);
            }
            5 => {
                let up_to = model.entries[0].0;
                wal.purge_up_to(up_to).unwrap();
                model.purge_up_to(up_to);
            }
            _ => {
                let e = entry(model.next_index());
                wal.append(std::slice::from_ref(&e)).unwrap();
                model.entries.push(e);
            }
        }
        states.push(model.clone());
    }
    wal.sync().unwrap();
    states
}

#[test]
fn every_cut_of_the_last_segment_recovers_a_prefix() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    let states = one_record_per_step(&mut wal);
    drop(wal);
    let path = segments(&disk, &dir()).pop().unwrap();
    let bytes = disk.read(&path).unwrap();
    let ends = record_ends(&bytes);
    assert_eq!((ends.len(), ends.last()), (states.len() - 1, Some(&bytes.len())));
    for len in 0..=bytes.len() {
        let cut = SimDisk::new();
        install(&cut, &path, &bytes[..len]);
        let (_, recovered) = try_open(&cut, BIG).unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        let complete = ends.iter().filter(|&&end| end <= len).count();
        let boundary = if complete == 0 { 0 } else { ends[complete - 1] };
        assert_eq!(Model::of(&recovered), states[complete], "cut at {len}");
        let expected_tail = (len != boundary).then(|| (path.clone(), boundary as u64));
        assert_eq!(recovered.torn_tail, expected_tail, "cut at {len}");
        assert_eq!(cut.read(&path).unwrap().len(), boundary, "the torn tail is cut off");
        let again = try_open(&cut, BIG).unwrap().1;
        assert_eq!((Model::of(&again), again.torn_tail), (states[complete].clone(), None));
    }
}

#[test]
fn a_cut_short_earlier_segment_is_corruption() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 200);
    wal.append(&entries(1..=40)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let files = segments(&disk, &dir());
    assert!(files.len() >= 3);
    let first = disk.read(&files[0]).unwrap();
    let ends = record_ends(&first);
    let cut = ends[ends.len() - 2] + 5;
    disk.overwrite(&files[0], first[..cut].to_vec()).unwrap();
    let err = try_open(&disk, 200).unwrap_err();
    let at = ends[ends.len() - 2];
    assert!(matches!(&err, WalError::Corrupt { file, offset, .. } if *file == files[0] && *offset == at as u64));
    assert!(err.to_string().contains("incomplete record"), "{err}");
}

/// Flips one byte at `offset` of `file`, returning the original bytes.
fn flip(disk: &SimDisk, file: &Path, offset: usize) -> Vec<u8> {
    let original = disk.read(file).unwrap();
    let mut bytes = original.clone();
    bytes[offset] ^= 0x40;
    disk.overwrite(file, bytes).unwrap();
    original
}

#[test]
fn a_flipped_byte_inside_the_log_names_the_file_and_offset() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 300);
    wal.save_vote(b"vote").unwrap();
    wal.append(&entries(1..=64)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let files = segments(&disk, &dir());
    assert!(files.len() >= 3);
    for file in [&files[0], &files[1], files.last().unwrap()] {
        let ends = record_ends(&disk.read(file).unwrap());
        assert!(ends.len() >= 3);
        let start = ends[ends.len() / 2 - 1];
        // type byte, crc byte, payload byte (the index and the data)
        for (within, reason) in [(4, "crc mismatch"), (6, "crc mismatch"), (9, "crc mismatch"), (20, "crc mismatch")] {
            let original = flip(&disk, file, start + within);
            let err = try_open(&disk, 300).unwrap_err();
            let text = err.to_string();
            assert!(matches!(&err, WalError::Corrupt { file: f, offset, .. } if f == file && *offset == start as u64));
            assert!(text.contains(&file.display().to_string()), "{text}");
            assert!(text.contains(&format!("at byte offset {start}: {reason}")), "{text}");
            disk.overwrite(file, original).unwrap();
        }
    }
    // The last record of an earlier segment is no torn write either.
    let ends = record_ends(&disk.read(&files[0]).unwrap());
    flip(&disk, &files[0], ends[ends.len() - 1] - 1);
    let err = try_open(&disk, 300).unwrap_err();
    assert!(matches!(&err, WalError::Corrupt { file, .. } if *file == files[0]), "{err}");
}

#[test]
fn a_bad_crc_on_the_very_last_record_is_a_torn_write() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.append(&entries(1..=5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let file = segments(&disk, &dir()).pop().unwrap();
    let bytes = disk.read(&file).unwrap();
    let ends = record_ends(&bytes);
    flip(&disk, &file, bytes.len() - 1);
    let recovered = open(&disk, BIG).1;
    assert_eq!(recovered.entries, entries(1..=4));
    assert_eq!(recovered.torn_tail, Some((file, ends[3] as u64)));
}

#[test]
fn a_zero_filled_tail_is_a_torn_write_but_zeros_before_data_are_not() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.append(&entries(1..=5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let file = segments(&disk, &dir()).pop().unwrap();
    let bytes = disk.read(&file).unwrap();
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0; 4096]);
    disk.overwrite(&file, padded.clone()).unwrap();
    let recovered = open(&disk, BIG).1;
    assert_eq!((recovered.entries, recovered.torn_tail), (entries(1..=5), Some((file.clone(), bytes.len() as u64))));

    padded.extend_from_slice(&bytes);
    disk.overwrite(&file, padded).unwrap();
    let err = try_open(&disk, BIG).unwrap_err();
    assert!(matches!(&err, WalError::Corrupt { offset, .. } if *offset == bytes.len() as u64), "{err}");
}

#[test]
fn an_oversized_declared_length_is_corruption_not_an_allocation() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.append(&entries(1..=3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let file = segments(&disk, &dir()).pop().unwrap();
    let mut bytes = disk.read(&file).unwrap();
    let end = bytes.len();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 3]);
    disk.overwrite(&file, bytes).unwrap();
    let err = try_open(&disk, BIG).unwrap_err();
    assert!(matches!(&err, WalError::Corrupt { offset, .. } if *offset == end as u64), "{err}");
    assert!(err.to_string().contains("exceeds the maximum record size"), "{err}");
}

#[test]
fn a_failed_sync_surfaces_and_poisons_the_wal() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.append(&entries(1..=3)).unwrap();
    wal.sync().unwrap();
    wal.append(&entries(4..=6)).unwrap();
    disk.fail_next_sync();
    let err = wal.sync().unwrap_err();
    assert!(matches!(&err, WalError::Io { op: "sync", .. }), "{err}");
    assert!(err.to_string().contains("injected sync failure"), "{err}");
    assert!(matches!(wal.append(&entries(7..=7)), Err(WalError::Poisoned)));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
    disk.crash();
    drop(wal);
    assert_eq!(open(&disk, BIG).1.entries, entries(1..=3), "the failed sync made nothing durable");

    let fresh = SimDisk::new();
    fresh.fail_next_sync();
    assert!(matches!(try_open(&fresh, BIG), Err(WalError::Io { op: "sync", .. })));
}

#[test]
fn leftovers_of_an_interrupted_purge_are_removed_but_a_missing_segment_is_refused() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, 200);
    wal.append(&entries(1..=60)).unwrap();
    wal.sync().unwrap();
    let before = segments(&disk, &dir());
    let first = disk.read(&before[0]).unwrap();
    wal.purge_up_to(30).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let after = segments(&disk, &dir());
    assert!(after.len() + 2 <= before.len() && after.len() >= 3);
    // As if the removal of segment 0 had not reached the disk.
    install(&disk, &before[0], &first);
    let recovered = open(&disk, 200).1;
    assert_eq!((recovered.entries, recovered.purged), (entries(31..=60), Some(30)));
    assert_eq!(recovered.stale_segments, vec![before[0].clone()]);
    assert_eq!(segments(&disk, &dir()), after);

    // A segment missing in the middle of the live entries is not a leftover.
    disk.remove(&after[1]).unwrap();
    let err = try_open(&disk, 200).unwrap_err();
    assert!(matches!(&err, WalError::BadSegment { file, .. } if *file == after[2]), "{err}");
    assert!(err.to_string().contains("earlier segments are missing"), "{err}");
}

#[test]
fn other_files_are_ignored_and_bad_segment_names_refused() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, BIG);
    wal.append(&entries(1..=2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    install(&disk, &dir().join("notes.txt"), b"hello");
    disk.create_dir_all(&dir().join("sub")).unwrap();
    assert_eq!(open(&disk, BIG).1.entries, entries(1..=2));
    install(&disk, &dir().join("0000000000000001-zz.wal"), b"");
    let err = try_open(&disk, BIG).unwrap_err();
    assert!(matches!(&err, WalError::BadSegment { .. }), "{err}");
}
