//! The access keys Nimbus knows: the administrator's (given at start, or generated on the
//! first start and kept owner-only in the data directory), IAM users' keys, and short-lived
//! session keys (STS's, and the role sessions handed to execution environments; minted by
//! [`AccessKey::new_session`], kept durably by `nimbus-iam`, registered here with
//! [`Keys::put_session`]). [`Keys::authenticate`] is the one place a request's signature is
//! checked against them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Utc};

use crate::sigv4::{self, AuthError, PathStyle, Request};

/// How long an expired session key is still recognized, so that it is refused as expired
/// (`ExpiredToken`, as AWS answers) rather than as unknown.
pub const EXPIRED_SESSIONS_KEPT: chrono::Duration = chrono::Duration::hours(1);

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    /// `arn:aws:iam::<account>:root`, `…:user/<name>`, `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
}

impl Principal {
    pub fn root(account: &str) -> Principal {
        Principal { account: account.to_string(), arn: format!("arn:aws:iam::{account}:root") }
    }

    /// A role's session: `arn:aws:sts::<account>:assumed-role/<role name>/<session>`.
    pub fn assumed_role(role_arn: &str, session: &str) -> Principal {
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_string();
        let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        Principal { arn: format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"), account }
    }
}

/// The session policies a role session was created with (AssumeRole's `Policy` and
/// `PolicyArns`): the session may do only what its role's policies allow and these allow
/// too. Managed policies are named, not copied, so their current document applies, as in AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SessionPolicy {
    /// The inline session policy, as submitted.
    pub inline: Option<String>,
    /// Managed policies' ARNs, in the order given.
    pub managed: Vec<String>,
}

/// A key pair and what it stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub principal: Principal,
    /// Session keys carry a token that must come with every request, and expire.
    pub session_token: Option<String>,
    pub expires: Option<DateTime<Utc>>,
    /// A role session's session policies, if it was created with any.
    pub session_policy: Option<Arc<SessionPolicy>>,
}

impl std::fmt::Debug for AccessKey {
    /// Never prints the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey").field("id", &self.id).field("principal", &self.principal).field("expires", &self.expires).finish()
    }
}

impl AccessKey {
    /// A new session key for `principal`, valid until `expires` (`ASIA…`, a 40-character
    /// secret, a token). It authenticates nothing until it is [`Keys::put_session`].
    pub fn new_session(principal: Principal, expires: DateTime<Utc>, session_policy: Option<Arc<SessionPolicy>>) -> AccessKey {
        AccessKey {
            id: key_id("ASIA"),
            secret: secret(),
            principal,
            session_token: Some(base64::engine::general_purpose::STANDARD.encode(random(48))),
            expires: Some(expires),
            session_policy,
        }
    }
}

/// Why a signed request was not accepted, beyond the signature's own checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Signature(#[from] AuthError),
    /// A session key presented without its token, or with another one.
    #[error("the security token included in the request is invalid")]
    BadToken,
    #[error("the security token included in the request is expired")]
    ExpiredToken,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub access_key: String,
    /// The region and service the request was signed for.
    pub region: String,
    pub service: String,
    /// The session policies of the role session that signed, if any.
    pub session_policy: Option<Arc<SessionPolicy>>,
}

pub struct Keys {
    admin: AccessKey,
    sessions: RwLock<HashMap<String, AccessKey>>,
    /// IAM users' Active keys, kept current by the IAM service ([`Keys::put_user_key`],
    /// [`Keys::remove_user_key`]).
    users: RwLock<HashMap<String, AccessKey>>,
}

/// Where the administrator's key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminKeySource {
    /// Given at start (flags or environment).
    Given,
    /// Read from the data directory (generated by an earlier start).
    Stored(PathBuf),
    /// Generated now and written to the data directory.
    Generated(PathBuf),
}

/// The file in the data directory holding the administrator's key, in the AWS shared
/// credentials format (profile `nimbus`), owner-only.
pub const CREDENTIALS_FILE: &str = "credentials";
/// The profile name in that file.
pub const PROFILE: &str = "nimbus";

fn random(bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf
}

/// `AKIA`/`ASIA` (or any 4-letter prefix: IAM's unique ids are `AIDA…`, `AROA…`) + 16
/// characters of AWS's access-key alphabet.
pub fn key_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = random(16).iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect();
    format!("{prefix}{id}")
}

/// 40 characters, like AWS's secrets.
pub fn secret() -> String {
    base64::engine::general_purpose::STANDARD.encode(random(30))
}

