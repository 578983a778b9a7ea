//! IAM's records: users, roles, customer managed policies, access keys and session keys,
//! each a typed record stored as a JSON document in its own table, in `iam.db` behind
//! `nimbus_store::group_commit` (one writer thread, every job committed with
//! `synchronous=FULL`), or, for nodes that share a PostgreSQL database, in the account's
//! schema there (`store/postgres.rs`). The surface is typed: [`IamStore::load`] everything,
//! [`IamStore::commit`] a list of [`Change`]s in one transaction, and [`IamStore::watch`] for
//! other nodes' changes; no `rusqlite` or `tokio_postgres` type leaves this module. Secrets
//! never reach a database in plain text: an access key's secret, and a session's secret and
//! token, are sealed (`nimbus_store::sealing`, under the master key, for that key id) when
//! their document is written and opened when it is read. Sessions (STS's and environments'
//! temporary keys) are kept until they expire (and
//! `nimbus_identity::keys::EXPIRED_SESSIONS_KEPT` after, to be refused as expired): older ones
//! are pruned at open and with every new one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

use nimbus_identity::{AccessKey, Principal, SessionPolicy};
use nimbus_store::group_commit::GroupCommit;
use nimbus_store::sealing::{self, Envelope, MasterKey};
use rusqlite::{params, Connection};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::IamError;

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// `AIDA…`.
    pub id: String,
    pub path: String,
    /// Epoch seconds.
    pub created: i64,
    /// Inline policies: name → document as submitted.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies' ARNs, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub name: String,
    /// `AROA…`.
    pub id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy (AssumeRolePolicyDocument) as submitted.
    pub trust: String,
    pub description: Option<String>,
    /// Seconds, 3600..=43200.
    pub max_session: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// A customer managed policy (one version, `v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    /// `ANPA…`.
    pub id: String,
    pub path: String,
    pub created: i64,
    pub description: Option<String>,
    pub document: String,
}

/// An IAM user's access key (in memory; stored with its secret sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub secret: String,
    pub user: String,
    pub active: bool,
    pub created: i64,
}

impl std::fmt::Debug for KeyRecord {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord").field("id", &self.id).field("user", &self.user).field("active", &self.active).finish()
    }
}

/// An access key's document in `access_keys`. Releases before the secrets were sealed
/// wrote `secret` in plain text; [`IamStore::open`] seals those.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: String,
    user: String,
    active: bool,
    created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<Envelope>,
}

/// What an access key's secret is sealed for: a sealed secret copied to another key's row
/// does not open.
fn key_context(id: &str) -> Vec<u8> {
    format!("nimbus:iam-access-key:{id}").into_bytes()
}

/// A session key's document in `sessions`: who it stands for, until when, its session
/// policies, and its secret and token sealed together.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSession {
    id: String,
    account: String,
    principal: String,
    /// Epoch milliseconds.
    expires: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    policy_arns: Vec<String>,
    sealed: Envelope,
}

/// The sealed part of a session.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionSecrets {
    secret: String,
    token: String,
}

fn session_context(id: &str) -> Vec<u8> {
    format!("nimbus:sts-session:{id}").into_bytes()
}

/// Sessions that expired before this (epoch milliseconds) are forgotten.
fn forgotten_before() -> i64 {
    (chrono::Utc::now() - nimbus_identity::keys::EXPIRED_SESSIONS_KEPT).timestamp_millis()
}

/// One change to the store; a list of them commits in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutUser(UserRecord),
    DeleteUser(String),
    PutRole(RoleRecord),
    DeleteRole(String),
    PutPolicy(PolicyRecord),
    DeletePolicy(String),
    PutKey(KeyRecord),
    DeleteKey(String),
    /// A session key (it has an expiry and a token); expired ones go with it.
    PutSession(AccessKey),
    /// Every session of a principal (by ARN: a deleted user's).
    DeleteSessionsOf(String),
}

/// Everything in the store (`iam.db`: in creation order; PostgreSQL: by name or id).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub users: Vec<UserRecord>,
    pub roles: Vec<RoleRecord>,
    pub policies: Vec<PolicyRecord>,
    pub keys: Vec<KeyRecord>,
    /// Sessions that have not expired.
    pub sessions: Vec<AccessKey>,
}

