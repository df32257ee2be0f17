//! Terminal output: colours (off when `NO_COLOR` is set or stderr is not a terminal),
//! spinners, error chains, diagnostics.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::{OwoColorize, Stream};

/// Diagnostics go to stderr; `VERGE_LOG` (or `RUST_LOG`) sets the filter.
pub fn init_tracing() {
    let filter = std::env::var("VERGE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
}

/// `error: …` and one `caused by: …` line per source.
pub fn print_error(err: &anyhow::Error) {
    eprintln!(
        "{} {err}",
        "error:".if_supports_color(Stream::Stderr, |t| t.red().bold().to_string())
    );
    for cause in err.chain().skip(1) {
        eprintln!(
            "  {} {cause}",
            "caused by:".if_supports_color(Stream::Stderr, |t| t.yellow().to_string())
        );
    }
}

/// A green status word and a message, like cargo's `Compiling …` lines.
pub fn status(word: &str, message: impl std::fmt::Display) {
    eprintln!(
        "{:>12} {message}",
        word.if_supports_color(Stream::Stderr, |t| t.green().bold().to_string())
    );
}

/// A spinner on stderr; hidden when stderr is not a terminal.
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner:.green} {msg} {elapsed:.dim}")
            .expect("a valid template"),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `12.3 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
