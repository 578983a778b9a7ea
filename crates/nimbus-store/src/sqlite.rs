//! The embedded [`Store`]: one SQLite file in WAL mode. Calls are short and run under a
//! mutex on the caller's thread; nothing on the invoke path reads from here.

use std::path::Path;
use std::sync::Mutex;

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

use crate::{Store, StoreError};

pub struct SqliteStore {
    conn: Mutex<Connection>,
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
    ],
};
fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = crate::db::open(path, &SCHEMA, crate::db::Durability::Normal).map_err(StoreError::Backend)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = crate::db::open_in_memory(&SCHEMA).map_err(StoreError::Backend)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// Runs `f` on the connection. SQLite blocks, so on a multi-threaded runtime this runs
    /// under `block_in_place`: the worker hands its other tasks to the rest of the pool
    /// first, and no async task waits behind a disk write (a current-thread runtime, as in
    /// unit tests, just runs it).
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let run = || {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(backend)
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}

fn decode(json: String) -> rusqlite::Result<FunctionConfig> {
    serde_json::from_str(&json).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn decode_alias(json: String) -> rusqlite::Result<AliasConfig> {
    decode_json(json)
}

fn decode_json<T: serde::de::DeserializeOwned>(json: String) -> rusqlite::Result<T> {
    serde_json::from_str(&json).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn encode(config: &FunctionConfig) -> String {
    serde_json::to_string(config).expect("function config serializes")
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_function(&self, c: &FunctionConfig) -> Result<(), StoreError> {
        let inserted = self.with(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO functions (name, version, revision, code_digest, code_size, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.name, c.version, c.revision_id, c.code_digest, c.code_size as i64, encode(c)],
            )
        })?;
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn update_function(&self, c: &FunctionConfig, expected_revision: &str) -> Result<(), StoreError> {
        let changed = self.with(|conn| {
            conn.execute(
                "UPDATE functions SET revision = ?3, code_digest = ?4, code_size = ?5, config = ?6 WHERE name = ?1 AND version = ?2 AND revision = ?7",
                params![c.name, c.version, c.revision_id, c.code_digest, c.code_size as i64, encode(c), expected_revision],
            )
        })?;
        if changed == 0 {
            let exists = self.get_function(&c.name, &c.version).await?.is_some();
            return Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound });
        }
        Ok(())
    }

    async fn get_function(&self, name: &str, version: &str) -> Result<Option<FunctionConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM functions WHERE name = ?1 AND version = ?2", params![name, version], |row| {
                decode(row.get(0)?)
            })
            .optional()
        })
    }

    async fn list_functions(&self, version: &str, after: Option<&str>, limit: usize) -> Result<Vec<FunctionConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM functions WHERE version = ?1 AND name > ?2 ORDER BY name LIMIT ?3")?;
            let rows = stmt.query_map(params![version, after.unwrap_or(""), limit as i64], |row| decode(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let n = tx.execute("DELETE FROM functions WHERE name = ?1", params![name])?;
            tx.execute("DELETE FROM aliases WHERE function = ?1", params![name])?;
            tx.execute("DELETE FROM event_invoke_configs WHERE function = ?1", params![name])?;
            tx.execute("DELETE FROM function_urls WHERE function = ?1", params![name])?;
            tx.execute("DELETE FROM provisioned_configs WHERE function = ?1", params![name])?;
            tx.commit()?;
            Ok(n)
        })?;
        Ok(n > 0)
    }

    async fn usage(&self) -> Result<(u64, u64), StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT COALESCE(SUM(code_size), 0), COUNT(DISTINCT name) FROM functions", [], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
            })
        })
    }

    async fn publish_version(&self, latest: &FunctionConfig, expected_revision: &str, version: &FunctionConfig) -> Result<(), StoreError> {
        enum Outcome {
            Done,
            Stale,
            Exists,
        }
        let outcome = self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let changed = tx.execute(
                "UPDATE functions SET revision = ?3, config = ?4 WHERE name = ?1 AND version = ?2 AND revision = ?5",
                params![latest.name, latest.version, latest.revision_id, encode(latest), expected_revision],
            )?;
            if changed == 0 {
                return Ok(Outcome::Stale);
            }
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO functions (name, version, revision, code_digest, code_size, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![version.name, version.version, version.revision_id, version.code_digest, version.code_size as i64, encode(version)],
            )?;
            if inserted == 0 {
                return Ok(Outcome::Exists);
            }
            tx.commit()?;
            Ok(Outcome::Done)
        })?;
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::Stale => Err(StoreError::RevisionMismatch),
            Outcome::Exists => Err(StoreError::Conflict),
        }
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT config FROM functions WHERE name = ?1 ORDER BY CASE WHEN version = '$LATEST' THEN -1 ELSE CAST(version AS INTEGER) END",
            )?;
            let rows = stmt.query_map(params![name], |row| decode(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| conn.execute("DELETE FROM functions WHERE name = ?1 AND version = ?2", params![name, version]))?;
        Ok(n > 0)
    }

    async fn put_alias(&self, alias: &AliasConfig, expected_revision: Option<&str>) -> Result<(), StoreError> {
        let json = serde_json::to_string(alias).expect("alias serializes");
        let changed = self.with(|conn| match expected_revision {
            None => conn.execute(
                "INSERT OR IGNORE INTO aliases (function, name, revision, config) VALUES (?1, ?2, ?3, ?4)",
                params![alias.function_name, alias.name, alias.revision_id, json],
            ),
            Some(rev) => conn.execute(
                "UPDATE aliases SET revision = ?3, config = ?4 WHERE function = ?1 AND name = ?2 AND revision = ?5",
                params![alias.function_name, alias.name, alias.revision_id, json, rev],
            ),
        })?;
        match (changed, expected_revision) {
            (0, None) => Err(StoreError::Conflict),
            (0, Some(_)) => {
                let exists = self.get_alias(&alias.function_name, &alias.name).await?.is_some();
                Err(if exists { StoreError::RevisionMismatch } else { StoreError::NotFound })
            }
            _ => Ok(()),
        }
    }

    async fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM aliases WHERE function = ?1 AND name = ?2", params![function, name], |row| {
                decode_alias(row.get(0)?)
            })
            .optional()
        })
    }

    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM aliases WHERE function = ?1 ORDER BY name")?;
            let rows = stmt.query_map(params![function], |row| decode_alias(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| conn.execute("DELETE FROM aliases WHERE function = ?1 AND name = ?2", params![function, name]))?;
        Ok(n > 0)
    }

    async fn publish_layer_version(&self, layer: &LayerVersion) -> Result<u64, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO layer_names (name, last_version) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1",
                params![layer.layer_name],
            )?;
            let version: i64 =
                tx.query_row("SELECT last_version FROM layer_names WHERE name = ?1", params![layer.layer_name], |r| r.get(0))?;
            let mut record = layer.clone();
            record.version = version as u64;
            tx.execute(
                "INSERT INTO layer_versions (name, version, code_digest, config) VALUES (?1, ?2, ?3, ?4)",
                params![record.layer_name, version, record.code_digest, serde_json::to_string(&record).expect("layer serializes")],
            )?;
            tx.commit()?;
            Ok(version as u64)
        })
    }

    async fn get_layer_version(&self, name: &str, version: u64) -> Result<Option<LayerVersion>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM layer_versions WHERE name = ?1 AND version = ?2", params![name, version as i64], |row| {
                decode_json(row.get(0)?)
            })
            .optional()
        })
    }

    async fn list_layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM layer_versions WHERE name = ?1 ORDER BY version DESC")?;
            let rows = stmt.query_map(params![name], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn list_layer_names(&self) -> Result<Vec<String>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT DISTINCT name FROM layer_versions ORDER BY name")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        })
    }

    async fn update_layer_version(&self, layer: &LayerVersion, expected_policy_revision: &str) -> Result<(), StoreError> {
        let current = self.get_layer_version(&layer.layer_name, layer.version).await?.ok_or(StoreError::NotFound)?;
        if current.policy_revision != expected_policy_revision {
            return Err(StoreError::RevisionMismatch);
        }
        let json = serde_json::to_string(layer).expect("layer serializes");
        let old = serde_json::to_string(&current).expect("layer serializes");
        let n = self.with(|conn| {
            conn.execute(
                "UPDATE layer_versions SET config = ?3 WHERE name = ?1 AND version = ?2 AND config = ?4",
                params![layer.layer_name, layer.version as i64, json, old],
            )
        })?;
        if n == 0 {
            return Err(StoreError::RevisionMismatch);
        }
        Ok(())
    }

    async fn delete_layer_version(&self, name: &str, version: u64) -> Result<bool, StoreError> {
        let n =
            self.with(|conn| conn.execute("DELETE FROM layer_versions WHERE name = ?1 AND version = ?2", params![name, version as i64]))?;
        Ok(n > 0)
    }

    async fn digest_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        // Function records name their layers' digests inside their JSON.
        let pattern = format!("%{digest}%");
        self.with(|conn| {
            conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = ?1 OR config LIKE ?2) OR EXISTS(SELECT 1 FROM layer_versions WHERE code_digest = ?1)",
                params![digest, pattern],
                |row| row.get(0),
            )
        })
    }

    async fn enqueue_event(&self, e: &AsyncEvent) -> Result<(), StoreError> {
        let json = serde_json::to_string(e).expect("event serializes");
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO async_events (request_id, not_before, enqueued, event) VALUES (?1, ?2, ?3, ?4)",
                params![e.request_id, e.not_before_ms, e.enqueued_ms, json],
            )
        })?;
        Ok(())
    }

    async fn due_events(&self, now_ms: i64, limit: usize) -> Result<Vec<AsyncEvent>, StoreError> {
        self.with(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT event FROM async_events WHERE not_before <= ?1 ORDER BY not_before, enqueued LIMIT ?2")?;
            let rows = stmt.query_map(params![now_ms, limit as i64], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn next_event_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(|conn| conn.query_row("SELECT MIN(not_before) FROM async_events", [], |row| row.get(0)))
    }

    async fn reschedule_event(&self, request_id: &str, attempts: u32, not_before_ms: i64) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let json: Option<String> =
                tx.query_row("SELECT event FROM async_events WHERE request_id = ?1", params![request_id], |r| r.get(0)).optional()?;
            if let Some(json) = json {
                let mut e: AsyncEvent = decode_json(json)?;
                e.attempts = attempts;
                e.not_before_ms = not_before_ms;
                tx.execute(
                    "UPDATE async_events SET not_before = ?2, event = ?3 WHERE request_id = ?1",
                    params![request_id, not_before_ms, serde_json::to_string(&e).expect("event serializes")],
                )?;
            }
            tx.commit()
        })
    }

    async fn complete_event(&self, request_id: &str) -> Result<(), StoreError> {
        self.with(|conn| conn.execute("DELETE FROM async_events WHERE request_id = ?1", params![request_id]))?;
        Ok(())
    }

    async fn put_event_invoke_config(&self, c: &EventInvokeConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("config serializes");
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO event_invoke_configs (function, qualifier, config) VALUES (?1, ?2, ?3)",
                params![c.function, c.qualifier, json],
            )
        })?;
        Ok(())
    }

    async fn get_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<Option<EventInvokeConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT config FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
                params![function, qualifier],
                |row| decode_json(row.get(0)?),
            )
            .optional()
        })
    }

    async fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<EventInvokeConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM event_invoke_configs WHERE function = ?1 ORDER BY qualifier")?;
            let rows = stmt.query_map(params![function], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| {
            conn.execute("DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])
        })?;
        Ok(n > 0)
    }

    async fn put_function_url(&self, c: &FunctionUrlConfig, create: bool) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("url config serializes");
        let q = c.qualifier.clone().unwrap_or_default();
        let n = self.with(|conn| {
            if create {
                conn.execute(
                    "INSERT OR IGNORE INTO function_urls (function, qualifier, url_id, config) VALUES (?1, ?2, ?3, ?4)",
                    params![c.function, q, c.url_id, json],
                )
            } else {
                conn.execute("UPDATE function_urls SET config = ?3 WHERE function = ?1 AND qualifier = ?2", params![c.function, q, json])
            }
        })?;
        match (n, create) {
            (0, true) => Err(StoreError::Conflict),
            (0, false) => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<Option<FunctionUrlConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT config FROM function_urls WHERE function = ?1 AND qualifier = ?2",
                params![function, qualifier.unwrap_or("")],
                |row| decode_json(row.get(0)?),
            )
            .optional()
        })
    }

    async fn get_function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM function_urls WHERE url_id = ?1", params![url_id], |row| decode_json(row.get(0)?)).optional()
        })
    }

    async fn list_function_urls(&self, function: &str) -> Result<Vec<FunctionUrlConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM function_urls WHERE function = ?1 ORDER BY qualifier")?;
            let rows = stmt.query_map(params![function], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<bool, StoreError> {
        let n = self.with(|conn| {
            conn.execute("DELETE FROM function_urls WHERE function = ?1 AND qualifier = ?2", params![function, qualifier.unwrap_or("")])
        })?;
        Ok(n > 0)
    }

    async fn put_event_source_mapping(&self, m: &EventSourceMapping) -> Result<(), StoreError> {
        let json = serde_json::to_string(m).expect("mapping serializes");
        self.with(|conn| {
            conn.execute(
                "INSERT INTO event_source_mappings (uuid, created, config) VALUES (?1, ?2, ?3) ON CONFLICT(uuid) DO UPDATE SET config = ?3",
                params![m.uuid, m.last_modified_ms, json],
            )
        })?;
        Ok(())
    }

    async fn get_event_source_mapping(&self, uuid: &str) -> Result<Option<EventSourceMapping>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM event_source_mappings WHERE uuid = ?1", params![uuid], |row| decode_json(row.get(0)?))
                .optional()
        })
    }

    async fn list_event_source_mappings(&self) -> Result<Vec<EventSourceMapping>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM event_source_mappings ORDER BY created, uuid")?;
            let rows = stmt.query_map([], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_event_source_mapping(&self, uuid: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| conn.execute("DELETE FROM event_source_mappings WHERE uuid = ?1", params![uuid]))?;
        Ok(n > 0)
    }

    async fn put_provisioned_config(&self, c: &ProvisionedConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("provisioned config serializes");
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO provisioned_configs (function, qualifier, config) VALUES (?1, ?2, ?3)",
                params![c.function, c.qualifier, json],
            )
        })?;
        Ok(())
    }

    async fn list_provisioned_configs(&self, function: Option<&str>) -> Result<Vec<ProvisionedConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT config FROM provisioned_configs WHERE ?1 IS NULL OR function = ?1 ORDER BY function, qualifier")?;
            let rows = stmt.query_map(params![function], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_provisioned_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| {
            conn.execute("DELETE FROM provisioned_configs WHERE function = ?1 AND qualifier = ?2", params![function, qualifier])
        })?;
        Ok(n > 0)
    }

    async fn put_code_signing_config(&self, c: &CodeSigningConfig, create: bool) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).expect("code signing config serializes");
        let n = self.with(|conn| {
            if create {
                conn.execute("INSERT OR IGNORE INTO code_signing_configs (id, config) VALUES (?1, ?2)", params![c.id, json])
            } else {
                conn.execute("UPDATE code_signing_configs SET config = ?2 WHERE id = ?1", params![c.id, json])
            }
        })?;
        match (n, create) {
            (0, true) => Err(StoreError::Conflict),
            (0, false) => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_code_signing_config(&self, id: &str) -> Result<Option<CodeSigningConfig>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT config FROM code_signing_configs WHERE id = ?1", params![id], |row| decode_json(row.get(0)?)).optional()
        })
    }

    async fn list_code_signing_configs(&self, after: Option<&str>, limit: usize) -> Result<Vec<CodeSigningConfig>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT config FROM code_signing_configs WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let rows = stmt.query_map(params![after.unwrap_or(""), limit as i64], |row| decode_json(row.get(0)?))?;
            rows.collect()
        })
    }

    async fn delete_code_signing_config(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.with(|conn| conn.execute("DELETE FROM code_signing_configs WHERE id = ?1", params![id]))?;
        Ok(n > 0)
    }

    async fn code_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        self.with(|conn| conn.query_row("SELECT EXISTS(SELECT 1 FROM functions WHERE code_digest = ?1)", params![digest], |row| row.get(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::{Runtime, LATEST};

    fn cfg(name: &str, rev: &str) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            version: LATEST.into(),
            runtime: Runtime::Python311,
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "h.h".into(),
            description: String::new(),
            timeout_secs: 3,
            memory_mb: 128,
            ephemeral_storage_mb: 512,
            environment: Default::default(),
            code_digest: "ab".into(),
            code_size: 10,
            code_unzipped_size: 20,
            last_modified_ms: 0,
            revision_id: rev.into(),
            architectures: vec![],
            reserved_concurrency: None,
            last_published: 0,
            layers: vec![],
            dead_letter_target: None,
            tags: Default::default(),
            policies: Default::default(),
            recursive_loop: None,
            code_signing_config_id: None,
            runtime_management: None,
        }
    }

    #[tokio::test]
    async fn create_update_list_delete() {
        let s = SqliteStore::in_memory().unwrap();
        s.create_function(&cfg("b", "1")).await.unwrap();
        s.create_function(&cfg("a", "1")).await.unwrap();
        assert!(matches!(s.create_function(&cfg("a", "2")).await, Err(StoreError::Conflict)));
        assert!(matches!(s.update_function(&cfg("a", "3"), "wrong").await, Err(StoreError::RevisionMismatch)));
        assert!(matches!(s.update_function(&cfg("zz", "3"), "1").await, Err(StoreError::NotFound)));
        s.update_function(&cfg("a", "3"), "1").await.unwrap();
        assert_eq!(s.get_function("a", LATEST).await.unwrap().unwrap().revision_id, "3");
        let names: Vec<_> = s.list_functions(LATEST, None, 10).await.unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a", "b"]);
        let page: Vec<_> = s.list_functions(LATEST, Some("a"), 10).await.unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(page, ["b"]);
        assert_eq!(s.usage().await.unwrap(), (20, 2));
        assert!(s.code_in_use("ab").await.unwrap());
        // Versions: publish 1 atomically with $LATEST's counter; a stale revision fails.
        let mut latest = s.get_function("a", LATEST).await.unwrap().unwrap();
        let mut v1 = latest.clone();
        v1.version = "1".into();
        v1.revision_id = "v1".into();
        latest.last_published = 1;
        latest.revision_id = "4".into();
        assert!(matches!(s.publish_version(&latest, "stale", &v1).await, Err(StoreError::RevisionMismatch)));
        s.publish_version(&latest, "3", &v1).await.unwrap();
        let versions: Vec<_> = s.list_versions("a").await.unwrap().into_iter().map(|c| c.version).collect();
        assert_eq!(versions, [LATEST, "1"]);
        // Aliases: create, conflict, CAS update, list, delete with the function.
        let alias = AliasConfig {
            function_name: "a".into(),
            name: "prod".into(),
            function_version: "1".into(),
            description: String::new(),
            additional_version: None,
            revision_id: "x".into(),
        };
        s.put_alias(&alias, None).await.unwrap();
        assert!(matches!(s.put_alias(&alias, None).await, Err(StoreError::Conflict)));
        let moved = AliasConfig { function_version: "$LATEST".into(), revision_id: "y".into(), ..alias.clone() };
        assert!(matches!(s.put_alias(&moved, Some("nope")).await, Err(StoreError::RevisionMismatch)));
        s.put_alias(&moved, Some("x")).await.unwrap();
        assert_eq!(s.list_aliases("a").await.unwrap(), vec![moved]);
        // Provisioned concurrency configs: replace, list per function and in all, cascade.
        let pc = ProvisionedConfig { function: "a".into(), qualifier: "prod".into(), requested: 2, last_modified_ms: 1 };
        s.put_provisioned_config(&pc).await.unwrap();
        s.put_provisioned_config(&ProvisionedConfig { requested: 3, ..pc.clone() }).await.unwrap();
        s.put_provisioned_config(&ProvisionedConfig { function: "b".into(), ..pc.clone() }).await.unwrap();
        assert_eq!(s.list_provisioned_configs(Some("a")).await.unwrap(), vec![ProvisionedConfig { requested: 3, ..pc.clone() }]);
        assert_eq!(s.list_provisioned_configs(None).await.unwrap().len(), 2);
        assert!(s.delete_provisioned_config("b", "prod").await.unwrap());
        assert!(!s.delete_provisioned_config("b", "prod").await.unwrap());
        assert!(s.delete_version("a", "1").await.unwrap());
        assert!(s.delete_function("a").await.unwrap());
        assert!(s.list_provisioned_configs(None).await.unwrap().is_empty());
        assert!(s.list_aliases("a").await.unwrap().is_empty());
        assert!(!s.delete_function("a").await.unwrap());
        assert!(s.get_function("a", LATEST).await.unwrap().is_none());
    }
}
