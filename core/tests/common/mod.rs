//! A tiny driver around `State` for the tests: applies commands at
//! increasing log indexes and builds requests from strings.
#![allow(dead_code)]

use bytes::Bytes;
use detcd_core::request::*;
use detcd_core::{Applied, Error, KeyValue, Millis, State, StateConfig};

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub struct Node {
    pub state: State,
    pub index: u64,
    pub now: Millis,
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    pub fn new() -> Node {
        Node { state: State::new(StateConfig::default()), index: 0, now: Millis(0) }
    }

    pub fn apply(&mut self, cmd: Command) -> Applied {
        self.index += 1;
        self.state.apply(self.index, &cmd, self.now)
    }

    pub fn put(&mut self, k: &str, v: &str) -> PutResponse {
        self.put_req(PutRequest { key: b(k), value: b(v), prev_kv: true, ..Default::default() }).unwrap()
    }

    pub fn put_req(&mut self, req: PutRequest) -> Result<PutResponse, Error> {
        match self.apply(Command::Put(req)).result? {
            Response::Put(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn delete(&mut self, k: &str, end: &str) -> DeleteRangeResponse {
        let req = DeleteRangeRequest { key: b(k), range_end: b(end), prev_kv: true };
        match self.apply(Command::DeleteRange(req)).result.unwrap() {
            Response::DeleteRange(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn txn(&mut self, req: TxnRequest) -> Result<TxnResponse, Error> {
        match self.apply(Command::Txn(req)).result? {
            Response::Txn(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn grant(&mut self, id: i64, ttl: i64) -> Result<LeaseGrantResponse, Error> {
        match self.apply(Command::LeaseGrant(LeaseGrantRequest { ttl, id })).result? {
            Response::LeaseGrant(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn revoke(&mut self, id: i64) -> Result<LeaseRevokeResponse, Error> {
        match self.apply(Command::LeaseRevoke(LeaseRevokeRequest { id })).result? {
            Response::LeaseRevoke(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn compact(&mut self, revision: i64) -> Result<(), Error> {
        self.apply(Command::Compaction(CompactionRequest { revision, physical: true })).result.map(|_| ())
    }

    pub fn get(&self, k: &str) -> Option<KeyValue> {
        let req = RangeRequest { key: b(k), ..Default::default() };
        self.state.range(&req).unwrap().kvs.into_iter().next()
    }

    pub fn range(&self, req: RangeRequest) -> Result<RangeResponse, Error> {
        self.state.range(&req)
    }
}

pub fn keys(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}

pub fn compare(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare { result, target, key: b(key), range_end: Bytes::new() }
}

pub fn put_op(k: &str, v: &str) -> RequestOp {
    RequestOp::Put(PutRequest { key: b(k), value: b(v), ..Default::default() })
}

pub fn get_op(k: &str) -> RequestOp {
    RequestOp::Range(RangeRequest { key: b(k), ..Default::default() })
}
