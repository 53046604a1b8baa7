//! The multi-version store: a key index (key -> revisions) beside a
//! revision-ordered history (revision -> value), as etcd's treeIndex and
//! backend. Writes go through a `StoreWriter` so that every change of one
//! request shares its main revision.

use super::key_index::{KeyIndex, KeyIndexMap};
use crate::error::{Error, Result};
use crate::kv::{Event, EventKind, KeyRange, KeyValue, Revision};
use bytes::Bytes;
use std::collections::BTreeSet;

/// One change in the history: a put (the full key-value) or a tombstone
/// (`kv` holds only the key and the deleting revision).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub rev: Revision,
    pub kv: KeyValue,
    pub tombstone: bool,
}

#[derive(Debug, Clone)]
pub struct Store {
    index: KeyIndexMap,
    /// Every change still kept, strictly ordered by revision.
    history: Vec<HistoryEntry>,
    /// The last main revision written; a fresh store is at 1, as etcd.
    current: i64,
    /// Reads below this revision fail with `Compacted` (0: never compacted).
    compacted: i64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store { index: KeyIndexMap::default(), history: Vec::new(), current: 1, compacted: 0 }
    }

    pub fn current_revision(&self) -> i64 {
        self.current
    }

    pub fn compact_revision(&self) -> i64 {
        self.compacted
    }

    /// Number of live keys at the current revision.
    pub fn len(&self) -> usize {
        self.index.values().filter(|ki| ki.latest.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of changes kept in the history.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Resolves a requested read revision: 0 or less is the current one;
    /// above the current one is `FutureRev`; below the compaction point is
    /// `Compacted`.
    pub fn read_revision(&self, rev: i64) -> Result<i64> {
        self.resolve_revision(rev, self.current)
    }

    /// As `read_revision`, for a reader whose current revision is `view`
    /// (inside a write request, its own new revision).
    pub fn resolve_revision(&self, rev: i64, view: i64) -> Result<i64> {
        if rev <= 0 {
            Ok(view)
        } else if rev > view {
            Err(Error::FutureRev)
        } else if rev < self.compacted {
            Err(Error::Compacted)
        } else {
            Ok(rev)
        }
    }

    /// The live value of `key` at the current revision.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.index.get(key).and_then(|ki| ki.latest.as_ref())
    }

    /// The value of `key` as of main revision `main` (which the caller has
    /// checked with `read_revision`).
    pub fn get_at(&self, key: &[u8], main: i64) -> Option<&KeyValue> {
        let ki = self.index.get(key)?;
        self.visible(ki, main)
    }

    fn visible<'a>(&'a self, ki: &'a KeyIndex, main: i64) -> Option<&'a KeyValue> {
        if main >= ki.last_main() {
            return ki.latest.as_ref();
        }
        let rev = ki.visible_at(main)?;
        let entry = self.entry(rev).expect("the key index only names kept revisions");
        Some(&entry.kv)
    }

    fn entry(&self, rev: Revision) -> Option<&HistoryEntry> {
        self.history.binary_search_by(|e| e.rev.cmp(&rev)).ok().map(|i| &self.history[i])
    }

    /// Calls `visit` with each key-value live at `main` in `range`, in key
    /// order, until it returns false.
    pub fn scan(&self, range: KeyRange<'_>, main: i64, mut visit: impl FnMut(&KeyValue) -> bool) {
        if let KeyRange::Single(key) = range {
            if let Some(kv) = self.get_at(key, main) {
                visit(kv);
            }
            return;
        }
        let Some(bounds) = range.bounds() else { return };
        for ki in self.index.range(bounds) {
            if let Some(kv) = self.visible(ki, main) {
                if !visit(kv) {
                    return;
                }
            }
        }
    }

    /// The changes with main revision in `[from, to]` whose key is `wanted`,
    /// in revision order, stopping at a revision boundary once at least `max`
    /// are collected. Returns them with the last main revision scanned.
    /// Events carry `prev_kv` when `with_prev` (if not compacted away).
    pub fn events(
        &self,
        from: i64,
        to: i64,
        max: usize,
        mut wanted: impl FnMut(&[u8]) -> bool,
        with_prev: bool,
    ) -> (Vec<Event>, i64) {
        let start = self.history.partition_point(|e| e.rev.main < from);
        let mut events = Vec::new();
        let mut last_main = from - 1;
        let mut scanned_to = to;
        for e in &self.history[start..] {
            if e.rev.main > to {
                break;
            }
            if events.len() >= max && e.rev.main != last_main {
                scanned_to = last_main;
                break;
            }
            last_main = e.rev.main;
            if !wanted(&e.kv.key) {
                continue;
            }
            // As etcd, a creation has no previous value, even after a delete
            // of the key earlier in the same revision.
            let created = !e.tombstone && e.kv.create_revision == e.rev.main;
            let prev_kv = if with_prev && !created { self.prev_version(&e.kv.key, e.rev.main) } else { None };
            let kind = if e.tombstone { EventKind::Delete } else { EventKind::Put };
            events.push(Event { kind, kv: e.kv.clone(), prev_kv });
        }
        (events, scanned_to)
    }

    fn prev_version(&self, key: &[u8], main: i64) -> Option<KeyValue> {
        if main - 1 < self.compacted {
            return None;
        }
        let ki = self.index.get(key)?;
        let rev = ki.visible_at(main - 1)?;
        self.entry(rev).map(|e| e.kv.clone())
    }

    /// Starts a write request at the next main revision.
    pub fn writer(&mut self) -> StoreWriter<'_> {
        let main = self.current + 1;
        StoreWriter { store: self, main, sub: 0, events: Vec::new() }
    }

    /// Drops history below `at` except what reads at `at` need. The caller
    /// has checked `at` against the current and compacted revisions.
    pub fn compact(&mut self, at: i64) {
        assert!(at > self.compacted && at <= self.current, "compaction revision out of range");
        let mut kept = Vec::new();
        self.index.retain(|ki| !ki.compact(at, &mut kept));
        let kept: BTreeSet<Revision> = kept.into_iter().collect();
        self.history.retain(|e| e.rev.main >= at || kept.contains(&e.rev));
        self.compacted = at;
    }

    /// A crc32 over every kept change up to main revision `rev` (etcd's
    /// HashKV): equal on members with equal histories.
    pub fn hash_kv(&self, rev: i64) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for e in self.history.iter().take_while(|e| e.rev.main <= rev) {
            h.update(&e.rev.main.to_le_bytes());
            h.update(&e.rev.sub.to_le_bytes());
            h.update(&[u8::from(e.tombstone)]);
            for n in [e.kv.create_revision, e.kv.version, e.kv.lease] {
                h.update(&n.to_le_bytes());
            }
            h.update(&(e.kv.key.len() as u64).to_le_bytes());
            h.update(&e.kv.key);
            h.update(&e.kv.value);
        }
        h.finalize()
    }

    /// The kept history, for snapshots.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Rebuilds a store from a snapshot's history, checking that it is one a
    /// store could have produced.
    pub fn from_history(
        history: Vec<HistoryEntry>,
        current: i64,
        compacted: i64,
    ) -> std::result::Result<Store, String> {
        if current < 1 || compacted < 0 || compacted > current {
            return Err(format!("revisions out of order: current {current}, compacted {compacted}"));
        }
        let mut store =
            Store { index: KeyIndexMap::default(), history: Vec::with_capacity(history.len()), current, compacted };
        for e in history {
            if store.history.last().is_some_and(|last| last.rev >= e.rev)
                || e.rev.main > current
                || e.rev.main < 1
                || e.rev.sub < 0
            {
                return Err(format!("history entry at revision {:?} out of order", e.rev));
            }
            if e.kv.mod_revision != e.rev.main {
                return Err(format!("history entry at revision {:?} has mod_revision {}", e.rev, e.kv.mod_revision));
            }
            let ki = store.index.entry(&e.kv.key);
            if e.tombstone {
                if ki.latest.is_some() {
                    ki.tombstone(e.rev);
                } else if e.rev.main == compacted && ki.last_main() == 0 {
                    ki.orphan_tombstone(e.rev);
                } else {
                    return Err(format!("tombstone at revision {:?} for a key that is not live", e.rev));
                }
            } else {
                ki.put(e.rev, e.kv.clone());
            }
            store.history.push(e);
        }
        Ok(store)
    }

    /// Panics if a structural invariant is broken: history strictly ordered,
    /// every indexed revision present with its key, the latest-value cache
    /// equal to what the index says. For tests and the simulator's checkers.
    pub fn check_invariants(&self) {
        for w in self.history.windows(2) {
            assert!(w[0].rev < w[1].rev, "history out of order");
        }
        if let Some(last) = self.history.last() {
            assert!(last.rev.main <= self.current);
        }
        for (key, ki) in self.index.iter() {
            for rev in ki.revisions() {
                let e = self.entry(rev).expect("indexed revision missing from history");
                assert_eq!(e.kv.key.as_ref(), key.as_slice());
            }
            assert_eq!(ki.last_main(), ki.revisions().last().map_or(0, |r| r.main));
            if let Some(latest) = &ki.latest {
                assert_eq!(latest.key.as_ref(), key.as_slice());
                assert_eq!(ki.visible_at(self.current).map(|r| r.main), Some(latest.mod_revision));
            }
        }
    }
}

