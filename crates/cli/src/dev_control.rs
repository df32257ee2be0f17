//! `verge serve`'s local control listener: lets `verge kv` reach the stores of the
//! running server, whose store file is locked while it runs, and `verge purge` its
//! edge cache.
//!
//! It listens on 127.0.0.1 (a port of the system's choosing) and accepts only
//! requests bearing a random token. Both are in `DATA_DIR/serve.json`, which only
//! the user can read and which is removed when the server stops. Two routes:
//! `POST /v0/kv/STORE` with a [`kv_ops::Op`] as JSON, answered with a
//! [`kv_ops::Answer`], or 4xx with an [`kv_ops::OpError`]; and `POST /v0/purge` with a
//! [`PurgeRequest`], answered with [`verge_server::admin::Purged`] (the admin API's
//! purge, for the app being served).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use verge_cache::Cache;
use verge_server::admin::PurgeRequest;
use verge_server::{AppRegistry, SingleApp};
use verge_store::{Kv, Namespace};

use verge_node::kv_ops::{self, Op, OpError};

/// The file that says where a running server's control listener is.
pub const CONTROL_FILE: &str = "serve.json";

/// Largest request: a 25 MiB value, base64-encoded, and some JSON around it.
const MAX_BODY: usize = 40 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct ControlFile {
    pub pid: u32,
    pub addr: SocketAddr,
    pub token: String,
}

impl ControlFile {
    /// The control file in `data_dir`, if a server that still listens wrote it (one
    /// killed with `kill -9` leaves its file behind).
    pub fn find(data_dir: &Path) -> Option<ControlFile> {
        let text = std::fs::read_to_string(data_dir.join(CONTROL_FILE)).ok()?;
        let file: ControlFile = serde_json::from_str(&text).ok()?;
        std::net::TcpStream::connect_timeout(&file.addr, std::time::Duration::from_secs(2))
            .ok()
            .map(|_| file)
    }
}

/// Removes the control file when the server stops.
pub struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the listener on the current tokio runtime and writes the control file.
pub async fn start(
    kv: Kv,
    cache: Cache,
    registry: Arc<SingleApp>,
    data_dir: &Path,
) -> anyhow::Result<Guard> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the local control listener")?;
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    let file = ControlFile {
        pid: std::process::id(),
        addr: listener.local_addr()?,
        token: secret.iter().map(|b| format!("{b:02x}")).collect(),
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(CONTROL_FILE);
    write_private(&path, &serde_json::to_vec(&file)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let state = Arc::new(State {
        kv,
        cache,
        registry,
        token: format!("Bearer {}", file.token),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(state.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Guard(path))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(bytes)
}

struct State {
    kv: Kv,
    cache: Cache,
    registry: Arc<SingleApp>,
    token: String,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &impl Serialize) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(body).unwrap_or_default(),
    )));
    *resp.status_mut() = status;
    resp
}

fn refuse(status: StatusCode, error: impl Into<String>) -> Reply {
    reply(
        status,
        &OpError {
            error: error.into(),
            unavailable: false,
        },
    )
}

impl State {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Reply {
        let authorized = req
            .headers()
            .get("authorization")
            // Constant-time, like the admin API's check: the token guards a local
            // listener, but a timing oracle is no less real there.
            .is_some_and(|v| {
                verge_server::admin::constant_time_eq(v.as_bytes(), self.token.as_bytes())
            });
        if !authorized {
            return refuse(StatusCode::UNAUTHORIZED, "missing or wrong token");
        }
        let path = req.uri().path().to_owned();
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        };
        if path == "/v0/purge" {
            return self.purge(&body);
        }
        let Some(store) = path.strip_prefix("/v0/kv/").map(str::to_owned) else {
            return refuse(StatusCode::NOT_FOUND, "no such route");
        };
        let op: Op = match serde_json::from_slice(&body) {
            Ok(op) => op,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let Some(current) = self.registry.resolve(None) else {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "no app loaded");
        };
        let config = current.app.config();
        let Some(declared) = config.kv_stores.iter().find(|s| s.name == store) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("the app declares no KV store `{store}`"),
            );
        };
        let ns = Namespace::new(&config.name, &declared.name, declared.limits);
        let kv = self.kv.clone();
        match tokio::task::spawn_blocking(move || kv_ops::run(&kv, &ns, op)).await {
            Ok(Ok(answer)) => reply(StatusCode::OK, &answer),
            Ok(Err(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.error),
            Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    fn purge(&self, body: &[u8]) -> Reply {
        let request: PurgeRequest = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let Some(current) = self.registry.resolve(None) else {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "no app loaded");
        };
        match verge_server::admin::purge(&*self.registry, &self.cache, &current.name, &request) {
            Ok(purged) => reply(StatusCode::OK, &purged),
            Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        }
    }
}
