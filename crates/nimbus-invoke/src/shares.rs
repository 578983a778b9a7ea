//! This node's shares of the cluster's concurrency limits: leased from the shared store a
//! few slots at a time when used up, given back every second when unused, and kept to an
//! equal part of the limit while the database cannot be reached, so warm invocations go on
//! through an outage and the limits hold across nodes.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use nimbus_model::log_every::LogEvery;
use nimbus_model::ApiError;

use crate::concurrency::{ConcurrencyLimiter, Permit, Share, Shortfall};

/// How many times an invocation asks for a larger share before it is throttled.
const ATTEMPTS: u32 = 4;

/// Locks serializing this node's leases, by a hash of the pool.
const STRIPES: usize = 16;

/// The longest a lease may take before it counts as failed: a database that stops answering
/// without refusing must not hold the pool's lease lock (and the invocations waiting on it)
/// until the connection times out.
const LEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Where shares are leased: the shared store ([`nimbus_store::Store::lease_concurrency`]).
#[async_trait]
pub(crate) trait LeaseStore: Send + Sync {
    async fn lease(&self, pool: &str, want: u32, limit: u32) -> Result<u32, String>;
}

#[async_trait]
impl LeaseStore for Arc<dyn nimbus_store::Store> {
    async fn lease(&self, pool: &str, want: u32, limit: u32) -> Result<u32, String> {
        self.lease_concurrency(pool, want, limit).await.map_err(|e| e.to_string())
    }
}

/// The part of a concurrency limit of `limit` a node of a cluster of `nodes` may use while
/// it cannot lease from the database: an equal part, rounded down, so that nodes which all
/// fall back to it stay within the limit together.
fn outage_share(limit: u32, nodes: usize) -> u32 {
    limit / u32::try_from(nodes.max(1)).unwrap_or(u32::MAX)
}

/// The share a node that cannot reach the database keeps of one it `held`: at most its
/// outage `part`, and never less than what runs (those finish; no more start past it).
fn outage_held(held: u32, in_flight: u32, part: u32) -> u32 {
    held.min(part).max(in_flight)
}

/// Slots within the limits and, with a shared store, within this node's shares of them.
pub(crate) struct Shares {
    limiter: Arc<ConcurrencyLimiter>,
    store: OnceLock<Arc<dyn LeaseStore>>,
    /// One lease of a pool's share at a time on this node (striped by pool): the database
    /// orders grants, and a grant recorded here out of that order (an older, smaller one
    /// after a newer one, or an outage part after a fresh grant) would let the node run
    /// more than the database gave it. Those that waited look at the share again first.
    leasing: [tokio::sync::Mutex<()>; STRIPES],
    /// Throttles for want of a share while the database is away, logged at most every 10 s.
    outage_throttles: LogEvery,
    /// Outages as the every-second return sees them start and end, logged at most every
    /// 10 s (a database that answers some calls and not others would flap).
    outage_starts: LogEvery,
    outage_returns: LogEvery,
}

/// A lease from `store`, failed if it takes longer than [`LEASE_TIMEOUT`].
async fn lease(store: &dyn LeaseStore, pool: &str, want: u32, limit: u32) -> Result<u32, String> {
    match tokio::time::timeout(LEASE_TIMEOUT, store.lease(pool, want, limit)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", LEASE_TIMEOUT.as_secs())),
    }
}

impl Shares {
    pub(crate) fn new(limiter: Arc<ConcurrencyLimiter>) -> Shares {
        Shares {
            limiter,
            store: OnceLock::new(),
            leasing: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            outage_throttles: LogEvery::new(std::time::Duration::from_secs(10)),
            outage_starts: LogEvery::new(std::time::Duration::from_secs(10)),
            outage_returns: LogEvery::new(std::time::Duration::from_secs(10)),
        }
    }

    /// Leases shares from `store` from now on; false if it already does.
    pub(crate) fn lease_from(&self, store: Arc<dyn LeaseStore>) -> bool {
        if self.store.set(store).is_err() {
            return false;
        }
        self.limiter.share_limits();
        true
    }

    fn lock(&self, pool: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(pool);
        &self.leasing[(hash % STRIPES as u64) as usize]
    }

