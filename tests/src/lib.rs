//! detcd-tests: end-to-end tests over real processes: the real `etcdctl`
//! and the real `etcd` (the compatibility oracle) against detcd.
//!
//! This library holds what the tests share: a detcd member started in this
//! process with its client API on a loopback port, a real etcd started as a
//! child process, and a runner for etcdctl.

use detcd_server::api::{self, ApiLimits, ClientApi};
use detcd_server::clock::NodeClock;
use detcd_server::node::{Node, NodeConfig};
use detcd_server::storage::{Disk, SimDisk};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loopback address nothing listens on now.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A single-member detcd with its client API on `client`.
pub struct Detcd {
    pub node: Arc<Node>,
    pub client: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Detcd {
    /// Starts a member named `default` (etcd's defaults, so its IDs equal
    /// those of an etcd started with the same URLs) on a simulated disk.
    pub async fn start() -> Detcd {
        // Ports below the ephemeral range, held until the member takes them
        // (as `start_cluster` does), so nothing else can take them between.
        let (peer_listener, client_listener) = (bind_below_ephemeral(), bind_below_ephemeral());
        let (peer, client) = (peer_listener.local_addr().unwrap(), client_listener.local_addr().unwrap());
        let mut config = NodeConfig::single("default", PathBuf::from("/data"), peer);
        config.advertise_client_urls = vec![format!("http://{client}")];
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        drop(peer_listener);
        let node = Arc::new(Node::start(config, disk, Arc::new(NodeClock::new()), 1).await.expect("detcd starts"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !node.is_leader() {
            assert!(Instant::now() < deadline, "detcd did not become leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let api = ClientApi::new(node.clone(), ApiLimits::default());
        drop(client_listener);
        tokio::spawn(api::serve(api, client, async move {
            let _ = rx.await;
        }));
        wait_listening(client);
        Detcd { node, client, stop: Some(tx) }
    }
}

impl Drop for Detcd {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real etcd 3.4 (Debian's etcd-server), single member, on loopback
/// ports and a temporary data dir; killed on drop.
pub struct Etcd {
    pub client: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Etcd {
    pub fn start() -> Etcd {
        let (client, peer) = (free_addr(), free_addr());
        let dir = std::env::temp_dir().join(format!("detcd-oracle-{}-{}", std::process::id(), client.port()));
        let child = Command::new("etcd")
            .args(["--name", "default", "--data-dir"])
            .arg(&dir)
            .args(["--listen-client-urls", &format!("http://{client}")])
            .args(["--advertise-client-urls", &format!("http://{client}")])
            .args(["--listen-peer-urls", &format!("http://{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://{peer}")])
            .args(["--initial-cluster", &format!("default=http://{peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the real etcd (apt-get install etcd-server) runs");
        wait_listening(client);
        let etcd = Etcd { client, child, dir };
        // Listening is not serving: wait until a read succeeds.
        let deadline = Instant::now() + Duration::from_secs(20);
        while etcdctl(etcd.client, &["get", "probe"], None).code != 0 {
            assert!(Instant::now() < deadline, "etcd did not start serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one etcdctl run printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    /// The `Error: ...` lines only: etcdctl's JSON log lines carry
    /// timestamps and addresses.
    pub errors: Vec<String>,
}

/// Runs the real etcdctl (API v3) against `endpoint`, feeding `stdin`.
pub fn etcdctl(endpoint: SocketAddr, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl (apt-get install etcd-client) runs");
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().expect("stdin piped");
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("etcdctl finishes");
    let _ = writer.join();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        errors: String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .map(str::to_string)
            .collect(),
    }
}

/// Runs `etcdctl watch ...` against `endpoint` and collects its output until
/// it has printed `lines` lines of stdout, exits by itself, or `limit`
/// passes; then stops it. `before_wait` runs once the watch is started
/// (e.g. to write the events it should see).
pub fn etcdctl_watch(
    endpoint: SocketAddr,
    args: &[&str],
    lines: usize,
    limit: Duration,
    before_wait: impl FnOnce(),
) -> Output {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("watch")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl runs");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    before_wait();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut ended = false;
    while got.len() < lines {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => got.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
            // Its stdout closed: the process is exiting by itself.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                ended = true;
                break;
            }
        }
    }
    let exited = if ended { child.wait().ok() } else { child.try_wait().ok().flatten() };
    if exited.is_none() {
        let _ = child.kill();
    }
    let status = child.wait().expect("etcdctl ends");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    Output {
        code: if exited.is_some() { status.code().unwrap_or(-1) } else { 0 },
        stdout: got.iter().map(|l| format!("{l}\n")).collect(),
        errors: stderr
            .lines()
            .filter(|l| l.starts_with("Error:") || l.starts_with("watch was canceled"))
            .map(str::to_string)
            .collect(),
    }
}

/// A member of an in-process detcd cluster, with its client API.
pub struct Member {
    pub node: Arc<Node>,
    pub client: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A loopback listener on a free port below Linux's ephemeral range
/// (32768 and up), which the kernel never hands to a connecting socket.
pub fn bind_below_ephemeral() -> std::net::TcpListener {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize
        + std::process::id() as usize;
    (0..2000)
        .map(|i| 10_000 + (seed + i * 7919) % 22_000)
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port as u16)).ok())
        .expect("a free port below 32000")
}

/// Starts an `n`-member detcd cluster in this process (simulated disks,
/// peer RPC and client API on loopback).
pub async fn start_cluster(n: usize) -> Vec<Member> {
    // The ports stay bound until their server takes them, and are below
    // the ephemeral range, so no outgoing connection can take them between.
    let bind = bind_below_ephemeral;
    let mut listeners: Vec<(std::net::TcpListener, std::net::TcpListener)> = (0..n).map(|_| (bind(), bind())).collect();
    let addr = |l: &std::net::TcpListener| l.local_addr().unwrap();
    let initial: Vec<String> =
        listeners.iter().enumerate().map(|(i, (p, _))| format!("m{i}=http://{}", addr(p))).collect();
    let mut members = Vec::new();
    for (i, (peer, client)) in listeners.drain(..).enumerate() {
        let (peer_addr, client_addr) = (addr(&peer), addr(&client));
        let mut config = NodeConfig::single(&format!("m{i}"), PathBuf::from("/data"), peer_addr);
        config.initial_cluster = initial.join(",");
        config.advertise_client_urls = vec![format!("http://{client_addr}")];
        let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
        drop(peer);
        let node = Node::start(config, disk, Arc::new(NodeClock::new()), i as u64 + 1).await.expect("member starts");
        let node = Arc::new(node);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let api = ClientApi::new(node.clone(), ApiLimits::default());
        drop(client);
        let server = tokio::spawn(api::serve(api, client_addr, async move {
            let _ = stopped.await;
        }));
        until("the client API to listen", || std::net::TcpStream::connect(client_addr).is_ok()).await;
        assert!(!server.is_finished(), "the client API serves on {client_addr}");
        members.push(Member { node, client: client_addr, _stop: stop });
    }
    members
}

/// Polls `cond` until it holds, within 30 s.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
