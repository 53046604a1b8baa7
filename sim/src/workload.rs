//! A seeded stream of commands over a small key space (so operations
//! conflict), and a replay that hashes everything `apply` returns.

use bytes::Bytes;
use detcd_core::request::*;
use detcd_core::{prefix_range_end, Millis, State, StateConfig};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Workload {
    rng: ChaCha8Rng,
    keys: u64,
}

impl Workload {
    pub fn new(seed: u64, keys: u64) -> Workload {
        Workload { rng: ChaCha8Rng::seed_from_u64(seed), keys: keys.max(1) }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn key(&mut self) -> Bytes {
        Bytes::from(format!("k{}", self.below(self.keys)))
    }

    /// The next command; `revision` is the store's current revision, so
    /// compactions can aim at valid and invalid points alike.
    pub fn next_command(&mut self, revision: i64) -> Command {
        let key = self.key();
        let value = Bytes::from(format!("v{}", self.below(1000)));
        match self.below(10) {
            0..=3 => Command::Put(PutRequest { key, value, prev_kv: self.below(2) == 0, ..Default::default() }),
            4 => Command::DeleteRange(DeleteRangeRequest { key, ..Default::default() }),
            5 => Command::DeleteRange(DeleteRangeRequest {
                range_end: prefix_range_end(b"k"),
                key: Bytes::from_static(b"k"),
                prev_kv: true,
            }),
            6 | 7 => {
                let version = self.below(3) as i64;
                Command::Txn(TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal,
                        target: CompareTarget::Version(version),
                        key: key.clone(),
                        range_end: Bytes::new(),
                    }],
                    success: vec![RequestOp::Put(PutRequest { key: key.clone(), value, ..Default::default() })],
                    failure: vec![RequestOp::Range(RangeRequest { key, ..Default::default() })],
                })
            }
            8 => Command::Compaction(CompactionRequest {
                revision: self.below(revision as u64 + 2) as i64,
                physical: true,
            }),
            _ => {
                if self.below(2) == 0 {
                    Command::LeaseGrant(LeaseGrantRequest { ttl: 1 + self.below(30) as i64, id: 0 })
                } else {
                    Command::LeaseRevoke(LeaseRevokeRequest { id: self.below(4) as i64 })
                }
            }
        }
    }
}

/// Applies `steps` commands from `seed` and returns a crc32 over every
/// response and event, plus the final state. With `restore_at`, the state is
/// replaced by a snapshot round trip of itself after that many steps.
pub fn replay(seed: u64, steps: u64, restore_at: Option<u64>) -> (u32, State) {
    let mut workload = Workload::new(seed, 6);
    let mut state = State::new(StateConfig::default());
    let mut trace = crc32fast::Hasher::new();
    for index in 1..=steps {
        if restore_at == Some(index) {
            state = detcd_core::snapshot::decode(&detcd_core::snapshot::encode(&state)).expect("own snapshot decodes");
        }
        let cmd = workload.next_command(state.revision());
        let applied = state.apply(index, &cmd, Millis(index * 10));
        let record = (applied.revision, &applied.result, &applied.events);
        trace.update(&postcard::to_allocvec(&record).expect("encoding to memory cannot fail"));
    }
    (trace.finalize(), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_trace() {
        for seed in 0..20 {
            let (a, sa) = replay(seed, 300, None);
            let (b, sb) = replay(seed, 300, None);
            assert_eq!(a, b, "seed {seed} diverged");
            assert_eq!(sa.hash(), sb.hash());
        }
        assert_ne!(replay(1, 300, None).0, replay(2, 300, None).0);
    }

    #[test]
    fn snapshot_restore_mid_run_changes_nothing() {
        for seed in 0..20 {
            let (trace, state) = replay(seed, 300, None);
            let (restored_trace, restored) = replay(seed, 300, Some(150));
            assert_eq!(trace, restored_trace, "seed {seed}");
            assert_eq!(state.hash(), restored.hash());
            state.store().check_invariants();
        }
    }
}
