//! The KMS domain's behaviour, as tables.

use super::*;

fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn service(dir: &Path, master: MasterKey) -> Arc<KmsService> {
    KmsService::open(Some(&dir.join("kms.db")), master, "us-east-1", "000000000000").expect("open")
}

#[tokio::test]
async fn ciphertexts_open_only_with_their_key_and_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = service(dir.path(), MasterKey::from_bytes([1; 32]));
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

#[tokio::test]
async fn states_aliases_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = MasterKey::from_bytes([2; 32]);
    let kms = service(dir.path(), master.clone());
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

    // Reopened: keys, states, aliases and material are back; the material is not in the file.
    let kms = service(dir.path(), master);
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
    assert!(KmsService::open(Some(&dir.path().join("kms.db")), MasterKey::from_bytes([3; 32]), "us-east-1", "0").is_err());
}

#[tokio::test]
async fn key_policies_and_what_authorization_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = MasterKey::from_bytes([4; 32]);
    let kms = service(dir.path(), master.clone());
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
    let kms = service(dir.path(), master);
    assert_eq!(kms.key_policy(&default.id).expect("policy after a restart"), own);
    kms.schedule_key_deletion(&default.id, None).await.expect("schedule");
    assert!(matches!(kms.put_key_policy(&default.id, own.into()).await, Err(KmsError::InvalidState(_))));
}
