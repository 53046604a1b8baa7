//! Model-based test of the watch hub: whatever the op sequence, the slow
//! consumer path (small buffers, rare polls) and the start revision, every
//! watcher receives exactly the reference history of its keys from its start
//! revision on, each event once and in order, or is ended by a compaction
//! that it could not have survived.

use bytes::Bytes;
use detcd_core::request::*;
use detcd_core::validate::{validate_txn, Limits};
use detcd_core::watch::{WatchHub, WatchLimits, WatchOutput, WatchRequest, WatcherId};
use detcd_core::{prefix_range_end, Event, EventKind, KeyValue, Millis, State, StateConfig};
use proptest::prelude::*;
use std::collections::BTreeMap;

const KEYS: [&str; 5] = ["a", "a1", "b", "b1", "c"];
const VALUES: [&str; 3] = ["", "x", "yy"];

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn in_span(key: &[u8], end: &[u8], k: &[u8]) -> bool {
    match end {
        [] => k == key,
        [0] => k >= key,
        _ => k >= key && k < end,
    }
}

#[derive(Debug, Clone)]
enum Write {
    Put(Bytes, &'static str),
    Del(Bytes, Bytes),
}

#[derive(Debug, Clone, Copy)]
enum Start {
    Next,
    Back(i64),
    Ahead(i64),
}

#[derive(Debug, Clone)]
struct WatchSpec {
    start: Start,
    key: Bytes,
    end: Bytes,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    fragment: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Write(Write),
    /// Compare `version(key) == v`, then one of the two branches.
    Txn(Bytes, i64, Vec<Write>, Vec<Write>),
    Compact(i64),
    Watch(WatchSpec),
    Sync,
    Poll,
}

type Snap = BTreeMap<Bytes, KeyValue>;

/// The reference: the key space at every revision and every change.
struct Model {
    snaps: Vec<Snap>,
    events: Vec<Event>,
    compacted: i64,
}

impl Model {
    fn current(&self) -> i64 {
        self.snaps.len() as i64 - 1
    }

