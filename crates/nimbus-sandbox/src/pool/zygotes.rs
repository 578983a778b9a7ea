//! When a Python function's new environments fork from a zygote of that function: once
//! `after` of its environments are being started at once (a burst), a zygote is started
//! for it and every further fresh start forks from it, until it has not been used for
//! [`IDLE`] (then it drains). One zygote per function version, because forked interpreters share their
//! string-hash secret and address layout (see `jail::Zygote`).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jail::Zygote;

/// A zygote unused this long is let go (it drains: its runtimes keep running).
pub const IDLE: Duration = Duration::from_secs(30);

/// At most this many zygotes at once; a new one replaces the least recently used.
pub const MAX: usize = 16;

/// What the policy needs to know of a zygote (a trait so the tests can stand in for one).
pub trait Alive {
    fn is_alive(&self) -> bool;
}

impl Alive for Zygote {
    fn is_alive(&self) -> bool {
        Zygote::is_alive(self)
    }
}

struct Slot<Z> {
    zygote: Arc<Z>,
    last_used: Instant,
}

/// The pool's zygotes and its fresh starts under way, per function version.
pub struct Zygotes<K, Z = Zygote> {
    slots: HashMap<K, Slot<Z>>,
    starting: HashMap<K, usize>,
    /// Zygotes being started (outside the pool's lock), one per key at a time: where the
    /// starts that wait for one hear of it.
    launching: HashMap<K, Launch<Z>>,
}

/// A zygote's start as its waiters see it: None until the zygote is there; a start that
/// failed (or panicked) drops its sender, which closes the channel.
pub type Launch<Z> = tokio::sync::watch::Receiver<Option<Arc<Z>>>;

impl<K, Z> Default for Zygotes<K, Z> {
    fn default() -> Self {
        Zygotes { slots: HashMap::new(), starting: HashMap::new(), launching: HashMap::new() }
    }
}

/// What to do for one fresh start.
pub enum Plan<Z = Zygote> {
    /// Start without a zygote.
    Plain,
    /// Fork from this running zygote.
    Fork(Arc<Z>),
    /// Start a zygote for the function (outside the pool's lock), [`Zygotes::insert`] it or
    /// say it [`Zygotes::not_started`], tell the waiters through this sender (or drop it), and
    /// fork from it.
    StartOne(tokio::sync::watch::Sender<Option<Arc<Z>>>),
    /// Another start is starting the function's zygote: fork from it once it is there.
    Wait(Launch<Z>),
}

impl<K: std::hash::Hash + Eq + Clone, Z: Alive> Zygotes<K, Z> {
    /// Counts a fresh start of `key` (until [`Zygotes::finished`]) and says how to make it:
    /// `after` is the number of starts under way (this one included) from which a zygote is
    /// worth it; 0 never.
    pub fn begin(&mut self, key: &K, eligible: bool, after: usize, now: Instant) -> Plan<Z> {
        let starting = self.starting.entry(key.clone()).or_default();
        *starting += 1;
        let starting = *starting;
        if !eligible || after == 0 {
            return Plan::Plain;
        }
        if let Some(slot) = self.slots.get_mut(key) {
            if slot.zygote.is_alive() {
                slot.last_used = now;
                return Plan::Fork(slot.zygote.clone());
            }
            self.slots.remove(key);
        }
        if let Some(launch) = self.launching.get(key) {
            return Plan::Wait(launch.clone());
        }
        if starting >= after {
            let (tx, rx) = tokio::sync::watch::channel(None);
            self.launching.insert(key.clone(), rx);
            Plan::StartOne(tx)
        } else {
            Plan::Plain
        }
    }

    /// One fresh start of `key` is over.
    pub fn finished(&mut self, key: &K) {
        if let Some(n) = self.starting.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.starting.remove(key);
            }
        }
    }

    /// Keeps a zygote just started for `key`; returns the one it replaces, if any (drop it
    /// outside the pool's lock).
    pub fn insert(&mut self, key: K, zygote: Arc<Z>, now: Instant) -> Vec<Arc<Z>> {
        self.launching.remove(&key);
        let mut gone: Vec<Arc<Z>> = self.slots.remove(&key).map(|s| s.zygote).into_iter().collect();
        if self.slots.len() >= MAX {
            if let Some(oldest) = self.slots.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) {
                gone.extend(self.slots.remove(&oldest).map(|s| s.zygote));
            }
        }
        self.slots.insert(key, Slot { zygote, last_used: now });
        gone
    }

    /// The zygote a [`Plan::StartOne`] was to start could not be: a later start may try again.
    pub fn not_started(&mut self, key: &K) {
        self.launching.remove(key);
    }

    /// Removes zygotes unused for [`IDLE`] or dead; returns them to drop outside the lock.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<Z>> {
        let stale: Vec<K> = self
            .slots
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_used) >= IDLE || !s.zygote.is_alive())
            .map(|(k, _)| k.clone())
            .collect();
        stale.into_iter().filter_map(|k| self.slots.remove(&k)).map(|s| s.zygote).collect()
    }

    /// Every zygote (server shutdown).
    pub fn drain(&mut self) -> Vec<Arc<Z>> {
        self.slots.drain().map(|(_, s)| s.zygote).collect()
    }
}

