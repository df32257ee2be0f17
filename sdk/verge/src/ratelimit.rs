//! Edge rate limiting (`verge:edge/ratelimit`), as Fastly's: rate counters, penalty
//! boxes, and [`Erl::check_rate`], which counts a request and says whether to block.
//!
//! ```no_run
//! use std::time::Duration;
//! use verge::ratelimit::{Erl, PenaltyBox, RateCounter, Window};
//! use verge::{Request, Response};
//!
//! # fn handler(req: Request) -> Result<Response, verge::Error> {
//! let erl = Erl::new(RateCounter::open("requests"), PenaltyBox::open("abusers"));
//! let client = req.client_ip().map(|ip| ip.to_string()).unwrap_or_default();
//! // More than 100 requests per second over 10 s: blocked for 5 minutes.
//! if erl.check_rate(&client, 1, Window::TenSeconds, 100, Duration::from_secs(300))? {
//!     return Ok(Response::from_status(429).with_body("slow down\n"));
//! }
//! # Ok(Response::new()) }
//! ```
//!
//! Counters live on each node, per app; names and entries are text of 1–256 bytes.

use std::time::Duration;

use crate::edge::ratelimit as wit;

/// The windows a rate is averaged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    OneSecond,
    TenSeconds,
    SixtySeconds,
}

impl From<Window> for wit::Window {
    fn from(w: Window) -> Self {
        match w {
            Window::OneSecond => wit::Window::OneSecond,
            Window::TenSeconds => wit::Window::TenSeconds,
            Window::SixtySeconds => wit::Window::SixtySeconds,
        }
    }
}

/// A name, duration or TTL out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitError(pub String);

impl std::fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RateLimitError {}

impl From<wit::Error> for RateLimitError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Invalid(text) => RateLimitError(text),
        }
    }
}

/// Whole seconds, at least 1.
fn seconds(d: Duration) -> u32 {
    d.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// A named rate counter.
#[derive(Debug, Clone)]
pub struct RateCounter {
    name: String,
}

impl RateCounter {
    pub fn open(name: impl Into<String>) -> RateCounter {
        RateCounter { name: name.into() }
    }

    /// Adds `delta` to `entry`.
    pub fn increment(&self, entry: &str, delta: u32) -> Result<(), RateLimitError> {
        Ok(wit::increment(&self.name, entry, delta)?)
    }

    /// `entry`'s average per-second rate over `window`.
    pub fn lookup_rate(&self, entry: &str, window: Window) -> Result<u32, RateLimitError> {
        Ok(wit::lookup_rate(&self.name, entry, window.into())?)
    }

    /// `entry`'s total over the last `duration` (1–60 s).
    pub fn lookup_count(&self, entry: &str, duration: Duration) -> Result<u32, RateLimitError> {
        Ok(wit::lookup_count(&self.name, entry, seconds(duration))?)
    }
}

/// A named penalty box: entries held for a TTL.
#[derive(Debug, Clone)]
pub struct PenaltyBox {
    name: String,
}

impl PenaltyBox {
    pub fn open(name: impl Into<String>) -> PenaltyBox {
        PenaltyBox { name: name.into() }
    }

    /// Holds `entry` for `ttl` (1 s to 1 h).
    pub fn add(&self, entry: &str, ttl: Duration) -> Result<(), RateLimitError> {
        Ok(wit::penalty_box_add(&self.name, entry, seconds(ttl))?)
    }

    pub fn has(&self, entry: &str) -> Result<bool, RateLimitError> {
        Ok(wit::penalty_box_has(&self.name, entry)?)
    }
}

/// An edge rate limiter: a counter and the penalty box its offenders go to.
#[derive(Debug, Clone)]
pub struct Erl {
    counter: RateCounter,
    penalty_box: PenaltyBox,
}

impl Erl {
    pub fn new(counter: RateCounter, penalty_box: PenaltyBox) -> Erl {
        Erl {
            counter,
            penalty_box,
        }
    }

    /// Counts `delta` for `entry`; `true` (block) when the entry is in the penalty box
    /// or now over `limit` per second averaged over `window`, which puts it in the
    /// penalty box for `ttl`.
    pub fn check_rate(
        &self,
        entry: &str,
        delta: u32,
        window: Window,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool, RateLimitError> {
        Ok(wit::check_rate(
            &self.counter.name,
            entry,
            delta,
            window.into(),
            limit,
            &self.penalty_box.name,
            seconds(ttl),
        )?)
    }
}
