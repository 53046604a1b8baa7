//! Model-based test of `State::apply` and range reads: random op sequences
//! over a small key space, checked response by response against a naive
//! reference that keeps a full snapshot of the key space per revision.

use bytes::Bytes;
use detcd_core::request::*;
use detcd_core::validate::{validate_txn, Limits};
use detcd_core::{prefix_range_end, snapshot, Error, EventKind, KeyValue, Millis, Result, State, StateConfig};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const KEYS: [&str; 5] = ["a", "a1", "b", "b1", "c"];
/// Range ends: the keys, one past them, and one before every key.
const ENDS: [&str; 7] = ["a", "a1", "b", "b1", "c", "d", "0"];
const VALUES: [&str; 3] = ["", "x", "yy"];

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A revision chosen relative to the state when the op runs.
#[derive(Debug, Clone, Copy)]
enum Rev {
    Zero,
    Negative,
    Back(i64),
    Ahead(i64),
    BelowCompact(i64),
    Compact,
}

impl Rev {
    fn resolve(self, m: &Model) -> i64 {
        match self {
            Rev::Zero => 0,
            Rev::Negative => -1,
            Rev::Back(k) => (m.current() - k).max(1),
            Rev::Ahead(k) => m.current() + k,
            Rev::BelowCompact(k) => (m.compacted - k).max(1),
            Rev::Compact => m.compacted.max(1),
        }
    }
}

/// A range request whose revision is chosen when it runs.
#[derive(Debug, Clone)]
struct RangeSpec(RangeRequest, Rev);

/// A request, on its own or inside a txn.
#[derive(Debug, Clone)]
enum Req {
    Put(Bytes, &'static str, bool),
    Del(Bytes, Bytes, bool),
    Range(RangeSpec),
}

#[derive(Debug, Clone)]
enum Op {
    Req(Req),
    Txn(Vec<Compare>, Vec<Req>, Vec<Req>),
    Compact(Rev),
}

impl Req {
    fn build(&self, m: &Model) -> RequestOp {
        match self {
            Req::Put(k, v, prev_kv) => RequestOp::Put(put_req(k, v, *prev_kv)),
            Req::Del(k, e, prev_kv) => {
                RequestOp::DeleteRange(DeleteRangeRequest { key: k.clone(), range_end: e.clone(), prev_kv: *prev_kv })
            }
            Req::Range(RangeSpec(r, rev)) => RequestOp::Range(RangeRequest { revision: rev.resolve(m), ..r.clone() }),
        }
    }
}

fn put_req(k: &Bytes, v: &str, prev_kv: bool) -> PutRequest {
    PutRequest { key: k.clone(), value: b(v), prev_kv, ..Default::default() }
}

impl Op {
    fn build(&self, m: &Model) -> std::result::Result<Command, RangeRequest> {
        Ok(match self {
            Op::Req(r) => match r.build(m) {
                RequestOp::Put(p) => Command::Put(p),
                RequestOp::DeleteRange(d) => Command::DeleteRange(d),
                RequestOp::Range(r) => return Err(r),
                RequestOp::Txn(_) => unreachable!(),
            },
            Op::Txn(cmps, success, failure) => {
                let cur = m.current();
                // Create and mod operands are generated as offsets back
                // from the current revision.
                let mut compare = cmps.clone();
                for c in &mut compare {
                    if let CompareTarget::Create(k) | CompareTarget::Mod(k) = &mut c.target {
                        *k = (cur - *k).max(0);
                    }
                }
                let ops = |rs: &[Req]| rs.iter().map(|r| r.build(m)).collect();
                Command::Txn(TxnRequest { compare, success: ops(success), failure: ops(failure) })
            }
            Op::Compact(r) => Command::Compaction(CompactionRequest { revision: r.resolve(m), physical: false }),
        })
    }
}

type Snap = BTreeMap<Bytes, KeyValue>;

/// The reference: `snaps[rev]` is the whole key space at `rev`.
struct Model {
    snaps: Vec<Snap>,
    compacted: i64,
}

fn in_span(key: &[u8], end: &[u8], k: &[u8]) -> bool {
    match end {
        [] => k == key,
        [0] => k >= key,
        _ => k >= key && k < end,
    }
}

/// A range over one snapshot, reported at header revision `view`.
fn range_on(snap: &Snap, r: &RangeRequest, view: i64) -> RangeResponse {
    let mut kvs: Vec<KeyValue> = snap.values().filter(|kv| in_span(&r.key, &r.range_end, &kv.key)).cloned().collect();
    let count = kvs.len() as i64;
    // etcd's quirk: with no sort order and no filter, it fetches one more
    // than the limit in key order and only then sorts by the target.
    if r.sort_order == SortOrder::None && r.min_mod_revision == 0 && r.max_create_revision == 0 && r.limit > 0 {
        kvs.truncate(r.limit as usize + 1);
    }
    kvs.retain(|kv| {
        (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
            && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
    });
    let order = match (r.sort_order, r.sort_target) {
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let key_of = |kv: &KeyValue| match r.sort_target {
        SortTarget::Key => (0, kv.key.clone()),
        SortTarget::Version => (kv.version, Bytes::new()),
        SortTarget::Create => (kv.create_revision, Bytes::new()),
        SortTarget::Mod => (kv.mod_revision, Bytes::new()),
        SortTarget::Value => (0, kv.value.clone()),
    };
    // Stable: ties stay in key order.
    match order {
        SortOrder::Ascend => kvs.sort_by_key(key_of),
        SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(key_of(kv))),
        SortOrder::None => {}
    }
    if r.count_only {
        kvs.clear();
    }
    let more = r.limit > 0 && kvs.len() as i64 > r.limit;
    if more {
        kvs.truncate(r.limit as usize);
    }
    if r.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value = Bytes::new());
    }
    RangeResponse { revision: view, kvs, more, count }
}

