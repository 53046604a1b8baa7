//! The replicated state and the deterministic `apply`: every member applies
//! the same commands in log order, with the same results, and so stays
//! identical. `now` only moves the primary lessor's deadlines, which are not
//! replicated state.

use crate::error::{Error, Result};
use crate::kv::{Event, KeyRange, Millis};
use crate::lease::{Lessor, DEFAULT_MIN_LEASE_TTL};
use crate::mvcc::{self, Store, StoreWriter};
use crate::request::*;

/// Settings that must be equal on every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateConfig {
    pub min_lease_ttl: i64,
    /// Seeds generated lease IDs (derive it from the cluster ID).
    pub lease_id_seed: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { min_lease_ttl: DEFAULT_MIN_LEASE_TTL, lease_id_seed: 0x64_6574_6364 }
    }
}

/// What applying one command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The store revision after the command.
    pub revision: i64,
    pub result: Result<Response>,
    /// The changes, in revision order, for the watch hub.
    pub events: Vec<Event>,
}

/// etcd's HashKV answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKv {
    pub hash: u32,
    pub compact_revision: i64,
    /// The revision the hash covers up to.
    pub revision: i64,
}

#[derive(Debug, Clone)]
pub struct State {
    pub(crate) store: Store,
    pub(crate) lessor: Lessor,
    pub(crate) applied_index: u64,
}

impl State {
    pub fn new(config: StateConfig) -> State {
        State { store: Store::new(), lessor: Lessor::new(config.min_lease_ttl, config.lease_id_seed), applied_index: 0 }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn lessor(&self) -> &Lessor {
        &self.lessor
    }

    /// The lessor's leader-only side (promote, renew, expiry) is driven by
    /// the node, outside the log.
    pub fn lessor_mut(&mut self) -> &mut Lessor {
        &mut self.lessor
    }

    /// The log index of the last applied command.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn revision(&self) -> i64 {
        self.store.current_revision()
    }

