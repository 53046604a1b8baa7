//! The command line: etcd 3.4's flags (clap derive), Go-style argument
//! spelling, and the `ETCD_*` environment layer under them.
//!
//! Every setting is collected as a string with where it came from
//! ([`Origin`]); `config.rs` turns them into typed values, so a bad value is
//! reported the same way whether it came from a flag, a variable or the
//! config file.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    Flag,
    /// The environment variable's name.
    Env(String),
    /// The config file's path.
    File(PathBuf),
}

/// One setting's raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// Raw settings by flag name (`heartbeat-interval`), which is also the
/// config file's key.
pub type Settings = BTreeMap<String, Setting>;

/// How a setting is named in messages: the flag, the variable or the key.
pub fn describe(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Default | Origin::Flag => format!("--{key}"),
        Origin::Env(var) => var.clone(),
        Origin::File(path) => format!("{key} (config file {})", path.display()),
    }
}

/// `--heartbeat-interval` is `ETCD_HEARTBEAT_INTERVAL`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_uppercase().replace('-', "_"))
}

/// etcd 3.4's flags that detcd knows. Each is also read from its `ETCD_*`
/// variable when it is not on the command line; with a config file (from
/// `--config-file` or `ETCD_CONFIG_FILE`) all other flags and variables are
/// ignored, as etcd does.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "detcd",
    about = "detcd: an etcd-compatible distributed key-value store",
    disable_version_flag = true,
    args_override_self = true,
    after_help = "Every flag can also be set by its environment variable: --my-flag is ETCD_MY_FLAG \
                  (a flag on the command line wins). Flags also take one dash (-name) and --flag=value, \
                  as etcd's do."
)]
pub struct Flags {
    /// Human-readable name for this member.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub name: Option<String>,
    /// Path to the data directory [default: ${name}.detcd].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// URLs to listen on for client traffic (comma-separated).
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2379")]
    pub listen_client_urls: Option<String>,
    /// This member's client URLs to advertise to the public.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2379")]
    pub advertise_client_urls: Option<String>,
    /// URLs to listen on for peer traffic.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2380")]
    pub listen_peer_urls: Option<String>,
    /// This member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, value_name = "URLS", default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: Option<String>,
    /// Initial cluster configuration for bootstrapping (name=url,...); with
    /// --name other than "default" and this left at its default, it is
    /// ${name}=${initial-advertise-peer-urls}, as in etcd.
    #[arg(long, value_name = "CLUSTER", default_value = "default=http://localhost:2380")]
    pub initial_cluster: Option<String>,
    /// Initial cluster state: new or existing.
    #[arg(long, value_name = "STATE", default_value = "new")]
    pub initial_cluster_state: Option<String>,
    /// Initial cluster token for the cluster during bootstrap.
    #[arg(long, value_name = "TOKEN", default_value = "etcd-cluster")]
    pub initial_cluster_token: Option<String>,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, value_name = "MS", default_value = "100")]
    pub heartbeat_interval: Option<String>,
    /// Time (in milliseconds) for an election to time out.
    #[arg(long, value_name = "MS", default_value = "1000")]
    pub election_timeout: Option<String>,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, value_name = "N", default_value = "100000")]
    pub snapshot_count: Option<String>,
    /// Raise alarms when the backend exceeds this size (0: the 2 GiB default;
    /// negative: no quota).
    #[arg(long, value_name = "BYTES", default_value = "0")]
    pub quota_backend_bytes: Option<String>,
    /// Maximum client request size in bytes.
    #[arg(long, value_name = "BYTES", default_value = "1572864")]
    pub max_request_bytes: Option<String>,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, value_name = "N", default_value = "128")]
    pub max_txn_ops: Option<String>,
    /// Interpret auto-compaction-retention as 'periodic' (a duration) or
    /// 'revision' (a number of revisions).
    #[arg(long, value_name = "MODE", default_value = "periodic")]
    pub auto_compaction_mode: Option<String>,
    /// Auto compaction retention: hours ("1") or a duration ("30m") in
    /// periodic mode, revisions in revision mode; 0 disables it.
    #[arg(long, value_name = "RETENTION", default_value = "0")]
    pub auto_compaction_retention: Option<String>,
    /// Accept etcd V2 client requests (detcd's default is true; etcd's false).
    #[arg(long, value_name = "BOOL", default_value = "true", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_v2: Option<String>,
    /// Log level: debug, info, warn, error, panic or fatal.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: Option<String>,
    /// Path to the server configuration file (etcd's YAML keys). Other flags
    /// and environment variables are then ignored.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<String>,
    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,

    // TLS: accepted so etcd command lines parse, refused at start (not
    // implemented yet).
    /// Path to the client server TLS cert file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<String>,
    /// Path to the client server TLS key file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<String>,
    /// Path to the client server TLS trusted CA file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub trusted_ca_file: Option<String>,
    /// Enable client cert authentication (not implemented: refused).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub client_cert_auth: Option<String>,
    /// Client TLS using generated certificates (not implemented: refused).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub auto_tls: Option<String>,
    /// Path to the peer server TLS cert file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub peer_cert_file: Option<String>,
    /// Path to the peer server TLS key file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub peer_key_file: Option<String>,
    /// Path to the peer server TLS trusted CA file (not implemented: refused).
    #[arg(long, value_name = "FILE")]
    pub peer_trusted_ca_file: Option<String>,
    /// Enable peer client cert authentication (not implemented: refused).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub peer_client_cert_auth: Option<String>,
    /// Peer TLS using generated certificates (not implemented: refused).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub peer_auto_tls: Option<String>,
}

