//! The control store's keys (`service/shop`, `domain/*.shop.example`) as NATS KV keys,
//! whose alphabet is `[-/_=.a-zA-Z0-9]` and whose `.` separates subject tokens: each
//! `/`-separated segment becomes one token, bytes outside `[-_a-zA-Z0-9]` written as
//! `=XX`. So a prefix ending in `/` is a subject wildcard (`service.>`).

/// `service/*.a.b` → `service.=2A=2Ea=2Eb`.
pub fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        for byte in segment.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
                out.push(byte as char);
            } else {
                out.push_str(&format!("={byte:02X}"));
            }
        }
    }
    out
}

/// Any text as one subject token: every byte outside `[-_a-zA-Z0-9]` (`.` and `/`
/// too) written as `=XX`. For guest KV keys, where `a//b` or `/a` must stay apart
/// from `a/b` and cannot become empty tokens.
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("={byte:02X}"));
        }
    }
    out
}

/// The reverse of [`token`]; `None` for a token [`token`] did not write.
pub fn untoken(token: &str) -> Option<String> {
    if token.contains('.') {
        return None;
    }
    decode(token)
}

/// The reverse of [`encode`]; `None` for a key this store did not write.
pub fn decode(key: &str) -> Option<String> {
    let mut out = Vec::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => out.push(b'/'),
            b'=' => {
                let hex = key.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_nats_alphabet() {
        for key in [
            "service/shop",
            "version/shop/0000000001",
            "domain/*.shop.example",
            "token/0123abcd",
            "odd/ü=x y",
        ] {
            let encoded = encode(key);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode(&encoded).as_deref(), Some(key));
        }
        assert_eq!(encode("domain/*.a"), "domain.=2A=2Ea");
        assert_eq!(decode("bad=zz"), None);
    }

    #[test]
    fn any_text_round_trips_as_one_token() {
        for text in ["a/b", "a//b", "/a", "a.b", "ü =x", "-_", "links"] {
            let token = token(text);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)),
                "{token}"
            );
            assert_eq!(untoken(&token).as_deref(), Some(text));
        }
        assert_ne!(token("a//b"), token("a/b"));
        assert_eq!(untoken("a.b"), None);
    }
}
