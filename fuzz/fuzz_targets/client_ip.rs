//! The client behind trusted proxies: `X-Forwarded-For` as a client could forge it.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use verge_client_ip::TrustedProxies;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let nets: &[&str] = match pick % 4 {
        0 => &[],
        1 => &["127.0.0.0/8"],
        2 => &["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"],
        _ => &["0.0.0.0/0", "::/0"],
    };
    let proxies = TrustedProxies(nets.iter().map(|n| n.parse().unwrap()).collect());
    let headers = verge_fuzz::headers(rest);
    let peer: SocketAddr = if pick & 4 == 0 {
        "127.0.0.1:4000".parse().unwrap()
    } else {
        "[2001:db8::9]:4000".parse().unwrap()
    };
    let client = proxies.client(peer, &headers);
    // An untrusted peer is the client, whatever its headers say.
    if !proxies.contains(peer.ip()) {
        assert_eq!(client, peer);
    }
});
