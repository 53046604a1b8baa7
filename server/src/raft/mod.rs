//! Consensus: openraft on the runtime seam, its type configuration, and the
//! adapters between openraft and core's state machine and the WAL.

pub mod forward;
pub mod log_store;
pub mod network;
pub mod peer_server;
pub mod runtime;
pub mod snapshot;
pub mod state_machine;
pub mod store;
pub mod types;
pub mod watch;
pub mod wire;
