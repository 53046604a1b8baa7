//! The watch hub: synced and unsynced watchers, filters, prev_kv, slow
//! consumers, compaction, progress, fragments.

mod common;

use bytes::Bytes;
use common::*;
use detcd_core::request::*;
use detcd_core::watch::{WatchHub, WatchLimits, WatchOutput, WatchRequest, WatcherId};
use detcd_core::{prefix_range_end, Event, EventKind};

/// A node with a hub fed after every apply, as the server will do it.
struct Watched {
    node: Node,
    hub: WatchHub,
}

impl Watched {
    fn new(limits: WatchLimits) -> Watched {
        Watched { node: Node::new(), hub: WatchHub::new(limits) }
    }

    fn put(&mut self, k: &str, v: &str) {
        let applied = self.node.apply(Command::Put(PutRequest { key: b(k), value: b(v), ..Default::default() }));
        self.hub.notify(&applied.events);
    }

    fn delete(&mut self, k: &str) {
        let applied = self.node.apply(Command::DeleteRange(DeleteRangeRequest { key: b(k), ..Default::default() }));
        self.hub.notify(&applied.events);
    }

    fn watch(&mut self, req: WatchRequest) -> WatcherId {
        self.hub.watch(req, self.node.state.store())
    }

    /// Syncs and polls, returning each watcher's events in order.
    fn drain(&mut self, id: WatcherId) -> Vec<Event> {
        self.hub.sync(self.node.state.store());
        let mut events = vec![];
        for out in self.hub.poll(self.node.state.revision()) {
            if let WatchOutput::Events { watcher, events: evs, .. } = out {
                if watcher == id {
                    events.extend(evs);
                }
            }
        }
        events
    }
}

fn summary(events: &[Event]) -> Vec<(EventKind, String, i64)> {
    events.iter().map(|e| (e.kind, String::from_utf8_lossy(&e.kv.key).into_owned(), e.kv.mod_revision)).collect()
}

fn key_watch(k: &str) -> WatchRequest {
    WatchRequest { key: b(k), ..Default::default() }
}

#[test]
fn synced_watcher_gets_new_events_only() {
    let mut w = Watched::new(WatchLimits::default());
    w.put("name", "old");
    let id = w.watch(key_watch("name"));
    assert_eq!(w.hub.is_synced(id), Some(true));
    w.put("name", "korbin");
    w.put("other", "x");
    w.delete("name");
    let events = w.drain(id);
    assert_eq!(summary(&events), vec![(EventKind::Put, "name".into(), 3), (EventKind::Delete, "name".into(), 5)]);
    assert_eq!(events[0].prev_kv, None, "prev_kv only when asked");
    assert!(w.drain(id).is_empty(), "each event once");
}

#[test]
fn past_start_catches_up_from_history_then_follows() {
    let mut w = Watched::new(WatchLimits::default());
    for i in 0..5 {
        w.put("foo", &i.to_string());
    }
    let id = w.watch(WatchRequest { key: b("foo"), start_revision: 3, prev_kv: true, ..Default::default() });
    assert_eq!(w.hub.is_synced(id), Some(false));
    w.put("foo", "live");
    let events = w.drain(id);
    let revs: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, vec![3, 4, 5, 6, 7]);
    assert_eq!(events[0].prev_kv.as_ref().unwrap().mod_revision, 2);
    assert_eq!(events[4].prev_kv.as_ref().unwrap().value, b("4"));
    assert_eq!(w.hub.is_synced(id), Some(true));
}

#[test]
fn prefix_watch_with_filters() {
    let mut w = Watched::new(WatchLimits::default());
    let req = WatchRequest { key: b("svc/"), range_end: prefix_range_end(b"svc/"), no_put: true, ..Default::default() };
    let id = w.watch(req);
    w.put("svc/a", "1");
    w.put("svx", "1");
    w.delete("svc/a");
    assert_eq!(summary(&w.drain(id)), vec![(EventKind::Delete, "svc/a".into(), 4)]);
}

