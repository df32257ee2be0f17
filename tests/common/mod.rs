//! Test harness: builds the guest programs once per test run, starts the real `verge`
//! binary on 127.0.0.1:0 and reads its ready line and JSON logs.

#![allow(dead_code)]

pub mod apis;
pub mod browser;
pub mod geo;
pub mod node;
pub mod openapi;
pub mod origin;
pub mod tail;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use verge_build::Toolchain;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn verge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_verge"))
}

/// One target dir for every guest built in tests, so the wasm32 standard library is
/// built once.
pub fn guest_target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        repo_root().join(target)
    };
    target.join("guests")
}

/// The component of a test program (`test-programs/examples/NAME.rs`), built with the
/// guest toolchain the first time it is asked for in this process.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build_test_programs);
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no test program named {name}");
    path
}

fn build_test_programs() -> PathBuf {
    let toolchain =
        Toolchain::detect().expect("a guest toolchain (scripts/install-guest-toolchain.sh)");
    let target = guest_target_dir();
    let components = target.join("components");
    verge_build::build_example_components(
        &toolchain,
        &repo_root().join("test-programs"),
        &target,
        &components,
    )
    .unwrap_or_else(|e| panic!("building the test programs: {e}"));
    components
}

/// Lines a child process printed, shared with the thread reading them.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    pub fn collect(&self, reader: impl std::io::Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                let (store, cond) = &*lines.0;
                store.lock().unwrap().push(line);
                cond.notify_all();
            }
        });
    }

    /// Waits until a line satisfies `pred`; panics after `timeout` with what was seen.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let (store, cond) = &*self.0;
        let mut lines = store.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| pred(l)) {
                return line.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("timed out waiting for a line; saw:\n{}", lines.join("\n"));
            }
            lines = cond.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// How many lines so far contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

/// A running `verge serve`, killed on drop.
pub struct Verge {
    child: Child,
    pub addr: String,
    pub stdout: Lines,
    pub stderr: Lines,
    _cache: Option<tempfile::TempDir>,
}

impl Verge {
    /// `verge serve ARGS --listen 127.0.0.1:0`, with a fresh compile cache.
    pub fn serve(args: &[&str]) -> Verge {
        let cache = tempfile::tempdir().unwrap();
        let cache_dir = cache.path().to_str().unwrap().to_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--cache-dir", &cache_dir]);
        let mut verge = Self::serve_with(&all);
        verge._cache = Some(cache);
        verge
    }

    /// `verge serve ARGS --listen 127.0.0.1:0` run in `dir` (as a user in the app's
    /// directory runs it), with a fresh compile cache.
    pub fn serve_in(dir: &Path, args: &[&str]) -> Verge {
        let cache = tempfile::tempdir().unwrap();
        let cache_dir = cache.path().to_str().unwrap().to_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--cache-dir", &cache_dir]);
        let mut verge = Self::start_in(Some(dir), "serve", &all, &[]);
        verge._cache = Some(cache);
        verge
    }

    /// `verge serve ARGS --listen 127.0.0.1:0`, nothing else added.
    pub fn serve_with(args: &[&str]) -> Verge {
        Self::serve_with_env(args, &[])
    }

    /// `verge serve ARGS --listen 127.0.0.1:0` with extra environment variables.
    pub fn serve_with_env(args: &[&str], env: &[(&str, &str)]) -> Verge {
        Self::start("serve", args, env)
    }

    /// `verge node ARGS --listen 127.0.0.1:0` with extra environment variables.
    pub fn node(args: &[&str], env: &[(&str, &str)]) -> Verge {
        Self::start("node", args, env)
    }

    fn start(command: &str, args: &[&str], env: &[(&str, &str)]) -> Verge {
        Self::start_in(None, command, args, env)
    }

    fn start_in(dir: Option<&Path>, command: &str, args: &[&str], env: &[(&str, &str)]) -> Verge {
        let mut command_line = Command::new(verge_bin());
        if let Some(dir) = dir {
            command_line.current_dir(dir);
        }
        let mut child = command_line
            .envs(env.iter().copied())
            .arg(command)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("CARGO_TARGET_DIR", guest_target_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting verge");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.collect(child.stdout.take().unwrap());
        stderr.collect(child.stderr.take().unwrap());
        let mut verge = Verge {
            child,
            addr: String::new(),
            stdout,
            stderr,
            _cache: None,
        };
        let ready = verge.wait_ready();
        verge.addr = ready;
        verge
    }

    fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let found = self
                .stdout
                .all()
                .into_iter()
                .find_map(|l| l.strip_prefix("Listening on http://").map(str::to_owned));
            if let Some(addr) = found {
                return addr;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "verge exited ({status}) before it was ready; stderr:\n{}",
                    self.stderr.all().join("\n")
                );
            }
            assert!(Instant::now() < deadline, "verge did not become ready");
            // Wake on the next stdout line, or re-check the child every 50 ms.
            let (store, cond) = &*self.stdout.0;
            let lines = store.lock().unwrap();
            let _ = cond.wait_timeout(lines, Duration::from_millis(50)).unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The access log line of a request.
    pub fn access_line(&self, request_id: &str) -> serde_json::Value {
        let line = self.stdout.wait_for(Duration::from_secs(30), |l| {
            l.contains("\"type\":\"access\"") && l.contains(request_id)
        });
        serde_json::from_str(&line).unwrap()
    }

