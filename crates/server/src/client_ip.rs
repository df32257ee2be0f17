//! Who the client is: the socket peer, unless the peer is a trusted proxy, in which
//! case the PROXY protocol v2 header or `X-Forwarded-For` says.

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

/// Why a PROXY protocol header was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the connection did not start with a PROXY protocol v2 header")]
    Missing,
    #[error("unsupported PROXY protocol version/command byte {0:#04x}")]
    Command(u8),
    #[error("PROXY protocol address block too short for family {0:#04x}")]
    Short(u8),
}

/// Reads a PROXY protocol v2 header from the start of `stream`, exactly its length,
/// and returns the client address it names (`None` for a `LOCAL` command or a family
/// other than TCP over IPv4/IPv6, where the peer stands).
pub async fn read_proxy_v2<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).await?;
    if &head[..12] != SIGNATURE {
        return Err(ProxyHeaderError::Missing);
    }
    let (version_command, family) = (head[12], head[13]);
    let len = u16::from_be_bytes([head[14], head[15]]) as usize;
    let mut block = vec![0u8; len];
    stream.read_exact(&mut block).await?;
    match version_command {
        0x20 => return Ok(None),
        0x21 => {}
        other => return Err(ProxyHeaderError::Command(other)),
    }
    let addr = match family {
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
    Ok(addr)
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
        let client = read_proxy_v2(&mut stream).await.unwrap();
        assert_eq!(client, Some(addr("203.0.113.7:8080")));
        assert_eq!(stream, b"GET / HTTP/1.1\r\n", "the request is left unread");

        let mut local = SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(read_proxy_v2(&mut &local[..]).await.unwrap(), None);

        let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            read_proxy_v2(&mut &plain[..]).await,
            Err(ProxyHeaderError::Missing)
        ));
    }
}
