//! The watch hub: watchers on a key or range, fed by the events `apply`
//! produces, in the shape of etcd's watchable store.
//!
//! A watcher is *synced* when it has seen everything up to the current
//! revision; new events go straight into its buffer. A watcher that starts in
//! the past, or whose buffer filled up, is *unsynced*: `sync` catches it up
//! from the store's history in bounded steps, without holding up the others,
//! then moves it back to synced. No event is dropped, duplicated or
//! reordered on the way; a start revision that compaction has removed ends
//! the watcher with the compact revision, as etcd does.

use crate::kv::{Event, EventKind, KeyRange};
use crate::mvcc::Store;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub type WatcherId = u64;

/// etcd's `WatchCreateRequest`, less the stream-level fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchRequest {
    pub key: Bytes,
    pub range_end: Bytes,
    /// First revision to deliver; 0 or less means the next one.
    pub start_revision: i64,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
    pub progress_notify: bool,
    pub fragment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutput {
    /// Events in revision order. `fragment` is set on every part of a split
    /// response but the last, as etcd's `fragment` flag.
    Events { watcher: WatcherId, revision: i64, events: Vec<Event>, fragment: bool },
    /// The watcher's start revision was compacted; it has been removed.
    Compacted { watcher: WatcherId, compact_revision: i64 },
    /// Nothing new up to `revision` (progress notification).
    Progress { watcher: WatcherId, revision: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// Events buffered per watcher before it is moved to the unsynced group.
    pub max_pending_events: usize,
    /// Responses of fragmenting watchers are split above this size.
    pub max_response_bytes: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits { max_pending_events: 1024, max_response_bytes: 1536 * 1024 }
    }
}

#[derive(Debug)]
struct Watcher {
    req: WatchRequest,
    /// Events below this revision were delivered (or are not wanted).
    next_rev: i64,
    synced: bool,
    pending: VecDeque<Event>,
}

impl Watcher {
    fn range(&self) -> KeyRange<'_> {
        KeyRange::new(&self.req.key, &self.req.range_end)
    }

    /// A single-key watcher (found through `by_key` while synced).
    fn single_key(&self) -> Option<&Bytes> {
        self.req.range_end.is_empty().then_some(&self.req.key)
    }

    fn wants(&self, ev: &Event) -> bool {
        match ev.kind {
            EventKind::Put => !self.req.no_put,
            EventKind::Delete => !self.req.no_delete,
        }
    }

    fn push(&mut self, ev: &Event) {
        let prev_kv = if self.req.prev_kv { ev.prev_kv.clone() } else { None };
        self.pending.push_back(Event { kind: ev.kind, kv: ev.kv.clone(), prev_kv });
    }
}

#[derive(Debug, Default)]
pub struct WatchHub {
    watchers: BTreeMap<WatcherId, Watcher>,
    /// Synced watchers on a single key, by key.
    by_key: BTreeMap<Bytes, Vec<WatcherId>>,
    /// Synced watchers on a range.
    ranged: BTreeSet<WatcherId>,
    unsynced: BTreeSet<WatcherId>,
    /// Watchers with buffered events.
    ready: BTreeSet<WatcherId>,
    compacted: Vec<(WatcherId, i64)>,
    next_id: WatcherId,
    limits: WatchLimits,
}

