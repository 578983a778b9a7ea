//! AWS Organizations, the accounts part: the organization the server's first (management)
//! account creates, and the member accounts it creates in it (`<data>/organizations.db`, or
//! with a shared store the management account's schema in PostgreSQL, mirrored in memory and
//! reloaded when another node changes it: a new account made on one node is opened by all). An account here is a name and an id; what lives in an account (its
//! functions, queues, users and roles) is opened per account by the server
//! (`nimbus::server`), and the first role in a new account, `OrganizationAccountAccessRole`,
//! is made by the caller of [`Organizations::create_account`] with [`access_role_trust`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use nimbus_store::group_commit::GroupCommit;
use nimbus_store::pg::{PgDatabase, PgSchema};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// Organizations' errors, one variant per AWS error code, with AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationsError {
    /// The caller's account is in no organization (and CreateOrganization was not called).
    #[error("Your account is not a member of an organization.")]
    NotInUse,
    #[error("The AWS account is already a member of an organization.")]
    AlreadyInOrganization,
    #[error("You specified an account that doesn't exist.")]
    AccountNotFound,
    #[error("We can't find an create account request with the CreateAccountRequestId that you specified.")]
    CreateAccountStatusNotFound,
    /// A member account calling what only the management account may.
    #[error("You don't have permissions to access this resource.")]
    AccessDenied,
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Internal(String),
}

impl OrganizationsError {
    /// The `__type` Organizations answers with (all 400 but the service's own failure).
    pub fn code(&self) -> &'static str {
        match self {
            OrganizationsError::NotInUse => "AWSOrganizationsNotInUseException",
            OrganizationsError::AlreadyInOrganization => "AlreadyInOrganizationException",
            OrganizationsError::AccountNotFound => "AccountNotFoundException",
            OrganizationsError::CreateAccountStatusNotFound => "CreateAccountStatusNotFoundException",
            OrganizationsError::AccessDenied => "AccessDeniedException",
            OrganizationsError::InvalidInput(_) => "InvalidInputException",
            OrganizationsError::Internal(_) => "ServiceException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            OrganizationsError::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// The organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationRecord {
    /// `o-` and 10 characters.
    pub id: String,
    pub management_account: String,
    pub management_email: String,
    /// `ALL` or `CONSOLIDATED_BILLING`.
    pub feature_set: String,
}

impl OrganizationRecord {
    pub fn arn(&self) -> String {
        format!("arn:aws:organizations::{}:organization/{}", self.management_account, self.id)
    }

    /// An account's ARN in this organization.
    pub fn account_arn(&self, account: &str) -> String {
        format!("arn:aws:organizations::{}:account/{}/{account}", self.management_account, self.id)
    }
}

/// An account of the organization (the management account too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// 12 digits.
    pub id: String,
    pub name: String,
    pub email: String,
    /// `CREATED` for accounts made by CreateAccount, `INVITED` for the management account.
    pub joined_method: String,
    /// Epoch seconds.
    pub joined: f64,
    /// The CreateAccount request that made it.
    pub request_id: Option<String>,
}

/// A CreateAccount request's status, as DescribeCreateAccountStatus answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateAccountStatus {
    /// `car-` and 32 characters.
    pub id: String,
    pub account_name: String,
    /// `SUCCEEDED` or `FAILED` (accounts are made before the answer, never `IN_PROGRESS`).
    pub state: String,
    pub requested: f64,
    pub completed: f64,
    pub account_id: Option<String>,
    /// `EMAIL_ALREADY_EXISTS`, … when `FAILED`.
    pub failure_reason: Option<String>,
}

#[derive(Default)]
struct State {
    organization: Option<OrganizationRecord>,
    /// By id.
    accounts: BTreeMap<String, AccountRecord>,
    /// By request id.
    requests: BTreeMap<String, CreateAccountStatus>,
}

/// Where the organization is kept.
enum OrgDb {
    Sqlite(GroupCommit),
    /// Shared by the nodes.
    Postgres(PgDatabase),
}

