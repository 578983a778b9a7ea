//! Secrets at rest. A record's secret (a function's environment variables) is sealed in an
//! [`Envelope`]: AES-256-GCM under a fresh data key, and the data key sealed (wrapped) by the
//! [`MasterKey`], which lives apart from the database (`<data>/master.key`, owner-only, or a
//! file given at start). Every seal names what it is for (its context, AES-GCM's associated
//! data), so a sealed value moved to another record does not open. The database remembers a
//! check value sealed by its master key, so a server started with another key stops with a
//! clear message instead of serving garbage.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};

/// The master key's file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// What the database's check value seals (and its context).
const KEY_CHECK: &[u8] = b"nimbus master key check";

/// Why a secret could not be sealed or opened, or the master key read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Authentication failed: wrong key, wrong context, or altered bytes.
    #[error("the sealed value does not open (wrong key or context, or it was altered)")]
    Invalid,
    #[error("{path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    /// The database's check value does not open with this master key.
    #[error("the master key does not open this data directory's sealed records (they were sealed under another key)")]
    WrongMasterKey,
    /// The KMS key named to wrap a data key refused or is unknown.
    #[error("{0}")]
    Kms(String),
}

/// Seals `plaintext` under `key` for `context`: a random 96-bit nonce, then the ciphertext
/// with its 128-bit tag.
pub fn encrypt(key: &[u8; 32], plaintext: &[u8], context: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the OS random source works");
    let sealed =
        cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context }).expect("AES-GCM seals any message under 64 GB");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens what [`encrypt`] sealed with the same key and context.
pub fn decrypt(key: &[u8; 32], sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Invalid);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into()).decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context }).map_err(|_| SealError::Invalid)
}

/// 32 random bytes.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS random source works");
    key
}

/// Keys other than the master key that may wrap a record's data key: Nimbus's KMS keys,
/// named by ARN (a function's `KMSKeyArn`). Wrapping needs a usable key; unwrapping is
/// Nimbus reading its own records and does not look at the key's state (the invoke path
/// refuses a function whose key is not usable).
pub trait KeyWrapper: Send + Sync {
    fn wrap(&self, key_arn: &str, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>, String>;
    fn unwrap(&self, key_arn: &str, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>, String>;
}

/// The key every data key is wrapped by. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `--master-key-file` / `NIMBUS_MASTER_KEY_FILE`.
    Given(PathBuf),
    /// `<data>/master.key`, written by an earlier start.
    Stored(PathBuf),
    /// `<data>/master.key`, generated now.
    Generated(PathBuf),
}

/// A sealed secret: the data key wrapped by the master key, and the value sealed by the
/// data key. Stored inside a record's JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version.
    pub v: u32,
    /// The data key, sealed by the master key.
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    /// The value, sealed by the data key.
    #[serde(with = "b64")]
    pub data: Vec<u8>,
    /// The KMS key that wrapped the data key, when not the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        MasterKey(key)
    }

    /// A new random key (tests, in-memory stores).
    pub fn generate() -> MasterKey {
        MasterKey(random_key())
    }

    /// The key in `given` if set; else `<data_dir>/master.key`, created owner-only with 32
    /// random bytes when absent. A key file holds 32 raw bytes or 64 hex digits.
    pub fn open(data_dir: &Path, given: Option<&Path>) -> Result<(MasterKey, MasterKeySource), SealError> {
        if let Some(path) = given {
            return Ok((read_key_file(path)?, MasterKeySource::Given(path.to_path_buf())));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        if path.exists() {
            return Ok((read_key_file(&path)?, MasterKeySource::Stored(path)));
        }
        let key = random_key();
        let io = |source| SealError::KeyFile { path: path.clone(), source };
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
        file.write_all(&key).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok((MasterKey(key), MasterKeySource::Generated(path)))
    }

    /// Wraps a key (or any short secret) for `context`.
    pub fn wrap(&self, secret: &[u8], context: &[u8]) -> Vec<u8> {
        encrypt(&self.0, secret, context)
    }

    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        decrypt(&self.0, wrapped, context)
    }

    /// Seals `plaintext` for `context` under a fresh data key wrapped by this key.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Envelope {
        let data_key = random_key();
        Envelope { v: 1, key: self.wrap(&data_key, context), data: encrypt(&data_key, plaintext, context), kms_key: None }
    }

    /// Opens an [`Envelope`] sealed by [`MasterKey::seal`] for the same context.
    pub fn open_envelope(&self, envelope: &Envelope, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let data_key: [u8; 32] = self.unwrap(&envelope.key, context)?.try_into().map_err(|_| SealError::Invalid)?;
        decrypt(&data_key, &envelope.data, context)
    }

    /// [`MasterKey::seal`] with the data key wrapped by the KMS key `kms_key` instead.
    pub fn seal_with(&self, wrapper: &dyn KeyWrapper, kms_key: &str, plaintext: &[u8], context: &[u8]) -> Result<Envelope, SealError> {
        let data_key = random_key();
        let key = wrapper.wrap(kms_key, &data_key, context).map_err(SealError::Kms)?;
        Ok(Envelope { v: 1, key, data: encrypt(&data_key, plaintext, context), kms_key: Some(kms_key.to_string()) })
    }

    /// Opens an envelope whichever key wrapped its data key.
    pub fn open_any(&self, wrapper: Option<&dyn KeyWrapper>, envelope: &Envelope, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(kms_key) = &envelope.kms_key else { return self.open_envelope(envelope, context) };
        let wrapper = wrapper.ok_or_else(|| SealError::Kms(format!("no KMS to open a data key wrapped by {kms_key}")))?;
        let data_key: [u8; 32] =
            wrapper.unwrap(kms_key, &envelope.key, context).map_err(SealError::Kms)?.try_into().map_err(|_| SealError::Invalid)?;
        decrypt(&data_key, &envelope.data, context)
    }

    /// A key for another purpose (`label`), the same wherever this master key is: for
    /// nodes that share it to recognize each other's messages.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::new().chain_update(b"nimbus-derived-key\0").chain_update(self.0).chain_update(label).finalize().into()
    }

    /// The check value a database keeps to recognize its master key.
    pub fn key_check(&self) -> Vec<u8> {
        self.wrap(KEY_CHECK, KEY_CHECK)
    }

    /// Whether `check` was made by [`MasterKey::key_check`] with this key.
    pub fn verify(&self, check: &[u8]) -> Result<(), SealError> {
        match self.unwrap(check, KEY_CHECK) {
            Ok(v) if v == KEY_CHECK => Ok(()),
            _ => Err(SealError::WrongMasterKey),
        }
    }
}

