//! Whether a response may be stored, and for how long (RFC 9111 §3 and §4.2, with
//! `Surrogate-Control` for the edge and RFC 5861's stale extensions).
//!
//! Written here rather than taken from `http-cache-semantics`: that crate has no
//! `Surrogate-Control`, `stale-while-revalidate` or `stale-if-error`, cannot take an
//! app's default TTL or a guest's override, and keeps cloned request and response
//! header maps per object, where the cache needs a few numbers.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, header};

use crate::directives::Directives;
use crate::vary::VaryRule;

/// `Surrogate-Control`: like `Cache-Control`, for the edge only; stripped before the
/// client sees the response.
pub const SURROGATE_CONTROL: &str = "surrogate-control";
/// RFC 9213's field for CDNs: where present (and Surrogate-Control is not), the
/// edge obeys it instead of `Cache-Control`, which is left to browsers.
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";
/// `Surrogate-Key`: space-separated keys to purge the object by; stripped before the
/// client sees the response.
pub const SURROGATE_KEY: &str = "surrogate-key";

/// Longest surrogate key kept (Fastly's limit); longer ones are ignored.
const MAX_SURROGATE_KEY_LEN: usize = 1024;

/// Heuristic freshness (10 % of the time since `Last-Modified`) is capped at a day.
const MAX_HEURISTIC: Duration = Duration::from_secs(24 * 3600);

/// An app's choices for caching HTTP responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Freshness for a cacheable response that carries no explicit expiry.
    pub default_ttl: Option<Duration>,
    /// Store responses carrying `Set-Cookie` (shared with every client).
    pub share_set_cookie: bool,
}

/// How long an object is fresh, and how long after that it may still be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime, counted from the response's age zero.
    pub ttl: Duration,
    /// After going stale, how long it may be served while one refresh runs.
    pub stale_while_revalidate: Duration,
    /// After going stale, how long it may be served when a refresh fails.
    pub stale_if_error: Duration,
    /// Once stale, never serve it without a successful revalidation.
    pub must_revalidate: bool,
}

/// A guest's override of what the headers say (Fastly's `set_cache_override`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Override {
    /// Do not store the response at all.
    pub pass: bool,
    pub ttl: Option<Duration>,
    pub stale_while_revalidate: Option<Duration>,
    /// Replace the response's `Surrogate-Key` keys.
    pub surrogate_keys: Option<Vec<String>>,
}

/// The request header a guest sets on an origin request to override how its
/// response is cached; Verge removes it before the request leaves.
pub const CACHE_OVERRIDE: &str = "verge-cache-override";

