//! KV semantics against what etcd 3.4 does (the seeds' `etcdctl` sessions).

mod common;

use bytes::Bytes;
use common::*;
use detcd_core::request::*;
use detcd_core::{prefix_range_end, Error, EventKind};

#[test]
fn fresh_store_is_at_revision_one_and_puts_advance_it() {
    let mut n = Node::new();
    assert_eq!(n.state.revision(), 1);
    let r = n.put("foo", "bar");
    assert_eq!(r.revision, 2);
    assert_eq!(r.prev_kv, None);
    let kv = n.get("foo").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
    let r = n.put("foo", "baz");
    assert_eq!(r.prev_kv.unwrap().value, b("bar"));
    let kv = n.get("foo").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
}

#[test]
fn historical_reads_as_in_the_seed() {
    // foo=bar1 @2, foo1=bar2 @3, foo=bar3 ... as `etcdctl get --prefix --rev N foo`.
    let mut n = Node::new();
    n.put("foo", "bar1");
    n.put("foo1", "bar2");
    n.put("foo", "bar3");
    n.put("foo1", "bar4");
    let at = |n: &Node, rev| {
        let req =
            RangeRequest { key: b("foo"), range_end: prefix_range_end(b"foo"), revision: rev, ..Default::default() };
        let r = n.range(req).unwrap();
        assert_eq!(r.revision, 5, "header carries the current revision");
        r.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()).collect::<Vec<_>>()
    };
    assert_eq!(at(&n, 0), ["bar3", "bar4"]);
    assert_eq!(at(&n, 4), ["bar3", "bar2"]);
    assert_eq!(at(&n, 3), ["bar1", "bar2"]);
    assert_eq!(at(&n, 2), ["bar1"]);
    assert!(at(&n, 1).is_empty());
    assert_eq!(n.range(RangeRequest { key: b("foo"), revision: 6, ..Default::default() }), Err(Error::FutureRev));
}

#[test]
fn compaction_drops_old_revisions_and_rejects_reads_below() {
    let mut n = Node::new();
    for v in ["a", "b", "c", "d"] {
        n.put("k", v);
    }
    n.put("gone", "x");
    n.delete("gone", "");
    // revisions: k@2..5, gone@6, delete@7
    n.compact(4).unwrap();
    assert_eq!(n.compact(4), Err(Error::Compacted));
    assert_eq!(n.compact(3), Err(Error::Compacted));
    assert_eq!(n.compact(99), Err(Error::FutureRev));
    let read = |n: &Node, rev| n.range(RangeRequest { key: b("k"), revision: rev, ..Default::default() });
    assert_eq!(read(&n, 3), Err(Error::Compacted));
    assert_eq!(read(&n, 4).unwrap().kvs[0].value, b("c"), "the compaction revision itself is readable");
    assert_eq!(read(&n, 5).unwrap().kvs[0].value, b("d"));
    n.compact(7).unwrap();
    assert_eq!(n.state.store().history_len(), 2, "k@5 stays as the latest value; the delete of `gone` at 7 stays");
    n.state.store().check_invariants();
    assert_eq!(n.get("k").unwrap().version, 4, "version survives compaction");
    assert!(n.get("gone").is_none());
}

