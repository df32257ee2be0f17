//! A NATS cluster with JetStream on loopback, for `scripts/fleet.sh`, the fleet's
//! tests and its benchmarks: N `nats-server` processes, each with its own store
//! directory, routes to all the others, and `sync_interval: always` (JetStream's
//! default syncs to disk every two minutes, and Jepsen lost acknowledged writes with
//! it). Servers can be killed (`kill -9`) and started again on the same ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started cluster may take to elect its JetStream leaders: seconds when
/// the machine is idle, much longer on 2 cores running other clusters and nodes.
const READY_WITHIN: Duration = Duration::from_secs(60);

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
    #[error("the cluster had no JetStream leader after {within:?}; the end of its logs:\n{logs}")]
    NotReady { within: Duration, logs: String },
    #[error("{server} exited at start ({status}); the end of its log:\n{log}")]
    Exited {
        server: String,
        status: std::process::ExitStatus,
        log: String,
    },
}

/// How many times a cluster is set up on fresh ports when a server exits at start:
/// a port picked free can be taken (by another test's client connection, say)
/// before the server binds it.
const START_ATTEMPTS: usize = 3;

/// The last lines of a log, for an error message (the directory holding it is
/// usually a test's temporary one, gone by the time anyone reads the message).
fn log_tail(path: &Path) -> String {
    const LINES: usize = 15;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

struct Server {
    name: String,
    client_port: u16,
    /// Where leaf servers connect, when the cluster takes them.
    leaf_port: Option<u16>,
    config: PathBuf,
    child: Option<Child>,
}

/// A running cluster; stopped (every server killed) when dropped.
pub struct NatsCluster {
    dir: PathBuf,
    servers: Vec<Server>,
    options: ServerOptions,
}

/// What the servers require of clients, beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Lines added to every server's config (`authorization { … }`, `tls { … }`).
    pub extra_config: String,
    /// The user and password the harness connects with to wait for readiness.
    pub user: Option<(String, String)>,
    /// The CA the servers' certificates are signed by, when `extra_config` has TLS.
    pub tls_ca: Option<PathBuf>,
    /// The cluster's JetStream domain (a hub's, with PoP leaves in other domains).
    pub domain: Option<String>,
    /// Take leaf-server connections ([`NatsCluster::leaf_urls`]).
    pub leafnodes: bool,
}

