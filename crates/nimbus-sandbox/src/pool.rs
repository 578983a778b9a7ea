//! Warm environments kept for reuse: one idle list per function version, most recently
//! used first (the warmest caches), environments of an older configuration never reused,
//! and idle ones reaped after the idle timeout. Environments kept initialized for
//! provisioned concurrency live apart (`provisioned`), out of every reaper's reach.

mod demand;
mod provisioned;
mod zygotes;

pub use provisioned::{ProvisionKey, ProvisionedCounts};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_logs::LogStore;

use nimbus_model::{Runtime, RuntimeFamily};

use crate::cgroup::CgroupManager;
use crate::environment::{needs_fresh_process, prestart_key, zygote_eligible, zygote_variables, EnvSpec, Environment, Host, Prestarted};
use crate::freezer::Freezer;
use crate::runtimes::RuntimeRegistry;
use crate::Isolation;
use crate::{Reply, SandboxError};

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How long an idle environment is kept warm.
    pub idle_timeout: Duration,
    /// Managed runtimes kept started ahead of time, per runtime (0 turns it off).
    pub prestart: usize,
    /// At most this many per runtime when recent cold starts ask for more than `prestart`
    /// (see `pool::demand`).
    pub prestart_max: usize,
    /// Reap idle environments (least recently used first) while the host has less than
    /// this fraction of its memory available; None turns it off.
    pub min_available_fraction: Option<f64>,
    pub isolation: Isolation,
    /// Per-environment control groups; None where cgroups are unavailable.
    pub cgroups: Option<Arc<CgroupManager>>,
    /// The Nimbus API as functions reach it (`AWS_ENDPOINT_URL` in every environment).
    pub endpoint_url: Option<String>,
    /// The certificates that API is served with, for runtimes to trust (None: plain HTTP).
    pub trust: Option<crate::TrustedCertificates>,
    /// Limits on each environment's Runtime API connections.
    pub runtime_api: crate::connections::ConnectionLimits,
    /// Environments started for invocations that may be initializing at once; the rest wait
    /// their turn, built, at their sandbox's gate, before their init (and its clock)
    /// begins. On an overloaded host a burst would otherwise start everything at once, each
    /// init would crawl, and inits past AWS's 10 s would fail (`Sandbox.Timedout`) with
    /// their work lost.
    pub max_initializing: usize,
    /// Sandboxes for invocations that may be being built, or built and waiting for their
    /// init's turn, at once: their building overlaps other environments' inits (much of it
    /// is waiting on the kernel), within what the host's descriptors and memory allow.
    pub max_building: usize,
    /// A Python function's fresh starts fork from a zygote of that function once this many
    /// of them are under way at once (0: never; see `pool::zygotes`).
    pub zygote_after: usize,
}

/// (MemAvailable, MemTotal) in kB from /proc/meminfo.
fn host_memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("MemAvailable:")?, field("MemTotal:")?))
}

type Key = (String, String);

/// A zygote serves one function version of one runtime and generation: a function changed,
/// deleted or made again gets a zygote of its own.
type ZygoteKey = (String, String, Runtime, u64);

#[derive(Default)]
struct PoolState {
    idle: HashMap<Key, Vec<Arc<Environment>>>,
    /// Bumped when a function changes; environments from an older generation are dropped.
    generations: HashMap<String, u64>,
    busy: usize,
    prestarted: HashMap<Runtime, Vec<Prestarted>>,
    /// Prestarts under way per runtime, so refills do not overshoot.
    starting: HashMap<Runtime, usize>,
    /// Recent cold starts per prestart kind: how many to keep ready.
    demand: HashMap<Runtime, demand::Demand>,
    /// Environments being started (or adopted) for invocations right now. Runtimes beyond
    /// the floor are prestarted only when there are none: during a burst they would take
    /// the CPU from the starts the burst waits for, and save it nothing.
    cold_starting: usize,
    /// Set by [`EnvironmentPool::shutdown`]: nothing new is prestarted or kept.
    closed: bool,
    /// Environments kept initialized per provisioned concurrency config and version.
    provisioned: HashMap<Arc<ProvisionKey>, provisioned::ProvisionedSet>,
    /// Python zygotes per function version, and fresh starts under way per function version.
    zygotes: zygotes::Zygotes<ZygoteKey>,
}