    /// Applies writes at the next revision (if any changes something).
    fn write(&mut self, writes: &[Write]) {
        let rev = self.current() + 1;
        let mut w = self.snaps.last().unwrap().clone();
        let mut changed = false;
        for op in writes {
            match op {
                Write::Put(k, v) => {
                    let prev = w.get(k);
                    let (create_revision, version) = prev.map_or((rev, 1), |p| (p.create_revision, p.version + 1));
                    let kv =
                        KeyValue { key: k.clone(), create_revision, mod_revision: rev, version, value: b(v), lease: 0 };
                    w.insert(k.clone(), kv.clone());
                    self.events.push(Event { kind: EventKind::Put, kv, prev_kv: None });
                    changed = true;
                }
                Write::Del(k, e) => {
                    let victims: Vec<Bytes> = w.keys().filter(|x| in_span(k, e, x)).cloned().collect();
                    for key in victims {
                        w.remove(&key);
                        let kv = KeyValue { key, mod_revision: rev, ..Default::default() };
                        self.events.push(Event { kind: EventKind::Delete, kv, prev_kv: None });
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.snaps.push(w);
        }
    }

    /// etcd's prev_kv of an event: the key's value just before the event's
    /// revision, none for a creation.
    fn prev_kv(&self, ev: &Event) -> Option<KeyValue> {
        if ev.kind == EventKind::Put && ev.kv.version == 1 {
            return None;
        }
        self.snaps[ev.kv.mod_revision as usize - 1].get(&ev.kv.key).cloned()
    }
}

struct Watcher {
    id: WatcherId,
    spec: WatchSpec,
    /// The first revision it must see.
    start: i64,
    got: Vec<Event>,
    compacted: Option<i64>,
    /// Every wanted event up to here must reach the client, even if the
    /// watcher is compacted later: the hub had accepted it.
    guaranteed: i64,
}

impl Watcher {
    fn expected(&self, m: &Model) -> Vec<Event> {
        let s = &self.spec;
        m.events
            .iter()
            .filter(|e| e.kv.mod_revision >= self.start && in_span(&s.key, &s.end, &e.kv.key))
            .filter(|e| if e.kind == EventKind::Put { !s.no_put } else { !s.no_delete })
            .map(|e| Event { prev_kv: if s.prev_kv { m.prev_kv(e) } else { None }, ..e.clone() })
            .collect()
    }

    /// What was received is a prefix of the expected history (a prev_kv may
    /// be missing only where it was compacted away).
    fn check_prefix(&self, m: &Model) -> Result<(), TestCaseError> {
        let exp = self.expected(m);
        prop_assert!(self.got.len() <= exp.len(), "watcher {} got more than the history: {:?}", self.id, self.got);
        for (i, (g, e)) in self.got.iter().zip(&exp).enumerate() {
            let prev_gone = g.prev_kv.is_none() && e.kv.mod_revision - 1 < m.compacted;
            let ok = g.kind == e.kind && g.kv == e.kv && (g.prev_kv == e.prev_kv || prev_gone);
            prop_assert!(ok, "watcher {} event {}: got {:?}, want {:?}", self.id, i, g, e);
        }
        Ok(())
    }
}

struct Run {
    state: State,
    hub: WatchHub,
    model: Model,
    watchers: Vec<Watcher>,
    limits: WatchLimits,
    index: u64,
}

impl Run {
    fn apply(&mut self, cmd: Command) -> Result<(), TestCaseError> {
        let was_synced: Vec<Option<bool>> = self.watchers.iter().map(|w| self.hub.is_synced(w.id)).collect();
        self.index += 1;
        let applied = self.state.apply(self.index, &cmd, Millis(0));
        prop_assert!(applied.result.is_ok(), "{:?}: {:?}", cmd, applied.result);
        prop_assert_eq!(applied.revision, self.model.current());
        self.hub.notify(&applied.events);
        if !applied.events.is_empty() {
            let rev = applied.revision;
            for (w, was) in self.watchers.iter_mut().zip(was_synced) {
                if was == Some(true) {
                    w.guaranteed = if self.hub.is_synced(w.id) == Some(true) { rev } else { rev - 1 };
                }
            }
        }
        Ok(())
    }

    fn sync(&mut self) {
        self.hub.sync(self.state.store());
        for w in &mut self.watchers {
            if self.hub.is_synced(w.id) == Some(true) {
                w.guaranteed = self.state.revision();
            }
        }
    }

    fn poll(&mut self) -> Result<usize, TestCaseError> {
        let outs = self.hub.poll(self.state.revision());
        let n = outs.len();
        // Per watcher, whether its last response in this poll was a fragment.
        let mut open: BTreeMap<WatcherId, bool> = BTreeMap::new();
        for out in outs {
            match out {
                WatchOutput::Events { watcher, revision, events, fragment } => {
                    prop_assert_eq!(revision, self.state.revision());
                    prop_assert!(!events.is_empty());
                    let w = self.watchers.iter_mut().find(|w| w.id == watcher).expect("known watcher");
                    prop_assert!(w.compacted.is_none(), "events after the compaction notice");
                    let continues = open.insert(watcher, fragment);
                    if w.spec.fragment {
                        let size: usize = events.iter().map(Event::approx_size).sum();
                        prop_assert!(events.len() == 1 || size <= self.limits.max_response_bytes, "part of {}", size);
                        prop_assert!(continues.is_none_or(|f| f), "a response after a final fragment");
                    } else {
                        prop_assert!(!fragment && continues.is_none(), "unfragmented watcher split");
                    }
                    w.got.extend(events);
                }
                WatchOutput::Compacted { watcher, compact_revision } => {
                    let w = self.watchers.iter_mut().find(|w| w.id == watcher).expect("known watcher");
                    prop_assert!(w.compacted.is_none() && self.hub.is_synced(watcher).is_none());
                    prop_assert!(compact_revision <= self.model.compacted);
                    // Where it would have resumed is at least this, and only
                    // a resume point below the compaction is compacted.
                    let last = w.got.last().map_or(0, |e| e.kv.mod_revision + 1);
                    let resume = w.start.max(last).max(w.guaranteed + 1);
                    prop_assert!(
                        resume < compact_revision,
                        "watcher {} at {} compacted at {}",
                        w.id,
                        resume,
                        compact_revision
                    );
                    let owed = w.expected(&self.model).iter().filter(|e| e.kv.mod_revision <= w.guaranteed).count();
                    prop_assert!(w.got.len() >= owed, "watcher {} lost buffered events: got {:?}", w.id, w.got);
                    w.compacted = Some(compact_revision);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert!(open.values().all(|f| !f), "a fragmented response without its final part");
        for w in &self.watchers {
            w.check_prefix(&self.model)?;
        }
        Ok(n)
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let cur = self.model.current();
        match op {
            Op::Write(w) => {
                let cmd = match w {
                    Write::Put(k, v) => Command::Put(PutRequest { key: k.clone(), value: b(v), ..Default::default() }),
                    Write::Del(k, e) => Command::DeleteRange(DeleteRangeRequest {
                        key: k.clone(),
                        range_end: e.clone(),
                        prev_kv: false,
                    }),
                };
                self.model.write(std::slice::from_ref(w));
                self.apply(cmd)?;
            }
            Op::Txn(key, version, success, failure) => {
                let to_ops = |ws: &[Write]| -> Vec<RequestOp> {
                    ws.iter()
                        .map(|w| match w {
                            Write::Put(k, v) => {
                                RequestOp::Put(PutRequest { key: k.clone(), value: b(v), ..Default::default() })
                            }
                            Write::Del(k, e) => RequestOp::DeleteRange(DeleteRangeRequest {
                                key: k.clone(),
                                range_end: e.clone(),
                                prev_kv: false,
                            }),
                        })
                        .collect()
                };
                let compare = vec![Compare {
                    result: CompareResult::Equal,
                    target: CompareTarget::Version(*version),
                    key: key.clone(),
                    range_end: Bytes::new(),
                }];
                let txn = TxnRequest { compare, success: to_ops(success), failure: to_ops(failure) };
                if validate_txn(&txn, &Limits::default()).is_err() {
                    return Ok(());
                }
                let held = self.model.snaps[cur as usize].get(key).map_or(0, |kv| kv.version) == *version;
                self.model.write(if held { success } else { failure });
                self.apply(Command::Txn(txn))?;
            }
            Op::Compact(back) => {
                let rev = cur - back;
                if rev > self.model.compacted {
                    self.model.compacted = rev;
                    self.apply(Command::Compaction(CompactionRequest { revision: rev, physical: false }))?;
                }
            }
            Op::Watch(spec) => {
                let (start_revision, start) = match spec.start {
                    Start::Next => (0, cur + 1),
                    Start::Back(k) => ((cur - k).max(1), (cur - k).max(1)),
                    Start::Ahead(k) => (cur + k, cur + k),
                };
                let req = WatchRequest {
                    key: spec.key.clone(),
                    range_end: spec.end.clone(),
                    start_revision,
                    prev_kv: spec.prev_kv,
                    no_put: spec.no_put,
                    no_delete: spec.no_delete,
                    progress_notify: false,
                    fragment: spec.fragment,
                };
                let id = self.hub.watch(req, self.state.store());
                let guaranteed = if start > cur { cur } else { 0 };
                self.watchers.push(Watcher { id, spec: spec.clone(), start, got: vec![], compacted: None, guaranteed });
            }
            Op::Sync => self.sync(),
            Op::Poll => {
                self.poll()?;
            }
        }
        Ok(())
    }
}

fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(&KEYS[..]).prop_map(b)
}

fn span(single: u32) -> impl Strategy<Value = (Bytes, Bytes)> {
    prop_oneof![
        single => key().prop_map(|k| (k, Bytes::new())),
        2 => prop::sample::select(&["a", "b"][..]).prop_map(|p| (b(p), prefix_range_end(p.as_bytes()))),
        1 => key().prop_map(|k| (k, Bytes::from_static(&[0]))),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (key(), prop::sample::select(&VALUES[..])).prop_map(|(k, v)| Write::Put(k, v)),
        1 => span(4).prop_map(|(k, e)| Write::Del(k, e)),
    ]
}

fn watch_spec() -> impl Strategy<Value = WatchSpec> {
    let start = prop_oneof![
        2 => Just(Start::Next),
        3 => (0..8i64).prop_map(Start::Back),
        1 => (1..3i64).prop_map(Start::Ahead),
    ];
    let flag = |p| prop::bool::weighted(p);
    (start, span(1), flag(0.5), flag(0.15), flag(0.15), flag(0.4)).prop_map(
        |(start, (key, end), prev_kv, no_put, no_delete, fragment)| WatchSpec {
            start,
            key,
            end,
            prev_kv,
            no_put,
            no_delete,
            fragment,
        },
    )
}

/// Txn writes: deletes of every key from one on are frequent, since etcd's
/// duplicate check lets such a delete and a put of the same key share a
/// revision, in either order.
fn txn_write() -> impl Strategy<Value = Write> {
    prop_oneof![
        2 => write(),
        1 => key().prop_map(|k| Write::Del(k, Bytes::from_static(&[0]))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let writes = || prop::collection::vec(txn_write(), 0..4);
    prop_oneof![
        8 => write().prop_map(Op::Write),
        3 => (key(), 0..3i64, writes(), writes()).prop_map(|(k, v, s, f)| Op::Txn(k, v, s, f)),
        1 => (0..6i64).prop_map(Op::Compact),
        2 => watch_spec().prop_map(Op::Watch),
        2 => Just(Op::Sync),
        2 => Just(Op::Poll),
    ]
}

fn run(ops: &[Op], max_pending_events: usize, max_response_bytes: usize) -> Result<(), TestCaseError> {
    let limits = WatchLimits { max_pending_events, max_response_bytes };
    let mut r = Run {
        state: State::new(StateConfig::default()),
        hub: WatchHub::new(limits),
        model: Model { snaps: vec![Snap::new(), Snap::new()], events: vec![], compacted: 0 },
        watchers: vec![],
        limits,
        index: 0,
    };
    for op in ops {
        r.step(op)?;
        prop_assert_eq!(r.state.revision(), r.model.current());
    }
    // Drain: every live watcher catches up and gets its whole history.
    for _ in 0..10_000 {
        r.sync();
        let quiet = r.poll()? == 0;
        if quiet && r.watchers.iter().all(|w| w.compacted.is_some() || r.hub.is_synced(w.id) == Some(true)) {
            break;
        }
    }
    for w in &r.watchers {
        if w.compacted.is_none() {
            prop_assert_eq!(r.hub.is_synced(w.id), Some(true));
            w.check_prefix(&r.model)?;
            let want = w.expected(&r.model).len();
            prop_assert_eq!(w.got.len(), want, "watcher {} from {}: {:?}", w.id, w.start, w.spec);
        }
    }
    prop_assert_eq!(r.hub.len(), r.watchers.iter().filter(|w| w.compacted.is_none()).count());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn watchers_see_the_model_history(
        ops in prop::collection::vec(op(), 5..60),
        max_pending in 2usize..6,
        max_bytes in 40usize..200,
    ) {
        run(&ops, max_pending, max_bytes)?;
    }
}