    /// A slot for `function` within its limits (`reserved`, or the account's `unreserved`
    /// limit) and this node's share of them, leasing more when it is used up; `nodes` is how
    /// many live nodes this node last saw (None before it learned: no outage part then).
    /// The error is AWS's throttle.
    pub(crate) async fn acquire(
        &self,
        function: &str,
        reserved: Option<u32>,
        unreserved: u32,
        nodes: impl Fn() -> Option<usize>,
    ) -> Result<Permit, ApiError> {
        // Invocations topping the share up at once each ask from what they saw, and the
        // return of unused shares may run in between: ask again from the share as it is now
        // (a few times) before calling the pool's limit reached.
        let mut attempts = 0;
        let mut leasing = None;
        loop {
            let (pool, in_flight, limit, throttle) = match self.limiter.try_acquire_shared(function, reserved, unreserved) {
                Ok(permit) => return Ok(permit),
                Err(Shortfall::Throttled(e)) => return Err(e),
                Err(Shortfall::Share { pool, in_flight, limit, throttle }) => (pool, in_flight, limit, throttle),
            };
            let Some(store) = self.store.get().filter(|_| attempts < ATTEMPTS) else { return Err(throttle) };
            if leasing.as_ref().is_none_or(|(leased, _)| *leased != pool) {
                // Another invocation may be leasing this pool: wait for it, then look at
                // the share it left before leasing again.
                drop(leasing.take());
                leasing = Some((pool.clone(), self.lock(&pool).lock().await));
                continue;
            }
            attempts += 1;
            let share = self.limiter.share(&pool).filter(|s| s.limit == limit);
            let held = share.map_or(0, |s| s.held);
            // The database was unreachable moments ago (the every-second return leases the
            // share again once it answers): no lease, the part decides.
            let failure = if share.is_some_and(|s| s.unconfirmed) {
                None
            } else {
                // A few slots at a time: fewer round trips, little held back from other nodes.
                let want = (held.max(in_flight) + (limit / 8).clamp(1, 32)).min(limit);
                match lease(store.as_ref(), &pool, want, limit).await {
                    Ok(granted) => {
                        self.limiter.set_share(&pool, Share::leased(granted, limit));
                        continue;
                    }
                    Err(e) => Some(e),
                }
            };
            // The database is unreachable: rather than throttle every invocation (warm ones
            // too) until it is back, run within this node's equal part of the limit (a node
            // holding more is cut down to it by the return of unused shares, which cannot
            // reach the database either). The part is kept until the database answers, then
            // leased again. Nodes that still reach the database lease as before: in a
            // partition, the limit can be exceeded by the cut-off nodes' parts.
            let part = nodes().map(|n| outage_share(limit, n));
            let Some(part) = part.filter(|&part| in_flight < part && held < part) else {
                if let Some(n) = self.outage_throttles.note(std::time::Instant::now()) {
                    let why = failure.as_deref().unwrap_or("the database did not answer the last lease");
                    tracing::warn!("{n} invocation(s) throttled in 10 s for want of a share of {pool}'s concurrency: {why}");
                }
                return Err(throttle);
            };
            if let Some(e) = &failure {
                tracing::warn!(
                    "leasing a share of {pool}'s concurrency: {e}; running within this node's part ({part} of {limit}) until the database answers"
                );
            }
            self.limiter.set_share(&pool, Share { held: part, limit, unconfirmed: true });
        }
    }

