//! Who may call the admin API: the node's root token, and the scoped tokens kept in
//! the control state (`vrg_ID_SECRET`, found by id, the secret compared by its
//! SHA-256 in constant time).

use verge_control::{Control, sha256_hex};
use verge_server::admin::{Authenticator, Denied, Principal, Right, RootToken, Scope};

pub struct NodeAuth {
    pub root: RootToken,
    pub control: Control,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `bytes` random bytes as hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait::async_trait]
impl Authenticator for NodeAuth {
    async fn authenticate(&self, token: &str) -> Result<Principal, Denied> {
        if let Ok(root) = self.root.check(token) {
            return Ok(root);
        }
        let (id, secret) = token
            .strip_prefix("vrg_")
            .and_then(|t| t.split_once('_'))
            .ok_or(Denied::Unknown)?;
        let record = self
            .control
            .token(id)
            .await
            .ok()
            .flatten()
            .ok_or(Denied::Unknown)?;
        let presented = sha256_hex(secret.as_bytes());
        if !verge_server::admin::constant_time_eq(
            presented.as_bytes(),
            record.secret_sha256.as_bytes(),
        ) {
            return Err(Denied::Unknown);
        }
        // Expiry is told only to whoever holds the secret.
        if let Some(at) = record.expires_at_ms
            && now_ms() >= at
        {
            return Err(Denied::Expired {
                name: record.name,
                at: humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
                )
                .to_string(),
            });
        }
        Ok(Principal {
            name: record.name,
            scope: record.service.map_or(Scope::Node, Scope::Service),
            right: if record.write {
                Right::Write
            } else {
                Right::Read
            },
        })
    }
}