type Events = Vec<(EventKind, KeyValue)>;

fn put_on(w: &mut Snap, p: &PutRequest, rev: i64, events: &mut Events) -> PutResponse {
    let prev = w.get(&p.key).cloned();
    let (create_revision, version) = prev.as_ref().map_or((rev, 1), |kv| (kv.create_revision, kv.version + 1));
    let kv =
        KeyValue { key: p.key.clone(), create_revision, mod_revision: rev, version, value: p.value.clone(), lease: 0 };
    w.insert(p.key.clone(), kv.clone());
    events.push((EventKind::Put, kv));
    PutResponse { revision: rev, prev_kv: prev.filter(|_| p.prev_kv) }
}

fn delete_on(w: &mut Snap, d: &DeleteRangeRequest, rev: i64, events: &mut Events) -> Vec<KeyValue> {
    let victims: Vec<KeyValue> = w.values().filter(|kv| in_span(&d.key, &d.range_end, &kv.key)).cloned().collect();
    for kv in &victims {
        w.remove(&kv.key);
        events.push((EventKind::Delete, KeyValue { key: kv.key.clone(), mod_revision: rev, ..Default::default() }));
    }
    victims
}

fn compare_holds(snap: &Snap, c: &Compare) -> bool {
    let kvs: Vec<&KeyValue> = snap.values().filter(|kv| in_span(&c.key, &c.range_end, &kv.key)).collect();
    let holds = |kv: &KeyValue| {
        let ord = match &c.target {
            CompareTarget::Version(v) => kv.version.cmp(v),
            CompareTarget::Create(v) => kv.create_revision.cmp(v),
            CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
            CompareTarget::Value(v) => kv.value.cmp(v),
            CompareTarget::Lease(v) => kv.lease.cmp(v),
        };
        match c.result {
            CompareResult::Equal => ord.is_eq(),
            CompareResult::NotEqual => ord.is_ne(),
            CompareResult::Greater => ord.is_gt(),
            CompareResult::Less => ord.is_lt(),
        }
    };
    match kvs.is_empty() {
        true => !matches!(c.target, CompareTarget::Value(_)) && holds(&KeyValue::default()),
        false => kvs.into_iter().all(holds),
    }
}

