//! The access keys Nimbus knows: the administrator's (given at start, or generated on the
//! first start and kept owner-only in the data directory), IAM users' keys, and short-lived
//! session keys (STS's, and the role sessions handed to execution environments; minted by
//! [`AccessKey::new_session`], kept durably by `nimbus-iam`, registered here with
//! [`Keys::put_session`]). [`Keys::authenticate`] is the one place a request's signature is
//! checked against them ([`Keys::authenticate_head`] for a request whose body streams after).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Utc};

use crate::sigv4::{self, AuthError, BodyCheck, PathStyle, Request};

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
        let (sig, key) = self.signer(req, now)?;
        sigv4::verify_within(&sig, &key.secret, req, now, style, max_skew_secs)?;
        Ok(caller(sig, key))
    }

    /// [`Keys::authenticate_within`] from the request's head alone, for a body that streams
    /// after it (S3's uploads): the same checks and errors, and what the body must then
    /// satisfy, as its `x-amz-content-sha256` declared it. `req.body` is not read; see
    /// [`sigv4::verify_head`] for the `x-amz-content-sha256` values refused.
    pub fn authenticate_head(
        &self,
        req: &Request<'_>,
        now: DateTime<Utc>,
        style: PathStyle,
        max_skew_secs: i64,
    ) -> Result<(Caller, BodyCheck), KeyError> {
        let (sig, key) = self.signer(req, now)?;
        let check = sigv4::verify_head(&sig, &key.secret, req, now, style, max_skew_secs)?;
        Ok((caller(sig, key), check))
    }

    /// `req`'s signature, read, and the key it names (known, with its session token, not expired).
    /// Checks an S3 request signed with Signature Version 2 (`sig`, read by
    /// [`crate::sigv2::read`]): a known key, its session token, the signature. `resource` is
    /// the request's path with its bucket first, as sent.
    pub fn authenticate_v2(
        &self,
        sig: &crate::sigv2::Signature,
        req: &Request<'_>,
        resource: &str,
        now: DateTime<Utc>,
    ) -> Result<Caller, KeyError> {
        let key = self.known(&sig.access_key, sig.security_token.as_deref(), now)?;
        crate::sigv2::verify(sig, &key.secret, req.method, req.headers, req.query, resource, now)?;
        Ok(Caller {
            principal: key.principal,
            access_key: key.id,
            region: String::new(),
            service: "s3".into(),
            session_policy: key.session_policy,
        })
    }

    /// Checks the signature of an S3 POST upload's policy (a browser form's fields): with
    /// Signature Version 4, `credential` is `AKID/date/region/s3/aws4_request` and
    /// `signature` the hex HMAC of the base64 `policy` under that scope's signing key; with
    /// Version 2 (`credential` a bare access key id), the base64 HMAC-SHA1 of it under the
    /// secret. `token` is the form's `x-amz-security-token`. The policy's own expiry and
    /// conditions are the caller's to check.
    pub fn authenticate_post_policy(
        &self,
        credential: &str,
        policy: &str,
        signature: &str,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Caller, KeyError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let (access_key, scope) = match parts.as_slice() {
            [key, date, region, service, "aws4_request"] => (
                *key,
                Some(sigv4::Scope {
                    access_key: key.to_string(),
                    date: date.to_string(),
                    region: region.to_string(),
                    service: service.to_string(),
                }),
            ),
            [key] => (*key, None),
            _ => return Err(AuthError::Incomplete(format!("Invalid credential: {credential}")).into()),
        };
        let key = self.known(access_key, token, now)?;
        let mismatch = || KeyError::Signature(AuthError::Mismatch { canonical_request: String::new(), string_to_sign: policy.to_string() });
        match &scope {
            Some(scope) => {
                use hmac::Mac;
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(&sigv4::signing_key(&key.secret, scope)).expect("HMAC takes any key");
                mac.update(policy.as_bytes());
                let provided = hex::decode(signature.trim()).unwrap_or_default();
                mac.verify_slice(&provided).map_err(|_| mismatch())?;
            }
            None => {
                use base64::Engine;
                use hmac::Mac;
                let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.secret.as_bytes()).expect("HMAC takes any key");
                mac.update(policy.as_bytes());
                let provided = base64::engine::general_purpose::STANDARD.decode(signature.trim()).unwrap_or_default();
                mac.verify_slice(&provided).map_err(|_| mismatch())?;
            }
        }
        Ok(Caller {
            principal: key.principal,
            access_key: key.id,
            region: scope.as_ref().map(|s| s.region.clone()).unwrap_or_default(),
            service: "s3".into(),
            session_policy: key.session_policy,
        })
    }

    fn signer(&self, req: &Request<'_>, now: DateTime<Utc>) -> Result<(sigv4::Signature, AccessKey), KeyError> {
        let sig = sigv4::read(req)?;
        let key = self.known(&sig.scope.access_key, sig.security_token.as_deref(), now)?;
        Ok((sig, key))
    }

    /// The key `id`, if known, with the session token presented for it (a session key's
    /// must match, and the session must not have expired).
    fn known(&self, id: &str, token: Option<&str>, now: DateTime<Utc>) -> Result<AccessKey, KeyError> {
        let key = self.lookup(id).ok_or(AuthError::UnknownKey)?;
        if let Some(expected) = &key.session_token {
            if !constant_time_eq(token.unwrap_or_default().as_bytes(), expected.as_bytes()) {
                return Err(KeyError::BadToken);
            }
            if key.expires.is_some_and(|e| e <= now) {
                return Err(KeyError::ExpiredToken);
            }
        }
        Ok(key)
    }
}

