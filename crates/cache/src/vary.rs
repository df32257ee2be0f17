//! `Vary`: which request headers select among the variants of one URL.
//!
//! The secondary key is built from normalised values, so requests that differ only in
//! spelling (`gzip, br` vs `br,gzip`, `EN-us` vs `en-US`) share a variant.

use http::{HeaderMap, HeaderName};

/// The request headers a response varies on (lower-cased, in order, no repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaryRule {
    names: Box<[HeaderName]>,
}

/// What a request's varied headers said, normalised; equal keys select one variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SecondaryKey(Box<[u8]>);

impl VaryRule {
    /// The rule of a response's `Vary` header lines. `None` for `Vary: *`, which no
    /// request ever matches (not storable).
    pub fn from_response(headers: &HeaderMap) -> Option<VaryRule> {
        let mut names: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(http::header::VARY) {
            let text = value.to_str().ok()?;
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if name == "*" {
                    return None;
                }
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Some(VaryRule {
            names: names.into(),
        })
    }

    /// A rule over the named headers (the programmable cache's `vary-by`).
    pub fn new(names: impl IntoIterator<Item = HeaderName>) -> VaryRule {
        let mut out: Vec<HeaderName> = Vec::new();
        for name in names {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        VaryRule { names: out.into() }
    }

    pub fn names(&self) -> &[HeaderName] {
        &self.names
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The secondary key of a request under this rule.
    pub fn secondary_key(&self, request: &HeaderMap) -> SecondaryKey {
        if self.names.is_empty() {
            return SecondaryKey::default();
        }
        let mut key = Vec::new();
        for name in self.names.iter() {
            key.extend_from_slice(name.as_str().as_bytes());
            key.push(b'\n');
            let mut items: Vec<String> = request
                .get_all(name)
                .iter()
                .flat_map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .split(',')
                        .map(normalise_item)
                        .collect::<Vec<_>>()
                })
                .filter(|item| !item.is_empty())
                .collect();
            // Codings are a set; other lists (languages, media types) keep their order.
            if name == http::header::ACCEPT_ENCODING {
                items.sort();
                items.dedup();
            }
            key.extend_from_slice(items.join(",").as_bytes());
            key.push(0);
        }
        SecondaryKey(key.into())
    }
}

/// One list item: trimmed, lower-cased, inner whitespace runs removed around `;` and
/// `=` and collapsed elsewhere.
fn normalise_item(item: &str) -> String {
    let mut out = String::with_capacity(item.len());
    for word in item.split_whitespace() {
        let glue = out.ends_with([';', '=']) || word.starts_with([';', '=']);
        if !out.is_empty() && !glue {
            out.push(' ');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_headers as headers;

    #[test]
    fn spelling_differences_share_a_variant() {
        let rule =
            VaryRule::from_response(&headers(&[("vary", "Accept-Encoding, accept-language")]))
                .unwrap();
        let a = rule.secondary_key(&headers(&[
            ("accept-encoding", "gzip, br"),
            ("accept-language", "EN-us ;q=0.9"),
        ]));
        let b = rule.secondary_key(&headers(&[
            ("accept-encoding", "br"),
            ("accept-encoding", "gzip"),
            ("accept-language", "en-US;q=0.9"),
        ]));
        assert_eq!(a, b);
    }

    #[test]
    fn different_values_and_absence_are_different_variants() {
        let rule = VaryRule::from_response(&headers(&[("vary", "accept-language")])).unwrap();
        let en = rule.secondary_key(&headers(&[("accept-language", "en")]));
        let de = rule.secondary_key(&headers(&[("accept-language", "de")]));
        let none = rule.secondary_key(&headers(&[]));
        assert_ne!(en, de);
        assert_ne!(en, none);
        // Language order is a preference, so it matters.
        let a = rule.secondary_key(&headers(&[("accept-language", "en, de")]));
        let b = rule.secondary_key(&headers(&[("accept-language", "de, en")]));
        assert_ne!(a, b);
    }

    #[test]
    fn vary_star_is_not_storable() {
        assert_eq!(
            VaryRule::from_response(&headers(&[("vary", "accept, *")])),
            None
        );
        assert!(VaryRule::from_response(&headers(&[])).unwrap().is_empty());
    }
}
