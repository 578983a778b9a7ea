//! The IAM service: typed operations over the in-memory mirror of its store (`iam.db`, or the
//! tables nodes share in PostgreSQL). Every change is made by one writer at a time: it reads
//! the state, commits its [`Change`]s, then applies them to memory and to the authenticating
//! keys, all in a task of its own, so a caller that goes away cannot leave memory behind the
//! database. Over a shared store, another node's change (or a cut in the change feed) makes
//! the service read everything again and replace its mirror, as the writer: a reload never
//! races a change of this node's, so it cannot undo one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use nimbus_identity::{AccessKey, Keys, Principal, SessionPolicy};
use nimbus_policy::{Kind, Policy};
use nimbus_store::MasterKey;
use serde::Serialize;

use crate::names::{self, Who};
use crate::store::{Change, IamStore, KeyRecord, PolicyRecord, RoleRecord, Snapshot, UserRecord};
use crate::IamError;

/// Access keys one user may have (IAM's quota).
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// Inline policies' and trust policies' largest size IAM accepts (role trust: 2,048 by default).
const MAX_INLINE_POLICY: usize = 10_240;
/// The largest managed policy document.
const MAX_MANAGED_POLICY: usize = 6_144;

/// The state mirrored from the store.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) users: BTreeMap<String, UserRecord>,
    pub(crate) roles: BTreeMap<String, RoleRecord>,
    pub(crate) policies: BTreeMap<String, PolicyRecord>,
    pub(crate) keys: BTreeMap<String, KeyRecord>,
    /// The session keys handed to `Keys` (by id): which ones a reload takes back.
    sessions: HashMap<String, SessionMark>,
    /// Every stored identity-policy document (inline and customer managed), parsed once when
    /// stored, by its text: what authorization evaluates.
    pub(crate) parsed: HashMap<String, Arc<Policy>>,
}

/// What the state remembers of a session key it handed out.
struct SessionMark {
    principal: String,
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

impl State {
    /// Parses the documents that are new and forgets the ones no record holds any more.
    fn reparse(&mut self) {
        let texts: Vec<&String> = self
            .users
            .values()
            .flat_map(|u| u.inline.values())
            .chain(self.roles.values().flat_map(|r| r.inline.values()))
            .chain(self.policies.values().map(|p| &p.document))
            .collect();
        let mut parsed = HashMap::with_capacity(texts.len());
        for t in texts {
            let p = match self.parsed.get(t) {
                Some(p) => p.clone(),
                // Stored documents were checked before they were stored.
                None => match Policy::parse(t, Kind::Identity) {
                    Ok(p) => Arc::new(p),
                    Err(e) => {
                        tracing::warn!("iam.db holds a policy IAM would refuse ({e}); it is ignored");
                        continue;
                    }
                },
            };
            parsed.insert(t.clone(), p);
        }
        self.parsed = parsed;
    }
}

/// A session's policies as one, with the managed policies it was made of (compared by
/// pointer: a changed managed policy is a new `Arc`).
type CombinedSessionPolicy = (Vec<Arc<Policy>>, Arc<Policy>);

/// IAM and STS for one account.
pub struct IamService {
    pub(crate) account: String,
    store: IamStore,
    pub(crate) state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
    /// Where users' Active keys go to authenticate; None with `--auth off`.
    pub(crate) keys: Option<Arc<Keys>>,
    /// Role sessions' session policies, combined: with the managed policies they were made of.
    session_policies: std::sync::Mutex<HashMap<SessionPolicy, CombinedSessionPolicy>>,
}

// ---- typed answers (the members are IAM's model names) ---------------------------------

/// A user as IAM describes it (`User`); root (GetUser by the root user) has no name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub user_id: String,
    pub arn: String,
    pub create_date: String,
}

/// A new access key, with its secret (`AccessKey`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewAccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub secret_access_key: String,
    pub create_date: String,
}

/// An access key without its secret (`AccessKeyMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyInfo {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub create_date: String,
}

/// A role (`Role`). `max_session_duration` and `role_last_used` are in Get/List answers only,
/// as IAM's CreateRole answer leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleInfo {
    pub path: String,
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: String,
    /// URL-encoded, as IAM answers documents.
    pub assume_role_policy_document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<i64>,
}

/// An inline policy (`GetRolePolicy`/`GetUserPolicy`); `owner` is the role or user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    pub owner: String,
    pub policy_name: String,
    /// URL-encoded.
    pub policy_document: String,
}

/// A managed policy (`Policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyInfo {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub default_version_id: String,
    pub attachment_count: i64,
    pub permissions_boundary_usage_count: i64,
    pub is_attachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub create_date: String,
    pub update_date: String,
}

/// A managed policy's version (`PolicyVersion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersionInfo {
    /// URL-encoded.
    pub document: String,
    pub version_id: String,
    pub is_default_version: bool,
    pub create_date: String,
}

/// An attached policy (`AttachedPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    pub policy_name: String,
    pub policy_arn: String,
}