/// A connection to `zygote` for one sandbox, or None (logged) if it cannot take one now.
pub fn connect(zygote: &Zygote) -> Option<OwnedFd> {
    match zygote.connect() {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::debug!("a zygote did not take a connection (the runtime starts without it): {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Fake(AtomicBool);

    impl Alive for Fake {
        fn is_alive(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn plan_name(p: &Plan<Fake>) -> &'static str {
        match p {
            Plan::Plain => "plain",
            Plan::Fork(_) => "fork",
            Plan::StartOne(_) => "start",
            Plan::Wait(_) => "wait",
        }
    }

    #[test]
    fn a_zygote_is_started_once_enough_starts_are_under_way() {
        // (starts already under way, eligible, after) → plan for one more start
        let cases = [
            (0, true, 1, "start"),
            (0, true, 2, "plain"),
            (1, true, 2, "start"),
            (5, true, 2, "start"),
            (5, false, 2, "plain"),
            (5, true, 0, "plain"),
        ];
        let now = Instant::now();
        for (under_way, eligible, after, want) in cases {
            let mut z: Zygotes<&str, Fake> = Zygotes::default();
            for _ in 0..under_way {
                z.begin(&"f", false, after, now);
            }
            let got = z.begin(&"f", eligible, after, now);
            assert_eq!(plan_name(&got), want, "{under_way} under way, eligible {eligible}, after {after}");
        }
    }

    /// While one start starts the zygote (outside the lock), the others wait for it.
    #[test]
    fn one_zygote_is_started_at_a_time() {
        let now = Instant::now();
        let mut z: Zygotes<&str, Fake> = Zygotes::default();
        let plans: Vec<_> = (0..3).map(|_| z.begin(&"f", true, 1, now)).collect();
        assert_eq!(plans.iter().map(plan_name).collect::<Vec<_>>(), ["start", "wait", "wait"]);
        // The waiters hear of the zygote once it is there.
        let (Plan::StartOne(tx), Plan::Wait(rx)) = (&plans[0], &plans[1]) else { unreachable!() };
        let started = Arc::new(Fake(AtomicBool::new(true)));
        tx.send_replace(Some(started.clone()));
        assert!(rx.borrow().clone().is_some_and(|z| Arc::ptr_eq(&z, &started)));
        drop(plans);
        assert_eq!(plan_name(&z.begin(&"g", true, 1, now)), "start", "another function's is its own");
        // It could not be started: the next start tries.
        z.not_started(&"f");
        assert_eq!(plan_name(&z.begin(&"f", true, 1, now)), "start");
        // Started and kept: the next ones fork; once it dies, one start starts another.
        let zygote = Arc::new(Fake(AtomicBool::new(true)));
        z.insert("f", zygote.clone(), now);
        assert_eq!(plan_name(&z.begin(&"f", true, 1, now)), "fork");
        zygote.0.store(false, Ordering::SeqCst);
        assert_eq!(plan_name(&z.begin(&"f", true, 1, now)), "start");
        assert_eq!(plan_name(&z.begin(&"f", true, 1, now)), "wait");
    }

    #[test]
    fn finished_starts_no_longer_count() {
        let now = Instant::now();
        let mut z: Zygotes<&str, Fake> = Zygotes::default();
        z.begin(&"f", true, 2, now);
        z.finished(&"f");
        assert_eq!(plan_name(&z.begin(&"f", true, 2, now)), "plain");
        // Another function's starts are its own.
        assert_eq!(plan_name(&z.begin(&"g", true, 2, now)), "plain");
    }

    #[test]
    fn a_live_zygote_is_used_a_dead_or_idle_one_goes() {
        let now = Instant::now();
        let mut z: Zygotes<&str, Fake> = Zygotes::default();
        let live = Arc::new(Fake(AtomicBool::new(true)));
        assert!(z.insert("f", live.clone(), now).is_empty());
        assert_eq!(plan_name(&z.begin(&"f", true, 5, now)), "fork");
        // Used just now: kept by the expiry; unused for IDLE: let go.
        assert!(z.expire(now + IDLE / 2).is_empty());
        assert_eq!(z.expire(now + IDLE).len(), 1);
        assert_eq!(plan_name(&z.begin(&"f", true, 5, now)), "plain");
        // A dead one is dropped by the next start, which then decides afresh.
        let dead = Arc::new(Fake(AtomicBool::new(false)));
        z.insert("f", dead, now);
        assert_eq!(plan_name(&z.begin(&"f", true, 1, now)), "start");
    }

    #[test]
    fn at_most_max_zygotes_the_least_recently_used_goes() {
        let now = Instant::now();
        let mut z: Zygotes<usize, Fake> = Zygotes::default();
        for i in 0..MAX {
            assert!(z.insert(i, Arc::new(Fake(AtomicBool::new(true))), now + Duration::from_millis(i as u64)).is_empty());
        }
        let gone = z.insert(MAX, Arc::new(Fake(AtomicBool::new(true))), now + Duration::from_secs(1));
        assert_eq!(gone.len(), 1);
        assert_eq!(plan_name(&z.begin(&0, true, 9, now)), "plain", "the oldest (0) was replaced");
        assert_eq!(plan_name(&z.begin(&1, true, 9, now)), "fork");
    }
}
