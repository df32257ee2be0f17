//! `verge:edge/ratelimit`: Fastly-style edge rate limiting on every node. Rate
//! counters keep one-second buckets for the last minute per entry; penalty boxes
//! hold entries for a TTL; `check-rate` does both in one call.
//!
//! One [`RateLimiter`] serves the node; every key carries the app's name, so apps
//! never share counters. Memory is bounded: at most `max_entries` counter entries
//! and as many penalty-box entries, least recently used evicted first (moka), and an
//! entry idle for a minute is dropped (it counts nothing any window can see).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use super::bindings::ratelimit as wit;

/// The longest window, in seconds: how much history a counter keeps.
const HISTORY: u64 = 60;
/// Longest penalty-box TTL.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// Longest counter or penalty-box name, and longest entry.
const MAX_NAME: usize = 256;

/// Counts per second over the last minute.
#[derive(Debug)]
struct Window {
    buckets: [u32; HISTORY as usize],
    /// The second the newest bucket belongs to.
    newest: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            buckets: [0; HISTORY as usize],
            newest: 0,
        }
    }
}

impl Window {
    /// Zeroes the buckets of seconds that passed since the last touch.
    fn advance(&mut self, now: u64) {
        if now <= self.newest {
            return;
        }
        let gap = (now - self.newest).min(HISTORY);
        for s in (now - gap + 1)..=now {
            self.buckets[(s % HISTORY) as usize] = 0;
        }
        self.newest = now;
    }

    fn add(&mut self, now: u64, delta: u32) {
        self.advance(now);
        let bucket = &mut self.buckets[(now % HISTORY) as usize];
        *bucket = bucket.saturating_add(delta);
    }

    /// The count over the last `seconds` (the current second included).
    fn count(&mut self, now: u64, seconds: u64) -> u64 {
        self.advance(now);
        let seconds = seconds.min(HISTORY).min(now + 1);
        (now + 1 - seconds..=now)
            .map(|s| u64::from(self.buckets[(s % HISTORY) as usize]))
            .sum()
    }
}

/// Each penalty-box entry expires at its own TTL.
struct PenaltyExpiry;

impl moka::Expiry<String, Duration> for PenaltyExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        ttl: &Duration,
        _now: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        ttl: &Duration,
        _now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

/// The node's rate counters and penalty boxes.
pub struct RateLimiter {
    max_entries: u64,
    /// Made on first use: a node whose apps never rate-limit never allocates them.
    caches: std::sync::OnceLock<Caches>,
    started: Instant,
}

struct Caches {
    counters: moka::sync::Cache<String, Arc<Mutex<Window>>>,
    penalties: moka::sync::Cache<String, Duration>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (counters, penalties) = self.caches.get().map_or((0, 0), |c| {
            (c.counters.entry_count(), c.penalties.entry_count())
        });
        f.debug_struct("RateLimiter")
            .field("counters", &counters)
            .field("penalties", &penalties)
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(100_000)
    }
}

/// Why a rate-limiting call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateLimitError {
    #[error("{what} must be 1 to {MAX_NAME} bytes")]
    BadName { what: &'static str },
    #[error("the count duration must be 1 to 60 seconds, not {0}")]
    BadDuration(u32),
    #[error("the penalty-box TTL must be 1 second to 1 hour, not {0} s")]
    BadTtl(u32),
}

fn check_name(what: &'static str, name: &str) -> Result<(), RateLimitError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(RateLimitError::BadName { what });
    }
    Ok(())
}

impl RateLimiter {
    /// A limiter holding at most `max_entries` counter entries (and as many
    /// penalty-box entries).
    pub fn new(max_entries: u64) -> RateLimiter {
        RateLimiter {
            max_entries,
            caches: std::sync::OnceLock::new(),
            started: Instant::now(),
        }
    }

