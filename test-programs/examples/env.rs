//! Reports what the sandbox lets a guest reach, through the raw WASI interfaces (not
//! the adapter, which would hide them): environment, arguments, preopened directories,
//! TCP, name lookup and outgoing HTTP.
use verge::{Error, Request, Response};
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::{instance_network, ip_name_lookup, tcp_create_socket};

fn tcp_connect() -> String {
    let network = instance_network::instance_network();
    let socket = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(socket) => socket,
        Err(e) => return format!("{e:?}"),
    };
    let addr = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 80,
        address: (127, 0, 0, 1),
    });
    if let Err(e) = socket.start_connect(&network, addr) {
        return format!("{e:?}");
    }
    socket.subscribe().block();
    match socket.finish_connect() {
        Ok(_) => "connected".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn name_lookup() -> String {
    let network = instance_network::instance_network();
    match ip_name_lookup::resolve_addresses(&network, "localhost") {
        Err(e) => format!("{e:?}"),
        Ok(stream) => {
            stream.subscribe().block();
            match stream.resolve_next_address() {
                Ok(Some(_)) => "resolved".into(),
                Ok(None) => "no addresses".into(),
                Err(e) => format!("{e:?}"),
            }
        }
    }
}

fn outgoing_http() -> String {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some("127.0.0.1:1"));
    let _ = request.set_path_with_query(Some("/"));
    match wasip2::http::outgoing_handler::handle(request, None) {
        Err(e) => format!("{e:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(_))) => "answered".into(),
                Some(Ok(Err(e))) => format!("{e:?}"),
                other => format!("{other:?}"),
            }
        }
    }
}

#[verge::main]
fn main(_req: Request) -> Result<Response, Error> {
    let env: std::collections::BTreeMap<String, String> = verge::env::vars().into_iter().collect();
    Response::from_json(&serde_json::json!({
        "env": env,
        "greeting": verge::env::var("GREETING"),
        "std_env_count": std::env::vars().count(),
        "args": wasip2::cli::environment::get_arguments(),
        "preopens": wasip2::filesystem::preopens::get_directories().len(),
        "tcp": tcp_connect(),
        "name_lookup": name_lookup(),
        "http": outgoing_http(),
    }))
}
