//! Persistence: function records behind the [`Store`] trait (SQLite embedded, or PostgreSQL
//! shared by several nodes), code zips behind the [`BlobStore`] trait (local disk, or
//! S3-compatible storage),
//! the unpacked-code cache, and the data directory's single-server lock.

pub mod base64_serde;
pub mod blob;
pub mod blocking;
pub mod code;
pub mod datadir;
pub mod db;
mod function_doc;
pub mod group_commit;
pub mod partitions;
pub mod pg;
pub mod postgres;
pub mod s3_blob;
pub mod sealing;
pub mod sqlite;
#[cfg(test)]
mod store_tests;
pub mod tx;

use std::sync::Arc;

use async_trait::async_trait;
use nimbus_model::alias::AliasConfig;
use nimbus_model::code_signing::CodeSigningConfig;
use nimbus_model::event_source::EventSourceMapping;
use nimbus_model::invoke::{AsyncEvent, EventInvokeConfig};
use nimbus_model::layer::LayerVersion;
use nimbus_model::provisioned::ProvisionedConfig;
use nimbus_model::url::FunctionUrlConfig;
use nimbus_model::FunctionConfig;

pub use blob::{BlobStore, LocalBlobStore};
pub use code::{CodeCache, CodeError, OptCache};
pub use datadir::DataDir;
pub use postgres::PgStore;
pub use s3_blob::S3BlobStore;
pub use sealing::{MasterKey, MasterKeySource};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("the revision id does not match")]
    RevisionMismatch,
    #[error("not found")]
    NotFound,
    #[error("storage backend: {0}")]
    Backend(String),
    /// A sealed secret or the master key (a wrong key at open, an altered record).
    #[error(transparent)]
    Sealing(#[from] sealing::SealError),
}

/// A change another node made to records this node may keep in memory (a store shared by
/// several nodes announces them; see [`Store::watch`]). Each names the function (or, for
/// mappings, the mapping's UUID) whose records changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// A version of the function, or the function itself (created, updated, deleted).
    Function(String),
    Aliases(String),
    Urls(String),
    EventInvokeConfigs(String),
    ProvisionedConfigs(String),
    Mapping(String),
    /// Changes may have been missed (the feed was cut and is back): forget everything kept.
    Resync,
}

/// A node of a cluster sharing a store, as the store's membership table has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// The node's incarnation (a restarted node is a new one).
    pub node: String,
    /// Where it serves (its `--listen` address as URL).
    pub endpoint: String,
    pub started_ms: i64,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// Accepted async events it holds (running or about to).
    pub async_events_held: i64,
    /// Whether it is the node answering.
    pub this_node: bool,
}

