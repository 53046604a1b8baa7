//! openraft's state machine over detcd-core's `State`.
//!
//! [`StateMachineStore`] is what openraft drives (apply, snapshots);
//! [`SharedState`] is what the node shares with it: the `State` behind a
//! mutex for reads, the node's `WatchHub` fed with every apply's events, and
//! the applied log index with a way to wait for it.
//!
//! The state is in memory; durability comes from the WAL plus snapshot
//! files (see `snapshot.rs`). On open the newest valid snapshot is loaded;
//! openraft then re-applies the log from there up to the committed log id
//! the log store saved. Applying a normal entry calls `State::apply(index,
//! &cmd, clock.now())`, feeds the events to the hub and answers openraft's
//! responder with a [`CommandResult`]. Blank and membership entries only
//! advance the applied log id (a membership entry also becomes the last
//! membership).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use detcd_core::request::{Command, Response};
use detcd_core::watch::{WatchHub, WatchLimits};
use detcd_core::{State, StateConfig};
use futures::StreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::Notify;

use super::log_store::LogId;
use super::snapshot::{SnapDir, SnapshotData, SnapshotMeta, StoredMembership};
use super::types::{CommandResult, MemberId, MemberNode, TypeConfig};
use crate::clock::Clock;
use crate::storage::Disk;

pub type Snapshot = openraft::Snapshot<super::log_store::CommittedLeaderId, MemberId, MemberNode, SnapshotData>;

/// The state the node shares with the state machine.
///
/// Lock order: `state` before `hub` (the state machine holds both while it
/// applies an entry and feeds its events, so a watcher registered under
/// the same two locks neither misses nor repeats an event). Never hold
/// either across an `.await`.
pub struct SharedState {
    state: Mutex<State>,
    hub: Mutex<WatchHub>,
    /// The log index of the last applied entry (any kind), 0 before any.
    applied: AtomicU64,
    applied_changed: Notify,
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedState").field("applied", &self.applied_index()).finish()
    }
}

impl SharedState {
    pub fn new(state: State, hub: WatchHub, applied_index: u64) -> SharedState {
        SharedState {
            state: Mutex::new(state),
            hub: Mutex::new(hub),
            applied: AtomicU64::new(applied_index),
            applied_changed: Notify::new(),
        }
    }

    /// The replicated state, for reads (and the node's lessor upkeep).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state lock poisoned by a panic while applying")
    }

    /// The node's watch hub. Take it after `state()` when both are needed.
    pub fn hub(&self) -> MutexGuard<'_, WatchHub> {
        self.hub.lock().expect("watch hub lock poisoned")
    }

    /// The log index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Waits until the entry at log `index` is applied (at once if it is).
    /// A linearizable read takes openraft's read log id, waits for it
    /// here, then reads `state()`. Wrap in a timeout to bound the wait.
    pub async fn wait_applied(&self, index: u64) {
        loop {
            // Register before checking, so an apply in between still wakes us.
            let notified = self.applied_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.applied_index() >= index {
                return;
            }
            notified.await;
        }
    }

    fn advance(&self, index: u64) {
        self.applied.fetch_max(index, Ordering::AcqRel);
        self.applied_changed.notify_waiters();
    }

    /// Applies one command and feeds its events to the hub, under both
    /// locks, then publishes the new applied index.
    fn apply(&self, index: u64, cmd: &Command, clock: &dyn Clock) -> CommandResult {
        let result = {
            let mut state = self.state();
            let applied = state.apply(index, cmd, clock.now());
            self.hub().notify(&applied.events);
            CommandResult { revision: applied.revision, result: applied.result }
        };
        self.advance(index);
        result
    }

    /// Replaces the state (a snapshot was installed). Every synced watcher
    /// becomes unsynced at its next revision, so the hub's `sync` replays
    /// the jump from the new history instead of skipping it.
    fn replace(&self, new: State, index: u64) {
        {
            let mut state = self.state();
            *state = new;
            self.hub().unsync_all();
        }
        self.advance(index);
    }
}

/// openraft needs a response for every entry a client waits on; besides
/// commands, only membership changes get one, and their caller reads the
/// new membership, not this. core has no "nothing" response, so this is
/// the store revision with core's unit response.
fn no_command_result(shared: &SharedState) -> CommandResult {
    CommandResult { revision: shared.state().revision(), result: Ok(Response::LeaseCheckpoint) }
}

