//! Concurrency accounting: how many invocations run at once, per function and account-wide,
//! and the throttle decision AWS makes. A function with reserved concurrency runs within its
//! reservation only; the others share what the reservations leave of the account's limit.
//! With several nodes on one store, each node runs a pool's invocations only within the
//! share of that pool's limit it leased from the store (`Shortfall::Share` asks for more).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nimbus_model::ApiError;

#[derive(Default)]
struct Counts {
    /// In flight per function name.
    per_function: HashMap<String, u32>,
    /// In flight across functions without a reservation.
    unreserved: u32,
    /// In flight on provisioned environments, per function name.
    provisioned: HashMap<String, u32>,
    total: u32,
}

#[derive(Default)]
pub struct ConcurrencyLimiter {
    counts: Mutex<Counts>,
    /// With a shared store: the share of each pool's limit this node holds, by pool
    /// ([`pool_key`]), with the limit it was leased under. None: this node is alone.
    shares: Mutex<Option<HashMap<String, Share>>>,
}

/// A share of a pool's cluster-wide limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub held: u32,
    pub limit: u32,
    /// Taken without the database (it could not be reached): this node's outage part, which
    /// the database does not know of; leased again as soon as it answers, even while the
    /// pool runs all of it, so other nodes cannot lease what this node uses.
    pub unconfirmed: bool,
}

impl Share {
    /// A share the database granted.
    pub fn leased(held: u32, limit: u32) -> Share {
        Share { held, limit, unconfirmed: false }
    }
}

/// What runs in `pool` now, if its share is one to lease again: more than that is held, or
/// the database does not know of it.
fn to_lease_again(c: &Counts, pool: &str, share: &Share) -> Option<u32> {
    let in_flight = match pool.strip_prefix("fn:") {
        Some(function) => c.per_function.get(function).copied().unwrap_or(0),
        None => c.unreserved,
    };
    (in_flight < share.held || share.unconfirmed).then_some(in_flight)
}

/// Why no slot was taken.
#[derive(Debug)]
pub enum Shortfall {
    /// The limit itself is reached: AWS's throttle.
    Throttled(ApiError),
    /// This node's share of the pool is used up, the limit is not: lease more of `limit`
    /// (`in_flight` run now), then try again; `throttle` is the answer if none is left.
    Share { pool: String, in_flight: u32, limit: u32, throttle: ApiError },
}

/// A pool of concurrency: a function's reservation, or what the account leaves unreserved.
pub fn pool_key(function: &str, reserved: Option<u32>) -> String {
    match reserved {
        Some(_) => format!("fn:{function}"),
        None => "unreserved".to_string(),
    }
}

/// Which pool a permit was taken from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    Reserved,
    Unreserved,
    /// A provisioned environment: already claimed from the reservation or the account when
    /// it was configured, so it counts only towards the total.
    Provisioned,
}

/// One running invocation's slot; frees it when dropped.
pub struct Permit {
    limiter: Arc<ConcurrencyLimiter>,
    function: String,
    pool: Pool,
}

impl ConcurrencyLimiter {
    /// Takes a slot for `function` or says why not. `reserved` is the function's
    /// reservation; `unreserved_limit` what the account leaves to everyone else.
    pub fn try_acquire(self: &Arc<Self>, function: &str, reserved: Option<u32>, unreserved_limit: u32) -> Result<Permit, ApiError> {
        self.try_acquire_shared(function, reserved, unreserved_limit).map_err(|short| match short {
            Shortfall::Throttled(e) | Shortfall::Share { throttle: e, .. } => e,
        })
    }

