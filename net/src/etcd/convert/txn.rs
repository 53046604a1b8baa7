//! Compares, txn ops and the Txn call.

use super::{kv, revision_of, ConvertError, Header};
use crate::etcd::etcdserverpb::{self as pb, compare, request_op, response_op};
use bytes::Bytes;
use detcd_core::request::{Compare, CompareResult, CompareTarget, RequestOp, ResponseOp, TxnRequest, TxnResponse};
use detcd_core::Error;

/// etcd's compare: `target` says what is compared; the operand is the
/// `target_union` field of that kind, or 0 / empty when the union is unset
/// or holds another field (etcd's getters).
impl TryFrom<pb::Compare> for Compare {
    type Error = ConvertError;

    fn try_from(c: pb::Compare) -> Result<Self, ConvertError> {
        use compare::TargetUnion as U;
        let result = match compare::CompareResult::try_from(c.result) {
            Ok(compare::CompareResult::Equal) => CompareResult::Equal,
            Ok(compare::CompareResult::Greater) => CompareResult::Greater,
            Ok(compare::CompareResult::Less) => CompareResult::Less,
            Ok(compare::CompareResult::NotEqual) => CompareResult::NotEqual,
            Err(_) => return Err(ConvertError::UnknownEnum { field: "Compare.result", value: c.result }),
        };
        let union = c.target_union;
        let target = match compare::CompareTarget::try_from(c.target) {
            Ok(compare::CompareTarget::Version) => {
                CompareTarget::Version(if let Some(U::Version(v)) = union { v } else { 0 })
            }
            Ok(compare::CompareTarget::Create) => {
                CompareTarget::Create(if let Some(U::CreateRevision(v)) = union { v } else { 0 })
            }
            Ok(compare::CompareTarget::Mod) => {
                CompareTarget::Mod(if let Some(U::ModRevision(v)) = union { v } else { 0 })
            }
            Ok(compare::CompareTarget::Value) => {
                CompareTarget::Value(if let Some(U::Value(v)) = union { v } else { Bytes::new() })
            }
            Ok(compare::CompareTarget::Lease) => {
                CompareTarget::Lease(if let Some(U::Lease(v)) = union { v } else { 0 })
            }
            Err(_) => return Err(ConvertError::UnknownEnum { field: "Compare.target", value: c.target }),
        };
        Ok(Compare { result, target, key: c.key, range_end: c.range_end })
    }
}

impl From<Compare> for pb::Compare {
    fn from(c: Compare) -> Self {
        use compare::{CompareTarget as T, TargetUnion as U};
        let result = match c.result {
            CompareResult::Equal => compare::CompareResult::Equal,
            CompareResult::Greater => compare::CompareResult::Greater,
            CompareResult::Less => compare::CompareResult::Less,
            CompareResult::NotEqual => compare::CompareResult::NotEqual,
        };
        let (target, union) = match c.target {
            CompareTarget::Version(v) => (T::Version, U::Version(v)),
            CompareTarget::Create(v) => (T::Create, U::CreateRevision(v)),
            CompareTarget::Mod(v) => (T::Mod, U::ModRevision(v)),
            CompareTarget::Value(v) => (T::Value, U::Value(v)),
            CompareTarget::Lease(v) => (T::Lease, U::Lease(v)),
        };
        pb::Compare {
            result: result as i32,
            target: target as i32,
            key: c.key,
            target_union: Some(union),
            range_end: c.range_end,
        }
    }
}

/// An op with no request set is `KeyNotFound`, etcd's answer to an empty op.
impl TryFrom<pb::RequestOp> for RequestOp {
    type Error = ConvertError;

    fn try_from(op: pb::RequestOp) -> Result<Self, ConvertError> {
        Ok(match op.request {
            Some(request_op::Request::RequestRange(r)) => RequestOp::Range(r.try_into()?),
            Some(request_op::Request::RequestPut(r)) => RequestOp::Put(r.into()),
            Some(request_op::Request::RequestDeleteRange(r)) => RequestOp::DeleteRange(r.into()),
            Some(request_op::Request::RequestTxn(r)) => RequestOp::Txn(r.try_into()?),
            None => return Err(Error::KeyNotFound.into()),
        })
    }
}

