//! What the log holds, as the writer tracks it and as recovery rebuilds it
//! by replaying records.

use std::collections::VecDeque;
use std::path::Path;

use super::record::{self, Record};
use super::WalError;

/// The indices of the live entries and which segment holds each of them.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// First and last live index; `None` if no entry is live.
    pub(super) range: Option<(u64, u64)>,
    pub(super) purged: Option<u64>,
    /// `(first index, segment seq)`: the live entries from that index up to
    /// the next run's first index are in that segment. Seqs only grow.
    pub(super) runs: Vec<(u64, u64)>,
}

impl Tracker {
    /// The index the next appended entry must have; `None`: any index (an
    /// empty log that never purged anything).
    pub(super) fn next_index(&self) -> Option<u64> {
        match self.range {
            Some((_, last)) => Some(last.saturating_add(1)),
            None => self.purged.map(|p| p.saturating_add(1)),
        }
    }

    pub(super) fn push(&mut self, index: u64, seq: u64) {
        self.range = Some((self.range.map_or(index, |(first, _)| first), index));
        if self.runs.last().map(|&(_, s)| s) != Some(seq) {
            self.runs.push((index, seq));
        }
    }

    pub(super) fn truncate_since(&mut self, since: u64) {
        self.range = match self.range {
            Some((first, last)) if since > first => Some((first, last.min(since - 1))),
            _ => None,
        };
        while self.runs.last().is_some_and(|&(start, _)| start >= since) {
            self.runs.pop();
        }
        if self.range.is_none() {
            self.runs.clear();
        }
    }

    pub(super) fn purge_up_to(&mut self, up_to: u64) {
        self.purged = Some(self.purged.map_or(up_to, |p| p.max(up_to)));
        self.range = match self.range {
            Some((first, last)) if last > up_to => Some((first.max(up_to + 1), last)),
            _ => None,
        };
        if self.range.is_none() {
            self.runs.clear();
        }
        while self.runs.len() >= 2 && self.runs[1].0 <= up_to.saturating_add(1) {
            self.runs.remove(0);
        }
    }

    /// Whether the live entries, if any, start right after the purged
    /// index: always true once anything was purged and old segments were
    /// deleted, which is what recovery checks when the first segments are
    /// gone.
    pub(super) fn starts_after_purge(&self) -> bool {
        match (self.range, self.purged) {
            (None, Some(_)) => true,
            (Some((first, _)), Some(purged)) => first == purged.saturating_add(1),
            (_, None) => false,
        }
    }
}

/// The state rebuilt from the records read so far.
#[derive(Debug, Default)]
pub(super) struct Replay {
    pub(super) vote: Option<Vec<u8>>,
    /// The caller's description of the purged entry, from the last
    /// `PurgeUpToMeta`; cleared by a plain `PurgeUpTo` that purges more.
    pub(super) purged_meta: Option<Vec<u8>>,
    pub(super) entries: VecDeque<(u64, Vec<u8>)>,
    pub(super) log: Tracker,
}

fn corrupt(file: &Path, offset: usize, reason: String) -> WalError {
    WalError::Corrupt { file: file.to_path_buf(), offset: offset as u64, reason }
}

impl Replay {
    /// Replays the records of one segment. In the last segment an invalid
    /// record that a torn write explains (incomplete, or complete at the
    /// end of the file with a bad crc, or followed by nothing but zero
    /// bytes) ends the log: its offset is returned. Any other invalid
    /// record is corruption.
    pub(super) fn segment(
        &mut self,
        file: &Path,
        seq: u64,
        bytes: &[u8],
        last: bool,
        max_len: u32,
    ) -> Result<Option<u64>, WalError> {
        let mut offset = 0;
        while offset < bytes.len() {
            match record::decode(&bytes[offset..], max_len) {
                Ok((record, size)) => {
                    self.apply(record, seq).map_err(|reason| corrupt(file, offset, reason))?;
                    offset += size;
                }
                Err(bad) if last && (bad.may_be_torn() || bytes[offset..].iter().all(|&b| b == 0)) => {
                    return Ok(Some(offset as u64));
                }
                Err(bad) => return Err(corrupt(file, offset, bad.to_string())),
            }
        }
        Ok(None)
    }

    /// Applies one record. Besides what the writer enforces, an entry
    /// after an empty log may start anywhere above the purged index: replay
    /// may start at a segment whose first entries follow entries in
    /// segments deleted by a purge.
    fn apply(&mut self, record: Record<'_>, seq: u64) -> Result<(), String> {
        match record {
            Record::Vote(vote) => self.vote = Some(vote.to_vec()),
            Record::Entry { index, data } => {
                if let Some(purged) = self.log.purged.filter(|&p| index <= p) {
                    return Err(format!("entry {index} is at or below the purged index {purged}"));
                }
                if let Some((_, last)) = self.log.range.filter(|&(_, last)| index != last.saturating_add(1)) {
                    return Err(format!("entry {index} does not follow entry {last}"));
                }
                self.entries.push_back((index, data.to_vec()));
                self.log.push(index, seq);
            }
            Record::TruncateSince(since) => {
                while self.entries.back().is_some_and(|&(index, _)| index >= since) {
                    self.entries.pop_back();
                }
                self.log.truncate_since(since);
            }
            Record::PurgeUpTo(up_to) => {
                if !matches!(self.log.purged, Some(p) if p >= up_to) {
                    self.purged_meta = None;
                }
                self.purge_up_to(up_to);
            }
            Record::PurgeUpToMeta { index: up_to, meta } => {
                if !matches!(self.log.purged, Some(p) if p > up_to) {
                    self.purged_meta = Some(meta.to_vec());
                }
                self.purge_up_to(up_to);
            }
        }
        Ok(())
    }

    fn purge_up_to(&mut self, up_to: u64) {
        while self.entries.front().is_some_and(|&(index, _)| index <= up_to) {
            self.entries.pop_front();
        }
        self.log.purge_up_to(up_to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_appends_truncations_and_purges() {
        let mut t = Tracker::default();
        assert_eq!(t.next_index(), None);
        for i in 1..=10 {
            t.push(i, if i <= 5 { 0 } else { 1 });
        }
        assert_eq!(t.runs, vec![(1, 0), (6, 1)]);
        t.truncate_since(4);
        assert_eq!((t.range, t.runs.clone()), (Some((1, 3)), vec![(1, 0)]));
        t.push(4, 2);
        t.push(5, 2);
        assert_eq!(t.runs, vec![(1, 0), (4, 2)]);
        t.purge_up_to(3);
        assert_eq!((t.range, t.runs.clone()), (Some((4, 5)), vec![(4, 2)]));
        assert!(t.starts_after_purge());
        t.purge_up_to(9);
        assert_eq!((t.range, t.next_index()), (None, Some(10)));
        assert!(t.runs.is_empty());
        t.truncate_since(1);
        assert_eq!(t.next_index(), Some(10));
    }

    #[test]
    fn a_purge_inside_the_first_run_keeps_it() {
        let mut t = Tracker::default();
        for i in 0..6 {
            t.push(i, i / 3);
        }
        t.purge_up_to(1);
        assert_eq!(t.runs, vec![(0, 0), (3, 1)]);
        t.purge_up_to(2);
        assert_eq!(t.runs, vec![(3, 1)]);
    }
}
