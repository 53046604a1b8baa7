//! Value syntaxes of etcd's flags: URL lists, Go booleans and Go durations.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A URL as etcd takes it in its URL flags: `scheme://host:port`, no path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// The host as written (a name, an IPv4 address or an `[IPv6]` address).
    pub host: String,
    pub port: u16,
}

impl Url {
    /// Parses one URL with etcd's checks (`types.NewURLs`).
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!("URL scheme must be http, https, unix, or unixs: {s}"));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "http" | "https" => {}
            "unix" | "unixs" => return Err(format!("unix socket URLs are not supported by detcd yet: {s}")),
            _ => return Err(format!("URL scheme must be http, https, unix, or unixs: {s}")),
        }
        if rest.contains(['/', '?', '#']) {
            return Err(format!("URL must not contain a path: {s}"));
        }
        let bad_form = || format!("URL address does not have the form \"host:port\": {s}");
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad_form)?;
        if host.starts_with('[') != host.ends_with(']') || (!host.starts_with('[') && host.contains(':')) {
            return Err(bad_form());
        }
        let port = port.parse::<u16>().map_err(|_| format!("URL port must be a number from 0 to 65535: {s}"))?;
        Ok(Url { scheme, host: host.to_string(), port })
    }

    /// The host without IPv6 brackets.
    pub fn hostname(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The address to bind for a listen URL: an IP address, or `localhost`
    /// (127.0.0.1); etcd refuses other names for binding.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        let host = self.hostname();
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse::<IpAddr>().map_err(|_| format!("expected IP in URL for binding ({self})"))?
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A comma-separated URL list, sorted as etcd sorts it.
pub fn parse_urls(s: &str) -> Result<Vec<Url>, String> {
    let mut urls = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        urls.push(Url::parse(part)?);
    }
    if urls.is_empty() {
        return Err("no valid URLs given".to_string());
    }
    urls.sort_by_key(|u| u.to_string());
    urls.dedup();
    Ok(urls)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

/// Go's `time.ParseDuration` for non-negative durations: "0", or numbers
/// (with optional fractions) with units ns, us, µs, ms, s, m, h, as in
/// "1h30m" or "1.5s".
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (want e.g. \"30m\", \"1h30m\", \"500ms\")");
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = rest;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    if total > u64::MAX as f64 {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_like_etcd() {
        let u = Url::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.port), ("http", "127.0.0.1", 2379));
        assert_eq!(u.to_string(), "http://127.0.0.1:2379");
        let v6 = Url::parse("http://[::1]:2380").unwrap();
        assert_eq!(v6.bind_addr().unwrap(), "[::1]:2380".parse().unwrap());
        assert_eq!(
            Url::parse("http://localhost:2380").unwrap().bind_addr().unwrap(),
            "127.0.0.1:2380".parse().unwrap()
        );
        assert!(Url::parse("http://example.com:2379").unwrap().bind_addr().unwrap_err().contains("expected IP"));
        assert!(Url::parse("localhost:2379").unwrap_err().contains("scheme must be"));
        assert!(Url::parse("ftp://a:1").unwrap_err().contains("scheme must be"));
        assert!(Url::parse("unix://x:1").unwrap_err().contains("unix socket"));
        assert!(Url::parse("http://a:1/path").unwrap_err().contains("path"));
        assert!(Url::parse("http://a").unwrap_err().contains("host:port"));
        assert!(Url::parse("http://::1:2").unwrap_err().contains("host:port"));
        assert!(Url::parse("http://a:port").unwrap_err().contains("port"));
        let list = parse_urls("http://b:1, http://a:2,http://b:1").unwrap();
        assert_eq!(list.iter().map(Url::to_string).collect::<Vec<_>>(), ["http://a:2", "http://b:1"]);
        assert_eq!(parse_urls(" , ").unwrap_err(), "no valid URLs given");
    }

    #[test]
    fn go_bools_and_durations() {
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("10µs"), Ok(Duration::from_micros(10)));
        for bad in ["", "5", "m", "1x", "1h-5m", "-1h", "1..5s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