#[test]
fn range_options_limit_count_sort_filters() {
    let mut n = Node::new();
    for k in ["a", "b", "c", "d", "e"] {
        n.put(k, &k.repeat(3));
    }
    n.put("b", "again");
    let all = |req: RangeRequest| RangeRequest { key: b("a"), range_end: Bytes::from_static(&[0]), ..req };
    let r = n.range(all(RangeRequest { limit: 2, ..Default::default() })).unwrap();
    assert_eq!((keys(&r.kvs), r.more, r.count), (vec!["a".into(), "b".into()], true, 5));
    let r = n.range(all(RangeRequest { count_only: true, ..Default::default() })).unwrap();
    assert!(r.kvs.is_empty() && r.count == 5 && !r.more);
    let r = n.range(all(RangeRequest { keys_only: true, limit: 1, ..Default::default() })).unwrap();
    assert!(r.kvs[0].value.is_empty());
    let r = n.range(all(RangeRequest { sort_order: SortOrder::Descend, limit: 2, ..Default::default() })).unwrap();
    assert_eq!(keys(&r.kvs), ["e", "d"]);
    // A non-key target with no order sorts ascending, as etcd.
    let r = n.range(all(RangeRequest { sort_target: SortTarget::Mod, ..Default::default() })).unwrap();
    assert_eq!(keys(&r.kvs), ["a", "c", "d", "e", "b"]);
    let r = n
        .range(all(RangeRequest {
            sort_target: SortTarget::Version,
            sort_order: SortOrder::Descend,
            limit: 1,
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(keys(&r.kvs), ["b"]);
    let r = n.range(all(RangeRequest { min_mod_revision: 4, max_mod_revision: 5, ..Default::default() })).unwrap();
    assert_eq!(keys(&r.kvs), ["c", "d"]);
    assert_eq!(r.count, 5, "count is taken before the filters, as etcd");
    let r =
        n.range(all(RangeRequest { min_create_revision: 3, max_create_revision: 3, ..Default::default() })).unwrap();
    assert_eq!(keys(&r.kvs), ["b"]);
    // `--from-key b`
    let r = n.range(RangeRequest { key: b("b"), range_end: Bytes::from_static(&[0]), ..Default::default() }).unwrap();
    assert_eq!(keys(&r.kvs), ["b", "c", "d", "e"]);
    // An end before the start selects nothing (and does not panic).
    let r = n.range(RangeRequest { key: b("d"), range_end: b("b"), ..Default::default() }).unwrap();
    assert!(r.kvs.is_empty() && r.count == 0);
    assert_eq!(n.range(RangeRequest::default()), Err(Error::EmptyKey));
}

#[test]
fn delete_range_with_prev_kv_and_no_op_deletes() {
    let mut n = Node::new();
    n.put("zoo", "1");
    n.put("zoo1", "2");
    n.put("zz", "3");
    let r = n.delete("zoo", std::str::from_utf8(&prefix_range_end(b"zoo")).unwrap());
    assert_eq!(r.deleted, 2);
    assert_eq!(keys(&r.prev_kvs), ["zoo", "zoo1"]);
    assert_eq!(r.revision, 5);
    let applied = n.apply(Command::DeleteRange(DeleteRangeRequest { key: b("nothing"), ..Default::default() }));
    assert_eq!(applied.revision, 5, "a delete of nothing keeps the revision");
    assert!(applied.events.is_empty());
    let events = n.apply(Command::Put(PutRequest { key: b("zoo"), value: b("new"), ..Default::default() })).events;
    assert_eq!(events[0].kind, EventKind::Put);
    let kv = n.get("zoo").unwrap();
    assert_eq!((kv.create_revision, kv.version), (6, 1), "a recreated key starts a new generation");
}

#[test]
fn txn_lock_idiom_and_revisions() {
    let mut n = Node::new();
    let lock = |n: &mut Node| {
        n.txn(TxnRequest {
            compare: vec![compare("my_lock", CompareResult::Equal, CompareTarget::Create(0))],
            success: vec![put_op("my_lock", "holder")],
            failure: vec![get_op("my_lock")],
        })
        .unwrap()
    };
    let first = lock(&mut n);
    assert!(first.succeeded);
    assert_eq!(first.revision, 2);
    let second = lock(&mut n);
    assert!(!second.succeeded);
    assert_eq!(second.revision, 2, "a read-only txn does not advance the revision");
    let ResponseOp::Range(r) = &second.responses[0] else { panic!() };
    assert_eq!(r.kvs[0].value, b("holder"));
}

#[test]
fn txn_ops_share_one_revision_and_see_their_own_writes() {
    let mut n = Node::new();
    n.put("x", "0");
    let r = n
        .txn(TxnRequest {
            compare: vec![compare("x", CompareResult::Equal, CompareTarget::Value(b("0")))],
            success: vec![get_op("y"), put_op("y", "1"), get_op("y"), put_op("z", "2")],
            failure: vec![],
        })
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 3);
    let ResponseOp::Range(before) = &r.responses[0] else { panic!() };
    assert!(before.kvs.is_empty());
    assert_eq!(before.revision, 2);
    let ResponseOp::Range(after) = &r.responses[2] else { panic!() };
    assert_eq!(after.kvs[0].value, b("1"));
    assert_eq!(after.revision, 3);
    assert_eq!(n.get("y").unwrap().mod_revision, 3);
    assert_eq!(n.get("z").unwrap().mod_revision, 3);
    let events = n
        .apply(Command::Txn(TxnRequest { success: vec![put_op("a", "1"), put_op("b", "1")], ..Default::default() }))
        .events;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kv.mod_revision == 4));
}

#[test]
fn txn_compares_on_every_target_and_ranges() {
    let mut n = Node::new();
    n.put("k1", "v");
    n.put("k2", "v");
    let ok = |n: &mut Node, c: Compare| n.txn(TxnRequest { compare: vec![c], ..Default::default() }).unwrap().succeeded;
    assert!(ok(&mut n, compare("k1", CompareResult::Equal, CompareTarget::Version(1))));
    assert!(ok(&mut n, compare("k1", CompareResult::Less, CompareTarget::Mod(3))));
    assert!(ok(&mut n, compare("k2", CompareResult::Greater, CompareTarget::Create(2))));
    assert!(ok(&mut n, compare("k1", CompareResult::NotEqual, CompareTarget::Value(b("w")))));
    assert!(ok(&mut n, compare("k1", CompareResult::Equal, CompareTarget::Lease(0))));
    assert!(
        !ok(&mut n, compare("none", CompareResult::NotEqual, CompareTarget::Value(b("x")))),
        "a value compare on no key fails"
    );
    assert!(ok(&mut n, compare("none", CompareResult::Equal, CompareTarget::Version(0))));
    let mut range = compare("k", CompareResult::Equal, CompareTarget::Value(b("v")));
    range.range_end = prefix_range_end(b"k");
    assert!(ok(&mut n, range.clone()));
    n.put("k3", "other");
    assert!(!ok(&mut n, range), "every key in the range must match");
}