/// Counts one start in [`PoolState::cold_starting`] while it lives (also when the caller's
/// future is dropped half-way).
struct ColdStart<'a>(&'a EnvironmentPool);

impl<'a> ColdStart<'a> {
    fn begin(pool: &'a EnvironmentPool) -> ColdStart<'a> {
        pool.lock().cold_starting += 1;
        ColdStart(pool)
    }
}

impl Drop for ColdStart<'_> {
    fn drop(&mut self) {
        self.0.lock().cold_starting -= 1;
    }
}

/// Counts one fresh start of a function version while it lives (for its zygote).
struct FreshStart<'a> {
    pool: &'a EnvironmentPool,
    key: ZygoteKey,
}

impl Drop for FreshStart<'_> {
    fn drop(&mut self) {
        self.pool.lock().zygotes.finished(&self.key);
    }
}

/// A zygote being started for a fresh start: unless it was kept, the start said it was not
/// (a failure or a panic), so a later one may try again.
struct Launching<'a> {
    fresh: &'a FreshStart<'a>,
    kept: bool,
}

impl Drop for Launching<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.fresh.pool.lock().zygotes.not_started(&self.fresh.key);
        }
    }
}

/// What [`EnvironmentPool::acquire`] found for an invocation.
pub enum Acquired {
    /// An environment to invoke, taken from the pool; `cold` when it was started (or
    /// adopted from a prestarted runtime) for this invocation, so its init runs first.
    Ready { env: Arc<Environment>, cold: bool },
    /// The function cannot start here (no interpreter, no bootstrap): the reply to give
    /// the caller instead of an invocation's.
    Refused(Reply),
    /// No environment was idle and the caller's `may_add` said no new one may be started
    /// now (the function's scaling rate).
    AtScaleLimit,
}

pub struct EnvironmentPool {
    state: Mutex<PoolState>,
    config: PoolConfig,
    registry: Arc<RuntimeRegistry>,
    logs: Arc<LogStore>,
    /// Signalled whenever a prestart finishes, so shutdown can wait for those under way.
    prestart_done: tokio::sync::Notify,
    /// Freezes environments that stay idle.
    freezer: Arc<Freezer>,
    /// One permit per environment initializing (`PoolConfig::max_initializing`).
    initializing: Arc<tokio::sync::Semaphore>,
    /// One permit per sandbox being built or waiting at its gate (`PoolConfig::max_building`).
    building: Arc<tokio::sync::Semaphore>,
}

impl EnvironmentPool {
    /// The log store the environments' lines go to.
    pub fn logs(&self) -> &Arc<LogStore> {
        &self.logs
    }

