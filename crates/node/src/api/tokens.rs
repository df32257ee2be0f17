//! `/admin/v1/tokens`: scoped tokens, their secrets shown once.

use std::pin::Pin;
use std::sync::Arc;

use hyper::http::{Method, StatusCode};
use verge_control::{ControlError, TokenRecord, sha256_hex};
use verge_server::admin::{AdminRequest, AdminRoutes, Need, Principal, Reply, Route, forbidden};

use super::{control_error, json_body, refuse, reply};
use crate::Node;
use crate::auth::{now_ms, random_hex};
use crate::wire::{CreateToken, NewToken, Revoked, TokenInfo};

pub(super) struct TokensApi(pub(super) Arc<Node>);

impl AdminRoutes for TokensApi {
    fn routes(&self) -> &'static [Route] {
        const ROUTES: &[Route] = &[
            Route::new("/admin/v1/tokens", &[Method::GET, Method::POST]),
            Route::new("/admin/v1/tokens/{id}", &[Method::DELETE]),
        ];
        ROUTES
    }

    fn handle(
        &self,
        req: AdminRequest,
        principal: Principal,
    ) -> Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            let node = &self.0;
            let path = req.uri().path().trim_end_matches('/').to_owned();
            let id = path
                .strip_prefix("/admin/v1/tokens")
                .unwrap_or("")
                .trim_start_matches('/')
                .to_owned();
            let method = req.method().clone();
            if let Err(why) = principal.check(Need {
                service: None,
                write: method != Method::GET,
            }) {
                return forbidden(&why);
            }
            match (method, id.is_empty()) {
                (Method::GET, true) => match node.control.tokens().await {
                    Ok(tokens) => reply(
                        StatusCode::OK,
                        &tokens.iter().map(TokenInfo::from).collect::<Vec<_>>(),
                    ),
                    Err(e) => control_error(e),
                },
                (Method::POST, true) => create(node, req).await,
                (Method::DELETE, false) => match node.control.revoke_token(&id).await {
                    Ok(true) => reply(StatusCode::OK, &Revoked { revoked: id }),
                    Ok(false) => refuse(StatusCode::NOT_FOUND, format!("no token with id `{id}`")),
                    Err(e) => control_error(e),
                },
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}

async fn create(node: &Node, req: AdminRequest) -> Reply {
    let create: CreateToken = match json_body(req).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let name = create.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a token's name is 1 to 64 characters",
        );
    }
    if let Some(service) = &create.service {
        match node.control.service(service).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return control_error(ControlError::NoSuchService(service.as_str().to_owned()));
            }
            Err(e) => return control_error(e),
        }
    }
    let (id, secret) = match (random_hex(6), random_hex(24)) {
        (Ok(id), Ok(secret)) => (id, secret),
        (Err(e), _) | (_, Err(e)) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no randomness for a token: {e}"),
            );
        }
    };
    let record = TokenRecord {
        id: id.clone(),
        name: name.to_owned(),
        service: create.service.map(|s| s.as_str().to_owned()),
        write: create.write,
        secret_sha256: sha256_hex(secret.as_bytes()),
        created_at_ms: now_ms(),
        expires_at_ms: create
            .expires_in_s
            .map(|s| now_ms().saturating_add(s.saturating_mul(1000))),
    };
    if let Err(e) = node.control.add_token(record.clone()).await {
        return control_error(e);
    }
    let made = NewToken {
        info: TokenInfo::from(&record),
        token: format!("vrg_{id}_{secret}"),
    };
    reply(StatusCode::CREATED, &made)
}