impl ServerOptions {
    fn connect_options(&self) -> async_nats::ConnectOptions {
        let mut options = match &self.user {
            Some((user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        options
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::NoPort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoPort)?.port())
}

impl NatsCluster {
    /// Starts `n` servers with their state under `dir`, and waits until JetStream
    /// has a meta leader (it can take writes).
    pub async fn start(n: usize, dir: &Path) -> Result<NatsCluster, ClusterError> {
        Self::start_with(n, dir, ServerOptions::default()).await
    }

    /// [`NatsCluster::start`] with servers that require what `options` says.
    pub async fn start_with(
        n: usize,
        dir: &Path,
        options: ServerOptions,
    ) -> Result<NatsCluster, ClusterError> {
        let mut attempt = 1;
        loop {
            let mut cluster = NatsCluster {
                dir: dir.to_owned(),
                servers: Self::configure(n, dir, &options)?,
                options: options.clone(),
            };
            for i in 0..n {
                cluster.spawn(i)?;
            }
            match cluster.wait_ready(READY_WITHIN).await {
                Ok(()) => return Ok(cluster),
                Err(ClusterError::Exited { .. }) if attempt < START_ATTEMPTS => {
                    drop(cluster);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the servers' configs on fresh ports, with empty stores.
    fn configure(
        n: usize,
        dir: &Path,
        options: &ServerOptions,
    ) -> Result<Vec<Server>, ClusterError> {
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
            let leaf_port = if options.leafnodes {
                Some(free_port()?)
            } else {
                None
            };
            let mut extra = options.extra_config.clone();
            if let Some(port) = leaf_port {
                extra.push_str(&format!("\nleafnodes {{ listen: 127.0.0.1:{port} }}\n"));
            }
            let domain = options
                .domain
                .as_ref()
                .map_or(String::new(), |d| format!(", domain: {d}"));
            let name = format!("nats-{}", i + 1);
            let store = dir.join(&name);
            // A store left by a failed attempt knows peers on other ports.
            if store.exists() {
                std::fs::remove_dir_all(&store).map_err(files)?;
            }
            let config = dir.join(format!("{name}.conf"));
            // `no_advertise`: a client keeps to the URLs it was given, so a node
            // reached through a test's proxy cannot go around it.
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always{domain} }}\n\
                 cluster {{ name: verge, listen: 127.0.0.1:{route}, routes: [{}], no_advertise: true }}\n\
                 {extra}\n",
                store.display(),
                routes.join(", "),
            );
            std::fs::write(&config, text).map_err(files)?;
            servers.push(Server {
                name,
                client_port: *client,
                leaf_port,
                config,
                child: None,
            });
        }
        Ok(servers)
    }

    /// A PoP's leaf server: one server with JetStream in its own `domain`, connected
    /// to a hub at `hub_leaf_urls` (its [`NatsCluster::leaf_urls`], or proxies in front
    /// of them).
    pub async fn start_leaf(
        dir: &Path,
        domain: &str,
        hub_leaf_urls: &[String],
    ) -> Result<NatsCluster, ClusterError> {
        let files = |source| ClusterError::Files {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(files)?;
        let client = free_port()?;
        let name = format!("leaf-{domain}");
        let config = dir.join(format!("{name}.conf"));
        let remotes: Vec<String> = hub_leaf_urls.iter().map(|u| format!("\"{u}\"")).collect();
        let text = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
             jetstream {{ store_dir: \"{}\", sync_interval: always, domain: {domain} }}\n\
             leafnodes {{ remotes: [ {{ urls: [{}] }} ] }}\n",
            dir.join(&name).display(),
            remotes.join(", ")
        );
        std::fs::write(&config, text).map_err(files)?;
        let mut leaf = NatsCluster {
            dir: dir.to_owned(),
            servers: vec![Server {
                name,
                client_port: client,
                leaf_port: None,
                config,
                child: None,
            }],
            options: ServerOptions::default(),
        };
        leaf.spawn(0)?;
        leaf.wait_ready(READY_WITHIN).await?;
        Ok(leaf)
    }

    /// Where leaf servers connect (`nats-leaf://127.0.0.1:PORT`), one per server of a
    /// cluster started with [`ServerOptions::leafnodes`].
    pub fn leaf_urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(|s| s.leaf_port)
            .map(|port| format!("nats-leaf://127.0.0.1:{port}"))
            .collect()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.servers[i].name))
    }

    fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let binary = nats_server_binary();
        let log = self.log_path(i);
        let server = &mut self.servers[i];
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

    /// Waits until a JetStream request answers through every running server; fails
    /// at once, with its log, if one of them exits.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        for i in 0..self.servers.len() {
            if self.servers[i].child.is_none() {
                continue;
            }
            let url = format!("nats://127.0.0.1:{}", self.servers[i].client_port);
            loop {
                if let Ok(client) = self.options.connect_options().connect(&url).await {
                    let js = async_nats::jetstream::new(client);
                    if js.query_account().await.is_ok() {
                        break;
                    }
                }
                self.check_running()?;
                if Instant::now() > deadline {
                    let logs = (0..self.servers.len())
                        .map(|i| {
                            format!(
                                "--- {}\n{}",
                                self.servers[i].name,
                                log_tail(&self.log_path(i))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(ClusterError::NotReady { within, logs });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// An error naming the first started server that has exited, if one has.
    fn check_running(&mut self) -> Result<(), ClusterError> {
        for i in 0..self.servers.len() {
            let exited = match self.servers[i].child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => status,
                _ => continue,
            };
            self.servers[i].child = None;
            return Err(ClusterError::Exited {
                server: self.servers[i].name.clone(),
                status: exited,
                log: log_tail(&self.log_path(i)),
            });
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
