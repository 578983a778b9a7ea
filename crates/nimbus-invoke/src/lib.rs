//! The invoke path: from an [`InvokeRequest`] to an [`InvokeOutcome`]. Resolves the
//! function from the control plane's in-memory view, takes a warm environment (or starts
//! one), runs the event, and writes the CloudWatch-style START/END/REPORT lines. Triggers
//! and the HTTP edge all call the same [`Invoker`].

mod async_invoke;
mod concurrency;
mod platform_log;
mod provisioning;
mod shares;
mod trace;

pub use async_invoke::{AsyncConfig, AsyncInvoker, MessageSink};
pub use concurrency::ConcurrencyLimiter;
pub use nimbus_sandbox::{StreamEvent, StreamSink};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use nimbus_control::{ControlPlane, ResolvedFunction};
use nimbus_identity::{AccessKey, Principal};
use nimbus_model::{ApiError, FunctionErrorPayload, InvokeOutcome, InvokeRequest, Qualifier};
use nimbus_sandbox::{Acquired, EnvSpec, EnvironmentPool, Invocation, ProvisionKey, Reply};
use platform_log::{PlatformLog, Status};

/// Whether a function's KMS key can decrypt its environment variables now: Lambda's
/// `KMSDisabledException`, `KMSInvalidStateException` or `KMSNotFoundException` if not.
pub trait EnvironmentKeys: Send + Sync {
    fn check(&self, key_arn: &str) -> Result<(), ApiError>;
}

/// Issues the execution role's session keys that environments get. The binary's issuer is
/// `nimbus-iam`, which records each key (sealed) before it authenticates, so credentials a
/// function was given outlive a restart of the server until they expire.
#[async_trait::async_trait]
pub trait CredentialIssuer: Send + Sync {
    async fn issue(&self, principal: Principal, expires: chrono::DateTime<chrono::Utc>) -> Result<AccessKey, String>;
}

/// Turns a function's VpcConfig into its environments' network: the blocks of its subnets
/// and VPC, and its security groups' rules (the binary reads them from `nimbus-network`).
/// `Ok(None)`: this server cannot enforce VPC networks, and runs the function as any other.
pub trait NetworkPlans: Send + Sync {
    fn plan(&self, vpc: &nimbus_model::VpcConfig) -> Result<Option<nimbus_sandbox::network::VpcPlan>, ApiError>;
}

/// New environments each function may add every 10 seconds unless configured: ten times
/// AWS's concurrency scaling rate (1,000 every 10 seconds), since a host here makes them in
/// milliseconds; still a bound on how fast one function can take the host.
pub const DEFAULT_SCALE_UP_PER_10S: u32 = 10_000;

pub struct Invoker {
    control: Arc<ControlPlane>,
    pool: Arc<EnvironmentPool>,
    /// Environment specs by function name and version, rebuilt when the version's code or
    /// configuration changes.
    specs: RwLock<HashMap<String, HashMap<String, Arc<EnvSpec>>>>,
    limiter: Arc<ConcurrencyLimiter>,
    /// How fast each function may add environments (AWS's concurrency scaling rate).
    scale: concurrency::ScaleLimiter,
    /// Serializes re-provisioning, so the last change to a function's configs wins.
    provisioning: tokio::sync::Mutex<()>,
    /// Issues the execution role's credentials each environment gets (None: authentication
    /// is off, and environments get none).
    credentials: RwLock<Option<Arc<Credentials>>>,
    /// Held while a spec's credentials are issued, so a burst of first invocations issues
    /// one session, not one each.
    issuing: tokio::sync::Mutex<()>,
    env_keys: RwLock<Option<Arc<dyn EnvironmentKeys>>>,
    networks: RwLock<Option<Arc<dyn NetworkPlans>>>,
    /// Where invocations are counted (set once, by [`Invoker::count_into`]).
    metrics: std::sync::OnceLock<Arc<nimbus_metrics::Metrics>>,
    /// The account's CloudWatch metrics, where AWS/Lambda's are recorded (set once, by
    /// [`Invoker::record_into`]).
    cloudwatch: std::sync::OnceLock<Arc<nimbus_metrics::cloudwatch::MetricStore>>,
    /// Where each invocation's trace goes (set once, by [`Invoker::trace_into`]).
    traces: trace::Sink,
    /// With several nodes on one store: the store they share (shares of the concurrency
    /// limits, the live nodes, provisioned environments' placement).
    shared_store: std::sync::OnceLock<Arc<dyn nimbus_store::Store>>,
    /// This node's shares of the concurrency limits, leased from `shared_store`.
    shares: shares::Shares,
    /// Where this node stands among the live nodes (its provisioned shares follow it), once
    /// learned from the store.
    placement: RwLock<Option<provisioning::Placement>>,
    /// Each config's provisioned environments summed over the cluster, as last read.
    everywhere: RwLock<HashMap<(String, String), nimbus_sandbox::ProvisionedCounts>>,
}

