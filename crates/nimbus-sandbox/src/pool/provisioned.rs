//! Provisioned concurrency in the pool: per config and version, a set of environments
//! whose init ran ahead of any invocation (`AWS_LAMBDA_INITIALIZATION_TYPE=
//! provisioned-concurrency`). They are never reaped for idleness or memory pressure; one
//! that dies is replaced; invocations take them before any on-demand environment. They may
//! live longer than the role credentials they were started with: when the set's spec is
//! renewed (same configuration, fresh credentials), each environment is recycled as AWS
//! does: a replacement is started and initialized, and only then is the old one retired (at
//! once when idle, after its invocation when busy).

use std::sync::Arc;
use std::time::Instant;

use super::{EnvironmentPool, PoolState};
use crate::environment::{EnvSpec, Environment};

/// Whose provisioned environments these are: a function's config (its qualifier, a version
/// or an alias) and the version they run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProvisionKey {
    pub function: String,
    pub qualifier: String,
    pub version: String,
}

pub(super) struct ProvisionedSet {
    spec: Arc<EnvSpec>,
    target: usize,
    /// Initialized and idle (frozen), most recently used last.
    pub(super) ready: Vec<Arc<Environment>>,
    /// Taken by invocations.
    busy: Vec<Arc<Environment>>,
    /// Starting or initializing.
    starting: usize,
    /// How the last init failed; no more are started until the config changes.
    failure: Option<String>,
    /// Identifies the config's version (its LastModified): a new one retries after a failure.
    epoch: i64,
    /// This set, as opposed to a later one under the same key: starts begun for a removed
    /// set must not count towards its successor.
    id: u64,
}

/// Source of [`ProvisionedSet::id`].
static NEXT_SET_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ProvisionedSet {
    /// Initialized environments, idle or busy, current or waiting to be replaced.
    fn allocated(&self) -> usize {
        self.ready.len() + self.busy.len()
    }

    /// Whether `env` runs the set's spec as it is now: its configuration and its credentials
    /// (an environment started before the spec was renewed is replaced).
    fn current(&self, env: &Environment) -> bool {
        env.spec.revision == self.spec.revision && env.spec.credentials_expire == self.spec.credentials_expire
    }

    /// Initialized environments that need no replacement.
    fn current_allocated(&self) -> usize {
        self.ready.iter().chain(&self.busy).filter(|e| self.current(e)).count()
    }

    /// Idle environments of an older spec that the set no longer needs (their replacements
    /// are initialized), oldest first, taken out to be killed.
    fn retire_surplus(&mut self) -> Vec<Arc<Environment>> {
        let mut retired = Vec::new();
        while self.allocated() > self.target {
            let Some(i) = self.ready.iter().position(|e| !self.current(e)) else { break };
            retired.push(self.ready.remove(i));
        }
        retired
    }
}

/// One config's allocation, summed over the versions it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionedCounts {
    pub requested: usize,
    /// Initialized environments (idle or running an invocation).
    pub allocated: usize,
    /// Initialized environments idle right now.
    pub idle: usize,
    /// How an init failed (for logs; AWS reports only `FUNCTION_ERROR_INIT_FAILURE`).
    pub failure: Option<String>,
}

impl EnvironmentPool {
    /// Keeps `count` initialized environments of `spec` for `key` (0 releases them).
    /// `epoch` changes when the config is written again, which retries a failed one.
    pub fn provision(self: &Arc<Self>, key: ProvisionKey, spec: Arc<EnvSpec>, count: usize, epoch: i64) {
        let key = Arc::new(key);
        let killed = {
            let mut st = self.lock();
            if count == 0 {
                st.provisioned.remove(&key).map(|s| s.ready).unwrap_or_default()
            } else {
                let set = st.provisioned.entry(key.clone()).or_insert_with(|| ProvisionedSet {
                    spec: spec.clone(),
                    target: 0,
                    ready: Vec::new(),
                    busy: Vec::new(),
                    starting: 0,
                    failure: None,
                    epoch,
                    id: NEXT_SET_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                });
                let mut killed = Vec::new();
                if set.spec.revision != spec.revision {
                    // Another configuration: none of the old environments may serve it.
                    killed.append(&mut set.ready);
                    set.spec = spec;
                    set.failure = None;
                } else if set.spec.credentials_expire != spec.credentials_expire {
                    // Renewed credentials: the old environments serve until their
                    // replacements are initialized (top_up starts those).
                    set.spec = spec;
                }
                if set.epoch != epoch || set.target != count {
                    set.failure = None;
                }
                set.epoch = epoch;
                set.target = count;
                while set.allocated() > count && !set.ready.is_empty() {
                    // Ones waiting for replacement first, then the least recently used.
                    let i = set.ready.iter().position(|e| !set.current(e)).unwrap_or(0);
                    killed.push(set.ready.remove(i));
                }
                killed
            }
        };
        for env in killed {
            env.kill();
        }
        self.top_up(&key);
    }

