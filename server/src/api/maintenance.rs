//! etcd's `Maintenance` service: Status, Hash, HashKV, Alarm, Defragment,
//! Snapshot and MoveLeader.
//!
//! Decisions, following etcd 3.4 where it has an answer:
//!
//! - Status reports the version [`ETCD_VERSION`], "3.4.0": the etcd API
//!   level detcd serves, with patch 0 since detcd is no etcd release.
//!   etcdctl prints the string as it is; clients that check the server's
//!   version (clientv3's `RejectOldCluster` parses major and minor and wants
//!   at least 3.2) accept it. detcd's own crate version would read as an
//!   etcd 0.x. `raftIndex` is the locally committed index and
//!   `raftAppliedIndex` the applied one, as etcd's. With no known leader,
//!   `errors` holds "etcdserver: no leader", as etcd's.
//! - `dbSize` and `dbSizeInUse` are both an estimate of the encoded state
//!   (history and leases), computed from the key and value sizes without
//!   encoding anything: detcd keeps no database file with free pages, so
//!   the two are equal and a compaction shrinks both at once.
//! - Hash is `State::hash` (history and leases); HashKV is `State::hash_kv`.
//!   Both are detcd's own CRC-32s, comparable between detcd members only.
//!   As etcd's `HashByRev`, HashKV refuses a revision at or below the
//!   compaction point, its header carries the current revision (not the
//!   hashed one), and an uncompacted store reports compact revision -1.
//! - Alarms: none are ever raised yet (NOSPACE and CORRUPT come later), so
//!   a list is empty and activate/deactivate are accepted and answer none.
//! - Defragment has nothing to do and succeeds.
//! - Snapshot streams `detcd_core::snapshot::encode` of the state as applied
//!   on this member, zero-padded to a multiple of 512 bytes, in 32 KiB
//!   chunks with `remaining_bytes`, then the SHA-256 of those bytes as a last
//!   blob with `remaining_bytes` 0, as etcd 3.4 does. etcdctl `snapshot
//!   save` writes all of it and refuses a file whose size is not a multiple
//!   of 512 plus the 32 bytes of the hash (a bbolt file is page-aligned),
//!   hence the padding; a reader takes the snapshot's length from its
//!   header. The file is a detcd snapshot, not a bbolt database: etcdctl's
//!   `snapshot status` and `snapshot restore` cannot read it.
//! - MoveLeader: openraft's leader transfer, on the leader only ("not
//!   leader" otherwise), to a voter ("bad leader transferee" otherwise),
//!   waiting until the target leads. Defragment, Snapshot and MoveLeader
//!   answers have no header, as etcd 3.4's.

use super::ClientApi;
use bytes::Bytes;
use detcd_core::HashKv;
use detcd_net::etcd::convert::{self, status};
use detcd_net::etcd::etcdserverpb::{self as pb, maintenance_server::Maintenance};
use futures::Stream;
use openraft::ServerState;
use openraft_rt::WatchReceiver;
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The version Status reports: the etcd API detcd implements.
pub(crate) const ETCD_VERSION: &str = "3.4.0";

/// Snapshot chunk size, etcd's.
const SNAPSHOT_CHUNK: usize = 32 * 1024;
/// etcdctl wants the snapshot's size to be a multiple of this.
const SNAPSHOT_ALIGN: usize = 512;

/// How long MoveLeader waits for the target to take over.
const LEADER_TRANSFER_WAIT: Duration = Duration::from_secs(5);

