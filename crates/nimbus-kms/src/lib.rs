//! The KMS domain, no wire formats: symmetric keys (`SYMMETRIC_DEFAULT`, AES-256-GCM) with
//! their states (Enabled, Disabled, PendingDeletion), aliases, and the cryptographic calls
//! (Encrypt, Decrypt, GenerateDataKey, ReEncrypt), and each key's key policy (the default one,
//! which lets the account's IAM policies decide, unless another was given). Key material is
//! kept sealed by the server's master key, in `<data>/kms.db` or, for nodes that share a
//! PostgreSQL database, in the account's schema there ([`store`]); keys and aliases are in
//! memory, changed one writer at a time after their commit. Over a shared store, another
//! node's change (or a cut in the change feed) makes the service read everything again and
//! replace its memory, as the writer, so a key made or disabled on one node is made or
//! disabled on every node.
//!
//! A ciphertext blob is `NK1` + the key id (36 characters) + AES-GCM's nonce, ciphertext and
//! tag; the associated data binds the key id and the encryption context, so Decrypt needs no
//! `KeyId` and a different context does not open it.

mod error;
mod store;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nimbus_store::sealing::{self, MasterKey};
use serde::{Deserialize, Serialize};

pub use error::KmsError;
use store::{Change, Committed, KmsStore, Snapshot};

const BLOB_MAGIC: &[u8] = b"NK1";
const KEY_ID_LEN: usize = 36;

/// A key's state, as DescribeKey's `KeyState` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }
}

/// A key as stored (its material sealed by the master key) and described.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub arn: String,
    pub account: String,
    pub description: String,
    /// Epoch seconds.
    pub created: f64,
    pub state: KeyState,
    #[serde(default)]
    pub deletion_date: Option<f64>,
    #[serde(default)]
    pub pending_window_days: Option<u32>,
    /// DescribeKey's `CurrentKeyMaterialId` (64 hex digits, random, as AWS's look).
    pub material_id: String,
    /// The key policy as given to CreateKey or PutKeyPolicy; None for the default one
    /// ([`default_key_policy`]). Authorization reads it (keys of earlier releases have none).
    #[serde(default)]
    pub policy: Option<String>,
    /// The key material, sealed by the master key for this key id.
    #[serde(with = "hex_bytes")]
    material: Vec<u8>,
    /// Its stored row's revision in a shared store (see [`store::Change::PutKey`]); not
    /// in the document.
    #[serde(skip)]
    revision: i64,
}

/// An alias (`alias/…`) and the key it names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasInfo {
    pub name: String,
    pub arn: String,
    pub target_key_id: String,
    pub created: f64,
    pub updated: f64,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A data key: its plaintext and its ciphertext blob under a KMS key.
pub struct DataKey {
    pub plaintext: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_arn: String,
}

/// What ReEncrypt answers.
pub struct ReEncrypted {
    pub ciphertext: Vec<u8>,
    pub source_key_arn: String,
    pub key_arn: String,
}

/// A page of a listing.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, (KeyInfo, [u8; 32])>,
    aliases: BTreeMap<String, AliasInfo>,
}

impl State {
    /// The state `snapshot` holds, every key's material opened with `master`.
    fn of(master: &MasterKey, snapshot: Snapshot) -> Result<State, KmsError> {
        let mut state = State::default();
        for key in snapshot.keys {
            state.apply(master, Change::PutKey(key))?;
        }
        for alias in snapshot.aliases {
            state.apply(master, Change::PutAlias(alias))?;
        }
        Ok(state)
    }

    /// Applies a committed change.
    fn apply(&mut self, master: &MasterKey, change: Change) -> Result<(), KmsError> {
        match change {
            Change::PutKey(key) => {
                let material =
                    master.unwrap(&key.material, &material_context(&key.id)).ok().and_then(|m| <[u8; 32]>::try_from(m).ok()).ok_or_else(
                        || KmsError::Internal(format!("the material of KMS key {} does not open with the master key", key.id)),
                    )?;
                self.keys.insert(key.id.clone(), (key, material));
            }
            Change::PutAlias(alias) => {
                self.aliases.insert(alias.name.clone(), alias);
            }
            Change::DeleteAlias(name) => {
                self.aliases.remove(&name);
            }
        }
        Ok(())
    }

