//! Criterion micro benchmarks of `detcd-core`: in memory, one thread, no
//! network, no disk, no consensus. They measure the deterministic state
//! machine alone (`State::apply`, `State::range`) and the watch hub's fan-out.
//!
//! Run with `cargo bench -p detcd-bench --bench core`; docs/PERF.md records
//! the figures and the targets they are held to.
//!
//! Every benchmark reports one operation per iteration (`Throughput::Elements(1)`),
//! so criterion's `thrpt` line is operations per second.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use detcd_core::request::{
    Command, CompactionRequest, Compare, CompareResult, CompareTarget, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use detcd_core::watch::{WatchHub, WatchLimits, WatchOutput, WatchRequest};
use detcd_core::{prefix_range_end, Event, EventKind, KeyValue, Millis, State, StateConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Size of the key space the store is preloaded with and written over.
const KEYS: usize = 100_000;
const VALUE_SIZE: usize = 256;
/// A key space small enough to stay in the CPU caches.
const HOT_KEYS: usize = 10_000;
/// Keys selected by one prefix range (`key/00012` selects `key/00012000` to
/// `key/00012999`).
const PREFIX_KEYS: usize = 1_000;
const WATCHERS: usize = 10_000;
/// Writes are timed in chunks of this many; between chunks (untimed) the
/// history is compacted once it holds this many entries, so a long
/// measurement does not grow memory without bound.
const WRITE_CHUNK: u64 = 10_000;
const COMPACT_ABOVE: usize = 4 * KEYS;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key/{i:08}"))
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_SIZE])
}

/// A fixed pseudo-random permutation of `0..n` (Fisher-Yates over splitmix64),
/// so keys are visited in a cache-unfriendly but repeatable order.
fn shuffled(n: usize) -> Vec<usize> {
    let mut seed: u64 = 0x0064_6574_6364;
    let mut next = move || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn put(key: Bytes, value: Bytes) -> Command {
    Command::Put(PutRequest { key, value, ..Default::default() })
}

/// A state driven through `State::apply` with an increasing log index.
struct Applier {
    state: State,
    index: u64,
}

impl Applier {
    fn new() -> Applier {
        Applier { state: State::new(StateConfig::default()), index: 0 }
    }

    /// A store holding `KEYS` keys with 256-byte values, each written once.
    fn preloaded() -> Applier {
        Applier::preloaded_with(KEYS)
    }

    fn preloaded_with(keys: usize) -> Applier {
        let mut a = Applier::new();
        let value = value();
        for i in 0..keys {
            let applied = a.apply(&put(key(i), value.clone()));
            assert!(applied.result.is_ok(), "preload put failed: {:?}", applied.result);
        }
        a
    }

    fn apply(&mut self, cmd: &Command) -> detcd_core::Applied {
        self.index += 1;
        self.state.apply(self.index, cmd, Millis(0))
    }

    fn compact(&mut self) {
        let revision = self.state.revision();
        let applied = self.apply(&Command::Compaction(CompactionRequest { revision, physical: true }));
        assert!(applied.result.is_ok(), "compaction failed: {:?}", applied.result);
    }

    /// Applies `iters` commands from `cmds` (cycling, starting at `*next`)
    /// and returns the time spent in `apply` alone: compaction runs between
    /// timed chunks.
    fn run_writes(&mut self, cmds: &[Command], next: &mut usize, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.state.store().history_len() > COMPACT_ABOVE {
                self.compact();
            }
            let chunk = left.min(WRITE_CHUNK);
            let start = Instant::now();
            for _ in 0..chunk {
                let cmd = &cmds[*next];
                *next += 1;
                if *next == cmds.len() {
                    *next = 0;
                }
                self.index += 1;
                black_box(self.state.apply(self.index, cmd, Millis(0)));
            }
            timed += start.elapsed();
            left -= chunk;
        }
        timed
    }
}

/// Puts of 256-byte values over a preloaded 100,000-key space, in a shuffled
/// key order: every put overwrites a live key (the steady state of a store).
fn bench_put(c: &mut Criterion) {
    let mut a = Applier::preloaded();
    let value = value();
    let cmds: Vec<Command> = shuffled(KEYS).into_iter().map(|i| put(key(i), value.clone())).collect();
    assert!(a.apply(&cmds[0]).result.is_ok());
    let mut next = 1;
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    g.bench_function("256B_value_100k_keys", |b| b.iter_custom(|iters| a.run_writes(&cmds, &mut next, iters)));
    g.finish();
}

/// A txn with one compare (version > 0, which holds) and one put in its
/// success branch, over the same key space as `put`.
fn bench_txn(c: &mut Criterion) {
    let mut a = Applier::preloaded();
    let value = value();
    let cmds: Vec<Command> = shuffled(KEYS)
        .into_iter()
        .map(|i| {
            let k = key(i);
            Command::Txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Greater,
                    target: CompareTarget::Version(0),
                    key: k.clone(),
                    range_end: Bytes::new(),
                }],
                success: vec![RequestOp::Put(PutRequest { key: k, value: value.clone(), ..Default::default() })],
                failure: vec![],
            })
        })
        .collect();
    let first = a.apply(&cmds[0]);
    assert!(
        matches!(&first.result, Ok(detcd_core::request::Response::Txn(t)) if t.succeeded),
        "txn compare should hold: {:?}",
        first.result
    );
    let mut next = 1;
    let mut g = c.benchmark_group("txn");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_compare_1_put", |b| b.iter_custom(|iters| a.run_writes(&cmds, &mut next, iters)));
    g.finish();
}

