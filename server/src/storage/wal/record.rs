//! WAL record framing:
//!
//! ```text
//! length u32 LE | type u8 | crc32 u32 LE | payload (length bytes)
//! ```
//!
//! The crc (crc32fast, IEEE) covers the type byte and the payload. Payloads:
//! `Vote`: the vote bytes; `Entry`: index u64 LE then the entry bytes;
//! `TruncateSince` and `PurgeUpTo`: the index, u64 LE; `PurgeUpToMeta`:
//! the index, u64 LE, then the caller's bytes describing the purged entry
//! (openraft needs the purged entry's full log id, term included).

use std::fmt;

pub(super) const HEADER_LEN: usize = 9;

const VOTE: u8 = 1;
const ENTRY: u8 = 2;
const TRUNCATE_SINCE: u8 = 3;
const PURGE_UP_TO: u8 = 4;
const PURGE_UP_TO_META: u8 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Record<'a> {
    Vote(&'a [u8]),
    Entry { index: u64, data: &'a [u8] },
    TruncateSince(u64),
    PurgeUpTo(u64),
    PurgeUpToMeta { index: u64, meta: &'a [u8] },
}

impl Record<'_> {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let (ty, index, body): (u8, Option<u64>, &[u8]) = match *self {
            Record::Vote(vote) => (VOTE, None, vote),
            Record::Entry { index, data } => (ENTRY, Some(index), data),
            Record::TruncateSince(index) => (TRUNCATE_SINCE, Some(index), &[]),
            Record::PurgeUpTo(index) => (PURGE_UP_TO, Some(index), &[]),
            Record::PurgeUpToMeta { index, meta } => (PURGE_UP_TO_META, Some(index), meta),
        };
        let index = index.map(u64::to_le_bytes);
        let index: &[u8] = index.as_ref().map_or(&[], |i| i);
        let len = u32::try_from(index.len() + body.len()).expect("record size checked by the caller");
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[ty]);
        crc.update(index);
        crc.update(body);
        out.extend_from_slice(&len.to_le_bytes());
        out.push(ty);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(index);
        out.extend_from_slice(body);
    }
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Bad {
    /// The header, or the payload its length declares, runs past the end.
    Incomplete {
        need: u64,
        have: u64,
    },
    TooLarge {
        len: u32,
        max: u32,
    },
    /// `at_eof`: the record ends exactly at the end of the bytes.
    CrcMismatch {
        at_eof: bool,
    },
    UnknownType(u8),
    Malformed {
        ty: u8,
        len: u32,
    },
}

impl Bad {
    /// Whether a write cut short at the end of the file explains this.
    pub(super) fn may_be_torn(&self) -> bool {
        matches!(self, Bad::Incomplete { .. } | Bad::CrcMismatch { at_eof: true })
    }
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Incomplete { need, have } => {
                write!(f, "incomplete record: needs {need} bytes, {have} left in the file")
            }
            Bad::TooLarge { len, max } => {
                write!(f, "declared length {len} exceeds the maximum record size {max}")
            }
            Bad::CrcMismatch { .. } => f.write_str("crc mismatch"),
            Bad::UnknownType(ty) => write!(f, "unknown record type {ty}"),
            Bad::Malformed { ty, len } => write!(f, "malformed payload of {len} bytes for record type {ty}"),
        }
    }
}

