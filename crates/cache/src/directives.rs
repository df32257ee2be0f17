//! `Cache-Control` and `Surrogate-Control` directives (RFC 9111 §5.2, RFC 5861, and
//! the Edge Architecture note that defines `Surrogate-Control`).

use std::time::Duration;

use http::HeaderValue;

/// The largest delta-seconds a cache must handle; larger values mean this (§1.2.2).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// The directives of one header (all of its field lines together).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    pub max_age: Option<Duration>,
    pub s_maxage: Option<Duration>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub stale_while_revalidate: Option<Duration>,
    pub stale_if_error: Option<Duration>,
    pub max_stale: Option<Option<Duration>>,
    pub min_fresh: Option<Duration>,
    /// A freshness directive appeared twice with different values, or its value was not
    /// a number: the response is to be treated as stale (§4.2.1, §1.2.2).
    pub invalid: bool,
}

impl Directives {
    /// Parses every field line of a header. Unknown directives are ignored.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Directives {
        let mut d = Directives::default();
        for value in values {
            let Ok(text) = value.to_str() else {
                d.invalid = true;
                continue;
            };
            for (name, arg) in split_directives(text) {
                d.apply(&name.to_ascii_lowercase(), arg);
            }
        }
        d
    }

    /// True when there was nothing to parse.
    pub fn is_empty(&self) -> bool {
        *self == Directives::default()
    }

    fn apply(&mut self, name: &str, arg: Option<&str>) {
        let seconds = |d: &mut Directives, slot: fn(&mut Directives) -> &mut Option<Duration>| {
            let parsed = arg.and_then(delta_seconds);
            match (parsed, *slot(d)) {
                (None, _) => {
                    d.invalid = true;
                    *slot(d) = Some(Duration::ZERO);
                }
                (Some(new), Some(old)) if old != new => d.invalid = true,
                (Some(new), _) => *slot(d) = Some(new),
            }
        };
        match name {
            "max-age" => seconds(self, |d| &mut d.max_age),
            "s-maxage" => seconds(self, |d| &mut d.s_maxage),
            "stale-while-revalidate" => seconds(self, |d| &mut d.stale_while_revalidate),
            "stale-if-error" => seconds(self, |d| &mut d.stale_if_error),
            "min-fresh" => seconds(self, |d| &mut d.min_fresh),
            "max-stale" => self.max_stale = Some(arg.and_then(delta_seconds)),
            "no-store" => self.no_store = true,
            // The qualified forms (`no-cache="Set-Cookie"`) are honoured as the
            // unqualified ones: stricter, never wrong.
            "no-cache" => self.no_cache = true,
            "private" => self.private = true,
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            _ => {}
        }
    }
}

/// Delta-seconds: digits only; too large values saturate (§1.2.2).
fn delta_seconds(text: &str) -> Option<Duration> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = text.parse::<u64>().unwrap_or(MAX_DELTA_SECONDS);
    Some(Duration::from_secs(secs.min(MAX_DELTA_SECONDS)))
}

/// Splits `a, b=1, c="x, y"` into directives, keeping commas inside quotes.
fn split_directives(text: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut in_quotes = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map_or(rest.len(), |(i, _)| i);
        let part = rest[..end].trim();
        rest = rest.get(end + 1..).unwrap_or("");
        if part.is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((name, value)) => {
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                out.push((name.trim(), Some(value)));
            }
            None => out.push((part, None)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Directives {
        let values: Vec<HeaderValue> = lines
            .iter()
            .map(|l| HeaderValue::from_str(l).unwrap())
            .collect();
        Directives::parse(&values)
    }

    #[test]
    fn directives_across_field_lines() {
        let d = parse(&[
            "public, max-age=60",
            "S-MAXAGE=\"120\", stale-while-revalidate=30",
        ]);
        assert!(d.public);
        assert_eq!(d.max_age, Some(Duration::from_secs(60)));
        assert_eq!(d.s_maxage, Some(Duration::from_secs(120)));
        assert_eq!(d.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert!(!d.invalid);
    }

    #[test]
    fn quoted_commas_do_not_split() {
        let d = parse(&["no-cache=\"set-cookie, x-a\", max-age=5"]);
        assert!(d.no_cache);
        assert_eq!(d.max_age, Some(Duration::from_secs(5)));
    }

    #[test]
    fn conflicting_or_malformed_values_are_invalid() {
        assert!(parse(&["max-age=5, max-age=6"]).invalid);
        assert!(!parse(&["max-age=5, max-age=5"]).invalid);
        let d = parse(&["max-age=ten"]);
        assert!(d.invalid);
        assert_eq!(d.max_age, Some(Duration::ZERO));
        assert!(parse(&["max-age=-1"]).invalid);
    }

    #[test]
    fn huge_values_saturate() {
        let d = parse(&["max-age=99999999999999999999999"]);
        assert_eq!(d.max_age, Some(Duration::from_secs(1 << 31)));
        assert!(!d.invalid);
    }
}