/// Reads on a store preloaded with 100,000 keys, at the current revision.
fn bench_range(c: &mut Criterion) {
    let a = Applier::preloaded();
    let state = &a.state;
    let points: Vec<RangeRequest> =
        shuffled(KEYS).into_iter().map(|i| RangeRequest { key: key(i), ..Default::default() }).collect();
    assert_eq!(state.range(&points[0]).expect("point range").kvs.len(), 1);
    let prefixes: Vec<RangeRequest> = (0..KEYS / PREFIX_KEYS)
        .map(|p| {
            let prefix = Bytes::from(format!("key/{p:05}"));
            RangeRequest { range_end: prefix_range_end(&prefix), key: prefix, ..Default::default() }
        })
        .collect();
    assert_eq!(state.range(&prefixes[12]).expect("prefix range").kvs.len(), PREFIX_KEYS);

    let mut g = c.benchmark_group("range");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("point_100k_keys", |b| {
        b.iter(|| {
            let req = &points[i];
            i += 1;
            if i == points.len() {
                i = 0;
            }
            black_box(state.range(req))
        })
    });
    // The same on a store whose working set fits the CPU caches (10,000
    // keys): what a hot key space costs, next to the cache-cold figure above.
    let small = Applier::preloaded_with(HOT_KEYS);
    let hot: Vec<RangeRequest> =
        shuffled(HOT_KEYS).into_iter().map(|i| RangeRequest { key: key(i), ..Default::default() }).collect();
    let mut i = 0;
    g.bench_function("point_10k_keys", |b| {
        b.iter(|| {
            let req = &hot[i];
            i += 1;
            if i == hot.len() {
                i = 0;
            }
            black_box(small.state.range(req))
        })
    });
    // Diagnostic, not a target: the bare key-index lookup (`Store::get`,
    // one `BTreeMap::get`, no request, no clone, no response) under the
    // same shuffled keys, i.e. the floor `point_100k_keys` sits on.
    let mut i = 0;
    g.bench_function("store_get_100k_keys", |b| {
        b.iter(|| {
            let key = &points[i].key;
            i += 1;
            if i == points.len() {
                i = 0;
            }
            black_box(state.store().get(key)).is_some()
        })
    });
    let mut i = 0;
    g.bench_function("prefix_1000_keys", |b| {
        b.iter(|| {
            let req = &prefixes[i];
            i += 1;
            if i == prefixes.len() {
                i = 0;
            }
            black_box(state.range(req))
        })
    });
    g.finish();
}

/// A put event as `apply` produces it (with its previous value).
fn put_event(key: &Bytes, value: &Bytes, rev: i64) -> Event {
    let kv = |mod_revision: i64| KeyValue {
        key: key.clone(),
        create_revision: 2,
        mod_revision,
        version: mod_revision - 1,
        value: value.clone(),
        lease: 0,
    };
    Event { kind: EventKind::Put, kv: kv(rev), prev_kv: Some(kv(rev - 1)) }
}

/// One put event fed to `WatchHub::notify` and collected by `poll`, with
/// 10,000 synced watchers: all on the event's key, or each on its own key.
fn bench_fanout(c: &mut Criterion) {
    let state = State::new(StateConfig::default());
    let value = value();
    let mut g = c.benchmark_group("watch_fanout");
    g.throughput(Throughput::Elements(1));

    let hot = key(0);
    let mut hub = WatchHub::new(WatchLimits::default());
    for _ in 0..WATCHERS {
        hub.watch(WatchRequest { key: hot.clone(), ..Default::default() }, state.store());
    }
    let mut rev = state.revision();
    rev += 1;
    hub.notify(&[put_event(&hot, &value, rev)]);
    assert_eq!(hub.poll(rev).len(), WATCHERS, "every watcher on the key gets the event");
    g.bench_function("10k_watchers_same_key", |b| {
        b.iter(|| {
            rev += 1;
            hub.notify(&[put_event(&hot, &value, rev)]);
            black_box(hub.poll(rev))
        })
    });

    let keys: Vec<Bytes> = (0..WATCHERS).map(key).collect();
    let mut hub = WatchHub::new(WatchLimits::default());
    for k in &keys {
        hub.watch(WatchRequest { key: k.clone(), ..Default::default() }, state.store());
    }
    let mut rev = state.revision();
    rev += 1;
    hub.notify(&[put_event(&keys[7], &value, rev)]);
    let out = hub.poll(rev);
    assert!(matches!(out.as_slice(), [WatchOutput::Events { events, .. }] if events.len() == 1), "one watcher matches");
    let mut i = 0;
    g.bench_function("10k_watchers_distinct_keys_1_match", |b| {
        b.iter(|| {
            rev += 1;
            i = (i + 1) % keys.len();
            hub.notify(&[put_event(&keys[i], &value, rev)]);
            black_box(hub.poll(rev))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20)
}

criterion_group! {
    name = core;
    config = config();
    targets = bench_put, bench_range, bench_txn, bench_fanout
}
criterion_main!(core);
