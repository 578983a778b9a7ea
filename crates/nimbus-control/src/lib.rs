//! The control plane: creating, changing and deleting functions. It validates against the
//! stored state, writes through the [`Store`] and [`BlobStore`], unpacks code once, and
//! keeps the in-memory view the invoke path reads, so invoking never touches the database.

mod aliases;
mod code_signing;
mod code_writes;
mod elsewhere;
mod event_config;
mod layers;
mod permissions;
mod provisioned;
mod urls;

pub use aliases::AliasChange;
pub use code_signing::CodeSigningChange;
pub use event_config::{validate_destination, EventInvokeChange};
pub use layers::NewLayerVersion;
pub use provisioned::{OnDemandLimits, ProvisionTarget};
pub use urls::UrlChange;
mod versions;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use code_writes::{CodeWrites, Writing};
use nimbus_model::function::new_revision_id;
use nimbus_model::{now_millis, ApiError, ErrorCode, FunctionConfig, Partition, Runtime, LATEST};
use nimbus_store::code::{self, CodeError};
use nimbus_store::{BlobStore, CodeCache, OptCache, Store, StoreError};

/// A function as the invoke path needs it: its configuration, unpacked code, and the
/// merged tree of its layers (its `/opt`), if it has any.
#[derive(Debug)]
pub struct ResolvedFunction {
    pub config: FunctionConfig,
    pub code_dir: PathBuf,
    pub opt_dir: Option<PathBuf>,
    /// Handles on the trees those paths are in: while they live (in environments started
    /// from this function), the trees stay on disk, even after the function is deleted.
    pub trees: Vec<Arc<code::Tree>>,
    /// Whether the control plane's view holds this one (see [`ResolvedFunction::is_current`]).
    held: std::sync::atomic::AtomicBool,
}