    pub fn new(config: PoolConfig, registry: Arc<RuntimeRegistry>, logs: Arc<LogStore>) -> Arc<EnvironmentPool> {
        let max_initializing = config.max_initializing.max(1);
        let max_building = config.max_building.max(1);
        let pool = Arc::new(EnvironmentPool {
            state: Mutex::new(PoolState::default()),
            config,
            registry,
            logs,
            prestart_done: tokio::sync::Notify::new(),
            freezer: Freezer::start(),
            initializing: Arc::new(tokio::sync::Semaphore::new(max_initializing)),
            building: Arc::new(tokio::sync::Semaphore::new(max_building)),
        });
        let mut kinds: Vec<Runtime> = pool
            .registry
            .list()
            .filter(|i| i.runtime.family() != RuntimeFamily::Provided && i.interpreter.is_ok())
            .map(|i| i.runtime)
            .collect();
        // `provided` functions get sandboxes built ahead of time, waiting at their gate.
        if matches!(pool.config.isolation, Isolation::Namespaces(_)) {
            kinds.push(prestart_key(Runtime::ProvidedAl2023));
        }
        for runtime in kinds {
            pool.refill(runtime);
        }
        let weak = Arc::downgrade(&pool);
        let period = (pool.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.tick();
            }
        });
        pool
    }

    pub fn registry(&self) -> &RuntimeRegistry {
        &self.registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A warm environment for `spec` if one is idle, else a newly started one (cold), or the
    /// reply for a function that cannot start here at all.
    pub async fn acquire(self: &Arc<Self>, spec: &Arc<EnvSpec>) -> Result<Acquired, SandboxError> {
        self.acquire_or_scale(spec, || true).await
    }

    /// [`EnvironmentPool::acquire`], asking `may_add` before it starts (or adopts) a new
    /// environment: [`Acquired::AtScaleLimit`] when it says no.
    pub async fn acquire_or_scale(self: &Arc<Self>, spec: &Arc<EnvSpec>, may_add: impl FnOnce() -> bool) -> Result<Acquired, SandboxError> {
        /// What one look at the pool found.
        enum Next {
            Warm(Arc<Environment>),
            AtLimit,
            Start(u64, Option<Prestarted>),
        }
        let key = (spec.function_name.clone(), spec.version.clone());
        let mut may_add = Some(may_add);
        let (generation, prestarted) = loop {
            let next = {
                let mut st = self.lock();
                let generation = st.generations.get(&spec.function_name).copied().unwrap_or(0);
                let mut warm = None;
                if let Some(list) = st.idle.get_mut(&key) {
                    while let Some(env) = list.pop() {
                        // Not one whose credentials are older than the spec's (renewed before
                        // they expire): it is dropped, as an outdated one.
                        let current = env.spec.revision == spec.revision && env.spec.credentials_expire >= spec.credentials_expire;
                        if env.is_alive() && env.generation == generation && current && !env.spec.let_go() {
                            warm = Some(env);
                            break;
                        }
                    }
                }
                if let Some(env) = warm {
                    st.busy += 1;
                    Next::Warm(env)
                } else if !may_add.take().expect("asked once: the look after it ends the loop")() {
                    Next::AtLimit
                } else {
                    st.busy += 1;
                    Next::Start(generation, self.take_prestarted(&mut st, spec))
                }
            };
            match next {
                Next::Warm(env) if env.take_for_invocation() => return Ok(Acquired::Ready { env, cold: false }),
                // It could not be thawed and was killed: the invocation looks again.
                Next::Warm(_) => self.lock().busy -= 1,
                Next::AtLimit => return Ok(Acquired::AtScaleLimit),
                Next::Start(generation, prestarted) => break (generation, prestarted),
            }
        };
        if prestarted.is_none() && !needs_fresh_process(spec, &self.config.isolation) {
            // The floor is kept at once (the adoption refills by itself); more once the
            // burst is over (the tick).
            self.refill(prestart_key(spec.runtime));
        }
        let made = {
            let _starting = ColdStart::begin(self);
            self.new_environment(spec, generation, prestarted, None).await
        };
        match made {
            Ok(Ok(env)) => Ok(Acquired::Ready { env, cold: true }),
            other => {
                self.lock().busy -= 1;
                other.map(|r| r.map_or_else(Acquired::Refused, |env| Acquired::Ready { env, cold: true }))
            }
        }
    }

    /// A prestarted runtime that can run `spec`, if one is ready.
    fn take_prestarted(&self, st: &mut PoolState, spec: &EnvSpec) -> Option<Prestarted> {
        if needs_fresh_process(spec, &self.config.isolation) {
            return None;
        }
        let policy = self.demand_policy();
        st.demand.entry(prestart_key(spec.runtime)).or_default().record(Instant::now(), &policy);
        st.prestarted.get_mut(&prestart_key(spec.runtime)).and_then(|list| {
            // Dead ones go; ones still starting stay for later.
            list.retain(Prestarted::is_alive);
            let i = list.iter().position(Prestarted::is_ready)?;
            Some(list.remove(i))
        })
    }

    /// A new environment for `spec`: an adopted prestarted runtime if there is one, else a
    /// freshly started process.
    async fn new_environment(
        self: &Arc<Self>,
        spec: &Arc<EnvSpec>,
        generation: u64,
        prestarted: Option<Prestarted>,
        provisioned: Option<Arc<ProvisionKey>>,
    ) -> Result<Result<Arc<Environment>, Reply>, SandboxError> {
        if let Some(pre) = prestarted {
            // Adopted before the replacement is started: building a sandbox holds the lock
            // of the namespace the adoption mounts the code in (`--trace-starts` showed the
            // mount waiting 1–10 ms behind a refill started first).
            let runtime = pre.runtime;
            let adopted = Environment::adopt(pre, spec.clone(), &self.host(), generation, provisioned.clone());
            self.refill(runtime);
            match adopted {
                Ok(env) => return Ok(Ok(env)),
                Err(e) => tracing::warn!("adopting a prestarted runtime failed, starting a fresh one: {e}"),
            }
        }
        // A fresh start waits for two turns: one to build its sandbox, held until the
        // runtime's init may begin; one for that init, held until it is over (its first
        // `/next`, a failure, or the init limit).
        let building = self.building.clone().acquire_owned().await.ok();
        let (zygote, _fresh) = self.zygote_for(spec, generation).await;
        let initializing = self.initializing.clone();
        let admit = async move {
            let permit = initializing.acquire_owned().await.ok();
            drop(building);
            permit
        };
        let made = Environment::start(spec.clone(), &self.host(), generation, provisioned, zygote, admit).await;
        Ok(made?.map(|(env, permit)| {
            if let Some(permit) = permit {
                let api = env.runtime_api();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(crate::environment::INIT_TIMEOUT, api.initialized()).await;
                    drop(permit);
                });
            }
            env
        }))
    }

    /// A connection to `spec`'s zygote if this fresh start should fork from one (starting
    /// the zygote if this start is the one that makes it worth it), and the start counted
    /// as under way until the guard drops.
    async fn zygote_for(&self, spec: &EnvSpec, generation: u64) -> (Option<std::os::fd::OwnedFd>, FreshStart<'_>) {
        let key = (spec.function_name.clone(), spec.version.clone(), spec.runtime, generation);
        let eligible = zygote_eligible(spec, &self.config.isolation, &self.registry);
        let now = Instant::now();
        let plan = self.lock().zygotes.begin(&key, eligible, self.config.zygote_after, now);
        let fresh = FreshStart { pool: self, key };
        let zygote = match plan {
            zygotes::Plan::Plain => None,
            zygotes::Plan::Fork(z) => Some(z),
            // (a few milliseconds: the interpreter is spawned, not waited for)
            zygotes::Plan::Wait(mut launch) => launch.wait_for(Option::is_some).await.ok().and_then(|z| z.clone()),
            // Spawning the interpreter forks the server: off the lock and the async workers.
            zygotes::Plan::StartOne(waiters) => {
                let mut launch = Launching { fresh: &fresh, kept: false };
                match nimbus_store::blocking::in_place(|| self.start_zygote(spec)) {
                    Ok(z) => {
                        let z = Arc::new(z);
                        tracing::debug!(function = %spec.function_name, version = %spec.version, "started a Python zygote");
                        let replaced = self.lock().zygotes.insert(fresh.key.clone(), z.clone(), Instant::now());
                        launch.kept = true;
                        waiters.send_replace(Some(z.clone()));
                        drop(replaced);
                        Some(z)
                    }
                    Err(e) => {
                        // (its waiters hear it as `waiters` drops)
                        tracing::warn!("cannot start a Python zygote (environments start without one): {e}");
                        None
                    }
                }
            }
        };
        (zygote.as_deref().and_then(zygotes::connect), fresh)
    }

    fn start_zygote(&self, spec: &EnvSpec) -> std::io::Result<crate::jail::Zygote> {
        let interpreter = self.registry.get(spec.runtime).interpreter.as_ref().map_err(|why| std::io::Error::other(why.clone()))?;
        let dir = self.registry.runtime_dir(RuntimeFamily::Python).ok_or_else(|| std::io::Error::other("no Python runtime directory"))?;
        crate::jail::Zygote::start(interpreter, dir, &zygote_variables(spec))
    }

    fn host(&self) -> Host<'_> {
        Host {
            iso: &self.config.isolation,
            cgroups: self.config.cgroups.as_deref(),
            registry: &self.registry,
            logs: &self.logs,
            endpoint_url: self.config.endpoint_url.as_deref(),
            trust: self.config.trust.as_ref(),
            runtime_api: self.config.runtime_api,
        }
    }

    fn demand_policy(&self) -> demand::DemandPolicy {
        demand::DemandPolicy::new(self.config.prestart, self.config.prestart_max)
    }

    /// Starts prestarted runtimes in the background until as many as recent demand asks
    /// for are ready (`config.prestart` at least; more only while the host has memory to
    /// spare).
    fn refill(self: &Arc<Self>, runtime: Runtime) {
        let policy = self.demand_policy();
        let (mut target, busy) = {
            let st = self.lock();
            (st.demand.get(&runtime).map_or(policy.floor, |d| d.target(Instant::now(), &policy)), st.cold_starting > 0)
        };
        if target > policy.floor && (busy || !self.memory_to_spare()) {
            target = policy.floor;
        }
        let missing = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            let have = st.prestarted.get(&runtime).map_or(0, Vec::len) + st.starting.get(&runtime).copied().unwrap_or(0);
            let missing = target.saturating_sub(have);
            *st.starting.entry(runtime).or_insert(0) += missing;
            missing
        };
        for _ in 0..missing {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                let Some(pool) = weak.upgrade() else { return };
                let started = Environment::prestart(runtime, &pool.host()).await;
                let unwanted = {
                    let mut st = pool.lock();
                    if let Some(n) = st.starting.get_mut(&runtime) {
                        *n = n.saturating_sub(1);
                    }
                    match started {
                        // Finished after shutdown: dropped here (its mount points with it),
                        // not left for a process exit that would skip the drop.
                        Ok(Some(pre)) if st.closed => Some(pre),
                        Ok(Some(pre)) => {
                            st.prestarted.entry(runtime).or_default().push(pre);
                            None
                        }
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!("cannot prestart {runtime}: {e}");
                            None
                        }
                    }
                };
                drop(unwanted);
                pool.prestart_done.notify_waiters();
            });
        }
    }

    /// Returns an environment after an invocation; dead or outdated ones are dropped.
    pub fn release(self: &Arc<Self>, env: Arc<Environment>) {
        if env.provisioned.is_some() {
            return self.release_provisioned(env);
        }
        let mut st = self.lock();
        st.busy -= 1;
        let generation = st.generations.get(&env.spec.function_name).copied().unwrap_or(0);
        // Also not one whose code was let go: an invocation that resolved the function just
        // before it was deleted starts its environment after the retirement (so of the new
        // generation); kept, it would hold the deleted code until it idled out.
        if !env.is_alive() || env.generation != generation || env.spec.let_go() {
            return;
        }
        *env.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let key = (env.spec.function_name.clone(), env.spec.version.clone());
        self.freezer.idle(&env);
        st.idle.entry(key).or_default().push(env);
    }

    /// Drops every environment of a function (its code or configuration changed, or it was
    /// deleted); busy ones are dropped when they are released.
    pub fn retire(&self, function_name: &str) {
        let dropped: Vec<Arc<Environment>> = {
            let mut st = self.lock();
            *st.generations.entry(function_name.to_string()).or_insert(0) += 1;
            let keys: Vec<Key> = st.idle.keys().filter(|(f, _)| f == function_name).cloned().collect();
            keys.into_iter().flat_map(|k| st.idle.remove(&k).unwrap_or_default()).collect()
        };
        for env in dropped {
            env.kill();
        }
    }

    /// Ends the idle environments of one version of a function (the version was deleted);
    /// busy ones end when they come back, as their code was let go.
    pub fn retire_version(&self, function_name: &str, version: &str) {
        let dropped = self.lock().idle.remove(&(function_name.to_string(), version.to_string())).unwrap_or_default();
        for env in dropped {
            env.kill();
        }
    }

    fn reap_idle(&self) {
        let now = Instant::now();
        let mut dropped = Vec::new();
        {
            let mut st = self.lock();
            for list in st.idle.values_mut() {
                list.retain(|env| {
                    let last = *env.last_used.lock().unwrap_or_else(|p| p.into_inner());
                    let keep = env.is_alive() && now.duration_since(last) < self.config.idle_timeout;
                    if !keep {
                        dropped.push(env.clone());
                    }
                    keep
                });
            }
            st.idle.retain(|_, l| !l.is_empty());
        }
        for env in dropped {
            env.kill();
        }
        self.relieve_memory_pressure();
    }

    /// Periodic upkeep of provisioned sets, the idle reaper and the prestarted runtimes,
    /// for the tick task.
    fn tick(self: &Arc<Self>) {
        let expired = self.lock().zygotes.expire(Instant::now());
        drop(expired);
        self.reap_idle();
        self.maintain_provisioned();
        self.settle_prestarted();
        // Kinds in demand are topped up above the floor once no cold start is under way.
        let wanted: Vec<Runtime> = self.lock().demand.keys().copied().collect();
        for runtime in wanted {
            self.refill(runtime);
        }
    }

    /// Whether the host has memory for runtimes beyond the floor: twice the reaper's
    /// threshold available (or a fifth of the memory without one).
    fn memory_to_spare(&self) -> bool {
        let wanted = self.config.min_available_fraction.map_or(0.2, |f| 2.0 * f);
        host_memory().is_none_or(|(available, total)| available as f64 >= total as f64 * wanted)
    }

    /// Drops prestarted runtimes above the floor of kinds no cold start has asked for in a
    /// while, newest first (the oldest are the most likely to be fully initialized).
    fn settle_prestarted(&self) {
        let policy = self.demand_policy();
        let now = Instant::now();
        let surplus: Vec<Prestarted> = {
            let mut st = self.lock();
            let st = &mut *st;
            let mut out = Vec::new();
            for (runtime, list) in st.prestarted.iter_mut() {
                if list.len() > policy.floor && st.demand.get(runtime).is_none_or(|d| d.settled(now, &policy)) {
                    out.extend(list.drain(policy.floor..));
                }
            }
            out
        };
        if !surplus.is_empty() {
            tracing::debug!(count = surplus.len(), "dropping prestarted runtimes no longer in demand");
        }
        drop(surplus);
    }

    /// Under host memory pressure, kills idle environments, least recently used first,
    /// until the host has `min_available_fraction` of its memory available again (each
    /// kill is followed by a fresh reading, since freed memory shows up at once).
    fn relieve_memory_pressure(&self) {
        let Some(fraction) = self.config.min_available_fraction else { return };
        loop {
            let Some((available, total)) = host_memory() else { return };
            if available as f64 >= total as f64 * fraction {
                return;
            }
            let victim = {
                let mut st = self.lock();
                let oldest = st
                    .idle
                    .iter()
                    .flat_map(|(k, l)| l.iter().enumerate().map(move |(i, e)| (k.clone(), i, e)))
                    .min_by_key(|(_, _, e)| *e.last_used.lock().unwrap_or_else(|p| p.into_inner()))
                    .map(|(k, i, _)| (k, i));
                oldest.and_then(|(k, i)| st.idle.get_mut(&k).map(|l| l.remove(i)))
            };
            match victim {
                Some(env) => {
                    tracing::info!(function = %env.spec.function_name, "memory pressure: reaping an idle environment");
                    env.kill();
                }
                None => return,
            }
        }
    }

    /// Kills every idle environment and removes every prestarted one (server shutdown),
    /// waiting up to `grace` for prestarts under way: the process exits right after, and a
    /// sandbox dropped by nobody would leave its host mount points behind.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        let prestarted: Vec<Prestarted> = {
            let mut st = self.lock();
            st.closed = true;
            st.prestarted.drain().flat_map(|(_, l)| l).collect()
        };
        drop(prestarted);
        let zygotes = self.lock().zygotes.drain();
        drop(zygotes);
        let mut all: Vec<Arc<Environment>> = self.lock().idle.drain().flat_map(|(_, l)| l).collect();
        all.extend(self.lock().provisioned.drain().flat_map(|(_, set)| set.ready));
        for env in all {
            env.kill();
        }
        let settled = async {
            loop {
                let done = self.prestart_done.notified();
                if self.lock().starting.values().all(|n| *n == 0) {
                    return;
                }
                done.await;
            }
        };
        if tokio::time::timeout(grace, settled).await.is_err() {
            tracing::warn!("shutdown: prestarts still under way after {grace:?}; the next start removes what they leave");
        }
    }

    /// Idle environments of `function` (any version), provisioned ones included.
    pub fn idle_for(&self, function: &str) -> usize {
        let st = self.lock();
        let plain: usize = st.idle.iter().filter(|((name, _), _)| name == function).map(|(_, envs)| envs.len()).sum();
        let provisioned: usize = st.provisioned.iter().filter(|(key, _)| key.function == function).map(|(_, set)| set.ready.len()).sum();
        plain + provisioned
    }

    /// (idle, busy) environment counts.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.idle.values().map(Vec::len).sum(), st.busy)
    }
}