/// etcd's duplicate check on one flat branch: a key put twice, or put
/// inside a deleted interval (`[key, range_end)` taken literally).
fn has_duplicate(ops: &[RequestOp]) -> bool {
    let dels: Vec<(&Bytes, &Bytes)> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some((&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let mut puts = BTreeSet::new();
    ops.iter().any(|op| match op {
        RequestOp::Put(p) => {
            let deleted =
                dels.iter().any(|(k, e)| if e.is_empty() { *k == &p.key } else { p.key >= **k && p.key < **e });
            !puts.insert(p.key.clone()) || deleted
        }
        _ => false,
    })
}

impl Model {
    fn new() -> Model {
        Model { snaps: vec![Snap::new(), Snap::new()], compacted: 0 }
    }

    fn current(&self) -> i64 {
        self.snaps.len() as i64 - 1
    }

    fn resolve(&self, rev: i64, view: i64) -> Result<i64> {
        match rev {
            _ if rev <= 0 => Ok(view),
            _ if rev > view => Err(Error::FutureRev),
            _ if rev < self.compacted => Err(Error::Compacted),
            _ => Ok(rev),
        }
    }

    fn range(&self, r: &RangeRequest) -> Result<RangeResponse> {
        let rev = self.resolve(r.revision, self.current())?;
        Ok(range_on(&self.snaps[rev as usize], r, self.current()))
    }

    fn apply(&mut self, cmd: &Command) -> (Result<Response>, Events) {
        let cur = self.current();
        let mut w = self.snaps[cur as usize].clone();
        let mut events = Events::new();
        let result = match cmd {
            Command::Put(p) => match self.exec(&RequestOp::Put(p.clone()), &mut w, &mut events) {
                ResponseOp::Put(r) => Ok(Response::Put(r)),
                _ => unreachable!(),
            },
            Command::DeleteRange(d) => match self.exec(&RequestOp::DeleteRange(d.clone()), &mut w, &mut events) {
                ResponseOp::DeleteRange(r) => Ok(Response::DeleteRange(r)),
                _ => unreachable!(),
            },
            Command::Txn(t) => self.txn(t, &mut w, &mut events).map(Response::Txn),
            Command::Compaction(c) if c.revision <= self.compacted => Err(Error::Compacted),
            Command::Compaction(c) if c.revision > cur => Err(Error::FutureRev),
            Command::Compaction(c) => {
                self.compacted = c.revision;
                Ok(Response::Compaction(CompactionResponse { revision: cur }))
            }
            _ => unreachable!("no lease commands are generated"),
        };
        if !events.is_empty() {
            self.snaps.push(w);
        }
        (result, events)
    }

    fn txn(&self, t: &TxnRequest, w: &mut Snap, events: &mut Events) -> Result<TxnResponse> {
        let cur = self.current();
        let before = &self.snaps[cur as usize];
        let succeeded = t.compare.iter().all(|c| compare_holds(before, c));
        let ops = if succeeded { &t.success } else { &t.failure };
        for op in ops {
            if let RequestOp::Range(r) = op {
                // etcd's checkRequestRange: 0 is the txn's view; the first
                // revision is -1 until the first compaction.
                let first = if self.compacted == 0 { -1 } else { self.compacted };
                if r.revision > cur {
                    return Err(Error::FutureRev);
                }
                if r.revision != 0 && r.revision < first {
                    return Err(Error::Compacted);
                }
            }
        }
        let responses = ops.iter().map(|op| self.exec(op, w, events)).collect();
        let revision = if events.is_empty() { cur } else { cur + 1 };
        Ok(TxnResponse { revision, succeeded, responses })
    }

    /// One request of a write at the next revision, on its working copy `w`
    /// (reads see the request's earlier changes).
    fn exec(&self, op: &RequestOp, w: &mut Snap, events: &mut Events) -> ResponseOp {
        let (cur, new) = (self.current(), self.current() + 1);
        let view = |events: &Events| if events.is_empty() { cur } else { new };
        match op {
            RequestOp::Range(r) => {
                let rev = self.resolve(r.revision, view(events)).expect("checked before the txn");
                let snap = if rev == new { &*w } else { &self.snaps[rev as usize] };
                ResponseOp::Range(range_on(snap, r, view(events)))
            }
            RequestOp::Put(p) => ResponseOp::Put(put_on(w, p, new, events)),
            RequestOp::DeleteRange(d) => {
                let prevs = delete_on(w, d, new, events);
                ResponseOp::DeleteRange(DeleteRangeResponse {
                    revision: view(events),
                    deleted: prevs.len() as i64,
                    prev_kvs: if d.prev_kv { prevs } else { vec![] },
                })
            }
            RequestOp::Txn(_) => unreachable!("no nested txns are generated"),
        }
    }
}

fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(&KEYS[..]).prop_map(b)
}

/// A key range; `single` weighs how often it is one key.
fn span(single: u32) -> impl Strategy<Value = (Bytes, Bytes)> {
    prop_oneof![
        single => key().prop_map(|k| (k, Bytes::new())),
        2 => prop::sample::select(&["a", "b", "c"][..]).prop_map(|p| (b(p), prefix_range_end(p.as_bytes()))),
        2 => (key(), prop::sample::select(&ENDS[..])).prop_map(|(k, e)| (k, b(e))),
        1 => key().prop_map(|k| (k, Bytes::from_static(&[0]))),
    ]
}

fn value() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&VALUES[..])
}