    /// Gives back what this node's shares hold beyond what runs, and leases again those the
    /// database does not know of; `cut_off` says whether the last such lease failed (an
    /// outage is logged when it starts and ends, not every second). Run every second.
    pub(crate) async fn give_back(&self, nodes: Option<usize>, cut_off: &mut bool) {
        let Some(store) = self.store.get() else { return };
        for (pool, seen, _) in self.limiter.unused_shares() {
            let _leasing = self.lock(&pool).lock().await;
            // The share as it is now, and what runs now (an invocation may have leased
            // while this waited).
            let Some((share, in_flight)) = self.limiter.unused_share(&pool).filter(|(s, _)| s.limit == seen.limit) else {
                continue;
            };
            match lease(store.as_ref(), &pool, in_flight, share.limit).await {
                Ok(held) => {
                    self.limiter.set_share(&pool, Share::leased(held, share.limit));
                    if std::mem::take(cut_off) && self.outage_returns.note(std::time::Instant::now()).is_some() {
                        tracing::info!("leasing shares of concurrency again: the database answers");
                    }
                }
                Err(e) => {
                    // Cut off from the database: no more than this node's part of the limit
                    // from now on (what runs finishes); the database may forget the share
                    // meanwhile, so it is leased again once it answers.
                    let held = match nodes.map(|n| outage_share(share.limit, n)) {
                        Some(part) => outage_held(share.held, in_flight, part),
                        None => share.held,
                    };
                    self.limiter.set_share(&pool, Share { held, limit: share.limit, unconfirmed: true });
                    if !std::mem::replace(cut_off, true) {
                        if let Some(n) = self.outage_starts.note(std::time::Instant::now()) {
                            tracing::warn!(
                                "giving back a share of {pool}'s concurrency: {e}; kept to this node's part until the database answers ({n} time(s) cut off in 10 s)"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_node_may_run_an_equal_part_rounded_down() {
        for (limit, nodes, part) in [(1000, 3, 333), (10, 2, 5), (1, 2, 0), (7, 1, 7), (5, 0, 5), (0, 4, 0)] {
            assert_eq!(outage_share(limit, nodes), part, "limit {limit}, {nodes} nodes");
        }
    }

    #[test]
    fn a_cut_off_node_keeps_at_most_its_part_and_what_runs() {
        // (held, in flight, part) -> kept
        for (held, in_flight, part, kept) in [(800, 100, 333, 333), (800, 500, 333, 500), (200, 100, 333, 200), (5, 0, 0, 0), (1, 1, 0, 1)]
        {
            assert_eq!(outage_held(held, in_flight, part), kept, "held {held}, {in_flight} in flight, part {part}");
        }
    }

    /// A database that answers as scripted (else grants what is asked), slowly, and records
    /// the calls and how many ran at once.
    #[derive(Default)]
    struct Database {
        answers: Mutex<VecDeque<Result<u32, String>>>,
        down: std::sync::atomic::AtomicBool,
        calls: Mutex<Vec<(String, u32, u32)>>,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    #[async_trait]
    impl LeaseStore for Database {
        async fn lease(&self, pool: &str, want: u32, limit: u32) -> Result<u32, String> {
            self.calls.lock().unwrap().push((pool.to_string(), want, limit));
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err("connection refused".into());
            }
            self.answers.lock().unwrap().pop_front().unwrap_or(Ok(want))
        }
    }

    fn shares(db: &Arc<Database>) -> Shares {
        let shares = Shares::new(Arc::new(ConcurrencyLimiter::default()));
        assert!(shares.lease_from(db.clone()));
        shares
    }

    fn reason(r: &Result<Permit, ApiError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.reason.unwrap_or("?"),
        }
    }

    #[tokio::test]
    async fn a_used_up_share_is_topped_up_a_few_slots_at_a_time() {
        let db = Arc::new(Database::default());
        let s = shares(&db);
        let mut permits = Vec::new();
        for _ in 0..3 {
            permits.push(s.acquire("f", None, 16, || Some(1)).await.unwrap());
        }
        // 16 / 8 = 2 slots at a time: leased at 0 (→ 2) and at 2 (→ 4).
        assert_eq!(*db.calls.lock().unwrap(), [("unreserved".into(), 2, 16), ("unreserved".into(), 4, 16)]);
        // The database grants less than asked, then nothing: the limit is reached elsewhere.
        db.answers.lock().unwrap().extend([Ok(4), Ok(4), Ok(4), Ok(4)]);
        permits.push(s.acquire("f", None, 16, || Some(1)).await.unwrap());
        let r = s.acquire("f", None, 16, || Some(1)).await;
        assert_eq!(reason(&r), "ConcurrentInvocationLimitExceeded");
        assert_eq!(db.calls.lock().unwrap().len(), 2 + 4, "asked again a few times first");
    }

    #[tokio::test]
    async fn invocations_short_of_a_share_lease_one_at_a_time() {
        let db = Arc::new(Database::default());
        let s = Arc::new(shares(&db));
        // 8 invocations at once, 1 slot per lease (limit 8 / 8).
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.acquire("f", Some(8), 100, || Some(1)).await })
            })
            .collect();
        let mut running = Vec::new();
        for t in tasks {
            running.push(t.await.unwrap().unwrap());
        }
        assert_eq!(db.most_at_once.load(Ordering::SeqCst), 1, "leases of one pool never overlap");
        // Each lease asked from the share the previous one left, so none asked twice.
        let wants: Vec<u32> = db.calls.lock().unwrap().iter().map(|c| c.1).collect();
        assert_eq!(wants, (1..=8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_outage_runs_within_the_nodes_part_and_heals() {
        let db = Arc::new(Database::default());
        let s = shares(&db);
        let nodes = || Some(2);
        // Before any outage: a share of 2 of 10 leased, both used.
        let running: Vec<Permit> = vec![s.acquire("f", None, 10, nodes).await.unwrap(), s.acquire("f", None, 10, nodes).await.unwrap()];
        assert_eq!(s.limiter.share("unreserved"), Some(Share::leased(2, 10)));

        db.down.store(true, Ordering::SeqCst);
        // A node that has not learned how many nodes there are has no part: it throttles.
        assert_eq!(reason(&s.acquire("f", None, 10, || None).await), "ConcurrentInvocationLimitExceeded");
        // With two nodes, its part is 5: three more run, the sixth is throttled.
        let mut more: Vec<Permit> = Vec::new();
        for _ in 0..3 {
            more.push(s.acquire("f", None, 10, nodes).await.unwrap());
        }
        assert_eq!(reason(&s.acquire("f", None, 10, nodes).await), "ConcurrentInvocationLimitExceeded");
        assert_eq!(s.limiter.share("unreserved"), Some(Share { held: 5, limit: 10, unconfirmed: true }));
        // The every-second return cannot reach the database either: it keeps the part.
        let mut cut_off = false;
        s.give_back(Some(2), &mut cut_off).await;
        assert!(cut_off);
        assert_eq!(s.limiter.share("unreserved"), Some(Share { held: 5, limit: 10, unconfirmed: true }));

        // The database is back. The pool runs all of its part, so nothing is unused, but the
        // database does not know of the part: it is leased again at once.
        db.down.store(false, Ordering::SeqCst);
        db.calls.lock().unwrap().clear();
        s.give_back(Some(2), &mut cut_off).await;
        assert!(!cut_off);
        assert_eq!(*db.calls.lock().unwrap(), [("unreserved".into(), 5, 10)]);
        assert_eq!(s.limiter.share("unreserved"), Some(Share::leased(5, 10)));
        // Then, as before the outage, a confirmed share that runs all of it is left alone.
        s.give_back(Some(2), &mut cut_off).await;
        assert_eq!(db.calls.lock().unwrap().len(), 1);
        drop((running, more));
        // And what is unused goes back.
        s.give_back(Some(2), &mut cut_off).await;
        assert_eq!(db.calls.lock().unwrap().last(), Some(&("unreserved".into(), 0, 10)));
        assert_eq!(s.limiter.share("unreserved"), None);
    }

    /// A database that never answers a lease.
    struct Hung;

    #[async_trait]
    impl LeaseStore for Hung {
        async fn lease(&self, _: &str, _: u32, _: u32) -> Result<u32, String> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_database_that_stops_answering_is_an_outage_not_a_wait() {
        let s = Shares::new(Arc::new(ConcurrencyLimiter::default()));
        assert!(s.lease_from(Arc::new(Hung)));
        let started = tokio::time::Instant::now();
        let first = s.acquire("f", None, 10, || Some(2)).await.unwrap();
        assert_eq!(started.elapsed(), LEASE_TIMEOUT, "one lease timed out, then the part was used");
        let mut running = vec![first];
        for _ in 0..4 {
            running.push(s.acquire("f", None, 10, || Some(2)).await.unwrap());
        }
        // The part used up: throttled at once, without asking the hung database again.
        let before = tokio::time::Instant::now();
        assert_eq!(reason(&s.acquire("f", None, 10, || Some(2)).await), "ConcurrentInvocationLimitExceeded");
        assert_eq!(before.elapsed(), std::time::Duration::ZERO);
    }

    /// A node of two running one invocation within a share of `granted` of a limit of 10,
    /// then cut off from the database as the every-second return finds.
    async fn cut_off_holding(granted: u32) -> (Arc<Database>, Shares, Permit) {
        let db = Arc::new(Database::default());
        let s = shares(&db);
        db.answers.lock().unwrap().push_back(Ok(granted));
        let running = s.acquire("f", None, 10, || Some(2)).await.unwrap();
        assert_eq!(s.limiter.share("unreserved"), Some(Share::leased(granted, 10)));
        db.down.store(true, Ordering::SeqCst);
        let mut cut_off = false;
        s.give_back(Some(2), &mut cut_off).await;
        assert!(cut_off);
        (db, s, running)
    }

    #[tokio::test]
    async fn a_share_smaller_than_the_part_grows_to_it_in_an_outage_without_asking() {
        // The return of unused shares cannot reach the database: it keeps the 3 (under the
        // part of 5), now unknown to the database.
        let (db, s, first) = cut_off_holding(3).await;
        assert_eq!(s.limiter.share("unreserved"), Some(Share { held: 3, limit: 10, unconfirmed: true }));
        db.calls.lock().unwrap().clear();
        let mut running = vec![first];
        for _ in 0..4 {
            running.push(s.acquire("f", None, 10, || Some(2)).await.unwrap());
        }
        assert_eq!(reason(&s.acquire("f", None, 10, || Some(2)).await), "ConcurrentInvocationLimitExceeded");
        assert!(db.calls.lock().unwrap().is_empty(), "the part decided, not the database");
    }

    #[tokio::test]
    async fn a_node_holding_more_than_its_part_is_cut_down_to_it_in_an_outage() {
        let (_db, s, running) = cut_off_holding(8).await;
        assert_eq!(s.limiter.share("unreserved"), Some(Share { held: 5, limit: 10, unconfirmed: true }));
        drop(running);
    }
}
