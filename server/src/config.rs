//! The server's configuration, as etcd 3.4 takes it: flags, `ETCD_*`
//! environment variables and the YAML config file, with etcd's names,
//! defaults and meanings.
//!
//! Precedence (etcd's): with a config file (`--config-file`, else
//! `ETCD_CONFIG_FILE`) the file's keys over the defaults, and every other
//! flag and variable ignored (with a warning). Without one: a flag on the
//! command line, else its `ETCD_*` variable (empty ones ignored), else the
//! default. Where etcd 3.4 refuses to start because a variable is shadowed by
//! a flag, detcd lets the flag win and warns.

mod file;
mod flags;
mod values;

#[cfg(test)]
mod tests;

pub use flags::{env_name, Flags, Origin};
pub use values::{parse_bool, parse_go_duration, parse_urls, Url};

use crate::cluster;
use crate::node::{ClusterState, NodeConfig};
use crate::raft::store::StoreConfig;
use flags::{describe, CommandLine, Setting, Settings};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// etcd's default backend quota (`--quota-backend-bytes=0`): 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Above this etcd warns that the quota exceeds the recommended maximum.
pub const MAX_QUOTA_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// etcd's longest election timeout.
pub const MAX_ELECTION_MS: u64 = 50_000;
/// etcd's `--initial-cluster` default, replaced by `${name}=${peer urls}`
/// when the name is not "default".
const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server.
    Serve(Box<Loaded>),
    /// `--version`.
    Version,
}

/// A valid configuration, and the warnings found on the way (to log once
/// logging is set up).
#[derive(Debug)]
pub struct Loaded {
    pub config: ServerConfig,
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum ConfigError {
    /// A command line clap could not parse, or `--help` (print it with
    /// `clap::Error::exit`).
    Usage(clap::Error),
    /// A value that is not valid.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(e) => write!(f, "{e}"),
            ConfigError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `--auto-compaction-mode` and `--auto-compaction-retention` together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Retention 0.
    Disabled,
    /// Keep this much history (periodic mode: "1" is one hour).
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(u64),
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// etcd's `panic` and `fatal`: only errors are logged.
    Panic,
    Fatal,
}

impl LogLevel {
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Panic | LogLevel::Fatal => tracing::Level::ERROR,
        }
    }
}

/// The server's configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client_urls: Vec<Url>,
    /// `listen_client_urls` as addresses to bind (`localhost` is 127.0.0.1).
    pub listen_client_addrs: Vec<SocketAddr>,
    pub advertise_client_urls: Vec<Url>,
    /// One URL: detcd's peer server listens on one address.
    pub listen_peer_urls: Vec<Url>,
    pub listen_peer_addr: SocketAddr,
    pub initial_advertise_peer_urls: Vec<Url>,
    /// As given, or computed as etcd does.
    pub initial_cluster: String,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    /// 0 on the command line is etcd's default, 100,000.
    pub snapshot_count: u64,
    /// As given: 0 is the default quota, negative disables it (see
    /// [`ServerConfig::backend_quota`]).
    pub quota_backend_bytes: i64,
    pub max_request_bytes: u64,
    pub max_txn_ops: u64,
    pub auto_compaction: AutoCompaction,
    pub enable_v2: bool,
    pub log_level: LogLevel,
    pub config_file: Option<PathBuf>,
}

/// Parses the command line (`args[0]` is the program) with `env` as the
/// process environment.
pub fn parse<I, T>(args: I, env: &BTreeMap<String, String>) -> Result<Invocation, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let cmd = CommandLine::parse(args).map_err(ConfigError::Usage)?;
    if cmd.version() {
        return Ok(Invocation::Version);
    }
    let mut warnings = Vec::new();
    let config_file =
        cmd.config_file().or_else(|| env.get("ETCD_CONFIG_FILE").filter(|f| !f.is_empty()).cloned()).map(PathBuf::from);
    let settings = match &config_file {
        Some(path) => {
            let ignored_flags: Vec<String> = cmd.given().keys().map(|k| format!("--{k}")).collect();
            let ignored_vars: Vec<&str> = env
                .iter()
                .filter(|(k, v)| k.starts_with("ETCD_") && *k != "ETCD_CONFIG_FILE" && !v.is_empty())
                .map(|(k, _)| k.as_str())
                .collect();
            if !ignored_flags.is_empty() || !ignored_vars.is_empty() {
                let all: Vec<&str> = ignored_flags.iter().map(String::as_str).chain(ignored_vars).collect();
                warnings.push(format!(
                    "loading the configuration from {}: ignoring {} (with a config file, etcd ignores other flags \
                     and environment variables)",
                    path.display(),
                    all.join(", ")
                ));
            }
            let mut settings = cmd.defaults();
            settings.extend(file::load(path, cmd.keys(), &mut warnings).map_err(ConfigError::Invalid)?);
            settings
        }
        None => cmd.with_env(env, &mut warnings),
    };
    let config = ServerConfig::from_settings(&settings, config_file, &mut warnings).map_err(ConfigError::Invalid)?;
    Ok(Invocation::Serve(Box::new(Loaded { config, warnings })))
}

