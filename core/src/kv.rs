//! The values the store hands out: revisions, key-values, events, key ranges,
//! and the caller-supplied notion of time.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// A point in the store's history. Every write request (put, delete, txn)
/// takes the next `main`; the changes inside one request are numbered by `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }
}

/// etcd's `mvccpb.KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// Number of modifications since the key was (re)created; 1 on creation.
    pub version: i64,
    pub value: Bytes,
    /// The attached lease, 0 for none.
    pub lease: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key, as delivered to watchers. A delete event's `kv` holds
/// only the key and the deleting revision, as in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// Rough encoded size, used to bound watcher buffers and fragment responses.
    pub fn approx_size(&self) -> usize {
        let kv = |kv: &KeyValue| kv.key.len() + kv.value.len() + 40;
        kv(&self.kv) + self.prev_kv.as_ref().map_or(0, kv)
    }
}

/// Milliseconds on a node's monotonic clock. `core` never reads a clock: the
/// caller passes the current time in, so the simulator can skew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Millis(pub u64);

impl Millis {
    pub fn plus_secs(self, secs: i64) -> Millis {
        let ms = u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
        Millis(self.0.saturating_add(ms))
    }
}

/// Start and end bounds of a key scan.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// A set of keys in etcd's request encoding: `range_end` empty means the key
/// alone, `range_end == [0]` means every key from `key` on, otherwise the keys
/// in `[key, range_end)`. It borrows the request's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRange<'a> {
    Single(&'a [u8]),
    From(&'a [u8]),
    Between(&'a [u8], &'a [u8]),
}

impl<'a> KeyRange<'a> {
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> KeyRange<'a> {
        match range_end {
            [] => KeyRange::Single(key),
            [0] => KeyRange::From(key),
            end => KeyRange::Between(key, end),
        }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        match *self {
            KeyRange::Single(key) => key == k,
            KeyRange::From(key) => k >= key,
            KeyRange::Between(key, end) => k >= key && k < end,
        }
    }

    /// The bounds for a `BTreeMap` range scan, or `None` when the range is
    /// empty (an end at or before the start); `BTreeMap::range` would panic on
    /// such bounds.
    pub fn bounds(&self) -> Option<KeyBounds<'a>> {
        match *self {
            KeyRange::Single(key) => Some((Bound::Included(key), Bound::Included(key))),
            KeyRange::From(key) => Some((Bound::Included(key), Bound::Unbounded)),
            KeyRange::Between(key, end) if key < end => Some((Bound::Included(key), Bound::Excluded(end))),
            KeyRange::Between(..) => None,
        }
    }
}

/// The `range_end` that selects every key with the given prefix (etcd's
/// `clientv3.GetPrefixRangeEnd`): the prefix with its last byte below 0xff
/// incremented, or `[0]` (all keys from the prefix on) when there is none.
pub fn prefix_range_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(&[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_range_forms() {
        assert!(KeyRange::new(b"a", b"").contains(b"a"));
        assert!(!KeyRange::new(b"a", b"").contains(b"ab"));
        let from = KeyRange::new(b"b", &[0]);
        assert!(from.contains(b"zzz") && !from.contains(b"a"));
        let between = KeyRange::new(b"a", b"c");
        assert!(between.contains(b"b") && !between.contains(b"c"));
        assert!(KeyRange::new(b"c", b"a").bounds().is_none());
    }

    #[test]
    fn prefix_end() {
        assert_eq!(prefix_range_end(b"foo").as_ref(), b"fop");
        assert_eq!(prefix_range_end(b"a\xff").as_ref(), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff").as_ref(), [0]);
        assert_eq!(prefix_range_end(b"").as_ref(), [0]);
    }
}
