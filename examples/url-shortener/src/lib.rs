//! A URL shortener on the edge, as in Fastly's KV store tutorial.
//!
//! - `POST /shorten` with `{"url": "https://…"}` stores the URL under a new random
//!   slug and answers `201 {"slug": …, "short_url": …}`; 400 unless the URL is
//!   http(s).
//! - `GET /<slug>` answers `302` to the stored URL, or 404.
//! - `GET /health` answers `ok`.
//!
//! Links live in the KV store `links` (seeded from `links.json` in development).

use serde::Deserialize;
use verge::kv::{InsertMode, KvError, Store};
use verge::{Error, Method, Request, Response};

#[derive(Deserialize)]
struct ShortenRequest {
    url: String,
}

/// Slug alphabet: no look-alikes (0/O, 1/l/I).
const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
const SLUG_LEN: usize = 7;

fn new_slug() -> String {
    let mut n = wasip2::random::random::get_random_u64();
    (0..SLUG_LEN)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
            n /= ALPHABET.len() as u64;
            c as char
        })
        .collect()
}

fn is_http_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<verge::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

fn error(status: u16, message: &str) -> Result<Response, Error> {
    Ok(Response::from_json(&serde_json::json!({ "error": message }))?.with_status(status))
}

fn shorten(req: Request, links: &Store) -> Result<Response, Error> {
    // Short links point back at the host (and scheme) the client used.
    let base = format!(
        "{}://{}",
        req.uri().scheme_str().unwrap_or("http"),
        req.uri().authority().map_or("localhost", |a| a.as_str())
    );
    let Ok(body) = req.into_json::<ShortenRequest>() else {
        return error(
            400,
            "body must be JSON like {\"url\": \"https://example.com/\"}",
        );
    };
    if !is_http_url(&body.url) {
        return error(400, "url must be http(s)");
    }
    // A fresh slug that is already taken is astronomically rare; retry then.
    for _ in 0..5 {
        let slug = new_slug();
        match links
            .build_insert(&slug)
            .mode(InsertMode::Add)
            .execute(&body.url)
        {
            Ok(_) => {
                let short_url = format!("{base}/{slug}");
                return Ok(Response::from_json(
                    &serde_json::json!({ "slug": slug, "short_url": short_url }),
                )?
                .with_status(201));
            }
            Err(KvError::Exists) => continue,
            // The store cannot take writes now (a fleet node cut off from the
            // others): nothing was stored; the client may retry.
            Err(KvError::Storage(why)) => return error(503, &format!("link not stored: {why}")),
            Err(e) => return Err(e.into()),
        }
    }
    error(503, "no free slug; try again")
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let links = Store::open("links")?;
    match (req.method().clone(), req.path()) {
        (Method::GET, "/health") => Ok(Response::from_text("ok")),
        (Method::POST, "/shorten") => shorten(req, &links),
        (Method::GET, path) => {
            let slug = path.trim_start_matches('/');
            if slug.is_empty() || slug.contains('/') {
                return error(404, "not found");
            }
            match links.lookup(slug)? {
                Some(entry) => Ok(Response::from_status(302)
                    .with_header("location", entry.text().unwrap_or_default())
                    .with_header("cache-control", "no-store")),
                None => error(404, "not found"),
            }
        }
        _ => Ok(Response::from_status(405).with_header("allow", "GET, POST")),
    }
}
