//! Who an admin request comes from, and what it may do.
//!
//! A bearer token authenticates a [`Principal`]: its scope (the node, or one
//! service) and its right (read, or read and write). Every route says what it needs;
//! a token outside its scope gets 403, no token or an unknown one 401.

/// What a token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every service, and the node's own routes (metrics, services, tokens).
    Node,
    /// One service's routes.
    Service(String),
}

/// Whether a token may change things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Write,
}

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name, for "uploaded by" and logs.
    pub name: String,
    pub scope: Scope,
    pub right: Right,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need<'a> {
    /// `None`: a node-wide route; `Some(service)`: that service's.
    pub service: Option<&'a str>,
    pub write: bool,
}

impl Principal {
    /// `Err(reason)` when this principal may not do what `need` says.
    pub fn check(&self, need: Need<'_>) -> Result<(), String> {
        if need.write && self.right == Right::Read {
            return Err(format!("the token `{}` is read-only", self.name));
        }
        match (&self.scope, need.service) {
            (Scope::Node, _) => Ok(()),
            (Scope::Service(own), Some(service)) if own == service => Ok(()),
            (Scope::Service(own), Some(service)) => Err(format!(
                "the token `{}` is scoped to service `{own}`, not `{service}`",
                self.name
            )),
            (Scope::Service(own), None) => Err(format!(
                "the token `{}` is scoped to service `{own}`; this route needs a node token",
                self.name
            )),
        }
    }
}

/// Why a token was refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Unknown, revoked, or a wrong secret: nothing more is said.
    #[error("missing or wrong token: send Authorization: Bearer <token>")]
    Unknown,
    /// The right secret of a token past its expiry.
    #[error("the token `{name}` expired at {at}; make a new one with `verge token create`")]
    Expired { name: String, at: String },
}

/// Turns a bearer token into a principal. Async: a node's tokens live in its control
/// state, which a fleet keeps in the network.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, token: &str) -> Result<Principal, Denied>;
}

/// One token with every right: `verge serve --admin-listen`'s, and a node's root.
pub struct RootToken(pub String);

impl RootToken {
    /// The root principal if `token` is this token.
    pub fn check(&self, token: &str) -> Result<Principal, Denied> {
        constant_time_eq(token.as_bytes(), self.0.as_bytes())
            .then(|| Principal {
                name: "root".into(),
                scope: Scope::Node,
                right: Right::Write,
            })
            .ok_or(Denied::Unknown)
    }
}

#[async_trait::async_trait]
impl Authenticator for RootToken {
    async fn authenticate(&self, token: &str) -> Result<Principal, Denied> {
        self.check(token)
    }
}

/// Compares without stopping at the first difference, so response times say nothing
/// about how much of a guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scope: Scope, right: Right) -> Principal {
        Principal {
            name: "t".into(),
            scope,
            right,
        }
    }

    #[test]
    fn scopes_and_rights() {
        let shop_read = principal(Scope::Service("shop".into()), Right::Read);
        let shop_write = principal(Scope::Service("shop".into()), Right::Write);
        let node_read = principal(Scope::Node, Right::Read);
        let read = |service| Need {
            service,
            write: false,
        };
        let write = |service| Need {
            service,
            write: true,
        };
        assert!(shop_read.check(read(Some("shop"))).is_ok());
        assert!(
            shop_read
                .check(write(Some("shop")))
                .unwrap_err()
                .contains("read-only")
        );
        assert!(shop_write.check(write(Some("shop"))).is_ok());
        assert!(
            shop_write
                .check(write(Some("blog")))
                .unwrap_err()
                .contains("not `blog`")
        );
        assert!(
            shop_write
                .check(read(None))
                .unwrap_err()
                .contains("node token")
        );
        assert!(node_read.check(read(Some("blog"))).is_ok());
        assert!(node_read.check(write(None)).is_err());
        let root = RootToken("secret-token-123456".into());
        assert_eq!(
            root.check("secret-token-123456").unwrap().scope,
            Scope::Node
        );
        assert!(root.check("secret-token-12345").is_err());
    }
}