    /// The key `id` (which exists), to be changed: with the revision its change gets.
    fn next_revision(&self, id: &str) -> KeyInfo {
        let mut key = self.keys[id].0.clone();
        key.revision += 1;
        key
    }
}

pub struct KmsService {
    region: String,
    account: String,
    master: MasterKey,
    store: KmsStore,
    /// Read by every call without waiting (crypto runs on it, also from sync code);
    /// replaced only by a writer holding `writer`, after its commit.
    state: std::sync::RwLock<State>,
    writer: tokio::sync::Mutex<()>,
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

fn material_context(id: &str) -> Vec<u8> {
    format!("nimbus:kms-key-material:{id}").into_bytes()
}

/// The associated data of a ciphertext: the key and the encryption context, canonical.
fn blob_context(key_id: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = format!("nimbus:kms:{key_id}:").into_bytes();
    aad.extend(serde_json::to_vec(context).expect("a map of strings serializes"));
    aad
}

/// How many times a change is decided again after another node's change made it stale
/// before it fails: each time after a reload, so only nodes changing the same key or alias
/// over and over make it fail.
const STALE_RETRIES: usize = 10;

impl KmsService {
    /// Opens (creating) `path` (in memory when None), reading every key and alias, their
    /// material opened with `master`.
    pub fn open(path: Option<&Path>, master: MasterKey, region: &str, account: &str) -> Result<Arc<KmsService>, KmsError> {
        let (store, snapshot) = KmsStore::open(path)?;
        KmsService::with_store(store, snapshot, master, region, account)
    }

    /// Opens `account`'s keys and aliases in the PostgreSQL database at `url`, which every
    /// node shares (their material sealed under `master`, which must be every node's), loads
    /// them, and follows the other nodes' changes from then on: each one (or a cut in the
    /// change feed) reloads the whole state.
    pub async fn open_shared(url: &str, master: MasterKey, region: &str, account: &str) -> Result<Arc<KmsService>, KmsError> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-kms-{}", uuid::Uuid::new_v4().simple());
        let store = KmsStore::open_shared(url, account, &node, &master).await?;
        let snapshot = store.load().await?;
        let svc = KmsService::with_store(store, snapshot, master, region, account)?;
        svc.follow();
        Ok(svc)
    }

    fn with_store(
        store: KmsStore,
        snapshot: Snapshot,
        master: MasterKey,
        region: &str,
        account: &str,
    ) -> Result<Arc<KmsService>, KmsError> {
        let state = State::of(&master, snapshot)?;
        Ok(Arc::new(KmsService {
            region: region.to_string(),
            account: account.to_string(),
            master,
            store,
            state: std::sync::RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
        }))
    }

    /// Over a shared store: reloads after every announcement of another node's change, one
    /// reload at a time; announcements heard during a reload make one more.
    fn follow(self: &Arc<Self>) {
        if !self.store.is_shared() {
            return;
        }
        let what = format!("KMS of account {}", self.account);
        self.store.watch(
            Arc::downgrade(self),
            nimbus_store::pg::reloader(Arc::downgrade(self), what, |svc: Arc<Self>| async move { svc.reload().await }),
        );
    }

    /// Reads everything from the store and replaces the state with it. As the writer: a
    /// change of this node's is either committed before the read (and in it) or made after
    /// the replacement, never lost in between.
    async fn reload(&self) -> Result<(), KmsError> {
        let _writer = self.writer.lock().await;
        self.reload_as_writer().await
    }

    /// [`KmsService::reload`], by a caller holding the writer.
    async fn reload_as_writer(&self) -> Result<(), KmsError> {
        let state = State::of(&self.master, self.store.load().await?)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn key_arn(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account)
    }

