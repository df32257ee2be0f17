//! An API whose reads are cached at the edge and whose writes purge them.
//!
//! - `GET /items/<id>` answers `{"id": "<id>", "nonce": "<random>"}`. The nonce is new
//!   on every run of the handler, so a repeated answer is a cache hit. The response is
//!   fresh at the edge for 60 s (`Surrogate-Control`; browsers are told to
//!   revalidate) and tagged with the surrogate keys `items` and `item-<id>`.
//! - `POST /items/<id>` (an update) purges `item-<id>`: that item's next read runs
//!   the handler again, the other items stay cached. Answers 204.
//! - `POST /items` (a bulk change) purges `items`, every item at once. Answers 204.
use verge::{Error, Method, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let path = req.path().trim_end_matches('/');
    let id = path.strip_prefix("/items/").filter(|id| valid_id(id));
    match (req.method(), path, id) {
        (&Method::GET, _, Some(id)) => {
            let nonce = format!("{:016x}", wasip2::random::random::get_random_u64());
            Ok(
                Response::from_json(&serde_json::json!({ "id": id, "nonce": nonce }))?
                    .with_header("surrogate-control", "max-age=60")
                    .with_header("surrogate-key", format!("items item-{id}"))
                    .with_header("cache-control", "no-cache"),
            )
        }
        (&Method::POST, _, Some(id)) => {
            verge::cache::purge_surrogate_key(&format!("item-{id}"))?;
            Ok(Response::from_status(204))
        }
        (&Method::POST, "/items", None) => {
            verge::cache::purge_surrogate_key("items")?;
            Ok(Response::from_status(204))
        }
        (_, "/items", None) | (_, _, Some(_)) => {
            Ok(Response::from_status(405).with_header("allow", "GET, POST"))
        }
        _ => Ok(Response::from_status(404).with_body("no such item\n")),
    }
}

/// Item ids are 1–64 letters, digits, `-` or `_` (they become surrogate keys).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
