//! The lessor: leases, the keys attached to them, and when they expire.
//!
//! As in etcd, grants, revokes and checkpoints are replicated (applied on
//! every member), while expiry is decided by the leader alone: only the
//! primary lessor (the leader's) tracks deadlines, renews leases on
//! keep-alive, and reports expired leases, which the leader then proposes as
//! revokes. A follower's leases never expire on their own. When a member
//! becomes leader, `promote` gives every lease a fresh deadline from its
//! remaining TTL plus an extension, so no lease expires early because the
//! old leader's clock is gone.

use crate::error::{Error, Result};
use crate::kv::Millis;
use crate::request::LeaseCheckpoint;
use bytes::Bytes;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// etcd's `MaxLeaseTTL`.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// etcd's minimum with its default timings: 1.5 election timeouts, rounded
/// up to whole seconds.
pub const DEFAULT_MIN_LEASE_TTL: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// The granted TTL in seconds.
    pub ttl: i64,
    /// The last checkpointed remaining TTL in seconds, 0 if none.
    pub remaining_ttl: i64,
    /// When the lease expires on the leader's clock; `None` on followers.
    pub expiry: Option<Millis>,
    pub keys: BTreeSet<Bytes>,
}

impl Lease {
    /// The TTL a new leader starts this lease with.
    fn restart_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }
}

/// What `time_to_live` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStatus {
    pub id: i64,
    pub granted_ttl: i64,
    /// Whole seconds left (floored); the granted TTL on a follower.
    pub ttl: i64,
    pub keys: Vec<Bytes>,
}

#[derive(Debug, Clone)]
pub struct Lessor {
    leases: BTreeMap<i64, Lease>,
    primary: bool,
    min_ttl: i64,
    /// Seed of the generator for lease IDs that a grant leaves to the store:
    /// the same on every member, so every member picks the same ID.
    id_seed: u64,
}

impl Lessor {
    pub fn new(min_ttl: i64, id_seed: u64) -> Lessor {
        Lessor { leases: BTreeMap::new(), primary: false, min_ttl: min_ttl.max(1), id_seed }
    }

    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    pub fn id_seed(&self) -> u64 {
        self.id_seed
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Every lease ID, ascending.
    pub fn ids(&self) -> Vec<i64> {
        self.leases.keys().copied().collect()
    }

    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// Grants a lease (applied through the log). `id` 0 asks for a generated
    /// one, derived from the log index so every member derives the same.
    pub fn grant(&mut self, id: i64, ttl: i64, log_index: u64, now: Millis) -> Result<(i64, i64)> {
        if ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if id == 0 { self.generate_id(log_index) } else { id };
        if self.leases.contains_key(&id) {
            return Err(Error::LeaseExist);
        }
        let ttl = ttl.max(self.min_ttl);
        let expiry = self.primary.then(|| now.plus_secs(ttl));
        self.leases.insert(id, Lease { id, ttl, remaining_ttl: 0, expiry, keys: BTreeSet::new() });
        Ok((id, ttl))
    }

    fn generate_id(&self, log_index: u64) -> i64 {
        let mut rng = ChaCha8Rng::seed_from_u64(self.id_seed ^ log_index.rotate_left(17));
        loop {
            // Positive, non-zero, unused: 0 means "no lease" on the wire.
            let id = (rng.next_u64() >> 1) as i64;
            if id != 0 && !self.leases.contains_key(&id) {
                return id;
            }
        }
    }

    /// Removes a lease (applied through the log); the caller deletes its keys.
    pub fn revoke(&mut self, id: i64) -> Result<Lease> {
        self.leases.remove(&id).ok_or(Error::LeaseNotFound)
    }

    pub fn attach(&mut self, id: i64, key: &Bytes) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.clone());
        }
    }

    pub fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.remove(key);
        }
    }

    /// Records replicated remaining TTLs; the primary also moves deadlines.
    pub fn checkpoint(&mut self, checkpoints: &[LeaseCheckpoint], now: Millis) {
        for cp in checkpoints {
            if let Some(l) = self.leases.get_mut(&cp.id) {
                l.remaining_ttl = cp.remaining_ttl.max(0);
                if self.primary {
                    l.expiry = Some(now.plus_secs(l.restart_ttl()));
                }
            }
        }
    }

    /// Keep-alive, on the leader only. Returns the TTL and whether the lease
    /// had a checkpointed remaining TTL, which the leader should reset by
    /// proposing a checkpoint of 0 (else a new leader would use the stale
    /// remainder).
    pub fn renew(&mut self, id: i64, now: Millis) -> Result<(i64, bool)> {
        if !self.primary {
            return Err(Error::NotPrimary);
        }
        let l = self.leases.get_mut(&id).ok_or(Error::LeaseNotFound)?;
        if l.expiry.is_some_and(|e| e <= now) {
            // Expired but not yet revoked: etcd answers as if it were gone.
            return Err(Error::LeaseNotFound);
        }
        l.expiry = Some(now.plus_secs(l.ttl));
        Ok((l.ttl, l.remaining_ttl > 0))
    }

    /// Becomes the primary lessor: every lease gets a deadline of its
    /// remaining (or full) TTL plus `extend_ms` from `now`.
    pub fn promote(&mut self, now: Millis, extend_ms: u64) {
        self.primary = true;
        for l in self.leases.values_mut() {
            let deadline = now.plus_secs(l.restart_ttl());
            l.expiry = Some(Millis(deadline.0.saturating_add(extend_ms)));
        }
    }

    /// Stops being the primary lessor: deadlines are forgotten.
    pub fn demote(&mut self) {
        self.primary = false;
        for l in self.leases.values_mut() {
            l.expiry = None;
        }
    }

    /// Leases whose deadline has passed (primary only), earliest first, at
    /// most `max` (etcd rate-limits revokes).
    pub fn expired(&self, now: Millis, max: usize) -> Vec<i64> {
        let mut due: Vec<(Millis, i64)> =
            self.leases.values().filter_map(|l| l.expiry.filter(|e| *e <= now).map(|e| (e, l.id))).collect();
        due.sort_unstable();
        due.into_iter().take(max).map(|(_, id)| id).collect()
    }

    /// The remaining TTLs the leader should replicate as checkpoints: leases
    /// with a granted TTL of at least `min_ttl` seconds (etcd checkpoints only
    /// long leases), at most `max`.
    pub fn checkpoints(&self, now: Millis, min_ttl: i64, max: usize) -> Vec<LeaseCheckpoint> {
        self.leases
            .values()
            .filter(|l| l.ttl >= min_ttl)
            .filter_map(|l| l.expiry.map(|e| LeaseCheckpoint { id: l.id, remaining_ttl: remaining_secs(e, now) }))
            .filter(|cp| cp.remaining_ttl > 0)
            .take(max)
            .collect()
    }

    pub fn time_to_live(&self, id: i64, now: Millis) -> Result<LeaseStatus> {
        let l = self.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        let ttl = match l.expiry {
            Some(e) => remaining_secs(e, now),
            None => l.restart_ttl(),
        };
        Ok(LeaseStatus { id, granted_ttl: l.ttl, ttl, keys: l.keys.iter().cloned().collect() })
    }

    /// Restores a lease from a snapshot (no deadline until promoted).
    pub(crate) fn restore(&mut self, id: i64, ttl: i64, remaining_ttl: i64) {
        self.leases.insert(id, Lease { id, ttl, remaining_ttl, expiry: None, keys: BTreeSet::new() });
    }
}

fn remaining_secs(expiry: Millis, now: Millis) -> i64 {
    (expiry.0.saturating_sub(now.0) / 1000) as i64
}
