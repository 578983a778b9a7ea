//! AWS Organizations, the accounts part: the organization the server's first (management)
//! account creates, and the member accounts it creates in it (`<data>/organizations.db`,
//! mirrored in memory). An account here is a name and an id; what lives in an account (its
//! functions, queues, users and roles) is opened per account by the server
//! (`nimbus::server`), and the first role in a new account, `OrganizationAccountAccessRole`,
//! is made by the caller of [`Organizations::create_account`] with [`access_role_trust`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use nimbus_store::group_commit::GroupCommit;
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

/// The organization and its accounts.
pub struct Organizations {
    /// The server's first account: the one that can create an organization.
    management: String,
    db: GroupCommit,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
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
        Self::with_db(db, management).await
    }

    /// An in-memory one (tests).
    pub async fn open_in_memory(management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        Self::with_db(GroupCommit::open_in_memory(&SCHEMA).map_err(OrganizationsError::Internal)?, management).await
    }

    async fn with_db(db: GroupCommit, management: &str) -> Result<Arc<Organizations>, OrganizationsError> {
        let state = db
            .run(
                false,
                |conn| {
                    let organization: Vec<OrganizationRecord> = docs(conn, "organization")?;
                    let accounts: Vec<AccountRecord> = docs(conn, "accounts")?;
                    let requests: Vec<CreateAccountStatus> = docs(conn, "create_account_requests")?;
                    Ok(State {
                        organization: organization.into_iter().next(),
                        accounts: accounts.into_iter().map(|a| (a.id.clone(), a)).collect(),
                        requests: requests.into_iter().map(|r| (r.id.clone(), r)).collect(),
                    })
                },
                OrganizationsError::Internal,
            )
            .await?;
        Ok(Arc::new(Organizations { management: management.to_string(), db, state: RwLock::new(state), writer: Default::default() }))
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
        let (org_doc, account_doc) = (json(&o)?, json(&management)?);
        let id = management.id.clone();
        self.db
            .run(
                true,
                move |conn| {
                    conn.execute("INSERT INTO organization (id, doc) VALUES (1, ?1)", params![org_doc]).map_err(sql)?;
                    conn.execute("INSERT INTO accounts (id, doc) VALUES (?1, ?2)", params![id, account_doc]).map_err(sql)?;
                    Ok(())
                },
                OrganizationsError::Internal,
            )
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
        let account_doc = account.as_ref().map(json).transpose()?;
        let account_id = account.as_ref().map(|a| a.id.clone());
        let (status_id, status_doc) = (status.id.clone(), json(&status)?);
        self.db
            .run(
                true,
                move |conn| {
                    if let (Some(id), Some(doc)) = (account_id, account_doc) {
                        conn.execute("INSERT INTO accounts (id, doc) VALUES (?1, ?2)", params![id, doc]).map_err(sql)?;
                    }
                    conn.execute("INSERT INTO create_account_requests (id, doc) VALUES (?1, ?2)", params![status_id, status_doc])
                        .map_err(sql)?;
                    Ok(())
                },
                OrganizationsError::Internal,
            )
            .await?;
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
