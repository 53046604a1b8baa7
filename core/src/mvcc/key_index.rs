//! The per-key index: which revisions of one key exist, grouped in
//! generations (a generation runs from a creation to the tombstone that ends
//! it), as etcd's `keyIndex`. The values themselves live in the
//! revision-ordered history; the index only says which revision to read.

use crate::kv::{KeyValue, Revision};

#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    /// The live value at the current revision (`None` once deleted): a cache
    /// that makes current-revision reads a single map lookup.
    pub(crate) latest: Option<KeyValue>,
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
        self.latest = Some(kv);
    }

    /// Records a delete. The caller only deletes live keys.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(self.latest.is_some(), "tombstone of a key that is not live");
        let g = self.generations.last_mut().expect("a live key has a generation");
        debug_assert!(!g.ended);
        g.revs.push(rev);
        g.ended = true;
        self.latest = None;
    }

    /// Restores a tombstone whose put was compacted away (possible only for a
    /// delete exactly at the compaction revision).
    pub(crate) fn orphan_tombstone(&mut self, rev: Revision) {
        assert!(self.latest.is_none() && self.generations.is_empty(), "orphan tombstone after other changes");
        self.generations.push(Generation { revs: vec![rev], ended: true });
    }

    /// The main revision of the key's last change (0 if none).
    pub(crate) fn last_main(&self) -> i64 {
        self.generations.last().and_then(|g| g.revs.last()).map_or(0, |r| r.main)
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
