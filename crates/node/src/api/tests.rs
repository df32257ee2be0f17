//! The admin API in process: no listener, the real control state on disk.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use verge_server::admin::{AdminApi, request_body};

use crate::{Node, NodeConfig};

const ROOT: &str = "root-token-for-the-tests";

pub(super) struct Fixture {
    pub(super) api: AdminApi,
    _node: Arc<Node>,
    _dir: tempfile::TempDir,
}

pub(super) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new(dir.path(), ROOT);
    // A small pool: the tests load no code, and each opens its own node.
    config.edge.max_instances = 4;
    config.memory_budget = Some(1 << 30);
    config.max_package_bytes = 64 << 10;
    let node = Node::open(&config).await.unwrap();
    Fixture {
        api: node.admin_api(ROOT.to_owned()),
        _node: node,
        _dir: dir,
    }
}

impl Fixture {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let reply = self
            .api
            .handle(req.body(request_body(Full::new(body))).unwrap())
            .await;
        let status = reply.status();
        let bytes = reply.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn root(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        self.call(method, path, Some(ROOT), body).await
    }
}

#[tokio::test]
async fn health_needs_no_token_and_everything_else_does() {
    let f = fixture().await;
    let (status, body) = f.call(Method::GET, "/healthz", None, Bytes::new()).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok\n")));
    let (status, _) = f
        .call(Method::GET, "/admin/v1/services", None, Bytes::new())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = f
        .call(
            Method::GET,
            "/admin/v1/services",
            Some("not-the-token-at-all"),
            Bytes::new(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = f.root(Method::GET, "/admin/v1/whoami", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["write"], true);
}

#[tokio::test]
async fn services_are_created_listed_and_deleted_with_clear_refusals() {
    let f = fixture().await;
    let create = json!({"name": "shop", "domains": ["shop.example"]});
    let (status, body) = f
        .root(Method::POST, "/admin/v1/services", create.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "shop");

    let (status, body) = f.root(Method::POST, "/admin/v1/services", create).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("exists already"),
        "{body}"
    );

    let taken = json!({"name": "other", "domains": ["shop.example"]});
    let (status, body) = f.root(Method::POST, "/admin/v1/services", taken).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("belongs to service `shop`"),
        "{body}"
    );

    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/services",
            json!({"name": "Bad Name"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/services",
            json!({"name": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");

    let (status, body) = f.root(Method::GET, "/admin/v1/services", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);

    let (status, _) = f
        .root(Method::DELETE, "/admin/v1/services/shop", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f
        .root(Method::GET, "/admin/v1/services/shop", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no service named `shop`");
}

#[tokio::test]
async fn uploads_that_are_not_packages_or_too_large_record_nothing() {
    let f = fixture().await;
    f.root(Method::POST, "/admin/v1/services", json!({"name": "shop"}))
        .await;
    let versions = "/admin/v1/services/shop/versions";

    let (status, body) = f
        .call(
            Method::POST,
            versions,
            Some(ROOT),
            Bytes::from_static(b"not a package"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("not a valid package"),
        "{body}"
    );

    let big = Bytes::from(vec![0u8; (64 << 10) + 1]);
    let (status, body) = f.call(Method::POST, versions, Some(ROOT), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-package-size"),
        "{body}"
    );

    let (status, body) = f
        .call(
            Method::POST,
            "/admin/v1/services/none/versions",
            Some(ROOT),
            Bytes::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = f.root(Method::GET, versions, Value::Null).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn activation_names_what_is_missing() {
    let f = fixture().await;
    f.root(Method::POST, "/admin/v1/services", json!({"name": "shop"}))
        .await;
    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/services/shop/activate",
            json!({"version": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "service `shop` has no version 3");
    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/services/shop/rollback",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no earlier active version"),
        "{body}"
    );
    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/services/shop/kv/links",
            json!({"op": "get", "key": "a"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no active version"),
        "{body}"
    );
}

#[tokio::test]
async fn a_single_node_lists_itself_and_a_bad_wait_is_named() {
    let f = fixture().await;
    let (status, body) = f.root(Method::GET, "/admin/v1/nodes", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["name"], "node");
    assert_eq!(nodes[0]["status"], "live");
    assert_eq!(nodes[0]["connected"], true);
    f.root(Method::POST, "/admin/v1/services", json!({"name": "shop"}))
        .await;
    for wait in ["-1", "301", "soon"] {
        let (status, body) = f
            .root(
                Method::POST,
                &format!("/admin/v1/services/shop/activate?wait={wait}"),
                json!({"version": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wait}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("`wait={wait}`")),
            "{body}"
        );
    }
    // A single node's readiness says nothing of a fleet.
    let (_, ready) = f.call(Method::GET, "/readyz", None, Bytes::new()).await;
    assert!(!ready.to_string().contains("cluster"), "{ready}");
}

#[tokio::test]
async fn a_scoped_read_token_sees_its_service_only_and_dies_when_revoked() {
    let f = fixture().await;
    f.root(Method::POST, "/admin/v1/services", json!({"name": "shop"}))
        .await;
    f.root(Method::POST, "/admin/v1/services", json!({"name": "blog"}))
        .await;
    let (status, made) = f
        .root(
            Method::POST,
            "/admin/v1/tokens",
            json!({"name": "ci", "service": "shop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    let call = |method, path: &'static str| {
        let token = token.clone();
        let f = &f;
        async move { f.call(method, path, Some(&token), Bytes::new()).await.0 }
    };

    assert_eq!(
        call(Method::GET, "/admin/v1/services/shop").await,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::GET, "/admin/v1/services/blog").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::GET, "/admin/v1/services").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::POST, "/admin/v1/services/shop/rollback").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::GET, "/admin/v1/tokens").await,
        StatusCode::FORBIDDEN
    );

    // Listing never shows a secret.
    let (_, listed) = f.root(Method::GET, "/admin/v1/tokens", Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("token").is_none() && listed[0].get("secret_sha256").is_none());

    // A wrong secret with the right id is refused like any unknown token.
    let forged = format!("vrg_{id}_{}", "0".repeat(48));
    let (status, _) = f
        .call(
            Method::GET,
            "/admin/v1/services/shop",
            Some(&forged),
            Bytes::new(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let path = format!("/admin/v1/tokens/{id}");
    let (status, _) = f.root(Method::DELETE, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(Method::GET, "/admin/v1/services/shop").await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = f.root(Method::DELETE, &path, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_expired_token_is_told_so_and_a_bad_token_request_is_refused() {
    let f = fixture().await;
    let (_, made) = f
        .root(
            Method::POST,
            "/admin/v1/tokens",
            json!({"name": "brief", "expires_in_s": 0}),
        )
        .await;
    let token = made["token"].as_str().unwrap();
    let (status, body) = f
        .call(Method::GET, "/admin/v1/whoami", Some(token), Bytes::new())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    let (status, _) = f
        .root(Method::POST, "/admin/v1/tokens", json!({"name": ""}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = f
        .root(
            Method::POST,
            "/admin/v1/tokens",
            json!({"name": "x", "service": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no service named `nope`");
}
