//! `verge logs --tail` as a user runs it, for the tests of nodes and fleets.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;

/// A running `verge logs --tail ARGS`, killed on drop.
pub struct Tail {
    pub child: std::process::Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Tail {
    pub fn start(admin: &str, token: &str, args: &[&str]) -> Tail {
        let config = tempfile::tempdir().unwrap();
        let mut child = Command::new(verge_bin())
            .args(["logs", "--tail", "--json"])
            .args(args)
            .env("NO_COLOR", "1")
            .env("VERGE_NODE", admin)
            .env("VERGE_ADMIN_TOKEN", token)
            .env("VERGE_CONFIG_DIR", config.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (Lines::default(), Lines::default());
        stdout.collect(child.stdout.take().unwrap());
        stderr.collect(child.stderr.take().unwrap());
        Tail {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until the tail watches.
    pub fn ready(self) -> Tail {
        self.stderr
            .wait_for(Duration::from_secs(10), |l| l.contains("Tailing"));
        self
    }

    /// The JSON lines seen so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .all()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits for the access line of `request_id`.
    pub fn wait_access(&self, request_id: &str) {
        self.stdout.wait_for(Duration::from_secs(10), |l| {
            l.contains(r#""type":"access""#) && l.contains(request_id)
        });
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