impl Keys {
    /// The administrator's key: `given`, else the one stored in `data_dir`, else a new one
    /// written there (owner-only).
    pub fn open(data_dir: &Path, given: Option<(String, String)>, account: &str) -> std::io::Result<(Keys, AdminKeySource)> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let (id, secret, source) = match given {
            Some((id, secret)) => (id, secret, AdminKeySource::Given),
            None => match read_credentials(&path)? {
                Some((id, secret)) => (id, secret, AdminKeySource::Stored(path)),
                None => {
                    let (id, secret) = (key_id("AKIA"), secret());
                    write_credentials(&path, &id, &secret)?;
                    (id, secret, AdminKeySource::Generated(path))
                }
            },
        };
        let admin = AccessKey { id, secret, principal: Principal::root(account), session_token: None, expires: None, session_policy: None };
        Ok((Keys { admin, sessions: RwLock::new(HashMap::new()), users: RwLock::new(HashMap::new()) }, source))
    }

    pub fn admin_key_id(&self) -> &str {
        &self.admin.id
    }

    /// A new session key for `principal`, valid until `expires`, authenticating at once
    /// (in memory only: `nimbus-iam` mints the keys it hands out durably).
    pub fn mint_session(&self, principal: Principal, expires: DateTime<Utc>) -> AccessKey {
        let key = AccessKey::new_session(principal, expires, None);
        self.put_session(key.clone());
        key
    }

    /// Makes a session key authenticate until it expires (and answer `ExpiredToken` for
    /// [`EXPIRED_SESSIONS_KEPT`] after), and forgets the ones expired longer ago.
    pub fn put_session(&self, key: AccessKey) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let kept_after = Utc::now() - EXPIRED_SESSIONS_KEPT;
        sessions.retain(|_, k| k.expires.is_none_or(|e| e > kept_after));
        if key.expires.is_none_or(|e| e > kept_after) {
            sessions.insert(key.id.clone(), key);
        }
    }

    /// The session keys that authenticate now.
    pub fn sessions(&self) -> Vec<AccessKey> {
        let now = Utc::now();
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).values().filter(|k| k.expires.is_none_or(|e| e > now)).cloned().collect()
    }

    /// Forgets a session key (its environment is gone).
    pub fn revoke(&self, id: &str) {
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Makes an IAM user's key authenticate requests (it was created, or set Active).
    pub fn put_user_key(&self, key: AccessKey) {
        self.users.write().unwrap_or_else(|p| p.into_inner()).insert(key.id.clone(), key);
    }

    /// Stops an IAM user's key from authenticating (deleted, or set Inactive).
    pub fn remove_user_key(&self, id: &str) {
        self.users.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Forgets every session key of `principal_arn` (its role or user is gone).
    pub fn revoke_principal(&self, principal_arn: &str) {
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).retain(|_, k| k.principal.arn != principal_arn);
    }

    fn lookup(&self, id: &str) -> Option<AccessKey> {
        if id == self.admin.id {
            return Some(self.admin.clone());
        }
        if let Some(k) = self.users.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(k.clone());
        }
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Checks `req`'s signature (within AWS's 15-minute window): a known key, its session
    /// token, the signature itself.
    pub fn authenticate(&self, req: &Request<'_>, now: DateTime<Utc>, style: PathStyle) -> Result<Caller, KeyError> {
        self.authenticate_within(req, now, style, sigv4::MAX_SKEW_SECS)
    }

    /// [`Keys::authenticate`] with the service's own clock window.
    pub fn authenticate_within(
        &self,
        req: &Request<'_>,
        now: DateTime<Utc>,
        style: PathStyle,
        max_skew_secs: i64,
    ) -> Result<Caller, KeyError> {
        let sig = sigv4::read(req)?;
        let key = self.lookup(&sig.scope.access_key).ok_or(AuthError::UnknownKey)?;
        if let Some(token) = &key.session_token {
            let presented = sig.security_token.as_deref().unwrap_or_default();
            if !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
                return Err(KeyError::BadToken);
            }
            if key.expires.is_some_and(|e| e <= now) {
                return Err(KeyError::ExpiredToken);
            }
        }
        sigv4::verify_within(&sig, &key.secret, req, now, style, max_skew_secs)?;
        Ok(Caller {
            principal: key.principal,
            access_key: key.id,
            region: sig.scope.region,
            service: sig.scope.service,
            session_policy: key.session_policy,
        })
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `[nimbus]` profile's key from a shared-credentials file, if the file exists.
pub fn read_credentials(path: &Path) -> std::io::Result<Option<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == format!("[{PROFILE}]");
            continue;
        }
        if let (true, Some((k, v))) = (in_profile, line.split_once('=')) {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) => Ok(Some((i, s))),
        _ => Err(std::io::Error::other(format!("{} has no [{PROFILE}] profile with a key", path.display()))),
    }
}

