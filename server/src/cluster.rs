//! Static cluster bootstrap, as etcd does it: `--initial-cluster` parsing and
//! the member and cluster IDs derived from the peer URLs and the cluster
//! token, so a member restarted with the same flags keeps its ID and tools
//! that print IDs show what they would show for etcd.

use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::fmt;

/// One member of `--initial-cluster`: a name and its peer URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub name: String,
    pub peer_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// An entry without `=`, an empty name or an empty URL.
    BadEntry(String),
    /// A URL that is not `http://` or `https://` with a host and port.
    BadUrl(String),
    /// The same peer URL listed for two members.
    DuplicateUrl(String),
    /// This member's name is not in `--initial-cluster`.
    MissingSelf { name: String, cluster: String },
    /// This member's advertised peer URLs differ from its entry.
    UrlMismatch { name: String, listed: Vec<String>, advertised: Vec<String> },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::BadEntry(e) => write!(f, "--initial-cluster: invalid entry {e:?} (want name=url)"),
            ClusterError::BadUrl(u) => write!(f, "--initial-cluster: URL scheme must be http or https: {u:?}"),
            ClusterError::DuplicateUrl(u) => write!(f, "--initial-cluster: duplicate peer URL {u:?}"),
            ClusterError::MissingSelf { name, cluster } => {
                write!(f, "couldn't find local name {name:?} in the initial cluster configuration ({cluster})")
            }
            ClusterError::UrlMismatch { name, listed, advertised } => write!(
                f,
                "--initial-cluster has {name}={} but missing from --initial-advertise-peer-urls={}",
                listed.join(","),
                advertised.join(",")
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

/// Parses `name=url,name=url,...`; a name may repeat to list several URLs.
/// Members come out sorted by name.
pub fn parse_initial_cluster(s: &str) -> Result<Vec<InitialMember>, ClusterError> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen_urls = std::collections::BTreeSet::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry.split_once('=').ok_or_else(|| ClusterError::BadEntry(entry.to_string()))?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || url.is_empty() {
            return Err(ClusterError::BadEntry(entry.to_string()));
        }
        check_url(url)?;
        if !seen_urls.insert(url.to_string()) {
            return Err(ClusterError::DuplicateUrl(url.to_string()));
        }
        by_name.entry(name.to_string()).or_default().push(url.to_string());
    }
    if by_name.is_empty() {
        return Err(ClusterError::BadEntry(s.to_string()));
    }
    Ok(by_name.into_iter().map(|(name, peer_urls)| InitialMember { name, peer_urls }).collect())
}

fn check_url(url: &str) -> Result<(), ClusterError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(hostport) if hostport.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) => {
            Ok(())
        }
        _ => Err(ClusterError::BadUrl(url.to_string())),
    }
}

/// Checks that `name` is in the cluster with exactly the advertised peer
/// URLs (etcd refuses to start otherwise).
pub fn check_self(
    members: &[InitialMember],
    name: &str,
    advertised: &[String],
    cluster: &str,
) -> Result<(), ClusterError> {
    let me = members
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ClusterError::MissingSelf { name: name.to_string(), cluster: cluster.to_string() })?;
    let mut listed = me.peer_urls.clone();
    let mut adv = advertised.to_vec();
    listed.sort();
    adv.sort();
    if listed != adv {
        return Err(ClusterError::UrlMismatch {
            name: name.to_string(),
            listed: me.peer_urls.clone(),
            advertised: advertised.to_vec(),
        });
    }
    Ok(())
}

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the
/// sorted peer URLs concatenated, then the cluster token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Sha1::new();
    h.update(urls.concat().as_bytes());
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs, each 8 bytes
/// big-endian.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 digests are 20 bytes"))
}

/// IDs as etcd prints them: lowercase hex without leading zeros.
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_single_member_ids_match_etcd() {
        // `etcd` with no flags: member 8e9e05c52164694d in cluster cdf818194e3a8c32.
        let id = member_id(&["http://localhost:2380".to_string()], "etcd-cluster");
        assert_eq!(format_id(id), "8e9e05c52164694d");
        assert_eq!(format_id(cluster_id(&[id])), "cdf818194e3a8c32");
    }

    #[test]
    fn ids_ignore_url_order_and_depend_on_the_token() {
        let a = ["http://a:2380".to_string(), "http://b:2380".to_string()];
        let b = ["http://b:2380".to_string(), "http://a:2380".to_string()];
        assert_eq!(member_id(&a, "t"), member_id(&b, "t"));
        assert_ne!(member_id(&a, "t"), member_id(&a, "u"));
        assert_eq!(cluster_id(&[1, 2]), cluster_id(&[2, 1]));
    }

    #[test]
    fn parses_the_seed_cluster_line() {
        let line = "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380";
        let members = parse_initial_cluster(line).unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(
            members[1],
            InitialMember { name: "infra1".into(), peer_urls: vec!["http://10.0.1.11:2380".into()] }
        );
        check_self(&members, "infra1", &["http://10.0.1.11:2380".into()], line).unwrap();
        assert!(matches!(check_self(&members, "infra9", &[], line), Err(ClusterError::MissingSelf { .. })));
        let err = check_self(&members, "infra1", &["http://10.0.1.99:2380".into()], line).unwrap_err();
        assert!(err.to_string().contains("missing from --initial-advertise-peer-urls"));
    }

    #[test]
    fn bad_lines_are_clear_errors() {
        assert!(matches!(parse_initial_cluster("nourl"), Err(ClusterError::BadEntry(_))));
        assert!(matches!(parse_initial_cluster("a=ftp://x:1"), Err(ClusterError::BadUrl(_))));
        assert!(matches!(parse_initial_cluster("a=http://x"), Err(ClusterError::BadUrl(_))));
        assert!(matches!(parse_initial_cluster("a=http://x:1,b=http://x:1"), Err(ClusterError::DuplicateUrl(_))));
        assert!(matches!(parse_initial_cluster(""), Err(ClusterError::BadEntry(_))));
        let two = parse_initial_cluster("a=http://x:1,a=http://y:2").unwrap();
        assert_eq!(two[0].peer_urls.len(), 2);
    }
}
