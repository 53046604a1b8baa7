//! The per-key index: which revisions of one key exist, grouped in
//! generations (a generation runs from a creation to the tombstone that ends
//! it), as etcd's `keyIndex`. The values themselves live in the
//! revision-ordered history; the index only says which revision to read.

use crate::kv::{KeyBounds, KeyValue, Revision};
use foldhash::fast::FixedState;
use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeSet;

/// A key as the index stores it: short keys inline, so comparisons while
/// descending the tree do not chase a pointer per key (the index's lookups
/// are dominated by cache misses otherwise).
pub(crate) type IndexKey = smallvec::SmallVec<[u8; 24]>;

/// Every key's `KeyIndex`, found by hash for point reads and writes (one or
/// two cache misses instead of one per tree level), with the keys also kept
/// in order for range scans. The hash seed is fixed: it only spreads keys,
/// it never changes a result.
#[derive(Debug, Clone)]
pub(crate) struct KeyIndexMap {
    by_key: HashMap<IndexKey, KeyIndex, FixedState>,
    ordered: BTreeSet<IndexKey>,
}

impl Default for KeyIndexMap {
    fn default() -> Self {
        KeyIndexMap {
            by_key: HashMap::with_hasher(FixedState::with_seed(0x6b65_795f_696e_6478)),
            ordered: BTreeSet::new(),
        }
    }
}

impl KeyIndexMap {
    pub(crate) fn get(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.by_key.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut KeyIndex> {
        self.by_key.get_mut(key)
    }

    /// The key's index, created empty if the key is new.
    pub(crate) fn entry(&mut self, key: &[u8]) -> &mut KeyIndex {
        match self.by_key.entry(IndexKey::from_slice(key)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.ordered.insert(e.key().clone());
                e.insert(KeyIndex::default())
            }
        }
    }

    /// The indexes of the keys within `bounds`, in key order.
    pub(crate) fn range<'a>(&'a self, bounds: KeyBounds<'_>) -> impl Iterator<Item = &'a KeyIndex> + 'a {
        let keys: std::collections::btree_set::Range<'a, IndexKey> = self.ordered.range::<[u8], _>(bounds);
        keys.map(|k| &self.by_key[k.as_slice()])
    }

    /// Every key with its index, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&IndexKey, &KeyIndex)> {
        self.ordered.iter().map(|k| (k, &self.by_key[k.as_slice()]))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &KeyIndex> {
        self.by_key.values()
    }

    /// Keeps the keys for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut KeyIndex) -> bool) {
        let ordered = &mut self.ordered;
        self.by_key.retain(|k, ki| {
            let kept = keep(ki);
            if !kept {
                ordered.remove(k);
            }
            kept
        });
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    /// The live value at the current revision (`None` once deleted): a cache
    /// that makes current-revision reads a single map lookup.
    pub(crate) latest: Option<KeyValue>,
    /// Main revision of the last change (0 if none), so a read at or above
    /// it needs only `latest`.
    last_main: i64,
    generations: Vec<Generation>,
}

#[derive(Debug, Clone, Default)]
struct Generation {
    /// Ascending revisions of this key's puts (and the tombstone, if ended).
    revs: Vec<Revision>,
    /// The last revision is a tombstone: the key was deleted there.
    ended: bool,
}

impl Generation {
    fn is_tombstone(&self, idx: usize) -> bool {
        self.ended && idx + 1 == self.revs.len()
    }
}

impl KeyIndex {
    pub(crate) fn put(&mut self, rev: Revision, kv: KeyValue) {
        match self.generations.last_mut() {
            Some(g) if !g.ended => {
                debug_assert!(g.revs.last().is_none_or(|last| *last < rev));
                g.revs.push(rev);
            }
            _ => self.generations.push(Generation { revs: vec![rev], ended: false }),
        }
        self.last_main = rev.main;
        self.latest = Some(kv);
    }