/// How long the role credentials handed to environments are valid by default.
pub const CREDENTIALS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// At most this long before their credentials expire, environments are renewed: specs are
/// rebuilt with fresh credentials (new environments start with those, warm ones with the old
/// ones are not reused) and provisioned environments are replaced. It is longer than any
/// function's timeout (15 minutes), so no invocation outlives its credentials.
const CREDENTIALS_RENEW: std::time::Duration = std::time::Duration::from_secs(3600);

/// The credentials environments get: who issues them and for how long.
struct Credentials {
    issuer: Arc<dyn CredentialIssuer>,
    lifetime: chrono::Duration,
    /// How long before they expire they are renewed: an hour, or a quarter of a shorter
    /// lifetime.
    renew: chrono::Duration,
}

/// How far below its memory limit an environment's (possibly slightly stale) peak must be
/// for a successful invocation to skip the OOM check.
const OOM_MARGIN_MB: u64 = 32;

/// How often a node gives back the shares of concurrency limits it does not use.
const SHARE_RETURN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// AWS's `Function.ResponseSizeTooLarge` message.
const RESPONSE_TOO_LARGE: &str =
    "{\"errorMessage\":\"Response payload size exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"Function.ResponseSizeTooLarge\"}";

impl Invoker {
    /// Why `runtime` cannot run on this server (no interpreter), or None when it can.
    pub fn runtime_unavailable(&self, runtime: nimbus_model::Runtime) -> Option<String> {
        self.pool.registry().get(runtime).interpreter.as_ref().err().cloned()
    }

    /// Sets how many new environments each function may add every 10 seconds (AWS's
    /// concurrency scaling rate, 1,000; see [`DEFAULT_SCALE_UP_PER_10S`]).
    pub fn set_scale_up_rate(&self, per_10s: u32) {
        self.scale.set_rate(per_10s);
    }