#[test]
fn future_start_revision_waits() {
    let mut w = Watched::new(WatchLimits::default());
    let id = w.watch(WatchRequest { key: b("k"), start_revision: 4, ..Default::default() });
    w.put("k", "2");
    w.put("k", "3");
    w.put("k", "4");
    assert_eq!(summary(&w.drain(id)), vec![(EventKind::Put, "k".into(), 4)]);
}

#[test]
fn slow_consumer_is_moved_to_unsynced_without_loss() {
    let mut w = Watched::new(WatchLimits { max_pending_events: 3, ..Default::default() });
    let id = w.watch(key_watch("k"));
    for i in 0..10 {
        w.put("k", &i.to_string());
    }
    assert_eq!(w.hub.is_synced(id), Some(false), "buffer full: demoted");
    let mut got = vec![];
    for _ in 0..10 {
        got.extend(w.drain(id));
        w.put("other", "x");
    }
    let revs: Vec<i64> = got.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, (2..=11).collect::<Vec<_>>());
    assert_eq!(w.hub.is_synced(id), Some(true));
}

#[test]
fn compacted_start_cancels_with_the_compact_revision() {
    let mut w = Watched::new(WatchLimits::default());
    for i in 0..5 {
        w.put("k", &i.to_string());
    }
    w.node.compact(4).unwrap();
    let id = w.watch(WatchRequest { key: b("k"), start_revision: 2, ..Default::default() });
    let ok = w.watch(WatchRequest { key: b("k"), start_revision: 4, ..Default::default() });
    w.hub.sync(w.node.state.store());
    let out = w.hub.poll(w.node.state.revision());
    assert!(out.contains(&WatchOutput::Compacted { watcher: id, compact_revision: 4 }));
    assert!(out
        .iter()
        .any(|o| matches!(o, WatchOutput::Events { watcher, events, .. } if *watcher == ok && events.len() == 3)));
    assert_eq!(w.hub.is_synced(id), None, "the compacted watcher is gone");
}

#[test]
fn cancel_stops_delivery() {
    let mut w = Watched::new(WatchLimits::default());
    let id = w.watch(key_watch("k"));
    let range_id = w.watch(WatchRequest { key: b("a"), range_end: Bytes::from_static(&[0]), ..Default::default() });
    w.put("k", "1");
    assert!(w.hub.cancel(id));
    assert!(w.hub.cancel(range_id));
    assert!(!w.hub.cancel(id));
    assert!(w.drain(id).is_empty());
    w.put("k", "2");
    assert!(w.hub.poll(3).is_empty());
    assert!(w.hub.is_empty());
}

#[test]
fn progress_only_for_idle_synced_watchers_that_asked() {
    let mut w = Watched::new(WatchLimits::default());
    let asked = w.watch(WatchRequest { key: b("k"), progress_notify: true, ..Default::default() });
    let _silent = w.watch(key_watch("k"));
    assert_eq!(w.hub.progress(1), vec![WatchOutput::Progress { watcher: asked, revision: 1 }]);
    w.put("k", "1");
    assert!(w.hub.progress(2).is_empty(), "pending events come first");
}

#[test]
fn large_responses_are_fragmented_for_watchers_that_accept_it() {
    let mut w = Watched::new(WatchLimits { max_response_bytes: 200, ..Default::default() });
    let id = w.watch(WatchRequest { key: b("k"), fragment: true, ..Default::default() });
    let whole = w.watch(key_watch("k"));
    for i in 0..5 {
        w.put("k", &"x".repeat(100 + i));
    }
    let out = w.hub.poll(6);
    let parts: Vec<(usize, bool)> = out
        .iter()
        .filter_map(|o| match o {
            WatchOutput::Events { watcher, events, fragment, .. } if *watcher == id => Some((events.len(), *fragment)),
            _ => None,
        })
        .collect();
    assert_eq!(parts, vec![(1, true), (1, true), (1, true), (1, true), (1, false)]);
    assert!(out.iter().any(|o| matches!(o, WatchOutput::Events { watcher, events, fragment: false, .. } if *watcher == whole && events.len() == 5)));
}

