//! How long the console's pages take to load from a node on loopback, in a real
//! headless Chromium (`bench/console.sh`). Starts `verge node` (the binary given)
//! with one service, signs in once, then loads each page `--rounds` times from a
//! blank tab and reads the page's own timings: the navigation's `responseEnd`
//! (HTML received), `domContentLoadedEventEnd`, `loadEventEnd` (every script and
//! style loaded) and `view-ready` (the view's first data shown, a mark the console
//! sets). Prints the median and the worst per page.
//!
//! console-load --verge target/release/verge [--rounds 20]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

const TOKEN: &str = "console-bench-token-0123456789";
const PAGES: &[&str] = &[
    "#/",
    "#/services",
    "#/services/shop",
    "#/services/shop/traffic",
    "#/services/shop/logs",
    "#/services/shop/data",
];

/// A child killed (with its process group) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` in its own process group; the first stdout line containing `marker`.
fn spawn_until(mut cmd: Command, marker: &str) -> Result<(Killed, String)> {
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(line) => {
                let line = line?;
                if line.contains(marker) {
                    // Keep reading (and dropping) the rest so the child never blocks.
                    std::thread::spawn(move || for _ in lines {});
                    return Ok((child, line));
                }
            }
            None => bail!("{cmd:?} exited before saying {marker:?}"),
        }
    }
}

async fn post(url: &str, body: &str) -> Result<u16> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))?;
    Ok(client.request(req).await?.status().as_u16())
}

/// Waits until the page has set its `view-ready` mark; its timings in ms.
async fn timings(browser: &Client) -> Result<[f64; 4]> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = browser
            .execute(
                "const n = performance.getEntriesByType('navigation')[0];\
                 const r = performance.getEntriesByName('view-ready')[0];\
                 return n && r && n.loadEventEnd > 0 ? \
                   [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd, r.startTime] : null;",
                Vec::new(),
            )
            .await?;
        if let Some(values) = got.as_array() {
            let v: Vec<f64> = values.iter().filter_map(|x| x.as_f64()).collect();
            if v.len() == 4 {
                return Ok([v[0], v[1], v[2], v[3]]);
            }
        }
        if Instant::now() > deadline {
            bail!("the page never showed its data");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median_and_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let verge = arg("--verge").context("--verge PATH")?;
    let rounds: usize = arg("--rounds").map_or(Ok(20), |r| r.parse())?;
    let only = arg("--page");
    let data = tempfile::tempdir()?;
    let mut node = Command::new(&verge);
    node.args(["node", "--data-dir"])
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("VERGE_ADMIN_TOKEN", TOKEN);
    let (_node, line) = spawn_until(node, "Admin API on http://")?;
    let admin = line.trim().trim_start_matches("Admin API on ").to_owned();
    let status = post(
        &format!("{admin}/admin/v1/services"),
        r#"{"name": "shop", "domains": ["shop.test"]}"#,
    )
    .await?;
    anyhow::ensure!(status == 201, "creating the service: {status}");

    let mut driver = Command::new("chromedriver");
    driver.arg("--port=0");
    let (_driver, line) = spawn_until(driver, "started successfully on port")
        .context("chromedriver (bash scripts/install-browser.sh)")?;
    let port = line
        .trim()
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap_or_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    browser.goto(&format!("{admin}/console")).await?;
    browser
        .execute(
            &format!("sessionStorage.setItem('verge-token', '{TOKEN}')"),
            Vec::new(),
        )
        .await?;

    println!(
        "{:<26} {:>22} {:>22} {:>22} {:>22}",
        "page (ms, median / max)", "HTML received", "DOM ready", "all loaded", "data shown"
    );
    for page in PAGES
        .iter()
        .filter(|p| only.as_deref().is_none_or(|o| o == **p))
    {
        let mut columns = [vec![], vec![], vec![], vec![]];
        // One load first, not counted: the first visit compiles the modules.
        for round in 0..=rounds {
            browser.goto("about:blank").await?;
            browser.goto(&format!("{admin}/console{page}")).await?;
            let t = timings(&browser).await?;
            if round > 0 {
                for (c, v) in columns.iter_mut().zip(t) {
                    c.push(v);
                }
            }
        }
        let cells: Vec<String> = columns
            .into_iter()
            .map(|c| {
                let (median, max) = median_and_max(c);
                format!("{median:.1} / {max:.1}")
            })
            .collect();
        println!(
            "{:<26} {:>22} {:>22} {:>22} {:>22}",
            page, cells[0], cells[1], cells[2], cells[3]
        );
    }
    let _ = browser.close().await;
    Ok(())
}
