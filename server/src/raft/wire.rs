//! What the peer RPC carries: postcard encodings of openraft's request and
//! response types (the gRPC messages in `detcd_net::peer` only see bytes),
//! and the conversion between a state machine's snapshot data and bytes.

use super::types::{MemberId, TypeConfig};
use bytes::Bytes;
use openraft::errors::{Fatal, RaftError};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What a peer answers to every RPC: openraft's response, or the error its
/// `Raft` handle returned (the node stopped, storage failed).
pub type Reply<T> = Result<T, Fatal<TypeConfig>>;

/// The postcard encoding of a message.
pub fn encode<T: Serialize>(msg: &T) -> Result<Bytes, postcard::Error> {
    postcard::to_allocvec(msg).map(Bytes::from)
}

/// Decodes a message; trailing bytes are an error, so a message of one
/// type is not silently read as a shorter one.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    let (msg, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(msg)
}

/// The errors `Raft`'s append/vote handles return carry no API error
/// (openraft's `Infallible`): only the fatal part crosses the wire.
pub fn fatal_only(e: RaftError<TypeConfig>) -> Fatal<TypeConfig> {
    e.unwrap_fatal()
}

/// The request envelope: the member the sender meant to reach, so a
/// process that took over an address under another ID refuses the message
/// instead of acting on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressed<T> {
    pub to: MemberId,
    pub msg: T,
}

/// The first chunk of a snapshot transfer: who it is for, the leader's
/// vote the receiver checks, the snapshot's meta, and the length of its
/// data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SnapshotHeader {
    pub to: MemberId,
    pub vote: VoteOf<TypeConfig>,
    pub meta: SnapshotMetaOf<TypeConfig>,
    pub len: u64,
}

impl SnapshotHeader {
    /// Whether `got` bytes are the whole snapshot. A stream can end early
    /// without an error (a simulated sender that gave up just stops), so
    /// the receiver counts instead of trusting the end of the stream.
    pub fn check_len(&self, got: usize) -> Result<(), String> {
        if got as u64 != self.len {
            return Err(format!("snapshot stream carried {got} of {} bytes", self.len));
        }
        Ok(())
    }
}

/// A state machine's `SnapshotData` the transport can carry: it leaves as
/// bytes and arrives rebuilt from them.
pub trait SnapshotBytes: Send + Sync + Sized + 'static {
    fn into_bytes(self) -> Bytes;
    fn from_bytes(bytes: Vec<u8>) -> Self;
}

impl SnapshotBytes for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        bytes
    }
}

impl SnapshotBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes)
    }
}