    fn alias_arn(&self, name: &str) -> String {
        format!("arn:aws:kms:{}:{}:{name}", self.region, self.account)
    }

    /// The key id `key_id` names: a key id, key ARN, alias name or alias ARN.
    fn resolve(&self, state: &State, key_id: &str) -> Result<String, KmsError> {
        let alias_prefix = format!("arn:aws:kms:{}:{}:", self.region, self.account);
        let alias =
            key_id.strip_prefix(&alias_prefix).filter(|r| r.starts_with("alias/")).or(Some(key_id).filter(|k| k.starts_with("alias/")));
        if let Some(name) = alias {
            return state
                .aliases
                .get(name)
                .map(|a| a.target_key_id.clone())
                .ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(name))));
        }
        let id = match key_id.strip_prefix("arn:") {
            Some(_) => match key_id.strip_prefix(&alias_prefix).and_then(|r| r.strip_prefix("key/")) {
                Some(id) => id,
                None => return Err(KmsError::NotFound(format!("Invalid arn {key_id}"))),
            },
            None => key_id,
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")));
        }
        if state.keys.contains_key(id) {
            Ok(id.to_string())
        } else {
            Err(KmsError::NotFound(format!("Key '{}' does not exist", self.key_arn(id))))
        }
    }

    /// A key that may encrypt and decrypt now.
    fn usable<'a>(&self, state: &'a State, key_id: &str) -> Result<&'a (KeyInfo, [u8; 32]), KmsError> {
        let id = self.resolve(state, key_id)?;
        let key = &state.keys[&id];
        match key.0.state {
            KeyState::Enabled => Ok(key),
            KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", key.0.arn))),
            KeyState::PendingDeletion => Err(KmsError::InvalidState(format!("{} is pending deletion.", key.0.arn))),
        }
    }

    /// Runs a change as a task of its own: reads the state, commits what `f` decided, then
    /// applies it to memory, all under the writer (a caller going away cannot leave memory
    /// behind the database). Over a shared store, a decision another node's change made
    /// stale is not committed: the state is reloaded and `f` decides again.
    async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl Fn(&KmsService, &State) -> Result<(T, Vec<Change>), KmsError> + Send + 'static,
    ) -> Result<T, KmsError> {
        let svc = self.clone();
        tokio::spawn(async move {
            let _one_writer = svc.writer.lock().await;
            for _ in 0..STALE_RETRIES {
                let (out, changes) = f(&svc, &svc.read())?;
                if svc.store.commit(changes.clone()).await? == Committed::Stale {
                    svc.reload_as_writer().await?;
                    continue;
                }
                let mut state = svc.state.write().unwrap_or_else(|p| p.into_inner());
                for change in changes {
                    state.apply(&svc.master, change)?;
                }
                return Ok(out);
            }
            Err(KmsError::Internal("other nodes changed the key or alias again and again: try again".into()))
        })
        .await
        .map_err(|e| KmsError::Internal(e.to_string()))?
    }

    /// CreateKey: a new `SYMMETRIC_DEFAULT` key, enabled, under `policy` (already checked
    /// as a policy document by the caller) or the default key policy.
    pub async fn create_key(self: &Arc<Self>, description: String, policy: Option<String>) -> Result<KeyInfo, KmsError> {
        self.change(move |svc, _| {
            let id = uuid::Uuid::new_v4().to_string();
            let material = sealing::random_key();
            let key = KeyInfo {
                arn: svc.key_arn(&id),
                account: svc.account.clone(),
                description: description.clone(),
                created: now(),
                state: KeyState::Enabled,
                deletion_date: None,
                pending_window_days: None,
                material_id: hex::encode(sealing::random_key()),
                policy: policy.clone(),
                material: svc.master.wrap(&material, &material_context(&id)),
                revision: 1,
                id,
            };
            Ok((key.clone(), vec![Change::PutKey(key)]))
        })
        .await
    }

    /// GetKeyPolicy: the key's policy, the default one if none was set.
    pub fn key_policy(&self, key_id: &str) -> Result<String, KmsError> {
        let state = self.read();
        let id = self.resolve(&state, key_id)?;
        let key = &state.keys[&id].0;
        Ok(key.policy.clone().unwrap_or_else(|| default_key_policy(&self.account)))
    }

    /// PutKeyPolicy: replaces the key's policy (already checked as a policy document).
    pub async fn put_key_policy(self: &Arc<Self>, key_id: &str, policy: String) -> Result<(), KmsError> {
        let key_id = key_id.to_string();
        self.change(move |svc, state| {
            let id = svc.resolve(state, &key_id)?;
            let mut key = state.next_revision(&id);
            if key.state == KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
            }
            key.policy = Some(policy.clone());
            Ok(((), vec![Change::PutKey(key)]))
        })
        .await
    }

    /// The ARN of the key `key_id` names (a key id, key ARN, alias name or alias ARN), if it
    /// names one that exists.
    pub fn key_arn_of(&self, key_id: &str) -> Option<String> {
        let state = self.read();
        self.resolve(&state, key_id).ok().map(|id| state.keys[&id].0.arn.clone())
    }

    pub async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let state = self.read();
        let id = self.resolve(&state, key_id)?;
        Ok(state.keys[&id].0.clone())
    }

    /// ListKeys: by key id, `limit` at a time after `marker`.
    pub async fn list_keys(&self, limit: Option<usize>, marker: Option<&str>) -> Page<KeyInfo> {
        let state = self.read();
        let limit = limit.unwrap_or(1000).clamp(1, 1000);
        let mut items: Vec<KeyInfo> =
            state.keys.values().filter(|(k, _)| marker.is_none_or(|m| k.id.as_str() > m)).map(|(k, _)| k.clone()).take(limit + 1).collect();
        let next_marker = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|k| k.id.clone()).unwrap_or_default()
        });
        Page { items, next_marker }
    }

    /// Moves a key between states with AWS's refusals.
    async fn set_state(self: &Arc<Self>, key_id: &str, to: KeyState, window_days: Option<u32>) -> Result<KeyInfo, KmsError> {
        let key_id = key_id.to_string();
        self.change(move |svc, state| {
            let id = svc.resolve(state, &key_id)?;
            let mut key = state.next_revision(&id);
            let pending = key.state == KeyState::PendingDeletion;
            match to {
                KeyState::Enabled | KeyState::Disabled if pending => {
                    return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
                }
                KeyState::PendingDeletion if pending => {
                    return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
                }
                KeyState::PendingDeletion => {
                    let days = window_days.unwrap_or(30);
                    key.deletion_date = Some(now() + f64::from(days) * 86_400.0);
                    key.pending_window_days = Some(days);
                }
                _ => {}
            }
            key.state = to;
            Ok((key.clone(), vec![Change::PutKey(key)]))
        })
        .await
    }

    pub async fn enable_key(self: &Arc<Self>, key_id: &str) -> Result<(), KmsError> {
        self.set_state(key_id, KeyState::Enabled, None).await.map(drop)
    }

    pub async fn disable_key(self: &Arc<Self>, key_id: &str) -> Result<(), KmsError> {
        self.set_state(key_id, KeyState::Disabled, None).await.map(drop)
    }

    /// ScheduleKeyDeletion: PendingDeletion for 7 to 30 days (30 by default). Nimbus keeps
    /// the key after its deletion date (it can still be described; it never works again
    /// unless the deletion is cancelled).
    pub async fn schedule_key_deletion(self: &Arc<Self>, key_id: &str, days: Option<i64>) -> Result<KeyInfo, KmsError> {
        if let Some(d) = days.filter(|d| !(7..=30).contains(d)) {
            return Err(KmsError::Validation(format!("PendingWindowInDays should be between 7 and 30, but it is {d}")));
        }
        self.set_state(key_id, KeyState::PendingDeletion, days.map(|d| d as u32)).await
    }

    /// CancelKeyDeletion: the key comes back Disabled, as in AWS.
    pub async fn cancel_key_deletion(self: &Arc<Self>, key_id: &str) -> Result<KeyInfo, KmsError> {
        let key_id = key_id.to_string();
        self.change(move |svc, state| {
            let id = svc.resolve(state, &key_id)?;
            let mut key = state.next_revision(&id);
            if key.state != KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!("{} is not pending deletion.", key.arn)));
            }
            key.state = KeyState::Disabled;
            key.deletion_date = None;
            key.pending_window_days = None;
            Ok((key.clone(), vec![Change::PutKey(key)]))
        })
        .await
    }

    pub async fn create_alias(self: &Arc<Self>, name: &str, target: &str) -> Result<(), KmsError> {
        let (name, target) = (name.to_string(), target.to_string());
        self.change(move |svc, state| {
            check_alias_name(&name)?;
            if state.aliases.contains_key(&name) {
                return Err(KmsError::AlreadyExists(format!("An alias with the name {} already exists", svc.alias_arn(&name))));
            }
            if target.starts_with("alias/") || target.contains(":alias/") {
                return Err(KmsError::Validation("Aliases must refer to keys. Not aliases".into()));
            }
            let id = svc.resolve(state, &target)?;
            let key = &state.keys[&id].0;
            if key.state == KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
            }
            let t = now();
            let alias = AliasInfo { arn: svc.alias_arn(&name), name: name.clone(), target_key_id: id, created: t, updated: t };
            Ok(((), vec![Change::PutAlias(alias)]))
        })
        .await
    }

    pub async fn delete_alias(self: &Arc<Self>, name: &str) -> Result<(), KmsError> {
        let name = name.to_string();
        self.change(move |svc, state| {
            check_alias_name(&name)?;
            if !state.aliases.contains_key(&name) {
                return Err(KmsError::NotFound(format!("Alias {} is not found", svc.alias_arn(&name))));
            }
            Ok(((), vec![Change::DeleteAlias(name.clone())]))
        })
        .await
    }

    /// ListAliases: every alias, or those of one key, by name.
    pub async fn list_aliases(&self, key_id: Option<&str>) -> Result<Vec<AliasInfo>, KmsError> {
        let state = self.read();
        let id = key_id.map(|k| self.resolve(&state, k)).transpose()?;
        Ok(state.aliases.values().filter(|a| id.as_ref().is_none_or(|id| &a.target_key_id == id)).cloned().collect())
    }

    /// Encrypt: a ciphertext blob of `plaintext` under the key, for `context`.
    pub async fn encrypt(&self, key_id: &str, plaintext: &[u8], context: &BTreeMap<String, String>) -> Result<(Vec<u8>, String), KmsError> {
        let state = self.read();
        let (key, material) = self.usable(&state, key_id)?;
        Ok((seal_blob(&key.id, material, plaintext, context), key.arn.clone()))
    }

    /// Decrypt: the plaintext and the key's ARN. `key_id`, if given, must name the key the
    /// blob was made with.
    pub async fn decrypt(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let state = self.read();
        self.open_blob(&state, blob, context, key_id)
    }

    fn open_blob(
        &self,
        state: &State,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let (id, sealed) = split_blob(blob).ok_or(KmsError::InvalidCiphertext)?;
        if !state.keys.contains_key(id) {
            return Err(KmsError::InvalidCiphertext);
        }
        if let Some(asked) = key_id {
            if self.resolve(state, asked)? != id {
                return Err(KmsError::IncorrectKey);
            }
        }
        let (key, material) = self.usable(state, id)?;
        let plain = sealing::decrypt(material, sealed, &blob_context(id, context)).map_err(|_| KmsError::InvalidCiphertext)?;
        Ok((plain, key.arn.clone()))
    }

    /// GenerateDataKey(WithoutPlaintext): `bytes` random bytes and their blob.
    pub async fn generate_data_key(&self, key_id: &str, bytes: usize, context: &BTreeMap<String, String>) -> Result<DataKey, KmsError> {
        let mut plaintext = vec![0u8; bytes];
        for chunk in plaintext.chunks_mut(32) {
            chunk.copy_from_slice(&sealing::random_key()[..chunk.len()]);
        }
        let (ciphertext, key_arn) = self.encrypt(key_id, &plaintext, context).await?;
        Ok(DataKey { plaintext, ciphertext, key_arn })
    }

    /// ReEncrypt: opens under the source key and context, seals under the destination's.
    pub async fn re_encrypt(
        &self,
        blob: &[u8],
        source_context: &BTreeMap<String, String>,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &BTreeMap<String, String>,
    ) -> Result<ReEncrypted, KmsError> {
        let state = self.read();
        let (dest, dest_material) = self.usable(&state, destination_key_id)?;
        let (plain, source_key_arn) = self.open_blob(&state, blob, source_context, source_key_id)?;
        Ok(ReEncrypted {
            ciphertext: seal_blob(&dest.id, dest_material, &plain, destination_context),
            source_key_arn,
            key_arn: dest.arn.clone(),
        })
    }
}

