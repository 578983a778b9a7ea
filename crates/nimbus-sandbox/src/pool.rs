//! Warm environments kept for reuse: one idle list per function version, most recently
//! used first (the warmest caches), environments of an older configuration never reused,
//! and idle ones reaped after the idle timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_logs::LogStore;

use crate::environment::{EnvSpec, Environment};
use crate::runtimes::RuntimeRegistry;
use crate::{Reply, SandboxError};

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How long an idle environment is kept warm.
    pub idle_timeout: Duration,
}

type Key = (String, String);

#[derive(Default)]
struct PoolState {
    idle: HashMap<Key, Vec<Arc<Environment>>>,
    /// Bumped when a function changes; environments from an older generation are dropped.
    generations: HashMap<String, u64>,
    busy: usize,
}

pub struct EnvironmentPool {
    state: Mutex<PoolState>,
    config: PoolConfig,
    registry: Arc<RuntimeRegistry>,
    logs: Arc<LogStore>,
}

impl EnvironmentPool {
    pub fn new(config: PoolConfig, registry: Arc<RuntimeRegistry>, logs: Arc<LogStore>) -> Arc<EnvironmentPool> {
        let pool = Arc::new(EnvironmentPool { state: Mutex::new(PoolState::default()), config, registry, logs });
        let weak = Arc::downgrade(&pool);
        let period = (pool.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.reap_idle();
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

    /// A warm environment for `spec` if one is idle, else a newly started one. The bool is
    /// true for a new (cold) environment.
    pub async fn acquire(&self, spec: &Arc<EnvSpec>) -> Result<Result<(Arc<Environment>, bool), Reply>, SandboxError> {
        let key = (spec.function_name.clone(), spec.version.clone());
        let generation = {
            let mut st = self.lock();
            let generation = st.generations.get(&spec.function_name).copied().unwrap_or(0);
            if let Some(list) = st.idle.get_mut(&key) {
                while let Some(env) = list.pop() {
                    if env.is_alive() && env.generation == generation && env.spec.revision == spec.revision {
                        st.busy += 1;
                        return Ok(Ok((env, false)));
                    }
                }
            }
            st.busy += 1;
            generation
        };
        match Environment::start(spec.clone(), &self.registry, &self.logs, generation).await {
            Ok(Ok(env)) => Ok(Ok((env, true))),
            other => {
                self.lock().busy -= 1;
                other.map(|r| r.map(|env| (env, true)))
            }
        }
    }

    /// Returns an environment after an invocation; dead or outdated ones are dropped.
    pub fn release(&self, env: Arc<Environment>) {
        let mut st = self.lock();
        st.busy -= 1;
        let generation = st.generations.get(&env.spec.function_name).copied().unwrap_or(0);
        if !env.is_alive() || env.generation != generation {
            return;
        }
        *env.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let key = (env.spec.function_name.clone(), env.spec.version.clone());
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
    }

    /// Kills every idle environment (server shutdown).
    pub fn shutdown(&self) {
        let all: Vec<Arc<Environment>> = self.lock().idle.drain().flat_map(|(_, l)| l).collect();
        for env in all {
            env.kill();
        }
    }

    /// (idle, busy) environment counts.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.idle.values().map(Vec::len).sum(), st.busy)
    }
}