fn rev() -> impl Strategy<Value = Rev> {
    prop_oneof![
        3 => Just(Rev::Zero),
        1 => Just(Rev::Negative),
        4 => (0..6i64).prop_map(Rev::Back),
        1 => (1..3i64).prop_map(Rev::Ahead),
        1 => (1..3i64).prop_map(Rev::BelowCompact),
        1 => Just(Rev::Compact),
    ]
}

fn range_spec() -> impl Strategy<Value = RangeSpec> {
    let order = prop::sample::select(vec![SortOrder::None, SortOrder::Ascend, SortOrder::Descend]);
    let target = prop::sample::select(vec![
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ]);
    let filter = prop_oneof![6 => Just(0i64), 1 => 1..12i64];
    let flags = (prop::bool::weighted(0.1), prop::bool::weighted(0.2));
    (span(1), rev(), 0..4i64, flags, order, target, filter.clone(), filter).prop_map(
        |((key, range_end), rev, limit, (count_only, keys_only), sort_order, sort_target, min_mod, max_create)| {
            let r = RangeRequest {
                key,
                range_end,
                limit,
                sort_order,
                sort_target,
                keys_only,
                count_only,
                min_mod_revision: min_mod,
                max_create_revision: max_create,
                ..Default::default()
            };
            RangeSpec(r, rev)
        },
    )
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0..3i64).prop_map(CompareTarget::Version),
        (0..4i64).prop_map(CompareTarget::Create),
        (0..4i64).prop_map(CompareTarget::Mod),
        value().prop_map(|v| CompareTarget::Value(b(v))),
        (0..2i64).prop_map(CompareTarget::Lease),
    ];
    let result = prop::sample::select(vec![
        CompareResult::Equal,
        CompareResult::Greater,
        CompareResult::Less,
        CompareResult::NotEqual,
    ]);
    (prop_oneof![3 => key().prop_map(|k| (k, Bytes::new())), 1 => span(1)], result, target)
        .prop_map(|((key, range_end), result, target)| Compare { result, target, key, range_end })
}

