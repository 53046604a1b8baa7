//! Seeded random operations on the WAL, checked against a model: after a
//! clean reopen the WAL holds exactly the model; after a crash (plain, torn
//! or after a failed sync) it holds one of the states the model went
//! through since the last successful sync, never an error.

mod common;

use common::*;
use detcd_server::storage::{SimDisk, Wal, WalError};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

fn bytes(rng: &mut ChaCha8Rng, max_len: u64) -> Vec<u8> {
    let len = below(rng, max_len + 1) as usize;
    let mut out = vec![0; len];
    rng.fill_bytes(&mut out);
    out
}

/// Reopens after a crash and checks the WAL came back in one of the
/// `candidates` states.
fn recover(disk: &SimDisk, segment_size: u64, candidates: &[Model], context: &str) -> (Wal, Model) {
    let (wal, recovered) = try_open(disk, segment_size).unwrap_or_else(|e| panic!("{context}: {e}"));
    let got = Model::of(&recovered);
    assert!(
        candidates.contains(&got),
        "{context}: recovered {got:?}\nwhich is none of the {} states since the last sync, from {:?}",
        candidates.len(),
        candidates[0]
    );
    (wal, got)
}

/// Adds a state a crash may leave, if the last operation changed anything.
fn note(candidates: &mut Vec<Model>, model: &Model) {
    if candidates.last() != Some(model) {
        candidates.push(model.clone());
    }
}

fn run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let disk = SimDisk::new();
    let segment_size = [150, 400, 1 << 20][(seed % 3) as usize];
    let (mut wal, _) = open(&disk, segment_size);
    let mut model = Model::default();
    // The states a crash may leave: from the last sync on.
    let mut candidates = vec![model.clone()];
    for step in 0..150 {
        let context = format!("seed {seed} step {step}");
        match below(&mut rng, 100) {
            0..=39 => {
                let first = model.next_index();
                let batch: Vec<_> = (first..first + 1 + below(&mut rng, 6)).map(|i| (i, bytes(&mut rng, 60))).collect();
                wal.append(&batch).unwrap_or_else(|e| panic!("{context}: {e}"));
                for e in batch {
                    model.entries.push(e);
                    note(&mut candidates, &model);
                }
            }
            40..=47 => {
                let first = model.entries.first().map_or(model.next_index(), |e| e.0);
                let since = first + below(&mut rng, model.next_index() - first + 2);
                wal.truncate_since(since).unwrap();
                model.truncate_since(since);
                note(&mut candidates, &model);
            }
            48..=54 => {
                let up_to = model.purged.map_or(0, |p| p + 1) + below(&mut rng, model.entries.len() as u64 + 3);
                wal.purge_up_to(up_to).unwrap();
                model.purge_up_to(up_to);
                note(&mut candidates, &model);
            }
            55..=61 => {
                let vote = bytes(&mut rng, 20);
                wal.save_vote(&vote).unwrap();
                model.vote = Some(vote);
                note(&mut candidates, &model);
            }
            62..=79 => {
                wal.sync().unwrap();
                candidates = vec![model.clone()];
            }
            80..=96 => {
                let kind = below(&mut rng, 3);
                if kind == 0 {
                    disk.fail_next_sync();
                    let failed = wal.sync();
                    if candidates.len() > 1 {
                        assert!(matches!(failed, Err(WalError::Io { .. })), "{context}: {failed:?}");
                        assert!(matches!(wal.append(&[entry(model.next_index())]), Err(WalError::Poisoned)));
                    }
                }
                if kind == 2 {
                    disk.crash_tearing(rng.next_u64());
                } else {
                    disk.crash();
                }
                drop(wal);
                (wal, model) = recover(&disk, segment_size, &candidates, &context);
                candidates = vec![model.clone()];
            }
            _ => {
                drop(wal);
                let recovered;
                (wal, recovered) = open(&disk, segment_size);
                assert_eq!(Model::of(&recovered), model, "{context}");
                assert_eq!(recovered.torn_tail, None, "{context}");
                // Opening syncs what it recovered.
                candidates = vec![model.clone()];
            }
        }
    }
    // Purging everything leaves one segment, holding the vote and the purge.
    let up_to = model.next_index() + 3;
    wal.purge_up_to(up_to).unwrap();
    wal.sync().unwrap();
    assert_eq!(segments(&disk, &dir()).len(), 1, "seed {seed}");
    drop(wal);
    let recovered = open(&disk, segment_size).1;
    assert_eq!((recovered.entries.len(), recovered.purged), (0, Some(up_to)), "seed {seed}");
    assert_eq!(recovered.vote, model.vote, "seed {seed}");
}

#[test]
fn random_operations_and_crashes_match_the_model() {
    for seed in 0..300 {
        run(seed);
    }
}
