//! The [`Store`] several nodes share: function records and everything that hangs off them
//! in an account's PostgreSQL schema, each write committed before the caller hears back,
//! and accepted asynchronous events claimed by one node at a time with leases that the node
//! renews while it lives, so a dead node's events are taken over once its leases lapse.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_model::alias::AliasConfig;
use nimbus_model::code_signing::CodeSigningConfig;
use nimbus_model::event_source::EventSourceMapping;
use nimbus_model::invoke::{AsyncEvent, EventInvokeConfig};
use nimbus_model::layer::LayerVersion;
use nimbus_model::provisioned::ProvisionedConfig;
use nimbus_model::url::FunctionUrlConfig;
use nimbus_model::FunctionConfig;
use tokio_postgres::types::ToSql;

use crate::function_doc::Sealer;
use crate::pg::{backend, Announcement, PgDatabase, PgSchema};
use crate::sealing::{KeyWrapper, MasterKey};
use crate::ProvisionedAllocation;
use crate::{Peer, Store, StoreChange, StoreError};

/// The function tables in PostgreSQL: `nimbus.db`'s, with an owner and a lease on each
/// waiting async event.
pub const SCHEMA: PgSchema = PgSchema {
    name: "function",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12).
        "
CREATE TABLE functions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    revision TEXT NOT NULL,
    code_digest TEXT NOT NULL,
    code_size BIGINT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX functions_digest ON functions (code_digest);
CREATE TABLE aliases (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    revision TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
CREATE TABLE async_events (
    request_id TEXT PRIMARY KEY,
    not_before BIGINT NOT NULL,
    enqueued BIGINT NOT NULL,
    event TEXT NOT NULL,
    -- The node incarnation running it, until lease_until (milliseconds, the database's clock).
    owner TEXT,
    lease_until BIGINT
);
CREATE INDEX async_events_due ON async_events (not_before, enqueued);
CREATE INDEX async_events_owner ON async_events (owner);
CREATE TABLE event_invoke_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE function_urls (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    url_id TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE event_source_mappings (
    uuid TEXT PRIMARY KEY,
    created BIGINT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE provisioned_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE layer_names (
    name TEXT PRIMARY KEY,
    last_version BIGINT NOT NULL
);
CREATE TABLE layer_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    code_digest TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE code_signing_configs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BYTEA NOT NULL
);
CREATE TABLE stream_checkpoints (
    mapping TEXT NOT NULL,
    shard TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (mapping, shard)
);
",
        // 2: every change to a record that nodes keep in memory is announced at commit
        // (`pg::NOTIFY_CHANGE`, made by `PgDatabase::migrate`).
        "
CREATE TRIGGER functions_changed AFTER INSERT OR UPDATE OR DELETE ON functions FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE ON aliases FOR EACH ROW EXECUTE FUNCTION notify_change('function');
CREATE TRIGGER urls_changed AFTER INSERT OR UPDATE OR DELETE ON function_urls FOR EACH ROW EXECUTE FUNCTION notify_change('function');
CREATE TRIGGER event_configs_changed AFTER INSERT OR UPDATE OR DELETE ON event_invoke_configs FOR EACH ROW EXECUTE FUNCTION notify_change('function');
CREATE TRIGGER provisioned_changed AFTER INSERT OR UPDATE OR DELETE ON provisioned_configs FOR EACH ROW EXECUTE FUNCTION notify_change('function');
CREATE TRIGGER mappings_changed AFTER INSERT OR UPDATE OR DELETE ON event_source_mappings FOR EACH ROW EXECUTE FUNCTION notify_change('uuid');
",
        // 3: the cluster's members, each with its heartbeat (the database's clock), and the
        // shares of the concurrency limits each holds (until their lease lapses).
        "
CREATE TABLE cluster_nodes (
    node TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    started BIGINT NOT NULL,
    heartbeat BIGINT NOT NULL
);
CREATE TABLE concurrency_shares (
    pool TEXT NOT NULL,
    node TEXT NOT NULL,
    share BIGINT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (pool, node)
);
",
        // 4: each node's provisioned environments per config (its share of the config, and
        // how many are initialized), which every node sums for the configs' status.
        "
CREATE TABLE provisioned_allocations (
    node TEXT NOT NULL,
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    requested BIGINT NOT NULL,
    allocated BIGINT NOT NULL,
    failure TEXT,
    PRIMARY KEY (node, function, qualifier)
);
",
        // 5: stream shards' pollers, one node per shard (the database's clock, as the async
        // events' leases).
        "
CREATE TABLE stream_leases (
    mapping TEXT NOT NULL,
    shard TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (mapping, shard)
);
CREATE INDEX stream_leases_owner ON stream_leases (owner);
",
    ],
};

/// How long a claimed async event stays this node's without a renewal. Renewed every third
/// of it; a node that dies leaves its events to the others after at most this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The database's clock in milliseconds: leases are compared with one clock, whichever node
/// writes them.
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub struct PgStore {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
    sealer: Sealer,
    /// This process's identity as the owner of the async events it runs: a restarted node is
    /// a new owner, so nothing it held before survives as its own.
    node: String,
    lease_ms: i64,
    /// Itself, for the tasks it starts (which end with it).
    me: Weak<PgStore>,
    /// Where this node serves, once it joined the cluster.
    endpoint: std::sync::Mutex<Option<String>>,
    /// Set when the node stops: no more claims.
    leaving: std::sync::atomic::AtomicBool,
}

impl PgStore {
    /// Opens `account`'s function tables at `url` (migrating them), checks that `master` is
    /// the key the records are sealed under ([`crate::sealing::SealError::WrongMasterKey`] if
    /// not: every node must share one), and starts renewing this node's leases.
    pub async fn open(url: &str, account: &str, master: MasterKey, kms: Option<Arc<dyn KeyWrapper>>) -> Result<Arc<PgStore>, StoreError> {
        PgStore::open_with_lease(url, account, master, kms, DEFAULT_LEASE).await
    }

    /// [`PgStore::open`] with another lease on claimed async events.
    pub async fn open_with_lease(
        url: &str,
        account: &str,
        master: MasterKey,
        kms: Option<Arc<dyn KeyWrapper>>,
        lease: Duration,
    ) -> Result<Arc<PgStore>, StoreError> {
        let node = hex::encode(&crate::sealing::random_key()[..12]);
        // The node's connections carry its name, which the change feed's triggers quote.
        let db = PgDatabase::open(url, account, &format!("nimbus-{node}")).await?;
        db.migrate(&SCHEMA).await?;
        {
            db.check_master_key("sealing", &master).await?;
        }
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        let sealer = Sealer { master: Arc::new(master), kms };
        let store = Arc::new_cyclic(|me| PgStore {
            db,
            url: url.to_string(),
            sealer,
            node,
            lease_ms,
            me: me.clone(),
            endpoint: Default::default(),
            leaving: Default::default(),
        });
        tokio::spawn(renew_leases(Arc::downgrade(&store), lease / 3));
        Ok(store)
    }

    /// The owner name of this node's leases.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn database(&self) -> &PgDatabase {
        &self.db
    }

    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        client.execute(&statement, params).await.map_err(backend)
    }

    /// [`PgStore::execute`] on a relaxed connection: committed, not waited for on disk.
    async fn execute_relaxed(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let client = self.db.relaxed_client().await?;
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        client.execute(&statement, params).await.map_err(backend)
    }

    async fn rows_relaxed(&self, sql: &str, params: Params<'_>) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.db.relaxed_client().await?;
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&statement, params).await.map_err(backend)
    }

    async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.db.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&statement, params).await.map_err(backend)
    }

    /// The documents in the first column of a query's rows.
    async fn docs<T: serde::de::DeserializeOwned>(&self, sql: &str, params: Params<'_>) -> Result<Vec<T>, StoreError> {
        self.rows(sql, params).await?.iter().map(|row| decode(row.get(0))).collect()
    }

    async fn doc<T: serde::de::DeserializeOwned>(&self, sql: &str, params: Params<'_>) -> Result<Option<T>, StoreError> {
        Ok(self.docs(sql, params).await?.into_iter().next())
    }

    async fn functions(&self, sql: &str, params: Params<'_>) -> Result<Vec<FunctionConfig>, StoreError> {
        self.rows(sql, params).await?.iter().map(|row| self.sealer.decode(row.get(0))).collect()
    }

    async fn exists(&self, sql: &str, params: Params<'_>) -> Result<bool, StoreError> {
        Ok(self.rows(sql, params).await?.first().map(|row| row.get(0)).unwrap_or(false))
    }

    /// Renews this node's leases, and its heartbeat once it joined the cluster: each on its
    /// own, so one failing does not leave the others to lapse.
    async fn renew(&self) -> Result<u64, StoreError> {
        let endpoint = self.endpoint.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(endpoint) = endpoint {
            if let Err(e) = self.heartbeat(&endpoint).await {
                tracing::warn!("recording this node's heartbeat: {e}");
            }
        }
        let renewals = [
            ("concurrency shares", format!("UPDATE concurrency_shares SET until = {DB_NOW} + 3 * $2::bigint WHERE node = $1")),
            ("stream shard leases", format!("UPDATE stream_leases SET lease_until = {DB_NOW} + $2 WHERE owner = $1")),
        ];
        for (what, sql) in renewals {
            if let Err(e) = self.execute_relaxed(&sql, &[&self.node, &self.lease_ms]).await {
                tracing::warn!("renewing this node's {what}: {e}");
            }
        }
        self.execute_relaxed(
            &format!("UPDATE async_events SET lease_until = {DB_NOW} + $2 WHERE owner = $1"),
            &[&self.node, &self.lease_ms],
        )
        .await
    }

    /// Records this node's heartbeat, and forgets members silent for an hour (here, every
    /// third of a lease, rather than on every read of the members).
    async fn heartbeat(&self, endpoint: &str) -> Result<u64, StoreError> {
        self.execute_relaxed(&format!("DELETE FROM cluster_nodes WHERE heartbeat < {DB_NOW} - 3600000"), &[]).await?;
        self.execute_relaxed(
            &format!(
                "INSERT INTO cluster_nodes (node, endpoint, started, heartbeat) VALUES ($1, $2, {DB_NOW}, {DB_NOW})
                 ON CONFLICT (node) DO UPDATE SET heartbeat = {DB_NOW}, endpoint = $2"
            ),
            &[&self.node, &endpoint],
        )
        .await
    }
}