/// A snapshot installed over the store jumps the revision without events:
/// `unsync_all` makes `sync` replay the jump from the new history, and end
/// a watcher whose next revision the new store compacted away.
#[test]
fn unsync_all_catches_watchers_up_across_a_replaced_store() {
    let mut w = Watched::new(WatchLimits::default());
    w.put("k", "1"); // revision 2
    let on_k = w.watch(key_watch("k"));
    let on_range = w.watch(WatchRequest { key: b("a"), range_end: b("z"), ..Default::default() });
    let stale = w.watch(key_watch("gone"));

    // The leader went on without us: its store is shipped as a snapshot.
    let mut leader = Node::new();
    leader.apply(Command::Put(PutRequest { key: b("k"), value: b("1"), ..Default::default() }));
    leader.apply(Command::Put(PutRequest { key: b("k"), value: b("2"), ..Default::default() })); // 3
    leader.apply(Command::Put(PutRequest { key: b("m"), value: b("x"), ..Default::default() })); // 4
    leader.apply(Command::Put(PutRequest { key: b("k"), value: b("3"), ..Default::default() })); // 5
    let installed = detcd_core::snapshot::decode(&detcd_core::snapshot::encode(&leader.state)).unwrap();
    w.node.state = installed;
    w.node.index = leader.index;

    w.hub.unsync_all();
    for id in [on_k, on_range, stale] {
        assert_eq!(w.hub.is_synced(id), Some(false));
    }
    assert!(w.hub.poll(5).is_empty(), "nothing is delivered before sync");
    w.hub.sync(w.node.state.store());
    let out = w.hub.poll(5);
    let of = |id: WatcherId| -> Vec<(EventKind, String, i64)> {
        out.iter()
            .filter_map(|o| match o {
                WatchOutput::Events { watcher, events, .. } if *watcher == id => Some(summary(events)),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let put = |k: &str, rev| (EventKind::Put, k.to_string(), rev);
    assert_eq!(of(on_k), vec![put("k", 3), put("k", 5)]);
    assert_eq!(of(on_range), vec![put("k", 3), put("m", 4), put("k", 5)]);
    assert!(of(stale).is_empty());
    for id in [on_k, on_range, stale] {
        assert_eq!(w.hub.is_synced(id), Some(true), "caught up: synced again");
    }
    w.put("k", "4"); // 6, live again
    assert_eq!(summary(&w.drain(on_k)), vec![put("k", 6)]);

    // A jump over a compaction ends the watchers it left behind.
    let mut w = Watched::new(WatchLimits::default());
    let behind = w.watch(key_watch("k"));
    let mut leader = Node::new();
    for i in 0..4 {
        leader.put("k", &i.to_string());
    }
    leader.compact(4).unwrap();
    w.node.state = detcd_core::snapshot::decode(&detcd_core::snapshot::encode(&leader.state)).unwrap();
    w.hub.unsync_all();
    w.hub.sync(w.node.state.store());
    assert_eq!(w.hub.poll(5), vec![WatchOutput::Compacted { watcher: behind, compact_revision: 4 }]);
    assert!(w.hub.is_empty());
}

#[test]
fn take_serves_one_watcher_and_leaves_the_others() {
    let mut w = Watched::new(WatchLimits::default());
    let a = w.watch(key_watch("k"));
    let other = w.watch(key_watch("k"));
    w.put("k", "1");
    let rev = w.node.state.revision();
    let mine = w.hub.take(a, rev);
    assert_eq!(mine.len(), 1);
    assert!(matches!(&mine[0], WatchOutput::Events { watcher, events, .. } if *watcher == a && events.len() == 1));
    assert!(w.hub.take(a, rev).is_empty(), "each event once");
    let rest = w.hub.poll(rev);
    assert!(matches!(&rest[..], [WatchOutput::Events { watcher, .. }] if *watcher == other));
    // A compaction notice is taken by its own watcher too.
    w.node.compact(rev).unwrap();
    let late = w.hub.watch(WatchRequest { key: b("k"), start_revision: 1, ..Default::default() }, w.node.state.store());
    w.hub.sync(w.node.state.store());
    assert!(w.hub.take(a, rev).is_empty());
    assert_eq!(w.hub.take(late, rev), vec![WatchOutput::Compacted { watcher: late, compact_revision: rev }]);
}
