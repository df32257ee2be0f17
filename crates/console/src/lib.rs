//! The web console: HTML, CSS and JavaScript embedded in the binary (no build step:
//! the JavaScript is written as ES modules and served as it is), and the headers it
//! is served with. The admin listener serves these files at `/console` without a
//! token; the page asks for one and calls the admin API with it, so the files say
//! nothing a visitor could not read in this repository.
//!
//! The page never puts text it fetched into markup: every value (service names, log
//! lines, KV values) becomes a text node (`assets/dom.js`), and the
//! Content-Security-Policy allows scripts from this origin only, none inline.

use std::sync::LazyLock;

/// One embedded file.
pub struct Asset {
    /// Its name under `/console/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file, `index.html` first (what `/console` itself answers).
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("console.js", JS),
    asset!("dom.js", JS),
    asset!("api.js", JS),
    asset!("fleet.js", JS),
    asset!("services.js", JS),
    asset!("service.js", JS),
    asset!("logs.js", JS),
    asset!("traffic.js", JS),
    asset!("data.js", JS),
    // uPlot 1.6.32 (MIT), the charts: assets/VENDORED.md.
    asset!("uplot.iife.min.js", JS),
    asset!("uplot.min.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The file `/console/{name}` serves; `/console` (`name` empty) is `index.html`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}

/// Only this origin's scripts, styles, images and API; no frames, forms, plugins or
/// inline code anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The headers every console file is served with, beside its type and `ETag`.
pub const HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    // Revalidated on every load (a 304 when the binary did not change).
    ("cache-control", "no-cache"),
];

/// Each file's `ETag`, a hash of its bytes (computed once, on first use).
pub fn etag(asset: &Asset) -> &'static str {
    static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", fnv1a(a.bytes)))
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, asset))
        .unwrap_or_default();
    &TAGS[index]
}

/// FNV-1a, 64 bits: a cache validator, not a security boundary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_by_its_name_and_the_index_by_none() {
        for a in ASSETS {
            assert!(std::ptr::eq(asset(a.name).unwrap(), a));
        }
        assert_eq!(asset("").unwrap().name, "index.html");
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn tags_differ_between_files() {
        let tags: std::collections::BTreeSet<&str> = ASSETS.iter().map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
    }

    /// The page loads no script but its own modules, and no markup holds inline
    /// script or style the policy would block.
    #[test]
    fn the_index_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(asset("").unwrap().bytes).unwrap();
        assert!(!html.contains(" on"), "inline event handler in index.html");
        assert!(!html.contains("style="), "inline style in index.html");
        for script in html.split("<script").skip(1) {
            let (open, rest) = script.split_once('>').unwrap();
            assert!(open.contains("src=\"/console/"), "{open}");
            assert!(rest.trim_start().starts_with("</script>"), "inline script");
        }
    }

    /// Fetched text reaches the page only through text nodes: no module assigns
    /// markup.
    #[test]
    fn no_module_writes_markup() {
        // uPlot, vendored, draws on a canvas and was checked when it was vendored
        // (assets/VENDORED.md); the check covers what is written here.
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") && !a.name.starts_with("uplot"))
        {
            let code = std::str::from_utf8(a.bytes).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!code.contains(sink), "{} uses {sink}", a.name);
            }
        }
    }
}