    /// Releases every provisioned set of `function` that is not in `keep`.
    pub fn unprovision_except(&self, function: &str, keep: &[ProvisionKey]) {
        let killed: Vec<Arc<Environment>> = {
            let mut st = self.lock();
            let gone: Vec<Arc<ProvisionKey>> =
                st.provisioned.keys().filter(|k| k.function == function && !keep.contains(k)).cloned().collect();
            gone.iter().flat_map(|k| st.provisioned.remove(k).map(|s| s.ready).unwrap_or_default()).collect()
        };
        for env in killed {
            env.kill();
        }
    }

    /// Starts environments until the set has its target (unless its init failed).
    fn top_up(self: &Arc<Self>, key: &Arc<ProvisionKey>) {
        let (spec, missing, generation, set_id) = {
            let mut st = self.lock();
            let generation = st.generations.get(&key.function).copied().unwrap_or(0);
            let Some(set) = st.provisioned.get_mut(key) else { return };
            if set.failure.is_some() {
                return;
            }
            let missing = set.target.saturating_sub(set.current_allocated() + set.starting);
            set.starting += missing;
            (set.spec.clone(), missing, generation, set.id)
        };
        for _ in 0..missing {
            let pool = self.clone();
            let key = key.clone();
            let spec = spec.clone();
            tokio::spawn(async move {
                let prestarted = {
                    let mut st = pool.lock();
                    pool.take_prestarted(&mut st, &spec)
                };
                let started = match pool.new_environment(&spec, generation, prestarted, Some(key.clone())).await {
                    Ok(Ok(env)) => env.initialize().await.map(|took| (env, took)),
                    Ok(Err(reply)) => Err(crate::runtime_api::init_failure(&reply)),
                    Err(e) => Err(e.to_string()),
                };
                let (surplus, again, retired) = {
                    let mut st = pool.lock();
                    let Some(set) = st.provisioned.get_mut(&key).filter(|s| s.id == set_id) else {
                        // Released (or replaced by a new set) while this one started.
                        drop(st);
                        if let Ok((env, _)) = started {
                            env.kill();
                        }
                        return;
                    };
                    set.starting = set.starting.saturating_sub(1);
                    match started {
                        Ok((env, took)) if set.current(&env) && set.current_allocated() < set.target => {
                            tracing::debug!(function = %key.function, qualifier = %key.qualifier, "provisioned an environment in {took:?}");
                            pool.freezer.idle(&env);
                            set.ready.push(env);
                            // It may replace one started with credentials since renewed.
                            (None, false, set.retire_surplus())
                        }
                        // Started for a configuration (or credentials) that changed
                        // meanwhile: the set may still be short of current environments.
                        Ok((env, _)) => {
                            let short = set.current_allocated() + set.starting < set.target;
                            (Some(env), short, Vec::new())
                        }
                        Err(why) => {
                            tracing::warn!(function = %key.function, qualifier = %key.qualifier, "provisioned concurrency: init failed: {why}");
                            set.failure = Some(why);
                            (None, false, Vec::new())
                        }
                    }
                };
                for env in surplus.into_iter().chain(retired) {
                    env.kill();
                }
                if again {
                    pool.top_up(&key);
                }
            });
        }
    }

