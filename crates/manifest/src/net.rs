//! Network values in the manifest: backend URLs, backend names and egress host
//! patterns. Validated while parsing, so a mistake is reported with its line.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::Deserialize;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlScheme {
    Http,
    Https,
}

impl UrlScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlScheme::Http => "http",
            UrlScheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            UrlScheme::Http => 80,
            UrlScheme::Https => 443,
        }
    }

    fn parse(text: &str) -> Option<UrlScheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(UrlScheme::Http),
            "https" => Some(UrlScheme::Https),
            _ => None,
        }
    }
}

/// A host: a DNS name (lowercased) or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host as written in a URL: `example.com`, `10.0.0.1`, `[::1]`.
    pub fn parse(text: &str) -> Result<Host, String> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| format!("`{text}` is not a valid IPv6 address"));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("`{text}` is not a valid host name"));
        }
        Ok(Host::Name(name))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// Splits `host[:port]`, minding IPv6 brackets.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if text.starts_with('[') {
        match text.find(']') {
            Some(end) => {
                let (host, rest) = text.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (text, None),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    }
}

fn parse_port(text: &str, whole: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("invalid port `{text}` in `{whole}`")),
    }
}

/// A backend's URL: `https://host[:port][/path-prefix]`. No query, fragment or user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    pub scheme: UrlScheme,
    pub host: Host,
    pub port: u16,
    /// Prepended to every request's path; empty or starting with `/`, without a
    /// trailing `/`.
    pub path_prefix: String,
}

impl BackendUrl {
    pub fn parse(text: &str) -> Result<BackendUrl, String> {
        let bad = |why: &str| format!("invalid backend url `{text}`: {why}");
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host, like \"https://origin.example.com\""))?;
        let scheme =
            UrlScheme::parse(scheme).ok_or_else(|| bad("the scheme must be http or https"))?;
        if rest.contains(['?', '#']) {
            return Err(bad("a backend url takes no query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("credentials do not belong in the url"));
        }
        let (host, port) = split_host_port(authority);
        let host = Host::parse(host).map_err(|e| bad(&e))?;
        let port = match port {
            Some(p) => parse_port(p, text)?,
            None => scheme.default_port(),
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("the path has spaces or control characters"));
        }
        Ok(BackendUrl {
            scheme,
            host,
            port,
            path_prefix: path.trim_end_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme.as_str(),
            self.host,
            self.port,
            self.path_prefix
        )
    }
}