impl WatchHub {
    pub fn new(limits: WatchLimits) -> WatchHub {
        WatchHub { limits, next_id: 1, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    pub fn is_synced(&self, id: WatcherId) -> Option<bool> {
        self.watchers.get(&id).map(|w| w.synced)
    }

    /// Starts a watcher. One starting in the past is caught up by `sync`.
    pub fn watch(&mut self, req: WatchRequest, store: &Store) -> WatcherId {
        let id = self.next_id;
        self.next_id += 1;
        let current = store.current_revision();
        let next_rev = if req.start_revision <= 0 { current + 1 } else { req.start_revision };
        let w = Watcher { req, next_rev, synced: false, pending: VecDeque::new() };
        self.watchers.insert(id, w);
        if next_rev > current {
            self.set_synced(id);
        } else {
            self.unsynced.insert(id);
        }
        id
    }

    /// Removes a watcher; false if it did not exist.
    pub fn cancel(&mut self, id: WatcherId) -> bool {
        let Some(w) = self.watchers.remove(&id) else { return false };
        if w.synced {
            self.unindex_synced(id, w.single_key());
        }
        self.unsynced.remove(&id);
        self.ready.remove(&id);
        self.compacted.retain(|(c, _)| *c != id);
        true
    }

    fn set_synced(&mut self, id: WatcherId) {
        let w = self.watchers.get_mut(&id).expect("watcher exists");
        w.synced = true;
        match w.single_key() {
            Some(key) => self.by_key.entry(key.clone()).or_default().push(id),
            None => {
                self.ranged.insert(id);
            }
        }
    }

    fn unindex_synced(&mut self, id: WatcherId, single_key: Option<&Bytes>) {
        match single_key {
            Some(key) => {
                if let Some(ids) = self.by_key.get_mut(key) {
                    ids.retain(|x| *x != id);
                    if ids.is_empty() {
                        self.by_key.remove(key);
                    }
                }
            }
            None => {
                self.ranged.remove(&id);
            }
        }
    }

    /// Feeds the events of one applied command (all of one revision) to the
    /// synced watchers.
    pub fn notify(&mut self, events: &[Event]) {
        let Some(first) = events.first() else { return };
        let rev = first.kv.mod_revision;
        debug_assert!(events.iter().all(|e| e.kv.mod_revision == rev));
        let mut matches: Vec<(WatcherId, usize)> = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if let Some(ids) = self.by_key.get(&ev.kv.key) {
                matches.extend(ids.iter().map(|id| (*id, i)));
            }
            for id in &self.ranged {
                if self.watchers[id].range().contains(&ev.kv.key) {
                    matches.push((*id, i));
                }
            }
        }
        // Group by watcher, keeping each watcher's events in order.
        matches.sort_by_key(|(id, _)| *id);
        for group in matches.chunk_by(|a, b| a.0 == b.0) {
            let id = group[0].0;
            let w = self.watchers.get_mut(&id).expect("indexed watcher exists");
            if rev < w.next_rev {
                continue; // started at a future revision
            }
            let wanted = group.iter().filter(|(_, i)| w.wants(&events[*i])).count();
            if !w.pending.is_empty() && w.pending.len() + wanted > self.limits.max_pending_events {
                // Slow consumer: stop buffering; `sync` resumes it from `rev`.
                w.next_rev = rev;
                w.synced = false;
                let single_key = w.single_key().cloned();
                self.unindex_synced(id, single_key.as_ref());
                self.unsynced.insert(id);
                continue;
            }
            for (_, i) in group {
                if w.wants(&events[*i]) {
                    w.push(&events[*i]);
                }
            }
            w.next_rev = rev + 1;
            if !w.pending.is_empty() {
                self.ready.insert(id);
            }
        }
    }

    /// Catches unsynced watchers up from the store's history, each by at most
    /// its free buffer space, and moves the ones that reach the current
    /// revision to the synced group.
    pub fn sync(&mut self, store: &Store) {
        let current = store.current_revision();
        let ids: Vec<WatcherId> = self.unsynced.iter().copied().collect();
        for id in ids {
            let w = self.watchers.get_mut(&id).expect("unsynced watcher exists");
            if w.next_rev < store.compact_revision() {
                if !w.pending.is_empty() {
                    // Deliver what it was already given before the notice.
                    continue;
                }
                self.compacted.push((id, store.compact_revision()));
                self.unsynced.remove(&id);
                self.ready.remove(&id);
                self.watchers.remove(&id);
                continue;
            }
            let room = self.limits.max_pending_events.saturating_sub(w.pending.len());
            if room == 0 {
                continue;
            }
            let range = w.range();
            let (events, scanned_to) = store.events(w.next_rev, current, room, |k| range.contains(k), w.req.prev_kv);
            for ev in &events {
                if w.wants(ev) {
                    w.push(ev);
                }
            }
            w.next_rev = w.next_rev.max(scanned_to + 1);
            if !w.pending.is_empty() {
                self.ready.insert(id);
            }
            if w.next_rev > current {
                self.unsynced.remove(&id);
                self.set_synced(id);
            }
        }
    }

    /// Moves every synced watcher to the unsynced group, keeping its next
    /// revision. For when the store was replaced rather than fed event by
    /// event (a snapshot installed over it): `sync` then catches each
    /// watcher up from the new store's history, or ends it with a
    /// compaction notice if that history no longer reaches back to it, so
    /// the jump skips no event silently.
    pub fn unsync_all(&mut self) {
        let synced: Vec<WatcherId> = self.watchers.iter().filter(|(_, w)| w.synced).map(|(id, _)| *id).collect();
        self.by_key.clear();
        self.ranged.clear();
        for id in synced {
            self.watchers.get_mut(&id).expect("watcher exists").synced = false;
            self.unsynced.insert(id);
        }
    }

    /// Takes every buffered event and compaction notice, as responses at
    /// header revision `revision`.
    pub fn poll(&mut self, revision: i64) -> Vec<WatchOutput> {
        let mut out: Vec<WatchOutput> = self
            .compacted
            .drain(..)
            .map(|(watcher, compact_revision)| WatchOutput::Compacted { watcher, compact_revision })
            .collect();
        for id in std::mem::take(&mut self.ready) {
            self.drain_into(id, revision, &mut out);
        }
        out
    }

    /// As `poll`, for one watcher only: a watch stream takes what belongs to
    /// its own watchers, so a slow stream holds up no other.
    pub fn take(&mut self, id: WatcherId, revision: i64) -> Vec<WatchOutput> {
        let mut out = Vec::new();
        if let Some(at) = self.compacted.iter().position(|(c, _)| *c == id) {
            let (watcher, compact_revision) = self.compacted.remove(at);
            out.push(WatchOutput::Compacted { watcher, compact_revision });
        }
        if self.ready.remove(&id) {
            self.drain_into(id, revision, &mut out);
        }
        out
    }

    fn drain_into(&mut self, id: WatcherId, revision: i64, out: &mut Vec<WatchOutput>) {
        let w = self.watchers.get_mut(&id).expect("ready watcher exists");
        let events: Vec<Event> = w.pending.drain(..).collect();
        if w.req.fragment {
            let parts = fragment(events, self.limits.max_response_bytes);
            let last = parts.len() - 1;
            for (i, events) in parts.into_iter().enumerate() {
                out.push(WatchOutput::Events { watcher: id, revision, events, fragment: i < last });
            }
        } else {
            out.push(WatchOutput::Events { watcher: id, revision, events, fragment: false });
        }
    }

    /// Progress notifications for the synced, idle watchers that asked for
    /// them (the node calls this on its progress timer).
    pub fn progress(&self, revision: i64) -> Vec<WatchOutput> {
        self.watchers
            .iter()
            .filter(|(_, w)| w.req.progress_notify && w.synced && w.pending.is_empty())
            .map(|(id, _)| WatchOutput::Progress { watcher: *id, revision })
            .collect()
    }
}

/// Splits events into parts of at most `max_bytes` (each part has at least
/// one event, so one oversized event still goes out whole).
pub fn fragment(events: Vec<Event>, max_bytes: usize) -> Vec<Vec<Event>> {
    let mut parts = vec![Vec::new()];
    let mut size = 0;
    for ev in events {
        let s = ev.approx_size();
        let part = parts.last_mut().expect("never empty");
        if !part.is_empty() && size + s > max_bytes {
            parts.push(Vec::new());
            size = 0;
        }
        size += s;
        parts.last_mut().expect("never empty").push(ev);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &mut Store, hub: &mut WatchHub, key: &'static str) {
        let mut w = store.writer();
        w.put(Bytes::from_static(key.as_bytes()), Bytes::new(), 0);
        hub.notify(&w.finish().1);
    }

    /// A slow watcher compacted while it still holds buffered events gets
    /// those events first, then the compaction notice, as etcd does.
    #[test]
    fn compaction_of_a_slow_watcher_keeps_its_buffered_events() {
        let mut store = Store::new();
        let mut hub = WatchHub::new(WatchLimits { max_pending_events: 1, ..Default::default() });
        let id = hub.watch(WatchRequest { key: Bytes::from_static(b"k"), ..Default::default() }, &store);
        put(&mut store, &mut hub, "k"); // buffered, revision 2
        put(&mut store, &mut hub, "k"); // buffer full: unsynced from revision 3
        put(&mut store, &mut hub, "k");
        assert_eq!(hub.is_synced(id), Some(false));
        store.compact(4);
        hub.sync(&store);
        let revs = |out: &[WatchOutput]| -> Vec<i64> {
            out.iter()
                .flat_map(|o| match o {
                    WatchOutput::Events { events, .. } => events.iter().map(|e| e.kv.mod_revision).collect(),
                    _ => vec![],
                })
                .collect()
        };
        let out = hub.poll(4);
        assert_eq!(revs(&out), vec![2]);
        assert!(!out.iter().any(|o| matches!(o, WatchOutput::Compacted { .. })));
        hub.sync(&store);
        assert_eq!(hub.poll(4), vec![WatchOutput::Compacted { watcher: id, compact_revision: 4 }]);
        assert!(hub.is_empty());
    }
}
