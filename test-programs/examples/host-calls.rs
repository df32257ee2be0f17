//! Calls Verge's host APIs (`verge:edge`) the way a careless or hostile guest might:
//! `GET /calls?seed=N&count=M` makes M calls chosen by a generator seeded with N,
//! with names, keys, values, metadata, headers, surrogate keys, counts and TTLs of
//! every length and content (empty, at a limit and one past it, 64 KiB, 1 MiB,
//! control characters, invalid header names) and answers `ok=A err=B` with how many
//! returned a result and how many an error. A host that traps or fails on any of
//! them turns the request into a 500 instead. `?log=1` names each call on stderr
//! first, to find the one that did.
//!
//! Written against the raw bindings (no SDK), so the SDK's own checks do not stand
//! between the guest and the host.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "../wit",
    world: "verge:edge/imports",
    with: {
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use self::verge::edge::{cache, geo, kv, logs, ratelimit, secrets};

/// xorshift64: the same seed makes the same calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A length: mostly small, often at the limits the host enforces, sometimes
    /// large.
    fn len(&mut self) -> usize {
        match self.below(12) {
            0 => 0,
            1 => 1,
            2..=4 => self.below(40) as usize,
            5 => 1023 + self.below(3) as usize,
            6 => 2047 + self.below(3) as usize,
            7 => 64 << 10,
            8 => 1 << 20,
            _ => self.below(300) as usize,
        }
    }

    fn text(&mut self) -> String {
        let len = self.len();
        match self.below(6) {
            0 => "a".repeat(len),
            1 => "é\u{0}\n\t ".chars().cycle().take(len).collect(),
            2 => ["data", "cache", "items", "default"][self.below(4) as usize].to_owned(),
            3 => String::new(),
            _ => (0..len)
                .map(|_| char::from_u32(self.below(0x11_0000) as u32).unwrap_or('?'))
                .collect(),
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = self.len();
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn number(&mut self) -> u64 {
        match self.below(5) {
            0 => 0,
            1 => u64::MAX,
            2 => u32::MAX as u64,
            _ => self.below(1000),
        }
    }

    fn headers(&mut self) -> Vec<(String, Vec<u8>)> {
        (0..self.below(4))
            .map(|_| (self.text(), self.bytes()))
            .collect()
    }
}

/// One host call; `Ok` when it returned a result, `Err` when it returned an error.
fn call(rng: &mut Rng, which: u64) -> Result<(), ()> {
    fn ok<T, E>(r: Result<T, E>) -> Result<(), ()> {
        r.map(|_| ()).map_err(|_| ())
    }
    match which {
        0 => ok(geo::lookup(&rng.text())),
        1 => ok(kv::Store::open(&rng.text())),
        2..=6 => {
            let store = kv::Store::open("data").map_err(|_| ())?;
            let key = rng.text();
            match which {
                2 => ok(store.lookup(&key)),
                3 => {
                    let options = kv::InsertOptions {
                        mode: [
                            kv::InsertMode::Overwrite,
                            kv::InsertMode::Add,
                            kv::InsertMode::Append,
                            kv::InsertMode::Prepend,
                        ][rng.below(4) as usize],
                        ttl_ms: rng.below(2).eq(&0).then(|| rng.number()),
                        metadata: rng.below(2).eq(&0).then(|| rng.text()),
                        if_generation: rng.below(2).eq(&0).then(|| rng.number()),
                    };
                    ok(store.insert(&key, &rng.bytes(), &options))
                }
                4 => ok(store.delete(&key)),
                5 => ok(store.increment(&key, rng.next() as i64)),
                _ => {
                    let cursor = rng.below(2).eq(&0).then(|| rng.text());
                    ok(store.list(&key, cursor.as_deref(), rng.number() as u32))
                }
            }
        }
        7 => {
            let store = secrets::Store::open(&rng.text()).map_err(|_| ())?;
            ok(store.get(&rng.text()))
        }
        8 => ok(ratelimit::increment(
            &rng.text(),
            &rng.text(),
            rng.number() as u32,
        )),
        9 => ok(ratelimit::lookup_count(
            &rng.text(),
            &rng.text(),
            rng.number() as u32,
        )),
        10 => ok(ratelimit::check_rate(
            &rng.text(),
            &rng.text(),
            rng.number() as u32,
            ratelimit::Window::TenSeconds,
            rng.number() as u32,
            &rng.text(),
            rng.number() as u32,
        )),
        11 => ok(ratelimit::penalty_box_add(
            &rng.text(),
            &rng.text(),
            rng.number() as u32,
        )),
        12 => {
            let endpoint = logs::Endpoint::open(&rng.text()).map_err(|_| ())?;
            endpoint.write(&rng.text());
            Ok(())
        }
        13 => ok(cache::lookup(&rng.bytes(), &rng.headers())),
        14 => {
            let options = cache::WriteOptions {
                ttl_ms: rng.number(),
                stale_while_revalidate_ms: rng.number(),
                surrogate_keys: (0..rng.below(4)).map(|_| rng.text()).collect(),
                vary_by: (0..rng.below(3)).map(|_| rng.text()).collect(),
                user_metadata: rng.bytes(),
                known_length: rng.below(2).eq(&0).then(|| rng.number()),
            };
            let writer = cache::insert(&rng.bytes(), &rng.headers(), &options).map_err(|_| ())?;
            if let Ok(body) = writer.body() {
                let mut bytes = rng.bytes();
                bytes.truncate(4096);
                let _ = body.blocking_write_and_flush(&bytes);
            }
            ok(cache::Writer::finish(writer))
        }
        15 => ok(cache::purge_surrogate_key(&rng.text(), rng.below(2) == 0)),
        _ => ok(cache::purge(&rng.bytes(), rng.below(2) == 0)),
    }
}

struct Handler;

impl Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        let param = |name: &str| -> u64 {
            query
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (seed, count, log) = (param("seed"), param("count"), param("log") == 1);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (mut ok, mut err) = (0, 0);
        for i in 0..count {
            let which = rng.below(17);
            if log {
                eprintln!("call {i}: kind {which}");
            }
            match call(&mut rng, which) {
                Ok(()) => ok += 1,
                Err(()) => err += 1,
            }
        }
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a body");
        ResponseOutparam::set(out, Ok(response));
        {
            let stream = body.write().expect("a stream");
            let text = format!("ok={ok} err={err}");
            stream
                .blocking_write_and_flush(text.as_bytes())
                .expect("written");
        }
        OutgoingBody::finish(body, None).expect("finished");
    }
}

wasip2::http::proxy::export!(Handler);