/// The whole buffer, whatever the cursor's position.
impl SnapshotBytes for Cursor<Vec<u8>> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self.into_inner())
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        Cursor::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{CommandResult, MemberNode};
    use detcd_core::request::{Command, PutRequest};
    use openraft::errors::ErrorSource;
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::impls::Vote;
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError, TransferLeaderRequest,
        TransferLeaderResponse, VoteRequest, VoteResponse,
    };
    use openraft::type_config::alias::{EntryOf, LogIdOf};
    use openraft::{EntryPayload, ErrorSubject, ErrorVerb, LogId, Membership, StorageError, StoredMembership};
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt::Debug;

    type C = TypeConfig;

    /// Decoding gives the message back (compared by its Debug form and its
    /// encoding: openraft's requests have no `PartialEq`).
    fn roundtrip<T: Serialize + DeserializeOwned + Debug>(msg: T) {
        let bytes = encode(&msg).unwrap();
        let back: T = decode(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{msg:?}"));
        assert_eq!(encode(&back).unwrap(), bytes);
        // Every proper prefix is refused, and so is a trailing byte.
        for cut in 0..bytes.len() {
            assert!(decode::<T>(&bytes[..cut]).is_err(), "prefix {cut} of {} decoded", bytes.len());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode::<T>(&longer).is_err());
    }

    fn log_id(term: u64, node_id: MemberId, index: u64) -> LogIdOf<C> {
        LogId::new(LeaderId { term, node_id }, index)
    }

    fn vote(term: u64, node: MemberId, committed: bool) -> VoteOf<C> {
        if committed {
            Vote::new_committed(term, node)
        } else {
            Vote::new(term, node)
        }
    }

    fn node(name: &str, port: u16) -> MemberNode {
        MemberNode {
            name: name.into(),
            peer_urls: vec![format!("http://127.0.0.1:{port}")],
            client_urls: vec![format!("http://127.0.0.1:{}", port - 1)],
        }
    }

    fn membership() -> Membership<MemberId, MemberNode> {
        let nodes = BTreeMap::from([(1, node("a", 2380)), (2, node("b", 12380)), (3, node("c", 22380))]);
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes).unwrap()
    }

    fn put(key: &str, value: &str) -> Command {
        Command::Put(PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            ..Default::default()
        })
    }

    #[test]
    fn append_entries_roundtrip() {
        let entries: Vec<EntryOf<C>> = vec![
            EntryOf::<C> { log_id: log_id(2, 1, 5), payload: EntryPayload::Blank },
            EntryOf::<C> { log_id: log_id(2, 1, 6), payload: EntryPayload::Normal(put("k", "v")) },
            EntryOf::<C> { log_id: log_id(2, 1, 7), payload: EntryPayload::Membership(membership()) },
        ];
        roundtrip(Addressed {
            to: 3,
            msg: AppendEntriesRequest::<C> {
                vote: vote(2, 1, true),
                prev_log_id: Some(log_id(1, 2, 4)),
                entries,
                leader_commit: Some(log_id(1, 2, 3)),
            },
        });
        roundtrip(Addressed {
            to: 2,
            msg: AppendEntriesRequest::<C> {
                vote: vote(1, 1, true),
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            },
        });
        let replies: Vec<Reply<AppendEntriesResponse<C>>> = vec![
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(2, 1, 6)))),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(vote(3, 2, false))),
            Err(Fatal::Stopped),
            Err(Fatal::Panicked),
            Err(Fatal::StorageError(StorageError::new(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                <C as openraft::RaftTypeConfig>::ErrorSource::from_string("disk full"),
            ))),
        ];
        for r in replies {
            roundtrip(r);
        }
    }

    #[test]
    fn vote_roundtrip() {
        roundtrip(Addressed { to: 1, msg: VoteRequest::<C>::new(vote(4, 2, false), Some(log_id(3, 1, 100))) });
        roundtrip(Addressed { to: 1, msg: VoteRequest::<C>::new(vote(1, 3, false), None) });
        roundtrip::<Reply<VoteResponse<C>>>(Ok(VoteResponse::new(vote(4, 2, false), Some(log_id(3, 1, 99)), true)));
        roundtrip::<Reply<VoteResponse<C>>>(Ok(VoteResponse::new(vote(5, 1, true), None, false)));
        roundtrip::<Reply<VoteResponse<C>>>(Err(Fatal::Stopped));
    }

    #[test]
    fn transfer_leader_roundtrip() {
        roundtrip(Addressed {
            to: 2,
            msg: TransferLeaderRequest::<C>::new(vote(3, 1, true), 2, Some(log_id(3, 1, 9))),
        });
        roundtrip::<Reply<TransferLeaderResponse<C>>>(Ok(Ok(())));
        roundtrip::<Reply<TransferLeaderResponse<C>>>(Ok(Err(TransferLeaderError::VoteChanged {
            expected: vote(3, 1, true),
            actual: vote(4, 2, true),
        })));
        roundtrip::<Reply<TransferLeaderResponse<C>>>(Ok(Err(TransferLeaderError::LogNotFlushed {
            expected: Some(log_id(3, 1, 9)),
            actual: None,
        })));
    }

    #[test]
    fn snapshot_header_and_reply_roundtrip() {
        let meta = SnapshotMetaOf::<C> {
            last_log_id: Some(log_id(2, 1, 1000)),
            last_membership: StoredMembership::new(Some(log_id(1, 1, 1)), membership()),
        };
        roundtrip(SnapshotHeader { to: 2, vote: vote(2, 1, true), meta, len: 1 << 40 });
        let empty = SnapshotHeader { to: 3, vote: vote(1, 1, true), meta: Default::default(), len: 0 };
        roundtrip(empty.clone());
        assert_eq!(empty.check_len(0), Ok(()));
        let header = SnapshotHeader { len: 10, ..empty };
        assert_eq!(header.check_len(10), Ok(()));
        assert!(header.check_len(9).unwrap_err().contains("9 of 10"));
        assert!(header.check_len(11).is_err());
        roundtrip::<Reply<SnapshotResponse<C>>>(Ok(SnapshotResponse::new(vote(2, 1, true))));
        roundtrip::<Reply<SnapshotResponse<C>>>(Err(Fatal::Stopped));
    }

    #[test]
    fn fatal_only_keeps_the_fatal() {
        assert_eq!(fatal_only(RaftError::Fatal(Fatal::Stopped)), Fatal::Stopped);
    }

    #[test]
    fn snapshot_data_as_bytes() {
        let data = vec![1u8, 2, 3];
        assert_eq!(data.clone().into_bytes(), Bytes::from_static(&[1, 2, 3]));
        assert_eq!(<Vec<u8>>::from_bytes(data.clone()), data);
        assert_eq!(Bytes::from_bytes(data.clone()).into_bytes(), Bytes::from_static(&[1, 2, 3]));
        let mut cursor = Cursor::new(data.clone());
        cursor.set_position(2);
        assert_eq!(cursor.into_bytes(), Bytes::from_static(&[1, 2, 3]));
        assert_eq!(Cursor::from_bytes(data.clone()).into_inner(), data);
        // And the results of apply survive the trip, as everything openraft sends.
        roundtrip(CommandResult { revision: 7, result: Err(detcd_core::Error::KeyNotFound) });
    }
}
