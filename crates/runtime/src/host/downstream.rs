//! `verge:edge/downstream`: the client this request came from.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::bindings::downstream::{self as wit, Host};

/// The view a guest call gets: what the server said about the client.
pub(crate) struct Downstream {
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) tls: Option<Arc<TlsInfo>>,
}

/// What the server agreed on with a client over TLS, for `downstream.tls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: &'static str,
    /// The IANA name: `TLS_AES_128_GCM_SHA256`.
    pub cipher_suite: &'static str,
    /// The server name the client asked for (SNI), in lower case.
    pub server_name: Option<String>,
    /// The ALPN protocol agreed on: `h2`, `http/1.1`.
    pub alpn: Option<String>,
}

impl HasData for Downstream {
    type Data<'a> = Downstream;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> Downstream,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Downstream>(linker, view)
}

impl Host for Downstream {
    fn client_ip(&mut self) -> Option<String> {
        // An IPv4 client on a dual-stack socket is shown as IPv4, not ::ffff:a.b.c.d.
        self.client_addr.map(|a| a.ip().to_canonical().to_string())
    }

    fn tls(&mut self) -> Option<wit::TlsInfo> {
        self.tls.as_deref().map(|tls| wit::TlsInfo {
            protocol: tls.protocol.to_owned(),
            cipher_suite: tls.cipher_suite.to_owned(),
            server_name: tls.server_name.clone(),
            alpn: tls.alpn.clone(),
        })
    }
}