/// What a history entry adds to the encoded state besides its key and
/// value (revisions, version, lease, lengths, flags), roughly.
const ENTRY_OVERHEAD: usize = 24;
/// What a lease adds (ID, TTL, remaining TTL).
const LEASE_OVERHEAD: usize = 24;
/// The snapshot header and fixed fields.
const STATE_OVERHEAD: usize = 64;

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for ClientApi {
    async fn alarm(&self, _: Request<pb::AlarmRequest>) -> Result<Response<pb::AlarmResponse>, Status> {
        let revision = self.node.shared().state().revision();
        Ok(Response::new(pb::AlarmResponse { header: Some(self.header().at(revision)), alarms: vec![] }))
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let (revision, db_size) = {
            let state = self.node.shared().state();
            (state.revision(), estimated_size(&state))
        };
        let m = self.node.raft().metrics().borrow_watched().clone();
        let leader = m.current_leader.unwrap_or(0);
        let errors = if leader == 0 { vec!["etcdserver: no leader".to_string()] } else { vec![] };
        Ok(Response::new(pb::StatusResponse {
            header: Some(self.header().at(revision)),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader,
            raft_index: m.local_committed.map_or(0, |l| l.index),
            raft_term: m.current_term,
            raft_applied_index: self.node.shared().applied_index(),
            errors,
            db_size_in_use: db_size,
            is_learner: self.is_learner(),
        }))
    }

    async fn defragment(&self, _: Request<pb::DefragmentRequest>) -> Result<Response<pb::DefragmentResponse>, Status> {
        Ok(Response::new(pb::DefragmentResponse { header: None }))
    }

    async fn hash(&self, _: Request<pb::HashRequest>) -> Result<Response<pb::HashResponse>, Status> {
        let (revision, hash) = {
            let state = self.node.shared().state();
            (state.revision(), state.hash())
        };
        Ok(Response::new(pb::HashResponse { header: Some(self.header().at(revision)), hash }))
    }

    async fn hash_kv(&self, request: Request<pb::HashKvRequest>) -> Result<Response<pb::HashKvResponse>, Status> {
        let rev = request.into_inner().revision;
        let r = {
            let state = self.node.shared().state();
            let compacted = state.store().compact_revision();
            if rev > 0 && compacted > 0 && rev <= compacted {
                return Err(status(&detcd_core::Error::Compacted));
            }
            let r = state.hash_kv(rev).map_err(|e| status(&e))?;
            // etcd's compaction point starts at -1; the header carries the
            // current revision.
            let compact_revision = if compacted == 0 { -1 } else { compacted };
            HashKv { hash: r.hash, compact_revision, revision: state.revision() }
        };
        Ok(Response::new(convert::hash_kv_response(&self.header(), r)))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(&self, _: Request<pb::SnapshotRequest>) -> Result<Response<SnapshotStream>, Status> {
        // A copy, so applying goes on while it is encoded. The encoding runs
        // on this task, as the state machine's snapshot builder does
        // (spawn_blocking does not exist in the simulator).
        let state = self.node.shared().state().clone();
        let mut data = detcd_core::snapshot::encode(&state);
        drop(state);
        data.resize(data.len().next_multiple_of(SNAPSHOT_ALIGN), 0);
        Ok(Response::new(Box::pin(futures::stream::iter(snapshot_chunks(Bytes::from(data)).map(Ok)))))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        let me = self.node.id();
        let raft = self.node.raft();
        let (leading, voter) = {
            let m = raft.metrics().borrow_watched().clone();
            let leading = m.state == ServerState::Leader && m.current_leader == Some(me);
            let voter = m.membership_config.voter_ids().any(|id| id == target);
            (leading, voter)
        };
        if !leading {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        if !voter {
            return Err(Status::failed_precondition("etcdserver: bad leader transferee"));
        }
        if target != me {
            raft.trigger()
                .transfer_leader(target)
                .await
                .map_err(|e| Status::unavailable(format!("etcdserver: {e}")))?;
            raft.wait(Some(LEADER_TRANSFER_WAIT))
                .metrics(|m| m.current_leader == Some(target), "leader transfer")
                .await
                .map_err(|_| Status::unavailable("etcdserver: request timed out, leader transfer took too long"))?;
        }
        Ok(Response::new(pb::MoveLeaderResponse { header: None }))
    }
}

/// The snapshot stream's messages: `data` in chunks, each with the bytes
/// still to come, then the SHA-256 of `data`.
fn snapshot_chunks(data: Bytes) -> impl Iterator<Item = pb::SnapshotResponse> + Send {
    let total = data.len();
    let sha = Bytes::copy_from_slice(&Sha256::digest(&data));
    let chunks = (0..total).step_by(SNAPSHOT_CHUNK).map(move |start| {
        let end = (start + SNAPSHOT_CHUNK).min(total);
        pb::SnapshotResponse { header: None, remaining_bytes: (total - end) as u64, blob: data.slice(start..end) }
    });
    chunks.chain(std::iter::once(pb::SnapshotResponse { header: None, remaining_bytes: 0, blob: sha }))
}

/// The size of the encoded state, estimated from its contents.
fn estimated_size(state: &detcd_core::State) -> i64 {
    let history: usize =
        state.store().history().iter().map(|e| e.kv.key.len() + e.kv.value.len() + ENTRY_OVERHEAD).sum();
    let leases = state.lessor().len() * LEASE_OVERHEAD;
    i64::try_from(STATE_OVERHEAD + history + leases).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_chunks_count_down_and_end_with_the_sha256() {
        let data: Vec<u8> = (0..SNAPSHOT_CHUNK * 2 + 5).map(|i| i as u8).collect();
        let msgs: Vec<_> = snapshot_chunks(Bytes::from(data.clone())).collect();
        let remaining: Vec<u64> = msgs.iter().map(|m| m.remaining_bytes).collect();
        assert_eq!(remaining, [SNAPSHOT_CHUNK as u64 + 5, 5, 0, 0]);
        let body: Vec<u8> = msgs[..3].iter().flat_map(|m| m.blob.to_vec()).collect();
        assert_eq!(body, data);
        assert_eq!(msgs[3].blob.as_ref(), Sha256::digest(&data).as_slice());
    }

    #[test]
    fn estimated_size_grows_with_the_history() {
        let mut state = detcd_core::State::new(Default::default());
        let empty = estimated_size(&state);
        let put = detcd_core::request::PutRequest {
            key: Bytes::from_static(b"key"),
            value: Bytes::from(vec![0; 1000]),
            ..Default::default()
        };
        state.apply(1, &detcd_core::request::Command::Put(put), detcd_core::Millis(0)).result.unwrap();
        assert!(estimated_size(&state) >= empty + 1003);
    }
}
