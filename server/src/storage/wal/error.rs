//! The WAL's error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum WalError {
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A record that is neither valid nor explained by a torn write.
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A segment file that does not fit: a bad name, a duplicate seq, or
    /// missing earlier segments.
    BadSegment {
        file: PathBuf,
        reason: String,
    },
    /// An appended entry does not follow the log (the batch is refused
    /// whole, nothing is written).
    OutOfOrder {
        expected: u64,
        got: u64,
    },
    RecordTooLarge {
        len: usize,
        max: u32,
    },
    /// An earlier I/O error left the WAL in an unknown state; reopen it.
    Poisoned,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { op, path, source } => write!(f, "wal: {op} {}: {source}", path.display()),
            WalError::Corrupt { file, offset, reason } => {
                write!(f, "wal: corrupt record in {} at byte offset {offset}: {reason}", file.display())
            }
            WalError::BadSegment { file, reason } => write!(f, "wal: bad segment {}: {reason}", file.display()),
            WalError::OutOfOrder { expected, got } => {
                write!(f, "wal: appended entry {got} does not follow the log (expected {expected})")
            }
            WalError::RecordTooLarge { len, max } => {
                write!(f, "wal: record of {len} bytes exceeds the maximum record size {max}")
            }
            WalError::Poisoned => f.write_str("wal: an earlier I/O error left the log unusable; reopen it"),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { op, path: path.to_path_buf(), source }
}
