//! Running the build tools of other languages.

use std::process::{Command, Output};

/// Whether `tool --version` runs and succeeds.
pub(crate) fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What a tool printed: stderr, then stdout, trimmed.
pub(crate) fn output_text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        text.push_str(&stdout);
    }
    text.trim_end().to_owned()
}