/// Which policies ListPolicies shows (`Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Aws,
    Local,
}

/// Whose inline policies and attachments an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User,
    Role,
}

impl Owner {
    fn not_found(self, name: &str) -> IamError {
        match self {
            Owner::User => IamError::NoSuchEntity(format!("The user with name {name} cannot be found.")),
            Owner::Role => IamError::NoSuchEntity(format!("The role with name {name} cannot be found.")),
        }
    }
}

/// Documents in answers: URL-encoded as IAM's Get* operations return them.
fn encoded(text: &str) -> String {
    Policy::parse(text, Kind::Identity)
        .or_else(|_| Policy::parse(text, Kind::Trust))
        .map(|p| p.url_encoded())
        .unwrap_or_else(|_| text.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn malformed(e: nimbus_policy::PolicyError) -> IamError {
    IamError::MalformedPolicyDocument(e.to_string())
}

fn check_size(text: &str, max: usize, member: &str) -> Result<(), IamError> {
    if text.chars().count() > max {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for {member}: {max}")));
    }
    Ok(())
}

impl IamService {
    /// Opens `iam.db` at `path` (its secrets sealed under `master`), loads it, and hands
    /// every Active user key to `keys`.
    pub async fn open(path: &Path, account: &str, keys: Option<Arc<Keys>>, master: MasterKey) -> Result<Arc<IamService>, IamError> {
        Self::with_store(IamStore::open(path, master)?, account, keys).await
    }

    /// Opens `account`'s IAM in the PostgreSQL database at `url`, which every node shares
    /// (its secrets sealed under `master`, which must be every node's), loads it, hands every
    /// Active user key and every session to `keys`, and follows the other nodes' changes
    /// from then on: each one (or a cut in the change feed) reloads the whole state.
    pub async fn open_shared(url: &str, account: &str, keys: Option<Arc<Keys>>, master: MasterKey) -> Result<Arc<IamService>, IamError> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-iam-{}", uuid::Uuid::new_v4().simple());
        Self::with_store(IamStore::open_shared(url, account, &node, master).await?, account, keys).await
    }

    /// The same over an already opened store (tests use an in-memory one).
    pub async fn with_store(store: IamStore, account: &str, keys: Option<Arc<Keys>>) -> Result<Arc<IamService>, IamError> {
        let snapshot = store.load().await?;
        let svc = Arc::new(IamService {
            account: account.to_string(),
            store,
            state: RwLock::new(State::default()),
            writer: tokio::sync::Mutex::new(()),
            keys,
            session_policies: std::sync::Mutex::new(HashMap::new()),
        });
        svc.replace(snapshot);
        svc.follow();
        Ok(svc)
    }

    /// Over a shared store: reloads after every announcement of another node's change, one
    /// reload at a time; announcements heard during a reload make one more.
    fn follow(self: &Arc<Self>) {
        if !self.store.is_shared() {
            return;
        }
        let what = format!("IAM of account {}", self.account);
        self.store.watch(
            Arc::downgrade(self),
            nimbus_store::pg::reloader(Arc::downgrade(self), what, |svc: Arc<Self>| async move { svc.reload().await }),
        );
    }

    /// Reads everything from the store and replaces the state with it. As the writer: a
    /// change of this node's is either committed before the read (and in it) or made after
    /// the replacement, never lost in between.
    async fn reload(&self) -> Result<(), IamError> {
        let _writer = self.writer.lock().await;
        let snapshot = self.store.load().await?;
        self.replace(snapshot);
        Ok(())
    }

    /// Makes the state (and what `Keys` holds of it) `snapshot`, in one step for readers:
    /// keys and sessions it no longer has stop authenticating, the others are handed out
    /// again (a user's key carries the user's ARN, which may have changed).
    fn replace(&self, snapshot: Snapshot) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = &self.keys {
            let kept: HashSet<&str> = snapshot.keys.iter().map(|k| k.id.as_str()).collect();
            st.keys.keys().filter(|id| !kept.contains(id.as_str())).for_each(|id| keys.remove_user_key(id));
            let kept: HashSet<&str> = snapshot.sessions.iter().map(|k| k.id.as_str()).collect();
            st.sessions.keys().filter(|id| !kept.contains(id.as_str())).for_each(|id| keys.revoke(id));
        }
        let sessions = std::mem::take(&mut st.sessions);
        *st = State { parsed: std::mem::take(&mut st.parsed), ..State::default() };
        // A session is handed out again only if it is new here: sessions never change.
        let (known, new): (Vec<AccessKey>, Vec<AccessKey>) = snapshot.sessions.into_iter().partition(|k| sessions.contains_key(&k.id));
        for k in known {
            st.sessions.insert(k.id.clone(), SessionMark { principal: k.principal.arn, expires: k.expires });
        }
        let changes = snapshot
            .users
            .into_iter()
            .map(Change::PutUser)
            .chain(snapshot.roles.into_iter().map(Change::PutRole))
            .chain(snapshot.policies.into_iter().map(Change::PutPolicy))
            .chain(snapshot.keys.into_iter().map(Change::PutKey))
            .chain(new.into_iter().map(Change::PutSession))
            .collect();
        self.apply_to(&mut st, changes);
        st.reparse();
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// One change: `f` reads the state and says what to commit; the commit and the memory
    /// change run in a task of their own, one writer at a time.
    async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&State) -> Result<(T, Vec<Change>), IamError> + Send + 'static,
    ) -> Result<T, IamError> {
        let this = self.clone();
        tokio::spawn(async move {
            let _writer = this.writer.lock().await;
            let (out, changes) = f(&this.read())?;
            if !changes.is_empty() {
                this.store.commit(changes.clone()).await?;
                this.apply(changes);
            }
            Ok(out)
        })
        .await
        .map_err(|e| IamError::Internal(format!("iam change failed: {e}")))?
    }

    /// A new session key for `principal`, valid until `expires`: recorded in `iam.db` (its
    /// secret and token sealed) before it authenticates, so it outlives a restart until it
    /// expires. With authentication off it is well-formed and never checked, nor kept.
    pub async fn issue_session(
        self: &Arc<Self>,
        principal: Principal,
        expires: chrono::DateTime<chrono::Utc>,
        session_policy: Option<Arc<SessionPolicy>>,
    ) -> Result<AccessKey, IamError> {
        let key = AccessKey::new_session(principal, expires, session_policy);
        if self.keys.is_none() {
            return Ok(key);
        }
        self.change(move |_| Ok((key.clone(), vec![Change::PutSession(key)]))).await
    }

    fn user_principal(&self, user: &UserRecord) -> Principal {
        Principal { account: self.account.clone(), arn: names::arn(&self.account, "user", &user.path, &user.name) }
    }

    fn apply(&self, changes: Vec<Change>) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let documents = changes
            .iter()
            .any(|c| !matches!(c, Change::PutKey(_) | Change::DeleteKey(_) | Change::PutSession(_) | Change::DeleteSessionsOf(_)));
        if changes.iter().any(|c| matches!(c, Change::PutSession(_))) {
            // Sessions long expired are forgotten, as `Keys` forgets them.
            let kept_after = chrono::Utc::now() - nimbus_identity::keys::EXPIRED_SESSIONS_KEPT;
            st.sessions.retain(|_, s| s.expires.is_none_or(|e| e > kept_after));
        }
        self.apply_to(&mut st, changes);
        if documents {
            st.reparse();
        }
    }

    /// Applies committed changes to the state and hands their keys to `Keys` (documents are
    /// parsed by the caller).
    fn apply_to(&self, st: &mut State, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::PutUser(u) => {
                    st.users.insert(u.name.clone(), u);
                }
                Change::DeleteUser(n) => {
                    st.users.remove(&n);
                }
                Change::PutRole(r) => {
                    st.roles.insert(r.name.clone(), r);
                }
                Change::DeleteRole(n) => {
                    st.roles.remove(&n);
                }
                Change::PutPolicy(p) => {
                    st.policies.insert(p.name.clone(), p);
                }
                Change::DeletePolicy(n) => {
                    st.policies.remove(&n);
                }
                Change::PutKey(k) => {
                    if let Some(keys) = &self.keys {
                        match (k.active, st.users.get(&k.user)) {
                            (true, Some(u)) => keys.put_user_key(AccessKey {
                                id: k.id.clone(),
                                secret: k.secret.clone(),
                                principal: self.user_principal(u),
                                session_token: None,
                                expires: None,
                                session_policy: None,
                            }),
                            _ => keys.remove_user_key(&k.id),
                        }
                    }
                    st.keys.insert(k.id.clone(), k);
                }
                Change::DeleteKey(id) => {
                    if let Some(keys) = &self.keys {
                        keys.remove_user_key(&id);
                    }
                    st.keys.remove(&id);
                }
                Change::PutSession(k) => {
                    st.sessions.insert(k.id.clone(), SessionMark { principal: k.principal.arn.clone(), expires: k.expires });
                    if let Some(keys) = &self.keys {
                        keys.put_session(k);
                    }
                }
                Change::DeleteSessionsOf(arn) => {
                    st.sessions.retain(|_, s| s.principal != arn);
                    if let Some(keys) = &self.keys {
                        keys.revoke_principal(&arn);
                    }
                }
            }
        }
    }

    fn user_info(&self, u: &UserRecord) -> UserInfo {
        UserInfo {
            path: Some(u.path.clone()),
            user_name: Some(u.name.clone()),
            user_id: u.id.clone(),
            arn: names::arn(&self.account, "user", &u.path, &u.name),
            create_date: names::iso(u.created),
        }
    }

    fn role_info(&self, r: &RoleRecord, full: bool) -> RoleInfo {
        RoleInfo {
            path: r.path.clone(),
            role_name: r.name.clone(),
            role_id: r.id.clone(),
            arn: names::arn(&self.account, "role", &r.path, &r.name),
            create_date: names::iso(r.created),
            assume_role_policy_document: encoded(&r.trust),
            description: r.description.clone(),
            max_session_duration: full.then_some(r.max_session),
        }
    }

    fn policy_arn(&self, p: &PolicyRecord) -> String {
        names::arn(&self.account, "policy", &p.path, &p.name)
    }

    fn attachment_count(st: &State, arn: &str) -> i64 {
        let users = st.users.values().filter(|u| u.attached.iter().any(|a| a == arn)).count();
        let roles = st.roles.values().filter(|r| r.attached.iter().any(|a| a == arn)).count();
        (users + roles) as i64
    }

    fn policy_info(&self, st: &State, p: &PolicyRecord) -> PolicyInfo {
        let arn = self.policy_arn(p);
        PolicyInfo {
            policy_name: p.name.clone(),
            policy_id: p.id.clone(),
            attachment_count: Self::attachment_count(st, &arn),
            arn,
            path: p.path.clone(),
            default_version_id: "v1".into(),
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: p.description.clone(),
            create_date: names::iso(p.created),
            update_date: names::iso(p.created),
        }
    }

    fn managed_info(st: &State, m: &nimbus_policy::managed::ManagedPolicy) -> PolicyInfo {
        // AWS's managed policies: fixed dates (their ids are not public; a stable one stands in).
        PolicyInfo {
            policy_name: m.name.to_string(),
            policy_id: names::stable_role_id(m.arn).replacen("AROA", "ANPA", 1),
            arn: m.arn.to_string(),
            path: m.path.to_string(),
            default_version_id: m.default_version.to_string(),
            attachment_count: Self::attachment_count(st, m.arn),
            permissions_boundary_usage_count: 0,
            is_attachable: true,
            description: Some(m.description.to_string()),
            create_date: "2015-04-09T15:03:43Z".into(),
            update_date: "2015-04-09T15:03:43Z".into(),
        }
    }

    /// The customer policy an ARN of this account names.
    fn local_policy<'s>(&self, st: &'s State, arn: &str) -> Option<&'s PolicyRecord> {
        st.policies.values().find(|p| self.policy_arn(p) == arn)
    }

    fn policy_name(&self, st: &State, arn: &str) -> Option<String> {
        if let Some(m) = nimbus_policy::managed::get(arn) {
            return Some(m.name.to_string());
        }
        self.local_policy(st, arn).map(|p| p.name.clone())
    }

    // ---- users ----------------------------------------------------------------------------

    pub async fn create_user(self: &Arc<Self>, name: String, path: Option<String>) -> Result<UserInfo, IamError> {
        names::check_name(&name, "userName", 64)?;
        let path = names::path(path)?;
        let this = self.clone();
        self.change(move |st| {
            if st.users.contains_key(&name) {
                return Err(IamError::EntityAlreadyExists(format!("User with name {name} already exists.")));
            }
            let u = UserRecord { name, id: names::unique_id("AIDA"), path, created: now(), inline: BTreeMap::new(), attached: vec![] };
            Ok((this.user_info(&u), vec![Change::PutUser(u)]))
        })
        .await
    }

    /// GetUser: the named user, or (no name) the caller: an IAM user, or the root user.
    pub fn get_user(&self, name: Option<&str>, caller: &Principal) -> Result<UserInfo, IamError> {
        let name = match (name, names::who(&caller.arn)) {
            (Some(n), _) => n.to_string(),
            (None, Who::User { name, .. }) => name,
            (None, Who::Root { account }) => {
                return Ok(UserInfo { path: None, user_name: None, user_id: account, arn: caller.arn.clone(), create_date: names::iso(0) })
            }
            (None, _) => return Err(IamError::Validation("Must specify userName when calling with non-User credentials".into())),
        };
        let st = self.read();
        st.users.get(&name).map(|u| self.user_info(u)).ok_or_else(|| Owner::User.not_found(&name))
    }

    pub fn list_users(&self, path_prefix: Option<&str>) -> Vec<UserInfo> {
        let st = self.read();
        st.users.values().filter(|u| path_prefix.is_none_or(|p| u.path.starts_with(p))).map(|u| self.user_info(u)).collect()
    }

    pub async fn delete_user(self: &Arc<Self>, name: String) -> Result<(), IamError> {
        let this = self.clone();
        self.change(move |st| {
            let u = st.users.get(&name).ok_or_else(|| Owner::User.not_found(&name))?;
            if st.keys.values().any(|k| k.user == name) {
                return Err(IamError::DeleteConflict("Cannot delete entity, must delete access keys first.".into()));
            }
            if !u.inline.is_empty() {
                return Err(IamError::DeleteConflict("Cannot delete entity, must delete policies first.".into()));
            }
            if !u.attached.is_empty() {
                return Err(IamError::DeleteConflict("Cannot delete entity, must detach all policies first.".into()));
            }
            // Sessions from GetSessionToken die with their user.
            let arn = names::arn(&this.account, "user", &u.path, &u.name);
            Ok(((), vec![Change::DeleteUser(name), Change::DeleteSessionsOf(arn)]))
        })
        .await
    }

    // ---- access keys ----------------------------------------------------------------------

    /// The user an access-key call is about: the named one, else the calling user.
    fn key_owner(name: Option<String>, caller: &Principal) -> Result<String, IamError> {
        match (name, names::who(&caller.arn)) {
            (Some(n), _) => Ok(n),
            (None, Who::User { name, .. }) => Ok(name),
            _ => Err(IamError::Validation("Must specify userName when calling with non-User credentials".into())),
        }
    }

    pub async fn create_access_key(self: &Arc<Self>, user: Option<String>, caller: &Principal) -> Result<NewAccessKey, IamError> {
        let user = Self::key_owner(user, caller)?;
        self.change(move |st| {
            if !st.users.contains_key(&user) {
                return Err(Owner::User.not_found(&user));
            }
            if st.keys.values().filter(|k| k.user == user).count() >= ACCESS_KEYS_PER_USER {
                return Err(IamError::LimitExceeded(format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")));
            }
            let k = KeyRecord {
                id: nimbus_identity::keys::key_id("AKIA"),
                secret: nimbus_identity::keys::secret(),
                user: user.clone(),
                active: true,
                created: now(),
            };
            let out = NewAccessKey {
                user_name: user,
                access_key_id: k.id.clone(),
                status: "Active".into(),
                secret_access_key: k.secret.clone(),
                create_date: names::iso(k.created),
            };
            Ok((out, vec![Change::PutKey(k)]))
        })
        .await
    }

    pub fn list_access_keys(&self, user: Option<String>, caller: &Principal) -> Result<Vec<AccessKeyInfo>, IamError> {
        if user.is_none() && matches!(names::who(&caller.arn), Who::Root { .. }) {
            return Ok(vec![]);
        }
        let user = Self::key_owner(user, caller)?;
        let st = self.read();
        if !st.users.contains_key(&user) {
            return Err(Owner::User.not_found(&user));
        }
        let mut keys: Vec<&KeyRecord> = st.keys.values().filter(|k| k.user == user).collect();
        keys.sort_by_key(|k| k.created);
        Ok(keys
            .into_iter()
            .map(|k| AccessKeyInfo {
                user_name: k.user.clone(),
                access_key_id: k.id.clone(),
                status: if k.active { "Active" } else { "Inactive" }.into(),
                create_date: names::iso(k.created),
            })
            .collect())
    }

    fn find_key<'s>(st: &'s State, user: &str, id: &str) -> Result<&'s KeyRecord, IamError> {
        if !st.users.contains_key(user) {
            return Err(Owner::User.not_found(user));
        }
        st.keys
            .get(id)
            .filter(|k| k.user == user)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found.")))
    }

    pub async fn update_access_key(
        self: &Arc<Self>,
        user: Option<String>,
        id: String,
        status: &str,
        caller: &Principal,
    ) -> Result<(), IamError> {
        let active = match status {
            "Active" => true,
            "Inactive" => false,
            _ => {
                return Err(IamError::Validation(
                    "1 validation error detected: Value at 'status' failed to satisfy constraint: Member must satisfy enum value set"
                        .into(),
                ))
            }
        };
        let user = Self::key_owner(user, caller)?;
        self.change(move |st| {
            let k = Self::find_key(st, &user, &id)?;
            Ok(((), vec![Change::PutKey(KeyRecord { active, ..k.clone() })]))
        })
        .await
    }

    pub async fn delete_access_key(self: &Arc<Self>, user: Option<String>, id: String, caller: &Principal) -> Result<(), IamError> {
        let user = Self::key_owner(user, caller)?;
        self.change(move |st| {
            Self::find_key(st, &user, &id)?;
            Ok(((), vec![Change::DeleteKey(id)]))
        })
        .await
    }

    // ---- roles ----------------------------------------------------------------------------

    pub async fn create_role(
        self: &Arc<Self>,
        name: String,
        path: Option<String>,
        trust: String,
        description: Option<String>,
        max_session: Option<i64>,
    ) -> Result<RoleInfo, IamError> {
        names::check_name(&name, "roleName", 64)?;
        let path = names::path(path)?;
        let max_session = max_session.unwrap_or(3600);
        if !(3600..=43200).contains(&max_session) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{max_session}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value {}",
                if max_session < 3600 { "greater than or equal to 3600" } else { "less than or equal to 43200" }
            )));
        }
        check_size(&trust, MAX_INLINE_POLICY, "ACLSizePerRole")?;
        Policy::parse(&trust, Kind::Trust).map_err(malformed)?;
        let this = self.clone();
        self.change(move |st| {
            if st.roles.contains_key(&name) {
                return Err(IamError::EntityAlreadyExists(format!("Role with name {name} already exists.")));
            }
            let r = RoleRecord {
                name,
                id: names::unique_id("AROA"),
                path,
                created: now(),
                trust,
                description,
                max_session,
                inline: BTreeMap::new(),
                attached: vec![],
            };
            Ok((this.role_info(&r, false), vec![Change::PutRole(r)]))
        })
        .await
    }

    pub fn get_role(&self, name: &str) -> Result<RoleInfo, IamError> {
        let st = self.read();
        st.roles.get(name).map(|r| self.role_info(r, true)).ok_or_else(|| Owner::Role.not_found(name))
    }

    pub fn list_roles(&self, path_prefix: Option<&str>) -> Vec<RoleInfo> {
        let st = self.read();
        st.roles.values().filter(|r| path_prefix.is_none_or(|p| r.path.starts_with(p))).map(|r| self.role_info(r, true)).collect()
    }

    pub async fn delete_role(self: &Arc<Self>, name: String) -> Result<(), IamError> {
        self.change(move |st| {
            let r = st.roles.get(&name).ok_or_else(|| Owner::Role.not_found(&name))?;
            if !r.inline.is_empty() {
                return Err(IamError::DeleteConflict("Cannot delete entity, must delete policies first.".into()));
            }
            if !r.attached.is_empty() {
                return Err(IamError::DeleteConflict("Cannot delete entity, must detach all policies first.".into()));
            }
            Ok(((), vec![Change::DeleteRole(name)]))
        })
        .await
    }

    pub async fn update_assume_role_policy(self: &Arc<Self>, name: String, trust: String) -> Result<(), IamError> {
        check_size(&trust, MAX_INLINE_POLICY, "ACLSizePerRole")?;
        Policy::parse(&trust, Kind::Trust).map_err(malformed)?;
        self.change(move |st| {
            let r = st.roles.get(&name).ok_or_else(|| Owner::Role.not_found(&name))?;
            Ok(((), vec![Change::PutRole(RoleRecord { trust, ..r.clone() })]))
        })
        .await
    }

    // ---- inline policies ------------------------------------------------------------------

    fn owner_change(
        st: &State,
        owner: Owner,
        name: &str,
        edit: impl FnOnce(&mut BTreeMap<String, String>, &mut Vec<String>) -> Result<(), IamError>,
    ) -> Result<Change, IamError> {
        match owner {
            Owner::User => {
                let mut u = st.users.get(name).cloned().ok_or_else(|| owner.not_found(name))?;
                edit(&mut u.inline, &mut u.attached)?;
                Ok(Change::PutUser(u))
            }
            Owner::Role => {
                let mut r = st.roles.get(name).cloned().ok_or_else(|| owner.not_found(name))?;
                edit(&mut r.inline, &mut r.attached)?;
                Ok(Change::PutRole(r))
            }
        }
    }

    fn owner_lists(&self, owner: Owner, name: &str) -> Result<(BTreeMap<String, String>, Vec<String>), IamError> {
        let st = self.read();
        match owner {
            Owner::User => st.users.get(name).map(|u| (u.inline.clone(), u.attached.clone())),
            Owner::Role => st.roles.get(name).map(|r| (r.inline.clone(), r.attached.clone())),
        }
        .ok_or_else(|| owner.not_found(name))
    }

    pub async fn put_inline_policy(self: &Arc<Self>, owner: Owner, name: String, policy: String, document: String) -> Result<(), IamError> {
        names::check_name(&policy, "policyName", 128)?;
        check_size(&document, MAX_INLINE_POLICY, "PolicySize")?;
        Policy::parse(&document, Kind::Identity).map_err(malformed)?;
        self.change(move |st| {
            let c = Self::owner_change(st, owner, &name, |inline, _| {
                inline.insert(policy, document);
                Ok(())
            })?;
            Ok(((), vec![c]))
        })
        .await
    }

    pub fn get_inline_policy(&self, owner: Owner, name: &str, policy: &str) -> Result<InlinePolicy, IamError> {
        let (inline, _) = self.owner_lists(owner, name)?;
        let doc = inline.get(policy).ok_or_else(|| inline_not_found(owner, policy))?;
        Ok(InlinePolicy { owner: name.to_string(), policy_name: policy.to_string(), policy_document: encoded(doc) })
    }

    pub async fn delete_inline_policy(self: &Arc<Self>, owner: Owner, name: String, policy: String) -> Result<(), IamError> {
        self.change(move |st| {
            let c = Self::owner_change(st, owner, &name, |inline, _| {
                inline.remove(&policy).map(|_| ()).ok_or_else(|| inline_not_found(owner, &policy))
            })?;
            Ok(((), vec![c]))
        })
        .await
    }

    pub fn list_inline_policies(&self, owner: Owner, name: &str) -> Result<Vec<String>, IamError> {
        Ok(self.owner_lists(owner, name)?.0.into_keys().collect())
    }

    // ---- managed policies -----------------------------------------------------------------

    pub async fn create_policy(
        self: &Arc<Self>,
        name: String,
        path: Option<String>,
        document: String,
        description: Option<String>,
    ) -> Result<PolicyInfo, IamError> {
        names::check_name(&name, "policyName", 128)?;
        let path = names::path(path)?;
        check_size(&document, MAX_MANAGED_POLICY, "PolicySize")?;
        Policy::parse(&document, Kind::Identity).map_err(malformed)?;
        let this = self.clone();
        self.change(move |st| {
            if st.policies.contains_key(&name) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            let p = PolicyRecord { name, id: names::unique_id("ANPA"), path, created: now(), description, document };
            let info = this.policy_info(st, &p);
            Ok((info, vec![Change::PutPolicy(p)]))
        })
        .await
    }

    fn policy_not_found(arn: &str) -> IamError {
        IamError::NoSuchEntity(format!("Policy {arn} was not found."))
    }

    pub fn get_policy(&self, arn: &str) -> Result<PolicyInfo, IamError> {
        let st = self.read();
        if let Some(m) = nimbus_policy::managed::get(arn) {
            return Ok(Self::managed_info(&st, m));
        }
        self.local_policy(&st, arn).map(|p| self.policy_info(&st, p)).ok_or_else(|| Self::policy_not_found(arn))
    }

    pub fn get_policy_version(&self, arn: &str, version: &str) -> Result<PolicyVersionInfo, IamError> {
        let st = self.read();
        let (doc, default, created) = if let Some(m) = nimbus_policy::managed::get(arn) {
            (m.policy.url_encoded(), m.default_version, "2015-04-09T15:03:43Z".to_string())
        } else {
            let p = self.local_policy(&st, arn).ok_or_else(|| Self::policy_not_found(arn))?;
            (encoded(&p.document), "v1", names::iso(p.created))
        };
        if version != default {
            return Err(IamError::NoSuchEntity(format!("Policy {arn} version {version} does not exist or is not attachable.")));
        }
        Ok(PolicyVersionInfo { document: doc, version_id: version.to_string(), is_default_version: true, create_date: created })
    }

    pub async fn delete_policy(self: &Arc<Self>, arn: String) -> Result<(), IamError> {
        let this = self.clone();
        self.change(move |st| {
            let p = this.local_policy(st, &arn).ok_or_else(|| Self::policy_not_found(&arn))?;
            if Self::attachment_count(st, &arn) > 0 {
                return Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".into()));
            }
            Ok(((), vec![Change::DeletePolicy(p.name.clone())]))
        })
        .await
    }

    pub fn list_policies(&self, scope: Scope, only_attached: bool, path_prefix: Option<&str>) -> Vec<PolicyInfo> {
        let st = self.read();
        let aws = nimbus_policy::managed::all().iter().map(|m| Self::managed_info(&st, m));
        let local = st.policies.values().map(|p| self.policy_info(&st, p));
        let all: Vec<PolicyInfo> = match scope {
            Scope::Aws => aws.collect(),
            Scope::Local => local.collect(),
            Scope::All => aws.chain(local).collect(),
        };
        all.into_iter()
            .filter(|p| !only_attached || p.attachment_count > 0)
            .filter(|p| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
            .collect()
    }

    pub async fn attach_policy(self: &Arc<Self>, owner: Owner, name: String, arn: String) -> Result<(), IamError> {
        let this = self.clone();
        self.change(move |st| {
            let known = nimbus_policy::managed::get(&arn).is_some() || this.local_policy(st, &arn).is_some();
            let c = Self::owner_change(st, owner, &name, |_, attached| {
                if !known {
                    return Err(IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable.")));
                }
                if !attached.contains(&arn) {
                    attached.push(arn);
                }
                Ok(())
            })?;
            Ok(((), vec![c]))
        })
        .await
    }

    pub async fn detach_policy(self: &Arc<Self>, owner: Owner, name: String, arn: String) -> Result<(), IamError> {
        self.change(move |st| {
            let c = Self::owner_change(st, owner, &name, |_, attached| {
                let before = attached.len();
                attached.retain(|a| *a != arn);
                if attached.len() == before {
                    return Err(Self::policy_not_found(&arn));
                }
                Ok(())
            })?;
            Ok(((), vec![c]))
        })
        .await
    }

    pub fn list_attached_policies(&self, owner: Owner, name: &str) -> Result<Vec<AttachedPolicy>, IamError> {
        let (_, attached) = self.owner_lists(owner, name)?;
        let st = self.read();
        Ok(attached
            .into_iter()
            .map(|arn| AttachedPolicy { policy_name: self.policy_name(&st, &arn).unwrap_or_default(), policy_arn: arn })
            .collect())
    }

    // ---- for authorization ----------------------------------------------------

    /// The identity-based policies of the principal `principal_arn` (an IAM user, or a role
    /// session: its role's), inline then attached, parsed. Root and unknown principals have
    /// none (root is allowed unless explicitly denied).
    pub fn identity_policies(&self, principal_arn: &str) -> Vec<Arc<Policy>> {
        let st = self.read();
        let (inline, attached) = match names::who(principal_arn) {
            Who::User { name, .. } => match st.users.get(&name) {
                Some(u) => (u.inline.clone(), u.attached.clone()),
                None => return vec![],
            },
            Who::AssumedRole { role, .. } => match st.roles.get(&role) {
                Some(r) => (r.inline.clone(), r.attached.clone()),
                None => return vec![],
            },
            _ => return vec![],
        };
        let mut out: Vec<Arc<Policy>> = inline.values().filter_map(|d| st.parsed.get(d).cloned()).collect();
        for arn in attached {
            if let Some(m) = managed(&arn) {
                out.push(m);
            } else if let Some(p) = self.local_policy(&st, &arn) {
                out.extend(st.parsed.get(&p.document).cloned());
            }
        }
        out
    }

    /// Whether `arn` names a managed policy: an AWS managed one, or one of this account's.
    pub(crate) fn managed_policy_exists(&self, arn: &str) -> bool {
        managed(arn).is_some() || self.local_policy(&self.read(), arn).is_some()
    }

    /// A role session's session policies as the one policy authorization evaluates: the
    /// inline document and the named managed policies' current documents, any of them
    /// allowing being enough (a managed policy deleted since grants nothing). Rebuilt only
    /// when a managed policy it names changed.
    pub fn session_policy(&self, session: &SessionPolicy) -> Arc<Policy> {
        let parts: Vec<Arc<Policy>> = {
            let st = self.read();
            session
                .managed
                .iter()
                .filter_map(|arn| managed(arn).or_else(|| self.local_policy(&st, arn).and_then(|p| st.parsed.get(&p.document).cloned())))
                .collect()
        };
        let mut cache = self.session_policies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((used, combined)) = cache.get(session) {
            if used.len() == parts.len() && used.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(a, b)) {
                return combined.clone();
            }
        }
        let combined = Arc::new(combine(session.inline.as_deref(), &parts));
        if cache.len() >= SESSION_POLICY_CACHE {
            cache.clear();
        }
        cache.insert(session.clone(), (parts, combined.clone()));
        combined
    }

    /// A role's trust policy, parsed.
    pub fn trust_policy(&self, role: &str) -> Option<Policy> {
        self.read().roles.get(role).and_then(|r| Policy::parse(&r.trust, Kind::Trust).ok())
    }

    /// The trust policy of the role `role_arn` names (path included), parsed; None when no
    /// such role exists.
    pub fn trust_policy_at(&self, role_arn: &str) -> Option<Policy> {
        let (_, name) = names::role_arn(role_arn)?;
        let st = self.read();
        let role = st.roles.get(&name).filter(|r| names::arn(&self.account, "role", &r.path, &r.name) == role_arn)?;
        Policy::parse(&role.trust, Kind::Trust).ok()
    }

    /// The ARN of user `name`, with its path, if the user exists.
    pub fn user_arn(&self, name: &str) -> Option<String> {
        self.read().users.get(name).map(|u| names::arn(&self.account, "user", &u.path, &u.name))
    }

    /// The ARN of role `name`, with its path, if the role exists.
    pub fn role_arn(&self, name: &str) -> Option<String> {
        self.read().roles.get(name).map(|r| names::arn(&self.account, "role", &r.path, &r.name))
    }
}

