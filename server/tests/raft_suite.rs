//! openraft's own storage test suite against `LogStore` and
//! `StateMachineStore`, each test on a fresh `SimDisk`.

mod raft_common;

use std::sync::Arc;

use detcd_server::clock::NodeClock;
use detcd_server::raft::log_store::LogStore;
use detcd_server::raft::state_machine::StateMachineStore;
use detcd_server::raft::store::{open_stores, StoreConfig};
use detcd_server::raft::types::TypeConfig;
use detcd_server::storage::SimDisk;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;

struct OnSimDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore> for OnSimDisk {
    async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let disk = Arc::new(SimDisk::new());
        let (log, sm) = open_stores(disk, &raft_common::data_dir(), StoreConfig::default(), Arc::new(NodeClock::new()))
            .map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        Ok(((), log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_simdisk() {
    TypeConfig::run(async {
        Suite::test_all(OnSimDisk).await.expect("openraft's storage suite");
    });
}
