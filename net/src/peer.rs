//! The peer RPC (`proto/raftpeer.proto`): the generated client and server
//! and the few helpers around them.
//!
//! The messages are opaque bytes; what they hold (postcard encodings of
//! openraft's types) is the server crate's business. Everything here is
//! built on the `tonic` and `tokio` crate names, which are madsim's drop-ins:
//! real gRPC over TCP normally, simulated under `--cfg madsim`.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The generated messages, client and server of package `detcdpeer`.
pub mod proto {
    tonic::include_proto!("detcdpeer");
}

pub use proto::raft_peer_client::RaftPeerClient;
pub use proto::raft_peer_server::{RaftPeer, RaftPeerServer};
pub use proto::{RaftReply, RaftRequest, SnapshotChunk};

/// etcd's default peer port.
pub const DEFAULT_PEER_PORT: u16 = 2380;

/// The largest message either side sends or accepts. Snapshots travel in
/// chunks far below this; an AppendEntries batch is bounded by openraft's
/// `max_payload_entries` times etcd's request size limit (1.5 MiB).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// How big a snapshot chunk is when openraft does not say.
pub const DEFAULT_SNAPSHOT_CHUNK_SIZE: usize = 1 << 20;

/// A peer URL this transport cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPeerUrl {
    pub url: String,
    pub reason: &'static str,
}

impl fmt::Display for BadPeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad peer URL {:?}: {}", self.url, self.reason)
    }
}

impl std::error::Error for BadPeerUrl {}

/// The endpoint for a peer URL as etcd writes them (`http://host:port`; a
/// bare `host:port` is taken as http). TLS (`https`) is not supported yet.
/// `connect_timeout` bounds establishing the connection.
pub fn endpoint(url: &str, connect_timeout: Duration) -> Result<Endpoint, BadPeerUrl> {
    let bad = |reason| BadPeerUrl { url: url.to_string(), reason };
    let url = url.trim();
    let full = match url.split_once("://") {
        Some(("http", rest)) if !rest.is_empty() => url.to_string(),
        Some(("https", _)) => return Err(bad("https peer URLs are not supported yet")),
        Some(_) => return Err(bad("the scheme must be http")),
        None if !url.is_empty() => format!("http://{url}"),
        None => return Err(bad("empty")),
    };
    let ep = Endpoint::from_shared(full).map_err(|_| bad("not a URI"))?;
    if ep.uri().port_u16().is_none() {
        return Err(bad("no port"));
    }
    Ok(ep.connect_timeout(connect_timeout).tcp_nodelay(true))
}

/// A client over a channel that connects on first use and reconnects after
/// a failure (tonic's lazy channel), with detcd's message size limits.
pub fn client(endpoint: &Endpoint) -> RaftPeerClient<Channel> {
    RaftPeerClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// Serves `svc` on `addr`, with detcd's message size limits, until
/// `shutdown` completes. Fails at once if the address cannot be bound.
/// (The service is built here rather than returned: real and simulated
/// tonic name its type differently.)
pub async fn serve<S: RaftPeer>(
    svc: S,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let svc = RaftPeerServer::new(svc)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    tonic::transport::Server::builder().add_service(svc).serve_with_shutdown(addr, shutdown).await
}

/// The chunks that carry one snapshot: the first holds `header`, each holds
/// up to `chunk_size` bytes of `data` (slices of it, no copy). There is
/// always at least one chunk, so an empty snapshot still sends its header.
pub fn snapshot_chunks(header: Bytes, data: Bytes, chunk_size: usize) -> Vec<SnapshotChunk> {
    let chunk_size = chunk_size.max(1);
    let mut chunks = Vec::with_capacity(data.len() / chunk_size + 1);
    let mut header = Some(header);
    let mut at = 0;
    loop {
        let end = (at + chunk_size).min(data.len());
        chunks.push(SnapshotChunk { header: header.take().unwrap_or_default(), data: data.slice(at..end) });
        at = end;
        if at >= data.len() {
            return chunks;
        }
    }
}

/// Why a received snapshot stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStreamError {
    /// The stream ended before its first chunk.
    Empty,
    /// The first chunk had no header, or a later one had one.
    BadHeader,
    /// The data grew past the limit.
    TooLarge { limit: usize },
    /// The transport failed (or the sender gave up) mid-stream.
    Transport(String),
}

impl fmt::Display for SnapshotStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotStreamError::Empty => f.write_str("snapshot stream: no chunk"),
            SnapshotStreamError::BadHeader => f.write_str("snapshot stream: header missing or repeated"),
            SnapshotStreamError::TooLarge { limit } => write!(f, "snapshot stream: more than {limit} bytes"),
            SnapshotStreamError::Transport(e) => write!(f, "snapshot stream: {e}"),
        }
    }
}