impl serde::Serialize for BackendUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BackendUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BackendUrl::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// 1–63 of `a-z`, `0-9`, `-` and `_`, starting with a letter: backend and store
/// names.
pub(crate) fn is_identifier(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A backend's name: 1–63 of `a-z`, `0-9`, `-` and `_`, starting with a letter. No
/// dots, so it never collides with a host name: a guest request to `http://NAME/`
/// goes to the backend.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendName(String);

impl BackendName {
    pub fn new(name: &str) -> Result<BackendName, String> {
        if is_identifier(name) {
            Ok(BackendName(name.to_owned()))
        } else {
            Err(format!(
                "invalid backend name `{name}`: use 1 to 63 lowercase letters, digits, `-` \
                 and `_`, starting with a letter (no dots)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for BackendName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BackendName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BackendName::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Which hosts a pattern accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// `*`: any host.
    Any,
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself).
    Suffix(String),
    /// `example.com`, `10.0.0.1`, `[::1]`.
    Exact(Host),
}

/// Which ports a pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// No port written: the scheme's default port (80 or 443).
    Default,
    /// `:*`
    Any,
    Exact(u16),
}

/// An egress allow-list entry: `[scheme://]host[:port]`, where host is an exact name
/// or address, `*.example.com`, or `*`; port is a number or `*`, and without one only
/// the scheme's default port is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    scheme: Option<UrlScheme>,
    host: HostMatch,
    port: PortMatch,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let bad = |why: &str| format!("invalid egress pattern `{text}`: {why}");
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) => (
                Some(UrlScheme::parse(s).ok_or_else(|| bad("the scheme must be http or https"))?),
                rest,
            ),
            None => (None, text),
        };
        if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
            return Err(bad(
                "write only [scheme://]host[:port], like \"*.example.com:443\"",
            ));
        }
        let (host, port) = split_host_port(rest);
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Exact(parse_port(p, text)?),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            match Host::parse(suffix) {
                Ok(Host::Name(name)) => HostMatch::Suffix(format!(".{name}")),
                _ => return Err(bad("`*.` must be followed by a domain name")),
            }
        } else if host.contains('*') {
            return Err(bad(
                "`*` may only stand alone or start the host, as in `*.example.com`",
            ));
        } else {
            HostMatch::Exact(Host::parse(host).map_err(|e| bad(&e))?)
        };
        Ok(HostPattern {
            text: text.to_owned(),
            scheme,
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    pub fn matches(&self, scheme: UrlScheme, host: &Host, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortMatch::Default => port == scheme.default_port(),
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
        };
        let host_ok = match (&self.host, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Suffix(suffix), Host::Name(name)) => name.ends_with(suffix.as_str()),
            (HostMatch::Suffix(_), Host::Ip(_)) => false,
            (HostMatch::Exact(want), got) => want == got,
        };
        port_ok && host_ok
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HostPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Host {
        Host::Name(n.into())
    }

    #[test]
    fn backend_urls_parse_into_parts() {
        let url = BackendUrl::parse("https://Origin.Example.com/api/v1/").unwrap();
        assert_eq!(url.scheme, UrlScheme::Https);
        assert_eq!(url.host, name("origin.example.com"));
        assert_eq!(url.port, 443);
        assert_eq!(url.path_prefix, "/api/v1");
        let url = BackendUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!(url.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!((url.port, url.path_prefix.as_str()), (8080, ""));
    }

    #[test]
    fn bad_backend_urls_say_what_is_wrong() {
        for (url, why) in [
            ("origin.example.com", "expected scheme://host"),
            ("ftp://x.com", "http or https"),
            ("http://x.com:99999", "invalid port"),
            ("http://x.com/?a=1", "no query"),
            ("http://user:pw@x.com", "credentials"),
            ("http://exa mple.com", "not a valid host"),
            ("http://[::1/", "not a valid host"),
        ] {
            let err = BackendUrl::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn patterns_match_hosts_ports_and_schemes() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches(UrlScheme::Https, &name("api.example.com"), 443));
        assert!(p.matches(UrlScheme::Http, &name("a.b.example.com"), 80));
        assert!(!p.matches(UrlScheme::Https, &name("example.com"), 443));
        assert!(!p.matches(UrlScheme::Https, &name("evilexample.com"), 443));
        assert!(!p.matches(UrlScheme::Https, &name("api.example.com"), 8443));

        let p = HostPattern::parse("https://api.example.org:*").unwrap();
        assert!(p.matches(UrlScheme::Https, &name("api.example.org"), 8443));
        assert!(!p.matches(UrlScheme::Http, &name("api.example.org"), 80));

        let p = HostPattern::parse("127.0.0.1:8080").unwrap();
        assert!(p.matches(
            UrlScheme::Http,
            &Host::Ip("127.0.0.1".parse().unwrap()),
            8080
        ));
        assert!(!p.matches(
            UrlScheme::Http,
            &Host::Ip("127.0.0.2".parse().unwrap()),
            8080
        ));

        let p = HostPattern::parse("*:*").unwrap();
        assert!(p.matches(UrlScheme::Http, &Host::Ip("10.1.2.3".parse().unwrap()), 1));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for pattern in [
            "",
            "foo.*.com",
            "*example.com",
            "example.com/path",
            "example.com:0",
            "example.com:http",
            "ftp://example.com",
            "*.",
            "exa mple.com",
        ] {
            assert!(
                HostPattern::parse(pattern).is_err(),
                "{pattern:?} was accepted"
            );
        }
    }

    #[test]
    fn backend_names_have_no_dots() {
        assert!(BackendName::new("origin-eu").is_ok());
        assert!(BackendName::new("origin_2").is_ok());
        assert!(BackendName::new("origin.eu").is_err());
        assert!(BackendName::new("Origin").is_err());
        assert!(BackendName::new("").is_err());
    }
}

/// A host name a node routes to an app: `example.com`, or `*.example.com` for any
/// subdomain of it (not the name itself). Lower-cased; labels of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainPattern(String);

impl DomainPattern {
    pub fn parse(text: &str) -> Result<DomainPattern, String> {
        let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = lower.strip_prefix("*.").unwrap_or(&lower);
        let labels_ok = name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if name.is_empty() || name.len() > 253 || !labels_ok {
            return Err(format!(
                "invalid domain `{text}`: use a host name like \"example.com\", or \
                 \"*.example.com\" for its subdomains"
            ));
        }
        Ok(DomainPattern(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a (normalised) host is this domain, or under it for a wildcard.
    pub fn matches(&self, host: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(parent) => host
                .strip_suffix(parent)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == self.0,
        }
    }
}

impl serde::Serialize for DomainPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DomainPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