/// openraft's `RaftStateMachine` over [`SharedState`] and the snapshot files.
pub struct StateMachineStore {
    shared: Arc<SharedState>,
    clock: Arc<dyn Clock>,
    applied: Option<LogId>,
    membership: StoredMembership,
    snaps: Arc<Mutex<SnapDir>>,
}

impl fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("applied", &self.applied)
            .field("membership", &self.membership)
            .field("snapshots", &*lock_snaps(&self.snaps))
            .finish()
    }
}

fn lock_snaps(snaps: &Mutex<SnapDir>) -> MutexGuard<'_, SnapDir> {
    snaps.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StateMachineStore {
    /// Opens the snapshot directory `<data_dir>/member/snap` and starts
    /// from its newest valid snapshot, or from an empty `State` with
    /// `config` if there is none. Fails if snapshot files exist but none
    /// is valid (see `snapshot.rs`).
    pub fn open(
        disk: Arc<dyn Disk>,
        data_dir: &Path,
        config: StateConfig,
        watch_limits: WatchLimits,
        clock: Arc<dyn Clock>,
    ) -> io::Result<StateMachineStore> {
        let (snaps, loaded) = SnapDir::open(disk, data_dir)?;
        let (state, applied, membership) = match loaded {
            Some(l) => {
                for broken in &l.broken {
                    tracing::warn!("snapshot: fell back past {} to an older snapshot", broken.display());
                }
                (l.state, l.meta.last_log_id, l.meta.last_membership)
            }
            None => (State::new(config), None, StoredMembership::default()),
        };
        tracing::info!("state machine: starting from snapshot at {applied:?}");
        let index = applied.map_or(0, |l| l.index);
        let shared = Arc::new(SharedState::new(state, WatchHub::new(watch_limits), index));
        Ok(StateMachineStore { shared, clock, applied, membership, snaps: Arc::new(Mutex::new(snaps)) })
    }

    /// The state shared with the node.
    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }

    /// The last applied log id.
    pub fn applied(&self) -> Option<LogId> {
        self.applied
    }

    /// The metadata of the newest snapshot on disk.
    pub fn current_snapshot_meta(&self) -> Option<SnapshotMeta> {
        lock_snaps(&self.snaps).current().cloned()
    }

    fn meta(&self) -> SnapshotMeta {
        SnapshotMeta { last_log_id: self.applied, last_membership: self.membership.clone() }
    }
}

/// A copy of the state at the moment openraft asked for a snapshot; writes
/// it out when openraft builds the snapshot.
pub struct SnapshotBuilder {
    state: State,
    meta: SnapshotMeta,
    snaps: Arc<Mutex<SnapDir>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = detcd_core::snapshot::encode(&self.state);
        if !lock_snaps(&self.snaps).save(&self.meta, &data)? {
            tracing::debug!("snapshot at {:?}: not newer than the current one, not written", self.meta.last_log_id);
        }
        Ok(Snapshot { meta: self.meta.clone(), snapshot: io::Cursor::new(data) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let index = entry.log_id.index;
            let result = match &entry.payload {
                EntryPayload::Normal(cmd) => Some(self.shared.apply(index, cmd, &*self.clock)),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    self.shared.advance(index);
                    None
                }
                EntryPayload::Blank => {
                    self.shared.advance(index);
                    None
                }
            };
            self.applied = Some(entry.log_id);
            if let Some(responder) = responder {
                responder.send(result.unwrap_or_else(|| no_command_result(&self.shared)));
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // A copy, so applying goes on while the snapshot is encoded.
        let state = self.shared.state().clone();
        SnapshotBuilder { state, meta: self.meta(), snaps: self.snaps.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let state = detcd_core::snapshot::decode(&data).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("snapshot at {:?}: {e}", meta.last_log_id))
        })?;
        // Durable first: a crash after this point restarts from it.
        lock_snaps(&self.snaps).save(meta, &data)?;
        self.shared.replace(state, meta.last_log_id.map_or(0, |l| l.index));
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let current = lock_snaps(&self.snaps).read_current()?;
        Ok(current.map(|(meta, data)| Snapshot { meta, snapshot: io::Cursor::new(data) }))
    }
}