    fn caches(&self) -> &Caches {
        self.caches.get_or_init(|| Caches {
            counters: moka::sync::Cache::builder()
                .max_capacity(self.max_entries)
                .time_to_idle(Duration::from_secs(HISTORY + 1))
                .build(),
            penalties: moka::sync::Cache::builder()
                .max_capacity(self.max_entries)
                .expire_after(PenaltyExpiry)
                .build(),
        })
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn key(app: &str, name: &str, entry: &str) -> String {
        format!("{app}\0{name}\0{entry}")
    }

    fn window(&self, key: String) -> Arc<Mutex<Window>> {
        self.caches().counters.get_with(key, Default::default)
    }

    /// Adds `delta` to `entry` in counter `counter` of `app`.
    pub fn increment(
        &self,
        app: &str,
        counter: &str,
        entry: &str,
        delta: u32,
    ) -> Result<(), RateLimitError> {
        check_name("the counter name", counter)?;
        check_name("the entry", entry)?;
        let window = self.window(Self::key(app, counter, entry));
        window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(self.now(), delta);
        Ok(())
    }

    /// `entry`'s count over the last `seconds` (1–60).
    pub fn count(
        &self,
        app: &str,
        counter: &str,
        entry: &str,
        seconds: u32,
    ) -> Result<u64, RateLimitError> {
        check_name("the counter name", counter)?;
        check_name("the entry", entry)?;
        if !(1..=60).contains(&seconds) {
            return Err(RateLimitError::BadDuration(seconds));
        }
        Ok(
            match self.caches().counters.get(&Self::key(app, counter, entry)) {
                Some(w) => w
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .count(self.now(), u64::from(seconds)),
                None => 0,
            },
        )
    }

    /// `entry`'s average per-second rate over the last `seconds`.
    pub fn rate(
        &self,
        app: &str,
        counter: &str,
        entry: &str,
        seconds: u32,
    ) -> Result<u64, RateLimitError> {
        Ok(self.count(app, counter, entry, seconds)? / u64::from(seconds))
    }

    pub fn penalize(
        &self,
        app: &str,
        penalty_box: &str,
        entry: &str,
        ttl_seconds: u32,
    ) -> Result<(), RateLimitError> {
        check_name("the penalty box name", penalty_box)?;
        check_name("the entry", entry)?;
        let ttl = Duration::from_secs(u64::from(ttl_seconds));
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(RateLimitError::BadTtl(ttl_seconds));
        }
        self.caches()
            .penalties
            .insert(Self::key(app, penalty_box, entry), ttl);
        Ok(())
    }

    pub fn is_penalized(
        &self,
        app: &str,
        penalty_box: &str,
        entry: &str,
    ) -> Result<bool, RateLimitError> {
        check_name("the penalty box name", penalty_box)?;
        check_name("the entry", entry)?;
        Ok(self
            .caches()
            .penalties
            .contains_key(&Self::key(app, penalty_box, entry)))
    }

    /// Counts `delta` for `entry`, and answers whether it is blocked: already in the
    /// penalty box, or now over `limit` per second averaged over `window` seconds
    /// (then it goes into the penalty box for `ttl_seconds`).
    #[allow(clippy::too_many_arguments)]
    pub fn check_rate(
        &self,
        app: &str,
        counter: &str,
        entry: &str,
        delta: u32,
        window: u32,
        limit: u32,
        penalty_box: &str,
        ttl_seconds: u32,
    ) -> Result<bool, RateLimitError> {
        check_name("the counter name", counter)?;
        check_name("the penalty box name", penalty_box)?;
        check_name("the entry", entry)?;
        if !(1..=60).contains(&window) {
            return Err(RateLimitError::BadDuration(window));
        }
        let ttl = Duration::from_secs(u64::from(ttl_seconds));
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(RateLimitError::BadTtl(ttl_seconds));
        }
        // One lookup of the entry's window: count the request and read the sum.
        let count = {
            let window_lock = self.window(Self::key(app, counter, entry));
            let mut w = window_lock.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.now();
            w.add(now, delta);
            w.count(now, u64::from(window))
        };
        let penalty_key = Self::key(app, penalty_box, entry);
        let penalties = &self.caches().penalties;
        if penalties.contains_key(&penalty_key) {
            return Ok(true);
        }
        if count > u64::from(limit) * u64::from(window) {
            penalties.insert(penalty_key, ttl);
            return Ok(true);
        }
        Ok(false)
    }
}

/// What a guest call sees.
pub(crate) struct RateLimitView<'a> {
    pub(crate) limiter: &'a RateLimiter,
    pub(crate) app: &'a str,
}

impl HasData for RateLimitView<'static> {
    type Data<'a> = RateLimitView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> RateLimitView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, RateLimitView<'static>>(linker, view)
}

fn seconds(window: wit::Window) -> u32 {
    match window {
        wit::Window::OneSecond => 1,
        wit::Window::TenSeconds => 10,
        wit::Window::SixtySeconds => 60,
    }
}

fn invalid(e: RateLimitError) -> wit::Error {
    wit::Error::Invalid(e.to_string())
}