/// `iam.db`'s schema: append migrations, never edit them.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "iam",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (id TEXT PRIMARY KEY, user TEXT NOT NULL, doc TEXT NOT NULL);
",
        // 2: secrets sealed at rest (2026-12-04). The check value of the master key the
        // secrets are sealed under; `IamStore::open` then seals the access keys' secrets an
        // earlier release stored in plain text (it needs the key, so it is not SQL).
        "
CREATE TABLE sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BLOB NOT NULL
);
",
        // 3: session keys outlive a restart (2026-12-04), their secrets sealed.
        "
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    expires INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE INDEX sessions_by_principal ON sessions (principal);
",
    ],
};

/// IAM's records: one node's `iam.db`, or the tables nodes share in PostgreSQL.
pub struct IamStore {
    backend: Backend,
    sealer: Sealer,
}

enum Backend {
    /// `iam.db`'s writer thread.
    Embedded(GroupCommit),
    /// The account's schema in PostgreSQL.
    Shared(postgres::SharedTables),
}

/// Seals and opens the secrets in `iam.db`'s documents.
#[derive(Clone)]
struct Sealer {
    master: Arc<MasterKey>,
}

impl Sealer {
    fn key_doc(&self, k: &KeyRecord) -> Result<String, IamError> {
        json(&StoredKey {
            id: k.id.clone(),
            user: k.user.clone(),
            active: k.active,
            created: k.created,
            secret: None,
            sealed_secret: Some(self.master.seal(k.secret.as_bytes(), &key_context(&k.id))),
        })
    }

    fn key(&self, doc: &str) -> Result<KeyRecord, IamError> {
        let stored: StoredKey = serde_json::from_str(doc).map_err(|e| IamError::Internal(format!("iam.db access_keys: {e}")))?;
        let secret = match (stored.sealed_secret, stored.secret) {
            (Some(sealed), _) => {
                let plain = self
                    .master
                    .open_envelope(&sealed, &key_context(&stored.id))
                    .map_err(|e| IamError::Internal(format!("the secret of access key {} does not open: {e}", stored.id)))?;
                String::from_utf8(plain).map_err(|_| IamError::Internal(format!("the secret of access key {} is not text", stored.id)))?
            }
            (None, Some(plain)) => plain,
            (None, None) => return Err(IamError::Internal(format!("access key {} has no secret", stored.id))),
        };
        Ok(KeyRecord { id: stored.id, secret, user: stored.user, active: stored.active, created: stored.created })
    }

    fn session_doc(&self, k: &AccessKey) -> Result<(String, i64), IamError> {
        let expires =
            k.expires.map(|e| e.timestamp_millis()).ok_or_else(|| IamError::Internal(format!("session {} has no expiry", k.id)))?;
        let secrets = SessionSecrets { secret: k.secret.clone(), token: k.session_token.clone().unwrap_or_default() };
        let plain = serde_json::to_vec(&secrets).map_err(|e| IamError::Internal(e.to_string()))?;
        let policy = k.session_policy.as_deref();
        let doc = json(&StoredSession {
            id: k.id.clone(),
            account: k.principal.account.clone(),
            principal: k.principal.arn.clone(),
            expires,
            inline_policy: policy.and_then(|p| p.inline.clone()),
            policy_arns: policy.map(|p| p.managed.clone()).unwrap_or_default(),
            sealed: self.master.seal(&plain, &session_context(&k.id)),
        })?;
        Ok((doc, expires))
    }

    fn session(&self, doc: &str) -> Result<AccessKey, IamError> {
        let stored: StoredSession = serde_json::from_str(doc).map_err(|e| IamError::Internal(format!("iam.db sessions: {e}")))?;
        let plain = self
            .master
            .open_envelope(&stored.sealed, &session_context(&stored.id))
            .map_err(|e| IamError::Internal(format!("session {} does not open: {e}", stored.id)))?;
        let secrets: SessionSecrets =
            serde_json::from_slice(&plain).map_err(|e| IamError::Internal(format!("session {}: {e}", stored.id)))?;
        let policy = (stored.inline_policy.is_some() || !stored.policy_arns.is_empty())
            .then(|| Arc::new(SessionPolicy { inline: stored.inline_policy, managed: stored.policy_arns }));
        Ok(AccessKey {
            id: stored.id,
            secret: secrets.secret,
            principal: Principal { account: stored.account, arn: stored.principal },
            session_token: Some(secrets.token),
            expires: chrono::DateTime::from_timestamp_millis(stored.expires),
            session_policy: policy,
        })
    }