    /// Peak resident memory of the server process so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kib * 1024
    }

    /// Minor page faults the server process has taken so far.
    pub fn minor_faults(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // After the command's closing parenthesis: state is field 3, minflt field 10.
        let (_, fields) = stat.rsplit_once(')').unwrap();
        fields.split_whitespace().nth(7).unwrap().parse().unwrap()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Verge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `verge serve ARGS` with an admin listener on 127.0.0.1:0 taking `token`; the
/// server and the admin listener's address.
pub fn serve_with_admin(args: &[&str], token: &str) -> (Verge, String) {
    let mut all = args.to_vec();
    all.extend(["--admin-listen", "127.0.0.1:0"]);
    let verge = Verge::serve_with_env(&all, &[("VERGE_ADMIN_TOKEN", token)]);
    let addr = verge
        .stdout
        .wait_for(Duration::from_secs(10), |l| {
            l.starts_with("Admin API on http://")
        })
        .trim_start_matches("Admin API on http://")
        .trim()
        .to_owned();
    (verge, addr)
}

/// `n` concurrent GETs of `url`; their bodies.
pub async fn concurrent_texts(url: String, n: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let resp = client().get(url).send().await.unwrap();
                resp.text().await.unwrap()
            })
        })
        .collect();
    let mut texts = Vec::new();
    for task in tasks {
        texts.push(task.await.unwrap());
    }
    texts
}

/// Runs `verge ARGS` to completion, offline: npm and pip install from what
/// `make test` put in npm's cache and in `tools_dir()/wheels`.
pub fn verge(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(verge_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", tools_dir().join("wheels"))
        .output()
        .expect("running verge")
}

/// `verge init NAME --lang LANG` in `root`; the app's directory.
pub fn init_app(root: &Path, name: &str, lang: &str) -> PathBuf {
    let app = root.join(name);
    let out = verge(
        &[
            "init",
            name,
            "--lang",
            lang,
            "--path",
            app.to_str().unwrap(),
        ],
        root,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app
}

/// `verge build` in `app`, which must fail; its stderr. With `path`, `PATH` is only
/// that (to hide the tools a build needs).
pub fn build_fails(app: &Path, path: Option<&Path>) -> String {
    let mut command = Command::new(verge_bin());
    command
        .arg("build")
        .current_dir(app)
        .env("NO_COLOR", "1")
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", tools_dir().join("wheels"));
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let out = command.output().expect("running verge");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the build should fail: {stderr}");
    stderr
}

/// Where `scripts/install-componentize-*.sh` put the tools for other languages.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("VERGE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/verge-tools")
        })
}

/// A temporary app directory whose verge.toml points at an already built component.
pub fn app_dir_for(component: &Path, extra_manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("verge.toml"),
        format!(
            "manifest_version = 1\nname = \"test-app\"\n[build]\noutput = {:?}\n{extra_manifest}",
            component.display().to_string()
        ),
    )
    .unwrap();
    dir
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// `GET path`: the status, the body as text, and the request's access line.
pub async fn get_logged(verge: &Verge, path: &str) -> (u16, String, serde_json::Value) {
    let resp = client().get(verge.url(path)).send().await.unwrap();
    let id = request_id(&resp);
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (status, body, verge.access_line(&id))
}

pub fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A lazily generated body: `len` bytes of a pattern, in 64 KiB chunks.
pub const PATTERN_CHUNK: u64 = 64 << 10;

/// The pattern's bytes as slices of one precomputed cycle, so that making and checking
/// a gigabyte is memcpy and memcmp: this binary is unoptimised, and a per-byte loop
/// here competed with the server for the machine's two cores.
fn pattern_cycle() -> &'static [u8] {
    static CYCLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CYCLE.get_or_init(|| (0..251 + PATTERN_CHUNK).map(|k| (k % 251) as u8).collect())
}

/// `len` bytes of [`pattern_stream`] from `offset`, within one pattern chunk.
fn pattern_piece(offset: u64, len: u64) -> &'static [u8] {
    let (i, j) = (offset / PATTERN_CHUNK, offset % PATTERN_CHUNK);
    debug_assert!(j + len <= PATTERN_CHUNK);
    let start = ((i * 7 + j) % 251) as usize;
    &pattern_cycle()[start..start + len as usize]
}

/// Whether `chunk` is what [`pattern_stream`] holds at `offset`; `Err` names the first
/// offset that differs.
pub fn check_pattern(offset: u64, chunk: &[u8]) -> Result<(), u64> {
    let mut done = 0;
    while done < chunk.len() {
        let at = offset + done as u64;
        let n = ((PATTERN_CHUNK - at % PATTERN_CHUNK) as usize).min(chunk.len() - done);
        let (got, want) = (&chunk[done..done + n], pattern_piece(at, n as u64));
        if got != want {
            let k = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            return Err(at + k as u64);
        }
        done += n;
    }
    Ok(())
}

pub fn pattern_stream(len: u64) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter((0..len.div_ceil(PATTERN_CHUNK)).map(move |i| {
        let n = PATTERN_CHUNK.min(len - i * PATTERN_CHUNK);
        Ok(pattern_piece(i * PATTERN_CHUNK, n).to_vec())
    }))
}
