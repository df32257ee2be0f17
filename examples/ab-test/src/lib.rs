//! A/B testing at the edge.
//!
//! A new visitor is put in variant `a` (backend `control`) or `b` (backend
//! `experiment`) at random, `[config] experiment_percent` percent of them in `b`, and
//! gets a cookie that keeps them there. The request goes to the variant's backend
//! with `x-ab-variant`, and the response carries `x-ab-variant` too, with
//! `Vary: Cookie` so shared caches keep the variants apart.

use verge::{header, Error, HeaderValue, Request, Response};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    A,
    B,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::A => "a",
            Variant::B => "b",
        }
    }

    fn backend(self) -> &'static str {
        match self {
            Variant::A => "control",
            Variant::B => "experiment",
        }
    }
}

/// The variant named by the cookie `name`, if the request has a valid one.
fn from_cookie(req: &Request, name: &str) -> Option<Variant> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| match v {
            "a" => Some(Variant::A),
            "b" => Some(Variant::B),
            _ => None,
        })
}

/// Draws a variant: `b` with probability `percent`/100.
fn draw(percent: f64) -> Variant {
    let basis_points = (percent.clamp(0.0, 100.0) * 100.0).round() as u64;
    let roll = wasip2::random::random::get_random_u64() % 10_000;
    if roll < basis_points {
        Variant::B
    } else {
        Variant::A
    }
}

#[verge::main]
fn main(mut req: Request) -> Result<Response, Error> {
    let config = |key: &str| verge::config::get(key);
    let cookie = config("cookie").unwrap_or_else(|| "ab_variant".into());
    let percent: f64 = config("experiment_percent")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50.0);
    let max_age: u64 = config("cookie_max_age")
        .and_then(|m| m.parse().ok())
        .unwrap_or(30 * 86_400);

    let (variant, new_visitor) = match from_cookie(&req, &cookie) {
        Some(variant) => (variant, false),
        None => (draw(percent), true),
    };
    req.set_header("x-ab-variant", variant.name());
    let mut resp = req.send(variant.backend())?;
    let headers = resp.headers_mut();
    headers.insert("x-ab-variant", HeaderValue::from_static(variant.name()));
    headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    if new_visitor {
        let set = format!(
            "{cookie}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax",
            variant.name()
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_str(&set)?);
    }
    Ok(resp)
}