#[test]
fn nested_txn_and_failed_txn_changes_nothing() {
    let mut n = Node::new();
    n.put("a", "1");
    let inner = TxnRequest {
        compare: vec![compare("a", CompareResult::Equal, CompareTarget::Value(b("1")))],
        success: vec![put_op("b", "inner")],
        failure: vec![],
    };
    let r = n.txn(TxnRequest { success: vec![put_op("a", "2"), RequestOp::Txn(inner)], ..Default::default() }).unwrap();
    let ResponseOp::Txn(inner) = &r.responses[1] else { panic!() };
    assert!(inner.succeeded, "nested compares see the state before the txn");
    assert_eq!(n.get("b").unwrap().mod_revision, 3);

    let before = n.state.hash();
    let bad = TxnRequest {
        success: vec![put_op("c", "1"), RequestOp::Put(PutRequest { key: b("d"), lease: 42, ..Default::default() })],
        ..Default::default()
    };
    assert_eq!(n.txn(bad), Err(Error::LeaseNotFound));
    assert_eq!(n.state.hash(), before, "a failing txn writes nothing");
    let bad = TxnRequest {
        success: vec![RequestOp::Range(RangeRequest { key: b("a"), revision: 100, ..Default::default() })],
        ..Default::default()
    };
    assert_eq!(n.txn(bad), Err(Error::FutureRev));
}

#[test]
fn put_ignore_value_and_lease() {
    let mut n = Node::new();
    let missing = PutRequest { key: b("k"), ignore_value: true, ..Default::default() };
    assert_eq!(n.put_req(missing.clone()), Err(Error::KeyNotFound));
    let id = n.grant(7, 60).unwrap().id;
    n.put_req(PutRequest { key: b("k"), value: b("v"), lease: id, ..Default::default() }).unwrap();
    n.put_req(missing).unwrap();
    assert_eq!(n.get("k").unwrap().value, b("v"));
    assert_eq!(n.get("k").unwrap().lease, 0, "without ignore_lease the lease is replaced");
    n.put_req(PutRequest { key: b("k"), value: b("w"), lease: id, ..Default::default() }).unwrap();
    n.put_req(PutRequest { key: b("k"), value: b("x"), ignore_lease: true, ..Default::default() }).unwrap();
    assert_eq!(n.get("k").unwrap().lease, id);
    assert_eq!(n.put_req(PutRequest { key: b("k2"), lease: 99, ..Default::default() }), Err(Error::LeaseNotFound));
}

#[test]
fn hash_kv_is_equal_for_equal_histories() {
    let run = || {
        let mut n = Node::new();
        for i in 0..20 {
            n.put(&format!("k{}", i % 4), &i.to_string());
        }
        n.delete("k1", "");
        n.compact(10).unwrap();
        n
    };
    let (a, b_) = (run(), run());
    assert_eq!(a.state.hash_kv(0), b_.state.hash_kv(0));
    assert_eq!(a.state.hash_kv(15).unwrap().revision, 15);
    assert_ne!(a.state.hash_kv(15).unwrap().hash, a.state.hash_kv(0).unwrap().hash);
    assert_eq!(a.state.hash_kv(5), Err(Error::Compacted));
    let mut c = run();
    c.put("k0", "different");
    assert_ne!(c.state.hash_kv(0).unwrap().hash, a.state.hash_kv(0).unwrap().hash);
}

#[test]
fn txn_range_revisions_are_checked_as_etcd_does() {
    let mut n = Node::new();
    for v in ["1", "2", "3"] {
        n.put("k", v);
    }
    let read_at = |revision| TxnRequest {
        success: vec![RequestOp::Range(RangeRequest { key: b("k"), revision, ..Default::default() })],
        ..Default::default()
    };
    assert!(n.txn(read_at(-1)).is_ok(), "before any compaction etcd's first revision is -1");
    n.compact(3).unwrap();
    assert_eq!(n.txn(read_at(2)), Err(Error::Compacted));
    assert_eq!(n.txn(read_at(-1)), Err(Error::Compacted), "etcd rejects a negative revision once compacted");
    assert_eq!(n.txn(read_at(5)), Err(Error::FutureRev));
    let ResponseOp::Range(r) = &n.txn(read_at(0)).unwrap().responses[0] else { panic!() };
    assert_eq!(r.kvs[0].value, b("3"));
}
