//! Good and hostile behaviour in one guest, chosen by path, so tests can interleave
//! them on one server:
//! `/loop` spins forever, `/memory-bomb` allocates without end, `/recursion` recurses
//! without end, `/panic` panics; `/busy?ms=N` computes for N ms of wall time, checking
//! the clock now and then; `/alloc?mb=N` touches N MiB; `/sleep?ms=N` sleeps N ms
//! (printing `sleeping` first); `/scatter` counts the pages of a zeroed static
//! MiB that are not zero, then writes every other page (128 disjoint runs), answering
//! `dirty=N`; any other path echoes the request body.
use verge::{Error, Request, Response};

/// Zeroed memory in every instance's initial memory, for `/scatter`.
static mut SCATTER: [u8; 1 << 20] = [0; 1 << 20];

#[inline(never)]
#[allow(unconditional_recursion)]
fn dive(depth: u64, pad: &mut [u8; 64]) -> u64 {
    let mut local = *pad;
    local[(depth % 64) as usize] = depth as u8;
    std::hint::black_box(&mut local);
    dive(depth + 1, &mut local) + local[0] as u64
}

/// The number in `?NAME=N`.
fn param(req: &Request, name: &str) -> u64 {
    req.query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    match req.path() {
        "/loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "/memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 4 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "/recursion" => {
            let n = dive(0, &mut [0; 64]);
            Ok(Response::from_text(format!("{n}")))
        }
        "/busy" => {
            let until =
                std::time::Instant::now() + std::time::Duration::from_millis(param(&req, "ms"));
            let mut x: u64 = 0;
            while std::time::Instant::now() < until {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            Ok(Response::from_text(format!("{x}")))
        }
        "/alloc" => {
            let mut block = vec![0u8; (param(&req, "mb") as usize) << 20];
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            std::hint::black_box(&block);
            Ok(Response::from_text(format!("{}", block.len())))
        }
        "/sleep" => {
            println!("sleeping");
            std::thread::sleep(std::time::Duration::from_millis(param(&req, "ms")));
            Ok(Response::from_text("slept"))
        }
        "/scatter" => {
            let base = std::ptr::addr_of_mut!(SCATTER).cast::<u8>();
            let mut dirty = 0;
            for offset in (0..1 << 20).step_by(8192) {
                // SAFETY: within SCATTER; one request runs per instance.
                unsafe {
                    let page = base.add(offset);
                    dirty += usize::from(page.read_volatile() != 0);
                    page.write_volatile(0xab);
                }
            }
            Ok(Response::from_text(format!("dirty={dirty}")))
        }
        "/panic" => panic!("guest panicked on purpose at {}", req.path()),
        _ => Ok(Response::new().with_body(req.into_body())),
    }
}
