//! Listener settings.

use std::net::SocketAddr;
use std::time::Duration;

use verge_client_ip::TrustedProxies;

/// How the server listens and what it accepts before any app runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Most request headers accepted (HTTP/1); more gets `431`.
    pub max_header_count: usize,
    /// Largest request head in bytes (request line + headers); more gets `431`.
    pub max_header_bytes: usize,
    /// How long a client may take to send its request head.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Peers whose `X-Forwarded-For` (and PROXY header) name the client.
    pub trusted_proxies: TrustedProxies,
    /// Expect a PROXY protocol v2 header on connections from trusted proxies.
    pub proxy_protocol: bool,
    /// Request threads: connections are served by this many threads, each with a
    /// single-threaded runtime of its own (one per core is the CLI's default); 0
    /// serves them on the runtime that runs the server.
    pub threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            max_header_count: 100,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
            threads: 0,
        }
    }
}
