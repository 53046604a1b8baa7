//! Round trips of key-values, events, Range, Put, DeleteRange, Compact,
//! watch creation and responses, leases and HashKV.

use super::*;
use crate::etcd::etcdserverpb::{range_request, watch_create_request::FilterType};
use crate::etcd::mvccpb;
use bytes::Bytes;
use detcd_core::request::*;
use detcd_core::watch::{WatchOutput, WatchRequest};
use detcd_core::{Event, EventKind, HashKv, KeyValue};

pub(super) const H: Header = Header { cluster_id: 0xc1, member_id: 0x3e, raft_term: 7 };

pub(super) fn kv(key: &'static str, value: &'static str, rev: i64) -> KeyValue {
    KeyValue {
        key: Bytes::from_static(key.as_bytes()),
        create_revision: 2,
        mod_revision: rev,
        version: rev - 1,
        value: Bytes::from_static(value.as_bytes()),
        lease: 0x1234,
    }
}

pub(super) fn range_req() -> RangeRequest {
    RangeRequest {
        key: Bytes::from_static(b"a"),
        range_end: Bytes::from_static(b"z"),
        limit: 10,
        revision: 5,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Mod,
        serializable: true,
        keys_only: true,
        count_only: false,
        min_mod_revision: 1,
        max_mod_revision: 2,
        min_create_revision: 3,
        max_create_revision: 4,
    }
}

pub(super) fn put_req() -> PutRequest {
    PutRequest {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
        lease: 9,
        prev_kv: true,
        ignore_value: false,
        ignore_lease: true,
    }
}

#[test]
fn key_value_round_trip_shares_the_bytes() {
    let core = kv("key", "value", 9);
    let pb: mvccpb::KeyValue = core.clone().into();
    assert_eq!((pb.key.as_ref(), pb.create_revision, pb.mod_revision), (&b"key"[..], 2, 9));
    assert_eq!((pb.version, pb.value.as_ref(), pb.lease), (8, &b"value"[..], 0x1234));
    assert_eq!(pb.value.as_ptr(), core.value.as_ptr(), "no copy of the value");
    assert_eq!(KeyValue::from(pb), core);
}

