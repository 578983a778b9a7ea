//! How many runtimes of one kind to keep prestarted: the configured floor, plus the cold
//! starts seen in the last few seconds (a burst that found too few ready runtimes is met by
//! more next time), back down to the floor once none has been seen for a while. Pure: the
//! pool passes the clock in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pool's settings for [`Demand`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemandPolicy {
    /// Always kept (`--prestart`); 0 turns prestarting off.
    pub floor: usize,
    /// Never more than this (`--prestart-max`), whatever the demand.
    pub max: usize,
    /// Cold starts within this window raise the target.
    pub window: Duration,
    /// Runtimes above the floor are dropped once no cold start has been seen this long.
    pub settle: Duration,
}

impl DemandPolicy {
    pub fn new(floor: usize, max: usize) -> DemandPolicy {
        DemandPolicy { floor, max: max.max(floor), window: Duration::from_secs(10), settle: Duration::from_secs(60) }
    }
}

/// Recent cold starts of one runtime kind.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// The latest cold starts, oldest first, at most `max` of them.
    recent: VecDeque<Instant>,
}

impl Demand {
    /// A cold start (an invocation that found no idle environment) at `now`.
    pub fn record(&mut self, now: Instant, policy: &DemandPolicy) {
        self.recent.push_back(now);
        while self.recent.len() > policy.max {
            self.recent.pop_front();
        }
    }

    /// How many should be ready (or starting) at `now`.
    pub fn target(&self, now: Instant, policy: &DemandPolicy) -> usize {
        if policy.floor == 0 {
            return 0;
        }
        let within = self.recent.iter().rev().take_while(|at| now.saturating_duration_since(**at) < policy.window).count();
        (policy.floor + within).min(policy.max)
    }

    /// Whether runtimes above the floor may be dropped at `now` (none wanted for a while).
    pub fn settled(&self, now: Instant, policy: &DemandPolicy) -> bool {
        self.recent.back().is_none_or(|last| now.saturating_duration_since(*last) >= policy.settle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_follows_recent_cold_starts() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let policy = DemandPolicy::new(1, 32);
        // (cold starts at these offsets in seconds, asked at this offset, expected target, settled)
        let cases: &[(&[u64], u64, usize, bool)] = &[
            (&[], 0, 1, true),
            (&[0], 0, 2, false),
            (&[0, 0, 0], 1, 4, false),
            (&[0, 0, 0], 11, 1, false), // out of the window, not yet settled
            (&[0, 0, 0], 60, 1, true),  // settled: extras may go
            (&[0, 5, 9], 12, 3, false), // only the last two are within 10 s
            (&[0; 100], 1, 32, false),  // capped
        ];
        for (starts, at, want, settled) in cases {
            let mut d = Demand::default();
            for o in *starts {
                d.record(t0 + s(*o), &policy);
            }
            assert_eq!(d.target(t0 + s(*at), &policy), *want, "{starts:?} at {at}");
            assert_eq!(d.settled(t0 + s(*at), &policy), *settled, "{starts:?} at {at}");
        }
    }

    #[test]
    fn a_floor_of_zero_turns_prestarting_off() {
        let policy = DemandPolicy::new(0, 32);
        let mut d = Demand::default();
        let now = Instant::now();
        d.record(now, &policy);
        assert_eq!(d.target(now, &policy), 0);
    }
}