fn u64_at(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Decodes the record at the start of `buf`, returning it and its size.
pub(super) fn decode(buf: &[u8], max_len: u32) -> Result<(Record<'_>, usize), Bad> {
    let have = buf.len() as u64;
    if buf.len() < HEADER_LEN {
        return Err(Bad::Incomplete { need: HEADER_LEN as u64, have });
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    if len > max_len {
        return Err(Bad::TooLarge { len, max: max_len });
    }
    let need = HEADER_LEN as u64 + u64::from(len);
    if need > have {
        return Err(Bad::Incomplete { need, have });
    }
    let end = need as usize;
    let ty = buf[4];
    let crc = u32::from_le_bytes(buf[5..9].try_into().expect("4 bytes"));
    let payload = &buf[HEADER_LEN..end];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[ty]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(Bad::CrcMismatch { at_eof: end == buf.len() });
    }
    let record = match (ty, payload.len()) {
        (VOTE, _) => Record::Vote(payload),
        (ENTRY, 8..) => Record::Entry { index: u64_at(payload), data: &payload[8..] },
        (TRUNCATE_SINCE, 8) => Record::TruncateSince(u64_at(payload)),
        (PURGE_UP_TO, 8) => Record::PurgeUpTo(u64_at(payload)),
        (PURGE_UP_TO_META, 8..) => Record::PurgeUpToMeta { index: u64_at(payload), meta: &payload[8..] },
        (ENTRY | TRUNCATE_SINCE | PURGE_UP_TO | PURGE_UP_TO_META, _) => return Err(Bad::Malformed { ty, len }),
        _ => return Err(Bad::UnknownType(ty)),
    };
    Ok((record, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(record: Record<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        record.encode(&mut out);
        out
    }

    #[test]
    fn round_trip_of_every_type() {
        let records = [
            Record::Vote(b""),
            Record::Vote(b"term 3 voted for 2"),
            Record::Entry { index: 7, data: b"" },
            Record::Entry { index: u64::MAX, data: b"put a=b" },
            Record::TruncateSince(12),
            Record::PurgeUpTo(0),
            Record::PurgeUpToMeta { index: 9, meta: b"" },
            Record::PurgeUpToMeta { index: 10, meta: b"term 2" },
        ];
        let mut all = Vec::new();
        for record in records {
            let bytes = encoded(record);
            assert_eq!(decode(&bytes, 1 << 20), Ok((record, bytes.len())));
            all.extend_from_slice(&bytes);
        }
        let mut offset = 0;
        for record in records {
            let (got, size) = decode(&all[offset..], 1 << 20).unwrap();
            assert_eq!(got, record);
            offset += size;
        }
        assert_eq!(offset, all.len());
    }

    #[test]
    fn frame_layout_is_length_type_crc_payload() {
        let bytes = encoded(Record::PurgeUpTo(5));
        assert_eq!(&bytes[0..4], &8u32.to_le_bytes());
        assert_eq!(bytes[4], PURGE_UP_TO);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[PURGE_UP_TO]);
        crc.update(&5u64.to_le_bytes());
        assert_eq!(&bytes[5..9], &crc.finalize().to_le_bytes());
        assert_eq!(&bytes[9..], &5u64.to_le_bytes());
    }

    #[test]
    fn damaged_records_are_classified() {
        let bytes = encoded(Record::Entry { index: 1, data: b"hello" });
        for cut in 0..bytes.len() {
            let bad = decode(&bytes[..cut], 1 << 20).unwrap_err();
            assert!(matches!(bad, Bad::Incomplete { .. }), "cut at {cut}: {bad}");
            assert!(bad.may_be_torn());
        }
        let mut flipped = bytes.clone();
        flipped[12] ^= 1;
        assert_eq!(decode(&flipped, 1 << 20), Err(Bad::CrcMismatch { at_eof: true }));
        flipped.push(0);
        assert_eq!(decode(&flipped, 1 << 20), Err(Bad::CrcMismatch { at_eof: false }));
        assert!(!Bad::CrcMismatch { at_eof: false }.may_be_torn());
        assert_eq!(decode(&bytes, 4), Err(Bad::TooLarge { len: 13, max: 4 }));
        assert_eq!(decode(&[0; 9], 1 << 20), Err(Bad::CrcMismatch { at_eof: true }));
    }

    #[test]
    fn unknown_types_and_malformed_payloads_are_refused() {
        let frame = |ty: u8, payload: &[u8]| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&[ty]);
            crc.update(payload);
            let mut out = (payload.len() as u32).to_le_bytes().to_vec();
            out.push(ty);
            out.extend_from_slice(&crc.finalize().to_le_bytes());
            out.extend_from_slice(payload);
            out
        };
        assert_eq!(decode(&frame(0, b""), 64), Err(Bad::UnknownType(0)));
        assert_eq!(decode(&frame(9, b"x"), 64), Err(Bad::UnknownType(9)));
        assert_eq!(decode(&frame(ENTRY, b"1234567"), 64), Err(Bad::Malformed { ty: ENTRY, len: 7 }));
        assert_eq!(decode(&frame(PURGE_UP_TO, b"123456789"), 64), Err(Bad::Malformed { ty: PURGE_UP_TO, len: 9 }));
        let short = Bad::Malformed { ty: PURGE_UP_TO_META, len: 7 };
        assert_eq!(decode(&frame(PURGE_UP_TO_META, b"1234567"), 64), Err(short));
        assert_eq!(decode(&frame(6, b""), 64), Err(Bad::UnknownType(6)));
    }
}
