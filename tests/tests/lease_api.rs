//! etcd's Lease gRPC service spoken directly (as clientv3 does), against
//! detcd and against the real etcd 3.4: the same requests must get the same
//! answers. A lease with an explicit ID has the same ID on both servers.

use detcd_core::request::{Command, LeaseCheckpoint};
use detcd_net::etcd::etcdserverpb::{self as pb, lease_client::LeaseClient};
use detcd_server::clock::Clock;
use detcd_tests::{Detcd, Etcd};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::transport::Channel;

const ID: i64 = 0x1234_abcd;
const UNKNOWN: i64 = 999;
/// Bounds every wait on a server.
const WAIT: Duration = Duration::from_secs(10);

async fn client(endpoint: SocketAddr) -> LeaseClient<Channel> {
    LeaseClient::connect(format!("http://{endpoint}")).await.expect("connects")
}

/// A status as (code, message), the parts a client sees.
fn err(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// A keep-alive stream driven one request at a time.
struct KeepAlive {
    requests: Option<mpsc::Sender<pb::LeaseKeepAliveRequest>>,
    responses: tonic::Streaming<pb::LeaseKeepAliveResponse>,
}

impl KeepAlive {
    /// Opens a stream whose first request renews `first`, and returns its
    /// answer too: etcd's server sends the response headers with its first
    /// answer, so the call only completes once a request is in.
    async fn open(c: &mut LeaseClient<Channel>, first: i64) -> (KeepAlive, (i64, i64, i64)) {
        let (tx, rx) = mpsc::channel(4);
        tx.send(pb::LeaseKeepAliveRequest { id: first }).await.expect("queued");
        let requests = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let opened = tokio::time::timeout(WAIT, c.lease_keep_alive(requests)).await.expect("opened in time");
        let mut ka = KeepAlive { requests: Some(tx), responses: opened.expect("stream opens").into_inner() };
        let answer = ka.answer().await;
        (ka, answer)
    }

    /// Sends a keep-alive for `id`; the answer as (revision, ID, TTL).
    async fn renew(&mut self, id: i64) -> (i64, i64, i64) {
        let tx = self.requests.as_ref().expect("open");
        tx.send(pb::LeaseKeepAliveRequest { id }).await.expect("stream open");
        self.answer().await
    }

    async fn answer(&mut self) -> (i64, i64, i64) {
        let r = tokio::time::timeout(WAIT, self.responses.message()).await.expect("answered in time");
        let r = r.expect("no error").expect("a response");
        (r.header.expect("a header").revision, r.id, r.ttl)
    }

    /// Ends our side; the server's side must end too.
    async fn close(mut self) -> bool {
        self.requests = None;
        let end = tokio::time::timeout(WAIT, self.responses.message()).await.expect("ended in time");
        matches!(end, Ok(None))
    }
}

/// The session's observations, one line each.
async fn session(endpoint: SocketAddr) -> Vec<String> {
    let mut c = client(endpoint).await;
    let mut seen = Vec::new();
    let grant = |ttl, id| pb::LeaseGrantRequest { ttl, id };
    let r = c.lease_grant(grant(10, ID)).await.map(|r| r.into_inner());
    seen.push(format!("grant {:?}", r.map(|r| (r.header.unwrap().revision, r.id, r.ttl, r.error)).map_err(err)));
    let r = c.lease_grant(grant(20, ID)).await;
    seen.push(format!("grant again {:?}", r.map(|_| ()).map_err(err)));
    let r = c.lease_grant(grant(9_000_000_001, 0)).await;
    seen.push(format!("grant too long {:?}", r.map(|_| ()).map_err(err)));

    let (mut ka, first) = KeepAlive::open(&mut c, ID).await;
    seen.push(format!("keep-alive {first:?}"));
    seen.push(format!("keep-alive unknown {:?}", ka.renew(UNKNOWN).await));
    seen.push(format!("keep-alive again {:?}", ka.renew(ID).await));
    seen.push(format!("keep-alive stream ends with ours: {}", ka.close().await));

    let ttl = |id, keys| pb::LeaseTimeToLiveRequest { id, keys };
    let r = c.lease_time_to_live(ttl(ID, true)).await.expect("time to live").into_inner();
    // Whole seconds left: 9 or 10 right after a renewal.
    let remaining = if (9..=10).contains(&r.ttl) { "9..10".to_string() } else { r.ttl.to_string() };
    seen.push(format!("ttl {:?} {remaining}", (r.header.unwrap().revision, r.id, r.granted_ttl, r.keys)));
    let r = c.lease_time_to_live(ttl(UNKNOWN, true)).await.expect("time to live").into_inner();
    seen.push(format!("ttl unknown {:?}", (r.header.unwrap().revision, r.id, r.ttl, r.granted_ttl, r.keys)));

    let r = c.lease_leases(pb::LeaseLeasesRequest {}).await.expect("leases").into_inner();
    seen.push(format!("leases {:?}", r.leases.iter().map(|l| l.id).collect::<Vec<_>>()));

    let revoke = |id| pb::LeaseRevokeRequest { id };
    let r = c.lease_revoke(revoke(ID)).await.map(|r| r.into_inner().header.unwrap().revision);
    seen.push(format!("revoke {:?}", r.map_err(err)));
    let r = c.lease_revoke(revoke(ID)).await.map(|_| ());
    seen.push(format!("revoke again {:?}", r.map_err(err)));
    let r = c.lease_leases(pb::LeaseLeasesRequest {}).await.expect("leases").into_inner();
    seen.push(format!("leases after revoke {}", r.leases.len()));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_service_matches_real_etcd() {
    let detcd = Detcd::start().await;
    let etcd = tokio::task::spawn_blocking(Etcd::start).await.unwrap();
    let bound = Duration::from_secs(120);
    let want = tokio::time::timeout(bound, session(etcd.client)).await.expect("etcd answers in time");
    let got = tokio::time::timeout(bound, session(detcd.client)).await.expect("detcd answers in time");
    for (w, g) in want.iter().zip(&got) {
        eprintln!("etcd:  {w}\ndetcd: {g}");
    }
    // The oracle really answered (a comparison of two failures proves nothing).
    assert_eq!(want[0], format!("grant Ok((1, {ID}, 10, \"\"))"));
    assert_eq!(want[1], "grant again Err(\"FailedPrecondition: etcdserver: lease already exists\")");
    assert_eq!(want[3], format!("keep-alive (1, {ID}, 10)"));
    assert_eq!(want[4], format!("keep-alive unknown (1, {UNKNOWN}, 0)"));
    assert_eq!(want[8], format!("ttl unknown (1, {UNKNOWN}, -1, 0, [])"));
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_resets_a_checkpointed_remaining_ttl_in_the_background() {
    let detcd = Detcd::start().await;
    let mut c = client(detcd.client).await;
    c.lease_grant(pb::LeaseGrantRequest { ttl: 60, id: ID }).await.expect("granted");
    // A checkpoint left 5 s: a new leader would restart the lease from it.
    let cp = Command::LeaseCheckpoint(vec![LeaseCheckpoint { id: ID, remaining_ttl: 5 }]);
    detcd.node.write(cp).await.expect("checkpointed");
    let remaining = || detcd.node.shared().state().lessor().get(ID).expect("lease").remaining_ttl;
    assert_eq!(remaining(), 5);

    let (mut ka, first) = KeepAlive::open(&mut c, ID).await;
    assert_eq!(first.2, 60);
    // The renewal proposes a checkpoint of 0, so the full TTL counts again.
    let deadline = Instant::now() + WAIT;
    while remaining() != 0 {
        assert!(Instant::now() < deadline, "the checkpoint was not reset");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Once reset, renewals propose nothing more.
    let index = detcd.node.shared().state().applied_index();
    assert_eq!(ka.renew(ID).await.2, 60);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(detcd.node.shared().state().applied_index(), index);
    assert!(ka.close().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_waits_for_the_leaders_lessor_boundedly() {
    let detcd = Detcd::start().await;
    let mut c = client(detcd.client).await;
    c.lease_grant(pb::LeaseGrantRequest { ttl: 30, id: ID }).await.expect("granted");
    let lessor_primary = |primary: bool| {
        let mut state = detcd.node.shared().state();
        if primary {
            state.lessor_mut().promote(detcd.node.clock().now(), 0);
        } else {
            state.lessor_mut().demote();
        }
    };

    // The leader whose lessor is not promoted yet (as right after an
    // election): the keep-alive waits for the promotion.
    lessor_primary(false);
    let started = Instant::now();
    let promote_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        lessor_primary(true);
    };
    let ((_, answer), ()) = tokio::join!(KeepAlive::open(&mut c, ID), promote_later);
    assert_eq!(answer, (1, ID, 30));
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Never promoted: after a bounded wait, etcd's "no leader", and the
    // stream ends.
    lessor_primary(false);
    let (tx, rx) = mpsc::channel(1);
    tx.send(pb::LeaseKeepAliveRequest { id: ID }).await.unwrap();
    let requests = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let started = Instant::now();
    let mut responses = c.lease_keep_alive(requests).await.expect("stream opens").into_inner();
    let failed = tokio::time::timeout(WAIT, responses.message()).await.expect("answered in time");
    let status = failed.expect_err("no renewal without a primary lessor");
    assert_eq!((status.code(), status.message()), (tonic::Code::Unavailable, "etcdserver: no leader"));
    assert!(started.elapsed() < WAIT);
    lessor_primary(true);
}
