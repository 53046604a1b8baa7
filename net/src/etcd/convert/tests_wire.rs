//! The bytes on the wire: field numbers and wire types of the messages
//! etcdctl 3.4 and clientv3 send, checked by decoding prost's encoding by
//! hand, plus the gRPC service and method paths.

use crate::etcd::etcdserverpb::{self as pb, compare, request_op, watch_request};
use crate::etcd::mvccpb;
use prost::Message;

/// A decoded field: number, and either a varint or length-delimited bytes.
#[derive(Debug, PartialEq, Eq)]
enum F {
    V(u32, u64),
    L(u32, Vec<u8>),
}

fn varint(buf: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[0];
        *buf = &buf[1..];
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
    }
    v
}

fn fields(mut buf: &[u8]) -> Vec<F> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let (num, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push(F::V(num, varint(&mut buf))),
            2 => {
                let len = varint(&mut buf) as usize;
                out.push(F::L(num, buf[..len].to_vec()));
                buf = &buf[len..];
            }
            w => panic!("unexpected wire type {w} for field {num}"),
        }
    }
    out
}

fn l(num: u32, b: &[u8]) -> F {
    F::L(num, b.to_vec())
}

#[test]
fn put_request_tags() {
    let put = pb::PutRequest {
        key: "foo".into(),
        value: "bar".into(),
        lease: 9,
        prev_kv: true,
        ignore_value: true,
        ignore_lease: true,
    };
    let bytes = put.encode_to_vec();
    assert_eq!(&bytes[..10], b"\x0a\x03foo\x12\x03bar", "key is field 1, value field 2");
    assert_eq!(fields(&bytes), vec![l(1, b"foo"), l(2, b"bar"), F::V(3, 9), F::V(4, 1), F::V(5, 1), F::V(6, 1)]);
}

#[test]
fn range_request_tags() {
    let r = pb::RangeRequest {
        key: "a".into(),
        range_end: "b".into(),
        limit: 3,
        revision: 4,
        sort_order: 2,
        sort_target: 4,
        serializable: true,
        keys_only: true,
        count_only: true,
        min_mod_revision: 10,
        max_mod_revision: 11,
        min_create_revision: 12,
        max_create_revision: 13,
    };
    let expect = vec![
        l(1, b"a"),
        l(2, b"b"),
        F::V(3, 3),
        F::V(4, 4),
        F::V(5, 2),
        F::V(6, 4),
        F::V(7, 1),
        F::V(8, 1),
        F::V(9, 1),
        F::V(10, 10),
        F::V(11, 11),
        F::V(12, 12),
        F::V(13, 13),
    ];
    assert_eq!(fields(&r.encode_to_vec()), expect, "revision 4, keys_only 8, count_only 9, filters 10-13");
}

#[test]
fn txn_request_tags() {
    let cmp = pb::Compare {
        result: 3,
        target: 4,
        key: "k".into(),
        target_union: Some(compare::TargetUnion::Lease(7)),
        range_end: "z".into(),
    };
    let cmp_bytes = cmp.encode_to_vec();
    assert_eq!(fields(&cmp_bytes), vec![F::V(1, 3), F::V(2, 4), l(3, b"k"), F::V(8, 7), l(64, b"z")]);
    assert!(cmp_bytes.ends_with(b"\x82\x04\x01z"), "range_end is field 64");
    let unions = [
        (compare::TargetUnion::Version(1), 4),
        (compare::TargetUnion::CreateRevision(1), 5),
        (compare::TargetUnion::ModRevision(1), 6),
        (compare::TargetUnion::Lease(1), 8),
    ];
    for (u, tag) in unions {
        let c = pb::Compare { target_union: Some(u), ..Default::default() };
        assert_eq!(fields(&c.encode_to_vec()), vec![F::V(tag, 1)]);
    }
    let c = pb::Compare { target_union: Some(compare::TargetUnion::Value("v".into())), ..Default::default() };
    assert_eq!(fields(&c.encode_to_vec()), vec![l(7, b"v")]);
    let c = pb::Compare { target_union: Some(compare::TargetUnion::Version(0)), ..Default::default() };
    assert_eq!(fields(&c.encode_to_vec()), vec![F::V(4, 0)], "a set oneof is sent even when 0");

    let op = |r| pb::RequestOp { request: Some(r) };
    let range = pb::RangeRequest { key: "r".into(), ..Default::default() };
    let put = pb::PutRequest { key: "p".into(), ..Default::default() };
    let del = pb::DeleteRangeRequest { key: "d".into(), ..Default::default() };
    let txn = pb::TxnRequest {
        compare: vec![cmp.clone()],
        success: vec![
            op(request_op::Request::RequestRange(range.clone())),
            op(request_op::Request::RequestPut(put.clone())),
        ],
        failure: vec![
            op(request_op::Request::RequestDeleteRange(del.clone())),
            op(request_op::Request::RequestTxn(pb::TxnRequest::default())),
        ],
    };
    let expect = vec![
        l(1, &cmp_bytes),
        l(2, &[&[0x0a, 3][..], &range.encode_to_vec()].concat()),
        l(2, &[&[0x12, 3][..], &put.encode_to_vec()].concat()),
        l(3, &[&[0x1a, 3][..], &del.encode_to_vec()].concat()),
        l(3, &[0x22, 0]),
    ];
    assert_eq!(fields(&txn.encode_to_vec()), expect, "compare 1, success 2, failure 3; ops 1-4");
}