/// Typed access to the raw settings, with messages naming where a bad value
/// came from.
struct Raw<'a>(&'a Settings);

impl Raw<'_> {
    fn setting(&self, key: &str) -> Option<&Setting> {
        self.0.get(key)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.setting(key).map(|s| s.value.as_str())
    }

    fn fail(&self, key: &str, why: impl fmt::Display) -> String {
        match self.setting(key) {
            Some(s) => format!("invalid value {:?} for {}: {why}", s.value, describe(key, &s.origin)),
            None => format!("--{key}: {why}"),
        }
    }

    fn required(&self, key: &str) -> Result<&str, String> {
        self.str(key).ok_or_else(|| format!("--{key} is not set"))
    }

    fn u64(&self, key: &str, unit: &str) -> Result<u64, String> {
        let v = self.required(key)?;
        v.trim().parse::<u64>().map_err(|_| self.fail(key, format!("expected a whole number of {unit}")))
    }

    fn millis(&self, key: &str) -> Result<Duration, String> {
        Ok(Duration::from_millis(self.u64(key, "milliseconds")?))
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        match self.str(key) {
            None => Ok(false),
            Some(v) => parse_bool(v.trim()).map_err(|e| self.fail(key, e)),
        }
    }

    fn urls(&self, key: &str) -> Result<Vec<Url>, String> {
        let urls = parse_urls(self.required(key)?).map_err(|e| self.fail(key, e))?;
        if let Some(u) = urls.iter().find(|u| u.scheme == "https") {
            return Err(tls_refusal(&describe(key, &self.setting(key).expect("parsed").origin), &u.to_string()));
        }
        Ok(urls)
    }
}

fn tls_refusal(what: &str, value: &str) -> String {
    format!(
        "TLS is not implemented in detcd yet: {what} is set ({value}); refusing to start rather than serve \
         plaintext"
    )
}

impl ServerConfig {
    fn from_settings(
        settings: &Settings,
        config_file: Option<PathBuf>,
        warnings: &mut Vec<String>,
    ) -> Result<ServerConfig, String> {
        let raw = Raw(settings);
        for key in
            ["cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file"]
        {
            if let Some(s) = raw.setting(key).filter(|s| !s.value.trim().is_empty()) {
                return Err(tls_refusal(&describe(key, &s.origin), &s.value));
            }
        }
        for key in ["client-cert-auth", "auto-tls", "peer-client-cert-auth", "peer-auto-tls"] {
            if raw.bool(key)? {
                return Err(tls_refusal(&describe(key, &raw.setting(key).expect("set").origin), "true"));
            }
        }

        let name = raw.required("name")?.to_string();
        let data_dir = match raw.str("data-dir").map(str::trim).filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(format!("{name}.detcd")),
        };

        let listen_client_urls = raw.urls("listen-client-urls")?;
        let listen_client_addrs = bind_addrs(&raw, "listen-client-urls", &listen_client_urls)?;
        let advertise_client_urls = raw.urls("advertise-client-urls").map_err(|e| {
            if raw.str("advertise-client-urls").is_some_and(|v| v.trim().is_empty()) {
                "--advertise-client-urls is required when --listen-client-urls is set explicitly".to_string()
            } else {
                e
            }
        })?;
        let listen_peer_urls = raw.urls("listen-peer-urls")?;
        let listen_peer_addr = match bind_addrs(&raw, "listen-peer-urls", &listen_peer_urls)?.as_slice() {
            [one] => *one,
            _ => return Err(raw.fail("listen-peer-urls", "detcd listens on exactly one peer URL")),
        };
        let initial_advertise_peer_urls = raw.urls("initial-advertise-peer-urls")?;
        for (key, urls) in [
            ("advertise-client-urls", &advertise_client_urls),
            ("initial-advertise-peer-urls", &initial_advertise_peer_urls),
        ] {
            if let Some(u) = urls.iter().find(|u| u.hostname().is_empty()) {
                return Err(raw.fail(key, format!("unexpected empty host ({u})")));
            }
        }

        let initial_cluster_state = match raw.required("initial-cluster-state")?.trim() {
            "new" => ClusterState::New,
            "existing" => ClusterState::Existing,
            _ => return Err(raw.fail("initial-cluster-state", "expected \"new\" or \"existing\"")),
        };
        let initial_cluster_token = raw.required("initial-cluster-token")?.to_string();
        let peer_urls: Vec<String> = initial_advertise_peer_urls.iter().map(Url::to_string).collect();
        let mut initial_cluster = raw.str("initial-cluster").unwrap_or(DEFAULT_INITIAL_CLUSTER).trim().to_string();
        if name != "default" && initial_cluster == DEFAULT_INITIAL_CLUSTER {
            initial_cluster = peer_urls.iter().map(|u| format!("{name}={u}")).collect::<Vec<_>>().join(",");
        }
        let members = cluster::parse_initial_cluster(&initial_cluster).map_err(|e| e.to_string())?;
        cluster::check_self(&members, &name, &peer_urls, &initial_cluster).map_err(|e| e.to_string())?;