#[test]
fn event_round_trip_and_types() {
    let put = Event { kind: EventKind::Put, kv: kv("a", "1", 5), prev_kv: Some(kv("a", "0", 4)) };
    let pb: mvccpb::Event = put.clone().into();
    assert_eq!(pb.r#type, 0, "a PUT event is type 0");
    assert_eq!(Event::try_from(pb).unwrap(), put);
    let del = Event {
        kind: EventKind::Delete,
        kv: KeyValue { key: "a".into(), mod_revision: 6, ..Default::default() },
        prev_kv: None,
    };
    let pb: mvccpb::Event = del.clone().into();
    assert_eq!((pb.r#type, pb.prev_kv.is_none()), (1, true));
    assert_eq!(Event::try_from(pb).unwrap(), del);

    let bad = mvccpb::Event { r#type: 2, kv: Some(Default::default()), prev_kv: None };
    assert_eq!(Event::try_from(bad), Err(ConvertError::UnknownEnum { field: "Event.type", value: 2 }));
    let no_kv = mvccpb::Event { r#type: 0, kv: None, prev_kv: None };
    assert_eq!(Event::try_from(no_kv), Err(ConvertError::Missing("Event.kv")));
}

#[test]
fn range_request_round_trip_every_sort() {
    let orders = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend];
    let targets = [SortTarget::Key, SortTarget::Version, SortTarget::Create, SortTarget::Mod, SortTarget::Value];
    for (i, sort_order) in orders.into_iter().enumerate() {
        for (j, sort_target) in targets.into_iter().enumerate() {
            let core = RangeRequest { sort_order, sort_target, count_only: true, ..range_req() };
            let pb: pb::RangeRequest = core.clone().into();
            assert_eq!((pb.sort_order, pb.sort_target), (i as i32, j as i32));
            assert_eq!(RangeRequest::try_from(pb).unwrap(), core);
        }
    }
    assert_eq!(RangeRequest::try_from(pb::RangeRequest::from(range_req())).unwrap(), range_req());
}

#[test]
fn range_request_refusals_in_etcds_order() {
    let bad_order = pb::RangeRequest { key: "k".into(), sort_order: 3, ..Default::default() };
    assert_eq!(RangeRequest::try_from(bad_order), Err(ConvertError::Core(detcd_core::Error::InvalidSortOption)));
    let bad_target = pb::RangeRequest { key: "k".into(), sort_target: 5, ..Default::default() };
    assert_eq!(RangeRequest::try_from(bad_target), Err(ConvertError::Core(detcd_core::Error::InvalidSortOption)));
    let both = pb::RangeRequest { sort_order: -1, ..Default::default() };
    assert_eq!(RangeRequest::try_from(both), Err(ConvertError::Core(detcd_core::Error::EmptyKey)));
    let ok =
        pb::RangeRequest { key: "k".into(), sort_order: range_request::SortOrder::Ascend as i32, ..Default::default() };
    assert_eq!(RangeRequest::try_from(ok).unwrap().sort_order, SortOrder::Ascend);
}

#[test]
fn range_response_round_trip_with_header() {
    let core = RangeResponse { revision: 12, kvs: vec![kv("a", "1", 3), kv("b", "2", 4)], more: true, count: 5 };
    let pb = range_response(&H, core.clone());
    let h = pb.header.unwrap();
    assert_eq!((h.cluster_id, h.member_id, h.revision, h.raft_term), (0xc1, 0x3e, 12, 7));
    assert_eq!(RangeResponse::from(pb), core);
    assert_eq!(RangeResponse::from(pb::RangeResponse::default()), RangeResponse::default(), "no header: revision 0");
}

#[test]
fn put_round_trips() {
    assert_eq!(PutRequest::from(pb::PutRequest::from(put_req())), put_req());
    let pb = pb::PutRequest { key: "x".into(), ignore_value: true, ..Default::default() };
    assert_eq!(pb::PutRequest::from(PutRequest::from(pb.clone())), pb);
    for prev_kv in [None, Some(kv("k", "old", 3))] {
        let core = PutResponse { revision: 8, prev_kv };
        let pb = put_response(&H, core.clone());
        assert_eq!(pb.header, Some(H.at(8)));
        assert_eq!(PutResponse::from(pb), core);
    }
}

#[test]
fn delete_range_round_trips() {
    let core = DeleteRangeRequest { key: "a".into(), range_end: Bytes::from_static(&[0]), prev_kv: true };
    assert_eq!(DeleteRangeRequest::from(pb::DeleteRangeRequest::from(core.clone())), core);
    let resp = DeleteRangeResponse { revision: 4, deleted: 2, prev_kvs: vec![kv("a", "1", 2), kv("b", "2", 3)] };
    let pb = delete_range_response(&H, resp.clone());
    assert_eq!((pb.header, pb.deleted), (Some(H.at(4)), 2));
    assert_eq!(DeleteRangeResponse::from(delete_range_response(&H, resp.clone())), resp);
}

#[test]
fn compaction_round_trips() {
    let core = CompactionRequest { revision: 42, physical: true };
    assert_eq!(CompactionRequest::from(pb::CompactionRequest::from(core.clone())), core);
    let resp = CompactionResponse { revision: 50 };
    assert_eq!(compaction_response(&H, resp.clone()).header, Some(H.at(50)));
    assert_eq!(CompactionResponse::from(compaction_response(&H, resp.clone())), resp);
}

#[test]
fn lease_round_trips() {
    let grant = LeaseGrantRequest { ttl: 60, id: 0x77 };
    let pb = pb::LeaseGrantRequest::from(grant.clone());
    assert_eq!((pb.ttl, pb.id), (60, 0x77));
    assert_eq!(LeaseGrantRequest::from(pb), grant);
    let resp = LeaseGrantResponse { revision: 3, id: 0x77, ttl: 60 };
    let pb = lease_grant_response(&H, resp.clone());
    assert_eq!((pb.header, pb.error.as_str()), (Some(H.at(3)), ""));
    assert_eq!(LeaseGrantResponse::from(pb), resp);

    let revoke = LeaseRevokeRequest { id: 0x77 };
    assert_eq!(LeaseRevokeRequest::from(pb::LeaseRevokeRequest::from(revoke.clone())), revoke);
    let resp = LeaseRevokeResponse { revision: 9 };
    assert_eq!(lease_revoke_response(&H, resp.clone()).header, Some(H.at(9)));
    assert_eq!(LeaseRevokeResponse::from(lease_revoke_response(&H, resp.clone())), resp);
}

#[test]
fn hash_kv_round_trip() {
    let core = HashKv { hash: 0xdead_beef, compact_revision: 3, revision: 10 };
    let pb = hash_kv_response(&H, core);
    assert_eq!((pb.header, pb.hash), (Some(H.at(10)), 0xdead_beef));
    assert_eq!(HashKv::from(pb), core);
}

#[test]
fn watch_create_round_trips_and_filters() {
    for (no_put, no_delete) in [(false, false), (true, false), (false, true), (true, true)] {
        let core = WatchRequest {
            key: "a".into(),
            range_end: "b".into(),
            start_revision: 7,
            prev_kv: true,
            no_put,
            no_delete,
            progress_notify: true,
            fragment: true,
        };
        assert_eq!(WatchRequest::from(pb::WatchCreateRequest::from(core.clone())), core);
    }
    let pb =
        pb::WatchCreateRequest { key: "k".into(), filters: vec![FilterType::Nodelete as i32, 9], ..Default::default() };
    let core = WatchRequest::from(pb);
    assert_eq!((core.no_put, core.no_delete), (false, true), "unknown filters are ignored");
}

#[test]
fn watch_responses() {
    let ev = Event { kind: EventKind::Put, kv: kv("a", "1", 5), prev_kv: None };
    let out = WatchOutput::Events { watcher: 99, revision: 6, events: vec![ev.clone()], fragment: true };
    let pb = watch_response(&H, 3, out);
    assert_eq!((pb.header, pb.watch_id, pb.fragment, pb.canceled), (Some(H.at(6)), 3, true, false));
    assert_eq!(pb.events.into_iter().map(|e| Event::try_from(e).unwrap()).collect::<Vec<_>>(), vec![ev]);

    let pb = watch_response(&H, 4, WatchOutput::Compacted { watcher: 99, compact_revision: 12 });
    assert_eq!((pb.header, pb.watch_id, pb.canceled, pb.compact_revision), (Some(H.at(0)), 4, true, 12));
    assert!(pb.events.is_empty() && !pb.created);

    let pb = watch_response(&H, 5, WatchOutput::Progress { watcher: 99, revision: 20 });
    assert_eq!((pb.header, pb.watch_id, pb.canceled, pb.events.len()), (Some(H.at(20)), 5, false, 0));
}
