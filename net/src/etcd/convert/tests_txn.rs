//! Round trips of compares, txn ops and Txn, and conversion errors.

use super::tests_kv::{kv, put_req, range_req, H};
use super::*;
use crate::etcd::etcdserverpb::{compare, request_op, response_op};
use bytes::Bytes;
use detcd_core::request::*;

fn targets() -> Vec<CompareTarget> {
    vec![
        CompareTarget::Version(3),
        CompareTarget::Create(4),
        CompareTarget::Mod(5),
        CompareTarget::Value(Bytes::from_static(b"v")),
        CompareTarget::Lease(6),
    ]
}

fn cmp(result: CompareResult, target: CompareTarget) -> Compare {
    Compare { result, target, key: "k".into(), range_end: "l".into() }
}

fn nested_txn() -> TxnRequest {
    let inner = TxnRequest {
        compare: vec![cmp(CompareResult::NotEqual, CompareTarget::Lease(0))],
        success: vec![RequestOp::DeleteRange(DeleteRangeRequest { key: "d".into(), ..Default::default() })],
        failure: vec![],
    };
    TxnRequest {
        compare: targets().into_iter().map(|t| cmp(CompareResult::Greater, t)).collect(),
        success: vec![RequestOp::Range(range_req()), RequestOp::Put(put_req()), RequestOp::Txn(inner)],
        failure: vec![RequestOp::Put(put_req())],
    }
}

#[test]
fn compare_round_trip_every_result_and_target() {
    let results = [CompareResult::Equal, CompareResult::Greater, CompareResult::Less, CompareResult::NotEqual];
    for (i, result) in results.into_iter().enumerate() {
        for (j, target) in targets().into_iter().enumerate() {
            let core = cmp(result, target);
            let pb = pb::Compare::from(core.clone());
            assert_eq!((pb.result, pb.target, pb.range_end.as_ref()), (i as i32, j as i32, &b"l"[..]));
            assert_eq!(Compare::try_from(pb).unwrap(), core);
        }
    }
}

#[test]
fn compare_union_missing_or_mismatched_is_zero_or_empty() {
    use compare::{CompareTarget as T, TargetUnion as U};
    let expect = [
        (T::Version, CompareTarget::Version(0)),
        (T::Create, CompareTarget::Create(0)),
        (T::Mod, CompareTarget::Mod(0)),
        (T::Value, CompareTarget::Value(Bytes::new())),
        (T::Lease, CompareTarget::Lease(0)),
    ];
    for (t, zero) in expect {
        let unset = pb::Compare { target: t as i32, key: "k".into(), ..Default::default() };
        assert_eq!(Compare::try_from(unset).unwrap().target, zero);
        // A union field of another kind than the target: etcd's getter
        // for the target's field gives 0 / empty.
        let other = if t == T::Value { U::Lease(5) } else { U::Value("x".into()) };
        let mismatched =
            pb::Compare { target: t as i32, key: "k".into(), target_union: Some(other), ..Default::default() };
        assert_eq!(Compare::try_from(mismatched).unwrap().target, zero);
    }
}

#[test]
fn compare_unknown_enums_are_refused() {
    let bad_result = pb::Compare { key: "k".into(), result: 4, ..Default::default() };
    assert_eq!(Compare::try_from(bad_result), Err(ConvertError::UnknownEnum { field: "Compare.result", value: 4 }));
    let bad_target = pb::Compare { key: "k".into(), target: 5, ..Default::default() };
    let err = Compare::try_from(bad_target).unwrap_err();
    assert_eq!(err, ConvertError::UnknownEnum { field: "Compare.target", value: 5 });
    let status = tonic::Status::from(err);
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::InvalidArgument, "detcd: unknown Compare.target value 5")
    );
}

#[test]
fn txn_request_round_trip_nested() {
    let core = nested_txn();
    let pb = pb::TxnRequest::from(core.clone());
    assert!(matches!(pb.success[2].request, Some(request_op::Request::RequestTxn(_))));
    assert_eq!(TxnRequest::try_from(pb.clone()).unwrap(), core);
    assert_eq!(pb::TxnRequest::from(TxnRequest::try_from(pb.clone()).unwrap()), pb);
}

#[test]
fn txn_request_refusals() {
    let mut pb = pb::TxnRequest::from(nested_txn());
    pb.failure.push(pb::RequestOp { request: None });
    let err = TxnRequest::try_from(pb).unwrap_err();
    assert_eq!(err, ConvertError::Core(detcd_core::Error::KeyNotFound), "empty op");
    let s = tonic::Status::from(err);
    assert_eq!((s.code(), s.message()), (tonic::Code::InvalidArgument, "etcdserver: key not found"));

    let bad_sort = pb::RangeRequest { key: "k".into(), sort_target: 77, ..Default::default() };
    let nested = pb::TxnRequest {
        success: vec![pb::RequestOp { request: Some(request_op::Request::RequestRange(bad_sort)) }],
        ..Default::default()
    };
    let outer = pb::TxnRequest {
        failure: vec![pb::RequestOp { request: Some(request_op::Request::RequestTxn(nested)) }],
        ..Default::default()
    };
    assert_eq!(TxnRequest::try_from(outer), Err(ConvertError::Core(detcd_core::Error::InvalidSortOption)));
}

#[test]
fn txn_response_headers_and_round_trip() {
    let inner = TxnResponse {
        revision: 9,
        succeeded: false,
        responses: vec![ResponseOp::Put(PutResponse { revision: 9, prev_kv: None })],
    };
    let core = TxnResponse {
        revision: 9,
        succeeded: true,
        responses: vec![
            ResponseOp::Range(RangeResponse { revision: 9, kvs: vec![kv("a", "1", 3)], more: false, count: 1 }),
            ResponseOp::Put(PutResponse { revision: 9, prev_kv: Some(kv("k", "0", 4)) }),
            ResponseOp::DeleteRange(DeleteRangeResponse { revision: 9, deleted: 1, prev_kvs: vec![] }),
            ResponseOp::Txn(inner),
        ],
    };
    let pb = txn_response(&H, core.clone());
    assert_eq!(pb.header, Some(H.at(9)), "the top header is full");
    let rev_only = Some(pb::ResponseHeader { revision: 9, ..Default::default() });
    let headers: Vec<_> = pb
        .responses
        .iter()
        .map(|op| match op.response.as_ref().unwrap() {
            response_op::Response::ResponseRange(r) => r.header,
            response_op::Response::ResponsePut(r) => r.header,
            response_op::Response::ResponseDeleteRange(r) => r.header,
            response_op::Response::ResponseTxn(r) => {
                let Some(response_op::Response::ResponsePut(p)) = &r.responses[0].response else { panic!() };
                assert_eq!(p.header, rev_only, "nested twice: revision only");
                r.header
            }
        })
        .collect();
    assert_eq!(headers, vec![rev_only; 4], "nested responses: revision only");
    assert_eq!(TxnResponse::try_from(pb).unwrap(), core);

    let missing = pb::TxnResponse { responses: vec![pb::ResponseOp { response: None }], ..Default::default() };
    assert_eq!(TxnResponse::try_from(missing), Err(ConvertError::Missing("ResponseOp.response")));
}