/// Flags that are not settings.
const NOT_SETTINGS: [&str; 3] = ["config-file", "version", "help"];

/// The command line parsed by clap, before the environment is consulted.
pub struct CommandLine {
    matches: ArgMatches,
    /// Every setting's flag name (long), in declaration order.
    keys: Vec<String>,
}

impl CommandLine {
    /// Parses `args` (the first is the program name). etcd's spellings are
    /// accepted: `-flag`, `-flag=value`, `-flag value`, and values that start
    /// with a dash.
    pub fn parse<I, T>(args: I) -> Result<CommandLine, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let cmd = Flags::command();
        let mut value_flags = Vec::new();
        let mut keys = Vec::new();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let optional = arg.get_num_args().is_some_and(|r| r.min_values() == 0);
            if arg.get_action().takes_values() && !optional {
                value_flags.push(long.to_string());
            }
            if !NOT_SETTINGS.contains(&long) {
                keys.push(long.to_string());
            }
        }
        let argv = go_style(args.into_iter().map(Into::into).collect(), &value_flags);
        let matches = cmd.try_get_matches_from(argv)?;
        Ok(CommandLine { matches, keys })
    }

    pub fn version(&self) -> bool {
        self.matches.get_flag("version")
    }

    /// `--config-file`, when given and not empty.
    pub fn config_file(&self) -> Option<String> {
        self.matches.get_one::<String>("config_file").filter(|s| !s.is_empty()).cloned()
    }

    /// The settings' names (flag names without dashes).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The settings given on the command line, or by default.
    fn collect(&self, want: ValueSource) -> Settings {
        let mut out = Settings::new();
        for key in &self.keys {
            let id = key.replace('-', "_");
            if self.matches.value_source(&id) != Some(want) {
                continue;
            }
            if let Some(value) = self.matches.get_one::<String>(&id) {
                let origin = if want == ValueSource::CommandLine { Origin::Flag } else { Origin::Default };
                out.insert(key.clone(), Setting { value: value.clone(), origin });
            }
        }
        out
    }

    pub fn given(&self) -> Settings {
        self.collect(ValueSource::CommandLine)
    }

    pub fn defaults(&self) -> Settings {
        self.collect(ValueSource::DefaultValue)
    }

    /// Flags first, then `ETCD_*` variables for the settings not on the
    /// command line, then defaults. Empty variables are ignored (as etcd
    /// does). Warnings name unrecognized `ETCD_*` variables and variables
    /// shadowed by a flag.
    pub fn with_env(&self, env: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> Settings {
        let given = self.given();
        let mut out = self.defaults();
        let mut known = vec!["ETCD_CONFIG_FILE".to_string()];
        for key in &self.keys {
            let var = env_name(key);
            match env.get(&var).filter(|v| !v.is_empty()) {
                Some(_) if given.contains_key(key) => warnings.push(format!(
                    "environment variable {var:?} is shadowed by the command-line flag --{key} (the flag wins; \
                     etcd 3.4 refuses to start in this case)"
                )),
                Some(value) => {
                    out.insert(key.clone(), Setting { value: value.clone(), origin: Origin::Env(var.clone()) });
                }
                None => {}
            }
            known.push(var);
        }
        for (var, value) in env {
            if var.starts_with("ETCD_") && !known.contains(var) {
                warnings.push(format!("unrecognized environment variable {var}={value}"));
            }
        }
        out.extend(given);
        out
    }
}

/// Rewrites Go's flag spellings into clap's: `-flag` becomes `--flag`, and a
/// value flag followed by its value becomes `--flag=value` (so a value may
/// start with a dash, as in Go). Stops at `--`.
fn go_style(args: Vec<OsString>, value_flags: &[String]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    if let Some(program) = it.next() {
        out.push(program);
    }
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            out.extend(it);
            break;
        }
        let body = match s.strip_prefix("--") {
            Some(b) => b,
            None => match s.strip_prefix('-') {
                // `-h` stays a short flag; `-name` is Go's `--name`.
                Some(b) if b.chars().count() > 1 => b,
                _ => {
                    out.push(arg);
                    continue;
                }
            },
        };
        let normalized = format!("--{body}");
        if !body.contains('=') && value_flags.iter().any(|f| f == body) {
            if let Some(value) = it.next() {
                let mut joined = OsString::from(format!("{normalized}="));
                joined.push(value);
                out.push(joined);
                continue;
            }
        }
        out.push(OsString::from(normalized));
    }
    out
}