impl From<RequestOp> for pb::RequestOp {
    fn from(op: RequestOp) -> Self {
        let request = match op {
            RequestOp::Range(r) => request_op::Request::RequestRange(r.into()),
            RequestOp::Put(r) => request_op::Request::RequestPut(r.into()),
            RequestOp::DeleteRange(r) => request_op::Request::RequestDeleteRange(r.into()),
            RequestOp::Txn(r) => request_op::Request::RequestTxn(r.into()),
        };
        pb::RequestOp { request: Some(request) }
    }
}

fn ops_from_pb(ops: Vec<pb::RequestOp>) -> Result<Vec<RequestOp>, ConvertError> {
    ops.into_iter().map(TryInto::try_into).collect()
}

/// Compares first, then the success ops, then the failure ops, in order;
/// the first that does not convert gives the error.
impl TryFrom<pb::TxnRequest> for TxnRequest {
    type Error = ConvertError;

    fn try_from(r: pb::TxnRequest) -> Result<Self, ConvertError> {
        Ok(TxnRequest {
            compare: r.compare.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
            success: ops_from_pb(r.success)?,
            failure: ops_from_pb(r.failure)?,
        })
    }
}

impl From<TxnRequest> for pb::TxnRequest {
    fn from(r: TxnRequest) -> Self {
        pb::TxnRequest {
            compare: r.compare.into_iter().map(Into::into).collect(),
            success: r.success.into_iter().map(Into::into).collect(),
            failure: r.failure.into_iter().map(Into::into).collect(),
        }
    }
}

/// A txn's response, with the full header at the top.
pub fn txn_response(h: &Header, r: TxnResponse) -> pb::TxnResponse {
    pb::TxnResponse {
        header: Some(h.at(r.revision)),
        succeeded: r.succeeded,
        responses: r.responses.into_iter().map(response_op).collect(),
    }
}

/// A response inside a txn: its header (and those of the responses nested
/// in it) carries only the revision, as etcd's.
pub fn response_op(op: ResponseOp) -> pb::ResponseOp {
    let nested = Header::default();
    let response = match op {
        ResponseOp::Range(r) => response_op::Response::ResponseRange(kv::range_response(&nested, r)),
        ResponseOp::Put(r) => response_op::Response::ResponsePut(kv::put_response(&nested, r)),
        ResponseOp::DeleteRange(r) => response_op::Response::ResponseDeleteRange(kv::delete_range_response(&nested, r)),
        ResponseOp::Txn(r) => response_op::Response::ResponseTxn(txn_response(&nested, r)),
    };
    pb::ResponseOp { response: Some(response) }
}

impl TryFrom<pb::ResponseOp> for ResponseOp {
    type Error = ConvertError;

    fn try_from(op: pb::ResponseOp) -> Result<Self, ConvertError> {
        Ok(match op.response.ok_or(ConvertError::Missing("ResponseOp.response"))? {
            response_op::Response::ResponseRange(r) => ResponseOp::Range(r.into()),
            response_op::Response::ResponsePut(r) => ResponseOp::Put(r.into()),
            response_op::Response::ResponseDeleteRange(r) => ResponseOp::DeleteRange(r.into()),
            response_op::Response::ResponseTxn(r) => ResponseOp::Txn(r.try_into()?),
        })
    }
}

impl TryFrom<pb::TxnResponse> for TxnResponse {
    type Error = ConvertError;

    fn try_from(r: pb::TxnResponse) -> Result<Self, ConvertError> {
        Ok(TxnResponse {
            revision: revision_of(&r.header),
            succeeded: r.succeeded,
            responses: r.responses.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
        })
    }
}