    /// At open, before the writer thread starts: checks the master key against the
    /// database's check value (recording it on the first open), forgets expired sessions,
    /// then seals every secret an earlier release left in plain text, in one transaction,
    /// and scrubs the file.
    fn prepare(&self, conn: &mut Connection) -> Result<(), IamError> {
        let store = |e: nimbus_store::StoreError| IamError::Internal(format!("iam.db: {e}"));
        let tx = conn.transaction().map_err(sql)?;
        sealing::check_database_key(&tx, &self.master).map_err(store)?;
        tx.execute("DELETE FROM sessions WHERE expires <= ?1", params![forgotten_before()]).map_err(sql)?;
        let docs: Vec<String> = {
            let mut stmt = tx.prepare("SELECT doc FROM access_keys").map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)?
        };
        let mut sealed = 0;
        for doc in docs {
            let plain = serde_json::from_str::<serde_json::Value>(&doc).ok().is_some_and(|v| v.get("secret").is_some());
            if plain {
                let key = self.key(&doc)?;
                tx.execute("UPDATE access_keys SET doc = ?2 WHERE id = ?1", params![key.id, self.key_doc(&key)?]).map_err(sql)?;
                sealed += 1;
            }
        }
        tx.commit().map_err(sql)?;
        if sealed > 0 {
            sealing::scrub_freed_pages(conn).map_err(sql)?;
            tracing::info!("sealed the secrets of {sealed} IAM access keys stored in plain text by an earlier release");
        }
        Ok(())
    }
}

mod postgres;

fn sql(e: rusqlite::Error) -> IamError {
    IamError::Internal(format!("iam.db: {e}"))
}

fn json<T: Serialize>(v: &T) -> Result<String, IamError> {
    serde_json::to_string(v).map_err(|e| IamError::Internal(format!("iam.db: {e}")))
}

/// Every document of `table`, in creation order, read by `read`.
fn rows<T>(conn: &Connection, table: &str, read: impl Fn(String) -> Result<T, String>) -> Result<Vec<T>, IamError> {
    let mut stmt = conn.prepare(&format!("SELECT doc FROM {table} ORDER BY rowid")).map_err(sql)?;
    let docs = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    docs.map(|d| read(d.map_err(sql)?).map_err(|e| IamError::Internal(format!("iam.db {table}: {e}")))).collect()
}

fn parse<T: DeserializeOwned>(doc: String) -> Result<T, String> {
    serde_json::from_str(&doc).map_err(|e| e.to_string())
}

