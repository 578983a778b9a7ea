//! The graceful drain at SIGTERM, as behind a load balancer: the node takes no new work
//! (its API listener closes, its async dispatcher and event source pollers take nothing
//! new, long polls end) and lets the work it has finish, up to `--drain-timeout`; then the
//! server stops as it always did, ending what is left.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nimbus_invoke::{AsyncInvoker, Invoker};
use tokio::task::JoinHandle;

/// The parts of an opened account that hold work in progress.
pub struct Account {
    pub invoker: Arc<Invoker>,
    pub async_invoker: Arc<AsyncInvoker>,
    pub event_sources: Arc<nimbus_triggers::EventSources>,
    pub queues: Arc<nimbus_queues::QueueService>,
}

/// The signal the API listener drains on, sent once.
pub struct Drain {
    tx: tokio::sync::watch::Sender<bool>,
}

/// How often invocations without a drain of their own (a caller that went away, a call a
/// function made through the environments' own way in) are looked at.
const IN_FLIGHT_EVERY: Duration = Duration::from_millis(50);

impl Drain {
    pub fn new() -> Drain {
        Drain { tx: tokio::sync::watch::Sender::new(false) }
    }

    /// Completes when the drain begins (for `nimbus_api::serve_until`).
    pub fn begun(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|d| *d).await;
        }
    }

    /// Drains: `api` (the listener's task, serving until [`Drain::begun`]) and `accounts`
    /// take no new work and finish theirs, until all of it is done, `deadline` passes or
    /// `interrupted` completes (a second signal). Says what was left, if anything.
    pub async fn run(self, api: JoinHandle<()>, accounts: &[Account], deadline: Duration, interrupted: impl Future<Output = ()>) {
        let started = Instant::now();
        let invocations = |accounts: &[Account]| accounts.iter().map(|a| a.invoker.in_flight()).sum::<u32>();
        let async_events = |accounts: &[Account]| accounts.iter().map(|a| a.async_invoker.running()).sum::<usize>();
        tracing::info!(
            "draining: no new connections or work; up to {} s for what is in progress ({})",
            deadline.as_secs_f64(),
            Work { invocations: invocations(accounts), async_events: async_events(accounts), ..Work::default() }.describe()
        );
        self.tx.send_replace(true);
        // Long polls (clients' and pollers') answer now rather than hold the drain.
        accounts.iter().for_each(|a| a.queues.drain());
        let pollers: Vec<JoinHandle<()>> = accounts
            .iter()
            .map(|a| {
                let sources = a.event_sources.clone();
                tokio::spawn(async move { sources.drain().await })
            })
            .collect();
        let dispatchers: Vec<JoinHandle<()>> = accounts
            .iter()
            .map(|a| {
                let invoker = a.async_invoker.clone();
                tokio::spawn(async move { invoker.drain().await })
            })
            .collect();
        let watched: Vec<&JoinHandle<()>> = std::iter::once(&api).chain(&pollers).chain(&dispatchers).collect();
        let everything = async {
            while !watched.iter().all(|h| h.is_finished()) || invocations(accounts) > 0 {
                tokio::time::sleep(IN_FLIGHT_EVERY).await;
            }
        };
        let why = tokio::select! {
            _ = everything => None,
            _ = tokio::time::sleep(deadline) => Some(format!("the deadline ({} s) passed", deadline.as_secs_f64())),
            _ = interrupted => Some("a second signal came".to_string()),
        };
        let left = Work {
            invocations: invocations(accounts),
            async_events: async_events(accounts),
            connections: !api.is_finished(),
            batches: pollers.iter().any(|h| !h.is_finished()),
        };
        match why {
            None => tracing::info!("drained in {:.1} s", started.elapsed().as_secs_f64()),
            Some(why) => tracing::warn!("draining: {why} with {} still in progress: ending it", left.describe()),
        }
        api.abort();
    }
}

/// Work in progress, as the drain's log lines tell it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Work {
    invocations: u32,
    async_events: usize,
    /// API connections still open (a request in progress on them).
    connections: bool,
    /// Event source pollers still handling a batch.
    batches: bool,
}

impl Work {
    fn describe(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![plural(self.invocations as usize, "invocation", "invocations")];
        if self.async_events > 0 {
            parts.push(plural(self.async_events, "async event", "async events"));
        }
        if self.batches {
            parts.push("event source batches".into());
        }
        if self.connections {
            parts.push("API connections".into());
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_told_by_what_there_is() {
        let w = Work::default();
        let cases = [
            (w, "0 invocations"),
            (Work { invocations: 1, ..w }, "1 invocation"),
            (Work { invocations: 3, async_events: 1, ..w }, "3 invocations, 1 async event"),
            (Work { async_events: 2, connections: true, ..w }, "0 invocations, 2 async events, API connections"),
            (Work { invocations: 1, batches: true, connections: true, ..w }, "1 invocation, event source batches, API connections"),
            (Work { batches: true, ..w }, "0 invocations, event source batches"),
        ];
        for (work, told) in cases {
            assert_eq!(work.describe(), told, "{work:?}");
        }
    }
}
