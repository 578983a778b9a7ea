//! When a Python function's new environments fork from a zygote of that function: once
//! `after` of its environments are being started at once (a burst), a zygote is started
//! for it and every further fresh start forks from it, until it has not been used for
//! [`IDLE`]. One zygote per function version, because forked interpreters share their
//! string-hash secret and address layout (see `jail::Zygote`).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jail::Zygote;

/// A zygote unused this long is let go (its runtimes keep running).
pub const IDLE: Duration = Duration::from_secs(30);

/// At most this many zygotes at once; a new one replaces the least recently used.
pub const MAX: usize = 16;

struct Slot {
    zygote: Arc<Zygote>,
    last_used: Instant,
}

/// The pool's zygotes and its fresh starts under way, per function version.
#[derive(Default)]
pub struct Zygotes<K> {
    slots: HashMap<K, Slot>,
    starting: HashMap<K, usize>,
}

/// What to do for one fresh start.
pub enum Plan {
    /// Start without a zygote.
    Plain,
    /// Fork from this running zygote.
    Fork(Arc<Zygote>),
    /// Start a zygote for the function (then [`Zygotes::insert`] it) and fork from it.
    StartOne,
}

impl<K: std::hash::Hash + Eq + Clone> Zygotes<K> {
    /// Counts a fresh start of `key` (until [`Zygotes::finished`]) and says how to make it:
    /// `after` is the number of starts under way (this one included) from which a zygote is
    /// worth it; 0 never.
    pub fn begin(&mut self, key: &K, eligible: bool, after: usize, now: Instant) -> Plan {
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
        if starting >= after {
            Plan::StartOne
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
    pub fn insert(&mut self, key: K, zygote: Arc<Zygote>, now: Instant) -> Vec<Arc<Zygote>> {
        let mut gone: Vec<Arc<Zygote>> = self.slots.remove(&key).map(|s| s.zygote).into_iter().collect();
        if self.slots.len() >= MAX {
            if let Some(oldest) = self.slots.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) {
                gone.extend(self.slots.remove(&oldest).map(|s| s.zygote));
            }
        }
        self.slots.insert(key, Slot { zygote, last_used: now });
        gone
    }

    /// Removes zygotes unused for [`IDLE`] or dead; returns them to drop outside the lock.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<Zygote>> {
        let stale: Vec<K> = self
            .slots
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_used) >= IDLE || !s.zygote.is_alive())
            .map(|(k, _)| k.clone())
            .collect();
        stale.into_iter().filter_map(|k| self.slots.remove(&k)).map(|s| s.zygote).collect()
    }

    /// Every zygote (server shutdown).
    pub fn drain(&mut self) -> Vec<Arc<Zygote>> {
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
