//! core's errors as etcd's gRPC statuses, and back.

use detcd_core::{Code, Error};

/// Every core error, for matching a received status (the `match` in
/// `is_listed` fails to compile when core gains a variant).
const ALL: [Error; 15] = [
    Error::EmptyKey,
    Error::KeyNotFound,
    Error::ValueProvided,
    Error::LeaseProvided,
    Error::TooManyOps,
    Error::DuplicateKey,
    Error::InvalidSortOption,
    Error::Compacted,
    Error::FutureRev,
    Error::NoSpace,
    Error::LeaseNotFound,
    Error::LeaseExist,
    Error::LeaseTtlTooLarge,
    Error::RequestTooLarge,
    Error::NotPrimary,
];

/// Exhaustive over `Error`: a new variant must be added here and to `ALL`.
#[allow(dead_code)]
fn is_listed(e: &Error) -> bool {
    match e {
        Error::EmptyKey
        | Error::KeyNotFound
        | Error::ValueProvided
        | Error::LeaseProvided
        | Error::TooManyOps
        | Error::DuplicateKey
        | Error::InvalidSortOption
        | Error::Compacted
        | Error::FutureRev
        | Error::NoSpace
        | Error::LeaseNotFound
        | Error::LeaseExist
        | Error::LeaseTtlTooLarge
        | Error::RequestTooLarge
        | Error::NotPrimary => ALL.contains(e),
    }
}

fn code(c: Code) -> tonic::Code {
    match c {
        Code::InvalidArgument => tonic::Code::InvalidArgument,
        Code::NotFound => tonic::Code::NotFound,
        Code::FailedPrecondition => tonic::Code::FailedPrecondition,
        Code::OutOfRange => tonic::Code::OutOfRange,
        Code::ResourceExhausted => tonic::Code::ResourceExhausted,
        Code::Unavailable => tonic::Code::Unavailable,
    }
}

/// The status etcd 3.4 answers with for this error: its gRPC code and its
/// message verbatim (clients match on both).
pub fn status(err: &Error) -> tonic::Status {
    tonic::Status::new(code(err.code()), err.message())
}

/// The core error a received status stands for (same code and message),
/// if any: the client side of [`status`].
pub fn error_from_status(s: &tonic::Status) -> Option<Error> {
    ALL.iter().find(|e| code(e.code()) == s.code() && e.message() == s.message()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_etcds_code_and_text_and_back() {
        let expect = [
            (Error::EmptyKey, tonic::Code::InvalidArgument, "etcdserver: key is not provided"),
            (Error::KeyNotFound, tonic::Code::InvalidArgument, "etcdserver: key not found"),
            (Error::ValueProvided, tonic::Code::InvalidArgument, "etcdserver: value is provided"),
            (Error::LeaseProvided, tonic::Code::InvalidArgument, "etcdserver: lease is provided"),
            (Error::TooManyOps, tonic::Code::InvalidArgument, "etcdserver: too many operations in txn request"),
            (Error::DuplicateKey, tonic::Code::InvalidArgument, "etcdserver: duplicate key given in txn request"),
            (Error::InvalidSortOption, tonic::Code::InvalidArgument, "etcdserver: invalid sort option"),
            (Error::Compacted, tonic::Code::OutOfRange, "etcdserver: mvcc: required revision has been compacted"),
            (Error::FutureRev, tonic::Code::OutOfRange, "etcdserver: mvcc: required revision is a future revision"),
            (Error::NoSpace, tonic::Code::ResourceExhausted, "etcdserver: mvcc: database space exceeded"),
            (Error::LeaseNotFound, tonic::Code::NotFound, "etcdserver: requested lease not found"),
            (Error::LeaseExist, tonic::Code::FailedPrecondition, "etcdserver: lease already exists"),
            (Error::LeaseTtlTooLarge, tonic::Code::OutOfRange, "etcdserver: too large lease TTL"),
            (Error::RequestTooLarge, tonic::Code::InvalidArgument, "etcdserver: request is too large"),
            (Error::NotPrimary, tonic::Code::Unavailable, "not a primary lessor"),
        ];
        assert_eq!(expect.len(), ALL.len());
        for (err, c, msg) in expect {
            assert!(is_listed(&err));
            let s = status(&err);
            assert_eq!((s.code(), s.message()), (c, msg), "{err:?}");
            assert_eq!(error_from_status(&s), Some(err));
        }
    }

    #[test]
    fn unknown_statuses_are_not_core_errors() {
        assert_eq!(error_from_status(&tonic::Status::unavailable("etcdserver: leader changed")), None);
        // Same text under another code is not the same error.
        assert_eq!(error_from_status(&tonic::Status::internal("etcdserver: key not found")), None);
    }
}