/// The table a database keeps its master key's check value in; each sealing store creates
/// it in one of its migrations:
/// `CREATE TABLE sealing (id INTEGER PRIMARY KEY CHECK (id = 1), key_check BLOB NOT NULL)`.
const CHECK_TABLE: &str = "sealing";

/// At a store's open, in its transaction: checks that `master` is the key the database's
/// records are sealed under ([`SealError::WrongMasterKey`] if not), recording its check
/// value on the first open.
pub fn check_database_key(tx: &rusqlite::Transaction<'_>, master: &MasterKey) -> Result<(), crate::StoreError> {
    use rusqlite::OptionalExtension;
    let check: Option<Vec<u8>> = tx.query_row(&format!("SELECT key_check FROM {CHECK_TABLE} WHERE id = 1"), [], |r| r.get(0)).optional()?;
    match check {
        Some(check) => master.verify(&check)?,
        None => {
            tx.execute(&format!("INSERT INTO {CHECK_TABLE} (id, key_check) VALUES (1, ?1)"), [master.key_check()])?;
        }
    }
    Ok(())
}

/// After plain-text secrets were sealed in place (outside any transaction): rewrites every
/// page of the file and truncates the WAL, so the freed plain text is gone from the disk
/// too, not only from the tables.
pub fn scrub_freed_pages(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch("VACUUM")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

fn read_key_file(path: &Path) -> Result<MasterKey, SealError> {
    let bytes = std::fs::read(path).map_err(|source| SealError::KeyFile { path: path.to_path_buf(), source })?;
    let bad = |reason: &str| SealError::BadKeyFile { path: path.to_path_buf(), reason: reason.to_string() };
    let key: Vec<u8> = if bytes.len() == 32 {
        bytes
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("a master key file holds 32 raw bytes or 64 hex digits"))?.trim();
        hex::decode(text).map_err(|_| bad("a master key file holds 32 raw bytes or 64 hex digits"))?
    };
    let key: [u8; 32] = key.try_into().map_err(|_| bad("a master key file holds 32 raw bytes or 64 hex digits"))?;
    Ok(MasterKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What to do to a sealed value before opening it.
    #[derive(Debug, Clone, Copy)]
    enum Twist {
        None,
        FlipCiphertextBit,
        FlipNonceBit,
        Truncate,
        OtherContext,
        OtherKey,
        SwapDataKey,
    }

    fn check(plaintext: &[u8], twist: Twist, want_ok: bool) {
        let master = MasterKey::from_bytes([7; 32]);
        let mut env = master.seal(plaintext, b"function:f:$LATEST");
        let (mut key, mut context) = (master.clone(), b"function:f:$LATEST".as_slice());
        match twist {
            Twist::None => {}
            Twist::FlipCiphertextBit => *env.data.last_mut().expect("non-empty") ^= 1,
            Twist::FlipNonceBit => env.data[0] ^= 0x80,
            Twist::Truncate => env.data.truncate(10),
            Twist::OtherContext => context = b"function:f:1",
            Twist::OtherKey => key = MasterKey::from_bytes([8; 32]),
            Twist::SwapDataKey => env.key = master.seal(b"x", b"function:f:$LATEST").key,
        }
        let got = key.open_envelope(&env, context);
        match (got, want_ok) {
            (Ok(v), true) => assert_eq!(v, plaintext, "{twist:?}"),
            (Err(SealError::Invalid), false) => {}
            (got, _) => panic!("{twist:?}: got {got:?}, want ok={want_ok}"),
        }
        // The plaintext never appears in the sealed bytes.
        if plaintext.len() > 4 {
            let stored = serde_json::to_string(&env).expect("envelope serializes");
            assert!(!stored.contains(std::str::from_utf8(plaintext).expect("utf8")), "{twist:?}");
        }
    }

    #[test]
    fn envelope_round_trips_and_refuses_tampering() {
        let cases: &[(&[u8], Twist, bool)] = &[
            (b"{\"DB_PASSWORD\":\"hunter2-secret\"}", Twist::None, true),
            (b"", Twist::None, true),
            (b"{\"A\":\"1\"}", Twist::FlipCiphertextBit, false),
            (b"{\"A\":\"1\"}", Twist::FlipNonceBit, false),
            (b"{\"A\":\"1\"}", Twist::Truncate, false),
            (b"{\"A\":\"1\"}", Twist::OtherContext, false),
            (b"{\"A\":\"1\"}", Twist::OtherKey, false),
            (b"{\"A\":\"1\"}", Twist::SwapDataKey, false),
        ];
        for (plaintext, twist, ok) in cases {
            check(plaintext, *twist, *ok);
        }
    }

    #[test]
    fn key_check_recognizes_its_key() {
        let a = MasterKey::generate();
        let check = a.key_check();
        a.verify(&check).expect("its own check value");
        assert!(matches!(MasterKey::generate().verify(&check), Err(SealError::WrongMasterKey)));
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (k1, s1) = MasterKey::open(dir.path(), None).expect("generated");
        assert!(matches!(s1, MasterKeySource::Generated(_)));
        let path = dir.path().join(MASTER_KEY_FILE);
        let mode = std::fs::metadata(&path).expect("stat").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let (k2, s2) = MasterKey::open(dir.path(), None).expect("stored");
        assert!(matches!(s2, MasterKeySource::Stored(_)));
        assert_eq!(k1.0, k2.0);

        let cases: &[(&[u8], bool)] = &[
            (&[1; 32], true),
            (b"0101010101010101010101010101010101010101010101010101010101010101\n", true),
            (b"short", false),
            (&[1; 33], false),
        ];
        for (i, (content, ok)) in cases.iter().enumerate() {
            let given = dir.path().join(format!("given-{i}"));
            std::fs::write(&given, content).expect("write");
            let got = MasterKey::open(dir.path(), Some(&given));
            assert_eq!(got.is_ok(), *ok, "case {i}: {got:?}");
            if let Ok((key, _)) = got {
                assert_eq!(key.0, [1; 32], "case {i}");
            }
        }
        assert!(matches!(MasterKey::open(dir.path(), Some(&dir.path().join("absent"))), Err(SealError::KeyFile { .. })));
    }
}
