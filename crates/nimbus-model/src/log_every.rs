//! Rate-limited log lines: something that may happen thousands of times a second (a
//! refused connection, a throttled invocation while the database is away) is logged at
//! once the first time, then at most once per period with how often it happened since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts occurrences and says when to log them: the first at once, then at most one line
/// per period with the number since the last.
#[derive(Debug)]
pub struct LogEvery {
    every: Duration,
    state: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl LogEvery {
    pub fn new(every: Duration) -> LogEvery {
        LogEvery { every, state: Mutex::new(None), count: AtomicU64::new(0) }
    }

    /// Notes one occurrence at `now`; Some(occurrences since the last line) when a line is
    /// due.
    pub fn note(&self, now: Instant) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < self.every => None,
            _ => {
                *last = Some(now);
                Some(self.count.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_once_per_period_with_their_count() {
        let log = LogEvery::new(Duration::from_secs(10));
        let t0 = Instant::now();
        // (seconds after the first occurrence, the line due then)
        let cases = [(0, Some(1)), (1, None), (5, None), (9, None), (10, Some(4)), (11, None), (30, Some(2))];
        for (at, expected) in cases {
            assert_eq!(log.note(t0 + Duration::from_secs(at)), expected, "at {at}s");
        }
    }
}
