//! The request's host, normalised before routing.

/// Lowercases the host, drops the port and a trailing dot, and keeps IPv6 literals in
/// brackets (`[::1]`), so `Example.COM:8080`, `example.com.` and `example.com` route
/// alike. `None` when the value is not a valid authority.
pub fn normalize(raw: &str) -> Option<String> {
    let authority: http::uri::Authority = raw.trim().parse().ok()?;
    if authority.as_str().contains('@') {
        // Userinfo has no place in a Host header.
        return None;
    }
    let host = authority.host();
    // Without userinfo, the authority is the host then an optional `:port`.
    let port = &authority.as_str()[host.len()..];
    if !port.is_empty() && port.strip_prefix(':')?.parse::<u16>().is_err() {
        return None;
    }
    let valid = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !valid {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn hosts_are_lowercased_without_port_or_trailing_dot() {
        assert_eq!(
            normalize("Example.COM:8080").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize("example.com.").as_deref(), Some("example.com"));
        assert_eq!(normalize("127.0.0.1:7878").as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(normalize("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize("[FE80::1]").as_deref(), Some("[fe80::1]"));
    }

    #[test]
    fn invalid_hosts_are_refused() {
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("a b"), None);
        assert_eq!(normalize("user@example.com"), None);
        assert_eq!(normalize("example.com:notaport"), None);
    }
}
