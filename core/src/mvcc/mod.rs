//! Multi-version concurrency control: every write is kept at its revision
//! until compaction, so reads can go back in time and watchers can catch up.

mod key_index;
mod range;
mod store;

pub use range::range;
pub use store::{HistoryEntry, Store, StoreWriter};
