//! Errors of the v3 API, with etcd 3.4's messages and status codes.
//!
//! The texts are part of the wire contract: etcdctl and the client libraries
//! print them verbatim, and some clients match on them.

use std::fmt;

/// The gRPC status code an error maps to (a subset of `tonic::Code`, kept here
/// so that `core` does not depend on a networking crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    OutOfRange,
    ResourceExhausted,
    Unavailable,
}

/// An error returned by the store, the lessor or request validation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Error {
    EmptyKey,
    KeyNotFound,
    ValueProvided,
    LeaseProvided,
    TooManyOps,
    DuplicateKey,
    InvalidSortOption,
    Compacted,
    FutureRev,
    NoSpace,
    LeaseNotFound,
    LeaseExist,
    LeaseTtlTooLarge,
    RequestTooLarge,
    /// A lease operation that only the leader's (primary) lessor may perform.
    NotPrimary,
}

impl Error {
    /// The message etcd 3.4 sends for this error.
    pub fn message(&self) -> &'static str {
        match self {
            Error::EmptyKey => "etcdserver: key is not provided",
            Error::KeyNotFound => "etcdserver: key not found",
            Error::ValueProvided => "etcdserver: value is provided",
            Error::LeaseProvided => "etcdserver: lease is provided",
            Error::TooManyOps => "etcdserver: too many operations in txn request",
            Error::DuplicateKey => "etcdserver: duplicate key given in txn request",
            Error::InvalidSortOption => "etcdserver: invalid sort option",
            Error::Compacted => "etcdserver: mvcc: required revision has been compacted",
            Error::FutureRev => "etcdserver: mvcc: required revision is a future revision",
            Error::NoSpace => "etcdserver: mvcc: database space exceeded",
            Error::LeaseNotFound => "etcdserver: requested lease not found",
            Error::LeaseExist => "etcdserver: lease already exists",
            Error::LeaseTtlTooLarge => "etcdserver: too large lease TTL",
            Error::RequestTooLarge => "etcdserver: request is too large",
            Error::NotPrimary => "not a primary lessor",
        }
    }

    /// The gRPC status code etcd 3.4 sends for this error.
    pub fn code(&self) -> Code {
        match self {
            Error::EmptyKey
            | Error::KeyNotFound
            | Error::ValueProvided
            | Error::LeaseProvided
            | Error::TooManyOps
            | Error::DuplicateKey
            | Error::InvalidSortOption
            | Error::RequestTooLarge => Code::InvalidArgument,
            Error::Compacted | Error::FutureRev | Error::LeaseTtlTooLarge => Code::OutOfRange,
            Error::NoSpace => Code::ResourceExhausted,
            Error::LeaseNotFound => Code::NotFound,
            Error::LeaseExist => Code::FailedPrecondition,
            Error::NotPrimary => Code::Unavailable,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_match_etcd() {
        assert_eq!(Error::EmptyKey.to_string(), "etcdserver: key is not provided");
        assert_eq!(Error::Compacted.code(), Code::OutOfRange);
        assert_eq!(Error::LeaseNotFound.code(), Code::NotFound);
        assert_eq!(Error::DuplicateKey.message(), "etcdserver: duplicate key given in txn request");
        assert_eq!(Error::NoSpace.code(), Code::ResourceExhausted);
    }
}