        let heartbeat_interval = raw.millis("heartbeat-interval")?;
        let election_timeout = raw.millis("election-timeout")?;
        let (hb, el) = (heartbeat_interval.as_millis(), election_timeout.as_millis());
        if hb == 0 {
            return Err(raw.fail("heartbeat-interval", "--heartbeat-interval must be >0"));
        }
        if el == 0 {
            return Err(raw.fail("election-timeout", "--election-timeout must be >0"));
        }
        if 5 * hb > el {
            return Err(format!(
                "--election-timeout[{el}ms] should be at least as 5 times as --heartbeat-interval[{hb}ms]"
            ));
        }
        if el > u128::from(MAX_ELECTION_MS) {
            return Err(format!(
                "--election-timeout[{el}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms"
            ));
        }

        let snapshot_count = match raw.u64("snapshot-count", "entries")? {
            0 => 100_000,
            n => n,
        };
        let quota_backend_bytes = raw
            .required("quota-backend-bytes")?
            .trim()
            .parse::<i64>()
            .map_err(|_| raw.fail("quota-backend-bytes", "expected a whole number of bytes"))?;
        if quota_backend_bytes > 0 && quota_backend_bytes as u64 > MAX_QUOTA_BYTES {
            warnings.push(format!(
                "backend quota {quota_backend_bytes} exceeds maximum recommended quota {MAX_QUOTA_BYTES}"
            ));
        }
        let max_request_bytes = raw.u64("max-request-bytes", "bytes")?;
        let max_txn_ops = raw.u64("max-txn-ops", "operations")?;
        let auto_compaction = auto_compaction(&raw)?;
        let enable_v2 = raw.bool("enable-v2")?;
        let log_level = match raw.required("log-level")?.trim() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "panic" | "dpanic" => LogLevel::Panic,
            "fatal" => LogLevel::Fatal,
            _ => return Err(raw.fail("log-level", "expected debug, info, warn, error, panic or fatal")),
        };

        Ok(ServerConfig {
            name,
            data_dir,
            listen_client_urls,
            listen_client_addrs,
            advertise_client_urls,
            listen_peer_urls,
            listen_peer_addr,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state,
            initial_cluster_token,
            heartbeat_interval,
            election_timeout,
            snapshot_count,
            quota_backend_bytes,
            max_request_bytes,
            max_txn_ops,
            auto_compaction,
            enable_v2,
            log_level,
            config_file,
        })
    }

    /// The backend quota in bytes, `None` when disabled (negative).
    pub fn backend_quota(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            q => Some(q as u64),
        }
    }

    /// What the member needs to start.
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig {
            name: self.name.clone(),
            data_dir: self.data_dir.clone(),
            listen_peer_addr: self.listen_peer_addr,
            advertise_peer_urls: self.initial_advertise_peer_urls.iter().map(Url::to_string).collect(),
            advertise_client_urls: self.advertise_client_urls.iter().map(Url::to_string).collect(),
            initial_cluster: self.initial_cluster.clone(),
            initial_cluster_state: self.initial_cluster_state,
            initial_cluster_token: self.initial_cluster_token.clone(),
            heartbeat_interval: self.heartbeat_interval,
            election_timeout: self.election_timeout,
            snapshot_count: self.snapshot_count,
            store: StoreConfig::default(),
        }
    }
}

fn bind_addrs(raw: &Raw<'_>, key: &str, urls: &[Url]) -> Result<Vec<SocketAddr>, String> {
    urls.iter().map(|u| u.bind_addr().map_err(|e| raw.fail(key, e))).collect()
}

/// etcd's `parseCompactionRetention`: a whole number is hours (periodic) or
/// revisions (revision); otherwise a Go duration, periodic mode only.
fn auto_compaction(raw: &Raw<'_>) -> Result<AutoCompaction, String> {
    let mode = raw.required("auto-compaction-mode")?.trim();
    let retention = raw.required("auto-compaction-retention")?.trim();
    let whole = retention.parse::<u64>().ok();
    let parsed = match mode {
        "periodic" | "" => match whole {
            Some(hours) => Duration::from_secs(hours.saturating_mul(3600)),
            None => parse_go_duration(retention).map_err(|e| raw.fail("auto-compaction-retention", e))?,
        },
        "revision" => {
            let revs = whole.ok_or_else(|| {
                raw.fail("auto-compaction-retention", "expected a whole number of revisions in revision mode")
            })?;
            return Ok(if revs == 0 { AutoCompaction::Disabled } else { AutoCompaction::Revision(revs) });
        }
        _ => return Err(raw.fail("auto-compaction-mode", "unknown auto-compaction-mode (want periodic or revision)")),
    };
    Ok(if parsed.is_zero() { AutoCompaction::Disabled } else { AutoCompaction::Periodic(parsed) })
}

/// `--version`, in the shape of etcd's (whose first line is "etcd Version:").
pub fn version_text() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!(
        "detcd Version: {}\nGit SHA: {}\nGo Version: n/a (detcd is written in Rust)\nGo OS/Arch: {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("DETCD_GIT_SHA").unwrap_or("Not provided (set DETCD_GIT_SHA when building)"),
        std::env::consts::OS,
        arch
    )
}
