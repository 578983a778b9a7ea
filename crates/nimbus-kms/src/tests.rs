//! The KMS domain's behaviour, as tables, on both engines (`kms.db`, and a throwaway
//! PostgreSQL database per test when `NIMBUS_TEST_POSTGRES` names a server), and nodes
//! sharing one database, each following the others' keys within a second.

use std::time::{Duration, Instant};

use nimbus_store::pg::testing::fresh_database;

use super::*;

fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

/// Where a test's keys are kept, as many restarts as it likes: a `kms.db` in a directory,
/// or a PostgreSQL database.
enum Place {
    File(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    fn file() -> Place {
        Place::File(tempfile::tempdir().expect("tempdir"))
    }

    /// A server's KMS (started again when called again) over these keys.
    async fn open(&self, master: MasterKey) -> Result<Arc<KmsService>, KmsError> {
        match self {
            Place::File(dir) => KmsService::open(Some(&dir.path().join("kms.db")), master, REGION, ACCOUNT),
            Place::Postgres(url) => KmsService::open_shared(url, master, REGION, ACCOUNT).await,
        }
    }

    async fn service(&self, master: MasterKey) -> Arc<KmsService> {
        self.open(master).await.expect("open")
    }
}

/// Each behaviour test runs on both engines: `sqlite::name` and `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Place::file()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = super::fresh_database().await else { return };
                    super::$name(super::Place::Postgres(url)).await
                }
            )*
        }
    };
}

on_both_engines!(
    ciphertexts_open_only_with_their_key_and_context,
    states_aliases_and_restarts,
    key_policies_and_what_authorization_reads,
    material_is_stored_sealed,
);

async fn ciphertexts_open_only_with_their_key_and_context(place: Place) {
    let kms = place.service(MasterKey::from_bytes([1; 32])).await;
    let a = kms.create_key("a".into(), None).await.expect("key a");
    let b = kms.create_key("b".into(), None).await.expect("key b");
    let good = ctx(&[("purpose", "test")]);
    let (blob, arn) = kms.encrypt(&a.id, b"secret", &good).await.expect("encrypt");
    assert_eq!(arn, a.arn);
    let mut flipped = blob.clone();
    *flipped.last_mut().expect("non-empty") ^= 1;
    type Case<'a> = (&'a str, Vec<u8>, BTreeMap<String, String>, Option<&'a str>, Result<&'a [u8], KmsError>);
    let cases: Vec<Case> = vec![
        ("round trip", blob.clone(), good.clone(), None, Ok(b"secret")),
        ("by key id", blob.clone(), good.clone(), Some(&a.id), Ok(b"secret")),
        ("other context", blob.clone(), ctx(&[("purpose", "other")]), None, Err(KmsError::InvalidCiphertext)),
        ("no context", blob.clone(), ctx(&[]), None, Err(KmsError::InvalidCiphertext)),
        ("tampered", flipped, good.clone(), None, Err(KmsError::InvalidCiphertext)),
        ("garbage", b"not a blob".to_vec(), good.clone(), None, Err(KmsError::InvalidCiphertext)),
        ("another key named", blob.clone(), good.clone(), Some(&b.id), Err(KmsError::IncorrectKey)),
    ];
    for (what, blob, context, key, want) in cases {
        let got = kms.decrypt(&blob, &context, key).await.map(|(p, _)| p);
        assert_eq!(got.as_deref().map_err(Clone::clone), want, "{what}");
    }
}

