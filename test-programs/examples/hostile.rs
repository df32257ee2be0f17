//! Good and hostile behaviour in one guest, chosen by path, so tests can interleave
//! them on one server:
//! `/loop` spins forever, `/memory-bomb` allocates without end, `/recursion` recurses
//! without end, `/panic` panics; any other path echoes the request body.
use verge::{Error, Request, Response};

#[inline(never)]
#[allow(unconditional_recursion)]
fn dive(depth: u64, pad: &mut [u8; 64]) -> u64 {
    let mut local = *pad;
    local[(depth % 64) as usize] = depth as u8;
    std::hint::black_box(&mut local);
    dive(depth + 1, &mut local) + local[0] as u64
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
            Ok(Response::text(format!("{n}")))
        }
        "/panic" => panic!("guest panicked on purpose at {}", req.path()),
        _ => Ok(Response::new().with_body(req.into_body())),
    }
}
