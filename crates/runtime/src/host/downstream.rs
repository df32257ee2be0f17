//! `verge:edge/downstream`: the client this request came from.

use std::net::SocketAddr;

use wasmtime::component::{HasData, Linker};

use super::bindings::downstream::{self as wit, Host};

/// The view a guest call gets: what the server said about the client.
pub(crate) struct Downstream {
    pub(crate) client_addr: Option<SocketAddr>,
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
        // Verge does not terminate TLS yet.
        None
    }
}