async fn states_aliases_and_restarts(place: Place) {
    let master = MasterKey::from_bytes([2; 32]);
    let kms = place.service(master.clone()).await;
    let key = kms.create_key(String::new(), None).await.expect("key");
    let (blob, _) = kms.encrypt(&key.id, b"x", &ctx(&[])).await.expect("encrypt");
    kms.create_alias("alias/app", &key.id).await.expect("alias");
    assert_eq!(kms.describe_key("alias/app").await.expect("by alias").id, key.id);
    assert_eq!(kms.describe_key("arn:aws:kms:us-east-1:000000000000:alias/app").await.expect("by alias arn").id, key.id);
    assert_eq!(kms.describe_key(&key.arn).await.expect("by arn").id, key.id);
    assert!(matches!(kms.create_alias("alias/app", &key.id).await, Err(KmsError::AlreadyExists(_))));
    assert!(matches!(kms.create_alias("app", &key.id).await, Err(KmsError::Validation(_))));

    kms.disable_key(&key.id).await.expect("disable");
    assert_eq!(kms.encrypt(&key.id, b"x", &ctx(&[])).await.unwrap_err(), KmsError::Disabled(format!("{} is disabled.", key.arn)));
    assert!(matches!(kms.decrypt(&blob, &ctx(&[]), None).await, Err(KmsError::Disabled(_))));
    kms.enable_key(&key.id).await.expect("enable");
    let scheduled = kms.schedule_key_deletion(&key.id, Some(7)).await.expect("schedule");
    assert_eq!((scheduled.state, scheduled.pending_window_days), (KeyState::PendingDeletion, Some(7)));
    assert!(matches!(kms.decrypt(&blob, &ctx(&[]), None).await, Err(KmsError::InvalidState(_))));
    assert!(matches!(kms.enable_key(&key.id).await, Err(KmsError::InvalidState(_))));
    assert!(matches!(kms.schedule_key_deletion(&key.id, Some(6)).await, Err(KmsError::Validation(_))));
    assert_eq!(kms.cancel_key_deletion(&key.id).await.expect("cancel").state, KeyState::Disabled);
    kms.enable_key(&key.id).await.expect("enable");
    drop(kms);

    // Reopened: keys, states, aliases and material are back.
    let kms = place.service(master).await;
    assert_eq!(kms.decrypt(&blob, &ctx(&[]), Some("alias/app")).await.expect("decrypt").0, b"x");
    assert_eq!(kms.list_aliases(Some(&key.id)).await.expect("aliases").len(), 1);
    kms.delete_alias("alias/app").await.expect("delete alias");
    assert!(matches!(kms.describe_key("alias/app").await, Err(KmsError::NotFound(_))));
    let missing = "6f8d2a3c-0000-4000-8000-000000000000";
    assert_eq!(
        kms.describe_key(missing).await.unwrap_err(),
        KmsError::NotFound(format!("Key 'arn:aws:kms:us-east-1:000000000000:key/{missing}' does not exist"))
    );
    assert_eq!(kms.describe_key("fake-key-id").await.unwrap_err(), KmsError::NotFound("Invalid keyId 'fake-key-id'".into()));
    drop(kms);
    // Another master key does not open the material.
    let wrong = place.open(MasterKey::from_bytes([3; 32])).await;
    assert!(matches!(wrong, Err(KmsError::Internal(ref m)) if m.contains("master key")), "{:?}", wrong.err());
}

