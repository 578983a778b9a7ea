//! Limits on the connections to an environment's Runtime API, so a function cannot hold the
//! server's sockets: at most [`ConnectionLimits::max_connections`] at once (more are closed
//! with a log line), and a connection that sends no complete request head for
//! [`ConnectionLimits::idle_timeout`] (nothing at all, part of a head, or idle between
//! requests) is closed. That time is counted on the environment's own clock, which stops
//! while the environment is frozen ([`ThawedClock`]): a runtime frozen between two requests
//! finds its connection as it left it. A request being served is not timed (a runtime's
//! `GET /next` waits as long as there is no event; a response is bounded by the function's
//! timeout, which kills the environment).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::watch;

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
    /// Time spent frozen before the current freeze.
    frozen_total: Duration,
    frozen_since: Option<Instant>,
}

/// An environment's clock: the host's monotonic time minus the time the environment spent
/// frozen.
#[derive(Debug)]
pub struct ThawedClock {
    state: Mutex<ClockState>,
    frozen: watch::Sender<bool>,
}

/// The host's monotonic time (tokio's, so tests can drive it).
fn wall() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl ThawedClock {
    pub fn new() -> Arc<ThawedClock> {
        let (frozen, _) = watch::channel(false);
        Arc::new(ThawedClock { state: Mutex::new(ClockState { frozen_total: Duration::ZERO, frozen_since: None }), frozen })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The environment was frozen: its time stops.
    pub fn pause(&self) {
        let mut s = self.lock();
        if s.frozen_since.is_none() {
            s.frozen_since = Some(wall());
            self.frozen.send_replace(true);
        }
    }

    /// The environment was thawed: its time runs again.
    pub fn resume(&self) {
        let mut s = self.lock();
        if let Some(since) = s.frozen_since.take() {
            s.frozen_total += wall().saturating_duration_since(since);
            self.frozen.send_replace(false);
        }
    }

    /// Now, on this clock.
    pub fn now(&self) -> Instant {
        let s = self.lock();
        let now = wall();
        let frozen = s.frozen_total + s.frozen_since.map(|f| now.saturating_duration_since(f)).unwrap_or_default();
        now.checked_sub(frozen).unwrap_or(now)
    }

    /// Waits until this clock reads `deadline`.
    async fn sleep_until(self: Arc<Self>, deadline: Instant) {
        let mut frozen = self.frozen.subscribe();
        loop {
            if *frozen.borrow_and_update() {
                if frozen.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let now = self.now();
            if now >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(deadline - now) => {}
                _ = frozen.changed() => {}
            }
        }
    }
}

/// hyper's timer on an environment's [`ThawedClock`].
#[derive(Debug, Clone)]
pub struct ThawedTimer(pub Arc<ThawedClock>);

/// A sleep on the thawed clock. (hyper wants `Sync`; the future is only polled through
/// `&mut`, so the mutex is never contended.)
struct ThawedSleep(Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Future for ThawedSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.get_mut().unwrap_or_else(|p| p.into_inner()).as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for ThawedSleep {}

impl hyper::rt::Timer for ThawedTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.0.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(ThawedSleep(Mutex::new(Box::pin(self.0.clone().sleep_until(deadline)))))
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
    }

    /// A 10-second timeout through freezes and thaws: (steps, whether it has fired after them).
    #[tokio::test(start_paused = true)]
    async fn connections_idle_time_stops_while_frozen() {
        use Step::*;
        let cases: &[(&[Step], bool)] = &[
            (&[Run(9)], false),
            (&[Run(11)], true),
            (&[Run(5), Freeze, Run(600)], false),
            (&[Run(5), Freeze, Run(600), Thaw, Run(4)], false),
            (&[Run(5), Freeze, Run(600), Thaw, Run(6)], true),
            (&[Freeze, Run(30), Thaw, Run(5), Freeze, Run(30), Thaw, Run(6)], true),
            (&[Freeze, Thaw, Freeze, Thaw, Run(9)], false),
        ];
        for (steps, fired) in cases {
            let clock = ThawedClock::new();
            let sleep = tokio::spawn(ThawedTimer(clock.clone()).sleep(Duration::from_secs(10)));
            for step in *steps {
                match step {
                    Run(s) => tokio::time::advance(Duration::from_secs(*s)).await,
                    Freeze => clock.pause(),
                    Thaw => clock.resume(),
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