    /// An initialized idle environment provisioned for `qualifier` running `spec`'s
    /// version, taken for an invocation (thawed).
    pub fn take_provisioned(self: &Arc<Self>, qualifier: &str, spec: &Arc<EnvSpec>) -> Option<Arc<Environment>> {
        let key = ProvisionKey { function: spec.function_name.clone(), qualifier: qualifier.to_string(), version: spec.version.clone() };
        let (taken, replace) = {
            let mut st = self.lock();
            let set = st.provisioned.get_mut(&key)?;
            // Dead or outdated ones go (dropped: killed), and are replaced below.
            let before = set.ready.len();
            set.ready.retain(|env| env.is_alive() && env.spec.revision == spec.revision);
            let replace = set.ready.len() != before;
            // The most recently used current one, else one waiting for its replacement.
            let i = set.ready.iter().rposition(|e| set.current(e)).or(set.ready.len().checked_sub(1));
            let taken = i.map(|i| set.ready.remove(i));
            if let Some(env) = &taken {
                set.busy.push(env.clone());
                st.busy += 1;
            }
            (taken, replace)
        };
        if replace {
            self.top_up(&Arc::new(key));
        }
        let env = taken?;
        // One that cannot be thawed is killed: its invocation fails at once, and its
        // release replaces it.
        let _thawed = env.take_for_invocation();
        Some(env)
    }

    /// Returns a provisioned environment after an invocation: back to its set while it is
    /// alive and wanted; a dead one is replaced.
    pub(super) fn release_provisioned(self: &Arc<Self>, env: Arc<Environment>) {
        let key = env.provisioned.clone().expect("a provisioned environment");
        let (keep, replace, retired) = {
            let mut st = self.lock();
            st.busy -= 1;
            match st.provisioned.get_mut(&key) {
                None => (false, false, Vec::new()),
                Some(set) => {
                    set.busy.retain(|e| !Arc::ptr_eq(e, &env));
                    let alive = env.is_alive() && set.spec.revision == env.spec.revision;
                    // One waiting for its replacement stays only while the set would be
                    // short without it.
                    let wanted = if set.current(&env) { set.current_allocated() < set.target } else { set.allocated() < set.target };
                    if alive && wanted {
                        *env.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                        self.freezer.idle(&env);
                        set.ready.push(env.clone());
                        (true, false, set.retire_surplus())
                    } else {
                        (false, !alive, Vec::new())
                    }
                }
            }
        };
        if !keep {
            env.kill();
        }
        for env in retired {
            env.kill();
        }
        if replace {
            self.top_up(&key);
        }
    }

    /// Drops provisioned environments that died while idle and starts their replacements.
    pub(super) fn maintain_provisioned(self: &Arc<Self>) {
        let (dead, short): (Vec<Arc<Environment>>, Vec<Arc<ProvisionKey>>) = {
            let mut st = self.lock();
            let mut dead = Vec::new();
            let mut short = Vec::new();
            for (key, set) in st.provisioned.iter_mut() {
                let before = set.ready.len();
                set.ready.retain(|e| {
                    let alive = e.is_alive();
                    if !alive {
                        dead.push(e.clone());
                    }
                    alive
                });
                if set.ready.len() != before || (set.failure.is_none() && set.current_allocated() + set.starting < set.target) {
                    short.push(key.clone());
                }
            }
            (dead, short)
        };
        for env in dead {
            env.kill();
        }
        for key in short {
            self.top_up(&key);
        }
    }

    /// The allocation of one config (`qualifier` of `function`), over all its versions.
    pub fn provisioned_counts(&self, function: &str, qualifier: &str) -> ProvisionedCounts {
        let st = self.lock();
        let mut c = ProvisionedCounts::default();
        for (_, set) in st.provisioned.iter().filter(|(k, _)| k.function == function && k.qualifier == qualifier) {
            c.requested += set.target;
            c.allocated += set.allocated().min(set.target);
            c.idle += set.ready.len();
            if c.failure.is_none() {
                c.failure = set.failure.clone();
            }
        }
        c
    }

    /// The functions whose provisioned environments' credentials expire by `before`: their
    /// sets want a renewed spec ([`EnvironmentPool::provision`] with it recycles them).
    pub fn provisioned_expiring(&self, before: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let st = self.lock();
        let mut names: Vec<String> = st
            .provisioned
            .iter()
            .filter(|(_, set)| set.spec.credentials_expire.is_some_and(|e| e <= before))
            .map(|(key, _)| key.function.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Provisioned environments in all: (initialized, starting).
    pub fn provisioned_totals(&self) -> (usize, usize) {
        let st: std::sync::MutexGuard<'_, PoolState> = self.lock();
        st.provisioned.values().fold((0, 0), |(a, s), set| (a + set.allocated(), s + set.starting))
    }
}
