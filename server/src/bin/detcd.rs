//! `detcd`: the server, a drop-in for `etcd` 3.4.
//!
//! Parses etcd's flags, `ETCD_*` variables or `--config-file`
//! (`detcd_server::config`), logs at `--log-level` to stderr, creates the
//! data directory, starts the member (`Node::start`: storage, openraft, the
//! peer server, bootstrap of a new cluster) on a multi-threaded tokio
//! runtime, and runs until SIGINT or SIGTERM, then shuts the member down and
//! exits 0. A configuration or start error exits 1 with the reason.

use detcd_server::api::{self, ApiLimits, ClientApi};
use detcd_server::clock::NodeClock;
use detcd_server::cluster::format_id;
use detcd_server::config::{self, ConfigError, Invocation, ServerConfig};
use detcd_server::node::Node;
use detcd_server::storage::RealDisk;
use openraft::ServerState;
use openraft_rt::WatchReceiver;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{error, info, warn, Level};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

fn main() -> ExitCode {
    let env: BTreeMap<String, String> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    let loaded = match config::parse(std::env::args_os(), &env) {
        Ok(Invocation::Serve(loaded)) => *loaded,
        Ok(Invocation::Version) => {
            print!("{}", config::version_text());
            return ExitCode::SUCCESS;
        }
        // --help (exit 0) or a command line clap refused (exit 2), printed as clap does.
        Err(ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("detcd: error verifying flags, {e}. See 'detcd --help'.");
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.config;
    init_logging(config.log_level.tracing_level());
    for w in &loaded.warnings {
        warn!("{w}");
    }
    if let Err(e) = create_data_dir(&config) {
        error!("cannot create data dir {}: {e}", config.data_dir.display());
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `level`; openraft's own logs only from warnings up
/// unless at debug (detcd logs the leader changes itself).
fn init_logging(level: Level) {
    let raft_level = if level >= Level::DEBUG { level } else { level.min(Level::WARN) };
    let targets = Targets::new().with_default(level).with_target("openraft", raft_level);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(targets);
    tracing::subscriber::set_global_default(subscriber).expect("logging is set up once");
}

/// etcd creates its data dir readable by its owner only.
fn create_data_dir(config: &ServerConfig) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&config.data_dir)
}

async fn run(config: ServerConfig) -> Result<(), String> {
    // Watch the signals before anything else, so one that comes while the
    // member starts is not fatal.
    let signals = Signals::new()?;
    for line in config::version_text().lines() {
        info!("{line}");
    }
    info!("name = {}", config.name);
    info!("data dir = {}", config.data_dir.display());
    info!(
        "heartbeat = {}ms, election = {}ms",
        config.heartbeat_interval.as_millis(),
        config.election_timeout.as_millis()
    );
    info!("snapshot count = {}", config.snapshot_count);
    info!(
        "initial cluster = {} ({:?}, token {:?})",
        config.initial_cluster, config.initial_cluster_state, config.initial_cluster_token
    );
    // Openraft's election timeouts are drawn from this seed: a fresh one per
    // process (the standard library's randomly keyed hasher).
    let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();

    let node = Node::start(config.node_config(), Arc::new(RealDisk), Arc::new(NodeClock::new()), seed)
        .await
        .map_err(|e| format!("cannot start the member: {e}"))?;
    info!(
        "starting member {} in cluster {}, listening for peers on {}",
        format_id(node.id()),
        format_id(node.cluster_id()),
        config.listen_peer_addr
    );
    let node = Arc::new(node);
    let leader_log = tokio::spawn(log_leader_changes(node.clone()));
    let clients = serve_clients(&node, &config).await?;

    let signal = signals.wait().await;
    info!("received {signal}, shutting down member {}", format_id(node.id()));
    clients.stop().await;
    leader_log.abort();
    let _ = leader_log.await;
    match Arc::try_unwrap(node) {
        Ok(node) => node.shutdown().await,
        Err(node) => {
            // A client service kept a handle: stop consensus at least.
            warn!("the member is still shared at shutdown; stopping raft only");
            let _ = node.raft().shutdown().await;
        }
    }
    info!("stopped");
    Ok(())
}

// ---------------------------------------------------------------------------
// CLIENT SERVICES: where server/src/api/ plugs in.
//
// `serve_clients` is to start the etcd v3 gRPC services (KV, Watch, Lease,
// Cluster, Maintenance, Auth, Lock, Election) and the HTTP endpoints (v2
// keys when `config.enable_v2`, the v3 JSON gateway, /health, /version,
// /metrics) on `config.listen_client_addrs` (one per
// `config.listen_client_urls`), with `config.max_request_bytes`,
// `config.max_txn_ops` and `config.backend_quota()`. `ClientServices::stop`
// must stop them and drop every clone of the node they hold, so the member
// can be shut down cleanly.
// ---------------------------------------------------------------------------

/// The running client servers: one per `--listen-client-urls` address.
struct ClientServices {
    servers: Vec<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl ClientServices {
    /// Stops every server and waits for it, so no clone of the node is left.
    async fn stop(self) {
        for (stop, task) in self.servers {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// Starts the etcd v3 gRPC API on every client address. (Watch, Lease,
/// Cluster, Maintenance, Auth, Lock, Election and the HTTP endpoints are
/// still to come.)
async fn serve_clients(node: &Arc<Node>, config: &ServerConfig) -> Result<ClientServices, String> {
    let limits = ApiLimits {
        max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        txn: detcd_core::validate::Limits { max_txn_ops: usize::try_from(config.max_txn_ops).unwrap_or(usize::MAX) },
    };
    let mut servers = Vec::new();
    for (url, addr) in config.listen_client_urls.iter().zip(&config.listen_client_addrs) {
        // Bind once first, so a busy port is an error now, not in the task.
        drop(tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listen on {url}: {e}"))?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let api = ClientApi::new(node.clone(), limits);
        let addr = *addr;
        let task = tokio::spawn(async move {
            if let Err(e) = api::serve(api, addr, async move {
                let _ = stopped.await;
            })
            .await
            {
                warn!("client API on {addr} stopped: {e}");
            }
        });
        info!("serving client requests on {url}");
        servers.push((stop, task));
    }
    let advertised: Vec<String> = config.advertise_client_urls.iter().map(ToString::to_string).collect();
    info!("advertise client URLs = {}", advertised.join(","));
    Ok(ClientServices { servers })
}

/// Logs leader changes as etcd's raft does ("... elected leader ... at term").
async fn log_leader_changes(node: Arc<Node>) {
    let me = format_id(node.id());
    let mut metrics = node.raft().metrics();
    let mut last = None;
    loop {
        let (leader, term, state) = {
            let m = metrics.borrow_watched();
            (m.current_leader, m.current_term, m.state)
        };
        if leader != last {
            match leader {
                Some(l) => {
                    if state == ServerState::Leader {
                        info!("{me} became leader at term {term}");
                    }
                    info!("{me} elected leader {} at term {term}", format_id(l));
                }
                None => info!("{me} lost leader {} at term {term}", format_id(last.unwrap_or_default())),
            }
            last = leader;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// SIGTERM and SIGINT, caught.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?,
            int: signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?,
        })
    }

    /// Waits for either and says which came.
    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