/// Session policies kept combined (see [`IamService::session_policy`]) before the cache
/// starts over.
const SESSION_POLICY_CACHE: usize = 1024;

/// One policy holding the statements of an inline session policy and of managed ones.
fn combine(inline: Option<&str>, managed: &[Arc<Policy>]) -> Policy {
    let mut statements = Vec::new();
    for text in inline.into_iter().chain(managed.iter().map(|p| p.text())) {
        match serde_json::from_str::<serde_json::Value>(text).ok().and_then(|mut v| v.get_mut("Statement").map(serde_json::Value::take)) {
            Some(serde_json::Value::Array(list)) => statements.extend(list),
            Some(one) => statements.push(one),
            None => {}
        }
    }
    if statements.is_empty() {
        // Nothing left to allow with (its managed policies were deleted): allows nothing.
        statements.push(serde_json::json!({"Effect": "Allow", "Action": "nimbus:Nothing", "Resource": "arn:aws:nimbus:::nothing"}));
    }
    let text = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    Policy::parse(&text, Kind::Identity).unwrap_or_else(|e| {
        tracing::warn!("session policies that were valid do not combine ({e}); the session is allowed nothing");
        Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"nimbus:Nothing","Resource":"arn:aws:nimbus:::nothing"}]}"#,
            Kind::Identity,
        )
        .expect("a valid policy")
    })
}

/// An AWS managed policy's document, shared.
fn managed(arn: &str) -> Option<Arc<Policy>> {
    static ALL: std::sync::OnceLock<HashMap<&'static str, Arc<Policy>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| nimbus_policy::managed::all().iter().map(|m| (m.arn, Arc::new(m.policy.clone()))).collect()).get(arn).cloned()
}

fn inline_not_found(owner: Owner, policy: &str) -> IamError {
    match owner {
        Owner::User => IamError::NoSuchEntity(format!("The user policy with name {policy} cannot be found.")),
        Owner::Role => IamError::NoSuchEntity(format!("The role policy with name {policy} cannot be found.")),
    }
}
