//! A real headless Chromium for the console's tests, driven through chromedriver
//! (WebDriver, with `fantoccini`). Both come from Debian (`scripts/install-browser.sh`,
//! which `make test` runs); a missing one fails the test saying how to install it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use super::Lines;

/// How long a page may take to show what a test waits for (a fleet's rollout
/// included).
const WITHIN: Duration = Duration::from_secs(60);

pub struct Browser {
    driver: Child,
    pub client: Client,
}

impl Browser {
    pub async fn start() -> Browser {
        // Its own process group, so that the browsers it starts go with it.
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run chromedriver ({e}): install Chromium and its driver with \
                     `bash scripts/install-browser.sh` (make test does)"
                )
            });
        let lines = Lines::default();
        lines.collect(driver.stdout.take().unwrap());
        let started = lines.wait_for(Duration::from_secs(30), |l| {
            l.contains("started successfully on port")
        });
        let port: u16 = started
            .trim()
            .trim_end_matches('.')
            .rsplit(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in chromedriver's line {started:?}"));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions"],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("starting headless Chromium: {e}"));
        Browser { driver, client }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Opens the console page `hash` (`#/services/shop`) of the node at `admin`.
    pub async fn open(&self, admin: &str, hash: &str) {
        self.goto(&format!("{admin}/console{hash}")).await;
    }

    /// Waits until an element matching `css` is on the page.
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WITHIN)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {css} on the page: {e}\n{}", self.page_text().await),
        }
    }

    /// Waits for the element matching `css` and clicks it.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    /// Confirms the open confirmation dialog.
    pub async fn confirm(&self) {
        self.click("dialog[open] button.confirm").await;
    }

    /// Waits for the input matching `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.element(css).await.send_keys(text).await.unwrap();
    }

    /// The elements matching `css` now.
    pub async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// The page's visible text, for failure messages.
    pub async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    /// Waits until the text of the element matching `css` satisfies `want`; that
    /// text.
    pub async fn text_until(&self, css: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WITHIN;
        loop {
            let mut last = None;
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if want(&text) {
                    return text;
                }
                last = Some(text);
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed what the test waits for (last: {last:?})\n{}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn gone(&self, css: &str) {
        let deadline = Instant::now() + WITHIN;
        while !self.all(css).await.is_empty() {
            assert!(Instant::now() < deadline, "{css} stayed on the page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in at `admin`'s console with `token` and waits for the header.
    pub async fn sign_in(&self, admin: &str, token: &str) {
        self.goto(&format!("{admin}/console")).await;
        if let Ok(out) = self.client.find(Locator::Css("button.sign-out")).await {
            out.click().await.unwrap();
        }
        let input = self.element("form.sign-in input#token").await;
        input.send_keys(token).await.unwrap();
        self.element("form.sign-in button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        self.element("header.top .whoami").await;
    }

    /// Runs `script` in the page; its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// Writes a screenshot of the page to `console-screenshots/NAME.png` beside the
    /// test binaries' directory (`target/debug/console-screenshots`), for a
    /// reviewer to look at; its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (Chromium exits), then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// The driver's whole process group, Chromium's processes included, even when
    /// a test panicked before [`Browser::close`].
    fn drop(&mut self) {
        // `--` before the negative process group id: without it procps' `kill`
        // reads `-PID` as an option, and root's `kill -KILL -1` kills everything.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}