fn apply(conn: &Connection, sealer: &Sealer, change: &Change) -> Result<(), IamError> {
    match change {
        Change::PutUser(u) => {
            conn.execute("INSERT OR REPLACE INTO users (name, doc) VALUES (?1, ?2)", params![u.name, json(u)?]).map_err(sql)?
        }
        Change::DeleteUser(n) => conn.execute("DELETE FROM users WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutRole(r) => {
            conn.execute("INSERT OR REPLACE INTO roles (name, doc) VALUES (?1, ?2)", params![r.name, json(r)?]).map_err(sql)?
        }
        Change::DeleteRole(n) => conn.execute("DELETE FROM roles WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutPolicy(p) => {
            conn.execute("INSERT OR REPLACE INTO policies (name, doc) VALUES (?1, ?2)", params![p.name, json(p)?]).map_err(sql)?
        }
        Change::DeletePolicy(n) => conn.execute("DELETE FROM policies WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutKey(k) => conn
            .execute("INSERT OR REPLACE INTO access_keys (id, user, doc) VALUES (?1, ?2, ?3)", params![k.id, k.user, sealer.key_doc(k)?])
            .map_err(sql)?,
        Change::DeleteKey(id) => conn.execute("DELETE FROM access_keys WHERE id = ?1", params![id]).map_err(sql)?,
        Change::PutSession(k) => {
            let (doc, expires) = sealer.session_doc(k)?;
            conn.execute("DELETE FROM sessions WHERE expires <= ?1", params![forgotten_before()]).map_err(sql)?;
            conn.execute(
                "INSERT OR REPLACE INTO sessions (id, principal, expires, doc) VALUES (?1, ?2, ?3, ?4)",
                params![k.id, k.principal.arn, expires, doc],
            )
            .map_err(sql)?
        }
        Change::DeleteSessionsOf(arn) => conn.execute("DELETE FROM sessions WHERE principal = ?1", params![arn]).map_err(sql)?,
    };
    Ok(())
}

impl IamStore {
    /// Opens (creating and migrating) `path`, its secrets sealed under `master`: checks that
    /// it is the key they were sealed under, and seals what an earlier release left in plain
    /// text.
    pub fn open(path: &Path, master: MasterKey) -> Result<IamStore, IamError> {
        Self::open_at(Some(path), master)
    }

    /// An in-memory store sealing under a random key (tests).
    pub fn open_in_memory() -> Result<IamStore, IamError> {
        Self::open_at(None, MasterKey::generate())
    }

    fn open_at(path: Option<&Path>, master: MasterKey) -> Result<IamStore, IamError> {
        let sealer = Sealer { master: Arc::new(master) };
        let db = GroupCommit::open_prepared(path, &SCHEMA, |conn| sealer.prepare(conn), IamError::Internal)?;
        Ok(IamStore { backend: Backend::Embedded(db), sealer })
    }

    /// Opens (creating and migrating) `account`'s IAM tables in the PostgreSQL database at
    /// `url`, which several nodes share: checks that `master` is the key their secrets are
    /// sealed under (every node must have the same), and forgets expired sessions. `node`
    /// names this node's connections (`application_name`), which the change feed's
    /// announcements quote: unique to this node and store.
    pub async fn open_shared(url: &str, account: &str, node: &str, master: MasterKey) -> Result<IamStore, IamError> {
        let sealer = Sealer { master: Arc::new(master) };
        let tables = postgres::SharedTables::open(url, account, node, &sealer).await?;
        Ok(IamStore { backend: Backend::Shared(tables), sealer })
    }

    /// Whether other nodes write these records too.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// Calls `on` whenever another node may have changed the records, while `owner` lives:
    /// after each change another node commits, after the change feed was cut and is back,
    /// and once when the feed first listens (for what changed between the caller's
    /// [`IamStore::load`] and then). Never for `iam.db`, which has no other writer.
    pub fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        if let Backend::Shared(tables) = &self.backend {
            tables.watch(owner, on);
        }
    }

    /// Everything stored.
    pub async fn load(&self) -> Result<Snapshot, IamError> {
        let sealer = self.sealer.clone();
        let db = match &self.backend {
            Backend::Embedded(db) => db,
            Backend::Shared(tables) => return tables.load(&sealer).await,
        };
        db.run(
            false,
            move |conn| {
                let keys: Vec<String> = rows(conn, "access_keys", Ok::<String, String>)?;
                let sessions: Vec<String> = {
                    let mut stmt = conn.prepare("SELECT doc FROM sessions WHERE expires > ?1 ORDER BY expires").map_err(sql)?;
                    let docs = stmt.query_map(params![forgotten_before()], |r| r.get(0)).map_err(sql)?;
                    docs.collect::<rusqlite::Result<_>>().map_err(sql)?
                };
                Ok(Snapshot {
                    sessions: sessions.iter().map(|d| sealer.session(d)).collect::<Result<_, _>>()?,
                    users: rows(conn, "users", parse)?,
                    roles: rows(conn, "roles", parse)?,
                    policies: rows(conn, "policies", parse)?,
                    keys: keys.iter().map(|d| sealer.key(d)).collect::<Result<_, _>>()?,
                })
            },
            IamError::internal,
        )
        .await
    }

    /// Commits `changes` in one transaction (durably).
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), IamError> {
        let sealer = self.sealer.clone();
        match &self.backend {
            Backend::Embedded(db) => {
                db.run(true, move |conn| changes.iter().try_for_each(|c| apply(conn, &sealer, c)), IamError::internal).await
            }
            Backend::Shared(tables) => tables.commit(&sealer, &changes).await,
        }
    }

    /// Every stored document's text, as the database holds it (tests look for secrets).
    #[cfg(test)]
    pub(crate) async fn raw_documents(&self) -> Vec<String> {
        match &self.backend {
            Backend::Embedded(db) => db
                .run(
                    false,
                    |conn| {
                        let mut out = Vec::new();
                        for table in ["users", "roles", "policies", "access_keys", "sessions"] {
                            out.extend(rows(conn, table, Ok::<String, String>)?);
                        }
                        Ok(out)
                    },
                    IamError::internal,
                )
                .await
                .expect("iam.db reads"),
            Backend::Shared(tables) => tables.raw_documents().await,
        }
    }
}