/// The changes of one write request: all share `main`, numbered by `sub`.
/// Reads through the writer see the request's own earlier changes, as in etcd.
pub struct StoreWriter<'a> {
    store: &'a mut Store,
    main: i64,
    sub: i64,
    events: Vec<Event>,
}

impl StoreWriter<'_> {
    pub fn store(&self) -> &Store {
        self.store
    }

    /// The revision a read inside this request reports: the new revision
    /// once something was written, else the current one.
    pub fn revision(&self) -> i64 {
        if self.sub > 0 {
            self.main
        } else {
            self.main - 1
        }
    }

    fn next_rev(&mut self) -> Revision {
        let rev = Revision::new(self.main, self.sub);
        self.sub += 1;
        rev
    }

    /// Writes `key`; returns the previous live value.
    pub fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> Option<KeyValue> {
        self.put_with(key, |_| (value, lease))
    }

    /// Writes `key` with the value and lease that `choose` picks given the
    /// current live value (one index lookup for both); returns that value.
    pub fn put_with(&mut self, key: Bytes, choose: impl FnOnce(Option<&KeyValue>) -> (Bytes, i64)) -> Option<KeyValue> {
        let rev = self.next_rev();
        let ki = self.store.index.entry(&key);
        let prev = ki.latest.clone();
        let (value, lease) = choose(prev.as_ref());
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue { key, create_revision, mod_revision: rev.main, version, value, lease };
        ki.put(rev, kv.clone());
        self.store.history.push(HistoryEntry { rev, kv: kv.clone(), tombstone: false });
        self.events.push(Event { kind: EventKind::Put, kv, prev_kv: prev.clone() });
        prev
    }

    /// Deletes every live key in `range`; returns their previous values.
    pub fn delete_range(&mut self, range: KeyRange<'_>) -> Vec<KeyValue> {
        let mut victims = Vec::new();
        self.store.scan(range, i64::MAX, |kv| {
            victims.push(kv.clone());
            true
        });
        for prev in &victims {
            self.delete_live(prev.clone());
        }
        victims
    }

    /// Deletes one key known to be live (`prev` is its current value).
    pub fn delete_live(&mut self, prev: KeyValue) {
        let key = prev.key.clone();
        // A watcher's prev_kv is the value before this revision, as etcd's
        // (not a put of the key earlier in the same request).
        let event_prev =
            if prev.mod_revision == self.main { self.store.prev_version(&prev.key, self.main) } else { Some(prev) };
        let rev = self.next_rev();
        let ki = self.store.index.get_mut(key.as_ref()).expect("deleting a live key");
        ki.tombstone(rev);
        let kv = KeyValue { key, mod_revision: rev.main, ..Default::default() };
        self.store.history.push(HistoryEntry { rev, kv: kv.clone(), tombstone: true });
        self.events.push(Event { kind: EventKind::Delete, kv, prev_kv: event_prev });
    }

    /// Ends the request: the store moves to the new revision if anything was
    /// written. Returns the resulting revision and the events, in order.
    pub fn finish(self) -> (i64, Vec<Event>) {
        if self.sub > 0 {
            self.store.current = self.main;
        }
        (self.store.current, self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A put and a delete of one key in one request (a delete of `[key, \0)`
    /// passes etcd's duplicate check): watchers get etcd's prev_kv, the value
    /// before the revision and none for a creation, whether the events come
    /// straight from the writer or later from the history.
    #[test]
    fn prev_kv_of_a_key_changed_twice_in_one_revision() {
        let mut s = Store::new();
        let mut w = s.writer();
        w.put(b("k"), b("old"), 0);
        w.finish();
        let old = s.get(b"k").cloned();

        // put then delete: the delete's prev is the old value.
        let mut w = s.writer();
        w.put(b("k"), b("new"), 0);
        w.delete_range(KeyRange::From(b"k"));
        let (rev, evs) = w.finish();
        assert_eq!(evs[1].prev_kv, old);
        let (hist, _) = s.events(rev, rev, usize::MAX, |_| true, true);
        assert_eq!(hist.iter().map(|e| e.prev_kv.clone()).collect::<Vec<_>>(), vec![old.clone(), old.clone()]);

        // delete then put: the put creates the key anew, so has no prev.
        let mut w = s.writer();
        w.put(b("k"), b("again"), 0);
        w.finish();
        let mut w = s.writer();
        w.delete_range(KeyRange::From(b"k"));
        w.put(b("k"), b("fresh"), 0);
        let (rev, evs) = w.finish();
        assert_eq!(evs[1].prev_kv, None);
        let (hist, _) = s.events(rev, rev, usize::MAX, |_| true, true);
        assert_eq!(hist[1].prev_kv, None);
        assert_eq!(hist[0].prev_kv, evs[0].prev_kv);
        s.check_invariants();
    }
}