    /// Runs invocations only within the shares of the concurrency limits this node leases
    /// from `store`, which other nodes share: a node asks for more when its share is used
    /// up (a database round trip, a few slots at a time) and gives back what it does not
    /// use every second, so the limits hold across the cluster while most invocations
    /// never wait for the database.
    pub fn share_concurrency(self: &Arc<Self>, store: Arc<dyn nimbus_store::Store>) {
        if self.shared_store.set(store.clone()).is_err() || !self.shares.lease_from(Arc::new(store)) {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SHARE_RETURN_EVERY);
            let mut cut_off = false;
            loop {
                tick.tick().await;
                let Some(invoker) = me.upgrade() else { return };
                invoker.shares.give_back(invoker.nodes(), &mut cut_off).await;
            }
        });
    }

    /// How many live nodes this node last saw, once it has learned it (see
    /// [`shares::Shares::acquire`]).
    fn nodes(&self) -> Option<usize> {
        self.placement.read().unwrap_or_else(|p| p.into_inner()).map(|p| p.nodes)
    }

    /// A slot for `name` within its limits (and, with several nodes, within this node's
    /// share of them, leasing more when it is used up).
    async fn acquire_slot(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<concurrency::Permit, ApiError> {
        let limits = self.control.on_demand_limits(name);
        self.shares.acquire(name, limits.reserved, limits.unreserved, || self.nodes()).await.map_err(|e| self.throttled(name, qualifier, e))
    }

    pub fn new(control: Arc<ControlPlane>, pool: Arc<EnvironmentPool>) -> Arc<Invoker> {
        let limiter = Arc::new(ConcurrencyLimiter::default());
        let invoker = Arc::new(Invoker {
            control: control.clone(),
            pool: pool.clone(),
            specs: RwLock::new(HashMap::new()),
            limiter: limiter.clone(),
            scale: concurrency::ScaleLimiter::new(DEFAULT_SCALE_UP_PER_10S),
            provisioning: tokio::sync::Mutex::new(()),
            credentials: RwLock::new(None),
            issuing: tokio::sync::Mutex::new(()),
            env_keys: RwLock::new(None),
            networks: RwLock::new(None),
            metrics: std::sync::OnceLock::new(),
            cloudwatch: std::sync::OnceLock::new(),
            traces: trace::Sink::new(),
            shared_store: std::sync::OnceLock::new(),
            shares: shares::Shares::new(limiter.clone()),
            placement: RwLock::default(),
            everywhere: RwLock::default(),
        });
        let weak = Arc::downgrade(&invoker);
        control.on_change(move |name| {
            pool.retire(name);
            if let Some(inv) = weak.upgrade() {
                inv.specs.write().unwrap_or_else(|p| p.into_inner()).remove(name);
            }
        });
        let weak = Arc::downgrade(&invoker);
        let versions_pool = invoker.pool.clone();
        control.on_version_gone(move |name, version| {
            versions_pool.retire_version(name, version);
            if let Some(inv) = weak.upgrade() {
                if let Some(versions) = inv.specs.write().unwrap_or_else(|p| p.into_inner()).get_mut(name) {
                    versions.remove(version);
                }
            }
        });
        let weak = Arc::downgrade(&invoker);
        control.on_provisioning_change(move |name| {
            if let Some(inv) = weak.upgrade() {
                let name = name.to_string();
                tokio::spawn(async move { inv.reprovision(&name).await });
            }
        });
        invoker
    }

    /// Provisions every function that has provisioned concurrency configs (at start).
    pub fn provision_all(self: &Arc<Self>) {
        for name in self.control.provisioned_functions() {
            let inv = self.clone();
            tokio::spawn(async move { inv.reprovision(&name).await });
        }
    }

    /// Makes the pool keep exactly the environments `name`'s configs ask for now: after a
    /// config, an alias or a version changed, or the function was deleted.
    pub async fn reprovision(&self, name: &str) {
        let _one_at_a_time = self.provisioning.lock().await;
        let mut keep = Vec::new();
        for t in self.control.provision_targets(name).await {
            let function = match self.control.resolve_version(name, &t.version).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(function = name, version = %t.version, "cannot provision: {}", e.message);
                    continue;
                }
            };
            let spec = match self.spec_for(&function).await {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(function = name, version = %t.version, "cannot provision: {}", e.message);
                    continue;
                }
            };
            // With several nodes, this node's share of them.
            let count = self.provision_share(t.count, &format!("{name}/{}/{}", t.qualifier, t.version));
            let key = ProvisionKey { function: name.to_string(), qualifier: t.qualifier, version: t.version };
            self.pool.provision(key.clone(), spec, count as usize, t.epoch);
            keep.push(key);
        }
        self.pool.unprovision_except(name, &keep);
    }

    /// Environments from now on get credentials for their function's execution role,
    /// issued by `issuer`, valid for `lifetime` ([`CREDENTIALS_LIFETIME`] in service; tests
    /// shorten it). Provisioned environments are replaced before theirs expire.
    pub fn hand_out_credentials(self: &Arc<Self>, issuer: Arc<dyn CredentialIssuer>, lifetime: std::time::Duration) {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(12));
        let renew = chrono::Duration::from_std(CREDENTIALS_RENEW).expect("an hour").min(lifetime / 4);
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Credentials { issuer, lifetime, renew }));
        let period =
            (renew / 4).to_std().unwrap_or_default().clamp(std::time::Duration::from_millis(250), std::time::Duration::from_secs(60));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(invoker) = weak.upgrade() else { return };
                invoker.renew_provisioned(renew).await;
            }
        });
    }

    /// Provisions again the functions whose provisioned environments' credentials expire
    /// within `renew`: their specs are rebuilt with fresh credentials, and the pool replaces
    /// the environments (each old one serves until its replacement is initialized, and an
    /// invocation running on it runs to its end).
    async fn renew_provisioned(&self, renew: chrono::Duration) {
        for name in self.pool.provisioned_expiring(chrono::Utc::now() + renew) {
            tracing::info!(function = %name, "renewing the credentials of provisioned environments");
            self.reprovision(&name).await;
        }
    }

    /// Functions with a `KMSKeyArn` are checked against `keys` before they run.
    pub fn check_environment_keys(&self, keys: Arc<dyn EnvironmentKeys>) {
        *self.env_keys.write().unwrap_or_else(|p| p.into_inner()) = Some(keys);
    }

    /// Functions with a VpcConfig get their environments' network from `plans`.
    pub fn plan_networks(&self, plans: Arc<dyn NetworkPlans>) {
        *self.networks.write().unwrap_or_else(|p| p.into_inner()) = Some(plans);
    }

    /// A security group's rules changed (or it went away): environments of functions in it
    /// are retired, so the next ones start with the new rules (busy ones finish first).
    pub fn network_changed(&self, group: &str) {
        let names: Vec<String> = {
            let specs = self.specs.read().unwrap_or_else(|p| p.into_inner());
            specs
                .iter()
                .filter(|(_, versions)| {
                    versions.values().any(|s| s.network.as_ref().is_some_and(|n| n.security_groups.iter().any(|g| g == group)))
                })
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in names {
            self.specs.write().unwrap_or_else(|p| p.into_inner()).remove(&name);
            self.pool.retire(&name);
        }
    }

    pub fn pool(&self) -> &Arc<EnvironmentPool> {
        &self.pool
    }

    /// Waits until the lines of the invocations that have ended would survive this server
    /// being killed (`LogStore::kept`): called before acknowledging work a function did.
    pub async fn logs_kept(&self) {
        self.pool.logs().kept().await
    }

    /// Invocations running now, account-wide.
    pub fn in_flight(&self) -> u32 {
        self.limiter.in_flight()
    }

    /// Invocations of `function` running now.
    pub fn in_flight_of(&self, function: &str) -> u32 {
        self.limiter.in_flight_of(function)
    }

    /// Counts this account's invocations and throttles into `metrics`, which also reads its
    /// environments and invocations in flight when scraped.
    pub fn count_into(self: &Arc<Self>, metrics: Arc<nimbus_metrics::Metrics>) {
        let weak = Arc::downgrade(self);
        metrics.watch_account(&self.control.partition().account_id, move || {
            let Some(inv) = weak.upgrade() else { return nimbus_metrics::AccountGauges::default() };
            let (idle, busy) = inv.pool.counts();
            let (provisioned, _) = inv.pool.provisioned_totals();
            nimbus_metrics::AccountGauges {
                idle: idle as u64,
                busy: busy as u64,
                provisioned: provisioned as u64,
                in_flight: u64::from(inv.in_flight()),
            }
        });
        let _ = self.metrics.set(metrics);
    }

    /// Records AWS/Lambda's metrics (Invocations, Errors, Throttles, Duration,
    /// ConcurrentExecutions) into the account's CloudWatch store, as Lambda publishes them.
    pub fn record_into(&self, store: Arc<nimbus_metrics::cloudwatch::MetricStore>) {
        let _ = self.cloudwatch.set(store);
    }

    /// Hands every invocation's trace (ids and phases) to `sink` from now on.
    pub fn trace_into(&self, sink: Arc<dyn nimbus_model::trace::TraceSink>) {
        let _ = self.traces.set(sink);
    }

    /// AWS/Lambda datapoints `(metric, unit, value)` of one moment, for the account (no
    /// dimension), for the function (unless `at.function` is empty: the account's only), and
    /// as AWS adds them for a qualified invocation: by `Resource` (`name:qualifier`) and,
    /// through an alias, by the version that ran (`ExecutedVersion`). One lock on the store.
    pub(crate) fn lambda_metrics(&self, at: &MetricDims<'_>, points: &[(&str, &str, f64)]) {
        use nimbus_metrics::cloudwatch::{Aggregate, SeriesRef};
        let Some(store) = self.cloudwatch.get() else { return };
        let now = chrono::Utc::now().timestamp_millis();
        // The dimension sets, each sorted by name (ExecutedVersion < FunctionName < Resource)
        // as the store keeps them: the series are found without making their strings.
        let resource = at.qualifier.map(|q| format!("{}:{q}", at.function)).unwrap_or_default();
        let function = ("FunctionName", at.function);
        let resource = ("Resource", resource.as_str());
        let all: [&[(&str, &str)]; 4] =
            [&[], &[function], &[function, resource], &[("ExecutedVersion", at.executed_version.unwrap_or_default()), function, resource]];
        let sets = match (at.function.is_empty(), at.qualifier, at.executed_version) {
            (true, ..) => &all[..1],
            (false, None, _) => &all[..2],
            (false, Some(_), None) => &all[..3],
            (false, Some(_), Some(_)) => &all[..],
        };
        store.record_borrowed(points.iter().flat_map(|(metric, unit, value)| {
            sets.iter().map(move |dims| {
                (SeriesRef { namespace: "AWS/Lambda", name: metric, dimensions: dims }, *unit, now, Aggregate::of(*value, 1.0))
            })
        }));
    }

    /// Lambda's IteratorAge for a stream mapping's read: how old (ms) the newest record of
    /// the batch was when it was read.
    pub fn record_iterator_age(&self, function: &str, qualifier: Option<&str>, age_ms: f64) {
        let at = MetricDims { function, qualifier, executed_version: None };
        self.lambda_metrics(&at, &[("IteratorAge", "Milliseconds", age_ms)]);
    }

    /// A concurrency refusal, counted as Lambda's Throttles.
    fn throttled(&self, name: &str, qualifier: Option<&Qualifier>, e: ApiError) -> ApiError {
        if let Some(m) = self.metrics.get() {
            m.throttled(&self.control.partition().account_id, name);
        }
        let at = MetricDims { function: name, qualifier: qualifier.map(Qualifier::as_str), executed_version: None };
        self.lambda_metrics(&at, &[("Throttles", "Count", 1.0)]);
        e
    }

    /// The error for an environment the server could not make: throttling when the host ran
    /// out of descriptors, processes or memory (a burst past its capacity; asynchronous
    /// events are retried then, as throttled ones), else a service error.
    fn cannot_start(&self, name: &str, qualifier: Option<&Qualifier>, e: nimbus_sandbox::SandboxError) -> ApiError {
        if e.is_exhaustion() {
            tracing::warn!(function = name, "cannot start an environment, throttling the invocation: {e}");
            return self.throttled(name, qualifier, ApiError::throttled("ConcurrentInvocationLimitExceeded"));
        }
        ApiError::service(e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    fn count(
        &self,
        name: &str,
        qualifier: Option<&Qualifier>,
        version: &str,
        provisioned: bool,
        error: bool,
        duration: std::time::Duration,
        init: Option<std::time::Duration>,
    ) {
        if let Some(m) = self.metrics.get() {
            let account = &self.control.partition().account_id;
            m.invoked(&nimbus_metrics::Invocation { account, function: name, version, error, duration, init });
        }
        let via_alias = matches!(qualifier, Some(Qualifier::Named(q)) if q.parse::<u64>().is_err());
        let at = MetricDims { function: name, qualifier: qualifier.map(Qualifier::as_str), executed_version: via_alias.then_some(version) };
        self.lambda_metrics(
            &at,
            &[
                ("Invocations", "Count", 1.0),
                ("Errors", "Count", if error { 1.0 } else { 0.0 }),
                ("Duration", "Milliseconds", duration.as_secs_f64() * 1000.0),
                ("ConcurrentExecutions", "Count", f64::from(self.in_flight())),
            ],
        );
        // Concurrency as AWS reports it: the account's unreserved share, and a provisioned
        // qualifier's use of its environments (or the invocations that spilled over).
        let (unreserved, on_provisioned) = self.limiter.unreserved_and_provisioned(name);
        let account = MetricDims { function: "", qualifier: None, executed_version: None };
        self.lambda_metrics(&account, &[("UnreservedConcurrentExecutions", "Count", f64::from(unreserved))]);
        let requested = qualifier.and_then(|q| self.control.provisioned_requested(name, q.as_str()));
        if provisioned {
            let mut points = vec![
                ("ProvisionedConcurrencyInvocations", "Count", 1.0),
                ("ProvisionedConcurrentExecutions", "Count", f64::from(on_provisioned.max(1))),
            ];
            if let Some(r) = requested.filter(|r| *r > 0) {
                points.push(("ProvisionedConcurrencyUtilization", "None", f64::from(on_provisioned.max(1)) / f64::from(r)));
            }
            self.lambda_metrics(&at, &points);
        } else if requested.is_some() {
            self.lambda_metrics(&at, &[("ProvisionedConcurrencySpilloverInvocations", "Count", 1.0)]);
        }
        if let Some(init) = init {
            // Not AWS's: cold starts and their init time, by function only.
            let by_function = MetricDims { function: name, qualifier: None, executed_version: None };
            self.lambda_metrics(
                &by_function,
                &[("ColdStarts", "Count", 1.0), ("InitDuration", "Milliseconds", init.as_secs_f64() * 1000.0)],
            );
        }
    }

    /// The spec `f`'s environments start from, while its configuration and credentials are
    /// current.
    fn cached_spec(&self, f: &ResolvedFunction) -> Option<Arc<EnvSpec>> {
        let c = &f.config;
        let renew = self.credentials.read().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(chrono::Duration::zero(), |c| c.renew);
        let fresh_until = chrono::Utc::now() + renew;
        let specs = self.specs.read().unwrap_or_else(|p| p.into_inner());
        let s = specs.get(&c.name).and_then(|v| v.get(&c.version))?;
        (s.revision == fingerprint(f) && s.credentials_expire.is_none_or(|e| e > fresh_until)).then(|| s.clone())
    }

    async fn spec_for(&self, f: &ResolvedFunction) -> Result<Arc<EnvSpec>, ApiError> {
        if let Some(s) = self.cached_spec(f) {
            return Ok(s);
        }
        let _one_at_a_time = self.issuing.lock().await;
        if let Some(s) = self.cached_spec(f) {
            return Ok(s);
        }
        let c = &f.config;
        // A function in a VPC runs only with its network: an error here fails the invocation.
        let network = match (&c.vpc, self.networks.read().unwrap_or_else(|p| p.into_inner()).as_ref()) {
            (Some(vpc), Some(plans)) if vpc.attached() => plans.plan(vpc)?.map(Arc::new),
            _ => None,
        };
        // The role's credentials, as AWS sets them (the session is named after the function).
        let mut environment = c.environment.clone();
        let mut credentials_expire = None;
        let credentials = self.credentials.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(credentials) = credentials {
            let expires = chrono::Utc::now() + credentials.lifetime;
            let key = credentials
                .issuer
                .issue(Principal::assumed_role(&c.role, &c.name), expires)
                .await
                .map_err(|e| ApiError::service(format!("cannot issue the execution role's credentials: {e}")))?;
            environment.insert("AWS_ACCESS_KEY_ID".into(), key.id);
            environment.insert("AWS_SECRET_ACCESS_KEY".into(), key.secret);
            environment.insert("AWS_SESSION_TOKEN".into(), key.session_token.unwrap_or_default());
            credentials_expire = Some(expires);
        }
        let spec = Arc::new(EnvSpec {
            function_name: c.name.clone(),
            version: c.version.clone(),
            runtime: c.runtime,
            handler: c.handler.clone(),
            memory_mb: c.memory_mb,
            code_dir: f.code_dir.clone(),
            opt_dir: f.opt_dir.clone(),
            ephemeral_storage_mb: c.ephemeral_storage_mb,
            environment,
            credentials_expire,
            region: self.control.partition().region.clone(),
            log_group: c.log_group(),
            json_log_level: c.logging.application_filter(),
            revision: fingerprint(f),
            network,
            holds: f.trees.iter().map(|t| Arc::new(HeldTree(t.clone())) as Arc<dyn nimbus_sandbox::Held>).collect(),
        });
        // Kept only while `f` is current: a change (a delete, an update) may have come since
        // `f` was resolved, and its listener, which forgets specs, may already have run; a
        // spec kept after it would hold the old code's trees for good.
        let mut specs = self.specs.write().unwrap_or_else(|p| p.into_inner());
        if f.is_current() {
            specs.entry(c.name.clone()).or_default().insert(c.version.clone(), spec.clone());
        }
        Ok(spec)
    }

    /// [`Invoker::invoke`] on a task of its own, for callers whose future may be dropped (an
    /// HTTP client that disconnects): the invocation still runs to its end, as Lambda's
    /// does, and its environment and concurrency go back to the pool and the limiter.
    /// It runs in the caller's task while the caller waits (no task and no wake-up of
    /// another worker per invocation); only a caller that goes away hands the rest of it to
    /// a task of its own.
    pub async fn invoke_detached(self: &Arc<Self>, req: InvokeRequest) -> Result<InvokeOutcome, ApiError> {
        let me = self.clone();
        FinishOnDrop(Some(Box::pin(async move { me.invoke(req).await }))).await
    }

    pub async fn invoke(&self, req: InvokeRequest) -> Result<InvokeOutcome, ApiError> {
        self.invoke_into(req, None).await
    }

    /// [`Invoker::invoke_detached`] for a caller that reads the response as the function
    /// streams it: chunks go to `sink` as they come, and the outcome's payload is empty when
    /// they did (a function that does not stream answers in the payload, as usual).
    pub async fn invoke_streaming(self: &Arc<Self>, req: InvokeRequest, sink: StreamSink) -> Result<InvokeOutcome, ApiError> {
        let me = self.clone();
        tokio::spawn(async move { me.invoke_into(req, Some(sink)).await })
            .await
            .map_err(|e| ApiError::service(format!("invocation task failed: {e}")))?
    }

    async fn invoke_into(&self, mut req: InvokeRequest, stream: Option<StreamSink>) -> Result<InvokeOutcome, ApiError> {
        let ids = trace::TraceIds::for_request(&req.trace);
        let sink = self.traces.get().filter(|_| ids.sampled != Some(false));
        let mut timeline = trace::Timeline::start(sink.is_some(), req.trace.trigger);
        let request_id = req.request_id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
        // What the trace names, kept only when there is a trace.
        let names =
            sink.map(|_| (request_id.clone(), req.function.name.clone(), req.function.qualifier.as_ref().map(|q| q.as_str().to_string())));
        let result = self.run(req, stream, &ids, &mut timeline).await;
        if let (Some(sink), Some((request_id, function, qualifier))) = (sink, names) {
            if let Err(e) = &result {
                timeline.error = Some(e.code.name().to_string());
            }
            sink.record(timeline.finish(&ids, &function, qualifier, request_id, self.control.partition()));
        }
        result
    }

    async fn run(
        &self,
        req: InvokeRequest,
        stream: Option<StreamSink>,
        ids: &trace::TraceIds,
        timeline: &mut trace::Timeline,
    ) -> Result<InvokeOutcome, ApiError> {
        let name = &req.function.name;
        let partition = self.control.partition();
        let function = self.control.resolve(name, req.function.qualifier.as_ref()).await?;
        let executed_version = function.config.version.clone();
        timeline.version = Some(executed_version.clone());
        // A function whose KMS key cannot decrypt its variables does not run (AWS's
        // KMSDisabledException and kin), before any environment is taken or started.
        if let Some(arn) = &function.config.kms_key_arn {
            if let Some(keys) = self.env_keys.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
                keys.check(arn)?;
            }
        }
        // A function whose runtime cannot run here is Failed (its configuration says why).
        if let Some(why) = self.runtime_unavailable(function.config.runtime) {
            return Err(ApiError::new(
                nimbus_model::ErrorCode::InvalidRuntime,
                format!("The runtime {} is not available on this Nimbus server: {why}", function.config.runtime),
            ));
        }
        let spec = self.spec_for(&function).await?;
        // A provisioned environment of the invoked version or alias first; beyond those,
        // on-demand ones within the function's (or the account's) remaining concurrency.
        let mut provisioned = match &req.function.qualifier {
            Some(Qualifier::Named(q)) => self.pool.take_provisioned(q, &spec),
            _ => None,
        };
        let mut on_provisioned = provisioned.is_some();
        let mut _permit = match provisioned {
            Some(_) => self.limiter.provisioned(name),
            None => self.acquire_slot(name, req.function.qualifier.as_ref()).await?,
        };
        let request_id = req.request_id.clone().unwrap_or_default();
        let invoked_arn = match &req.function.qualifier {
            Some(q) => partition.qualified_arn(name, q.as_str()),
            None => partition.function_arn(name),
        };

        if let Some(sink) = &stream {
            let _ = sink.send(StreamEvent::Resolved { version: executed_version.clone() }).await;
        }
        if timeline.enabled {
            timeline.invoked_arn = Some(invoked_arn.clone());
        }
        let mut invocation = Invocation {
            request_id: request_id.clone(),
            payload: req.payload,
            invoked_arn,
            trace_id: ids.function_header(function.config.tracing_active),
            client_context: req.client_context,
            timeout: std::time::Duration::from_secs(u64::from(function.config.timeout_secs)),
            init_within_timeout: false,
            stream,
        };
        let platform = PlatformLog::new(&function.config.logging);
        let traced = function.config.tracing_active.then_some(invocation.trace_id.clone());
        let start_line = platform.start(&request_id, &spec.version, traced.as_deref());
        // A warm environment whose runtime died while idle (or is exiting after its last
        // error), or a prestarted one that died before it took the event (its sandbox was
        // built before the function was known), is replaced by a fresh one once, invisibly
        // to the caller.
        let mut attempts = 0;
        let (env, reply, timings) = loop {
            attempts += 1;
            if attempts > 1 && on_provisioned {
                // The provisioned environment died before it took the event; its
                // replacement is an on-demand one and counts as such.
                _permit = self.acquire_slot(name, req.function.qualifier.as_ref()).await?;
                on_provisioned = false;
            }
            let acquired = match provisioned.take() {
                Some(env) => Acquired::Ready { env, cold: false },
                None => self
                    .pool
                    .acquire_or_scale(&spec, || self.scale.try_add(name, std::time::Instant::now()).is_ok())
                    .await
                    .map_err(|e| self.cannot_start(name, req.function.qualifier.as_ref(), e))?,
            };
            timeline.ready = Some(std::time::Instant::now());
            let (env, cold) = match acquired {
                Acquired::Ready { env, cold } => (env, cold),
                Acquired::AtScaleLimit => {
                    return Err(self.throttled(
                        name,
                        req.function.qualifier.as_ref(),
                        ApiError::throttled("ConcurrentInvocationLimitExceeded"),
                    ))
                }
                Acquired::Refused(reply) => {
                    let (payload, error) = failure_payload(reply, &request_id, function.config.timeout_secs);
                    if timeline.enabled {
                        timeline.error = Some(trace::error_type(&payload));
                    }
                    self.count(
                        name,
                        req.function.qualifier.as_ref(),
                        &executed_version,
                        on_provisioned,
                        true,
                        std::time::Duration::ZERO,
                        None,
                    );
                    return Ok(InvokeOutcome {
                        request_id,
                        payload,
                        function_error: error,
                        log_tail: req.tail_log.then(String::new),
                        executed_version,
                    });
                }
            };
            let (reply, timings) = env.invoke(invocation.clone(), start_line.clone()).await;
            timeline.answered = Some(std::time::Instant::now());
            timeline.cold = cold;
            timeline.handler = timings.delivered.then_some(timings.duration);
            timeline.init = timings.init_duration;
            if (!cold || env.adopted) && !timings.delivered && matches!(reply, Reply::Exited(_)) && attempts == 1 {
                self.pool.release(env);
                continue;
            }
            // An init that ran past its 10 seconds: AWS logs it, resets the environment and
            // runs init again as part of the invocation, within the function's timeout.
            if let Reply::InitTimedOut(took) = reply {
                env.capture().service_line_opt(platform.init_report(took, "init", "timeout"));
                env.kill();
                self.pool.release(env);
                invocation.init_within_timeout = true;
                continue;
            }
            break (env, reply, timings);
        };
        // Over its memory limit the kernel killed something in the environment: AWS
        // reports Runtime.OutOfMemory and resets the environment.
        // (A successful answer with the peak well below the limit cannot have met the
        // OOM killer: the counter's read is spared.)
        let below_limit = timings.max_memory_mb + OOM_MARGIN_MB < u64::from(function.config.memory_mb);
        let out_of_memory = !(below_limit && matches!(reply, Reply::Response(_) | Reply::Streamed)) && env.out_of_memory();
        if out_of_memory || matches!(reply, Reply::InitError { .. } | Reply::Exited(_) | Reply::TimedOut | Reply::TruncatedResponse) {
            env.kill();
        }
        let reply = match reply {
            Reply::Exited(why) if out_of_memory => Reply::FunctionError {
                error_type: Some("Runtime.OutOfMemory".into()),
                body: FunctionErrorPayload::new("Runtime.OutOfMemory", &request_id, &why).to_bytes(),
            },
            other => other,
        };
        // A crashed or timed-out environment is dead and never goes back to the pool.
        let capture = env.capture();
        if !timings.delivered {
            // The runtime never took the event (it failed or died in init): AWS still logs
            // the invocation's START, after the init output (which stays in the tail).
            capture.service_line_opt(start_line);
        }
        let timed_out = matches!(reply, Reply::TimedOut);
        if timed_out && !timings.delivered {
            // The second init took the whole timeout.
            capture.service_line_opt(platform.init_report(timings.duration, "invoke", "timeout"));
        }
        match &reply {
            Reply::TimedOut => capture.service_line_opt(platform.timed_out(&request_id, function.config.timeout_secs)),
            Reply::Exited(why) => capture.service_line_opt(platform.exited(&request_id, why)),
            _ => {}
        }
        let status = status_of(&reply);
        let (payload, function_error) = match reply {
            Reply::Response(body) => (body, None),
            Reply::Streamed => (Bytes::new(), None),
            Reply::FunctionError { body, error_type } => {
                let body = if body.is_empty() {
                    FunctionErrorPayload::new(error_type.as_deref().unwrap_or("Unhandled"), &request_id, "").to_bytes()
                } else {
                    body
                };
                (body, Some("Unhandled".to_string()))
            }
            other => failure_payload(other, &request_id, function.config.timeout_secs),
        };
        if timeline.enabled && function_error.is_some() {
            timeline.error = Some(trace::error_type(&payload));
        }
        capture.service_line_opt(platform.runtime_done(&request_id, &timings, &status));
        capture.service_line_opt(platform.end(&request_id));
        capture.service_line_opt(platform.report(&request_id, &timings, function.config.memory_mb, &status, traced.as_deref()));
        let log_tail = req.tail_log.then(|| capture.tail());
        self.pool.release(env);
        self.count(
            name,
            req.function.qualifier.as_ref(),
            &executed_version,
            on_provisioned,
            function_error.is_some(),
            timings.duration,
            timings.init_duration,
        );
        Ok(InvokeOutcome { request_id, payload, function_error, log_tail, executed_version })
    }
}

/// An invocation run by whoever awaits it; dropped before it finished (its caller went
/// away), it finishes on a task of its own, as a Lambda invocation runs to its end. A panic
/// inside is answered as a service error, as a failed task's would be.
struct FinishOnDrop(Option<Running>);

/// An invocation under way, as [`FinishOnDrop`] holds it.
type Running = std::pin::Pin<Box<dyn std::future::Future<Output = Result<InvokeOutcome, ApiError>> + Send>>;

impl std::future::Future for FinishOnDrop {
    type Output = Result<InvokeOutcome, ApiError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let Some(fut) = self.0.as_mut() else {
            return std::task::Poll::Ready(Err(ApiError::service("invocation polled after it finished")));
        };
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)));
        match polled {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(out)) => {
                self.0 = None;
                std::task::Poll::Ready(out)
            }
            Err(_) => {
                self.0 = None;
                std::task::Poll::Ready(Err(ApiError::service("invocation task failed: it panicked")))
            }
        }
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let (Some(fut), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(fut);
        }
    }
}

