//! The peer RPC's server side against one real member on 127.0.0.1: what
//! it answers to well-formed requests through openraft's network, and what
//! it refuses (another member's mail, undecodable bytes, a cut snapshot).

use bytes::Bytes;
use detcd_net::peer::{self, RaftRequest};
use detcd_server::clock::NodeClock;
use detcd_server::raft::network::{PeerNetConfig, PeerNetworkFactory};
use detcd_server::raft::peer_server::{PeerServeConfig, PeerServer};
use detcd_server::raft::runtime::DetcdRuntime;
use detcd_server::raft::snapshot::SnapshotData;
use detcd_server::raft::state_machine::StateMachineStore;
use detcd_server::raft::store::{open_stores, StoreConfig};
use detcd_server::raft::types::{MemberId, MemberNode, TypeConfig};
use detcd_server::raft::wire::{self, Addressed, Reply, SnapshotHeader};
use detcd_server::storage::SimDisk;
use openraft::errors::RPCError;
use openraft::impls::Vote;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{Config, Raft};
use openraft_rt::WatchReceiver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type NodeRaft = Raft<TypeConfig, StateMachineStore>;

/// Member 7, alone and uninitialized, serving the peer RPC.
async fn member() -> (NodeRaft, PeerServer, SocketAddr) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let disk = SimDisk::new();
    let (log, sm) =
        open_stores(Arc::new(disk), Path::new("/data"), StoreConfig::default(), Arc::new(NodeClock::new())).unwrap();
    let config = Arc::new(Config::default().validate().unwrap());
    let network = PeerNetworkFactory::<SnapshotData>::new(7, PeerNetConfig::default());
    let raft = DetcdRuntime::scope(7, Raft::new(7, config, network, log, sm)).await.unwrap();
    let server = PeerServer::start(raft.clone(), addr, PeerServeConfig::default()).await.unwrap();
    // `start` returns once the serving task is spawned, not once it listens;
    // the tests' first request must not race the bind.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "the peer server never listened on {addr}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (raft, server, addr)
}

fn option() -> RPCOption {
    RPCOption::new(Duration::from_secs(5))
}

fn node(addr: SocketAddr) -> MemberNode {
    MemberNode { name: "m7".into(), peer_urls: vec![format!("http://{addr}")], client_urls: vec![] }
}

fn vote_request(term: u64, from: MemberId) -> VoteRequest<TypeConfig> {
    VoteRequest::new(Vote::new(term, from), None)
}

fn raw_client(addr: SocketAddr) -> peer::RaftPeerClient<tonic::transport::Channel> {
    peer::client(&peer::endpoint(&format!("http://{addr}"), Duration::from_secs(1)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_answers_through_openraft_network() {
    let (raft, server, addr) = member().await;
    let mut factory = PeerNetworkFactory::<SnapshotData>::new(1, PeerNetConfig::default());
    let mut net = factory.new_client(7, &node(addr)).await;

    // A candidate with a higher term and a log at least as long gets the vote.
    let resp = net.vote(vote_request(3, 1), option()).await.expect("vote");
    assert!(resp.vote_granted && resp.is_granted_to(&Vote::new(3, 1)), "{resp:?}");
    raft.wait(Some(Duration::from_secs(5))).vote(Vote::new(3, 1), "voted").await.expect("the vote is cast");
    // Pre-Vote is answered and changes nothing.
    net.pre_vote(vote_request(4, 2), option()).await.expect("pre-vote");
    assert_eq!(raft.metrics().borrow_watched().vote, Vote::new(3, 1));
    // A lower term is refused, and told the member's vote.
    let resp = net.vote(vote_request(2, 2), option()).await.expect("vote");
    assert!(!resp.vote_granted, "{resp:?}");
    assert_eq!(resp.vote, Vote::new(3, 1));

    // Once its raft stopped, the member answers with its fatal error, which
    // openraft sees as unreachable.
    raft.shutdown().await.unwrap();
    match net.vote(vote_request(5, 1), option()).await {
        Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("raft"), "{e}"),
        other => panic!("{other:?}"),
    }
    // And with the server gone, the address is unreachable.
    server.stop(Duration::from_secs(5)).await.unwrap();
    assert!(matches!(net.vote(vote_request(5, 1), option()).await, Err(RPCError::Unreachable(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_refuses_what_is_not_for_it() {
    let (raft, server, addr) = member().await;
    let mut client = raw_client(addr);

    // Well-formed and addressed to member 7: an encoded reply.
    let data = wire::encode(&Addressed { to: 7, msg: vote_request(3, 1) }).unwrap();
    let reply = client.vote(RaftRequest { data }).await.expect("vote").into_inner();
    let reply: Reply<VoteResponse<TypeConfig>> = wire::decode(&reply.data).unwrap();
    assert!(reply.unwrap().vote_granted);
    // Metrics follow the vote asynchronously: wait until they show it.
    raft.wait(Some(Duration::from_secs(5))).vote(Vote::new(3, 1), "voted").await.expect("the vote is cast");

    // Meant for member 8: refused, and the vote is not cast.
    let data = wire::encode(&Addressed { to: 8, msg: vote_request(9, 1) }).unwrap();
    let status = client.vote(RaftRequest { data }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(raft.metrics().borrow_watched().vote, Vote::new(3, 1));

    // Bytes that are no request.
    let status = client.append_entries(RaftRequest { data: Bytes::from_static(b"\xff\xff\xff") }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // A snapshot whose stream ends before the length its header gave.
    let header = SnapshotHeader { to: 7, vote: Vote::new_committed(3, 1), meta: Default::default(), len: 100 };
    let chunks = peer::snapshot_chunks(wire::encode(&header).unwrap(), Bytes::from(vec![0u8; 10]), 4);
    let status = client.install_snapshot(futures::stream::iter(chunks)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    assert!(status.message().contains("10 of 100"), "{status:?}");

    // A stream with no header at all.
    let chunks = vec![peer::SnapshotChunk { header: Bytes::new(), data: Bytes::from_static(b"x") }];
    let status = client.install_snapshot(futures::stream::iter(chunks)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    raft.shutdown().await.unwrap();
    server.stop(Duration::from_secs(5)).await.unwrap();
}