/// A request; `del` and `range` weigh deletes and reads against puts.
fn req(del: u32, range: u32) -> impl Strategy<Value = Req> {
    prop_oneof![
        5 => (key(), value(), any::<bool>()).prop_map(|(k, v, p)| Req::Put(k, v, p)),
        del => (span(6), any::<bool>()).prop_map(|((k, e), p)| Req::Del(k, e, p)),
        range => range_spec().prop_map(Req::Range),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let ops = || prop::collection::vec(req(2, 3), 0..4);
    prop_oneof![
        10 => req(2, 3).prop_map(Op::Req),
        4 => (prop::collection::vec(compare(), 0..3), ops(), ops()).prop_map(|(c, s, f)| Op::Txn(c, s, f)),
        1 => prop_oneof![4 => (0..4i64).prop_map(Rev::Back), 1 => rev()].prop_map(Op::Compact),
    ]
}

/// Spans for the exhaustive history reads.
fn all_spans() -> Vec<(Bytes, Bytes)> {
    let mut spans = vec![(Bytes::from_static(&[0]), Bytes::from_static(&[0])), (b("a"), b("b")), (b("b"), b("d"))];
    spans.extend(KEYS.iter().map(|k| (b(k), Bytes::new())));
    spans
}

/// Reads every span at every revision (compacted and future ones too), and
/// the multi-key spans with limits, sorting and filters as well.
fn check_history(state: &State, model: &Model) -> std::result::Result<(), TestCaseError> {
    let variants = [
        RangeRequest { limit: 1, ..Default::default() },
        RangeRequest { limit: 2, sort_order: SortOrder::Descend, sort_target: SortTarget::Mod, ..Default::default() },
        RangeRequest { limit: 2, sort_target: SortTarget::Value, keys_only: true, ..Default::default() },
        RangeRequest { count_only: true, limit: 1, ..Default::default() },
        RangeRequest { min_mod_revision: 3, sort_target: SortTarget::Version, limit: 1, ..Default::default() },
    ];
    for rev in -1..=model.current() + 1 {
        for (i, (key, range_end)) in all_spans().into_iter().enumerate() {
            let extra = if i < 3 { &variants[..] } else { &[] };
            for v in std::iter::once(&RangeRequest::default()).chain(extra) {
                let req = RangeRequest { key: key.clone(), range_end: range_end.clone(), revision: rev, ..v.clone() };
                prop_assert_eq!(state.range(&req), model.range(&req), "read at {}: {:?}", rev, req);
            }
        }
    }
    Ok(())
}

fn run(ops: &[Op]) -> std::result::Result<(), TestCaseError> {
    let mut state = State::new(StateConfig::default());
    let mut model = Model::new();
    let mut index = 0;
    for op in ops {
        match op.build(&model) {
            Err(req) => prop_assert_eq!(state.range(&req), model.range(&req), "range {:?}", req),
            Ok(cmd) => {
                if let Command::Txn(t) = &cmd {
                    let dup = has_duplicate(&t.success) || has_duplicate(&t.failure);
                    let valid = validate_txn(t, &Limits::default());
                    prop_assert_eq!(valid.clone(), if dup { Err(Error::DuplicateKey) } else { Ok(()) }, "{:?}", t);
                    if valid.is_err() {
                        continue;
                    }
                }
                index += 1;
                let applied = state.apply(index, &cmd, Millis(0));
                let (result, events) = model.apply(&cmd);
                prop_assert_eq!(&applied.result, &result, "{:?}", cmd);
                prop_assert_eq!(applied.revision, model.current());
                let got: Events = applied.events.iter().map(|e| (e.kind, e.kv.clone())).collect();
                prop_assert_eq!(got, events, "events of {:?}", cmd);
            }
        }
        state.store().check_invariants();
        prop_assert_eq!(state.revision(), model.current());
        prop_assert_eq!(state.store().current_revision(), model.current());
        prop_assert_eq!(state.store().compact_revision(), model.compacted);
        prop_assert_eq!(state.applied_index(), index);
        prop_assert_eq!(state.store().len(), model.snaps.last().unwrap().len());
    }
    check_history(&state, &model)?;

    // A snapshot restores the same state, which then keeps behaving alike.
    let mut restored = snapshot::decode(&snapshot::encode(&state)).expect("own snapshot decodes");
    prop_assert_eq!(restored.hash(), state.hash());
    prop_assert_eq!(restored.applied_index(), state.applied_index());
    prop_assert_eq!(restored.store().compact_revision(), model.compacted);
    restored.store().check_invariants();
    check_history(&restored, &model)?;
    for (i, k) in KEYS.iter().enumerate() {
        let cmd = if i % 2 == 0 {
            Command::Put(put_req(&b(k), "z", true))
        } else {
            Command::DeleteRange(DeleteRangeRequest { key: b(k), range_end: Bytes::new(), prev_kv: true })
        };
        index += 1;
        let (a, r) = (state.apply(index, &cmd, Millis(0)), restored.apply(index, &cmd, Millis(0)));
        prop_assert_eq!(&a, &r);
        prop_assert_eq!(&a.result, &model.apply(&cmd).0);
    }
    prop_assert_eq!(restored.hash(), state.hash());
    check_history(&restored, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn state_matches_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops)?;
    }
}