impl ResolvedFunction {
    /// Whether this is the version the control plane serves now: false once a change
    /// replaced or removed it, and for one read on a miss that raced a change. What is
    /// derived from it may be kept (checked under the keeper's lock) only while it is true,
    /// since the change's listeners, which forget what was derived, have run or will run
    /// after it turned false.
    pub fn is_current(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Where unpacked code lives: functions' code, layers, and merged `/opt` trees.
pub struct CodeDirs {
    pub code: CodeCache,
    pub layers: CodeCache,
    pub opt: OptCache,
}

/// A validated CreateFunction request.
#[derive(Debug, Clone)]
pub struct NewFunction {
    pub name: String,
    pub runtime: Runtime,
    pub role: String,
    pub handler: String,
    pub description: String,
    pub timeout_secs: u32,
    pub memory_mb: u32,
    pub ephemeral_storage_mb: u32,
    pub environment: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    /// Layer version ARNs, in mount order.
    pub layers: Vec<String>,
    pub dead_letter_target: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// CodeSigningConfigArn's config id: it must exist; signatures are not verified.
    pub code_signing_config_id: Option<String>,
    /// KMSKeyArn: the KMS key that wraps the environment's data key.
    pub kms_key_arn: Option<String>,
    /// VpcConfig, checked against the network objects by the caller.
    pub vpc: Option<nimbus_model::VpcConfig>,
    /// TracingConfig `Mode: Active`.
    pub tracing_active: bool,
    /// LoggingConfig, checked.
    pub logging: nimbus_model::logging::LoggingConfig,
    pub zip: Vec<u8>,
}

/// A validated UpdateFunctionConfiguration request: only the given fields change.
#[derive(Debug, Clone, Default)]
pub struct ConfigChange {
    pub runtime: Option<Runtime>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout_secs: Option<u32>,
    pub memory_mb: Option<u32>,
    pub ephemeral_storage_mb: Option<u32>,
    pub environment: Option<BTreeMap<String, String>>,
    pub layers: Option<Vec<String>>,
    /// `Some("")` clears the dead-letter target.
    pub dead_letter_target: Option<String>,
    /// `Some("")` goes back to Nimbus's own key.
    pub kms_key_arn: Option<String>,
    /// A new VpcConfig (empty lists detach the function), checked by the caller.
    pub vpc: Option<nimbus_model::VpcConfig>,
    /// TracingConfig's mode: `Some(true)` for `Active`.
    pub tracing_active: Option<bool>,
    /// LoggingConfig's given fields, checked against the current configuration here.
    pub logging: Option<nimbus_model::logging::LoggingChange>,
    pub revision_id: Option<String>,
}

pub use nimbus_model::provisioned::MIN_UNRESERVED;

/// AWS's limit on a resource's tags.
pub const MAX_TAGS: usize = 50;

type ChangeListener = Box<dyn Fn(&str) + Send + Sync>;
/// Told a function's name and one of its versions.
type VersionListener = Box<dyn Fn(&str, &str) + Send + Sync>;

pub struct ControlPlane {
    /// The account's concurrency limit; reservations must leave
    /// [`MIN_UNRESERVED`] of it to everyone else.
    concurrency_limit: u32,
    /// Sum of all functions' reserved concurrency (loaded at start, kept on change).
    reserved_total: std::sync::atomic::AtomicU32,
    /// Reserved concurrency by function (only functions that have one).
    reserved: RwLock<HashMap<String, u32>>,
    /// Provisioned concurrency configs (loaded at start, kept on change).
    provisioned: RwLock<provisioned::Configs>,
    /// Provisioned concurrency of functions without a reservation: it leaves the
    /// unreserved pool.
    provisioned_unreserved: std::sync::atomic::AtomicU32,
    provisioning_listeners: RwLock<Vec<ChangeListener>>,
    /// Held across the check and the write of reserved and provisioned concurrency, so two
    /// concurrent Puts cannot both pass the limits they share.
    concurrency_writes: tokio::sync::Mutex<()>,
    /// Held across the check and the write of a code signing config's use, so a config is
    /// never deleted while a function is being attached to it.
    code_signing_writes: tokio::sync::Mutex<()>,
    /// Held by a code write from its blob's put to its record's write, and by a collector
    /// from its "no record refers to this digest" to the blob's delete: otherwise a delete
    /// of one function could remove the blob another function with the same zip had just
    /// stored (its put a no-op, the blob being there), leaving its record without code.
    code_writes: CodeWrites,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    code: CodeCache,
    layer_code: CodeCache,
    opt: OptCache,
    partition: Partition,
    view: view::View,
    /// Event-invoke configs as the async dispatcher reads them.
    event_configs: event_config::EventConfigs,
    listeners: RwLock<Vec<ChangeListener>>,
    /// Told when one version of a function is deleted.
    version_listeners: RwLock<Vec<VersionListener>>,
}

pub(crate) fn store_err(e: StoreError) -> ApiError {
    match e {
        // The function's KMSKeyArn could not wrap its data key.
        StoreError::Sealing(nimbus_store::sealing::SealError::Kms(why)) => ApiError::invalid(format!(
            "Lambda was unable to configure access to your environment variables because the KMS key is invalid for CreateGrant. Please check your KMS key settings. {why}"
        )),
        e => ApiError::service(format!("storage error: {e}")),
    }
}

pub(crate) fn code_err(e: CodeError) -> ApiError {
    match e {
        CodeError::Io(io) => ApiError::service(format!("storing code: {io}")),
        CodeError::TooLarge => {
            ApiError::invalid(format!("Unzipped size must be smaller than {} bytes", nimbus_model::validate::MAX_UNZIPPED_BYTES))
        }
        other => ApiError::invalid(other.to_string()),
    }
}

impl ControlPlane {
    /// Opens the control plane over a store; reads the reserved-concurrency total once.
    pub async fn open(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        dirs: CodeDirs,
        partition: Partition,
        concurrency_limit: u32,
    ) -> Result<ControlPlane, ApiError> {
        let mut reserved = 0u32;
        let mut reservations = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_functions(LATEST, after.as_deref(), 1000).await.map_err(store_err)?;
            reserved += page.iter().filter_map(|c| c.reserved_concurrency).sum::<u32>();
            reservations.extend(page.iter().filter_map(|c| Some((c.name.clone(), c.reserved_concurrency?))));
            match page.last() {
                Some(c) if page.len() == 1000 => after = Some(c.name.clone()),
                _ => break,
            }
        }
        let mut configs = provisioned::Configs::new();
        for c in store.list_provisioned_configs(None).await.map_err(store_err)? {
            configs.entry(c.function.clone()).or_default().insert(c.qualifier.clone(), c);
        }
        let control = ControlPlane {
            concurrency_limit,
            reserved_total: std::sync::atomic::AtomicU32::new(reserved),
            reserved: RwLock::new(reservations),
            provisioned: RwLock::new(configs),
            provisioned_unreserved: std::sync::atomic::AtomicU32::new(0),
            provisioning_listeners: RwLock::new(Vec::new()),
            concurrency_writes: tokio::sync::Mutex::new(()),
            code_signing_writes: tokio::sync::Mutex::new(()),
            code_writes: CodeWrites::default(),
            store,
            blobs,
            code: dirs.code,
            layer_code: dirs.layers,
            opt: dirs.opt,
            partition,
            view: view::View::default(),
            event_configs: event_config::EventConfigs::default(),
            listeners: RwLock::new(Vec::new()),
            version_listeners: RwLock::new(Vec::new()),
        };
        control.recount_provisioned();
        control.collect_unreferenced().await;
        Ok(control)
    }

    pub fn concurrency_limit(&self) -> u32 {
        self.concurrency_limit
    }

    /// Concurrency left to functions without a reservation: the account's limit minus
    /// reservations and the provisioned concurrency of functions without one.
    pub fn unreserved_concurrency(&self) -> u32 {
        use std::sync::atomic::Ordering;
        self.concurrency_limit
            .saturating_sub(self.reserved_total.load(Ordering::Relaxed))
            .saturating_sub(self.provisioned_unreserved.load(Ordering::Relaxed))
    }

    /// PutFunctionConcurrency / DeleteFunctionConcurrency. Keeps the revision id and warm
    /// environments: only how many may run at once changes.
    pub async fn set_reserved_concurrency(&self, name: &str, reserved: Option<u32>) -> Result<FunctionConfig, ApiError> {
        use std::sync::atomic::Ordering;
        let _writing = self.concurrency_writes.lock().await;
        let current = self.get(name).await?;
        let others = self.reserved_total.load(Ordering::Relaxed).saturating_sub(current.reserved_concurrency.unwrap_or(0));
        if let Some(r) = reserved {
            self.check_reservation_covers_provisioned(name, r)?;
            // Other functions' provisioned concurrency outside reservations stays claimed.
            let mine_unreserved = if current.reserved_concurrency.is_none() { self.provisioned_total(name) } else { 0 };
            let provisioned_elsewhere = self.provisioned_unreserved.load(Ordering::Relaxed).saturating_sub(mine_unreserved);
            if others + r + provisioned_elsewhere > self.concurrency_limit.saturating_sub(MIN_UNRESERVED.min(self.concurrency_limit)) {
                return Err(ApiError::invalid(format!(
                    "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
                )));
            }
        }
        let next = FunctionConfig { reserved_concurrency: reserved, ..current.clone() };
        self.store_property(name, &current, &next).await?;
        self.reserved_total.store(others + reserved.unwrap_or(0), Ordering::Relaxed);
        {
            let mut map = self.reserved.write().unwrap_or_else(|p| p.into_inner());
            match reserved {
                Some(r) => map.insert(name.to_string(), r),
                None => map.remove(name),
            };
        }
        self.recount_provisioned();
        self.view.put_version(self.materialize(next.clone()).await?);
        Ok(next)
    }

    /// Stores a change to a property of the function that keeps its revision (reserved
    /// concurrency, tags), if `$LATEST` is still `current`.
    pub(crate) async fn store_property(&self, name: &str, current: &FunctionConfig, next: &FunctionConfig) -> Result<(), ApiError> {
        match self.store.update_function(next, &current.revision_id).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(self.not_found(name)),
            Err(StoreError::RevisionMismatch) => Err(ApiError::conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {}",
                self.partition.function_arn(name)
            ))),
            Err(e) => Err(store_err(e)),
        }
    }

    /// PutFunctionRecursionConfig.
    pub async fn set_recursive_loop(&self, name: &str, value: &str) -> Result<FunctionConfig, ApiError> {
        let current = self.get(name).await?;
        let next = FunctionConfig { recursive_loop: Some(value.to_string()), ..current.clone() };
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next.clone()).await?);
        Ok(next)
    }

    /// PutRuntimeManagementConfig: kept on the record of the version named (`$LATEST`,
    /// a number, or the version an alias points at).
    pub async fn set_runtime_management(
        &self,
        name: &str,
        qualifier: Option<&nimbus_model::Qualifier>,
        value: nimbus_model::function::RuntimeManagement,
    ) -> Result<FunctionConfig, ApiError> {
        let current = self.get_qualified(name, qualifier).await?;
        let next = FunctionConfig { runtime_management: Some(value), ..current.clone() };
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next.clone()).await?);
        Ok(next)
    }

    /// Replaces a function's tags (TagResource and UntagResource compute the new set).
    pub async fn set_tags(&self, name: &str, change: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<FunctionConfig, ApiError> {
        let current = self.get(name).await?;
        let mut tags = current.tags.clone();
        change(&mut tags);
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid("Number of tags exceeds resource tag limit."));
        }
        let next = FunctionConfig { tags, ..current.clone() };
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next.clone()).await?);
        Ok(next)
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Calls `f(function_name)` after every change to a function (for example to retire
    /// its warm environments).
    pub fn on_change(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.listeners.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// Calls `f` with the function's name and the version when one version of a function is
    /// deleted here (what was derived from it can go; the function's other versions stay).
    pub fn on_version_gone(&self, f: impl Fn(&str, &str) + Send + Sync + 'static) {
        self.version_listeners.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// Records a change to `$LATEST` (or its deletion) in the view and tells listeners,
    /// which retire the function's warm environments.
    fn changed(&self, name: &str, resolved: Option<Arc<ResolvedFunction>>) {
        match resolved {
            Some(r) => self.view.put_version(r),
            None => self.view.forget_function(name),
        }
        for l in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            l(name);
        }
    }

    pub(crate) fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(format!("Function not found: {}", self.partition.function_arn(name)))
    }

    /// The digest a zip's blob is stored under.
    fn digest_of(zip: &[u8]) -> String {
        nimbus_store::blocking::in_place(|| nimbus_store::blob::sha256_hex(zip))
    }

    /// Stores the blob of a zip its caller inspected (`summary`) and unpacks it; returns
    /// (size, unzipped). The caller holds `digest` (see [`CodeWrites`]) until the record
    /// that refers to the blob is written.
    async fn accept_code(&self, zip: &[u8], digest: &str, summary: &code::ZipSummary) -> Result<(u64, u64), ApiError> {
        if zip.is_empty() {
            return Err(ApiError::invalid("Uploaded file must be a non-empty zip"));
        }
        // Unpacked (which reads every entry to its end) before the blob is stored, so a zip
        // that cannot be unpacked leaves nothing behind.
        nimbus_store::blocking::in_place(|| self.code.ensure(digest, zip)).map_err(code_err)?;
        self.blobs.put(zip).await.map_err(store_err)?;
        Ok((zip.len() as u64, summary.unzipped_size))
    }

    pub async fn create(&self, f: NewFunction) -> Result<FunctionConfig, ApiError> {
        if self.store.get_function(&f.name, LATEST).await.map_err(store_err)?.is_some() {
            return Err(ApiError::conflict(format!("Function already exist: {}", f.name)));
        }
        let _attaching = match &f.code_signing_config_id {
            Some(id) => {
                let writing = self.code_signing_writes.lock().await;
                self.code_signing_config_for_function(id).await?;
                Some(writing)
            }
            None => None,
        };
        // Check the layers before storing any code.
        let summary = nimbus_store::blocking::in_place(|| code::inspect(&f.zip)).map_err(code_err)?;
        let digest = Self::digest_of(&f.zip);
        let (layers, held) = self.resolve_layers_held(&f.layers, summary.unzipped_size, Some(&digest)).await?;
        let (size, unzipped) = self.accept_code(&f.zip, &digest, &summary).await?;
        let config = FunctionConfig {
            name: f.name,
            version: LATEST.to_string(),
            runtime: f.runtime,
            role: f.role,
            handler: f.handler,
            description: f.description,
            timeout_secs: f.timeout_secs,
            memory_mb: f.memory_mb,
            ephemeral_storage_mb: f.ephemeral_storage_mb,
            environment: f.environment,
            code_digest: digest,
            code_size: size,
            code_unzipped_size: unzipped,
            last_modified_ms: now_millis(),
            revision_id: new_revision_id(),
            architectures: if f.architectures.is_empty() { vec!["x86_64".into()] } else { f.architectures },
            reserved_concurrency: None,
            last_published: 0,
            layers,
            dead_letter_target: f.dead_letter_target,
            tags: f.tags,
            policies: Default::default(),
            recursive_loop: None,
            code_signing_config_id: f.code_signing_config_id,
            runtime_management: None,
            kms_key_arn: f.kms_key_arn,
            vpc: f.vpc,
            tracing_active: f.tracing_active,
            logging: f.logging,
        };
        match self.store.create_function(&config).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(ApiError::conflict(format!("Function already exist: {}", config.name))),
            Err(e) => return Err(store_err(e)),
        }
        drop(held);
        self.note_unverified_code(&config).await;
        let resolved = self.materialize(config.clone()).await?;
        self.changed(&config.name, Some(resolved));
        Ok(config)
    }

    pub async fn get(&self, name: &str) -> Result<FunctionConfig, ApiError> {
        self.store.get_function(name, LATEST).await.map_err(store_err)?.ok_or_else(|| self.not_found(name))
    }

    /// Functions after `marker`, at most `max`; the next marker if there are more.
    pub async fn list(&self, marker: Option<&str>, max: usize) -> Result<(Vec<FunctionConfig>, Option<String>), ApiError> {
        let mut page = self.store.list_functions(LATEST, marker, max + 1).await.map_err(store_err)?;
        let next = if page.len() > max {
            page.truncate(max);
            page.last().map(|c| c.name.clone())
        } else {
            None
        };
        Ok((page, next))
    }

    pub(crate) fn check_revision(current: &FunctionConfig, wanted: Option<&str>) -> Result<(), ApiError> {
        match wanted {
            Some(r) if r != current.revision_id => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            )),
            _ => Ok(()),
        }
    }

    /// Writes `next` over `current`, refreshing the invoke path's view.
    /// `held`: the digests `next` newly refers to (its code, its layers), when the caller
    /// just resolved or stored them; let go once the record is written.
    async fn replace(
        &self,
        current: &FunctionConfig,
        mut next: FunctionConfig,
        held: Option<Writing<'_>>,
    ) -> Result<FunctionConfig, ApiError> {
        next.last_modified_ms = now_millis();
        next.revision_id = new_revision_id();
        match self.store.update_function(&next, &current.revision_id).await {
            Ok(()) => {}
            Err(StoreError::RevisionMismatch) => {
                return Err(ApiError::conflict(format!(
                    "The operation cannot be performed at this time. An update is in progress for resource: {}",
                    self.partition.function_arn(&next.name)
                )))
            }
            Err(StoreError::NotFound) => return Err(self.not_found(&next.name)),
            Err(e) => return Err(store_err(e)),
        }
        // Before the collect below, which may want the same stripe.
        drop(held);
        let resolved = self.materialize(next.clone()).await?;
        self.changed(&next.name, Some(resolved));
        if current.code_digest != next.code_digest {
            self.collect_code(&current.code_digest).await;
        }
        Ok(next)
    }

    pub async fn update_code(&self, name: &str, zip: &[u8], revision_id: Option<&str>) -> Result<FunctionConfig, ApiError> {
        let current = self.get(name).await?;
        Self::check_revision(&current, revision_id)?;
        let summary = nimbus_store::blocking::in_place(|| code::inspect(zip)).map_err(code_err)?;
        // The function keeps the layers it had (even ones deleted since): only the size
        // limit is checked again.
        let total = summary.unzipped_size + current.layers.iter().map(|l| l.unzipped_size).sum::<u64>();
        if total > nimbus_model::validate::MAX_UNZIPPED_BYTES {
            return Err(ApiError::invalid(format!(
                "Function code combined with layers exceeds the maximum allowed size of {} bytes. The actual size is {total} bytes.",
                nimbus_model::validate::MAX_UNZIPPED_BYTES
            )));
        }
        let digest = Self::digest_of(zip);
        let held = self.code_writes.writing(&[&digest]).await;
        let (size, unzipped) = self.accept_code(zip, &digest, &summary).await?;
        let next = FunctionConfig { code_digest: digest, code_size: size, code_unzipped_size: unzipped, ..current.clone() };
        self.note_unverified_code(&next).await;
        self.replace(&current, next, Some(held)).await
    }

    pub async fn update_config(&self, name: &str, change: ConfigChange) -> Result<FunctionConfig, ApiError> {
        let current = self.get(name).await?;
        Self::check_revision(&current, change.revision_id.as_deref())?;
        let mut next = current.clone();
        if let Some(v) = change.runtime {
            next.runtime = v;
        }
        if let Some(v) = change.role {
            next.role = v;
        }
        if let Some(v) = change.handler {
            next.handler = v;
        }
        if let Some(v) = change.description {
            next.description = v;
        }
        if let Some(v) = change.timeout_secs {
            next.timeout_secs = v;
        }
        if let Some(v) = change.memory_mb {
            next.memory_mb = v;
        }
        if let Some(v) = change.ephemeral_storage_mb {
            next.ephemeral_storage_mb = v;
        }
        if let Some(v) = change.environment {
            next.environment = v;
        }
        if let Some(dlq) = change.dead_letter_target {
            next.dead_letter_target = (!dlq.is_empty()).then_some(dlq);
        }
        if let Some(arn) = change.kms_key_arn {
            next.kms_key_arn = (!arn.is_empty()).then_some(arn);
        }
        if let Some(active) = change.tracing_active {
            next.tracing_active = active;
        }
        if let Some(logging) = change.logging {
            next.logging = next.logging.apply(logging)?;
        }
        if let Some(vpc) = change.vpc {
            // Detaching a function that never had one leaves it without.
            next.vpc = (vpc.attached() || next.vpc.is_some()).then_some(vpc);
        }
        let mut held = None;
        if let Some(arns) = change.layers {
            let (layers, layers_held) = self.resolve_layers_held(&arns, next.code_unzipped_size, None).await?;
            next.layers = layers;
            held = Some(layers_held);
        }
        self.replace(&current, next, held).await
    }

    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let versions = self.store.list_versions(name).await.map_err(store_err)?;
        let Some(latest) = versions.iter().find(|v| v.version == LATEST) else { return Err(self.not_found(name)) };
        let reserved = latest.reserved_concurrency;
        let deleted = self.store.delete_function(name).await.map_err(store_err);
        self.event_configs.forget_function(name);
        if !deleted? {
            return Err(self.not_found(name));
        }
        if let Some(r) = reserved {
            self.reserved_total.fetch_sub(r, std::sync::atomic::Ordering::Relaxed);
        }
        self.reserved.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.forget_function_provisioned(name);
        self.changed(name, None);
        let mut digests: Vec<&str> = versions.iter().map(|v| v.code_digest.as_str()).collect();
        digests.sort_unstable();
        digests.dedup();
        for d in digests {
            self.collect_code(d).await;
        }
        // Layer versions deleted while this function used them go with it.
        let mut layers: Vec<&str> = versions.iter().flat_map(|v| v.layers.iter().map(|l| l.code_digest.as_str())).collect();
        layers.sort_unstable();
        layers.dedup();
        for d in layers {
            self.collect_layer(d).await;
        }
        Ok(())
    }

    /// Removes a code blob and its unpacked copy once no function refers to it (the copy
    /// when the last environment running from it ends).
    pub(crate) async fn collect_code(&self, digest: &str) {
        let _held = self.code_writes.collecting(digest).await;
        if let Ok(false) = self.store.digest_in_use(digest).await {
            let _ = self.blobs.delete(digest).await;
            self.code.remove(digest);
        }
    }

    /// The same for a layer's blob and unpacked copy.
    pub(crate) async fn collect_layer(&self, digest: &str) {
        let _held = self.code_writes.collecting(digest).await;
        if let Ok(false) = self.store.digest_in_use(digest).await {
            let _ = self.blobs.delete(digest).await;
            self.layer_code.remove(digest);
        }
    }

    /// At start: what a crash or an earlier release left behind: unpacked code and layers
    /// and blobs that no function or layer version refers to, and every merged `/opt` (built
    /// again when a function needs it).
    async fn collect_unreferenced(&self) {
        self.opt.clear();
        for (cache, digests) in [(&self.code, self.code.digests()), (&self.layer_code, self.layer_code.digests())] {
            for d in digests {
                if let Ok(false) = self.store.digest_in_use(&d).await {
                    cache.remove(&d);
                }
            }
        }
        if let Ok(all) = self.blobs.list().await {
            for d in all {
                let _held = self.code_writes.collecting(&d).await;
                if let Ok(false) = self.store.digest_in_use(&d).await {
                    let _ = self.blobs.delete(&d).await;
                }
            }
        }
    }

    /// The zip behind a digest, for GetFunction's Code.Location.
    /// The functions (each version's ARN) whose VpcConfig names the subnet or security
    /// group `id`: what EC2 would call its dependent network interfaces.
    pub async fn functions_using_network(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let (page, next) = self.list(marker.as_deref(), 100).await?;
            for f in page {
                for v in self.store.list_versions(&f.name).await.map_err(store_err)? {
                    let uses = v.vpc.as_ref().is_some_and(|c| c.subnet_ids.iter().chain(c.security_group_ids.iter()).any(|x| x == id));
                    if uses {
                        out.push(self.partition.qualified_arn(&v.name, &v.version));
                    }
                }
            }
            match next {
                Some(n) => marker = Some(n),
                None => return Ok(out),
            }
        }
    }

    pub async fn code_zip(&self, digest: &str) -> Result<Option<Vec<u8>>, ApiError> {
        self.blobs.get(digest).await.map_err(store_err)
    }

    /// (total code size, function count).
    pub async fn usage(&self) -> Result<(u64, u64), ApiError> {
        self.store.usage().await.map_err(store_err)
    }
}