#[test]
fn response_and_kv_tags() {
    let h = pb::ResponseHeader { cluster_id: 1, member_id: 2, revision: 3, raft_term: 4 };
    assert_eq!(fields(&h.encode_to_vec()), vec![F::V(1, 1), F::V(2, 2), F::V(3, 3), F::V(4, 4)]);
    let kv = mvccpb::KeyValue {
        key: "k".into(),
        create_revision: 2,
        mod_revision: 3,
        version: 4,
        value: "v".into(),
        lease: 6,
    };
    let kv_fields = vec![l(1, b"k"), F::V(2, 2), F::V(3, 3), F::V(4, 4), l(5, b"v"), F::V(6, 6)];
    assert_eq!(fields(&kv.encode_to_vec()), kv_fields);
    let ev = mvccpb::Event { r#type: 1, kv: Some(kv.clone()), prev_kv: Some(kv.clone()) };
    let kv_bytes = kv.encode_to_vec();
    assert_eq!(fields(&ev.encode_to_vec()), vec![F::V(1, 1), l(2, &kv_bytes), l(3, &kv_bytes)]);
    let r = pb::RangeResponse { header: Some(h), kvs: vec![kv], more: true, count: 5 };
    assert_eq!(fields(&r.encode_to_vec()), vec![l(1, &h.encode_to_vec()), l(2, &kv_bytes), F::V(3, 1), F::V(4, 5)]);
}

#[test]
fn watch_and_lease_tags() {
    let create = pb::WatchCreateRequest {
        key: "k".into(),
        range_end: "l".into(),
        start_revision: 3,
        progress_notify: true,
        filters: vec![0, 1],
        prev_kv: true,
        watch_id: 7,
        fragment: true,
    };
    let expect =
        vec![l(1, b"k"), l(2, b"l"), F::V(3, 3), F::V(4, 1), l(5, &[0, 1]), F::V(6, 1), F::V(7, 7), F::V(8, 1)];
    assert_eq!(fields(&create.encode_to_vec()), expect, "filters are packed");
    let req = |u| pb::WatchRequest { request_union: Some(u) }.encode_to_vec();
    assert_eq!(
        fields(&req(watch_request::RequestUnion::CancelRequest(pb::WatchCancelRequest { watch_id: 7 }))),
        vec![l(2, &[8, 7])]
    );
    assert_eq!(req(watch_request::RequestUnion::ProgressRequest(pb::WatchProgressRequest {})), vec![0x1a, 0]);
    let resp = pb::WatchResponse {
        header: None,
        watch_id: 2,
        created: true,
        canceled: true,
        compact_revision: 5,
        cancel_reason: "r".into(),
        fragment: true,
        events: vec![mvccpb::Event::default()],
    };
    let expect = vec![F::V(2, 2), F::V(3, 1), F::V(4, 1), F::V(5, 5), l(6, b"r"), F::V(7, 1), l(11, &[])];
    assert_eq!(fields(&resp.encode_to_vec()), expect);

    assert_eq!(fields(&pb::LeaseGrantRequest { ttl: 5, id: 6 }.encode_to_vec()), vec![F::V(1, 5), F::V(2, 6)]);
    let grant = pb::LeaseGrantResponse { header: None, id: 6, ttl: 5, error: "e".into() };
    assert_eq!(fields(&grant.encode_to_vec()), vec![F::V(2, 6), F::V(3, 5), l(4, b"e")]);
    let ttl = pb::LeaseTimeToLiveResponse { header: None, id: 1, ttl: 2, granted_ttl: 3, keys: vec!["k".into()] };
    assert_eq!(fields(&ttl.encode_to_vec()), vec![F::V(2, 1), F::V(3, 2), F::V(4, 3), l(5, b"k")]);
}

/// Every gRPC method of etcd 3.4's services, as clientv3 calls them.
#[cfg(not(madsim))]
#[test]
fn grpc_paths() {
    let generated = [
        include_str!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/v3lockpb.rs")),
        include_str!(concat!(env!("OUT_DIR"), "/v3electionpb.rs")),
    ]
    .concat();
    let services: [(&str, &[&str]); 8] = [
        ("etcdserverpb.KV", &["Range", "Put", "DeleteRange", "Txn", "Compact"]),
        ("etcdserverpb.Watch", &["Watch"]),
        ("etcdserverpb.Lease", &["LeaseGrant", "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases"]),
        ("etcdserverpb.Cluster", &["MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"]),
        ("etcdserverpb.Maintenance", &["Alarm", "Status", "Defragment", "Hash", "HashKV", "Snapshot", "MoveLeader"]),
        (
            "etcdserverpb.Auth",
            &[
                "AuthEnable",
                "AuthDisable",
                "Authenticate",
                "UserAdd",
                "UserGet",
                "UserList",
                "UserDelete",
                "UserChangePassword",
                "UserGrantRole",
                "UserRevokeRole",
                "RoleAdd",
                "RoleGet",
                "RoleList",
                "RoleDelete",
                "RoleGrantPermission",
                "RoleRevokePermission",
            ],
        ),
        ("v3lockpb.Lock", &["Lock", "Unlock"]),
        ("v3electionpb.Election", &["Campaign", "Proclaim", "Leader", "Observe", "Resign"]),
    ];
    let mut etcdserverpb_methods = 0;
    for (service, methods) in services {
        if service.starts_with("etcdserverpb.") {
            etcdserverpb_methods += methods.len();
        }
        assert!(generated.contains(&format!("SERVICE_NAME: &str = \"{service}\"")), "{service}");
        for m in methods {
            assert!(generated.contains(&format!("\"/{service}/{m}\"")), "/{service}/{m}");
        }
    }
    let count = generated.matches("\"/etcdserverpb.").count();
    assert_eq!(count, 2 * etcdserverpb_methods, "no other method: each once in the client, once in the server");
}
