//! Limits on the connections to an environment's Runtime API, so a function cannot hold the
//! server's sockets: at most [`ConnectionLimits::max_connections`] at once (more are closed
//! with a log line), and a connection that sends no complete request head for
//! [`ConnectionLimits::idle_timeout`] (nothing at all, part of a head, or idle between
//! requests) is closed. That time is counted on the environment's [`IdleClock`], which runs
//! only while the environment is thawed and between invocations (its init, the moments
//! around an invocation): a runtime frozen between two requests, or one whose keep-alive
//! connection waits through a 15-minute invocation, finds its connection as it left it (the
//! real Runtime API does not close them either, and runtimes count on it). A request being
//! served is not timed (a runtime's `GET /next` waits as long as there is no event; a
//! response is bounded by the function's timeout, which kills the environment).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The pause before accepting again after an accept failed (out of descriptors: the
/// connection stays in the backlog, so retrying at once would fail again, in a busy loop).
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(20);

/// Limits on one environment's Runtime API connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may go without sending a complete request head (counted while
    /// the environment is not frozen).
    pub idle_timeout: Duration,
    /// Connections open at once; a runtime needs one or two.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits { idle_timeout: Duration::from_secs(60), max_connections: 8 }
    }
}

#[derive(Debug)]
struct ClockState {
    /// Time the clock stood still before the current stop.
    stopped_total: Duration,
    stopped_since: Option<Instant>,
    frozen: bool,
    busy: bool,
}

/// An environment's clock for idle connections: the host's monotonic time minus the time
/// the environment spent frozen or running an invocation.
#[derive(Debug)]
pub struct IdleClock {
    state: Mutex<ClockState>,
    /// Whether the clock stands still.
    stopped: watch::Sender<bool>,
}

/// The host's monotonic time (tokio's, so tests can drive it).
fn wall() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl IdleClock {
    pub fn new() -> Arc<IdleClock> {
        let (stopped, _) = watch::channel(false);
        let state = ClockState { stopped_total: Duration::ZERO, stopped_since: None, frozen: false, busy: false };
        Arc::new(IdleClock { state: Mutex::new(state), stopped })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The environment was frozen (true) or thawed (false).
    pub fn set_frozen(&self, frozen: bool) {
        self.update(|s| s.frozen = frozen);
    }

    /// The runtime took an event (true) or answered it (false).
    pub fn set_busy(&self, busy: bool) {
        self.update(|s| s.busy = busy);
    }

    fn update(&self, change: impl FnOnce(&mut ClockState)) {
        let mut s = self.lock();
        change(&mut s);
        let stop = s.frozen || s.busy;
        match (stop, s.stopped_since) {
            (true, None) => {
                s.stopped_since = Some(wall());
                self.stopped.send_replace(true);
            }
            (false, Some(since)) => {
                s.stopped_total += wall().saturating_duration_since(since);
                s.stopped_since = None;
                self.stopped.send_replace(false);
            }
            _ => {}
        }
    }

    /// Now, on this clock.
    pub fn now(&self) -> Instant {
        let s = self.lock();
        let now = wall();
        let stopped = s.stopped_total + s.stopped_since.map(|f| now.saturating_duration_since(f)).unwrap_or_default();
        now.checked_sub(stopped).unwrap_or(now)
    }

    /// Waits until this clock reads `deadline`. A sleep on the running clock is not told when
    /// it stops (every invocation stops it, and waking each sleeper twice per invocation
    /// would cost the invoke path a task wake-up on another worker): it wakes at the host's
    /// deadline, finds the clock behind, and sleeps on; only a sleeper of the stopped clock
    /// waits to hear that it runs again.
    async fn sleep_until(self: Arc<Self>, deadline: Instant) {
        let mut stopped = self.stopped.subscribe();
        loop {
            if *stopped.borrow_and_update() {
                if stopped.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let now = self.now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep(deadline - now).await;
        }
    }
}

/// hyper's timer on an environment's [`IdleClock`].
#[derive(Debug, Clone)]
pub struct IdleTimer(pub Arc<IdleClock>);

/// A sleep on the thawed clock. (hyper wants `Sync`; the future is only polled through
/// `&mut`, so the mutex is never contended.)
struct IdleSleep(Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Future for IdleSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.get_mut().unwrap_or_else(|p| p.into_inner()).as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for IdleSleep {}

impl hyper::rt::Timer for IdleTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.0.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(IdleSleep(Mutex::new(Box::pin(self.0.clone().sleep_until(deadline)))))
    }

    fn now(&self) -> Instant {
        self.0.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Run(u64),
        Freeze,
        Thaw,
        Take,
        Answer,
    }

    /// A 10-second timeout through freezes, thaws and invocations: (steps, whether it has
    /// fired after them).
    #[tokio::test(start_paused = true)]
    async fn connections_idle_time_stops_while_frozen_or_busy() {
        use Step::*;
        let cases: &[(&[Step], bool)] = &[
            (&[Run(9)], false),
            (&[Run(11)], true),
            (&[Run(5), Freeze, Run(600)], false),
            (&[Run(5), Freeze, Run(600), Thaw, Run(4)], false),
            (&[Run(5), Freeze, Run(600), Thaw, Run(6)], true),
            (&[Freeze, Run(30), Thaw, Run(5), Freeze, Run(30), Thaw, Run(6)], true),
            (&[Freeze, Thaw, Freeze, Thaw, Run(9)], false),
            (&[Run(5), Take, Run(900), Answer, Run(4)], false),
            (&[Run(5), Take, Run(900), Answer, Run(6)], true),
            // Frozen right after its answer, thawed for the next event.
            (&[Take, Run(60), Answer, Freeze, Run(600), Thaw, Take, Run(60), Answer, Run(9)], false),
            (&[Take, Freeze, Answer, Run(20), Thaw, Run(11)], true),
            (&[Take, Freeze, Answer, Run(20), Thaw, Run(9)], false),
        ];
        for (steps, fired) in cases {
            let clock = IdleClock::new();
            let sleep = tokio::spawn(IdleTimer(clock.clone()).sleep(Duration::from_secs(10)));
            for step in *steps {
                match step {
                    Run(s) => tokio::time::advance(Duration::from_secs(*s)).await,
                    Freeze => clock.set_frozen(true),
                    Thaw => clock.set_frozen(false),
                    Take => clock.set_busy(true),
                    Answer => clock.set_busy(false),
                }
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            assert_eq!(sleep.is_finished(), *fired, "{steps:?}");
            sleep.abort();
        }
    }
}