    /// [`ConcurrencyLimiter::try_acquire`], telling a used-up share from a reached limit.
    pub fn try_acquire_shared(self: &Arc<Self>, function: &str, reserved: Option<u32>, unreserved_limit: u32) -> Result<Permit, Shortfall> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_function.get(function).copied().unwrap_or(0);
        let (in_flight, limit, reason) = match reserved {
            Some(r) => (mine, r, "ReservedFunctionConcurrentInvocationLimitExceeded"),
            None => (c.unreserved, unreserved_limit, "ConcurrentInvocationLimitExceeded"),
        };
        if in_flight >= limit {
            return Err(Shortfall::Throttled(ApiError::throttled(reason)));
        }
        if let Some(shares) = self.shares.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let pool = pool_key(function, reserved);
            let held = shares.get(&pool).filter(|s| s.limit == limit).map_or(0, |s| s.held);
            if in_flight >= held {
                return Err(Shortfall::Share { pool, in_flight, limit, throttle: ApiError::throttled(reason) });
            }
        }
        if reserved.is_none() {
            c.unreserved += 1;
        }
        match c.per_function.get_mut(function) {
            Some(n) => *n += 1,
            None => {
                c.per_function.insert(function.to_string(), 1);
            }
        }
        c.total += 1;
        let pool = if reserved.is_some() { Pool::Reserved } else { Pool::Unreserved };
        Ok(Permit { limiter: self.clone(), function: function.to_string(), pool })
    }

    /// From now on, slots are taken only within the shares this node holds.
    pub fn share_limits(&self) {
        self.shares.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new);
    }

    /// The share of `pool` this node holds, if any.
    pub fn share(&self, pool: &str) -> Option<Share> {
        self.shares.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|s| s.get(pool).copied())
    }

    /// Records the share of `pool` this node now holds (0 forgets it).
    pub fn set_share(&self, pool: &str, share: Share) {
        if let Some(shares) = self.shares.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            if share.held == 0 {
                shares.remove(pool);
            } else {
                shares.insert(pool.to_string(), share);
            }
        }
    }

    /// The shares to lease again: those held beyond what their pools run now, and those the
    /// database does not know of (taken during an outage): (pool, share, in flight).
    pub fn unused_shares(&self) -> Vec<(String, Share, u32)> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        let Some(shares) = shares.as_ref() else { return Vec::new() };
        shares
            .iter()
            .filter_map(|(pool, share)| to_lease_again(&c, pool, share).map(|in_flight| (pool.clone(), *share, in_flight)))
            .collect()
    }

    /// `pool`'s share and what runs in it now, if it is one to lease again (see
    /// [`ConcurrencyLimiter::unused_shares`]).
    pub fn unused_share(&self, pool: &str) -> Option<(Share, u32)> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        let share = shares.as_ref()?.get(pool)?;
        to_lease_again(&c, pool, share).map(|in_flight| (*share, in_flight))
    }

    /// A slot for an invocation that runs on a provisioned environment: never throttled
    /// (there are only as many such environments as were provisioned).
    pub fn provisioned(self: &Arc<Self>, function: &str) -> Permit {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total += 1;
        *c.provisioned.entry(function.to_string()).or_default() += 1;
        Permit { limiter: self.clone(), function: function.to_string(), pool: Pool::Provisioned }
    }

    /// Invocations of `function` running now (on provisioned environments too).
    pub fn in_flight_of(&self, function: &str) -> u32 {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.per_function.get(function).copied().unwrap_or(0) + c.provisioned.get(function).copied().unwrap_or(0)
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> u32 {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Invocations running now of functions without a reservation (AWS's
    /// UnreservedConcurrentExecutions), and of `function` on provisioned environments.
    pub fn unreserved_and_provisioned(&self, function: &str) -> (u32, u32) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        (c.unreserved, c.provisioned.get(function).copied().unwrap_or(0))
    }
}

/// AWS's concurrency scaling rate: how fast one function may add execution environments.
/// A bucket per function holds up to `per_10s` new environments and refills continuously
/// (AWS: 1,000 every 10 seconds, never more than 1,000 at once); an invocation that finds no
/// idle environment takes one, or is throttled.
pub struct ScaleLimiter {
    per_10s: std::sync::atomic::AtomicU32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

/// Buckets kept before full ones (functions not scaling now) are forgotten.
const MAX_BUCKETS: usize = 4096;

impl ScaleLimiter {
    pub fn new(per_10s: u32) -> ScaleLimiter {
        ScaleLimiter { per_10s: per_10s.into(), buckets: Mutex::new(HashMap::new()) }
    }

    pub fn set_rate(&self, per_10s: u32) {
        self.per_10s.store(per_10s, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes one new environment for `function` at `now`, or says it must wait.
    pub fn try_add(&self, function: &str, now: std::time::Instant) -> Result<(), ApiError> {
        let cap = f64::from(self.per_10s.load(std::sync::atomic::Ordering::Relaxed));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(function) {
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * cap / 10.0 < cap);
        }
        let b = buckets.entry(function.to_string()).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * cap / 10.0).min(cap);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(ApiError::throttled("ConcurrentInvocationLimitExceeded"));
        }
        b.tokens -= 1.0;
        Ok(())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limiter.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        match self.pool {
            Pool::Provisioned => {
                if let Some(n) = c.provisioned.get_mut(&self.function) {
                    *n -= 1;
                    if *n == 0 {
                        c.provisioned.remove(&self.function);
                    }
                }
                return;
            }
            Pool::Unreserved => c.unreserved = c.unreserved.saturating_sub(1),
            Pool::Reserved => {}
        }
        if let Some(n) = c.per_function.get_mut(&self.function) {
            *n -= 1;
            if *n == 0 {
                c.per_function.remove(&self.function);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With shares, a slot needs room under the limit and under the share; a used-up share
    /// asks for more, a reached limit throttles; shares given back are forgotten.
    #[test]
    fn shares_bound_what_a_node_runs() {
        let l = Arc::new(ConcurrencyLimiter::default());
        l.share_limits();
        let short = |r: Result<Permit, Shortfall>| match r {
            Err(Shortfall::Share { pool, in_flight, limit, throttle }) => (pool, in_flight, limit, throttle.reason.unwrap_or_default()),
            Err(Shortfall::Throttled(e)) => ("throttled".into(), 0, 0, e.reason.unwrap_or_default()),
            Ok(_) => ("ok".into(), 0, 0, ""),
        };
        assert_eq!(short(l.try_acquire_shared("a", None, 10)), ("unreserved".into(), 0, 10, "ConcurrentInvocationLimitExceeded"));
        l.set_share("unreserved", Share::leased(2, 10));
        let (p1, p2) = (l.try_acquire_shared("a", None, 10).unwrap(), l.try_acquire_shared("b", None, 10).unwrap());
        assert_eq!(short(l.try_acquire_shared("c", None, 10)).1, 2, "the share is used up at 2");
        // A share leased under another limit (reservations changed) counts as none.
        assert_eq!(short(l.try_acquire_shared("c", None, 9)).0, "unreserved");
        assert_eq!(
            short(l.try_acquire_shared("r", Some(1), 10)),
            ("fn:r".into(), 0, 1, "ReservedFunctionConcurrentInvocationLimitExceeded")
        );
        l.set_share("fn:r", Share::leased(1, 1));
        let r1 = l.try_acquire_shared("r", Some(1), 10).unwrap();
        assert_eq!(short(l.try_acquire_shared("r", Some(1), 10)).0, "throttled", "the reservation itself is reached");
        drop((p1, r1));
        let mut unused = l.unused_shares();
        unused.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(unused, [("fn:r".into(), Share::leased(1, 1), 0), ("unreserved".into(), Share::leased(2, 10), 1)]);
        l.set_share("fn:r", Share::leased(0, 1));
        assert_eq!(l.unused_shares().len(), 1);
        // A share taken during an outage is leased again even while the pool runs all of it.
        let fallback = Share { held: 1, limit: 10, unconfirmed: true };
        l.set_share("unreserved", fallback);
        assert_eq!(l.unused_shares(), [("unreserved".into(), fallback, 1)]);
        assert_eq!(l.unused_share("unreserved"), Some((fallback, 1)));
        assert_eq!(l.unused_share("fn:r"), None);
        drop(p2);
        // Alone (no shares), the limits alone decide.
        let alone = Arc::new(ConcurrencyLimiter::default());
        drop(alone.try_acquire_shared("a", None, 1).unwrap());
    }
    use nimbus_model::ErrorCode;

    #[test]
    fn reserved_and_shared_pools() {
        let l = Arc::new(ConcurrencyLimiter::default());
        let a1 = l.try_acquire("a", Some(2), 1).unwrap();
        let _a2 = l.try_acquire("a", Some(2), 1).unwrap();
        let e = l.try_acquire("a", Some(2), 1).err().unwrap();
        assert_eq!(e.code, ErrorCode::TooManyRequests);
        assert_eq!(e.reason, Some("ReservedFunctionConcurrentInvocationLimitExceeded"));
        // Reserved functions do not use the shared pool.
        let b = l.try_acquire("b", None, 1).unwrap();
        let e = l.try_acquire("c", None, 1).err().unwrap();
        assert_eq!(e.reason, Some("ConcurrentInvocationLimitExceeded"));
        drop(b);
        l.try_acquire("c", None, 1).unwrap();
        drop(a1);
        l.try_acquire("a", Some(2), 1).unwrap();
        // Reserved 0 always throttles.
        assert!(l.try_acquire("z", Some(0), 100).is_err());
    }

    #[test]
    fn provisioned_slots_use_no_pool() {
        let l = Arc::new(ConcurrencyLimiter::default());
        let p = l.provisioned("a");
        assert_eq!(l.in_flight(), 1);
        // Neither the function's nor the shared pool is used by it.
        let _a = l.try_acquire("a", Some(1), 1).unwrap();
        let _b = l.try_acquire("b", None, 1).unwrap();
        drop(p);
        assert_eq!(l.in_flight(), 2);
    }

    #[test]
    fn scaling_refills_continuously_up_to_the_rate() {
        let t0 = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        let l = ScaleLimiter::new(10);
        // (taken at this offset in ms, expected to pass)
        let steps: &[(u64, bool)] = &[
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, false),   // ten at once, then empty
            (500, false), // half a token back
            (1000, true), // one per second (10 per 10 s)
            (1000, false),
            (60_000, true), // never more than ten saved up
        ];
        for (i, (at, ok)) in steps.iter().enumerate() {
            let got = l.try_add("f", t0 + ms(*at));
            assert_eq!(got.is_ok(), *ok, "step {i} at {at} ms");
            if let Err(e) = got {
                assert_eq!(e.code, ErrorCode::TooManyRequests);
                assert_eq!(e.reason, Some("ConcurrentInvocationLimitExceeded"));
            }
        }
        for _ in 0..9 {
            l.try_add("f", t0 + ms(60_000)).unwrap();
        }
        l.try_add("f", t0 + ms(60_000)).unwrap_err();
        // Each function scales on its own.
        l.try_add("g", t0 + ms(60_000)).unwrap();
    }

    #[test]
    fn permits_return_slots() {
        let l = Arc::new(ConcurrencyLimiter::default());
        {
            let _p = l.try_acquire("a", None, 10).unwrap();
            assert_eq!(l.in_flight(), 1);
        }
        assert_eq!(l.in_flight(), 0);
    }
}