fn write_credentials(path: &Path, id: &str, secret: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(f, "# The Nimbus administrator's key (AWS shared-credentials format). Keep it secret.")?;
    writeln!(f, "# export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={PROFILE}", path.display())?;
    writeln!(f, "[{PROFILE}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}")?;
    f.sync_all()?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_key_is_generated_once_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, source) = Keys::open(dir.path(), None, "000000000000").unwrap();
        let path = dir.path().join(CREDENTIALS_FILE);
        assert_eq!(source, AdminKeySource::Generated(path.clone()));
        assert!(keys.admin_key_id().starts_with("AKIA") && keys.admin_key_id().len() == 20);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (again, source) = Keys::open(dir.path(), None, "000000000000").unwrap();
        assert_eq!(source, AdminKeySource::Stored(path));
        assert_eq!(again.admin_key_id(), keys.admin_key_id());
        let (given, source) = Keys::open(dir.path(), Some(("AKIAGIVEN".into(), "s".into())), "000000000000").unwrap();
        assert_eq!((given.admin_key_id(), source), ("AKIAGIVEN", AdminKeySource::Given));
    }

    #[test]
    fn session_keys_need_their_token_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = Keys::open(dir.path(), Some(("AKIAADMIN".into(), "admin-secret".into())), "000000000000").unwrap();
        let now = Utc::now();
        let principal = Principal::assumed_role("arn:aws:iam::000000000000:role/r", "f");
        assert_eq!(principal.arn, "arn:aws:sts::000000000000:assumed-role/r/f");
        let session = keys.mint_session(principal.clone(), now + chrono::Duration::hours(1));
        let signed = |key: &AccessKey, token: Option<&str>, at: DateTime<Utc>| {
            let mut h = http::HeaderMap::new();
            h.insert("host", "127.0.0.1:9001".parse().unwrap());
            let req = Request { method: "GET", path: "/", query: None, headers: &h, body: b"" };
            let added = sigv4::sign_request(&key.id, &key.secret, token, "us-east-1", "sqs", &req, at);
            for (k, v) in added {
                h.insert(k, v.parse().unwrap());
            }
            h
        };
        let token = session.session_token.clone().unwrap();
        let h = signed(&session, Some(&token), now);
        let req = Request { method: "GET", path: "/", query: None, headers: &h, body: b"" };
        let caller = keys.authenticate(&req, now, PathStyle::Normalized).unwrap();
        assert_eq!((caller.principal, caller.service.as_str()), (principal, "sqs"));
        // Without the token, or with another.
        let h = signed(&session, None, now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized), Err(KeyError::BadToken));
        let h = signed(&session, Some("forged"), now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized), Err(KeyError::BadToken));
        // After it expires.
        let later = now + chrono::Duration::hours(2);
        let h = signed(&session, Some(&token), later);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, later, PathStyle::Normalized), Err(KeyError::ExpiredToken));
        // Revoked: unknown.
        keys.revoke(&session.id);
        let h = signed(&session, Some(&token), now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized), Err(KeyError::Signature(AuthError::UnknownKey)));
        // An IAM user's key, while it is Active.
        let user = AccessKey {
            id: "AKIAUSER".into(),
            secret: "user-secret".into(),
            principal: Principal { account: "000000000000".into(), arn: "arn:aws:iam::000000000000:user/bob".into() },
            session_token: None,
            expires: None,
            session_policy: None,
        };
        keys.put_user_key(user.clone());
        let h = signed(&user, None, now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized).unwrap().principal.arn, "arn:aws:iam::000000000000:user/bob");
        keys.remove_user_key("AKIAUSER");
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized), Err(KeyError::Signature(AuthError::UnknownKey)));
        // The admin's key, no token.
        let admin = AccessKey {
            id: "AKIAADMIN".into(),
            secret: "admin-secret".into(),
            principal: Principal::root("000000000000"),
            session_token: None,
            expires: None,
            session_policy: None,
        };
        let h = signed(&admin, None, now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized).unwrap().principal.arn, "arn:aws:iam::000000000000:root");
    }

    #[test]
    fn put_sessions_carry_their_policy_and_expired_ones_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = Keys::open(dir.path(), Some(("AKIAADMIN".into(), "s".into())), "000000000000").unwrap();
        let now = Utc::now();
        let principal = Principal::assumed_role("arn:aws:iam::000000000000:role/r", "s");
        let policy = Arc::new(SessionPolicy { inline: Some("{}".into()), managed: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()] });
        let key = AccessKey::new_session(principal.clone(), now + chrono::Duration::hours(1), Some(policy.clone()));
        assert!(key.id.starts_with("ASIA") && key.secret.len() == 40 && !format!("{key:?}").contains(&key.secret));
        keys.put_session(key.clone());
        let expired = AccessKey::new_session(principal.clone(), now - chrono::Duration::seconds(1), None);
        keys.put_session(expired.clone());
        keys.put_session(AccessKey::new_session(principal, now - EXPIRED_SESSIONS_KEPT - chrono::Duration::seconds(1), None));
        assert_eq!(keys.sessions(), vec![key.clone()]);
        // Recently expired: known, and refused as expired.
        assert_eq!(keys.lookup(&expired.id), Some(expired));
        assert_eq!(keys.sessions.read().unwrap().len(), 2);
        let mut h = http::HeaderMap::new();
        h.insert("host", "127.0.0.1:9001".parse().unwrap());
        let added = {
            let req = Request { method: "GET", path: "/", query: None, headers: &h, body: b"" };
            sigv4::sign_request(&key.id, &key.secret, key.session_token.as_deref(), "us-east-1", "sqs", &req, now)
        };
        for (k, v) in added {
            h.insert(k, v.parse().unwrap());
        }
        let req = Request { method: "GET", path: "/", query: None, headers: &h, body: b"" };
        assert_eq!(keys.authenticate(&req, now, PathStyle::Normalized).unwrap().session_policy, Some(policy));
    }
}
