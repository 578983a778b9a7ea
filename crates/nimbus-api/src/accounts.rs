//! The accounts one server holds. Each account's resources live in services of its own (an
//! [`AppState`] per account: its functions, queues, topics, users and roles, each in its own
//! databases), so names never collide across accounts and nothing of one account is reachable
//! from another except through a resource policy. A request is served by its caller's
//! account, or by the account that owns the resource its ARN names (cross-account calls,
//! which authorization evaluates against both accounts' policies).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use nimbus_iam::organizations::Organizations;

use crate::server::AppState;

/// Makes an account's services: opened at start for every account the organization knows, and
/// for a new account by CreateAccount (the server binary composes them).
#[async_trait::async_trait]
pub trait OpenAccount: Send + Sync {
    /// The services of `account`, opening (creating) its databases.
    async fn open(&self, account: String) -> Result<Arc<AppState>, String>;
}

pub struct Accounts {
    pub organizations: Arc<Organizations>,
    /// Signs the download links of code and layers (`Code.Location`) of every account.
    pub links: nimbus_identity::links::LinkSigner,
    /// The web console's one-time login link (`crate::console`): one for the whole server,
    /// trading for the management account root's credentials.
    pub logins: nimbus_identity::login::LoginTokens,
    states: RwLock<HashMap<String, Arc<AppState>>>,
    opener: OnceLock<Arc<dyn OpenAccount>>,
}

impl Accounts {
    pub fn new(organizations: Arc<Organizations>) -> Arc<Accounts> {
        Arc::new(Accounts {
            organizations,
            links: Default::default(),
            logins: Default::default(),
            states: RwLock::new(HashMap::new()),
            opener: OnceLock::new(),
        })
    }

    /// How accounts created later are opened (set once, by the server).
    pub fn set_opener(&self, opener: Arc<dyn OpenAccount>) {
        let _ = self.opener.set(opener);
    }

    /// Adds an opened account.
    pub fn insert(&self, state: Arc<AppState>) {
        let id = state.account().to_string();
        self.states.write().unwrap_or_else(|p| p.into_inner()).insert(id, state);
    }

    /// Whether this server holds more than one account (else every call is its own account's).
    pub fn several(&self) -> bool {
        self.states.read().unwrap_or_else(|p| p.into_inner()).len() > 1
    }

    /// The services of `account`, if this server holds it.
    pub fn get(&self, account: &str) -> Option<Arc<AppState>> {
        self.states.read().unwrap_or_else(|p| p.into_inner()).get(account).cloned()
    }

    /// Every account's services, the management account's first.
    pub fn all(&self) -> Vec<Arc<AppState>> {
        let management = self.organizations.management_account();
        let mut all: Vec<Arc<AppState>> = self.states.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by_key(|s| s.account() != management);
        all
    }

    /// Opens the new account `account` and gives it its first role, `role` (assumable by the
    /// management account, with AdministratorAccess), as Organizations' CreateAccount does.
    pub async fn create(&self, account: String, role: String) -> Result<(), String> {
        let opener = self.opener.get().ok_or("accounts cannot be created on this server")?.clone();
        let state = opener.open(account.clone()).await?;
        let trust = nimbus_iam::organizations::access_role_trust(self.organizations.management_account());
        let err = |e: nimbus_iam::IamError| format!("giving account {account} its role {role}: {e}");
        state.iam.create_role(role.clone(), None, trust, Some("Access from the management account".into()), None).await.map_err(err)?;
        state
            .iam
            .attach_policy(nimbus_iam::Owner::Role, role.clone(), "arn:aws:iam::aws:policy/AdministratorAccess".into())
            .await
            .map_err(err)?;
        self.insert(state);
        Ok(())
    }

    /// Opens an account another node created (its records, and its access role, are the
    /// nodes' already), unless this server holds it.
    pub async fn open_existing(&self, account: String) -> Result<(), String> {
        if self.get(&account).is_some() {
            return Ok(());
        }
        let opener = self.opener.get().ok_or("accounts cannot be opened on this server")?.clone();
        let state = opener.open(account).await?;
        self.insert(state);
        Ok(())
    }

    /// The account that has the function URL `url_id` (None: the only one, or none).
    pub async fn owner_of_url(&self, url_id: &str) -> Option<Arc<AppState>> {
        if !self.several() {
            return None;
        }
        for state in self.all() {
            if let Ok(Some(_)) = state.control.url_by_id(url_id).await {
                return Some(state);
            }
        }
        None
    }

    /// The account that has the HTTP API `api_id` (None: the only one, or none).
    pub fn owner_of_api(&self, api_id: &str) -> Option<Arc<AppState>> {
        if !self.several() {
            return None;
        }
        self.all().into_iter().find(|s| s.gateway.front(api_id).is_some())
    }
}