/// What another node's announcement says in this store's terms.
fn change_of(table: &str, key: String) -> Option<StoreChange> {
    Some(match table {
        "functions" => StoreChange::Function(key),
        "aliases" => StoreChange::Aliases(key),
        "function_urls" => StoreChange::Urls(key),
        "event_invoke_configs" => StoreChange::EventInvokeConfigs(key),
        "provisioned_configs" => StoreChange::ProvisionedConfigs(key),
        "event_source_mappings" => StoreChange::Mapping(key),
        _ => return None,
    })
}

/// Keeps this node's claimed events its own while it lives; ends with the store.
async fn renew_leases(store: Weak<PgStore>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        if let Err(e) = store.renew().await {
            tracing::warn!("renewing this node's async event leases: {e}");
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Backend(format!("a stored record does not read: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialize")
}

#[async_trait]
impl Store for PgStore {
    async fn create_function(&self, c: &FunctionConfig) -> Result<(), StoreError> {
        let json = self.sealer.encode(c)?;
        let inserted = self
            .execute(
                "INSERT INTO functions (name, version, revision, code_digest, code_size, config) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&c.name, &c.version, &c.revision_id, &c.code_digest, &(c.code_size as i64), &json],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn update_function(&self, c: &FunctionConfig, expected_revision: &str) -> Result<(), StoreError> {
        let json = self.sealer.encode(c)?;
        let changed = self
            .execute(
                "UPDATE functions SET revision = $3, code_digest = $4, code_size = $5, config = $6 WHERE name = $1 AND version = $2 AND revision = $7",
                &[&c.name, &c.version, &c.revision_id, &c.code_digest, &(c.code_size as i64), &json, &expected_revision],
            )
            .await?;
        if changed == 0 {
            let exists =
                self.exists("SELECT EXISTS(SELECT 1 FROM functions WHERE name = $1 AND version = $2)", &[&c.name, &c.version]).await?;
            return Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound });
        }
        Ok(())
    }

    async fn get_function(&self, name: &str, version: &str) -> Result<Option<FunctionConfig>, StoreError> {
        Ok(self.functions("SELECT config FROM functions WHERE name = $1 AND version = $2", &[&name, &version]).await?.into_iter().next())
    }

    async fn list_functions(&self, version: &str, after: Option<&str>, limit: usize) -> Result<Vec<FunctionConfig>, StoreError> {
        self.functions(
            "SELECT config FROM functions WHERE version = $1 AND name > $2 ORDER BY name LIMIT $3",
            &[&version, &after.unwrap_or(""), &(limit as i64)],
        )
        .await
    }

    async fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let n = tx.execute("DELETE FROM functions WHERE name = $1", &[&name]).await.map_err(backend)?;
        for table in ["aliases", "event_invoke_configs", "function_urls", "provisioned_configs"] {
            tx.execute(&format!("DELETE FROM {table} WHERE function = $1"), &[&name]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        let rows = self.rows("SELECT COALESCE(SUM(code_size), 0)::bigint, COUNT(DISTINCT name) FROM functions", &[]).await?;
        let row = rows.first().ok_or_else(|| StoreError::Backend("no usage row".into()))?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    async fn code_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        self.exists("SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = $1)", &[&digest]).await
    }

    async fn publish_version(&self, latest: &FunctionConfig, expected_revision: &str, version: &FunctionConfig) -> Result<(), StoreError> {
        let (latest_json, version_json) = (self.sealer.encode(latest)?, self.sealer.encode(version)?);
        let mut client = self.db.client().await?;
        // Both rows or neither: returning before the commit rolls the transaction back.
        let tx = client.transaction().await.map_err(backend)?;
        let changed = tx
            .execute(
                "UPDATE functions SET revision = $3, config = $4 WHERE name = $1 AND version = $2 AND revision = $5",
                &[&latest.name, &latest.version, &latest.revision_id, &latest_json, &expected_revision],
            )
            .await
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::RevisionMismatch);
        }
        let inserted = tx
            .execute(
                "INSERT INTO functions (name, version, revision, code_digest, code_size, config) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&version.name, &version.version, &version.revision_id, &version.code_digest, &(version.code_size as i64), &version_json],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await.map_err(backend)
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionConfig>, StoreError> {
        self.functions(
            "SELECT config FROM functions WHERE name = $1 ORDER BY CASE WHEN version = '$LATEST' THEN -1 ELSE CAST(version AS BIGINT) END",
            &[&name],
        )
        .await
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM functions WHERE name = $1 AND version = $2", &[&name, &version]).await? > 0)
    }

    async fn put_alias(&self, a: &AliasConfig, expected_revision: Option<&str>) -> Result<(), StoreError> {
        let json = to_json(a);
        let changed = match expected_revision {
            None => {
                self.execute(
                    "INSERT INTO aliases (function, name, revision, config) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&a.function_name, &a.name, &a.revision_id, &json],
                )
                .await?
            }
            Some(rev) => {
                self.execute(
                    "UPDATE aliases SET revision = $3, config = $4 WHERE function = $1 AND name = $2 AND revision = $5",
                    &[&a.function_name, &a.name, &a.revision_id, &json, &rev],
                )
                .await?
            }
        };
        match (changed, expected_revision) {
            (0, None) => Err(StoreError::Conflict),
            (0, Some(_)) => {
                let exists = self
                    .exists("SELECT EXISTS(SELECT 1 FROM aliases WHERE function = $1 AND name = $2)", &[&a.function_name, &a.name])
                    .await?;
                Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound })
            }
            _ => Ok(()),
        }
    }

    async fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasConfig>, StoreError> {
        self.doc("SELECT config FROM aliases WHERE function = $1 AND name = $2", &[&function, &name]).await
    }

    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasConfig>, StoreError> {
        self.docs("SELECT config FROM aliases WHERE function = $1 ORDER BY name", &[&function]).await
    }

    async fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM aliases WHERE function = $1 AND name = $2", &[&function, &name]).await? > 0)
    }

    async fn publish_layer_version(&self, layer: &LayerVersion) -> Result<u64, StoreError> {
        let mut record = layer.clone();
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let version: i64 = tx
            .query_one(
                "INSERT INTO layer_names (name, last_version) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET last_version = layer_names.last_version + 1 RETURNING last_version",
                &[&record.layer_name],
            )
            .await
            .map_err(backend)?
            .get(0);
        record.version = version as u64;
        tx.execute(
            "INSERT INTO layer_versions (name, version, code_digest, config) VALUES ($1, $2, $3, $4)",
            &[&record.layer_name, &version, &record.code_digest, &to_json(&record)],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(record.version)
    }

    async fn get_layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError> {
        self.doc("SELECT config FROM layer_versions WHERE name = $1 AND version = $2", &[&name, &(version as i64)]).await
    }

    async fn list_layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, StoreError> {
        self.docs("SELECT config FROM layer_versions WHERE name = $1 ORDER BY version DESC", &[&name]).await
    }

    async fn list_layer_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.rows("SELECT DISTINCT name FROM layer_versions ORDER BY name", &[]).await?.iter().map(|r| r.get(0)).collect())
    }

    async fn update_layer_version(&self, layer: &LayerVersion, expected_policy_revision: &str) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        // Read (locking the row) and write in one transaction: nobody changes it in between.
        let tx = client.transaction().await.map_err(backend)?;
        let version = layer.version as i64;
        let row = tx
            .query_opt("SELECT config FROM layer_versions WHERE name = $1 AND version = $2 FOR UPDATE", &[&layer.layer_name, &version])
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let current: LayerVersion = decode(row.get(0))?;
        if current.policy_revision != expected_policy_revision {
            return Err(StoreError::RevisionMismatch);
        }
        tx.execute(
            "UPDATE layer_versions SET config = $3 WHERE name = $1 AND version = $2",
            &[&layer.layer_name, &version, &to_json(layer)],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM layer_versions WHERE name = $1 AND version = $2", &[&name, &(version as i64)]).await? > 0)
    }

    async fn digest_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        // Function records name their layers' digests inside their JSON.
        let pattern = format!("%{digest}%");
        self.exists(
            "SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = $1 OR config LIKE $2) OR EXISTS(SELECT 1 FROM layer_versions WHERE code_digest = $1)",
            &[&digest, &pattern],
        )
        .await
    }

    async fn enqueue_event(&self, e: &AsyncEvent) -> Result<(), StoreError> {
        // Committed (and, with PostgreSQL's default synchronous_commit, flushed to its WAL)
        // before the caller's 202.
        self.execute(
            "INSERT INTO async_events (request_id, not_before, enqueued, event) VALUES ($1, $2, $3, $4)
             ON CONFLICT (request_id) DO UPDATE SET not_before = $2, enqueued = $3, event = $4, owner = NULL, lease_until = NULL",
            &[&e.request_id, &e.not_before_ms, &e.enqueued_ms, &to_json(e)],
        )
        .await?;
        Ok(())
    }

    /// The due events this node holds, and those no live node holds, claimed for it; oldest
    /// first.
    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError> {
        if self.leaving.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(Vec::new());
        }
        // Events this node holds come back as they are (locking nothing: a renewal of
        // them at this moment must not hide them); others are claimed, skipping rows
        // another node is claiming right now. One statement, one snapshot: a row claimed
        // here is not also read as held.
        let sql = format!(
            "WITH claimed AS (
                UPDATE async_events AS a SET owner = $3, lease_until = {DB_NOW} + $4
                FROM (SELECT request_id FROM async_events
                      WHERE not_before <= $1 AND owner IS DISTINCT FROM $3 AND (owner IS NULL OR lease_until < {DB_NOW})
                      ORDER BY not_before, enqueued LIMIT $2 FOR UPDATE SKIP LOCKED) AS due
                WHERE a.request_id = due.request_id
                RETURNING a.not_before, a.enqueued, a.event)
             SELECT not_before, enqueued, event FROM claimed
             UNION ALL
             SELECT not_before, enqueued, event FROM async_events WHERE owner = $3 AND not_before <= $1"
        );
        // A claim lost in a crash of the database is made again.
        let mut rows = self.rows_relaxed(&sql, &[&now_ms, &(limit as i64), &self.node, &self.lease_ms]).await?;
        rows.sort_by_key(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        rows.iter().take(limit).map(|r| decode(r.get(2))).collect()
    }

    async fn next_event_due(&self) -> Result<Option<i64>, StoreError> {
        let sql = format!("SELECT MIN(not_before) FROM async_events WHERE owner IS NULL OR owner = $1 OR lease_until < {DB_NOW}");
        Ok(self.rows_relaxed(&sql, &[&self.node]).await?.first().and_then(|r| r.get(0)))
    }

    /// Stored only while this node still holds the event (a node that lost its lease cannot
    /// write over the new holder's state), and let go: any node may run the retry.
    async fn reschedule_event(&self, e: &AsyncEvent) -> Result<(), StoreError> {
        // Lost in a crash of the database, the event runs again sooner: at least once.
        self.execute_relaxed(
            "UPDATE async_events SET not_before = $2, event = $3, owner = NULL, lease_until = NULL WHERE request_id = $1 AND owner = $4",
            &[&e.request_id, &e.not_before_ms, &to_json(e), &self.node],
        )
        .await?;
        Ok(())
    }

    /// Removed only while this node still holds it (the fence against a node that stalled
    /// past its lease: the event's new holder runs it again, at least once).
    async fn complete_event(&self, request_id: &str) -> Result<(), StoreError> {
        // Lost in a crash of the database, the event runs again: at least once.
        self.execute_relaxed("DELETE FROM async_events WHERE request_id = $1 AND owner = $2", &[&request_id, &self.node]).await?;
        Ok(())
    }

    async fn put_event_invoke_config(&self, c: &EventInvokeConfig) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO event_invoke_configs (function, qualifier, config) VALUES ($1, $2, $3)
             ON CONFLICT (function, qualifier) DO UPDATE SET config = EXCLUDED.config",
            &[&c.function, &c.qualifier, &to_json(c)],
        )
        .await?;
        Ok(())
    }

    async fn get_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<Option<EventInvokeConfig>, StoreError> {
        self.doc("SELECT config FROM event_invoke_configs WHERE function = $1 AND qualifier = $2", &[&function, &qualifier]).await
    }

    async fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<EventInvokeConfig>, StoreError> {
        self.docs("SELECT config FROM event_invoke_configs WHERE function = $1 ORDER BY qualifier", &[&function]).await
    }

    async fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM event_invoke_configs WHERE function = $1 AND qualifier = $2", &[&function, &qualifier]).await? > 0)
    }

    async fn put_function_url(&self, c: &FunctionUrlConfig, create: bool) -> Result<(), StoreError> {
        let (json, qualifier) = (to_json(c), c.qualifier.clone().unwrap_or_default());
        let n = if create {
            self.execute(
                "INSERT INTO function_urls (function, qualifier, url_id, config) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&c.function, &qualifier, &c.url_id, &json],
            )
            .await?
        } else {
            self.execute("UPDATE function_urls SET config = $3 WHERE function = $1 AND qualifier = $2", &[&c.function, &qualifier, &json])
                .await?
        };
        match (n, create) {
            (0, true) => Err(StoreError::Conflict),
            (0, false) => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<Option<FunctionUrlConfig>, StoreError> {
        self.doc("SELECT config FROM function_urls WHERE function = $1 AND qualifier = $2", &[&function, &qualifier.unwrap_or("")]).await
    }

    async fn get_function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlConfig>, StoreError> {
        self.doc("SELECT config FROM function_urls WHERE url_id = $1", &[&url_id]).await
    }

    async fn list_function_urls(&self, function: &str) -> Result<Vec<FunctionUrlConfig>, StoreError> {
        self.docs("SELECT config FROM function_urls WHERE function = $1 ORDER BY qualifier", &[&function]).await
    }

    async fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM function_urls WHERE function = $1 AND qualifier = $2", &[&function, &qualifier.unwrap_or("")]).await?
            > 0)
    }

    async fn put_event_source_mapping(&self, m: &EventSourceMapping) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO event_source_mappings (uuid, created, config) VALUES ($1, $2, $3)
             ON CONFLICT (uuid) DO UPDATE SET config = EXCLUDED.config",
            &[&m.uuid, &m.last_modified_ms, &to_json(m)],
        )
        .await?;
        Ok(())
    }

    async fn get_event_source_mapping(&self, uuid: &str) -> Result<Option<EventSourceMapping>, StoreError> {
        self.doc("SELECT config FROM event_source_mappings WHERE uuid = $1", &[&uuid]).await
    }

    async fn list_event_source_mappings(&self) -> Result<Vec<EventSourceMapping>, StoreError> {
        self.docs("SELECT config FROM event_source_mappings ORDER BY created, uuid", &[]).await
    }

    async fn delete_event_source_mapping(&self, uuid: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM event_source_mappings WHERE uuid = $1", &[&uuid]).await? > 0)
    }

    async fn put_stream_checkpoint(&self, mapping: &str, shard: &str, position: &str) -> Result<(), StoreError> {
        // Fenced: nothing moves once another node took the shard over. The lease's row is
        // read under a share lock, so a claim committing meanwhile is waited for and seen.
        let moved = self
            .execute(
                "WITH lease AS (SELECT owner FROM stream_leases WHERE mapping = $1 AND shard = $2 FOR SHARE)
                 INSERT INTO stream_checkpoints (mapping, shard, position)
                 SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM lease WHERE owner <> $4)
                 ON CONFLICT (mapping, shard) DO UPDATE SET position = EXCLUDED.position",
                &[&mapping, &shard, &position, &self.node],
            )
            .await?;
        if moved == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn claim_shard(&self, mapping: &str, shard: &str) -> Result<bool, StoreError> {
        if self.leaving.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(false);
        }
        // Only for a mapping that exists (a node that has not yet heard of its deletion
        // takes nothing).
        let taken = self
            .execute_relaxed(
                &format!(
                    "INSERT INTO stream_leases (mapping, shard, owner, lease_until)
                     SELECT $1, $2, $3, {DB_NOW} + $4 WHERE EXISTS (SELECT 1 FROM event_source_mappings WHERE uuid = $1)
                     ON CONFLICT (mapping, shard) DO UPDATE SET owner = $3, lease_until = {DB_NOW} + $4
                     WHERE stream_leases.owner = $3 OR stream_leases.lease_until < {DB_NOW}"
                ),
                &[&mapping, &shard, &self.node, &self.lease_ms],
            )
            .await?;
        Ok(taken > 0)
    }

    async fn release_shards(&self, mapping: &str) -> Result<(), StoreError> {
        self.execute_relaxed("DELETE FROM stream_leases WHERE mapping = $1 AND owner = $2", &[&mapping, &self.node]).await?;
        Ok(())
    }

    async fn release_shard(&self, mapping: &str, shard: &str) -> Result<(), StoreError> {
        self.execute_relaxed("DELETE FROM stream_leases WHERE mapping = $1 AND shard = $2 AND owner = $3", &[&mapping, &shard, &self.node])
            .await?;
        Ok(())
    }

    async fn stream_checkpoints(&self, mapping: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.rows("SELECT shard, position FROM stream_checkpoints WHERE mapping = $1 ORDER BY shard", &[&mapping]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn delete_stream_checkpoints(&self, mapping: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM stream_checkpoints WHERE mapping = $1", &[&mapping]).await?;
        self.execute("DELETE FROM stream_leases WHERE mapping = $1", &[&mapping]).await?;
        Ok(())
    }

    async fn put_provisioned_config(&self, c: &ProvisionedConfig) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO provisioned_configs (function, qualifier, config) VALUES ($1, $2, $3)
             ON CONFLICT (function, qualifier) DO UPDATE SET config = EXCLUDED.config",
            &[&c.function, &c.qualifier, &to_json(c)],
        )
        .await?;
        Ok(())
    }

    async fn list_provisioned_configs(&self, function: Option<&str>) -> Result<Vec<ProvisionedConfig>, StoreError> {
        self.docs(
            "SELECT config FROM provisioned_configs WHERE $1::text IS NULL OR function = $1 ORDER BY function, qualifier",
            &[&function],
        )
        .await
    }

    async fn delete_provisioned_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM provisioned_configs WHERE function = $1 AND qualifier = $2", &[&function, &qualifier]).await? > 0)
    }

    async fn put_code_signing_config(&self, c: &CodeSigningConfig, create: bool) -> Result<(), StoreError> {
        let json = to_json(c);
        let n = if create {
            self.execute("INSERT INTO code_signing_configs (id, config) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&c.id, &json]).await?
        } else {
            self.execute("UPDATE code_signing_configs SET config = $2 WHERE id = $1", &[&c.id, &json]).await?
        };
        match (n, create) {
            (0, true) => Err(StoreError::Conflict),
            (0, false) => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_code_signing_config(&self, id: &str) -> Result<Option<CodeSigningConfig>, StoreError> {
        self.doc("SELECT config FROM code_signing_configs WHERE id = $1", &[&id]).await
    }

    async fn list_code_signing_configs(&self, after: Option<&str>, limit: usize) -> Result<Vec<CodeSigningConfig>, StoreError> {
        self.docs("SELECT config FROM code_signing_configs WHERE id > $1 ORDER BY id LIMIT $2", &[&after.unwrap_or(""), &(limit as i64)])
            .await
    }

    async fn delete_code_signing_config(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM code_signing_configs WHERE id = $1", &[&id]).await? > 0)
    }

    fn join_cluster(&self, endpoint: &str) {
        *self.endpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some(endpoint.to_string());
        let (me, endpoint) = (self.me.clone(), endpoint.to_string());
        tokio::spawn(async move {
            if let Some(store) = me.upgrade() {
                if let Err(e) = store.heartbeat(&endpoint).await {
                    tracing::warn!("joining the cluster: {e}");
                }
            }
        });
    }

    async fn leave_cluster(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::Release);
        *self.endpoint.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let released = self.execute("UPDATE async_events SET owner = NULL, lease_until = NULL WHERE owner = $1", &[&self.node]).await;
        let _ = self.execute("DELETE FROM provisioned_allocations WHERE node = $1", &[&self.node]).await;
        let _ = self.execute("DELETE FROM stream_leases WHERE owner = $1", &[&self.node]).await;
        let left = match self.execute("DELETE FROM concurrency_shares WHERE node = $1", &[&self.node]).await {
            Ok(_) => self.execute("DELETE FROM cluster_nodes WHERE node = $1", &[&self.node]).await,
            Err(e) => Err(e),
        };
        match (released, left) {
            (Ok(n), Ok(_)) => tracing::info!("left the cluster; {n} async events handed back"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!("leaving the cluster: {e}"),
        }
    }

    fn shares_concurrency(&self) -> bool {
        true
    }

    /// This node's rows replace what it published before, in one transaction.
    async fn publish_provisioned(&self, mine: Vec<ProvisionedAllocation>) -> Result<(), StoreError> {
        let mut client = self.db.relaxed_client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("DELETE FROM provisioned_allocations WHERE node = $1", &[&self.node]).await.map_err(backend)?;
        let functions: Vec<&str> = mine.iter().map(|a| a.function.as_str()).collect();
        let qualifiers: Vec<&str> = mine.iter().map(|a| a.qualifier.as_str()).collect();
        let requested: Vec<i64> = mine.iter().map(|a| i64::from(a.requested)).collect();
        let allocated: Vec<i64> = mine.iter().map(|a| i64::from(a.allocated)).collect();
        let failures: Vec<Option<&str>> = mine.iter().map(|a| a.failure.as_deref()).collect();
        tx.execute(
            "INSERT INTO provisioned_allocations (node, function, qualifier, requested, allocated, failure)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])",
            &[&self.node, &functions, &qualifiers, &requested, &allocated, &failures],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// Sums over the live nodes (as [`Store::peers`] counts them).
    async fn provisioned_everywhere(&self) -> Result<Vec<ProvisionedAllocation>, StoreError> {
        let rows = self
            .rows_relaxed(
                &format!(
                    "SELECT a.function, a.qualifier, SUM(a.requested)::bigint, SUM(a.allocated)::bigint, MIN(a.failure)
                     FROM provisioned_allocations a JOIN cluster_nodes c ON c.node = a.node
                     WHERE c.heartbeat > {DB_NOW} - 3 * $1::bigint
                     GROUP BY a.function, a.qualifier"
                ),
                &[&self.lease_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProvisionedAllocation {
                function: r.get(0),
                qualifier: r.get(1),
                requested: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                allocated: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
                failure: r.get(4),
            })
            .collect())
    }

    /// Under a lock per pool (so two nodes cannot both take the last slots): what the other
    /// live nodes hold is subtracted from `limit`, and this node holds the rest, up to
    /// `want`. A dead node's shares lapse with its leases (three of them).
    async fn lease_concurrency(&self, pool: &str, want: u32, limit: u32) -> Result<u32, StoreError> {
        let mut client = self.db.relaxed_client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let lock = format!("nimbus-concurrency:{}:{pool}", self.db.schema());
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock]).await.map_err(backend)?;
        let others: i64 = tx
            .query_one(
                &format!(
                    "SELECT COALESCE(SUM(share), 0)::bigint FROM concurrency_shares WHERE pool = $1 AND node <> $2 AND until > {DB_NOW}"
                ),
                &[&pool, &self.node],
            )
            .await
            .map_err(backend)?
            .get(0);
        let grant = i64::from(want).min((i64::from(limit) - others).max(0));
        if grant == 0 {
            tx.execute("DELETE FROM concurrency_shares WHERE pool = $1 AND node = $2", &[&pool, &self.node]).await.map_err(backend)?;
        } else {
            tx.execute(
                &format!(
                    "INSERT INTO concurrency_shares (pool, node, share, until) VALUES ($1, $2, $3, {DB_NOW} + 3 * $4::bigint)
                     ON CONFLICT (pool, node) DO UPDATE SET share = $3, until = {DB_NOW} + 3 * $4::bigint"
                ),
                &[&pool, &self.node, &grant, &self.lease_ms],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(u32::try_from(grant).unwrap_or(0))
    }

    /// Members whose heartbeat is younger than three leases (renewals come every third of
    /// one); members silent for an hour are forgotten.
    async fn peers(&self) -> Result<Vec<Peer>, StoreError> {
        let rows = self
            .rows(
                &format!(
                    "SELECT c.node, c.endpoint, c.started, {DB_NOW} - c.heartbeat,
                            (SELECT count(*) FROM async_events a WHERE a.owner = c.node)
                     FROM cluster_nodes c WHERE c.heartbeat > {DB_NOW} - 3 * $1::bigint ORDER BY c.started, c.node"
                ),
                &[&self.lease_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let node: String = r.get(0);
                Peer {
                    this_node: node == self.node,
                    node,
                    endpoint: r.get(1),
                    started_ms: r.get(2),
                    heartbeat_age_ms: r.get(3),
                    async_events_held: r.get(4),
                }
            })
            .collect())
    }

    fn watch(&self, f: Arc<dyn Fn(StoreChange) + Send + Sync>) {
        let on = move |a: Announcement| match a {
            Announcement::Resync => f(StoreChange::Resync),
            Announcement::Change { table, key } => {
                if let Some(change) = change_of(&table, key) {
                    f(change)
                }
            }
        };
        tokio::spawn(crate::pg::listen(self.me.clone(), self.url.clone(), self.db.schema().to_string(), self.db.node().to_string(), on));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::testing::fresh_database;
    use crate::sealing::SealError;
    use crate::store_tests::{self, event, ids};
    use nimbus_model::LATEST;

    const ACCOUNT: &str = "000000000000";

    async fn open(url: &str, key: u8) -> Arc<PgStore> {
        PgStore::open(url, ACCOUNT, MasterKey::from_bytes([key; 32]), None).await.unwrap()
    }

    #[tokio::test]
    async fn create_update_list_delete() {
        let Some(url) = fresh_database().await else { return };
        store_tests::records(open(&url, 1).await.as_ref()).await;
    }

    #[tokio::test]
    async fn failed_calls_write_nothing() {
        let Some(url) = fresh_database().await else { return };
        store_tests::failed_calls_and_layers(open(&url, 1).await.as_ref()).await;
        // Another node (the same database) sees what was acknowledged.
        let other = open(&url, 1).await;
        assert_eq!(other.list_versions("a").await.unwrap().len(), 2);
        assert_eq!(other.get_function("a", LATEST).await.unwrap().unwrap().revision_id, "2");
    }

    #[tokio::test]
    async fn async_events_queue_and_retry() {
        let Some(url) = fresh_database().await else { return };
        let lease = Duration::from_millis(300);
        let s = PgStore::open_with_lease(&url, ACCOUNT, MasterKey::from_bytes([1; 32]), None, lease).await.unwrap();
        store_tests::async_queue(s.as_ref()).await;
        // After a restart (a new owner), what the old incarnation claimed comes back once its
        // lease lapses: nothing accepted is lost.
        drop(s);
        let s = open(&url, 1).await;
        assert_eq!(ids(s.due_events(100, 10).await.unwrap()), Vec::<String>::new(), "still leased");
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        assert_eq!(ids(s.due_events(100, 10).await.unwrap()), ["c", "a"]);
    }

    /// Two nodes on one database: an event claimed by one is not handed to the other while
    /// its holder lives (renewals keep the lease past its length), cannot be completed or
    /// rescheduled by the other (the fence), and is taken over once its holder is gone.
    #[tokio::test]
    async fn leases_hand_events_to_one_node_at_a_time() {
        let Some(url) = fresh_database().await else { return };
        let lease = Duration::from_millis(400);
        let node = || PgStore::open_with_lease(&url, ACCOUNT, MasterKey::from_bytes([2; 32]), None, lease);
        let (a, b) = (node().await.unwrap(), node().await.unwrap());
        assert_ne!(a.node(), b.node());
        for (i, id) in ["e1", "e2", "e3"].into_iter().enumerate() {
            a.enqueue_event(&event(id, i as i64)).await.unwrap();
        }
        assert_eq!(ids(a.due_events(100, 2).await.unwrap()), ["e1", "e2"]);
        assert_eq!(ids(b.due_events(100, 10).await.unwrap()), ["e3"]);
        // Past the lease's length, a's renewals keep its events.
        tokio::time::sleep(lease * 2).await;
        assert_eq!(ids(b.due_events(100, 10).await.unwrap()), ["e3"]);
        assert_eq!(b.next_event_due().await.unwrap(), Some(2));
        // b cannot finish or move what a holds.
        b.complete_event("e1").await.unwrap();
        b.reschedule_event(&AsyncEvent { not_before_ms: 0, attempts: 5, ..event("e2", 1) }).await.unwrap();
        assert_eq!(ids(a.due_events(100, 10).await.unwrap()), ["e1", "e2"]);
        assert_eq!(a.due_events(100, 10).await.unwrap()[1].attempts, 0);
        a.complete_event("e1").await.unwrap();
        // a dies: its renewals stop and e2 goes to b after the lease.
        drop(a);
        assert_eq!(ids(b.due_events(100, 10).await.unwrap()), ["e3"]);
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        assert_eq!(ids(b.due_events(100, 10).await.unwrap()), ["e2", "e3"]);
        b.complete_event("e2").await.unwrap();
        b.complete_event("e3").await.unwrap();
        assert_eq!(b.next_event_due().await.unwrap(), None);
    }

    /// A stream mapping's shard is one node's at a time: renewed while its holder lives,
    /// fenced (the other's checkpoint moves nothing), handed back at once, taken over after
    /// the lease when its holder dies.
    #[tokio::test]
    async fn a_shard_is_polled_by_one_node_at_a_time() {
        let Some(url) = fresh_database().await else { return };
        let lease = Duration::from_millis(400);
        let node = || PgStore::open_with_lease(&url, ACCOUNT, MasterKey::from_bytes([3; 32]), None, lease);
        let (a, b) = (node().await.unwrap(), node().await.unwrap());
        assert!(!a.claim_shard("m", "s0").await.unwrap(), "no such mapping: nothing to take");
        let mapping: EventSourceMapping = serde_json::from_value(serde_json::json!({
            "uuid": "m", "event_source_arn": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "function": "f",
            "qualifier": null, "enabled": true, "batch_size": 10, "maximum_batching_window_secs": 0,
            "report_batch_item_failures": false, "maximum_concurrency": null, "last_modified_ms": 0
        }))
        .unwrap();
        a.put_event_source_mapping(&mapping).await.unwrap();
        assert!(a.claim_shard("m", "s0").await.unwrap());
        assert!(a.claim_shard("m", "s0").await.unwrap(), "kept by its holder");
        assert!(!b.claim_shard("m", "s0").await.unwrap());
        assert!(b.claim_shard("m", "s1").await.unwrap(), "another shard is free");
        tokio::time::sleep(lease * 2).await;
        assert!(!b.claim_shard("m", "s0").await.unwrap(), "renewed past the lease's length");
        a.put_stream_checkpoint("m", "s0", "10").await.unwrap();
        assert!(matches!(b.put_stream_checkpoint("m", "s0", "99").await, Err(StoreError::Conflict)));
        assert_eq!(b.stream_checkpoints("m").await.unwrap(), [("s0".to_string(), "10".to_string())]);
        a.release_shard("m", "s0").await.unwrap();
        assert!(b.claim_shard("m", "s0").await.unwrap(), "handed back");
        assert!(matches!(a.put_stream_checkpoint("m", "s0", "11").await, Err(StoreError::Conflict)));
        // b dies: after the lease a takes both shards.
        drop(b);
        assert!(!a.claim_shard("m", "s1").await.unwrap());
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        assert!(a.claim_shard("m", "s0").await.unwrap());
        assert!(a.claim_shard("m", "s1").await.unwrap());
        a.release_shards("m").await.unwrap();
        let c = node().await.unwrap();
        assert!(c.claim_shard("m", "s0").await.unwrap(), "handed back with its mapping's pollers");
        assert!(c.claim_shard("m", "s1").await.unwrap());
        c.leave_cluster().await;
        assert!(!c.claim_shard("m", "s2").await.unwrap(), "a leaving node takes nothing");
    }

    /// Each node hears of the others' changes (not of its own), in commit order; after its
    /// feed is cut it hears `Resync` and then the changes again.
    #[tokio::test]
    async fn nodes_hear_each_others_changes() {
        let Some(url) = fresh_database().await else { return };
        let (a, b) = (open(&url, 3).await, open(&url, 3).await);
        let heard = |s: &PgStore| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            s.watch(Arc::new(move |c| {
                let _ = tx.send(c);
            }));
            rx
        };
        let (mut at_a, mut at_b) = (heard(&a), heard(&b));
        // The feeds LISTEN once they are connected: wait for both.
        let listening = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()";
        let admin = a.db.client().await.unwrap();
        for _ in 0..100 {
            if admin.query_one(listening, &[]).await.unwrap().get::<_, i64>(0) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        a.create_function(&store_tests::cfg("x", "1")).await.unwrap();
        assert_eq!(next(&mut at_b).await, StoreChange::Function("x".into()));
        b.put_alias(
            &AliasConfig {
                function_name: "x".into(),
                name: "live".into(),
                function_version: LATEST.into(),
                description: String::new(),
                additional_version: None,
                revision_id: "r".into(),
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(next(&mut at_a).await, StoreChange::Aliases("x".into()), "a hears b's alias, not its own create");
        // b's feed is cut: it resyncs, then hears changes again.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND application_name LIKE $1",
                &[&format!("nimbus-{}/feed-%", b.node())],
            )
            .await
            .unwrap();
        assert_eq!(next(&mut at_b).await, StoreChange::Resync);
        a.delete_function("x").await.unwrap();
        let mut after = vec![next(&mut at_b).await, next(&mut at_b).await];
        after.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(after, [StoreChange::Aliases("x".into()), StoreChange::Function("x".into())]);
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<StoreChange>) -> StoreChange {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a change within 5 s").expect("feed open")
    }

    /// Joined nodes see each other with their heartbeats and held events; a node that
    /// stops heartbeating drops out after three leases.
    #[tokio::test]
    async fn members_see_each_other() {
        let Some(url) = fresh_database().await else { return };
        let lease = Duration::from_millis(300);
        let node = || PgStore::open_with_lease(&url, ACCOUNT, MasterKey::from_bytes([7; 32]), None, lease);
        let (a, b) = (node().await.unwrap(), node().await.unwrap());
        assert_eq!(a.peers().await.unwrap(), vec![], "nobody joined");
        a.join_cluster("http://10.0.0.1:9001");
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.join_cluster("http://10.0.0.2:9001");
        a.enqueue_event(&event("e1", 1)).await.unwrap();
        assert_eq!(ids(b.due_events(10, 10).await.unwrap()), ["e1"]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let seen = a.peers().await.unwrap();
        let brief: Vec<_> = seen.iter().map(|p| (p.endpoint.as_str(), p.this_node, p.async_events_held)).collect();
        assert_eq!(brief, [("http://10.0.0.1:9001", true, 0), ("http://10.0.0.2:9001", false, 1)]);
        assert!(seen.iter().all(|p| p.heartbeat_age_ms < 1000), "{seen:?}");
        // b stops: its event goes back at once, and it is no longer a member.
        b.leave_cluster().await;
        assert_eq!(ids(b.due_events(10, 10).await.unwrap()), Vec::<String>::new(), "a leaving node claims nothing");
        assert_eq!(ids(a.due_events(10, 10).await.unwrap()), ["e1"]);
        let left: Vec<_> = a.peers().await.unwrap().into_iter().map(|p| p.endpoint).collect();
        assert_eq!(left, ["http://10.0.0.1:9001"]);
        // A node that just dies drops out after three leases.
        let c = node().await.unwrap();
        c.join_cluster("http://10.0.0.3:9001");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(a.peers().await.unwrap().len(), 2);
        drop(c);
        tokio::time::sleep(lease * 3 + Duration::from_millis(200)).await;
        let left: Vec<_> = a.peers().await.unwrap().into_iter().map(|p| p.endpoint).collect();
        assert_eq!(left, ["http://10.0.0.1:9001"]);
    }

    /// Nodes' shares of one limit never add up past it; given back, a share goes to another
    /// node; a dead node's lapses after three leases; pools are apart.
    #[tokio::test]
    async fn concurrency_shares_add_up_to_the_limit() {
        let Some(url) = fresh_database().await else { return };
        let lease = Duration::from_millis(200);
        let node = || PgStore::open_with_lease(&url, ACCOUNT, MasterKey::from_bytes([8; 32]), None, lease);
        let (a, b) = (node().await.unwrap(), node().await.unwrap());
        assert_eq!(a.lease_concurrency("fn:f", 3, 5).await.unwrap(), 3);
        assert_eq!(b.lease_concurrency("fn:f", 4, 5).await.unwrap(), 2, "only what a leaves");
        assert_eq!(b.lease_concurrency("fn:g", 4, 5).await.unwrap(), 4, "another pool");
        // Asked at once, the last slots go to one of them only.
        assert_eq!(a.lease_concurrency("fn:f", 1, 5).await.unwrap(), 1);
        let (x, y) = tokio::join!(a.lease_concurrency("fn:f", 3, 5), b.lease_concurrency("fn:f", 4, 5));
        assert!(x.unwrap() + y.unwrap() <= 5);
        // Given back: the other may take it.
        assert_eq!(a.lease_concurrency("fn:f", 0, 5).await.unwrap(), 0);
        assert_eq!(b.lease_concurrency("fn:f", 5, 5).await.unwrap(), 5);
        // b dies holding 5 (its renewals keep them while it lives): a gets them after 3 leases.
        tokio::time::sleep(lease * 4).await;
        assert_eq!(a.lease_concurrency("fn:f", 5, 5).await.unwrap(), 0, "b's renewed shares hold");
        drop(b);
        tokio::time::sleep(lease * 3 + Duration::from_millis(200)).await;
        assert_eq!(a.lease_concurrency("fn:f", 5, 5).await.unwrap(), 5);
    }

    /// Sealed in the database, opened on read; a node with another master key is refused.
    #[tokio::test]
    async fn environments_are_sealed_and_nodes_share_one_key() {
        let Some(url) = fresh_database().await else { return };
        let s = open(&url, 5).await;
        let mut c = store_tests::cfg("f", "1");
        c.environment.insert("SECRET".into(), "plain-needle-1".into());
        s.create_function(&c).await.unwrap();
        assert_eq!(s.get_function("f", LATEST).await.unwrap().unwrap().environment["SECRET"], "plain-needle-1");
        let raw: String = s.db.client().await.unwrap().query_one("SELECT config FROM functions", &[]).await.unwrap().get(0);
        assert!(!raw.contains("plain-needle-1") && raw.contains("sealed_environment"), "{raw}");
        let other = PgStore::open(&url, ACCOUNT, MasterKey::from_bytes([6; 32]), None).await;
        assert!(matches!(other, Err(StoreError::Sealing(SealError::WrongMasterKey))));
    }
}