/// Where an AWS/Lambda datapoint is counted besides the account: the function, the qualifier
/// it was invoked by, and the version an alias ran.
pub(crate) struct MetricDims<'a> {
    pub function: &'a str,
    pub qualifier: Option<&'a str>,
    pub executed_version: Option<&'a str>,
}

/// What warm environments are matched on: publishing or changing reserved concurrency bumps
/// the revision id but changes nothing an environment runs.
fn fingerprint(f: &ResolvedFunction) -> String {
    format!("{}:{}", f.config.code_digest, f.config.last_modified_ms)
}

/// The payload AWS returns when the service, not the function, reports the failure.
fn failure_payload(reply: Reply, request_id: &str, timeout_secs: u32) -> (Bytes, Option<String>) {
    let payload = match reply {
        Reply::Response(b) => return (b, None),
        Reply::Streamed => return (Bytes::new(), None),
        Reply::FunctionError { body, .. } | Reply::InitError { body, .. } if !body.is_empty() => body,
        Reply::FunctionError { error_type, .. } | Reply::InitError { error_type, .. } => {
            FunctionErrorPayload::new(error_type.as_deref().unwrap_or("Runtime.Unknown"), request_id, "unknown error").to_bytes()
        }
        Reply::ResponseTooLarge => Bytes::from_static(RESPONSE_TOO_LARGE.as_bytes()),
        Reply::TruncatedResponse => {
            FunctionErrorPayload::new("Runtime.TruncatedResponse", request_id, "Runtime.TruncatedResponse").to_bytes()
        }
        Reply::Exited(why) => FunctionErrorPayload::new("Runtime.ExitError", request_id, &why).to_bytes(),
        Reply::StartFailed { error_type, message } => FunctionErrorPayload::new(&error_type, request_id, &message).to_bytes(),
        // Only reached when the second init cannot be started; the invoker retries the first.
        Reply::TimedOut | Reply::InitTimedOut(_) => {
            FunctionErrorPayload::new("Sandbox.Timedout", request_id, &format!("Task timed out after {timeout_secs}.00 seconds")).to_bytes()
        }
    };
    (payload, Some("Unhandled".to_string()))
}

/// How an invocation ended, for its report.
fn status_of(reply: &Reply) -> Status {
    let error = |t: &Option<String>, default: &str| Status::Error(t.clone().unwrap_or_else(|| default.to_string()));
    match reply {
        Reply::Response(_) | Reply::Streamed => Status::Success,
        Reply::TimedOut | Reply::InitTimedOut(_) => Status::Timeout,
        Reply::FunctionError { error_type, .. } => error(error_type, "Unhandled"),
        Reply::InitError { error_type, .. } => error(error_type, "Runtime.Unknown"),
        Reply::ResponseTooLarge => Status::Error("Function.ResponseSizeTooLarge".into()),
        Reply::TruncatedResponse => Status::Error("Runtime.TruncatedResponse".into()),
        Reply::Exited(_) => Status::Error("Runtime.ExitError".into()),
        Reply::StartFailed { error_type, .. } => Status::Error(error_type.clone()),
    }
}

/// A code or layer tree an environment runs from, as the sandbox pool sees it.
#[derive(Debug)]
struct HeldTree(Arc<nimbus_store::code::Tree>);

impl nimbus_sandbox::Held for HeldTree {
    fn let_go(&self) -> bool {
        self.0.let_go()
    }
}
