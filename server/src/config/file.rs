//! `--config-file`: etcd's YAML configuration file.
//!
//! The keys are the flags' names (`heartbeat-interval: 100`); TLS settings
//! sit in `client-transport-security` and `peer-transport-security`
//! sections. An empty value (`data-dir:`) keeps the default, as in etcd.
//! Keys etcd knows but detcd does not implement are ignored with a warning,
//! except those whose silent omission would change what the server does
//! (`wal-dir`, `discovery`, ...): set, they refuse the start.

use super::flags::{Origin, Setting, Settings};
use serde_yaml_ng::Value;
use std::path::Path;

/// Keys whose value is a boolean (YAML 1.1's yes/no/on/off are accepted for
/// them, as etcd's YAML reader does).
const BOOL_KEYS: [&str; 5] = ["enable-v2", "client-cert-auth", "auto-tls", "peer-client-cert-auth", "peer-auto-tls"];

/// etcd keys detcd does not implement and will not ignore when set.
const REFUSED: [&str; 5] = ["wal-dir", "discovery", "discovery-srv", "force-new-cluster", "proxy"];

/// Keys that hold TLS settings at the top level of a command line but live
/// in the transport-security sections of a file.
const TLS_KEYS: [&str; 5] = ["cert-file", "key-file", "trusted-ca-file", "client-cert-auth", "auto-tls"];

/// Reads `path` into settings. `keys` are the settings detcd knows.
pub fn load(path: &Path, keys: &[String], warnings: &mut Vec<String>) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&text, path, keys, warnings)
}

/// Parses a config file's text; `path` only names it in messages.
pub fn parse(text: &str, path: &Path, keys: &[String], warnings: &mut Vec<String>) -> Result<Settings, String> {
    let shown = path.display();
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("config file {shown}: invalid YAML: {e}"))?;
    let map = match doc {
        Value::Null => return Ok(Settings::new()),
        Value::Mapping(m) => m,
        _ => return Err(format!("config file {shown}: expected a mapping of etcd's settings (key: value)")),
    };
    let mut out = Settings::new();
    let origin = Origin::File(path.to_path_buf());
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            return Err(format!("config file {shown}: keys must be strings, got {k:?}"));
        };
        let section_prefix = match key {
            "client-transport-security" => Some(""),
            "peer-transport-security" => Some("peer-"),
            _ => None,
        };
        if let Some(prefix) = section_prefix {
            let entries = match v {
                Value::Null => continue,
                Value::Mapping(m) => m,
                _ => return Err(format!("config file {shown}: {key} must be a mapping")),
            };
            for (sk, sv) in entries {
                let sub = sk.as_str().unwrap_or_default();
                if TLS_KEYS.contains(&sub) {
                    let full = format!("{prefix}{sub}");
                    if let Some(value) = scalar(&full, &sv).map_err(|e| format!("config file {shown}: {key}.{e}"))? {
                        out.insert(full, Setting { value, origin: origin.clone() });
                    }
                } else if active(&sv) {
                    return Err(format!(
                        "config file {shown}: {key}.{sub} is set, but TLS is not implemented in detcd yet; \
                         refusing to start rather than serve plaintext"
                    ));
                }
            }
            continue;
        }
        let top_level_setting =
            keys.iter().any(|known| known == key) && !TLS_KEYS.iter().any(|t| *t == key || key == format!("peer-{t}"));
        if top_level_setting {
            if let Some(value) = scalar(key, &v).map_err(|e| format!("config file {shown}: {e}"))? {
                out.insert(key.to_string(), Setting { value, origin: origin.clone() });
            }
        } else if REFUSED.contains(&key) {
            let inactive = !active(&v) || (key == "proxy" && v.as_str() == Some("off"));
            if !inactive {
                return Err(format!(
                    "config file {shown}: {key} is set, but detcd does not implement it (remove it to start)"
                ));
            }
        } else if active(&v) {
            warnings.push(format!("config file {shown}: {key} is not supported by detcd and is ignored"));
        }
    }
    Ok(out)
}

/// Whether a value sets something (not empty, null or false).
fn active(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        _ => true,
    }
}

/// A setting's value as a flag's string; `None` for an empty value.
fn scalar(key: &str, v: &Value) -> Result<Option<String>, String> {
    let bool_key = BOOL_KEYS.contains(&key);
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if bool_key => match s.to_ascii_lowercase().as_str() {
            "yes" | "on" | "y" => "true".to_string(),
            "no" | "off" | "n" => "false".to_string(),
            _ => s.clone(),
        },
        Value::String(s) => s.clone(),
        // A YAML list of URLs is taken as the comma-separated list.
        Value::Sequence(items) => {
            let mut parts = Vec::new();
            for item in items {
                match scalar(key, item)? {
                    Some(p) => parts.push(p),
                    None => return Err(format!("{key}: empty list item")),
                }
            }
            parts.join(",")
        }
        Value::Mapping(_) | Value::Tagged(_) => return Err(format!("{key}: expected a single value")),
    }))
}