/// One record to write: its table (by its SQLite name), key and document.
struct Put {
    table: &'static str,
    id: String,
    doc: String,
}

/// Calls about accounts another node added (their ids).
type AccountsAdded = Box<dyn Fn(Vec<String>) + Send + Sync>;

/// The organization and its accounts.
pub struct Organizations {
    /// The server's first account: the one that can create an organization.
    management: String,
    db: OrgDb,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
    added: RwLock<Vec<AccountsAdded>>,
}

/// The organization's tables in the management account's schema: append migrations only.
const PG_SCHEMA: PgSchema = PgSchema {
    name: "organizations",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `organizations.db`'s tables, each
        // change announced.
        "
CREATE TABLE org_organization (id BIGINT PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE org_accounts (id TEXT PRIMARY KEY, doc TEXT NOT NULL, added BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TABLE org_create_account_requests (id TEXT PRIMARY KEY, doc TEXT NOT NULL, added BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE TRIGGER org_organization_changed AFTER INSERT OR UPDATE OR DELETE ON org_organization FOR EACH ROW EXECUTE FUNCTION notify_change('id');
CREATE TRIGGER org_accounts_changed AFTER INSERT OR UPDATE OR DELETE ON org_accounts FOR EACH ROW EXECUTE FUNCTION notify_change('id');
CREATE TRIGGER org_requests_changed AFTER INSERT OR UPDATE OR DELETE ON org_create_account_requests FOR EACH ROW EXECUTE FUNCTION notify_change('id');
",
    ],
};

/// The tables whose announcements mean the mirror is stale.
const PG_TABLES: &[&str] = &["org_organization", "org_accounts", "org_create_account_requests"];

fn pg_error(e: impl std::fmt::Display) -> OrganizationsError {
    OrganizationsError::Internal(format!("the organization's tables: {e}"))
}

fn parse<T: serde::de::DeserializeOwned>(table: &str, doc: &str) -> Result<T, OrganizationsError> {
    serde_json::from_str(doc).map_err(|e| OrganizationsError::Internal(format!("organizations {table}: {e}")))
}

impl OrgDb {
    async fn load(&self) -> Result<State, OrganizationsError> {
        let (organization, accounts, requests): (Vec<OrganizationRecord>, Vec<AccountRecord>, Vec<CreateAccountStatus>) = match self {
            OrgDb::Sqlite(db) => {
                db.run(
                    false,
                    |conn| Ok((docs(conn, "organization")?, docs(conn, "accounts")?, docs(conn, "create_account_requests")?)),
                    OrganizationsError::Internal,
                )
                .await?
            }
            OrgDb::Postgres(db) => {
                let client = db.client().await.map_err(pg_error)?;
                let mut read = Vec::new();
                for (table, order) in [("org_organization", "id"), ("org_accounts", "added"), ("org_create_account_requests", "added")] {
                    let rows = client.query(&format!("SELECT doc FROM {table} ORDER BY {order}"), &[]).await.map_err(pg_error)?;
                    read.push(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>());
                }
                let mut read = read.into_iter();
                let mut next = || read.next().unwrap_or_default();
                (
                    next().iter().map(|d| parse("organization", d)).collect::<Result<_, _>>()?,
                    next().iter().map(|d| parse("accounts", d)).collect::<Result<_, _>>()?,
                    next().iter().map(|d| parse("create_account_requests", d)).collect::<Result<_, _>>()?,
                )
            }
        };
        Ok(State {
            organization: organization.into_iter().next(),
            accounts: accounts.into_iter().map(|a| (a.id.clone(), a)).collect(),
            requests: requests.into_iter().map(|r| (r.id.clone(), r)).collect(),
        })
    }

    /// Inserts `puts` in one transaction, on disk before this returns.
    async fn insert(&self, puts: Vec<Put>) -> Result<(), OrganizationsError> {
        match self {
            OrgDb::Sqlite(db) => {
                db.run(
                    true,
                    move |conn| {
                        for p in &puts {
                            if p.table == "organization" {
                                conn.execute("INSERT INTO organization (id, doc) VALUES (1, ?1)", params![p.doc]).map_err(sql)?;
                            } else {
                                conn.execute(&format!("INSERT INTO {} (id, doc) VALUES (?1, ?2)", p.table), params![p.id, p.doc])
                                    .map_err(sql)?;
                            }
                        }
                        Ok(())
                    },
                    OrganizationsError::Internal,
                )
                .await
            }
            OrgDb::Postgres(db) => {
                let mut client = db.client().await.map_err(pg_error)?;
                let tx = client.transaction().await.map_err(pg_error)?;
                for p in &puts {
                    if p.table == "organization" {
                        tx.execute("INSERT INTO org_organization (id, doc) VALUES (1, $1)", &[&p.doc]).await.map_err(pg_error)?;
                    } else {
                        tx.execute(&format!("INSERT INTO org_{} (id, doc) VALUES ($1, $2)", p.table), &[&p.id, &p.doc])
                            .await
                            .map_err(pg_error)?;
                    }
                }
                tx.commit().await.map_err(pg_error)
            }
        }
    }
}

const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "organizations",
    migrations: &[
        // 1: the schema of the first release (2026-12-03).
        "
CREATE TABLE organization (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE accounts (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE create_account_requests (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
",
    ],
};

fn sql(e: rusqlite::Error) -> OrganizationsError {
    OrganizationsError::Internal(format!("organizations.db: {e}"))
}

fn docs<T: serde::de::DeserializeOwned>(conn: &Connection, table: &str) -> Result<Vec<T>, OrganizationsError> {
    let mut stmt = conn.prepare(&format!("SELECT doc FROM {table} ORDER BY rowid")).map_err(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    rows.map(|d| {
        let d = d.map_err(sql)?;
        serde_json::from_str(&d).map_err(|e| OrganizationsError::Internal(format!("organizations.db {table}: {e}")))
    })
    .collect()
}

fn json<T: Serialize>(v: &T) -> Result<String, OrganizationsError> {
    serde_json::to_string(v).map_err(|e| OrganizationsError::Internal(e.to_string()))
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// `n` random lowercase letters and digits.
fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// A new 12-digit account id.
fn account_id() -> String {
    format!("{:012}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000)
}

/// Whether `email` has the shape Organizations accepts (`[^\s@]+@[^\s@]+\.[^\s@]+`, 6 to 64
/// characters).
fn valid_email(email: &str) -> bool {
    let len = email.chars().count();
    let Some((local, domain)) = email.split_once('@') else { return false };
    let plain = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '@');
    let dotted = domain.rsplit_once('.').is_some_and(|(a, b)| plain(a) && plain(b));
    (6..=64).contains(&len) && plain(local) && plain(domain) && dotted
}

/// The trust policy of the role a new account gets (`OrganizationAccountAccessRole`): the
/// management account may assume it, its administrators' own policies permitting.
pub fn access_role_trust(management: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{management}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

impl Organizations {
    /// Opens (creating) `path`; `management` is the server's first account.
    pub async fn open(path: &Path, management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        let db = GroupCommit::open(path, &SCHEMA).map_err(OrganizationsError::Internal)?;
        Self::with_db(OrgDb::Sqlite(db), management).await
    }

    /// An in-memory one (tests).
    pub async fn open_in_memory(management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        Self::with_db(OrgDb::Sqlite(GroupCommit::open_in_memory(&SCHEMA).map_err(OrganizationsError::Internal)?), management).await
    }

    /// Opens the organization in the management account's schema of the PostgreSQL database
    /// at `url`, which other nodes share, and follows their changes.
    pub async fn open_shared(url: &str, management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        let node = format!("nimbus-organizations-{}", uuid::Uuid::new_v4().simple());
        let db = PgDatabase::open(url, management, &node).await.map_err(pg_error)?;
        db.migrate(&PG_SCHEMA).await.map_err(pg_error)?;
        let orgs = Self::with_db(OrgDb::Postgres(db.clone()), management).await?;
        let what = "Organizations".to_string();
        let reload = nimbus_store::pg::reloader(Arc::downgrade(&orgs), what, |orgs: Arc<Self>| async move { orgs.reload().await });
        nimbus_store::pg::watch_tables(Arc::downgrade(&orgs), url.to_string(), db, PG_TABLES, reload);
        Ok(orgs)
    }

    async fn with_db(db: OrgDb, management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        let state = db.load().await?;
        Ok(Arc::new(Organizations {
            management: management.to_string(),
            db,
            state: RwLock::new(state),
            writer: Default::default(),
            added: Default::default(),
        }))
    }

    /// Calls `f` with the ids of member accounts another node added, once this node knows them.
    pub fn on_accounts_added(&self, f: impl Fn(Vec<String>) + Send + Sync + 'static) {
        self.added.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// Reads everything again (another node changed it), as the writer.
    async fn reload(&self) -> Result<(), OrganizationsError> {
        let _w = self.writer.lock().await;
        let fresh = self.db.load().await?;
        let added: Vec<String> = {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            let added = fresh.accounts.keys().filter(|id| !st.accounts.contains_key(*id) && **id != self.management).cloned().collect();
            *st = fresh;
            added
        };
        if !added.is_empty() {
            for f in self.added.read().unwrap_or_else(|p| p.into_inner()).iter() {
                f(added.clone());
            }
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn management_account(&self) -> &str {
        &self.management
    }

    /// The member accounts (not the management account), to open at start.
    pub fn member_accounts(&self) -> Vec<String> {
        self.read().accounts.keys().filter(|id| **id != self.management).cloned().collect()
    }

    /// Whether `account` is the management account or one of its members.
    pub fn knows(&self, account: &str) -> bool {
        account == self.management || self.read().accounts.contains_key(account)
    }

    /// The organization `caller_account` is in.
    pub fn describe_organization(&self, caller_account: &str) -> Result<OrganizationRecord, OrganizationsError> {
        let st = self.read();
        match &st.organization {
            Some(o) if caller_account == self.management || st.accounts.contains_key(caller_account) => Ok(o.clone()),
            _ => Err(OrganizationsError::NotInUse),
        }
    }

    fn management_only(&self, caller_account: &str) -> Result<OrganizationRecord, OrganizationsError> {
        let o = self.describe_organization(caller_account)?;
        if caller_account != self.management {
            return Err(OrganizationsError::AccessDenied);
        }
        Ok(o)
    }

    /// CreateOrganization, by the management account.
    pub async fn create_organization(
        &self,
        caller_account: &str,
        feature_set: Option<String>,
    ) -> Result<OrganizationRecord, OrganizationsError> {
        let feature_set = feature_set.unwrap_or_else(|| "ALL".into());
        if !matches!(feature_set.as_str(), "ALL" | "CONSOLIDATED_BILLING") {
            return Err(OrganizationsError::InvalidInput(format!(
                "1 validation error detected: Value '{feature_set}' at 'featureSet' failed to satisfy constraint: Member must satisfy enum value set: [ALL, CONSOLIDATED_BILLING]"
            )));
        }
        let _w = self.writer.lock().await;
        if self.read().organization.is_some() || caller_account != self.management {
            return Err(OrganizationsError::AlreadyInOrganization);
        }
        let o = OrganizationRecord {
            id: format!("o-{}", random_chars(10)),
            management_account: self.management.clone(),
            management_email: format!("root@{}.nimbus.localhost", self.management),
            feature_set,
        };
        let management = AccountRecord {
            id: self.management.clone(),
            name: "management".into(),
            email: o.management_email.clone(),
            joined_method: "INVITED".into(),
            joined: now(),
            request_id: None,
        };
        self.db
            .insert(vec![
                Put { table: "organization", id: String::new(), doc: json(&o)? },
                Put { table: "accounts", id: management.id.clone(), doc: json(&management)? },
            ])
            .await?;
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        st.organization = Some(o.clone());
        st.accounts.insert(management.id.clone(), management);
        Ok(o)
    }

    /// CreateAccount: a new member account, on disk before the answer; `open` is called with
    /// its id first and must make it usable (its stores, its access role), else nothing is
    /// recorded. An email already in use fails the request (`EMAIL_ALREADY_EXISTS`), as AWS.
    pub async fn create_account<F, Fut>(
        &self,
        caller_account: &str,
        name: String,
        email: String,
        open: F,
    ) -> Result<CreateAccountStatus, OrganizationsError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        self.management_only(caller_account)?;
        if !valid_email(&email) {
            return Err(OrganizationsError::InvalidInput("You provided a value that does not match the required pattern.".into()));
        }
        if name.is_empty() || name.chars().count() > 50 {
            return Err(OrganizationsError::InvalidInput("You provided a value that does not match the required pattern.".into()));
        }
        let _w = self.writer.lock().await;
        let requested = now();
        let request_id = format!("car-{}", random_chars(32));
        let duplicate = self.read().accounts.values().any(|a| a.email.eq_ignore_ascii_case(&email));
        let (account, status) = if duplicate {
            let status = CreateAccountStatus {
                id: request_id,
                account_name: name,
                state: "FAILED".into(),
                requested,
                completed: now(),
                account_id: None,
                failure_reason: Some("EMAIL_ALREADY_EXISTS".into()),
            };
            (None, status)
        } else {
            let id = loop {
                let id = account_id();
                if !self.knows(&id) {
                    break id;
                }
            };
            open(id.clone()).await.map_err(OrganizationsError::Internal)?;
            let account = AccountRecord {
                id: id.clone(),
                name: name.clone(),
                email,
                joined_method: "CREATED".into(),
                joined: now(),
                request_id: Some(request_id.clone()),
            };
            let status = CreateAccountStatus {
                id: request_id,
                account_name: name,
                state: "SUCCEEDED".into(),
                requested,
                completed: account.joined,
                account_id: Some(id),
                failure_reason: None,
            };
            (Some(account), status)
        };
        let mut puts = Vec::new();
        if let Some(a) = &account {
            puts.push(Put { table: "accounts", id: a.id.clone(), doc: json(a)? });
        }
        puts.push(Put { table: "create_account_requests", id: status.id.clone(), doc: json(&status)? });
        self.db.insert(puts).await?;
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = account {
            st.accounts.insert(a.id.clone(), a);
        }
        st.requests.insert(status.id.clone(), status.clone());
        Ok(status)
    }

    pub fn create_account_status(&self, caller_account: &str, request_id: &str) -> Result<CreateAccountStatus, OrganizationsError> {
        self.management_only(caller_account)?;
        self.read().requests.get(request_id).cloned().ok_or(OrganizationsError::CreateAccountStatusNotFound)
    }

    /// Every CreateAccount request, oldest first, optionally only those in `states`.
    pub fn create_account_statuses(&self, caller_account: &str, states: &[String]) -> Result<Vec<CreateAccountStatus>, OrganizationsError> {
        self.management_only(caller_account)?;
        let mut all: Vec<CreateAccountStatus> =
            self.read().requests.values().filter(|r| states.is_empty() || states.contains(&r.state)).cloned().collect();
        all.sort_by(|a, b| a.requested.total_cmp(&b.requested));
        Ok(all)
    }

    /// The organization's accounts (the management account first, then by joining).
    pub fn list_accounts(&self, caller_account: &str) -> Result<(OrganizationRecord, Vec<AccountRecord>), OrganizationsError> {
        let o = self.management_only(caller_account)?;
        let mut all: Vec<AccountRecord> = self.read().accounts.values().cloned().collect();
        all.sort_by(|a, b| (a.id != self.management).cmp(&(b.id != self.management)).then(a.joined.total_cmp(&b.joined)));
        Ok((o, all))
    }

    pub fn describe_account(&self, caller_account: &str, id: &str) -> Result<(OrganizationRecord, AccountRecord), OrganizationsError> {
        let o = self.management_only(caller_account)?;
        let a = self.read().accounts.get(id).cloned().ok_or(OrganizationsError::AccountNotFound)?;
        Ok((o, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for (email, ok) in [
            ("ops@example.com", true),
            ("a@b.co", true),
            ("a@b.c", false),
            ("no-at.example.com", false),
            ("two@@example.com", false),
            ("sp ace@example.com", false),
            ("x@nodot", false),
            (&format!("{}@example.com", "a".repeat(60)), false),
        ] {
            assert_eq!(valid_email(email), ok, "{email}");
        }
    }

    #[tokio::test]
    async fn nodes_share_the_organization_and_hear_of_new_accounts() {
        let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
        let a = Organizations::open_shared(&url, "000000000000").await.unwrap();
        let b = Organizations::open_shared(&url, "000000000000").await.unwrap();
        let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
        b.on_accounts_added(move |ids| {
            let _ = tx.send(ids);
        });
        a.create_organization("000000000000", None).await.unwrap();
        let made = a.create_account("000000000000", "team".into(), "team@example.com".into(), |_| async { Ok(()) }).await.unwrap();
        let id = made.account_id.clone().unwrap();
        let ids = tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv()).await.expect("b heard of it").unwrap();
        assert_eq!(ids, vec![id.clone()]);
        assert!(b.knows(&id));
        assert_eq!(b.create_account_status("000000000000", &made.id).unwrap(), made);
        // One organization, whichever node is asked; a second is refused on the other node.
        assert_eq!(b.describe_organization(&id).unwrap(), a.describe_organization("000000000000").unwrap());
        assert_eq!(b.create_organization("000000000000", None).await.unwrap_err(), OrganizationsError::AlreadyInOrganization);
    }

    #[tokio::test]
    async fn accounts_belong_to_the_organization() {
        let orgs = Organizations::open_in_memory("000000000000").await.unwrap();
        assert_eq!(orgs.describe_organization("000000000000"), Err(OrganizationsError::NotInUse));
        let none = |_| async { Ok(()) };
        assert_eq!(
            orgs.create_account("000000000000", "a".into(), "a@example.com".into(), none).await.unwrap_err(),
            OrganizationsError::NotInUse
        );
        let o = orgs.create_organization("000000000000", None).await.unwrap();
        assert!(o.id.starts_with("o-") && o.id.len() == 12, "{}", o.id);
        assert_eq!(orgs.create_organization("000000000000", None).await.unwrap_err(), OrganizationsError::AlreadyInOrganization);
        let made = orgs.create_account("000000000000", "team".into(), "team@example.com".into(), none).await.unwrap();
        assert_eq!(made.state, "SUCCEEDED");
        let id = made.account_id.clone().unwrap();
        assert_eq!(id.len(), 12);
        assert!(orgs.knows(&id));
        assert_eq!(orgs.member_accounts(), vec![id.clone()]);
        // The member sees the organization, but cannot manage it.
        assert_eq!(orgs.describe_organization(&id).unwrap().id, o.id);
        assert_eq!(orgs.list_accounts(&id).unwrap_err(), OrganizationsError::AccessDenied);
        let again = orgs.create_account("000000000000", "team2".into(), "TEAM@example.com".into(), none).await.unwrap();
        assert_eq!((again.state.as_str(), again.failure_reason.as_deref()), ("FAILED", Some("EMAIL_ALREADY_EXISTS")));
        // A failure to open the account records nothing.
        let failing = |_| async { Err::<(), _>("disk full".to_string()) };
        assert!(matches!(
            orgs.create_account("000000000000", "t3".into(), "t3@example.com".into(), failing).await,
            Err(OrganizationsError::Internal(_))
        ));
        let (_, accounts) = orgs.list_accounts("000000000000").unwrap();
        assert_eq!(accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["000000000000", id.as_str()]);
        assert_eq!(orgs.create_account_status("000000000000", &made.id).unwrap(), made);
        assert_eq!(orgs.describe_account("000000000000", "123456789012").unwrap_err(), OrganizationsError::AccountNotFound);
    }
}
