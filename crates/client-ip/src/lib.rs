//! Who the client is: the socket peer, unless the peer is a trusted proxy, in which
//! case the PROXY protocol header (v1 or v2) or `X-Forwarded-For` says. Pure
//! parsing over bytes and headers, fuzzed (`fuzz/`), apart from the server that
//! uses it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The proxies whose word about the client is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client of a request that arrived from `peer`: the rightmost
    /// `X-Forwarded-For` hop that is not a trusted proxy, if `peer` is trusted.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = SocketAddr::new(ip, 0);
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port or IPv6 brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 header, `\r\n` included (the spec's limit).
const V1_MAX: usize = 107;

/// Why a PROXY protocol header was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the connection did not start with a PROXY protocol header (v1 or v2)")]
    Missing,
    #[error("unsupported PROXY protocol v2 version/command byte {0:#04x}")]
    Command(u8),
    #[error("PROXY protocol v2 address block too short for family {0:#04x}")]
    Short(u8),
    #[error("PROXY protocol v1 header: {0}")]
    V1(&'static str),
}

/// What a complete PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client it names; `None` for v2 `LOCAL`, v1 `UNKNOWN` or an address
    /// family other than TCP over IPv4/IPv6, where the peer stands.
    pub client: Option<SocketAddr>,
    /// The header's length in bytes: what follows is the connection's own data.
    pub len: usize,
}

/// How far [`parse_proxy_header`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Complete(ProxyHeader),
    /// The bytes so far may begin a header: at least `needed` more are wanted.
    Incomplete {
        needed: usize,
    },
}

/// Parses the PROXY protocol header (v1 text or v2 binary) at the start of `buf`.
/// Looks at no byte past the header's end.
pub fn parse_proxy_header(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let seen = buf.len().min(SIGNATURE.len());
    if buf[..seen] == SIGNATURE[..seen] {
        return parse_v2(buf);
    }
    let seen = buf.len().min(V1_PREFIX.len());
    if buf[..seen] == V1_PREFIX[..seen] {
        return parse_v1(buf);
    }
    Err(ProxyHeaderError::Missing)
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let Some(head) = buf.get(..16) else {
        return Ok(Parsed::Incomplete {
            needed: 16 - buf.len(),
        });
    };
    let (version_command, family) = (head[12], head[13]);
    let len = 16 + u16::from_be_bytes([head[14], head[15]]) as usize;
    let Some(block) = buf.get(16..len) else {
        return Ok(Parsed::Incomplete {
            needed: len - buf.len(),
        });
    };
    match version_command {
        0x20 => return Ok(Parsed::Complete(ProxyHeader { client: None, len })),
        0x21 => {}
        other => return Err(ProxyHeaderError::Command(other)),
    }
    let client = match family {
        0x11 => {
            let b = block.get(..12).ok_or(ProxyHeaderError::Short(family))?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([b[8], b[9]])))
        }
        0x21 => {
            let b = block.get(..36).ok_or(ProxyHeaderError::Short(family))?;
            let octets: [u8; 16] = b[..16].try_into().expect("16 bytes");
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([b[32], b[33]]),
            ))
        }
        _ => None,
    };
    Ok(Parsed::Complete(ProxyHeader { client, len }))
}

