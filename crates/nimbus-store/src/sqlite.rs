//! The embedded [`Store`]: one SQLite file (`nimbus.db`) in WAL mode, owned by its
//! [`GroupCommit`] writer thread: every call, read or write, is a job on that thread, so no
//! SQLite call runs on an async worker and concurrent writes (async accepts) share commits.
//! Nothing on the invoke path reads from here.

use std::path::Path;
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
use rusqlite::{params, Connection, OptionalExtension};

use crate::function_doc::Sealer;
use crate::group_commit::GroupCommit;
use crate::sealing::{KeyWrapper, MasterKey};
use crate::{Store, StoreError};

pub struct SqliteStore {
    db: GroupCommit,
    sealer: Sealer,
}

/// `nimbus.db`: functions and everything that hangs off them.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    name: "function",
    migrations: &[
        // 1: the schema of the first release (2026-11).
        "
CREATE TABLE IF NOT EXISTS functions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    revision TEXT NOT NULL,
    code_digest TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS functions_digest ON functions(code_digest);
CREATE TABLE IF NOT EXISTS aliases (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    revision TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS async_events (
    request_id TEXT PRIMARY KEY,
    not_before INTEGER NOT NULL,
    enqueued INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS async_events_due ON async_events(not_before, enqueued);
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE IF NOT EXISTS function_urls (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    url_id TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE IF NOT EXISTS event_source_mappings (
    uuid TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS provisioned_configs (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE IF NOT EXISTS layer_names (
    name TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    code_digest TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
",
        // 2: code signing configs (2026-12).
        "
CREATE TABLE code_signing_configs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
",
        // 3: environment variables sealed at rest (2026-12). The check value of the master
        // key the records are sealed under; `SqliteStore::open` then seals every record an
        // earlier release left in plain text (it needs the key, so it is not SQL).
        "
CREATE TABLE sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BLOB NOT NULL
);
",
        // 4: stream event-source mappings' checkpoints, one per mapping and shard (2026-12).
        "
CREATE TABLE IF NOT EXISTS stream_checkpoints (
    mapping TEXT NOT NULL,
    shard TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (mapping, shard)
);
",
    ],
};

impl Sealer {
    fn docs(&self, conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<FunctionConfig>, StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |row| row.get::<_, String>(0))?;
        rows.map(|json| self.decode(&json?)).collect()
    }

    fn doc(&self, conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<FunctionConfig>, StoreError> {
        let json: Option<String> = conn.query_row(sql, params, |row| row.get(0)).optional()?;
        json.map(|j| self.decode(&j)).transpose()
    }

    /// At open: checks the master key against the database's check value (recording it on
    /// the first open), then seals every record still holding plain-text variables. In one
    /// transaction; then the file is rewritten and the WAL truncated, so no plain text stays
    /// behind.
    fn seal_at_rest(&self, conn: &mut Connection) -> Result<(), StoreError> {
        let tx = conn.transaction()?;
        crate::sealing::check_database_key(&tx, &self.master)?;
        let plain: Vec<(String, String, String)> = {
            let mut stmt = tx.prepare("SELECT name, version, config FROM functions")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut sealed = 0;
        for (name, version, json) in plain {
            let doc: serde_json::Value = serde_json::from_str(&json).map_err(|e| StoreError::Backend(e.to_string()))?;
            if doc.get("environment").is_none() {
                continue;
            }
            let config = self.decode(&json)?;
            tx.execute("UPDATE functions SET config = ?3 WHERE name = ?1 AND version = ?2", params![name, version, self.encode(&config)?])?;
            sealed += 1;
        }
        tx.commit()?;
        if sealed > 0 {
            crate::sealing::scrub_freed_pages(conn)?;
            tracing::info!("sealed the environment variables of {sealed} function records written by an earlier release");
        }
        Ok(())
    }
}
/// The SQLite backend's failures are the store's backend errors.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `nimbus.db`, checks that `master` is the key its records
    /// are sealed under ([`crate::sealing::SealError::WrongMasterKey`] if not), seals what an
    /// earlier release left in plain text, and starts its writer thread.
    pub fn open(path: &Path, master: MasterKey) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_at(Some(path), master, None)
    }

    /// [`SqliteStore::open`] with Nimbus's KMS wrapping the data keys of functions that
    /// name a `KMSKeyArn`.
    pub fn open_with_kms(path: &Path, master: MasterKey, kms: Arc<dyn KeyWrapper>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_at(Some(path), master, Some(kms))
    }

    /// An in-memory store sealing under a random key (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::open_at(None, MasterKey::generate(), None)
    }

    fn open_at(path: Option<&Path>, master: MasterKey, kms: Option<Arc<dyn KeyWrapper>>) -> Result<SqliteStore, StoreError> {
        let sealer = Sealer { master: Arc::new(master), kms };
        let db = GroupCommit::open_prepared(path, &SCHEMA, |conn| sealer.seal_at_rest(conn), StoreError::Backend)?;
        Ok(SqliteStore { db, sealer })
    }

    /// Runs `f` on the writer thread inside the next group's transaction (in a savepoint of
    /// its own: an error undoes what `f` wrote) and answers once that group has committed.
    /// These commits skip the fsync (`synchronous=NORMAL`: in WAL mode a commit survives a
    /// crash of the process); only accepted async events ask for one ([`SqliteStore::durably`]).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.db.run(false, f, StoreError::Backend).await
    }

    /// [`SqliteStore::with`], answered only once the group's commit is on disk (fsync'd:
    /// it survives a crash of the machine too). Concurrent callers share one fsync.
    async fn durably<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.db.run(true, f, StoreError::Backend).await
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(json: String) -> rusqlite::Result<T> {
    serde_json::from_str(&json).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// The rows of a query whose first column is a JSON document.
fn query_docs<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| decode_json(row.get(0)?))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The document of the row a query finds, if any.
fn query_doc<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<T>, StoreError> {
    Ok(conn.query_row(sql, params, |row| decode_json(row.get(0)?)).optional()?)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_function(&self, c: &FunctionConfig) -> Result<(), StoreError> {
        let (c, json) = (c.clone(), self.sealer.encode(c)?);
        self.with(move |conn| {
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO functions (name, version, revision, code_digest, code_size, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.name, c.version, c.revision_id, c.code_digest, c.code_size as i64, json],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn update_function(&self, c: &FunctionConfig, expected_revision: &str) -> Result<(), StoreError> {
        let (c, json, expected) = (c.clone(), self.sealer.encode(c)?, expected_revision.to_string());
        self.with(move |conn| {
            let changed = conn.execute(
                "UPDATE functions SET revision = ?3, code_digest = ?4, code_size = ?5, config = ?6 WHERE name = ?1 AND version = ?2 AND revision = ?7",
                params![c.name, c.version, c.revision_id, c.code_digest, c.code_size as i64, json, expected],
            )?;
            if changed == 0 {
                let exists: bool = conn.query_row(
                    "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1 AND version = ?2)",
                    params![c.name, c.version],
                    |r| r.get(0),
                )?;
                return Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound });
            }
            Ok(())
        })
        .await
    }

    async fn get_function(&self, name: &str, version: &str) -> Result<Option<FunctionConfig>, StoreError> {
        let (name, version) = (name.to_string(), version.to_string());
        let sealer = self.sealer.clone();
        self.with(move |conn| sealer.doc(conn, "SELECT config FROM functions WHERE name = ?1 AND version = ?2", params![name, version]))
            .await
    }

    async fn list_functions(&self, version: &str, after: Option<&str>, limit: usize) -> Result<Vec<FunctionConfig>, StoreError> {
        let (version, after) = (version.to_string(), after.unwrap_or("").to_string());
        let sealer = self.sealer.clone();
        self.with(move |conn| {
            sealer.docs(
                conn,
                "SELECT config FROM functions WHERE version = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
                params![version, after, limit as i64],
            )
        })
        .await
    }

    async fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with(move |conn| {
            let n = conn.execute("DELETE FROM functions WHERE name = ?1", params![name])?;
            conn.execute("DELETE FROM aliases WHERE function = ?1", params![name])?;
            conn.execute("DELETE FROM event_invoke_configs WHERE function = ?1", params![name])?;
            conn.execute("DELETE FROM function_urls WHERE function = ?1", params![name])?;
            conn.execute("DELETE FROM provisioned_configs WHERE function = ?1", params![name])?;
            Ok(n > 0)
        })
        .await
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        self.with(|conn| {
            Ok(conn.query_row("SELECT COALESCE(SUM(code_size), 0), COUNT(DISTINCT name) FROM functions", [], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })?)
        })
        .await
    }

    async fn publish_version(&self, latest: &FunctionConfig, expected_revision: &str, version: &FunctionConfig) -> Result<(), StoreError> {
        let (latest_json, version_json) = (self.sealer.encode(latest)?, self.sealer.encode(version)?);
        let (latest, version, expected) = (latest.clone(), version.clone(), expected_revision.to_string());
        // Both rows or neither: an error rolls the job's savepoint back.
        self.with(move |conn| {
            let changed = conn.execute(
                "UPDATE functions SET revision = ?3, config = ?4 WHERE name = ?1 AND version = ?2 AND revision = ?5",
                params![latest.name, latest.version, latest.revision_id, latest_json, expected],
            )?;
            if changed == 0 {
                return Err(StoreError::RevisionMismatch);
            }
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO functions (name, version, revision, code_digest, code_size, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![version.name, version.version, version.revision_id, version.code_digest, version.code_size as i64, version_json],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionConfig>, StoreError> {
        let name = name.to_string();
        let sealer = self.sealer.clone();
        self.with(move |conn| {
            sealer.docs(
                conn,
                "SELECT config FROM functions WHERE name = ?1 ORDER BY CASE WHEN version = '$LATEST' THEN -1 ELSE CAST(version AS INTEGER) END",
                params![name],
            )
        })
        .await
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let (name, version) = (name.to_string(), version.to_string());
        self.with(move |conn| Ok(conn.execute("DELETE FROM functions WHERE name = ?1 AND version = ?2", params![name, version])? > 0)).await
    }

    async fn put_alias(&self, alias: &AliasConfig, expected_revision: Option<&str>) -> Result<(), StoreError> {
        let json = serde_json::to_string(alias).expect("alias serializes");
        let (a, expected) = (alias.clone(), expected_revision.map(str::to_string));
        self.with(move |conn| {
            let changed = match &expected {
                None => conn.execute(
                    "INSERT OR IGNORE INTO aliases (function, name, revision, config) VALUES (?1, ?2, ?3, ?4)",
                    params![a.function_name, a.name, a.revision_id, json],
                )?,
                Some(rev) => conn.execute(
                    "UPDATE aliases SET revision = ?3, config = ?4 WHERE function = ?1 AND name = ?2 AND revision = ?5",
                    params![a.function_name, a.name, a.revision_id, json, rev],
                )?,
            };
            match (changed, expected) {
                (0, None) => Err(StoreError::Conflict),
                (0, Some(_)) => {
                    let exists: bool = conn.query_row(
                        "SELECT EXISTS(SELECT 1 FROM aliases WHERE function = ?1 AND name = ?2)",
                        params![a.function_name, a.name],
                        |r| r.get(0),
                    )?;
                    Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound })
                }
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasConfig>, StoreError> {
        let (function, name) = (function.to_string(), name.to_string());
        self.with(move |conn| query_doc(conn, "SELECT config FROM aliases WHERE function = ?1 AND name = ?2", params![function, name]))
            .await
    }

    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasConfig>, StoreError> {
        let function = function.to_string();
        self.with(move |conn| query_docs(conn, "SELECT config FROM aliases WHERE function = ?1 ORDER BY name", params![function])).await
    }

    async fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        let (function, name) = (function.to_string(), name.to_string());
        self.with(move |conn| Ok(conn.execute("DELETE FROM aliases WHERE function = ?1 AND name = ?2", params![function, name])? > 0)).await
    }

    async fn publish_layer_version(&self, layer: &LayerVersion) -> Result<u64, StoreError> {
        let mut record = layer.clone();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO layer_names (name, last_version) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1",
                params![record.layer_name],
            )?;
            let version: i64 =
                conn.query_row("SELECT last_version FROM layer_names WHERE name = ?1", params![record.layer_name], |r| r.get(0))?;
            record.version = version as u64;
            conn.execute(
                "INSERT INTO layer_versions (name, version, code_digest, config) VALUES (?1, ?2, ?3, ?4)",
                params![record.layer_name, version, record.code_digest, serde_json::to_string(&record).expect("layer serializes")],
            )?;
            Ok(version as u64)
        })
        .await
    }

    async fn get_layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError> {
        let name = name.to_string();
        self.with(move |conn| {
            query_doc(conn, "SELECT config FROM layer_versions WHERE name = ?1 AND version = ?2", params![name, version as i64])
        })
        .await
    }

    async fn list_layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, StoreError> {
        let name = name.to_string();
        self.with(move |conn| query_docs(conn, "SELECT config FROM layer_versions WHERE name = ?1 ORDER BY version DESC", params![name]))
            .await
    }

    async fn list_layer_names(&self) -> Result<Vec<String>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT DISTINCT name FROM layer_versions ORDER BY name")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn update_layer_version(&self, layer: &LayerVersion, expected_policy_revision: &str) -> Result<(), StoreError> {
        let (layer, expected) = (layer.clone(), expected_policy_revision.to_string());
        // Read and write in one job: nothing can change the record in between.
        self.with(move |conn| {
            let current: LayerVersion = query_doc(
                conn,
                "SELECT config FROM layer_versions WHERE name = ?1 AND version = ?2",
                params![layer.layer_name, layer.version as i64],
            )?
            .ok_or(StoreError::NotFound)?;
            if current.policy_revision != expected {
                return Err(StoreError::RevisionMismatch);
            }
            let json = serde_json::to_string(&layer).expect("layer serializes");
            conn.execute(
                "UPDATE layer_versions SET config = ?3 WHERE name = ?1 AND version = ?2",
                params![layer.layer_name, layer.version as i64, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with(move |conn| {
            Ok(conn.execute("DELETE FROM layer_versions WHERE name = ?1 AND version = ?2", params![name, version as i64])? > 0)
        })
        .await
    }

    async fn digest_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        // Function records name their layers' digests inside their JSON.
        let (pattern, digest) = (format!("%{digest}%"), digest.to_string());
        self.with(move |conn| {
            Ok(conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = ?1 OR config LIKE ?2) OR EXISTS(SELECT 1 FROM layer_versions WHERE code_digest = ?1)",
                params![digest, pattern],
                |row| row.get(0),
            )?)
        })
        .await
    }

    async fn enqueue_event(&self, e: &AsyncEvent) -> Result<(), StoreError> {
        let json = serde_json::to_string(e).expect("event serializes");
        let (id, not_before, enqueued) = (e.request_id.clone(), e.not_before_ms, e.enqueued_ms);
        self.durably(move |conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO async_events (request_id, not_before, enqueued, event) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![id, not_before, enqueued, json])?;
            Ok(())
        })
        .await
    }

    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError> {
        self.with(move |conn| {
            query_docs(
                conn,
                "SELECT event FROM async_events WHERE not_before <= ?1 ORDER BY not_before, enqueued LIMIT ?2",
                params![now_ms, limit as i64],
            )
        })
        .await
    }

    async fn next_event_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(|conn| Ok(conn.query_row("SELECT MIN(not_before) FROM async_events", [], |row| row.get(0))?)).await
    }

    async fn reschedule_event(&self, e: &AsyncEvent) -> Result<(), StoreError> {
        // Serialized here, on the caller's thread, rather than read back and rewritten on
        // the writer's: the dispatcher's copy is the stored one with the new schedule.
        let json = serde_json::to_string(e).expect("event serializes");
        let (id, not_before) = (e.request_id.clone(), e.not_before_ms);
        self.with(move |conn| {
            conn.prepare_cached("UPDATE async_events SET not_before = ?2, event = ?3 WHERE request_id = ?1")?
                .execute(params![id, not_before, json])?;
            Ok(())
        })
        .await
    }

    async fn complete_event(&self, request_id: &str) -> Result<(), StoreError> {
        let request_id = request_id.to_string();
        self.with(move |conn| {
            conn.prepare_cached("DELETE FROM async_events WHERE request_id = ?1")?.execute(params![request_id])?;
            Ok(())
        })
        .await
    }

    async fn put_event_invoke_config(&self, c: &EventInvokeConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("config serializes");
        let (function, qualifier) = (c.function.clone(), c.qualifier.clone());
        self.with(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO event_invoke_configs (function, qualifier, config) VALUES (?1, ?2, ?3)",
                params![function, qualifier, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<Option<EventInvokeConfig>, StoreError> {
        let (function, qualifier) = (function.to_string(), qualifier.to_string());
        self.with(move |conn| {
            query_doc(conn, "SELECT config FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])
        })
        .await
    }

    async fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<EventInvokeConfig>, StoreError> {
        let function = function.to_string();
        self.with(move |conn| {
            query_docs(conn, "SELECT config FROM event_invoke_configs WHERE function = ?1 ORDER BY qualifier", params![function])
        })
        .await
    }

    async fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let (function, qualifier) = (function.to_string(), qualifier.to_string());
        self.with(move |conn| {
            Ok(conn.execute("DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])? > 0)
        })
        .await
    }

    async fn put_function_url(&self, c: &FunctionUrlConfig, create: bool) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("url config serializes");
        let (function, qualifier, url_id) = (c.function.clone(), c.qualifier.clone().unwrap_or_default(), c.url_id.clone());
        self.with(move |conn| {
            let n = if create {
                conn.execute(
                    "INSERT OR IGNORE INTO function_urls (function, qualifier, url_id, config) VALUES (?1, ?2, ?3, ?4)",
                    params![function, qualifier, url_id, json],
                )?
            } else {
                conn.execute(
                    "UPDATE function_urls SET config = ?3 WHERE function = ?1 AND qualifier = ?2",
                    params![function, qualifier, json],
                )?
            };
            match (n, create) {
                (0, true) => Err(StoreError::Conflict),
                (0, false) => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<Option<FunctionUrlConfig>, StoreError> {
        let (function, qualifier) = (function.to_string(), qualifier.unwrap_or("").to_string());
        self.with(move |conn| {
            query_doc(conn, "SELECT config FROM function_urls WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])
        })
        .await
    }

    async fn get_function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlConfig>, StoreError> {
        let url_id = url_id.to_string();
        self.with(move |conn| query_doc(conn, "SELECT config FROM function_urls WHERE url_id = ?1", params![url_id])).await
    }

    async fn list_function_urls(&self, function: &str) -> Result<Vec<FunctionUrlConfig>, StoreError> {
        let function = function.to_string();
        self.with(move |conn| {
            query_docs(conn, "SELECT config FROM function_urls WHERE function = ?1 ORDER BY qualifier", params![function])
        })
        .await
    }

    async fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<bool, StoreError> {
        let (function, qualifier) = (function.to_string(), qualifier.unwrap_or("").to_string());
        self.with(move |conn| {
            Ok(conn.execute("DELETE FROM function_urls WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])? > 0)
        })
        .await
    }

    async fn put_event_source_mapping(&self, m: &EventSourceMapping) -> Result<(), StoreError> {
        let json = serde_json::to_string(m).expect("mapping serializes");
        let (uuid, created) = (m.uuid.clone(), m.last_modified_ms);
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO event_source_mappings (uuid, created, config) VALUES (?1, ?2, ?3) ON CONFLICT(uuid) DO UPDATE SET config = ?3",
                params![uuid, created, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_event_source_mapping(&self, uuid: &str) -> Result<Option<EventSourceMapping>, StoreError> {
        let uuid = uuid.to_string();
        self.with(move |conn| query_doc(conn, "SELECT config FROM event_source_mappings WHERE uuid = ?1", params![uuid])).await
    }

    async fn list_event_source_mappings(&self) -> Result<Vec<EventSourceMapping>, StoreError> {
        self.with(|conn| query_docs(conn, "SELECT config FROM event_source_mappings ORDER BY created, uuid", [])).await
    }

    async fn delete_event_source_mapping(&self, uuid: &str) -> Result<bool, StoreError> {
        let uuid = uuid.to_string();
        self.with(move |conn| Ok(conn.execute("DELETE FROM event_source_mappings WHERE uuid = ?1", params![uuid])? > 0)).await
    }

    async fn put_stream_checkpoint(&self, mapping: &str, shard: &str, position: &str) -> Result<(), StoreError> {
        let (mapping, shard, position) = (mapping.to_string(), shard.to_string(), position.to_string());
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO stream_checkpoints (mapping, shard, position) VALUES (?1, ?2, ?3) ON CONFLICT(mapping, shard) DO UPDATE SET position = ?3",
                params![mapping, shard, position],
            )?;
            Ok(())
        })
        .await
    }

    async fn stream_checkpoints(&self, mapping: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mapping = mapping.to_string();
        self.with(move |conn| {
            let mut st = conn.prepare("SELECT shard, position FROM stream_checkpoints WHERE mapping = ?1 ORDER BY shard")?;
            let rows = st.query_map(params![mapping], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn delete_stream_checkpoints(&self, mapping: &str) -> Result<(), StoreError> {
        let mapping = mapping.to_string();
        self.with(move |conn| {
            conn.execute("DELETE FROM stream_checkpoints WHERE mapping = ?1", params![mapping])?;
            Ok(())
        })
        .await
    }

    async fn put_provisioned_config(&self, c: &ProvisionedConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("provisioned config serializes");
        let (function, qualifier) = (c.function.clone(), c.qualifier.clone());
        self.with(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO provisioned_configs (function, qualifier, config) VALUES (?1, ?2, ?3)",
                params![function, qualifier, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_provisioned_configs(&self, function: Option<&str>) -> Result<Vec<ProvisionedConfig>, StoreError> {
        let function = function.map(str::to_string);
        self.with(move |conn| {
            query_docs(
                conn,
                "SELECT config FROM provisioned_configs WHERE ?1 IS NULL OR function = ?1 ORDER BY function, qualifier",
                params![function],
            )
        })
        .await
    }

    async fn delete_provisioned_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let (function, qualifier) = (function.to_string(), qualifier.to_string());
        self.with(move |conn| {
            Ok(conn.execute("DELETE FROM provisioned_configs WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])? > 0)
        })
        .await
    }

    async fn put_code_signing_config(&self, c: &CodeSigningConfig, create: bool) -> Result<(), StoreError> {
        let (id, json) = (c.id.clone(), serde_json::to_string(c).expect("code signing config serializes"));
        self.with(move |conn| {
            let n = if create {
                conn.execute("INSERT OR IGNORE INTO code_signing_configs (id, config) VALUES (?1, ?2)", params![id, json])?
            } else {
                conn.execute("UPDATE code_signing_configs SET config = ?2 WHERE id = ?1", params![id, json])?
            };
            match (n, create) {
                (0, true) => Err(StoreError::Conflict),
                (0, false) => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_code_signing_config(&self, id: &str) -> Result<Option<CodeSigningConfig>, StoreError> {
        let id = id.to_string();
        self.with(move |conn| query_doc(conn, "SELECT config FROM code_signing_configs WHERE id = ?1", params![id])).await
    }

    async fn list_code_signing_configs(&self, after: Option<&str>, limit: usize) -> Result<Vec<CodeSigningConfig>, StoreError> {
        let after = after.unwrap_or("").to_string();
        self.with(move |conn| {
            query_docs(conn, "SELECT config FROM code_signing_configs WHERE id > ?1 ORDER BY id LIMIT ?2", params![after, limit as i64])
        })
        .await
    }

    async fn delete_code_signing_config(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |conn| Ok(conn.execute("DELETE FROM code_signing_configs WHERE id = ?1", params![id])? > 0)).await
    }

    async fn code_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        let digest = digest.to_string();
        self.with(move |conn| {
            Ok(conn.query_row("SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = ?1)", params![digest], |row| row.get(0))?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_tests::{self, cfg};
    use nimbus_model::LATEST;

    #[tokio::test]
    async fn create_update_list_delete() {
        store_tests::records(&SqliteStore::in_memory().unwrap()).await;
    }

    /// A call that fails after writing leaves nothing behind (its job's savepoint is rolled
    /// back), even when other calls commit in the same group.
    #[tokio::test]
    async fn failed_calls_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("nimbus.db"), MasterKey::from_bytes([3; 32])).unwrap();
        store_tests::failed_calls_and_layers(&s).await;
        // Reopened: what was acknowledged is there.
        drop(s);
        let s = SqliteStore::open(&dir.path().join("nimbus.db"), MasterKey::from_bytes([3; 32])).unwrap();
        assert_eq!(s.list_versions("a").await.unwrap().len(), 2);
        assert_eq!(s.get_function("a", LATEST).await.unwrap().unwrap().revision_id, cfg("a", "2").revision_id);
    }

    /// The async queue: due order, a retry stored from the dispatcher's copy, a finished
    /// event's late retry ignored, and accepted events still there after a reopen.
    #[tokio::test]
    async fn async_events_queue_and_retry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nimbus.db");
        let s = SqliteStore::open(&path, MasterKey::from_bytes([4; 32])).unwrap();
        store_tests::async_queue(&s).await;
        drop(s);
        let s = SqliteStore::open(&path, MasterKey::from_bytes([4; 32])).unwrap();
        assert_eq!(store_tests::ids(s.due_events(100, 10).await.unwrap()), ["c", "a"]);
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;
    use crate::sealing::SealError;
    use nimbus_model::{Runtime, LATEST};

    fn with_env(name: &str, version: &str, value: &str) -> FunctionConfig {
        let mut c: FunctionConfig = serde_json::from_value(serde_json::json!({
            "name": name, "version": version, "runtime": Runtime::Python311.id(), "role": "r", "handler": "h.h",
            "timeout_secs": 3, "memory_mb": 128, "ephemeral_storage_mb": 512, "code_digest": "ab", "code_size": 1,
            "code_unzipped_size": 1, "last_modified_ms": 0, "revision_id": "1"
        }))
        .expect("config");
        c.environment.insert("SECRET".into(), value.into());
        c
    }

    fn file_bytes(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read dir") {
            all.extend(std::fs::read(entry.expect("entry").path()).unwrap_or_default());
        }
        all
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Sealed on disk, opened on read; another key is refused at open; plain-text records of
    /// an earlier release are sealed at open.
    #[tokio::test]
    async fn environments_are_sealed_at_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nimbus.db");
        let key = MasterKey::from_bytes([5; 32]);
        {
            let s = SqliteStore::open(&path, key.clone()).expect("open");
            s.create_function(&with_env("f", LATEST, "plain-needle-1")).await.expect("create");
            let latest = with_env("f", LATEST, "plain-needle-1");
            s.publish_version(&latest, "1", &with_env("f", "1", "plain-needle-1")).await.expect("publish");
            let got = s.get_function("f", "1").await.expect("get").expect("some");
            assert_eq!(got.environment["SECRET"], "plain-needle-1");
        }
        assert!(!contains(&file_bytes(dir.path()), "plain-needle-1"));
        assert!(matches!(SqliteStore::open(&path, MasterKey::from_bytes([6; 32])), Err(StoreError::Sealing(SealError::WrongMasterKey))));

        // A record written in plain text (as by an earlier release) is sealed at the next open.
        {
            let conn = Connection::open(&path).expect("raw open");
            let plain = serde_json::to_string(&with_env("g", LATEST, "plain-needle-2")).expect("json");
            conn.execute(
                "INSERT INTO functions (name, version, revision, code_digest, code_size, config) VALUES ('g', '$LATEST', '1', 'ab', 1, ?1)",
                params![plain],
            )
            .expect("insert");
        }
        let s = SqliteStore::open(&path, key).expect("reopen");
        assert_eq!(s.get_function("g", LATEST).await.expect("get").expect("some").environment["SECRET"], "plain-needle-2");
        assert_eq!(s.list_versions("f").await.expect("versions").len(), 2);
        drop(s);
        assert!(!contains(&file_bytes(dir.path()), "plain-needle-2"));
    }
}