/// Function records, keyed by (name, version). Every write is atomic; updates are
/// compare-and-swap on the record's revision id so concurrent writers cannot lose changes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new record; [`StoreError::Conflict`] if (name, version) exists.
    async fn create_function(&self, config: &FunctionConfig) -> Result<(), StoreError>;
    /// Replaces a record whose current revision is `expected_revision`.
    async fn update_function(&self, config: &FunctionConfig, expected_revision: &str) -> Result<(), StoreError>;
    async fn get_function(&self, name: &str, version: &str) -> Result<Option<FunctionConfig>, StoreError>;
    /// One version of every function, ordered by name, starting after `after`.
    async fn list_functions(&self, version: &str, after: Option<&str>, limit: usize) -> Result<Vec<FunctionConfig>, StoreError>;
    /// Deletes every version of a function; false if there was none.
    async fn delete_function(&self, name: &str) -> Result<bool, StoreError>;
    /// Total zipped code size and number of functions, for account settings.
    async fn usage(&self) -> Result<(u64, u64), StoreError>;
    /// Whether any record still refers to this code digest.
    async fn code_in_use(&self, digest: &str) -> Result<bool, StoreError>;

    /// Publishes a version in one transaction: `$LATEST` (with its bumped version counter)
    /// replaces the record at `expected_revision`, and `version` is inserted.
    async fn publish_version(&self, latest: &FunctionConfig, expected_revision: &str, version: &FunctionConfig) -> Result<(), StoreError>;
    /// Every version of a function, `$LATEST` first, then by number.
    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionConfig>, StoreError>;
    /// Deletes one published version; false if it did not exist.
    async fn delete_version(&self, name: &str, version: &str) -> Result<bool, StoreError>;

    /// Creates (`expected_revision` None; [`StoreError::Conflict`] if it exists) or replaces
    /// (compare-and-swap on the revision) an alias.
    async fn put_alias(&self, alias: &AliasConfig, expected_revision: Option<&str>) -> Result<(), StoreError>;
    async fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasConfig>, StoreError>;
    /// A function's aliases ordered by name.
    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasConfig>, StoreError>;
    async fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError>;

    /// Stores a new version of a layer, numbered one past the highest it ever had; returns
    /// the number.
    async fn publish_layer_version(&self, layer: &LayerVersion) -> Result<u64, StoreError>;
    async fn get_layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError>;
    /// A layer's versions, newest first.
    async fn list_layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, StoreError>;
    /// Names of layers that have at least one version, ordered.
    async fn list_layer_names(&self) -> Result<Vec<String>, StoreError>;
    /// Replaces a layer version's record (its policy) if its policy revision is `expected`.
    async fn update_layer_version(&self, layer: &LayerVersion, expected_policy_revision: &str) -> Result<(), StoreError>;
    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<bool, StoreError>;
    /// Whether any layer version or function record still refers to this digest.
    async fn digest_in_use(&self, digest: &str) -> Result<bool, StoreError>;

    /// Stores an accepted asynchronous event durably: fsync'd before this returns, so it
    /// survives a crash of the process or of the machine.
    async fn enqueue_event(&self, event: &AsyncEvent) -> Result<(), StoreError>;
    /// Events due at `now_ms`, oldest first.
    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError>;
    /// The earliest `not_before_ms` of any waiting event.
    async fn next_event_due(&self) -> Result<Option<i64>, StoreError>;
    /// Records a retry of a waiting event: `event` as it is now (its attempts and the
    /// backoff in `not_before_ms`), stored only if the event is still waiting.
    async fn reschedule_event(&self, event: &AsyncEvent) -> Result<(), StoreError>;
    /// Removes a finished event.
    async fn complete_event(&self, request_id: &str) -> Result<(), StoreError>;

    async fn put_event_invoke_config(&self, config: &EventInvokeConfig) -> Result<(), StoreError>;
    async fn get_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<Option<EventInvokeConfig>, StoreError>;
    async fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<EventInvokeConfig>, StoreError>;
    async fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError>;

    /// Creates (`create`; [`StoreError::Conflict`] if the function and qualifier have one)
    /// or replaces a function URL config.
    async fn put_function_url(&self, config: &FunctionUrlConfig, create: bool) -> Result<(), StoreError>;
    async fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<Option<FunctionUrlConfig>, StoreError>;
    async fn get_function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlConfig>, StoreError>;
    async fn list_function_urls(&self, function: &str) -> Result<Vec<FunctionUrlConfig>, StoreError>;
    async fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<bool, StoreError>;

    async fn put_event_source_mapping(&self, mapping: &EventSourceMapping) -> Result<(), StoreError>;
    async fn get_event_source_mapping(&self, uuid: &str) -> Result<Option<EventSourceMapping>, StoreError>;
    /// All mappings, oldest first.
    async fn list_event_source_mappings(&self) -> Result<Vec<EventSourceMapping>, StoreError>;
    async fn delete_event_source_mapping(&self, uuid: &str) -> Result<bool, StoreError>;
    /// Records where a stream mapping's poller of `shard` resumes (its checkpoint).
    /// [`StoreError::Conflict`] when another node holds the shard's lease ([`Store::claim_shard`]):
    /// a poller that lost its lease moves nothing.
    async fn put_stream_checkpoint(&self, mapping: &str, shard: &str, position: &str) -> Result<(), StoreError>;
    /// A stream mapping's checkpoints: (shard, position), by shard.
    async fn stream_checkpoints(&self, mapping: &str) -> Result<Vec<(String, String)>, StoreError>;
    async fn delete_stream_checkpoints(&self, mapping: &str) -> Result<(), StoreError>;

    /// Creates or replaces the provisioned concurrency config of a version or alias.
    async fn put_provisioned_config(&self, config: &ProvisionedConfig) -> Result<(), StoreError>;
    /// One function's configs (or every function's), ordered by function and qualifier.
    async fn list_provisioned_configs(&self, function: Option<&str>) -> Result<Vec<ProvisionedConfig>, StoreError>;
    async fn delete_provisioned_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError>;

    /// Creates (`create`; [`StoreError::Conflict`] if the id exists) or replaces
    /// ([`StoreError::NotFound`] if it does not) a code signing config.
    async fn put_code_signing_config(&self, config: &CodeSigningConfig, create: bool) -> Result<(), StoreError>;
    async fn get_code_signing_config(&self, id: &str) -> Result<Option<CodeSigningConfig>, StoreError>;
    /// Configs ordered by id, starting after `after`.
    async fn list_code_signing_configs(&self, after: Option<&str>, limit: usize) -> Result<Vec<CodeSigningConfig>, StoreError>;
    async fn delete_code_signing_config(&self, id: &str) -> Result<bool, StoreError>;

    /// Calls `f` with every change other nodes make, from now on, while the store lives. The
    /// embedded store has no other writers and never calls it.
    fn watch(&self, f: Arc<dyn Fn(StoreChange) + Send + Sync>) {
        let _ = f;
    }

    /// Records this node as a member serving at `endpoint`, kept alive by heartbeats while
    /// the store lives (a store shared by several nodes; the embedded one has no peers).
    fn join_cluster(&self, endpoint: &str) {
        let _ = endpoint;
    }

    /// Takes or keeps this node's lease of a stream mapping's shard: whether this node is to
    /// poll it now. With several nodes one polls each shard: another takes it once the
    /// holder's lease lapsed (it is renewed with the async events') or was handed back. The
    /// embedded store has no other nodes: always.
    async fn claim_shard(&self, _mapping: &str, _shard: &str) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Hands back this node's lease of a shard (its poller ended).
    async fn release_shard(&self, _mapping: &str, _shard: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Hands back every shard lease this node holds for a mapping (its pollers were stopped).
    async fn release_shards(&self, _mapping: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// This node stops: it claims no more async events, lets go of those it holds (so the
    /// others take them at once instead of after their leases) and leaves the members.
    async fn leave_cluster(&self) {}

    /// Whether concurrency limits are shared with other nodes through this store: then a
    /// node runs only as many invocations of a pool as the share it leased.
    fn shares_concurrency(&self) -> bool {
        false
    }

    /// Leases this node's share of `pool`'s cluster-wide `limit`: up to `want` slots, less
    /// what other nodes hold; answers the share now held (`want` of 0 gives everything
    /// back). The embedded store has no other nodes: all of it.
    async fn lease_concurrency(&self, pool: &str, want: u32, limit: u32) -> Result<u32, StoreError> {
        let _ = pool;
        Ok(want.min(limit))
    }

    /// The live members, oldest first (empty for the embedded store).
    async fn peers(&self) -> Result<Vec<Peer>, StoreError> {
        Ok(Vec::new())
    }

    /// Records this node's provisioned environments per config (its share and how many are
    /// initialized), replacing what it recorded before. Nothing to do on one node.
    async fn publish_provisioned(&self, mine: Vec<ProvisionedAllocation>) -> Result<(), StoreError> {
        let _ = mine;
        Ok(())
    }

    /// Each config's provisioned environments summed over the live nodes (empty on one node:
    /// the pool's own counts are the whole story).
    async fn provisioned_everywhere(&self) -> Result<Vec<ProvisionedAllocation>, StoreError> {
        Ok(Vec::new())
    }
}

/// One config's provisioned environments on one node, or summed over the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedAllocation {
    pub function: String,
    pub qualifier: String,
    /// Environments asked of the node (its share of the config), or of all of them.
    pub requested: u32,
    /// Initialized.
    pub allocated: u32,
    /// How an init failed, if one did.
    pub failure: Option<String>,
}