/// The encryption context a record's context becomes when a KMS key wraps its data key.
fn record_context(context: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([("nimbus:record".to_string(), String::from_utf8_lossy(context).into_owned())])
}

/// Functions' data keys wrapped by KMS keys (`KMSKeyArn`).
impl sealing::KeyWrapper for KmsService {
    fn wrap(&self, key_arn: &str, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>, String> {
        let state = self.read();
        let (key, material) = self.usable(&state, key_arn).map_err(|e| format!("KMS Exception: {}KMS Message: {e}", e.type_name()))?;
        Ok(seal_blob(&key.id, material, data_key, &record_context(context)))
    }

    fn unwrap(&self, key_arn: &str, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>, String> {
        let state = self.read();
        let (id, sealed) = split_blob(wrapped).ok_or_else(|| format!("the data key wrapped by {key_arn} is not a KMS ciphertext"))?;
        let (_, material) = state.keys.get(id).ok_or_else(|| format!("the KMS key {key_arn} does not exist"))?;
        sealing::decrypt(material, sealed, &blob_context(id, &record_context(context))).map_err(|e| e.to_string())
    }
}

impl KmsService {
    /// Whether `key_id` may encrypt and decrypt now (the error says why not).
    pub fn check_usable(&self, key_id: &str) -> Result<(), KmsError> {
        self.usable(&self.read(), key_id).map(drop)
    }
}

/// The key policy AWS gives a key created without one ("Default key policy" in the KMS
/// Developer Guide): the account's root, that is its IAM policies, may do everything. Laid
/// out as GetKeyPolicy returns it.
pub fn default_key_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// The id of the key a ciphertext blob was made with (read from the blob, as Decrypt does
/// when no `KeyId` is given); None if it is not one of Nimbus's ciphertexts.
pub fn ciphertext_key_id(blob: &[u8]) -> Option<&str> {
    split_blob(blob).map(|(id, _)| id)
}

fn check_alias_name(name: &str) -> Result<(), KmsError> {
    if !name.starts_with("alias/") {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
                .into(),
        ));
    }
    Ok(())
}

fn seal_blob(key_id: &str, material: &[u8; 32], plaintext: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut blob = BLOB_MAGIC.to_vec();
    blob.extend_from_slice(key_id.as_bytes());
    blob.extend(sealing::encrypt(material, plaintext, &blob_context(key_id, context)));
    blob
}

fn split_blob(blob: &[u8]) -> Option<(&str, &[u8])> {
    let rest = blob.strip_prefix(BLOB_MAGIC)?;
    if rest.len() < KEY_ID_LEN {
        return None;
    }
    let (id, sealed) = rest.split_at(KEY_ID_LEN);
    Some((std::str::from_utf8(id).ok()?, sealed))
}

#[cfg(test)]
mod tests;
