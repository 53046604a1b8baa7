//! Conversions between the generated etcd messages and `detcd-core`'s
//! request, response, key-value and event types, and etcd's gRPC statuses
//! for core's errors.
//!
//! Both directions are here: a server turns requests into core's types
//! (`TryFrom`/`From` on the core type) and core's responses into messages
//! (the `*_response` functions, which take the [`Header`] fields the core
//! does not know); a client does the opposite (`From` on the message type,
//! and `From`/`TryFrom` on the core response type).
//!
//! Decisions, following etcd 3.4 where it has an answer:
//!
//! - An unknown `sort_order` or `sort_target` value is
//!   [`Error::InvalidSortOption`] (etcd's `checkRangeRequest`); a range
//!   with an empty key is [`Error::EmptyKey`] first, in etcd's order.
//! - A `RequestOp` with no request set is [`Error::KeyNotFound`] (etcd's
//!   `checkRequestOp`: "empty op / nil entry").
//! - A `Compare` whose `target_union` is missing or holds another field
//!   than `target` names compares against 0 or the empty value, as etcd's
//!   getters do. An unknown `result` or `target` value, which etcd does
//!   not check (its compare then ignores the key), is refused with
//!   [`ConvertError::UnknownEnum`] (InvalidArgument).
//! - Unknown watch filter values are ignored, as etcd does.
//! - Error precedence: the conversion runs before core's validation, so a
//!   txn that is malformed in two ways (too many ops *and* an unknown sort
//!   option) may get a different one of its errors than from etcd, which
//!   checks the op count first.
//! - A nested txn's responses carry a header with the revision only.

use crate::etcd::etcdserverpb as pb;
use detcd_core::Error;
use std::fmt;

mod kv;
mod status;
mod txn;
mod watch_lease;

#[cfg(test)]
mod tests_kv;
#[cfg(test)]
mod tests_lease;
#[cfg(test)]
mod tests_txn;
#[cfg(test)]
mod tests_wire;

pub use kv::{compaction_response, delete_range_response, put_response, range_response};
pub use status::{error_from_status, status};
pub use txn::{response_op, txn_response};
pub use watch_lease::{
    hash_kv_response, lease_grant_response, lease_keep_alive_response, lease_leases_response, lease_revoke_response,
    lease_time_to_live_response, watch_response,
};

/// A message that does not convert to core's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// What etcd answers to the same message (unknown sort option, empty
    /// txn op, empty range key).
    Core(Error),
    /// An enum field holding a value etcd 3.4 does not define, where etcd
    /// has no error of its own.
    UnknownEnum { field: &'static str, value: i32 },
    /// A field every well-formed message has (a response from a server).
    Missing(&'static str),
}

impl From<Error> for ConvertError {
    fn from(e: Error) -> Self {
        ConvertError::Core(e)
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Core(e) => e.fmt(f),
            ConvertError::UnknownEnum { field, value } => write!(f, "detcd: unknown {field} value {value}"),
            ConvertError::Missing(field) => write!(f, "detcd: {field} is missing"),
        }
    }
}

impl std::error::Error for ConvertError {}

impl From<ConvertError> for tonic::Status {
    fn from(e: ConvertError) -> Self {
        match &e {
            ConvertError::Core(core) => status(core),
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

/// The parts of a response header that the core does not know: who
/// answers, and the Raft term. The revision comes with each response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub cluster_id: u64,
    pub member_id: u64,
    pub raft_term: u64,
}

impl Header {
    pub fn new(cluster_id: u64, member_id: u64, raft_term: u64) -> Header {
        Header { cluster_id, member_id, raft_term }
    }

    /// The header of a response at `revision`. `Header::default().at(rev)`
    /// is the header of a response nested in a txn: the revision alone.
    pub fn at(&self, revision: i64) -> pb::ResponseHeader {
        pb::ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term: self.raft_term,
        }
    }
}

/// The revision of a received header (0 without one).
pub(crate) fn revision_of(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |h| h.revision)
}