    /// Records a delete. The caller only deletes live keys.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(self.latest.is_some(), "tombstone of a key that is not live");
        let g = self.generations.last_mut().expect("a live key has a generation");
        debug_assert!(!g.ended);
        g.revs.push(rev);
        g.ended = true;
        self.last_main = rev.main;
        self.latest = None;
    }

    /// Restores a tombstone whose put was compacted away (possible only for a
    /// delete exactly at the compaction revision).
    pub(crate) fn orphan_tombstone(&mut self, rev: Revision) {
        assert!(self.latest.is_none() && self.generations.is_empty(), "orphan tombstone after other changes");
        self.generations.push(Generation { revs: vec![rev], ended: true });
        self.last_main = rev.main;
    }

    /// The main revision of the key's last change (0 if none).
    pub(crate) fn last_main(&self) -> i64 {
        self.last_main
    }

    /// The revision holding the key's value as of main revision `main`, or
    /// `None` if the key did not exist (or was deleted) then.
    pub(crate) fn visible_at(&self, main: i64) -> Option<Revision> {
        for g in self.generations.iter().rev() {
            if g.revs[0].main > main {
                continue;
            }
            let idx = g.revs.partition_point(|r| r.main <= main) - 1;
            return (!g.is_tombstone(idx)).then(|| g.revs[idx]);
        }
        None
    }

    /// Drops the revisions that a compaction at `at` makes unreachable: every
    /// revision at or above `at` stays (so a watch from `at` sees its events),
    /// and below it only the latest one, and only if it is a live value that
    /// a read at `at` sees. That kept revision, if any, is pushed onto
    /// `kept_below`. Returns true when nothing of the key is left.
    pub(crate) fn compact(&mut self, at: i64, kept_below: &mut Vec<Revision>) -> bool {
        let mut last_below = None;
        let mut changed_at = false;
        for (gi, g) in self.generations.iter().enumerate() {
            for (ri, r) in g.revs.iter().enumerate() {
                if r.main >= at {
                    changed_at |= r.main == at;
                    break;
                }
                last_below = Some((gi, ri));
            }
        }
        // A change exactly at `at` is what reads at `at` see instead.
        let keep_live = last_below.filter(|&(gi, ri)| !changed_at && !self.generations[gi].is_tombstone(ri));
        if let Some((gi, ri)) = keep_live {
            kept_below.push(self.generations[gi].revs[ri]);
        }
        for (gi, g) in self.generations.iter_mut().enumerate() {
            let mut ri = 0;
            g.revs.retain(|r| {
                let keep = r.main >= at || keep_live == Some((gi, ri));
                ri += 1;
                keep
            });
        }
        self.generations.retain(|g| !g.revs.is_empty());
        self.generations.is_empty()
    }

    /// Every revision in the index, in order (used to check invariants).
    pub(crate) fn revisions(&self) -> Vec<Revision> {
        self.generations.iter().flat_map(|g| g.revs.iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    fn index(puts_and_deletes: &[(i64, bool)]) -> KeyIndex {
        let mut ki = KeyIndex::default();
        for &(main, is_put) in puts_and_deletes {
            if is_put {
                ki.put(r(main), KeyValue { mod_revision: main, ..Default::default() });
            } else {
                ki.tombstone(r(main));
            }
        }
        ki
    }

    #[test]
    fn visibility_across_generations() {
        // put@2, put@4, delete@6, put@8
        let ki = index(&[(2, true), (4, true), (6, false), (8, true)]);
        assert_eq!(ki.visible_at(1), None);
        assert_eq!(ki.visible_at(2), Some(r(2)));
        assert_eq!(ki.visible_at(5), Some(r(4)));
        assert_eq!(ki.visible_at(6), None);
        assert_eq!(ki.visible_at(7), None);
        assert_eq!(ki.visible_at(100), Some(r(8)));
    }

    #[test]
    fn compaction_keeps_what_reads_and_watches_need() {
        let mut ki = index(&[(2, true), (4, true), (6, false), (8, true)]);
        let mut kept = vec![];
        assert!(!ki.compact(5, &mut kept));
        assert_eq!(kept, vec![r(4)]);
        assert_eq!(ki.revisions(), vec![r(4), r(6), r(8)]);
        assert_eq!(ki.visible_at(5), Some(r(4)));

        let mut kept = vec![];
        assert!(!ki.compact(7, &mut kept));
        assert!(kept.is_empty(), "a tombstone below the compaction point is dropped");
        assert_eq!(ki.revisions(), vec![r(8)]);
    }

    #[test]
    fn compaction_drops_a_deleted_key_entirely() {
        let mut ki = index(&[(2, true), (3, false)]);
        let mut kept = vec![];
        assert!(ki.compact(4, &mut kept));
        assert!(kept.is_empty());
    }
}