impl Override {
    /// Parses a `Verge-Cache-Override` value: `pass`, or any of `ttl=SECONDS`,
    /// `stale-while-revalidate=SECONDS` and `surrogate-key="k1 k2"`, comma-separated.
    pub fn parse(value: &http::HeaderValue) -> Result<Override, String> {
        let text = value
            .to_str()
            .map_err(|_| "the value is not visible ASCII".to_string())?;
        let mut out = Override::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, arg) = match part.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (part, None),
            };
            let seconds = |arg: Option<&str>| -> Result<Duration, String> {
                arg.and_then(|a| a.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .ok_or_else(|| format!("`{name}` wants a number of seconds"))
            };
            match name.to_ascii_lowercase().as_str() {
                "pass" => out.pass = true,
                "ttl" => out.ttl = Some(seconds(arg)?),
                "stale-while-revalidate" => out.stale_while_revalidate = Some(seconds(arg)?),
                "surrogate-key" => {
                    let keys: Vec<String> = arg
                        .unwrap_or_default()
                        .split_ascii_whitespace()
                        .filter(|k| k.len() <= MAX_SURROGATE_KEY_LEN)
                        .map(str::to_owned)
                        .collect();
                    out.surrogate_keys = Some(keys);
                }
                other => {
                    return Err(format!(
                        "unknown directive `{other}` (expected pass, ttl, \
                         stale-while-revalidate or surrogate-key)"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// What a storable response is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    pub freshness: Freshness,
    /// The response's age when it was received (`Age`, or what `Date` says).
    pub initial_age: Duration,
    pub surrogate_keys: Vec<String>,
    pub vary: VaryRule,
}

/// Why a response is not stored; shown in the access log and the debug header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotStorable {
    #[error("the request method is not cacheable")]
    Method,
    #[error("the status is not cacheable")]
    Status,
    #[error("no-store")]
    NoStore,
    #[error("the request said no-store")]
    RequestNoStore,
    #[error("private")]
    Private,
    #[error("the request carries Authorization and the response is not public")]
    Authorization,
    #[error("the response sets a cookie")]
    SetCookie,
    #[error("Vary: *")]
    VaryStar,
    #[error("no freshness information and no default TTL")]
    NoFreshness,
    #[error("the app asked to pass")]
    Pass,
}

impl NotStorable {
    /// Whether the reason lies in this request (its `no-store`, its
    /// `Authorization`), so that another request for the key may well be stored.
    pub fn is_about_the_request(self) -> bool {
        matches!(
            self,
            NotStorable::RequestNoStore | NotStorable::Authorization
        )
    }
}

/// Statuses cacheable without explicit freshness (RFC 9110 §15.1).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Statuses stored at all: partial content (206) is answered from full objects
/// instead, and server errors other than 501 never displace a good object.
fn storable_status(status: StatusCode) -> bool {
    heuristically_cacheable(status) || matches!(status.as_u16(), 302 | 303 | 307)
}

/// Decides whether a response to a request may be stored, and with what freshness.
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    policy: &HttpPolicy,
    overrides: Option<&Override>,
    now: SystemTime,
) -> Result<Storable, NotStorable> {
    if overrides.is_some_and(|o| o.pass) {
        return Err(NotStorable::Pass);
    }
    if method != Method::GET {
        return Err(NotStorable::Method);
    }
    if !storable_status(status) {
        return Err(NotStorable::Status);
    }
    let req_cc = Directives::parse(request.get_all(header::CACHE_CONTROL));
    // CDN-Cache-Control (RFC 9213) takes the place of Cache-Control when it says
    // anything; one that parses to nothing is ignored, as the RFC asks.
    let cdn = Directives::parse(response.get_all(CDN_CACHE_CONTROL));
    let cc = if cdn.is_empty() {
        Directives::parse(response.get_all(header::CACHE_CONTROL))
    } else {
        cdn
    };
    let sc = Directives::parse(response.get_all(SURROGATE_CONTROL));
    // Surrogate-Control speaks to the edge; where it says anything, Cache-Control is
    // left to browsers.
    let edge = if sc.is_empty() { &cc } else { &sc };
    if req_cc.no_store {
        return Err(NotStorable::RequestNoStore);
    }
    if edge.no_store {
        return Err(NotStorable::NoStore);
    }
    if sc.is_empty() && cc.private {
        return Err(NotStorable::Private);
    }
    if request.contains_key(header::AUTHORIZATION)
        && !(cc.public || cc.must_revalidate || cc.s_maxage.is_some() || !sc.is_empty())
    {
        return Err(NotStorable::Authorization);
    }
    if response.contains_key(header::SET_COOKIE) && !policy.share_set_cookie {
        return Err(NotStorable::SetCookie);
    }
    let vary = VaryRule::from_response(response).ok_or(NotStorable::VaryStar)?;

    let date = http_date(response, header::DATE);
    let age_header = age(response);
    let apparent_age = date
        .and_then(|d| now.duration_since(d).ok())
        .unwrap_or_default();
    let initial_age = age_header.max(apparent_age);

    let explicit = if edge.invalid {
        Some(Duration::ZERO)
    } else if let Some(ttl) = sc.max_age {
        Some(ttl)
    } else if let Some(ttl) = cc.s_maxage.or(cc.max_age) {
        Some(ttl)
    } else if let Some(expires) = response.get(header::EXPIRES) {
        // An invalid date (`0`, say) means already expired (§5.3).
        let expires = expires
            .to_str()
            .ok()
            .and_then(|t| httpdate::parse_http_date(t).ok());
        let base = date.unwrap_or(now);
        Some(expires.map_or(Duration::ZERO, |e| {
            e.duration_since(base).unwrap_or_default()
        }))
    } else {
        None
    };
    let override_ttl = overrides.and_then(|o| o.ttl);
    let mut ttl = match (override_ttl, explicit) {
        (Some(ttl), _) => ttl,
        (None, Some(ttl)) => ttl,
        // `no-cache` with a validator: stored, and revalidated on every use.
        (None, None)
            if sc.is_empty() && cc.no_cache && crate::serving::has_validators(response) =>
        {
            Duration::ZERO
        }
        (None, None) => {
            if !(heuristically_cacheable(status) || cc.public) {
                return Err(NotStorable::NoFreshness);
            }
            if let Some(ttl) = policy.default_ttl {
                ttl
            } else if let Some(modified) = http_date(response, header::LAST_MODIFIED) {
                let since = date
                    .unwrap_or(now)
                    .duration_since(modified)
                    .unwrap_or_default();
                (since / 10).min(MAX_HEURISTIC)
            } else {
                return Err(NotStorable::NoFreshness);
            }
        }
    };
    if override_ttl.is_none() && sc.is_empty() && cc.no_cache {
        // Storable, but every use needs a revalidation.
        ttl = Duration::ZERO;
    }
    let must_revalidate = override_ttl.is_none()
        && (edge.must_revalidate
            || (sc.is_empty() && (cc.proxy_revalidate || cc.s_maxage.is_some() || cc.no_cache)));

    let surrogate_keys = match overrides.and_then(|o| o.surrogate_keys.clone()) {
        Some(keys) => keys,
        None => surrogate_keys(response),
    };
    Ok(Storable {
        freshness: Freshness {
            ttl,
            stale_while_revalidate: overrides
                .and_then(|o| o.stale_while_revalidate)
                .or(edge.stale_while_revalidate)
                .unwrap_or_default(),
            stale_if_error: edge.stale_if_error.unwrap_or_default(),
            must_revalidate,
        },
        initial_age: if override_ttl.is_some() {
            Duration::ZERO
        } else {
            initial_age
        },
        surrogate_keys,
        vary,
    })
}

/// The keys of a response's `Surrogate-Key` lines (space-separated, deduplicated).
pub fn surrogate_keys(response: &HeaderMap) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for value in response.get_all(SURROGATE_KEY) {
        let Ok(text) = value.to_str() else { continue };
        for key in text.split_ascii_whitespace() {
            if key.len() <= MAX_SURROGATE_KEY_LEN && !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}

/// The response's `Age`. A list (`Age: 7200, 0`, or two `Age` lines) counts by its
/// first member, as the strictest shared caches read it: a response that says it
/// is old must not be taken for fresh because a later hop appended `0`. A value too
/// large for the clock saturates at 2^31 seconds (RFC 9111 §1.2.2); one that is not
/// a number counts as 0.
fn age(response: &HeaderMap) -> Duration {
    let Some(first) = response.get(header::AGE).and_then(|v| v.to_str().ok()) else {
        return Duration::ZERO;
    };
    let member = first.split(',').next().unwrap_or("").trim();
    if member.is_empty() || !member.bytes().all(|b| b.is_ascii_digit()) {
        return Duration::ZERO;
    }
    const MAX: u64 = 1 << 31;
    Duration::from_secs(member.parse::<u64>().map_or(MAX, |s| s.min(MAX)))
}

pub(crate) fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    let text = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_headers as headers;

    fn eval(response: &[(&str, &str)]) -> Result<Storable, NotStorable> {
        eval_with(&[], 200, response, &HttpPolicy::default())
    }

    fn eval_with(
        request: &[(&str, &str)],
        status: u16,
        response: &[(&str, &str)],
        policy: &HttpPolicy,
    ) -> Result<Storable, NotStorable> {
        evaluate(
            &Method::GET,
            &headers(request),
            StatusCode::from_u16(status).unwrap(),
            &headers(response),
            policy,
            None,
            SystemTime::now(),
        )
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn surrogate_control_beats_s_maxage_beats_max_age_beats_expires() {
        let far = httpdate::fmt_http_date(SystemTime::now() + secs(1000));
        let all = [
            ("surrogate-control", "max-age=50"),
            ("cache-control", "max-age=10, s-maxage=20"),
            ("expires", far.as_str()),
        ];
        assert_eq!(eval(&all).unwrap().freshness.ttl, secs(50));
        assert_eq!(eval(&all[1..]).unwrap().freshness.ttl, secs(20));
        let ttl = eval(&[("cache-control", "max-age=10"), ("expires", far.as_str())])
            .unwrap()
            .freshness
            .ttl;
        assert_eq!(ttl, secs(10));
        let ttl = eval(&all[2..]).unwrap().freshness.ttl;
        assert!(ttl > secs(990) && ttl <= secs(1000), "{ttl:?}");
        assert_eq!(
            eval(&[("expires", "0")]).unwrap().freshness.ttl,
            Duration::ZERO
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            eval(&[("cache-control", "no-store, max-age=60")]),
            Err(NotStorable::NoStore)
        );
        assert_eq!(
            eval(&[("cache-control", "private, max-age=60")]),
            Err(NotStorable::Private)
        );
        assert_eq!(
            eval(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]),
            Err(NotStorable::SetCookie)
        );
        assert_eq!(
            eval(&[("cache-control", "max-age=60"), ("vary", "*")]),
            Err(NotStorable::VaryStar)
        );
        assert_eq!(eval(&[]), Err(NotStorable::NoFreshness));
        assert_eq!(
            eval_with(
                &[],
                500,
                &[("cache-control", "max-age=60")],
                &HttpPolicy::default()
            ),
            Err(NotStorable::Status)
        );
        assert_eq!(
            eval_with(
                &[("authorization", "Bearer x")],
                200,
                &[("cache-control", "max-age=60")],
                &HttpPolicy::default()
            ),
            Err(NotStorable::Authorization)
        );
        assert!(
            eval_with(
                &[("authorization", "Bearer x")],
                200,
                &[("cache-control", "public, max-age=60")],
                &HttpPolicy::default()
            )
            .is_ok()
        );
        assert_eq!(
            eval_with(
                &[("cache-control", "no-store")],
                200,
                &[("cache-control", "max-age=60")],
                &HttpPolicy::default()
            ),
            Err(NotStorable::RequestNoStore)
        );
    }

    #[test]
    fn the_edge_may_cache_what_browsers_may_not() {
        let s = eval(&[
            ("cache-control", "private, no-store"),
            (
                "surrogate-control",
                "max-age=300, stale-while-revalidate=30",
            ),
            ("surrogate-key", "a b  a"),
        ])
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(300));
        assert_eq!(s.freshness.stale_while_revalidate, secs(30));
        assert_eq!(s.surrogate_keys, ["a", "b"]);
    }

    #[test]
    fn default_ttl_only_without_explicit_freshness_and_for_default_statuses() {
        let policy = HttpPolicy {
            default_ttl: Some(secs(30)),
            ..HttpPolicy::default()
        };
        assert_eq!(
            eval_with(&[], 200, &[], &policy).unwrap().freshness.ttl,
            secs(30)
        );
        assert_eq!(
            eval_with(&[], 404, &[], &policy).unwrap().freshness.ttl,
            secs(30)
        );
        assert_eq!(
            eval_with(&[], 302, &[], &policy),
            Err(NotStorable::NoFreshness)
        );
        assert_eq!(
            eval_with(&[], 302, &[("cache-control", "max-age=5")], &policy)
                .unwrap()
                .freshness
                .ttl,
            secs(5)
        );
        assert_eq!(
            eval_with(&[], 200, &[("cache-control", "max-age=5")], &policy)
                .unwrap()
                .freshness
                .ttl,
            secs(5)
        );
    }

    #[test]
    fn heuristic_freshness_from_last_modified() {
        let now = SystemTime::now();
        let modified = httpdate::fmt_http_date(now - secs(1000));
        let date = httpdate::fmt_http_date(now);
        let s = eval(&[("last-modified", &modified), ("date", &date)]).unwrap();
        assert!(s.freshness.ttl >= secs(99) && s.freshness.ttl <= secs(101));
        // Not for a status that is not cacheable by default.
        assert_eq!(
            eval_with(
                &[],
                302,
                &[("last-modified", &modified)],
                &HttpPolicy::default()
            ),
            Err(NotStorable::NoFreshness)
        );
    }

    #[test]
    fn revalidation_flags() {
        let s = eval(&[("cache-control", "no-cache"), ("etag", "\"v1\"")]).unwrap();
        assert_eq!(s.freshness.ttl, Duration::ZERO);
        assert!(s.freshness.must_revalidate);
        assert!(
            eval(&[("cache-control", "max-age=5, must-revalidate")])
                .unwrap()
                .freshness
                .must_revalidate
        );
        assert!(
            eval(&[("cache-control", "s-maxage=5")])
                .unwrap()
                .freshness
                .must_revalidate
        );
        assert!(
            eval(&[("cache-control", "max-age=5, proxy-revalidate")])
                .unwrap()
                .freshness
                .must_revalidate
        );
        let s = eval(&[(
            "cache-control",
            "max-age=5, stale-while-revalidate=7, stale-if-error=9",
        )])
        .unwrap();
        assert!(!s.freshness.must_revalidate);
        assert_eq!(s.freshness.stale_while_revalidate, secs(7));
        assert_eq!(s.freshness.stale_if_error, secs(9));
        assert!(
            eval(&[("cache-control", "max-age=5, max-age=6")])
                .unwrap()
                .freshness
                .ttl
                .is_zero()
        );
    }

    #[test]
    fn initial_age_from_age_and_date() {
        let s = eval(&[("cache-control", "max-age=60"), ("age", "15")]).unwrap();
        assert_eq!(s.initial_age, secs(15));
        let date = httpdate::fmt_http_date(SystemTime::now() - secs(20));
        let s = eval(&[("cache-control", "max-age=60"), ("date", &date)]).unwrap();
        assert!(s.initial_age >= secs(19) && s.initial_age <= secs(21));
    }

    #[test]
    fn cdn_cache_control_takes_the_place_of_cache_control() {
        // RFC 9213's examples: the targeted field wins both ways.
        assert!(matches!(
            eval(&[
                ("cdn-cache-control", "no-store"),
                ("cache-control", "max-age=3600")
            ]),
            Err(NotStorable::NoStore)
        ));
        let s = eval(&[
            ("cdn-cache-control", "max-age=60"),
            ("cache-control", "no-store"),
        ])
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(60));
        let s = eval(&[
            (
                "cdn-cache-control",
                "max-age=60, stale-while-revalidate=5, stale-if-error=9",
            ),
            ("cache-control", "private, max-age=1"),
        ])
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(60));
        assert_eq!(s.freshness.stale_while_revalidate, secs(5));
        assert_eq!(s.freshness.stale_if_error, secs(9));
        assert!(matches!(
            eval(&[
                ("cdn-cache-control", "private"),
                ("cache-control", "max-age=60")
            ]),
            Err(NotStorable::Private)
        ));
        // no-cache: stored, revalidated on every use.
        let s = eval(&[
            ("cdn-cache-control", "no-cache"),
            ("cache-control", "max-age=60"),
            ("etag", "\"v1\""),
        ])
        .unwrap();
        assert!(s.freshness.ttl.is_zero() && s.freshness.must_revalidate);
        // One that says nothing the cache knows is ignored.
        let s = eval(&[
            ("cdn-cache-control", "bogus"),
            ("cache-control", "max-age=30"),
        ])
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(30));
        // Surrogate-Control still speaks first.
        let s = eval(&[
            ("surrogate-control", "max-age=90"),
            ("cdn-cache-control", "max-age=60"),
        ])
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(90));
    }

    #[test]
    fn age_counts_by_its_first_member() {
        let age_of = |values: &[&str]| {
            let mut response = HeaderMap::new();
            for v in values {
                response.append(header::AGE, v.parse().unwrap());
            }
            age(&response)
        };
        assert_eq!(age_of(&["7200, 0"]), secs(7200));
        assert_eq!(age_of(&["7200", "0"]), secs(7200));
        assert_eq!(age_of(&[" 15 "]), secs(15));
        assert_eq!(age_of(&["99999999999999999999999"]), secs(1 << 31));
        assert_eq!(age_of(&["-5"]), Duration::ZERO);
        assert_eq!(age_of(&["soon"]), Duration::ZERO);
        assert_eq!(age_of(&[]), Duration::ZERO);
        // With max-age=3600, `Age: 7200, 0` is stale from the start.
        let s = eval(&[("cache-control", "max-age=3600"), ("age", "7200, 0")]).unwrap();
        assert!(s.initial_age > s.freshness.ttl);
    }

    #[test]
    fn overrides_parse() {
        let o = Override::parse(&http::HeaderValue::from_static(
            "ttl=60, stale-while-revalidate=5, surrogate-key=\"a b\"",
        ))
        .unwrap();
        assert_eq!(o.ttl, Some(secs(60)));
        assert_eq!(o.stale_while_revalidate, Some(secs(5)));
        assert_eq!(
            o.surrogate_keys,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert!(!o.pass);
        assert!(
            Override::parse(&http::HeaderValue::from_static("pass"))
                .unwrap()
                .pass
        );
        let err = Override::parse(&http::HeaderValue::from_static("ttl=soon")).unwrap_err();
        assert!(err.contains("`ttl` wants a number"), "{err}");
        let err = Override::parse(&http::HeaderValue::from_static("forever")).unwrap_err();
        assert!(err.contains("unknown directive `forever`"), "{err}");
    }

    #[test]
    fn overrides_win() {
        let o = Override {
            ttl: Some(secs(99)),
            surrogate_keys: Some(vec!["k".into()]),
            ..Override::default()
        };
        let s = evaluate(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            &headers(&[("cache-control", "no-cache"), ("surrogate-key", "x")]),
            &HttpPolicy::default(),
            Some(&o),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(s.freshness.ttl, secs(99));
        assert_eq!(s.surrogate_keys, ["k"]);
        let pass = Override {
            pass: true,
            ..Override::default()
        };
        assert_eq!(
            evaluate(
                &Method::GET,
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("cache-control", "max-age=60")]),
                &HttpPolicy::default(),
                Some(&pass),
                SystemTime::now(),
            ),
            Err(NotStorable::Pass)
        );
    }
}