fn caller(sig: sigv4::Signature, key: AccessKey) -> Caller {
    Caller {
        principal: key.principal,
        access_key: key.id,
        region: sig.scope.region,
        service: sig.scope.service,
        session_policy: key.session_policy,
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

    /// A PUT to S3 with `x-amz-content-sha256: content_sha256` and `extra` headers, signed
    /// by `key` at `now` (over `body`, for a hex payload hash).
    fn s3_put(key: &AccessKey, content_sha256: Option<&str>, extra: &[(&str, &str)], body: &[u8], now: DateTime<Utc>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("host", "127.0.0.1:9000".parse().unwrap());
        if let Some(v) = content_sha256 {
            h.insert("x-amz-content-sha256", v.parse().unwrap());
        }
        for (k, v) in extra {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let req = Request { method: "PUT", path: "/bucket/key", query: None, headers: &h, body };
        let added = sigv4::sign_request(&key.id, &key.secret, key.session_token.as_deref(), "us-east-1", "s3", &req, now);
        for (k, v) in added {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_head_alone_authenticates_and_says_what_the_body_must_be() {
        use crate::chunked::{ChunkMode, ChunkSigning, ChunkedSpec};
        use crate::sigv4::{Scope, INVALID_CONTENT_SHA256, MISSING_CONTENT_SHA256};
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = Keys::open(dir.path(), Some(("AKIAADMIN".into(), "admin-secret".into())), "000000000000").unwrap();
        let admin = keys.lookup("AKIAADMIN").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let scope = Scope { access_key: "AKIAADMIN".into(), date: "20260501".into(), region: "us-east-1".into(), service: "s3".into() };
        // What each case must come to, the seed (the request's own signature) left to fill in.
        enum Want {
            Check(BodyCheck),
            Chunked(ChunkMode, Option<u64>, &'static [&'static str]),
            Refused(KeyError),
        }
        let chunked = |mode, decoded_content_length, announced: &[&str], seed: &str| {
            BodyCheck::Chunked(ChunkedSpec {
                mode,
                signing: ChunkSigning {
                    key: sigv4::signing_key("admin-secret", &scope).try_into().unwrap(),
                    scope: "20260501/us-east-1/s3/aws4_request".into(),
                    amz_date: "20260501T100000Z".into(),
                    seed: seed.into(),
                },
                decoded_content_length,
                announced_trailers: announced.iter().map(|s| s.to_string()).collect(),
                verify: true,
            })
        };
        let payload_hash = "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5"; // sha256("payload")
        let upper = payload_hash.to_uppercase();
        let mut hash = [0u8; 32];
        hex::decode_to_slice(payload_hash, &mut hash).unwrap();
        let invalid = |m: &str| Want::Refused(KeyError::Signature(AuthError::Invalid(m.into())));
        /// Name, `x-amz-content-sha256`, other headers, what comes of it.
        type Case<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>, Want);
        let cases: Vec<Case> = vec![
            ("unsigned", Some("UNSIGNED-PAYLOAD"), vec![], Want::Check(BodyCheck::None)),
            ("sha256", Some(payload_hash), vec![], Want::Check(BodyCheck::Sha256(hash))),
            ("sha256 in capitals", Some(&upper), vec![], Want::Check(BodyCheck::Sha256(hash))),
            (
                "signed chunks",
                Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                vec![("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", "66560")],
                Want::Chunked(ChunkMode::Signed, Some(66_560), &[]),
            ),
            (
                "signed chunks and trailer",
                Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
                vec![("x-amz-trailer", "x-amz-checksum-crc32c"), ("x-amz-decoded-content-length", "7")],
                Want::Chunked(ChunkMode::SignedTrailer, Some(7), &["x-amz-checksum-crc32c"]),
            ),
            (
                "unsigned chunks and trailer",
                Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                vec![("x-amz-trailer", "X-Amz-Checksum-CRC32, x-amz-checksum-sha256"), ("content-encoding", "gzip,aws-chunked")],
                Want::Chunked(ChunkMode::UnsignedTrailer, None, &["x-amz-checksum-crc32", "x-amz-checksum-sha256"]),
            ),
            ("ecdsa chunks", Some("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"), vec![], invalid(INVALID_CONTENT_SHA256)),
            ("not a hash", Some("abc"), vec![], invalid(INVALID_CONTENT_SHA256)),
            ("no header", None, vec![], invalid(MISSING_CONTENT_SHA256)),
            (
                "decoded length not a number",
                Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                vec![("x-amz-decoded-content-length", "lots")],
                invalid("x-amz-decoded-content-length must be a number of bytes, not 'lots'."),
            ),
        ];
        for (name, content_sha256, extra, want) in cases {
            let h = s3_put(&admin, content_sha256, &extra, b"payload", now);
            let seed = h["authorization"].to_str().unwrap().rsplit("Signature=").next().unwrap().to_string();
            // The body is not read: it has not come.
            let req = Request { method: "PUT", path: "/bucket/key", query: None, headers: &h, body: b"" };
            let got = keys.authenticate_head(&req, now, PathStyle::S3, sigv4::MAX_SKEW_SECS);
            let want = match want {
                Want::Check(check) => check,
                Want::Chunked(mode, length, announced) => chunked(mode, length, announced, &seed),
                Want::Refused(e) => {
                    assert_eq!(got, Err(e), "{name}");
                    continue;
                }
            };
            let (caller, body_check) = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!((caller.principal.arn.as_str(), caller.service.as_str()), ("arn:aws:iam::000000000000:root", "s3"), "{name}");
            assert_eq!(body_check, want, "{name}");
            // The same checks as with the body: a header changed, a clock too far, another key.
            let mut tampered = h.clone();
            tampered.insert("host", "evil:9000".parse().unwrap());
            let req = Request { headers: &tampered, ..req };
            let got = keys.authenticate_head(&req, now, PathStyle::S3, sigv4::MAX_SKEW_SECS);
            assert!(matches!(got, Err(KeyError::Signature(AuthError::Mismatch { .. } | AuthError::Invalid(_)))), "{name}: {got:?}");
            let req = Request { headers: &h, ..req };
            let late = now + chrono::Duration::minutes(16);
            let got = keys.authenticate_head(&req, late, PathStyle::S3, sigv4::MAX_SKEW_SECS);
            assert!(matches!(got, Err(KeyError::Signature(AuthError::Expired(_)))), "{name}: late: {got:?}");
        }
        // Unknown keys and session keys without their token are refused as by `authenticate`.
        // (Sessions are kept by the real clock.)
        let real_now = Utc::now();
        let session = keys.mint_session(Principal::root("000000000000"), real_now + chrono::Duration::hours(1));
        let h = s3_put(&session, Some("UNSIGNED-PAYLOAD"), &[], b"", real_now);
        let req = Request { method: "PUT", path: "/bucket/key", query: None, headers: &h, body: b"" };
        keys.authenticate_head(&req, real_now, PathStyle::S3, sigv4::MAX_SKEW_SECS).unwrap();
        let h = s3_put(&AccessKey { session_token: None, ..session.clone() }, Some("UNSIGNED-PAYLOAD"), &[], b"", real_now);
        let req = Request { headers: &h, ..req };
        assert_eq!(keys.authenticate_head(&req, real_now, PathStyle::S3, sigv4::MAX_SKEW_SECS), Err(KeyError::BadToken));
        keys.revoke(&session.id);
        let got = keys.authenticate_head(&req, real_now, PathStyle::S3, sigv4::MAX_SKEW_SECS);
        assert_eq!(got, Err(KeyError::Signature(AuthError::UnknownKey)));
        // A request with its whole body still authenticates as before.
        let h = s3_put(&admin, Some(payload_hash), &[], b"payload", now);
        let req = Request { method: "PUT", path: "/bucket/key", query: None, headers: &h, body: b"payload" };
        keys.authenticate(&req, now, PathStyle::S3).unwrap();
        let req = Request { body: b"other", ..req };
        assert_eq!(keys.authenticate(&req, now, PathStyle::S3), Err(KeyError::Signature(AuthError::ContentSha256Mismatch)));
    }

    /// AWS's documented chunked PUT, from its head to its last chunk.
    #[test]
    fn the_documented_chunked_put_authenticates_and_its_body_decodes() {
        use crate::chunked::tests::{decode, doc_body, DOC_KEY_ID, DOC_SECRET, DOC_SEED, DOC_SIGNATURES};
        use crate::chunked::{ChunkError, ChunkMode};
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = Keys::open(dir.path(), Some((DOC_KEY_ID.into(), DOC_SECRET.into())), "000000000000").unwrap();
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ] {
            h.insert(k, v.parse().unwrap());
        }
        let req = Request { method: "PUT", path: "/examplebucket/chunkObject.txt", query: None, headers: &h, body: b"" };
        let now = DateTime::parse_from_rfc3339("2013-05-24T00:00:30Z").unwrap().with_timezone(&Utc);
        let (caller, check) = keys.authenticate_head(&req, now, PathStyle::S3, sigv4::MAX_SKEW_SECS).unwrap();
        assert_eq!((caller.access_key.as_str(), caller.region.as_str()), (DOC_KEY_ID, "us-east-1"));
        let BodyCheck::Chunked(spec) = check else { panic!("{check:?}") };
        assert_eq!((spec.mode, spec.signing.seed.as_str(), spec.decoded_content_length), (ChunkMode::Signed, DOC_SEED, Some(66_560)));
        assert_eq!(
            (spec.signing.scope.as_str(), spec.signing.amz_date.as_str()),
            ("20130524/us-east-1/s3/aws4_request", "20130524T000000Z")
        );
        let body = doc_body(DOC_SIGNATURES, "");
        assert_eq!(body.len(), 66_824);
        let (out, trailers, n) = decode(&spec, &body, 8192).unwrap();
        assert!(out == vec![b'a'; 66_560] && trailers.is_empty() && Some(n) == spec.decoded_content_length);
        let mut tampered = body;
        tampered[40_000] = b'b';
        assert!(matches!(decode(&spec, &tampered, 8192), Err(ChunkError::SignatureMismatch { .. })));
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