/// `PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n`, `PROXY TCP6 …`, or
/// `PROXY UNKNOWN[ anything]\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(ProxyHeaderError::V1("no CRLF within 107 bytes"));
        }
        return Ok(Parsed::Incomplete { needed: 1 });
    };
    let len = end + 2;
    // `end` is past the prefix: a CR inside it would not have matched `PROXY `.
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..end])
        .map_err(|_| ProxyHeaderError::V1("not ASCII"))?;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        return Ok(Parsed::Complete(ProxyHeader { client: None, len }));
    }
    let (Some(source), Some(_destination), Some(port), Some(_port), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyHeaderError::V1(
            "want PROTOCOL SOURCE DESTINATION SOURCE-PORT DESTINATION-PORT",
        ));
    };
    let ip: IpAddr = match family {
        "TCP4" => source
            .parse::<Ipv4Addr>()
            .map_err(|_| ProxyHeaderError::V1("TCP4 with a source that is not an IPv4 address"))?
            .into(),
        "TCP6" => source
            .parse::<Ipv6Addr>()
            .map_err(|_| ProxyHeaderError::V1("TCP6 with a source that is not an IPv6 address"))?
            .into(),
        _ => {
            return Err(ProxyHeaderError::V1(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && (port == "0" || !port.starts_with('0'));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|_| port_ok)
        .ok_or(ProxyHeaderError::V1(
            "source port is not a number from 0 to 65535",
        ))?;
    Ok(Parsed::Complete(ProxyHeader {
        client: Some(SocketAddr::new(ip, port)),
        len,
    }))
}

/// Reads a PROXY protocol header (v1 or v2) from the start of `stream`, exactly its
/// length, and returns the client address it names (`None` where the peer stands;
/// see [`ProxyHeader::client`]). A v1 header is read a byte at a time past its first
/// 12 so that nothing after it is consumed.
pub async fn read_proxy_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buf = Vec::with_capacity(V1_MAX);
    // Both versions start with at least 12 bytes: the v2 signature, or the
    // shortest v1 header (`PROXY UNKNOWN\r\n`, 15).
    let mut want = SIGNATURE.len();
    loop {
        let start = buf.len();
        buf.resize(start + want, 0);
        stream.read_exact(&mut buf[start..]).await?;
        match parse_proxy_header(&buf)? {
            Parsed::Complete(header) => return Ok(header.client),
            Parsed::Incomplete { needed } => want = needed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_peer() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = xff(&["203.0.113.7"]);
        assert_eq!(
            proxies.client(addr("10.1.1.1:5000"), &headers).ip(),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client(addr("198.51.100.9:5000"), &headers),
            addr("198.51.100.9:5000")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        // A client forging the leftmost entry does not get its way.
        let headers = xff(&["1.2.3.4, 203.0.113.7", "10.2.2.2"]);
        assert_eq!(
            proxies.client(addr("127.0.0.1:1"), &headers).ip(),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let headers = xff(&["[2001:db8::1]:443, 10.0.0.5"]);
        assert_eq!(
            proxies.client(addr("127.0.0.1:1"), &headers).ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Garbage stops the walk at the last good hop.
        let headers = xff(&["203.0.113.7, garbage, 10.0.0.5"]);
        assert_eq!(
            proxies.client(addr("127.0.0.1:1"), &headers).ip(),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn proxy_v2_headers_name_the_client_and_are_read_exactly() {
        let mut v4 = SIGNATURE.to_vec();
        v4.extend([
            0x21, 0x11, 0, 12, 203, 0, 113, 7, 127, 0, 0, 1, 0x1f, 0x90, 0, 80,
        ]);
        v4.extend(b"GET / HTTP/1.1\r\n");
        let mut stream = &v4[..];
        let client = read_proxy_header(&mut stream).await.unwrap();
        assert_eq!(client, Some(addr("203.0.113.7:8080")));
        assert_eq!(stream, b"GET / HTTP/1.1\r\n", "the request is left unread");

        let mut local = SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(read_proxy_header(&mut &local[..]).await.unwrap(), None);

        let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            read_proxy_header(&mut &plain[..]).await,
            Err(ProxyHeaderError::Missing)
        ));
    }

    #[tokio::test]
    async fn proxy_v1_headers_name_the_client_and_are_read_exactly() {
        for (header, client) in [
            (
                "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n",
                Some(addr("203.0.113.7:51234")),
            ),
            (
                "PROXY TCP6 2001:db8::7 2001:db8::1 0 443\r\n",
                Some(addr("[2001:db8::7]:0")),
            ),
            ("PROXY UNKNOWN\r\n", None),
            ("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
        ] {
            let sent = format!("{header}GET / HTTP/1.1\r\n");
            let mut stream = sent.as_bytes();
            assert_eq!(
                read_proxy_header(&mut stream).await.unwrap(),
                client,
                "{header}"
            );
            assert_eq!(
                stream, b"GET / HTTP/1.1\r\n",
                "{header}: the request is left unread"
            );
        }
    }

    #[test]
    fn bad_proxy_v1_headers_say_what_is_wrong() {
        for (header, why) in [
            ("PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n", "want PROTOCOL"),
            ("PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n", "not an IPv4"),
            ("PROXY TCP6 203.0.113.7 ::1 1 2\r\n", "not an IPv6"),
            ("PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n", "not TCP4, TCP6"),
            ("PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n", "source port"),
            ("PROXY TCP4 203.0.113.7 10.0.0.1 080 2\r\n", "source port"),
            ("PROXY TCP4 203.0.113.7 10.0.0.1 +80 2\r\n", "source port"),
            ("PROXY TCP4  203.0.113.7 10.0.0.1 80 2\r\n", "want PROTOCOL"),
            (
                "PROXY TCP4 203.0.113.7 10.0.0.1 80 2 extra\r\n",
                "want PROTOCOL",
            ),
            ("PROXY TCP4 \u{e9} 10.0.0.1 80 2\r\n", "not an IPv4"),
        ] {
            let err = parse_proxy_header(header.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{header:?}: {err}");
        }
        let endless = format!("PROXY UNKNOWN {}", "x".repeat(200));
        let err = parse_proxy_header(endless.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no CRLF within 107 bytes"), "{err}");
    }

    #[test]
    fn a_header_in_pieces_asks_for_what_it_still_needs() {
        let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";
        for cut in 0..v1.len() {
            assert!(
                matches!(
                    parse_proxy_header(&v1[..cut]),
                    Ok(Parsed::Incomplete { .. })
                ),
                "v1 cut at {cut}"
            );
        }
        let mut v2 = SIGNATURE.to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 203, 0, 113, 7, 127, 0, 0, 1, 0x1f, 0x90, 0, 80,
        ]);
        for cut in 0..v2.len() {
            let Ok(Parsed::Incomplete { needed }) = parse_proxy_header(&v2[..cut]) else {
                panic!("v2 cut at {cut}");
            };
            assert!(cut + needed <= v2.len(), "never asks past the header");
        }
        assert_eq!(
            parse_proxy_header(&v2).unwrap(),
            Parsed::Complete(ProxyHeader {
                client: Some(addr("203.0.113.7:8080")),
                len: v2.len()
            })
        );
    }
}
