//! Request ids: unique within a process, hard to guess across restarts.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        nanos ^ std::process::id().rotate_left(16)
    })
}

/// A new 20-hex-digit id: a per-process prefix and a counter.
pub(crate) fn next() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}{:012x}", prefix(), n & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_fixed_width() {
        let a = super::next();
        let b = super::next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