impl wit::Host for RateLimitView<'_> {
    fn increment(&mut self, counter: String, entry: String, delta: u32) -> Result<(), wit::Error> {
        self.limiter
            .increment(self.app, &counter, &entry, delta)
            .map_err(invalid)
    }

    fn lookup_rate(
        &mut self,
        counter: String,
        entry: String,
        window: wit::Window,
    ) -> Result<u32, wit::Error> {
        self.limiter
            .rate(self.app, &counter, &entry, seconds(window))
            .map(|r| r.min(u64::from(u32::MAX)) as u32)
            .map_err(invalid)
    }

    fn lookup_count(
        &mut self,
        counter: String,
        entry: String,
        duration_seconds: u32,
    ) -> Result<u32, wit::Error> {
        self.limiter
            .count(self.app, &counter, &entry, duration_seconds)
            .map(|c| c.min(u64::from(u32::MAX)) as u32)
            .map_err(invalid)
    }

    fn penalty_box_add(
        &mut self,
        penalty_box: String,
        entry: String,
        ttl_seconds: u32,
    ) -> Result<(), wit::Error> {
        self.limiter
            .penalize(self.app, &penalty_box, &entry, ttl_seconds)
            .map_err(invalid)
    }

    fn penalty_box_has(&mut self, penalty_box: String, entry: String) -> Result<bool, wit::Error> {
        self.limiter
            .is_penalized(self.app, &penalty_box, &entry)
            .map_err(invalid)
    }

    fn check_rate(
        &mut self,
        counter: String,
        entry: String,
        delta: u32,
        window: wit::Window,
        limit: u32,
        penalty_box: String,
        ttl_seconds: u32,
    ) -> Result<bool, wit::Error> {
        self.limiter
            .check_rate(
                self.app,
                &counter,
                &entry,
                delta,
                seconds(window),
                limit,
                &penalty_box,
                ttl_seconds,
            )
            .map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_the_last_seconds_and_forget_older_ones() {
        let mut w = Window::default();
        w.add(100, 5);
        w.add(101, 7);
        assert_eq!(w.count(101, 1), 7);
        assert_eq!(w.count(101, 2), 12);
        assert_eq!(w.count(101, 60), 12);
        assert_eq!(
            w.count(159, 60),
            12,
            "second 100 is still within the minute"
        );
        assert_eq!(w.count(160, 60), 7, "second 100 has left the window");
        assert_eq!(w.count(500, 60), 0, "a long gap clears everything");
        w.add(500, 1);
        assert_eq!(w.count(500, 10), 1);
    }

    #[test]
    fn apps_never_share_counters_or_penalty_boxes() {
        let rl = RateLimiter::new(100);
        rl.increment("a", "c", "1.2.3.4", 3).unwrap();
        assert_eq!(rl.count("a", "c", "1.2.3.4", 10).unwrap(), 3);
        assert_eq!(rl.count("b", "c", "1.2.3.4", 10).unwrap(), 0);
        rl.penalize("a", "pb", "1.2.3.4", 60).unwrap();
        assert!(rl.is_penalized("a", "pb", "1.2.3.4").unwrap());
        assert!(!rl.is_penalized("b", "pb", "1.2.3.4").unwrap());
    }

    #[test]
    fn check_rate_blocks_over_the_limit_and_keeps_blocking() {
        let rl = RateLimiter::new(100);
        let check = |delta| {
            rl.check_rate("a", "c", "e", delta, 10, 5, "pb", 60)
                .unwrap()
        };
        assert!(!check(50), "50 over 10 s is 5/s: at the limit, not over");
        assert!(check(1), "51 is over");
        assert!(check(0), "and the entry is in the penalty box now");
        assert_eq!(
            rl.check_rate("a", "c", "e", 1, 10, 5, "pb", 0),
            Err(RateLimitError::BadTtl(0))
        );
        assert_eq!(
            rl.count("a", "c", "e", 61),
            Err(RateLimitError::BadDuration(61))
        );
        assert!(rl.increment("a", "", "e", 1).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let rl = RateLimiter::new(1000);
        for i in 0..20_000 {
            rl.increment("a", "c", &i.to_string(), 1).unwrap();
        }
        rl.caches().counters.run_pending_tasks();
        assert!(
            rl.caches().counters.entry_count() <= 1000,
            "{}",
            rl.caches().counters.entry_count()
        );
    }
}
