//! Checks a request before it is proposed, with etcd's errors (its
//! `checkPutRequest`, `checkTxnRequest` and `checkIntervals`). A request that
//! passes can still fail on the state when applied (unknown lease, compacted
//! revision): those checks live in `apply`.

use crate::error::{Error, Result};
use crate::request::{Command, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use bytes::Bytes;
use std::collections::BTreeSet;

/// Request limits (etcd's `--max-txn-ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_txn_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_txn_ops: 128 }
    }
}

pub fn validate_command(cmd: &Command, limits: &Limits) -> Result<()> {
    match cmd {
        Command::Put(req) => validate_put(req),
        Command::DeleteRange(req) => validate_delete(req),
        Command::Txn(req) => validate_txn(req, limits),
        Command::Compaction(_) | Command::LeaseGrant(_) | Command::LeaseRevoke(_) | Command::LeaseCheckpoint(_) => {
            Ok(())
        }
    }
}

pub fn validate_range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

pub fn validate_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

pub fn validate_delete(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

pub fn validate_txn(req: &TxnRequest, limits: &Limits) -> Result<()> {
    let max = limits.max_txn_ops;
    if req.compare.len() > max || req.success.len() > max || req.failure.len() > max {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) => validate_range(r)?,
            RequestOp::Put(r) => validate_put(r)?,
            RequestOp::DeleteRange(r) => validate_delete(r)?,
            RequestOp::Txn(t) => validate_txn(t, limits)?,
        }
    }
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

/// A deleted interval as etcd's checker sees it: a point, or the literal
/// byte interval `[key, range_end)`.
struct Interval {
    key: Bytes,
    end: Option<Bytes>,
}

impl Interval {
    fn contains(&self, k: &[u8]) -> bool {
        match &self.end {
            None => self.key.as_ref() == k,
            Some(end) => k >= self.key.as_ref() && k < end.as_ref(),
        }
    }
}

/// No key may be put twice on one execution path of a txn, nor put where
/// the same path deletes. Returns the keys put and the intervals deleted.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Bytes>, Vec<Interval>)> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => {
                Some(Interval { key: d.key.clone(), end: (!d.range_end.is_empty()).then(|| d.range_end.clone()) })
            }
            _ => None,
        })
        .collect();
    let deleted = |dels: &[Interval], k: &[u8]| dels.iter().any(|iv| iv.contains(k));
    let mut puts: BTreeSet<Bytes> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(Error::DuplicateKey);
            }
        }
        puts.extend(puts_then.iter().cloned());
        for k in puts_else {
            // The two branches exclude each other, so a key in both is fine.
            if (puts.contains(&k) && !puts_then.contains(&k)) || deleted(&dels, &k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Compare, CompareResult, CompareTarget};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }
    fn put(k: &str) -> RequestOp {
        RequestOp::Put(PutRequest { key: b(k), value: b("v"), ..Default::default() })
    }
    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest { key: b(k), range_end: b(end), prev_kv: false })
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest { compare: vec![], success, failure }
    }

    #[test]
    fn put_checks() {
        assert_eq!(validate_put(&PutRequest::default()), Err(Error::EmptyKey));
        let p = PutRequest { key: b("k"), value: b("v"), ignore_value: true, ..Default::default() };
        assert_eq!(validate_put(&p), Err(Error::ValueProvided));
        let p = PutRequest { key: b("k"), lease: 5, ignore_lease: true, ..Default::default() };
        assert_eq!(validate_put(&p), Err(Error::LeaseProvided));
    }

    #[test]
    fn txn_limits_and_duplicates() {
        let l = Limits { max_txn_ops: 2 };
        assert_eq!(validate_txn(&txn(vec![put("a"), put("b"), put("c")], vec![]), &l), Err(Error::TooManyOps));
        let l = Limits::default();
        assert_eq!(validate_txn(&txn(vec![put("a"), put("a")], vec![]), &l), Err(Error::DuplicateKey));
        assert_eq!(validate_txn(&txn(vec![del("a", "c"), put("b")], vec![]), &l), Err(Error::DuplicateKey));
        assert_eq!(validate_txn(&txn(vec![del("a", ""), put("b")], vec![]), &l), Ok(()));
        // Same key in the two branches of a nested txn is fine ...
        let nested = RequestOp::Txn(txn(vec![put("x")], vec![put("x")]));
        assert_eq!(validate_txn(&txn(vec![nested.clone()], vec![]), &l), Ok(()));
        // ... but not beside a put of it on the outer level.
        assert_eq!(validate_txn(&txn(vec![nested, put("x")], vec![]), &l), Err(Error::DuplicateKey));
        // Success and failure are separate paths.
        assert_eq!(validate_txn(&txn(vec![put("a")], vec![put("a")]), &l), Ok(()));
        let empty_cmp = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Version(0),
                key: b(""),
                range_end: b(""),
            }],
            ..Default::default()
        };
        assert_eq!(validate_txn(&empty_cmp, &l), Err(Error::EmptyKey));
    }
}