impl std::error::Error for SnapshotStreamError {}

impl From<SnapshotStreamError> for tonic::Status {
    fn from(e: SnapshotStreamError) -> Self {
        match e {
            SnapshotStreamError::Transport(_) => tonic::Status::aborted(e.to_string()),
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

/// Reassembles a snapshot stream into its header and data, refusing more
/// than `limit` bytes of data.
pub async fn collect_snapshot<S, E>(stream: S, limit: usize) -> Result<(Bytes, Vec<u8>), SnapshotStreamError>
where
    S: Stream<Item = Result<SnapshotChunk, E>>,
    E: fmt::Display,
{
    let mut stream = std::pin::pin!(stream);
    let first = match stream.next().await {
        None => return Err(SnapshotStreamError::Empty),
        Some(Err(e)) => return Err(SnapshotStreamError::Transport(e.to_string())),
        Some(Ok(c)) => c,
    };
    if first.header.is_empty() {
        return Err(SnapshotStreamError::BadHeader);
    }
    let mut data = Vec::new();
    let push = |data: &mut Vec<u8>, bytes: &[u8]| {
        if data.len() + bytes.len() > limit {
            return Err(SnapshotStreamError::TooLarge { limit });
        }
        data.extend_from_slice(bytes);
        Ok(())
    };
    push(&mut data, &first.data)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SnapshotStreamError::Transport(e.to_string()))?;
        if !chunk.header.is_empty() {
            return Err(SnapshotStreamError::BadHeader);
        }
        push(&mut data, &chunk.data)?;
    }
    Ok((first.header, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: Vec<SnapshotChunk>, limit: usize) -> Result<(Bytes, Vec<u8>), SnapshotStreamError> {
        let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, String>));
        futures::executor::block_on(collect_snapshot(stream, limit))
    }

    #[test]
    fn chunks_reassemble_to_the_snapshot() {
        let data: Bytes = (0..10_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
        for size in [1, 7, 1000, 9999, 10_000, 10_001, 1 << 20] {
            let chunks = snapshot_chunks(Bytes::from_static(b"hdr"), data.clone(), size);
            assert_eq!(chunks.len(), data.len().div_ceil(size));
            assert!(chunks.iter().all(|c| c.data.len() <= size));
            assert_eq!(chunks[0].header, Bytes::from_static(b"hdr"));
            assert!(chunks[1..].iter().all(|c| c.header.is_empty()));
            let (header, back) = collect(chunks, usize::MAX).unwrap();
            assert_eq!(header, Bytes::from_static(b"hdr"));
            assert_eq!(back, data);
        }
    }

    #[test]
    fn an_empty_snapshot_is_one_chunk_with_its_header() {
        let chunks = snapshot_chunks(Bytes::from_static(b"h"), Bytes::new(), 0);
        assert_eq!(chunks, vec![SnapshotChunk { header: Bytes::from_static(b"h"), data: Bytes::new() }]);
        assert_eq!(collect(chunks, 0).unwrap(), (Bytes::from_static(b"h"), vec![]));
    }

    #[test]
    fn malformed_streams_are_refused() {
        assert_eq!(collect(vec![], 10), Err(SnapshotStreamError::Empty));
        let no_header = SnapshotChunk { header: Bytes::new(), data: Bytes::from_static(b"x") };
        assert_eq!(collect(vec![no_header], 10), Err(SnapshotStreamError::BadHeader));
        let mut twice = snapshot_chunks(Bytes::from_static(b"h"), Bytes::from_static(b"abcd"), 2);
        twice[1].header = Bytes::from_static(b"h");
        assert_eq!(collect(twice, 10), Err(SnapshotStreamError::BadHeader));
        let big = snapshot_chunks(Bytes::from_static(b"h"), Bytes::from(vec![0; 11]), 4);
        assert_eq!(collect(big, 10), Err(SnapshotStreamError::TooLarge { limit: 10 }));
        let failing = futures::stream::iter(vec![
            Ok(SnapshotChunk { header: Bytes::from_static(b"h"), data: Bytes::new() }),
            Err("reset"),
        ]);
        let got = futures::executor::block_on(collect_snapshot(failing, 10));
        assert_eq!(got, Err(SnapshotStreamError::Transport("reset".into())));
    }

    #[test]
    fn peer_urls() {
        let t = Duration::from_secs(1);
        assert_eq!(endpoint("http://127.0.0.1:2380", t).unwrap().uri().to_string(), "http://127.0.0.1:2380/");
        assert_eq!(endpoint("10.0.0.2:2380", t).unwrap().uri().port_u16(), Some(2380));
        assert!(endpoint("https://a:2380", t).is_err());
        assert!(endpoint("unix:///x", t).is_err());
        assert!(endpoint("http://a", t).is_err());
        assert!(endpoint("", t).is_err());
    }
}
