//! Concurrency accounting: how many invocations run at once, per function and account-wide,
//! and the throttle decision AWS makes. A function with reserved concurrency runs within its
//! reservation only; the others share what the reservations leave of the account's limit.

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
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_function.get(function).copied().unwrap_or(0);
        match reserved {
            Some(r) if mine >= r => return Err(ApiError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded")),
            Some(_) => {}
            None if c.unreserved >= unreserved_limit => return Err(ApiError::throttled("ConcurrentInvocationLimitExceeded")),
            None => c.unreserved += 1,
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

    /// A slot for an invocation that runs on a provisioned environment: never throttled
    /// (there are only as many such environments as were provisioned).
    pub fn provisioned(self: &Arc<Self>, function: &str) -> Permit {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total += 1;
        *c.provisioned.entry(function.to_string()).or_default() += 1;
        Permit { limiter: self.clone(), function: function.to_string(), pool: Pool::Provisioned }
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