    /// A read at the current revision (or the one the request names).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        mvcc::range(&self.store, req, self.store.current_revision())
    }

    pub fn hash_kv(&self, rev: i64) -> Result<HashKv> {
        let rev = self.store.read_revision(rev)?;
        Ok(HashKv { hash: self.store.hash_kv(rev), compact_revision: self.store.compact_revision(), revision: rev })
    }

    /// A hash of all replicated state: the key-value history and the leases.
    pub fn hash(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(&self.store.hash_kv(i64::MAX).to_le_bytes());
        h.update(&self.store.current_revision().to_le_bytes());
        h.update(&self.store.compact_revision().to_le_bytes());
        for l in self.lessor.leases() {
            for n in [l.id, l.ttl, l.remaining_ttl] {
                h.update(&n.to_le_bytes());
            }
        }
        h.finalize()
    }

    /// Applies the command at log position `index`. Each index is applied
    /// once, in order.
    pub fn apply(&mut self, index: u64, cmd: &Command, now: Millis) -> Applied {
        assert!(index > self.applied_index, "log index {index} applied after {}", self.applied_index);
        self.applied_index = index;
        let mut events = Vec::new();
        let result = match cmd {
            Command::Put(req) => {
                self.write(&mut events, |s| s.check_put(req), |w, l| Response::Put(exec_put(w, l, req)))
            }
            Command::DeleteRange(req) => self.write(
                &mut events,
                |_| if req.key.is_empty() { Err(Error::EmptyKey) } else { Ok(()) },
                |w, l| Response::DeleteRange(exec_delete(w, l, req)),
            ),
            Command::Txn(req) => {
                let path = self.txn_path(req);
                self.write(
                    &mut events,
                    |s| s.check_txn(req, &mut path.iter()),
                    |w, l| Response::Txn(exec_txn(w, l, req, &mut path.iter())),
                )
            }
            Command::Compaction(req) => self.compact(req.revision),
            Command::LeaseGrant(req) => self.lessor.grant(req.id, req.ttl, index, now).map(|(id, ttl)| {
                Response::LeaseGrant(LeaseGrantResponse { revision: self.store.current_revision(), id, ttl })
            }),
            Command::LeaseRevoke(req) => self.revoke(req.id, &mut events),
            Command::LeaseCheckpoint(cps) => {
                self.lessor.checkpoint(cps, now);
                Ok(Response::LeaseCheckpoint)
            }
        };
        Applied { revision: self.store.current_revision(), result, events }
    }

    /// Runs a write: `check` against the state before it (so a failing
    /// request changes nothing), then `exec` at the next revision.
    fn write(
        &mut self,
        events: &mut Vec<Event>,
        check: impl FnOnce(&State) -> Result<()>,
        exec: impl FnOnce(&mut StoreWriter<'_>, &mut Lessor) -> Response,
    ) -> Result<Response> {
        check(self)?;
        let mut w = self.store.writer();
        let mut resp = exec(&mut w, &mut self.lessor);
        let (revision, evs) = w.finish();
        *events = evs;
        set_revision(&mut resp, revision);
        Ok(resp)
    }

    fn check_put(&self, req: &PutRequest) -> Result<()> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if req.lease != 0 && !self.lessor.contains(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        if (req.ignore_value || req.ignore_lease) && self.store.get(&req.key).is_none() {
            return Err(Error::KeyNotFound);
        }
        Ok(())
    }

    /// Which branch each txn on the executed path takes, in execution order.
    /// Like etcd, every compare (nested ones too) sees the state before the
    /// txn.
    fn txn_path(&self, req: &TxnRequest) -> Vec<bool> {
        let mut path = Vec::new();
        self.push_path(req, &mut path);
        path
    }

    fn push_path(&self, req: &TxnRequest, path: &mut Vec<bool>) {
        let ok = req.compare.iter().all(|c| compare_holds(&self.store, c));
        path.push(ok);
        for op in if ok { &req.success } else { &req.failure } {
            if let RequestOp::Txn(t) = op {
                self.push_path(t, path);
            }
        }
    }

    fn check_txn<'p>(&self, req: &TxnRequest, path: &mut impl Iterator<Item = &'p bool>) -> Result<()> {
        let ok = *path.next().expect("txn path covers every txn");
        for op in if ok { &req.success } else { &req.failure } {
            match op {
                RequestOp::Range(r) => {
                    if r.key.is_empty() {
                        return Err(Error::EmptyKey);
                    }
                    self.check_txn_range_revision(r.revision)?;
                }
                RequestOp::Put(p) => self.check_put(p)?,
                RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(Error::EmptyKey),
                RequestOp::DeleteRange(_) => {}
                RequestOp::Txn(t) => self.check_txn(t, path)?,
            }
        }
        Ok(())
    }

    /// etcd's `checkRequestRange`: revision 0 reads the txn's view; any
    /// other is checked against the store's bounds, where etcd's first
    /// revision is -1 until the first compaction (so a negative revision
    /// below that is `Compacted`, exactly as etcd answers).
    fn check_txn_range_revision(&self, rev: i64) -> Result<()> {
        let first = match self.store.compact_revision() {
            0 => -1,
            compacted => compacted,
        };
        if rev == 0 {
            Ok(())
        } else if rev > self.store.current_revision() {
            Err(Error::FutureRev)
        } else if rev < first {
            Err(Error::Compacted)
        } else {
            Ok(())
        }
    }

    fn compact(&mut self, rev: i64) -> Result<Response> {
        if rev <= self.store.compact_revision() {
            return Err(Error::Compacted);
        }
        if rev > self.store.current_revision() {
            return Err(Error::FutureRev);
        }
        self.store.compact(rev);
        Ok(Response::Compaction(CompactionResponse { revision: self.store.current_revision() }))
    }

    /// Revokes a lease and deletes its keys, in key order, at one revision.
    fn revoke(&mut self, id: i64, events: &mut Vec<Event>) -> Result<Response> {
        let lease = self.lessor.revoke(id)?;
        let mut w = self.store.writer();
        for key in &lease.keys {
            let live = w.store().get(key).filter(|kv| kv.lease == id).cloned();
            if let Some(kv) = live {
                w.delete_live(kv);
            }
        }
        let (revision, evs) = w.finish();
        *events = evs;
        Ok(Response::LeaseRevoke(LeaseRevokeResponse { revision }))
    }
}

