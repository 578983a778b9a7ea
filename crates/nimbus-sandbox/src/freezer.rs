//! Freezes idle environments a short while after they go idle, from one task per pool. An
//! environment reused within [`FREEZE_GRACE`] (a busy function) never pays for a freeze and
//! a thaw (two cgroup writes and a scheduler round trip); one that stays idle is frozen
//! within [`FREEZE_GRACE`] + [`FREEZE_TICK`] of its last invocation's end, so a function's
//! background work stops about as soon after its response as on Lambda. Going idle costs
//! the invoke path no task, no timer and no allocation: an environment has at most one
//! entry in the freezer's queue, re-queued at its newest deadline when it was used again.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::environment::Environment;

/// How long an idle environment runs on before it is frozen.
pub const FREEZE_GRACE: Duration = Duration::from_millis(20);
/// How often at most the freezer wakes while environments are queued: the freeze of an idle
/// environment may come this much after its grace.
pub const FREEZE_TICK: Duration = Duration::from_millis(5);

/// One queued environment and when it is due (ordered by the deadline alone).
struct Due(Instant, Weak<Environment>);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// The freezing task's queue: environments gone idle, earliest deadline first.
pub(crate) struct Freezer {
    queue: Mutex<BinaryHeap<Reverse<Due>>>,
    wake: Arc<Notify>,
}

impl Freezer {
    /// A freezer and its task (which ends when the freezer is dropped).
    pub fn start() -> Arc<Freezer> {
        let freezer = Arc::new(Freezer { queue: Mutex::new(BinaryHeap::new()), wake: Arc::new(Notify::new()) });
        let weak = Arc::downgrade(&freezer);
        tokio::spawn(async move {
            loop {
                let Some(freezer) = weak.upgrade() else { return };
                let next = freezer.freeze_due(Instant::now());
                let wake = freezer.wake.clone();
                drop(freezer);
                let woken = wake.notified();
                match next {
                    // At most one wake-up per tick, however many deadlines fall within it.
                    Some(at) => tokio::time::sleep_until((at.max(Instant::now() + FREEZE_TICK)).into()).await,
                    None => {
                        // Nothing queued: sleep until something is (checking now and then
                        // whether the pool is gone).
                        let _ = tokio::time::timeout(Duration::from_secs(1), woken).await;
                    }
                }
            }
        });
        freezer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<Due>>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `env` went idle: it is frozen after [`FREEZE_GRACE`] unless taken again by then.
    pub fn idle(&self, env: &Arc<Environment>) {
        if let Some(deadline) = env.went_idle(Instant::now() + FREEZE_GRACE) {
            let mut q = self.lock();
            let was_empty = q.is_empty();
            q.push(Reverse(Due(deadline, Arc::downgrade(env))));
            drop(q);
            if was_empty {
                self.wake.notify_one();
            }
        }
    }

    /// Freezes the environments due by `now` that are still idle, re-queues those used
    /// since they were queued, and returns the next deadline.
    fn freeze_due(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let next = {
            let mut q = self.lock();
            while q.peek().is_some_and(|Reverse(d)| d.0 <= now) {
                let Some(Reverse(Due(_, env))) = q.pop() else { break };
                due.push(env);
            }
            q.peek().map(|Reverse(d)| d.0)
        };
        let mut again = Vec::new();
        for env in due {
            let Some(env) = env.upgrade() else { continue };
            if let Some(deadline) = env.freeze_if_idle(now) {
                again.push(Due(deadline, Arc::downgrade(&env)));
            }
        }
        if again.is_empty() {
            return next;
        }
        let mut q = self.lock();
        q.extend(again.into_iter().map(Reverse));
        q.peek().map(|Reverse(d)| d.0)
    }
}
