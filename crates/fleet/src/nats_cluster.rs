//! A NATS cluster with JetStream on loopback, for `scripts/fleet.sh`, the fleet's
//! tests and its benchmarks: N `nats-server` processes, each with its own store
//! directory, routes to all the others, and `sync_interval: always` (JetStream's
//! default syncs to disk every two minutes, and Jepsen lost acknowledged writes with
//! it). Servers can be killed (`kill -9`) and started again on the same ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `nats-server` is: `$NATS_SERVER`, else what `scripts/install-nats-server.sh`
/// installs (`$VERGE_TOOLS/nats-server/bin/nats-server`, `VERGE_TOOLS` defaulting to
/// `~/.cache/verge-tools`), else `nats-server` on the `PATH`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("VERGE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/verge-tools")));
    if let Some(tools) = tools {
        let installed = tools.join("nats-server/bin/nats-server");
        if installed.is_file() {
            return installed;
        }
    }
    PathBuf::from("nats-server")
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "could not run {}: {source}; install it with `bash scripts/install-nats-server.sh` (or set NATS_SERVER)",
        binary.display()
    )]
    NoBinary {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the cluster's files in {}", dir.display())]
    Files {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    #[error("the cluster had no JetStream leader after {0:?}; its logs are in {1}")]
    NotReady(Duration, PathBuf),
}

struct Server {
    name: String,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A running cluster; stopped (every server killed) when dropped.
pub struct NatsCluster {
    dir: PathBuf,
    servers: Vec<Server>,
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::NoPort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoPort)?.port())
}

impl NatsCluster {
    /// Starts `n` servers with their state under `dir`, and waits until JetStream
    /// has a meta leader (it can take writes).
    pub async fn start(n: usize, dir: &Path) -> Result<NatsCluster, ClusterError> {
        let files = |source| ClusterError::Files {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(files)?;
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push((free_port()?, free_port()?));
        }
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("\"nats-route://127.0.0.1:{route}\""))
            .collect();
        let mut servers = Vec::new();
        for (i, (client, route)) in ports.iter().enumerate() {
            let name = format!("nats-{}", i + 1);
            let store = dir.join(&name);
            let config = dir.join(format!("{name}.conf"));
            // `no_advertise`: a client keeps to the URLs it was given, so a node
            // reached through a test's proxy cannot go around it.
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: verge, listen: 127.0.0.1:{route}, routes: [{}], no_advertise: true }}\n",
                store.display(),
                routes.join(", ")
            );
            std::fs::write(&config, text).map_err(files)?;
            servers.push(Server {
                name,
                client_port: *client,
                config,
                child: None,
            });
        }
        let mut cluster = NatsCluster {
            dir: dir.to_owned(),
            servers,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_ready(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let binary = nats_server_binary();
        let server = &mut self.servers[i];
        let log = self.dir.join(format!("{}.log", server.name));
        let log = std::fs::File::create(&log).map_err(|source| ClusterError::Files {
            dir: self.dir.clone(),
            source,
        })?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&server.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| ClusterError::NoBinary { binary, source })?;
        server.child = Some(child);
        Ok(())
    }

    /// Waits until a JetStream request answers through every running server.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        for server in self.servers.iter().filter(|s| s.child.is_some()) {
            let url = format!("nats://127.0.0.1:{}", server.client_port);
            loop {
                if let Ok(client) = async_nats::connect(&url).await {
                    let js = async_nats::jetstream::new(client);
                    if js.query_account().await.is_ok() {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    return Err(ClusterError::NotReady(within, self.dir.clone()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// The client URLs, one per server: `nats://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// All URLs joined by commas, as `--cluster` and `async_nats::connect` take them.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// Kills server `i` with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again (same ports, same store) after [`NatsCluster::kill`].
    pub fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        self.kill(i);
        self.spawn(i)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