fn set_revision(resp: &mut Response, revision: i64) {
    match resp {
        Response::Put(r) => r.revision = revision,
        Response::DeleteRange(r) => r.revision = revision,
        Response::Txn(r) => r.revision = revision,
        _ => {}
    }
}

fn exec_put(w: &mut StoreWriter<'_>, lessor: &mut Lessor, req: &PutRequest) -> PutResponse {
    let mut lease = req.lease;
    let prev = w.put_with(req.key.clone(), |current| {
        let value = match current {
            Some(kv) if req.ignore_value => kv.value.clone(),
            _ => req.value.clone(),
        };
        if let Some(kv) = current.filter(|_| req.ignore_lease) {
            lease = kv.lease;
        }
        (value, lease)
    });
    if let Some(old) = prev.as_ref().filter(|old| old.lease != 0 && old.lease != lease) {
        lessor.detach(old.lease, &old.key);
    }
    if lease != 0 {
        lessor.attach(lease, &req.key);
    }
    PutResponse { revision: w.revision(), prev_kv: prev.filter(|_| req.prev_kv) }
}

fn exec_delete(w: &mut StoreWriter<'_>, lessor: &mut Lessor, req: &DeleteRangeRequest) -> DeleteRangeResponse {
    let prevs = w.delete_range(KeyRange::new(&req.key, &req.range_end));
    for kv in prevs.iter().filter(|kv| kv.lease != 0) {
        lessor.detach(kv.lease, &kv.key);
    }
    DeleteRangeResponse {
        revision: w.revision(),
        deleted: prevs.len() as i64,
        prev_kvs: if req.prev_kv { prevs } else { Vec::new() },
    }
}

fn exec_txn<'p>(
    w: &mut StoreWriter<'_>,
    lessor: &mut Lessor,
    req: &TxnRequest,
    path: &mut impl Iterator<Item = &'p bool>,
) -> TxnResponse {
    let succeeded = *path.next().expect("txn path covers every txn");
    let ops = if succeeded { &req.success } else { &req.failure };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        responses.push(match op {
            RequestOp::Range(r) => {
                // Checked before the txn began; the txn's own writes only
                // move the view forward.
                let resp = mvcc::range(w.store(), r, w.revision()).expect("txn range checked before execution");
                ResponseOp::Range(resp)
            }
            RequestOp::Put(p) => ResponseOp::Put(exec_put(w, lessor, p)),
            RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(exec_delete(w, lessor, d)),
            RequestOp::Txn(t) => ResponseOp::Txn(exec_txn(w, lessor, t, path)),
        });
    }
    TxnResponse { revision: w.revision(), succeeded, responses }
}

/// etcd's `applyCompare`: the compare must hold for every key in its range;
/// on no key it is checked against an empty key-value, except that a value
/// compare on no key always fails.
fn compare_holds(store: &Store, c: &Compare) -> bool {
    let mut any = false;
    let mut all = true;
    store.scan(KeyRange::new(&c.key, &c.range_end), i64::MAX, |kv| {
        any = true;
        all = compare_kv(c, kv);
        all
    });
    if any {
        all
    } else {
        !matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, &Default::default())
    }
}

fn compare_kv(c: &Compare, kv: &crate::kv::KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.as_ref().cmp(v.as_ref()),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}