async fn key_policies_and_what_authorization_reads(place: Place) {
    let master = MasterKey::from_bytes([4; 32]);
    let kms = place.service(master.clone()).await;
    let default = kms.create_key("d".into(), None).await.expect("key");
    let own = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/a"},"Action":"kms:*","Resource":"*"}]}"#;
    let custom = kms.create_key("c".into(), Some(own.into())).await.expect("key");
    assert_eq!(kms.key_policy(&default.id).expect("policy"), default_key_policy("000000000000"));
    let parsed: serde_json::Value = serde_json::from_str(&default_key_policy("000000000000")).expect("JSON");
    assert_eq!(parsed["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::000000000000:root");
    assert_eq!(kms.key_policy(&custom.arn).expect("policy"), own);
    kms.put_key_policy(&default.id, own.into()).await.expect("put");
    kms.create_alias("alias/c", &custom.id).await.expect("alias");
    assert_eq!(kms.key_arn_of("alias/c").as_deref(), Some(custom.arn.as_str()));
    assert_eq!(kms.key_arn_of("arn:aws:kms:us-east-1:000000000000:alias/c").as_deref(), Some(custom.arn.as_str()));
    assert_eq!(kms.key_arn_of(&default.id).as_deref(), Some(default.arn.as_str()));
    assert_eq!(kms.key_arn_of("alias/none"), None);
    let (blob, _) = kms.encrypt("alias/c", b"x", &ctx(&[])).await.expect("encrypt");
    assert_eq!(ciphertext_key_id(&blob), Some(custom.id.as_str()));
    assert_eq!(ciphertext_key_id(b"nope"), None);
    drop(kms);
    let kms = place.service(master).await;
    assert_eq!(kms.key_policy(&default.id).expect("policy after a restart"), own);
    kms.schedule_key_deletion(&default.id, None).await.expect("schedule");
    assert!(matches!(kms.put_key_policy(&default.id, own.into()).await, Err(KmsError::InvalidState(_))));
}

/// What the database holds of a key is its material sealed by the master key, never the
/// material itself.
async fn material_is_stored_sealed(place: Place) {
    let kms = place.service(MasterKey::from_bytes([5; 32])).await;
    let key = kms.create_key("k".into(), None).await.expect("key");
    let material = hex::encode(kms.read().keys[&key.id].1);
    let docs = kms.store.raw_documents().await;
    assert!(docs.iter().any(|d| d.contains(&key.id)), "the key is stored");
    assert!(!docs.iter().any(|d| d.contains(&material)), "the material is stored sealed");
}

/// Waits (a second at most) until `ok` holds.
async fn within_a_second(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < Duration::from_secs(1), "{what}: not after a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two nodes of one account on one PostgreSQL database, with the same master key.
async fn two_nodes(url: &str) -> (Arc<KmsService>, Arc<KmsService>) {
    let master = MasterKey::generate();
    let a = KmsService::open_shared(url, master.clone(), REGION, ACCOUNT).await.expect("open a");
    let b = KmsService::open_shared(url, master, REGION, ACCOUNT).await.expect("open b");
    (a, b)
}

#[tokio::test]
async fn a_key_made_on_one_node_works_on_the_other_within_a_second() {
    let Some(url) = fresh_database().await else { return };
    let (a, b) = two_nodes(&url).await;
    let key = a.create_key("shared".into(), None).await.expect("key");
    let context = ctx(&[("app", "x")]);
    let (blob, _) = a.encrypt(&key.id, b"secret", &context).await.expect("encrypt on a");
    within_a_second("b knows the key", || b.check_usable(&key.arn).is_ok()).await;
    assert_eq!(b.decrypt(&blob, &context, None).await.expect("decrypt on b").0, b"secret");
    // And the other way; a data key wrapped for a function's records too.
    let (blob, _) = b.encrypt(&key.arn, b"back", &context).await.expect("encrypt on b");
    assert_eq!(a.decrypt(&blob, &context, Some(&key.id)).await.expect("decrypt on a").0, b"back");
    let wrapped = sealing::KeyWrapper::wrap(&*a, &key.arn, &[7; 32], b"record").expect("wrap on a");
    assert_eq!(sealing::KeyWrapper::unwrap(&*b, &key.arn, &wrapped, b"record").expect("unwrap on b"), [7; 32]);

    // An alias made on b names the key on a; deleted on a, it is gone on b.
    b.create_alias("alias/shared", &key.id).await.expect("alias");
    within_a_second("a knows the alias", || a.key_arn_of("alias/shared").as_deref() == Some(key.arn.as_str())).await;
    assert!(matches!(a.create_alias("alias/shared", &key.id).await, Err(KmsError::AlreadyExists(_))));
    a.delete_alias("alias/shared").await.expect("delete alias");
    within_a_second("b forgets the alias", || b.key_arn_of("alias/shared").is_none()).await;
    assert_eq!(b.list_keys(None, None).await.items.len(), 1);
}

#[tokio::test]
async fn a_key_disabled_or_scheduled_for_deletion_on_one_node_is_refused_on_the_other() {
    let Some(url) = fresh_database().await else { return };
    let (a, b) = two_nodes(&url).await;
    let key = a.create_key(String::new(), None).await.expect("key");
    let (blob, _) = a.encrypt(&key.id, b"x", &ctx(&[])).await.expect("encrypt");
    within_a_second("b knows the key", || b.check_usable(&key.id).is_ok()).await;

    a.disable_key(&key.id).await.expect("disable on a");
    within_a_second("b refuses the disabled key", || matches!(b.check_usable(&key.id), Err(KmsError::Disabled(_)))).await;
    assert!(matches!(b.decrypt(&blob, &ctx(&[]), None).await, Err(KmsError::Disabled(_))));
    sealing::KeyWrapper::wrap(&*b, &key.arn, &[1; 32], b"r").expect_err("no wrapping under a disabled key");

    b.enable_key(&key.id).await.expect("enable on b");
    within_a_second("a takes the key again", || a.check_usable(&key.id).is_ok()).await;
    b.schedule_key_deletion(&key.id, Some(7)).await.expect("schedule on b");
    within_a_second("a refuses the key pending deletion", || matches!(a.check_usable(&key.id), Err(KmsError::InvalidState(_)))).await;
    assert!(matches!(a.decrypt(&blob, &ctx(&[]), None).await, Err(KmsError::InvalidState(_))));
    assert_eq!(a.describe_key(&key.id).await.expect("describe").pending_window_days, Some(7));
}

/// A node whose memory is behind (here: one that does not follow the feed) decides its
/// change again on what is stored instead of writing over another node's change.
#[tokio::test]
async fn a_change_decided_on_a_stale_mirror_is_decided_again() {
    let Some(url) = fresh_database().await else { return };
    let master = MasterKey::generate();
    let a = KmsService::open_shared(&url, master.clone(), REGION, ACCOUNT).await.expect("open a");
    let key = a.create_key(String::new(), None).await.expect("key");
    let other = a.create_key(String::new(), None).await.expect("another key");
    let store = KmsStore::open_shared(&url, ACCOUNT, "nimbus-kms-behind", &master).await.expect("open the store");
    let snapshot = store.load().await.expect("load");
    let behind = KmsService::with_store(store, snapshot, master, REGION, ACCOUNT).expect("a node that does not follow");

    a.schedule_key_deletion(&key.id, None).await.expect("schedule on a");
    assert!(behind.check_usable(&key.id).is_ok(), "behind has not heard");
    // Enabling it there would undo the deletion: refused once behind has read it.
    assert!(matches!(behind.enable_key(&key.id).await, Err(KmsError::InvalidState(_))));
    let described = behind.describe_key(&key.id).await.expect("describe");
    assert_eq!((described.state, described.revision), (KeyState::PendingDeletion, 2));
    // An alias another node made meanwhile exists; one it deleted does not.
    a.create_alias("alias/x", &other.id).await.expect("alias on a");
    assert!(matches!(behind.create_alias("alias/x", &other.id).await, Err(KmsError::AlreadyExists(_))));
    a.delete_alias("alias/x").await.expect("delete on a");
    assert!(matches!(behind.delete_alias("alias/x").await, Err(KmsError::NotFound(_))));
    behind.create_alias("alias/x", &other.id).await.expect("alias on behind");
    assert_eq!(behind.key_arn_of("alias/x"), Some(other.arn));
}

#[tokio::test]
async fn a_node_with_another_master_key_is_refused() {
    let Some(url) = fresh_database().await else { return };
    let master = MasterKey::generate();
    KmsService::open_shared(&url, master.clone(), REGION, ACCOUNT).await.expect("first node");
    let wrong = KmsService::open_shared(&url, MasterKey::generate(), REGION, ACCOUNT).await;
    assert!(matches!(wrong, Err(KmsError::Internal(ref m)) if m.contains("master key")), "{:?}", wrong.err());
    // The right one still opens; so does another account's schema, with its own key.
    KmsService::open_shared(&url, master, REGION, ACCOUNT).await.expect("same key");
    KmsService::open_shared(&url, MasterKey::generate(), REGION, "111111111111").await.expect("another account");
}
