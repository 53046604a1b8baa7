//! The snapshot format: the whole replicated state in one versioned,
//! checksummed blob. Openraft ships it to lagging members and the server
//! writes it to disk; decoding damaged bytes returns an error, never panics.
//!
//! Layout (integers little-endian):
//! `magic "DETCDSNP" | version u32 | body length u64 | crc32 of body u32 | body`
//! where the body is the postcard encoding of the state's history and
//! leases. The key index is not stored: decoding rebuilds it from the
//! history, checking that the history is one a store could have written.

use crate::apply::{State, StateConfig};
use crate::lease::Lessor;
use crate::mvcc::{HistoryEntry, Store};
use serde::{Deserialize, Serialize};
use std::fmt;

const MAGIC: &[u8; 8] = b"DETCDSNP";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    TooShort { len: usize },
    BadMagic,
    UnsupportedVersion(u32),
    LengthMismatch { declared: u64, actual: u64 },
    Checksum { expected: u32, actual: u32 },
    Malformed(String),
    Inconsistent(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::TooShort { len } => write!(f, "snapshot too short: {len} bytes, header needs {HEADER_LEN}"),
            SnapshotError::BadMagic => write!(f, "not a detcd snapshot (bad magic)"),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "unsupported snapshot version {v} (this build reads {VERSION})")
            }
            SnapshotError::LengthMismatch { declared, actual } => {
                write!(f, "snapshot body is {actual} bytes, header says {declared}")
            }
            SnapshotError::Checksum { expected, actual } => {
                write!(f, "snapshot checksum mismatch: header {expected:#010x}, body {actual:#010x}")
            }
            SnapshotError::Malformed(m) => write!(f, "malformed snapshot body: {m}"),
            SnapshotError::Inconsistent(m) => write!(f, "inconsistent snapshot: {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    id: i64,
    ttl: i64,
    remaining_ttl: i64,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    applied_index: u64,
    current_revision: i64,
    compact_revision: i64,
    min_lease_ttl: i64,
    lease_id_seed: u64,
    leases: Vec<LeaseRecord>,
    history: &'a [HistoryEntry],
}

/// The same fields as `BodyRef`, owned, for decoding.
#[derive(Deserialize)]
struct Body {
    applied_index: u64,
    current_revision: i64,
    compact_revision: i64,
    min_lease_ttl: i64,
    lease_id_seed: u64,
    leases: Vec<LeaseRecord>,
    history: Vec<HistoryEntry>,
}

pub fn encode(state: &State) -> Vec<u8> {
    let body = BodyRef {
        applied_index: state.applied_index,
        current_revision: state.store.current_revision(),
        compact_revision: state.store.compact_revision(),
        min_lease_ttl: state.lessor.min_ttl(),
        lease_id_seed: state.lessor.id_seed(),
        leases: state
            .lessor
            .leases()
            .map(|l| LeaseRecord { id: l.id, ttl: l.ttl, remaining_ttl: l.remaining_ttl })
            .collect(),
        history: state.store.history(),
    };
    let body = postcard::to_allocvec(&body).expect("encoding to memory cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn decode(bytes: &[u8]) -> Result<State, SnapshotError> {
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::TooShort { len: bytes.len() });
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let le_u32 = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let version = le_u32(&header[8..12]);
    if version != VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let declared = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if declared != body.len() as u64 {
        return Err(SnapshotError::LengthMismatch { declared, actual: body.len() as u64 });
    }
    let expected = le_u32(&header[20..24]);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(SnapshotError::Checksum { expected, actual });
    }
    let (body, rest): (Body, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SnapshotError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    rebuild(body)
}

fn rebuild(body: Body) -> Result<State, SnapshotError> {
    let bad = SnapshotError::Inconsistent;
    if body.min_lease_ttl < 1 {
        return Err(bad(format!("minimum lease TTL {}", body.min_lease_ttl)));
    }
    let store = Store::from_history(body.history, body.current_revision, body.compact_revision).map_err(bad)?;
    let config = StateConfig { min_lease_ttl: body.min_lease_ttl, lease_id_seed: body.lease_id_seed };
    let mut lessor = Lessor::new(config.min_lease_ttl, config.lease_id_seed);
    for l in &body.leases {
        if l.id == 0 || lessor.contains(l.id) || l.ttl < 1 || l.remaining_ttl < 0 {
            return Err(bad(format!("lease {} (ttl {}, remaining {})", l.id, l.ttl, l.remaining_ttl)));
        }
        lessor.restore(l.id, l.ttl, l.remaining_ttl);
    }
    let mut attach = Vec::new();
    store.scan(crate::kv::KeyRange::From(&[0]), i64::MAX, |kv| {
        if kv.lease != 0 {
            attach.push((kv.lease, kv.key.clone()));
        }
        true
    });
    for (lease, key) in attach {
        if !lessor.contains(lease) {
            return Err(bad(format!("key {key:?} is attached to missing lease {lease}")));
        }
        lessor.attach(lease, &key);
    }
    Ok(State { store, lessor, applied_index: body.applied_index })
}
