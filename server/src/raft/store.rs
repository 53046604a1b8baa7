//! Opening both openraft storage adapters of a member together.

use std::io;
use std::path::Path;
use std::sync::Arc;

use detcd_core::watch::WatchLimits;
use detcd_core::StateConfig;

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use crate::clock::Clock;
use crate::storage::{Disk, WalOptions};

/// Settings of a member's storage.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    pub wal: WalOptions,
    /// For a member with no snapshot yet (a snapshot carries its own).
    pub state: StateConfig,
    pub watch: WatchLimits,
}

/// Opens the log store (`<data_dir>/member/wal`) and the state machine
/// (`<data_dir>/member/snap`) on one disk, and checks that they fit: the
/// state machine must cover every entry the log purged. It cannot when the
/// newest snapshot was invalid and the older one it fell back to is behind
/// the purge point; the open then fails, since the entries in between
/// exist nowhere on this member (remove the member's data and add it back
/// so it gets a snapshot from the leader).
pub fn open_stores(
    disk: Arc<dyn Disk>,
    data_dir: &Path,
    config: StoreConfig,
    clock: Arc<dyn Clock>,
) -> io::Result<(LogStore, StateMachineStore)> {
    let log = LogStore::open(disk.clone(), data_dir, config.wal)?;
    let sm = StateMachineStore::open(disk, data_dir, config.state, config.watch, clock)?;
    let applied = sm.applied().map_or(0, |l| l.index);
    if let Some(purged) = log.purged().filter(|p| p.index > applied) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "storage: the state machine starts at index {applied} (snapshot) but the log was purged up to \
                 {purged}: entries {}..={} are lost on this member",
                applied + 1,
                purged.index
            ),
        ));
    }
    Ok((log, sm))
}
