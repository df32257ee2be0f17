//! Just enough JWT (RFC 7519) for HS256 and RS256: a token's signature, then its
//! time and audience claims. Any other `alg`, including `none`, is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value};
use sha2::Sha256;

/// The keys a token may be signed with.
pub struct Keys {
    pub hs256: Option<Vec<u8>>,
    pub rs256_pem: Option<String>,
}

/// What the claims must say.
pub struct Policy {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_secs: u64,
}

/// Why a token was refused; the text goes into `WWW-Authenticate`.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed,
    Algorithm(String),
    NoKey,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Missing => f.write_str("no bearer token"),
            Rejection::Malformed => f.write_str("the token is not a well-formed JWT"),
            Rejection::Algorithm(alg) => write!(f, "algorithm {alg} is not accepted"),
            Rejection::NoKey => f.write_str("no key for the token's algorithm"),
            Rejection::Signature => f.write_str("the signature does not verify"),
            Rejection::Expired => f.write_str("the token has expired"),
            Rejection::NotYetValid => f.write_str("the token is not valid yet"),
            Rejection::Issuer => f.write_str("the token has the wrong issuer"),
            Rejection::Audience => f.write_str("the token is not for this audience"),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn decode_json(part: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

/// Verifies `token`; its claims when it passes.
pub fn verify(
    token: &str,
    keys: &Keys,
    policy: &Policy,
    now: u64,
) -> Result<Map<String, Value>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let head = decode_json(header)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejection::Malformed)?;
    let signed = &token[..header.len() + 1 + payload.len()];
    match head.get("alg").and_then(Value::as_str) {
        Some("HS256") => {
            let key = keys.hs256.as_deref().ok_or(Rejection::NoKey)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Rejection::NoKey)?;
            mac.update(signed.as_bytes());
            // Constant time.
            mac.verify_slice(&signature)
                .map_err(|_| Rejection::Signature)?;
        }
        Some("RS256") => {
            let pem = keys.rs256_pem.as_deref().ok_or(Rejection::NoKey)?;
            let key = rsa::RsaPublicKey::from_public_key_pem(pem).map_err(|_| Rejection::NoKey)?;
            let signature =
                Signature::try_from(signature.as_slice()).map_err(|_| Rejection::Signature)?;
            VerifyingKey::<Sha256>::new(key)
                .verify(signed.as_bytes(), &signature)
                .map_err(|_| Rejection::Signature)?;
        }
        Some(other) => return Err(Rejection::Algorithm(other.to_owned())),
        None => return Err(Rejection::Malformed),
    }
    let claims = decode_json(payload)?;
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    if let Some(exp) = number("exp") {
        if now >= exp.saturating_add(policy.leeway_secs) {
            return Err(Rejection::Expired);
        }
    }
    if let Some(nbf) = number("nbf") {
        if now.saturating_add(policy.leeway_secs) < nbf {
            return Err(Rejection::NotYetValid);
        }
    }
    if let Some(issuer) = &policy.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(Rejection::Issuer);
        }
    }
    if let Some(audience) = &policy.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !ok {
            return Err(Rejection::Audience);
        }
    }
    Ok(claims)
}
