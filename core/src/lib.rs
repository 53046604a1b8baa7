//! detcd-core: the sans-IO heart of detcd.
//!
//! Everything here is deterministic: no runtime, no sockets, no files, no
//! clock, no unseeded randomness. Time (`Millis`) and seeds are passed in by
//! the caller, so the same inputs give the same outputs on every member and
//! in the simulator.
//!
//! - [`mvcc`]: the multi-version key-value store (key index + history).
//! - [`lease`]: the lessor.
//! - [`watch`]: the watch hub (synced / unsynced watcher groups).
//! - [`apply`]: the replicated [`State`] and its deterministic `apply`.
//! - [`snapshot`]: the versioned, checksummed snapshot format.
//! - [`validate`]: request checks done before proposing.

pub mod apply;
pub mod error;
pub mod kv;
pub mod lease;
pub mod mvcc;
pub mod request;
pub mod snapshot;
pub mod validate;
pub mod watch;

pub use apply::{Applied, HashKv, State, StateConfig};
pub use error::{Code, Error, Result};
pub use kv::{prefix_range_end, Event, EventKind, KeyRange, KeyValue, Millis, Revision};
