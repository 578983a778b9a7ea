//! The service over an in-memory `iam.db`: each operation's answers and refusals as tables,
//! keys reaching `nimbus_identity::Keys`, the store's round trip (on `iam.db`; `shared` runs
//! the same cases on PostgreSQL, and nodes sharing one database), and AssumeRole's trust
//! checks.

mod shared;

use std::sync::Arc;

use nimbus_identity::{Keys, Principal};

use crate::store::IamStore;
use crate::{AssumeRoleInput, IamError, IamService, Owner, Scope};

const ACCOUNT: &str = "000000000000";
const TRUST_LAMBDA: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn root() -> Principal {
    Principal::root(ACCOUNT)
}

fn user(name: &str) -> Principal {
    Principal { account: ACCOUNT.into(), arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}") }
}

async fn service() -> (Arc<IamService>, Arc<Keys>) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = Keys::open(dir.path(), Some(("AKIAADMIN".into(), "s".into())), ACCOUNT).unwrap();
    let keys = Arc::new(keys);
    (IamService::with_store(IamStore::open_in_memory().unwrap(), ACCOUNT, Some(keys.clone())).await.unwrap(), keys)
}

fn code(r: Result<impl std::fmt::Debug, IamError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("{} {}: {e}", e.status(), e.code()),
    }
}

#[tokio::test]
async fn users_and_their_refusals() {
    let (svc, _) = service().await;
    let bob = svc.create_user("bob".into(), None).await.unwrap();
    assert_eq!(bob.arn, "arn:aws:iam::000000000000:user/bob");
    assert!(bob.user_id.starts_with("AIDA") && bob.user_id.len() == 20);
    let cases: Vec<(Result<String, IamError>, &str)> = vec![
        (svc.create_user("bob".into(), None).await.map(|u| u.arn), "409 EntityAlreadyExists: User with name bob already exists."),
        (svc.get_user(Some("nobody"), &root()).map(|u| u.arn), "404 NoSuchEntity: The user with name nobody cannot be found."),
        (
            svc.create_user("b b".into(), None).await.map(|u| u.arn),
            r"400 ValidationError: 1 validation error detected: Value 'b b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+",
        ),
        (svc.get_user(None, &user("bob")).map(|u| u.arn), r#"ok "arn:aws:iam::000000000000:user/bob""#),
        (svc.get_user(None, &root()).map(|u| u.arn), r#"ok "arn:aws:iam::000000000000:root""#),
        (
            svc.get_user(None, &Principal::assumed_role("arn:aws:iam::000000000000:role/r", "s")).map(|u| u.arn),
            "400 ValidationError: Must specify userName when calling with non-User credentials",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(code(got), want);
    }
    let path = svc.create_user("carol".into(), Some("/team/".into())).await.unwrap();
    assert_eq!(path.arn, "arn:aws:iam::000000000000:user/team/carol");
    assert_eq!(svc.list_users(Some("/team/")).len(), 1);
    assert_eq!(svc.list_users(None).len(), 2);
}

#[tokio::test]
async fn keys_authenticate_while_active_and_block_deletion() {
    let (svc, _keys) = service().await;
    svc.create_user("bob".into(), None).await.unwrap();
    let k = svc.create_access_key(Some("bob".into()), &root()).await.unwrap();
    assert!(k.access_key_id.starts_with("AKIA") && k.access_key_id.len() == 20 && k.secret_access_key.len() == 40);
    svc.create_access_key(Some("bob".into()), &root()).await.unwrap();
    assert_eq!(
        code(svc.create_access_key(Some("bob".into()), &root()).await),
        "409 LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2"
    );
    assert_eq!(code(svc.delete_user("bob".into()).await), "409 DeleteConflict: Cannot delete entity, must delete access keys first.");
    svc.update_access_key(None, k.access_key_id.clone(), "Inactive", &user("bob")).await.unwrap();
    let listed = svc.list_access_keys(Some("bob".into()), &root()).unwrap();
    assert_eq!(listed.iter().filter(|k| k.status == "Inactive").count(), 1);
    assert_eq!(
        code(svc.delete_access_key(Some("bob".into()), "AKIANOPE".into(), &root()).await),
        "404 NoSuchEntity: The Access Key with id AKIANOPE cannot be found."
    );
    for k in listed {
        svc.delete_access_key(Some("bob".into()), k.access_key_id, &root()).await.unwrap();
    }
    svc.put_inline_policy(Owner::User, "bob".into(), "p".into(), ALLOW_ALL.into()).await.unwrap();
    assert_eq!(code(svc.delete_user("bob".into()).await), "409 DeleteConflict: Cannot delete entity, must delete policies first.");
    svc.delete_inline_policy(Owner::User, "bob".into(), "p".into()).await.unwrap();
    svc.delete_user("bob".into()).await.unwrap();
}

#[tokio::test]
async fn roles_policies_and_attachments() {
    let (svc, _) = service().await;
    assert_eq!(
        code(svc.create_role("r".into(), None, "{not json".into(), None, None).await.map(|r| r.arn)),
        "400 MalformedPolicyDocument: This policy contains invalid Json"
    );
    assert_eq!(
        code(svc.create_role("r".into(), None, ALLOW_ALL.into(), None, None).await.map(|r| r.arn)),
        "400 MalformedPolicyDocument: Has prohibited field Resource"
    );
    let r = svc.create_role("r".into(), None, TRUST_LAMBDA.into(), None, None).await.unwrap();
    assert!(r.assume_role_policy_document.starts_with("%7B%22Version%22"), "{}", r.assume_role_policy_document);
    assert_eq!(r.max_session_duration, None);
    assert_eq!(svc.get_role("r").unwrap().max_session_duration, Some(3600));
    assert_eq!(
        code(
            svc.put_inline_policy(
                Owner::Role,
                "r".into(),
                "p".into(),
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into()
            )
            .await
        ),
        "400 MalformedPolicyDocument: Policy document must be version 2012-10-17 or greater."
    );
    svc.put_inline_policy(Owner::Role, "r".into(), "p".into(), ALLOW_ALL.into()).await.unwrap();
    assert_eq!(svc.list_inline_policies(Owner::Role, "r").unwrap(), ["p"]);
    assert_eq!(code(svc.get_inline_policy(Owner::Role, "r", "q")), "404 NoSuchEntity: The role policy with name q cannot be found.");
    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    svc.attach_policy(Owner::Role, "r".into(), basic.into()).await.unwrap();
    let missing = "arn:aws:iam::000000000000:policy/nope";
    assert_eq!(
        code(svc.attach_policy(Owner::Role, "r".into(), missing.into()).await),
        "404 NoSuchEntity: Policy arn:aws:iam::000000000000:policy/nope does not exist or is not attachable."
    );
    let mine = svc.create_policy("mine".into(), None, ALLOW_ALL.into(), None).await.unwrap();
    assert_eq!(mine.arn, "arn:aws:iam::000000000000:policy/mine");
    svc.attach_policy(Owner::Role, "r".into(), mine.arn.clone()).await.unwrap();
    assert_eq!(svc.get_policy(&mine.arn).unwrap().attachment_count, 1);
    assert_eq!(code(svc.delete_policy(mine.arn.clone()).await), "409 DeleteConflict: Cannot delete a policy attached to entities.");
    assert_eq!(code(svc.delete_role("r".into()).await), "409 DeleteConflict: Cannot delete entity, must delete policies first.");
    // The role's sessions get its inline and attached policies, parsed.
    let policies = svc.identity_policies("arn:aws:sts::000000000000:assumed-role/r/s");
    assert_eq!(policies.len(), 3);
    // Parsed once, when stored.
    let again = svc.identity_policies("arn:aws:sts::000000000000:assumed-role/r/s");
    assert!(policies.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)));
    assert!(svc.identity_policies(&format!("arn:aws:iam::{ACCOUNT}:root")).is_empty());
    assert!(svc.trust_policy("r").is_some());
    assert_eq!(svc.list_policies(Scope::Local, false, None).len(), 1);
    assert!(svc.list_policies(Scope::Aws, false, None).iter().any(|p| p.arn == basic && p.attachment_count == 1));
    assert_eq!(svc.list_policies(Scope::All, true, None).len(), 2);
    svc.detach_policy(Owner::Role, "r".into(), mine.arn.clone()).await.unwrap();
    assert_eq!(
        code(svc.detach_policy(Owner::Role, "r".into(), mine.arn.clone()).await),
        "404 NoSuchEntity: Policy arn:aws:iam::000000000000:policy/mine was not found."
    );
    svc.delete_policy(mine.arn).await.unwrap();
}

/// Where a test's IAM keeps its records, as many restarts as it likes: an `iam.db` in a
/// directory, or a PostgreSQL database (`shared`).
enum Place {
    File(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    fn file() -> Place {
        Place::File(tempfile::tempdir().unwrap())
    }

    /// A server's IAM (started again when called again) over these records.
    async fn open(&self, keys: Arc<Keys>, master: &nimbus_store::MasterKey) -> Result<Arc<IamService>, IamError> {
        match self {
            Place::File(dir) => IamService::open(&dir.path().join("iam.db"), ACCOUNT, Some(keys), master.clone()).await,
            Place::Postgres(url) => IamService::open_shared(url, ACCOUNT, Some(keys), master.clone()).await,
        }
    }

    /// Whether the stored records hold `needle` anywhere (for the file: also its WAL and
    /// freed pages).
    async fn holds(&self, master: &nimbus_store::MasterKey, needle: &str) -> bool {
        match self {
            Place::File(dir) => on_disk(dir.path(), needle),
            Place::Postgres(url) => {
                let store = IamStore::open_shared(url, ACCOUNT, "nimbus-iam-test-reader", master.clone()).await.unwrap();
                store.raw_documents().await.iter().any(|d| d.contains(needle))
            }
        }
    }
}

/// A server's own `Keys` (the administrator's, and what IAM hands it).
fn fresh_keys() -> Arc<Keys> {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(Keys::open(dir.path(), Some(("AKIAADMIN".into(), "s".into())), ACCOUNT).unwrap().0)
}

#[tokio::test]
async fn the_store_keeps_everything_across_restarts() {
    keeps_everything_across_restarts(&Place::file()).await;
}

async fn keeps_everything_across_restarts(place: &Place) {
    let master = nimbus_store::MasterKey::generate();
    let keys = fresh_keys();
    let svc = place.open(keys.clone(), &master).await.unwrap();
    svc.create_user("bob".into(), None).await.unwrap();
    let k = svc.create_access_key(Some("bob".into()), &root()).await.unwrap();
    svc.create_role("r".into(), None, TRUST_LAMBDA.into(), None, None).await.unwrap();
    svc.create_policy("mine".into(), Some("/x/".into()), ALLOW_ALL.into(), None).await.unwrap();
    drop(svc);
    let again = place.open(keys, &master).await.unwrap();
    assert_eq!(again.get_user(Some("bob"), &root()).unwrap().user_name.as_deref(), Some("bob"));
    assert_eq!(again.list_access_keys(Some("bob".into()), &root()).unwrap()[0].access_key_id, k.access_key_id);
    assert_eq!(again.read().keys[&k.access_key_id].secret, k.secret_access_key);
    assert!(!place.holds(&master, &k.secret_access_key).await, "the secret is sealed");
    again.get_role("r").unwrap();
    again.get_policy("arn:aws:iam::000000000000:policy/x/mine").unwrap();
}

#[tokio::test]
async fn the_store_reads_back_what_it_committed() {
    store_round_trip(&IamStore::open_in_memory().unwrap()).await;
}

/// Every kind of change committed and read back: replaced records, deletions, sessions
/// forgotten long after they expired, secrets sealed, and a list that fails as a whole.
async fn store_round_trip(store: &IamStore) {
    use crate::store::{Change, KeyRecord, PolicyRecord, RoleRecord, UserRecord};
    use nimbus_identity::{AccessKey, SessionPolicy};

    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    let bob = UserRecord {
        name: "bob".into(),
        id: "AIDABOB".into(),
        path: "/team/".into(),
        created: 1,
        inline: [("p".to_string(), ALLOW_ALL.to_string())].into(),
        attached: vec![basic.into()],
    };
    let role = RoleRecord {
        name: "r".into(),
        id: "AROAR".into(),
        path: "/".into(),
        created: 2,
        trust: TRUST_LAMBDA.into(),
        description: Some("a role".into()),
        max_session: 7200,
        inline: Default::default(),
        attached: vec![],
    };
    let policy = PolicyRecord {
        name: "mine".into(),
        id: "ANPAMINE".into(),
        path: "/".into(),
        created: 3,
        description: None,
        document: ALLOW_ALL.into(),
    };
    let key = KeyRecord { id: "AKIABOB1".into(), secret: "secret-of-key-one-needle".into(), user: "bob".into(), active: true, created: 4 };
    let idle = KeyRecord { id: "AKIABOB2".into(), secret: "secret-of-key-two".into(), active: false, created: 5, ..key.clone() };
    let at = |hours: i64| chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis() + hours * 3_600_000);
    let role_session = AccessKey {
        id: "ASIAROLE".into(),
        secret: "secret-of-a-role-session-needle".into(),
        principal: Principal::assumed_role("arn:aws:iam::000000000000:role/r", "s"),
        session_token: Some("token-of-a-role-session-needle".into()),
        expires: at(1),
        session_policy: Some(Arc::new(SessionPolicy { inline: Some(ALLOW_ALL.into()), managed: vec![basic.into()] })),
    };
    let bobs_session = AccessKey {
        id: "ASIABOB".into(),
        secret: "s2".into(),
        principal: user("team/bob"),
        session_token: Some("t2".into()),
        expires: at(2),
        session_policy: None,
    };
    let forgotten = AccessKey { id: "ASIAOLD".into(), expires: at(-2), ..bobs_session.clone() };
    store
        .commit(vec![
            Change::PutUser(bob.clone()),
            Change::PutRole(role.clone()),
            Change::PutPolicy(policy.clone()),
            Change::PutKey(key.clone()),
            Change::PutKey(idle.clone()),
            Change::PutSession(role_session.clone()),
            Change::PutSession(bobs_session.clone()),
            Change::PutSession(forgotten),
        ])
        .await
        .unwrap();
    let got = store.load().await.unwrap();
    assert_eq!((got.users, got.roles, got.policies), (vec![bob.clone()], vec![role.clone()], vec![policy.clone()]));
    assert_eq!(got.keys, [key.clone(), idle.clone()]);
    assert_eq!(got.sessions, [role_session.clone(), bobs_session.clone()]);
    let raw = store.raw_documents().await;
    assert!(!raw.iter().any(|d| d.contains("needle")), "{raw:?}");

    // Replaced and deleted.
    let bob2 = UserRecord { attached: vec![], ..bob.clone() };
    let woken = KeyRecord { active: true, ..idle };
    store
        .commit(vec![
            Change::PutUser(bob2.clone()),
            Change::PutKey(woken.clone()),
            Change::DeleteKey(key.id.clone()),
            Change::DeleteSessionsOf(bobs_session.principal.arn.clone()),
            Change::DeleteRole("r".into()),
            Change::DeletePolicy("mine".into()),
        ])
        .await
        .unwrap();
    let got = store.load().await.unwrap();
    assert_eq!((got.users, got.roles.len(), got.policies.len()), (vec![bob2], 0, 0));
    assert_eq!((got.keys, got.sessions), (vec![woken], vec![role_session]));

    // A list that fails (a session without an expiry) commits nothing.
    let carol = UserRecord { name: "carol".into(), id: "AIDACAROL".into(), ..bob };
    let bad = AccessKey { id: "ASIABAD".into(), expires: None, ..bobs_session };
    assert!(store.commit(vec![Change::PutUser(carol), Change::PutSession(bad)]).await.is_err());
    assert!(!store.load().await.unwrap().users.iter().any(|u| u.name == "carol"));
    store.commit(vec![Change::DeleteUser("bob".into())]).await.unwrap();
    assert!(store.load().await.unwrap().users.is_empty());
}

#[tokio::test]
async fn assume_role_follows_the_trust_policy() {
    let (svc, _) = service().await;
    svc.create_user("bob".into(), None).await.unwrap();
    svc.create_user("eve".into(), None).await.unwrap();
    let trust_bob = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext"}}}]}"#;
    let role = svc.create_role("r".into(), None, trust_bob.into(), None, None).await.unwrap();
    let ask = |session: &str, ext: Option<&str>, duration: Option<i64>| AssumeRoleInput {
        role_arn: role.arn.clone(),
        role_session_name: session.into(),
        duration_seconds: duration,
        external_id: ext.map(str::to_string),
        ..AssumeRoleInput::default()
    };
    let s = svc.assume_role(&svc, &user("bob"), ask("s1", Some("ext"), None)).await.unwrap();
    assert_eq!(s.assumed_role_user.arn, "arn:aws:sts::000000000000:assumed-role/r/s1");
    assert_eq!(s.assumed_role_user.assumed_role_id, format!("{}:s1", role.role_id));
    assert!(s.credentials.access_key_id.starts_with("ASIA"));
    let session = Principal::assumed_role(&role.arn, "s1");
    assert_eq!(svc.caller_identity(&session).user_id, format!("{}:s1", role.role_id));
    let denied = "403 AccessDenied: User: arn:aws:iam::000000000000:user/eve is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/r";
    let cases: Vec<(Principal, AssumeRoleInput, String)> = vec![
        (user("eve"), ask("s2", Some("ext"), None), denied.into()),
        (user("bob"), ask("s2", Some("other"), None), denied.replace("user/eve", "user/bob")),
        (user("bob"), ask("s2", None, None), denied.replace("user/eve", "user/bob")),
        (root(), ask("s2", Some("ext"), None), "403 AccessDenied: Roles may not be assumed by root accounts.".into()),
        (
            user("bob"),
            ask("s2", Some("ext"), Some(7200)),
            "400 ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into(),
        ),
        (
            user("bob"),
            ask("s2", Some("ext"), Some(100)),
            "400 ValidationError: 1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900".into(),
        ),
        (
            user("bob"),
            ask("Session1:2", Some("ext"), None),
            r"400 ValidationError: 1 validation error detected: Value 'Session1:2' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*".into(),
        ),
        (
            user("bob"),
            AssumeRoleInput { role_arn: "nothing-valid-in-here".into(), ..ask("s2", None, None) },
            "400 ValidationError: nothing-valid-in-here is invalid".into(),
        ),
    ];
    for (who, input, want) in cases {
        assert_eq!(code(svc.assume_role(&svc, &who, input).await), want);
    }
}

#[tokio::test]
async fn a_trust_policy_naming_the_account_delegates_to_the_callers_policies() {
    let (svc, _) = service().await;
    svc.create_user("eve".into(), None).await.unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    let role = svc.create_role("shared".into(), None, trust.into(), None, None).await.unwrap();
    let ask = || AssumeRoleInput { role_arn: role.arn.clone(), role_session_name: "s1".into(), ..AssumeRoleInput::default() };
    assert_eq!(code(svc.assume_role(&svc, &user("eve"), ask()).await.map(|_| ())).split(':').next(), Some("403 AccessDenied"));
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::000000000000:role/shared"}]}"#;
    svc.put_inline_policy(Owner::User, "eve".into(), "assume".into(), allow.into()).await.unwrap();
    assert_eq!(
        svc.assume_role(&svc, &user("eve"), ask()).await.unwrap().assumed_role_user.arn,
        "arn:aws:sts::000000000000:assumed-role/shared/s1"
    );
    // A trust policy that names neither eve nor the account: her sts:AssumeRole allow is not enough.
    let lambda_only = svc.create_role("lambda-only".into(), None, TRUST_LAMBDA.into(), None, None).await.unwrap();
    let anything = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    svc.put_inline_policy(Owner::User, "eve".into(), "assume".into(), anything.into()).await.unwrap();
    let ask_other = AssumeRoleInput { role_arn: lambda_only.arn.clone(), role_session_name: "s2".into(), ..AssumeRoleInput::default() };
    assert_eq!(code(svc.assume_role(&svc, &user("eve"), ask_other).await.map(|_| ())).split(':').next(), Some("403 AccessDenied"));
}

/// Whether any file in `dir` (the database, its WAL) holds `needle`.
fn on_disk(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .any(|e| std::fs::read(e.unwrap().path()).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())))
}

#[tokio::test]
async fn secret_keys_are_sealed_at_rest_and_plain_ones_are_sealed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iam.db");
    let master = nimbus_store::MasterKey::generate();
    let (keys, _) = Keys::open(dir.path(), Some(("AKIAADMIN".into(), "s".into())), ACCOUNT).unwrap();
    let keys = Arc::new(keys);
    let svc = IamService::open(&path, ACCOUNT, Some(keys.clone()), master.clone()).await.unwrap();
    svc.create_user("bob".into(), None).await.unwrap();
    let k = svc.create_access_key(Some("bob".into()), &root()).await.unwrap();
    drop(svc);
    assert!(!on_disk(dir.path(), &k.secret_access_key));

    // A key as an earlier release stored it: the secret in plain text.
    let plain = "PlainSecretOfAnEarlierRelease0123456789+";
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let doc = format!(r#"{{"id":"AKIAOLDKEY","secret":"{plain}","user":"bob","active":true,"created":1}}"#);
        conn.execute("INSERT INTO access_keys (id, user, doc) VALUES ('AKIAOLDKEY', 'bob', ?1)", [doc]).unwrap();
    }
    assert!(on_disk(dir.path(), plain));
    let again = IamService::open(&path, ACCOUNT, Some(keys.clone()), master.clone()).await.unwrap();
    let ids: Vec<String> = again.list_access_keys(Some("bob".into()), &root()).unwrap().into_iter().map(|k| k.access_key_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"AKIAOLDKEY".to_string()));
    assert_eq!(again.read().keys["AKIAOLDKEY"].secret, plain);
    assert_eq!(again.read().keys[&k.access_key_id].secret, k.secret_access_key);
    drop(again);
    assert!(!on_disk(dir.path(), plain), "the plain text is gone from every file");

    // Another master key does not open them.
    let wrong = IamService::open(&path, ACCOUNT, Some(keys), nimbus_store::MasterKey::generate()).await;
    assert!(matches!(wrong, Err(IamError::Internal(ref m)) if m.contains("master key")), "{:?}", wrong.err());
}

#[tokio::test]
async fn sessions_outlive_a_restart_until_they_expire() {
    sessions_outlive_restarts_until_they_expire(&Place::file()).await;
}

async fn sessions_outlive_restarts_until_they_expire(place: &Place) {
    let master = nimbus_store::MasterKey::generate();
    let open = |keys: &Arc<Keys>| place.open(keys.clone(), &master);
    let keys = fresh_keys();
    let svc = open(&keys).await.unwrap();
    svc.create_user("bob".into(), None).await.unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]}"#;
    let role = svc.create_role("r".into(), None, trust.into(), None, None).await.unwrap();
    let inline = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*"}]}"#;
    let assumed = svc
        .assume_role(
            &svc,
            &user("bob"),
            AssumeRoleInput {
                role_arn: role.arn.clone(),
                role_session_name: "s1".into(),
                policy: Some(inline.into()),
                ..AssumeRoleInput::default()
            },
        )
        .await
        .unwrap();
    assert!(assumed.packed_policy_size.is_some_and(|p| p > 0 && p < 100));
    let token = svc.get_session_token(&user("bob"), Some(900)).await.unwrap();
    let now = chrono::Utc::now();
    let short = svc.issue_session(user("bob"), now + chrono::Duration::milliseconds(300), None).await.unwrap();
    drop(svc);
    for secret in
        [&assumed.credentials.secret_access_key, &assumed.credentials.session_token, &token.secret_access_key, &token.session_token]
    {
        assert!(!place.holds(&master, secret).await);
    }

    // A new server: the sessions are back, with their policies; the expired one is not.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let keys = fresh_keys();
    let svc = open(&keys).await.unwrap();
    let sessions = keys.sessions();
    let back = sessions.iter().find(|k| k.id == assumed.credentials.access_key_id).expect("the role session");
    assert_eq!(back.secret, assumed.credentials.secret_access_key);
    assert_eq!(back.session_token.as_deref(), Some(assumed.credentials.session_token.as_str()));
    assert_eq!(back.principal.arn, "arn:aws:sts::000000000000:assumed-role/r/s1");
    assert_eq!(back.session_policy.as_ref().and_then(|p| p.inline.as_deref()), Some(inline));
    assert!(sessions.iter().any(|k| k.id == token.access_key_id));
    assert!(!sessions.iter().any(|k| k.id == short.id), "an expired session does not authenticate");

    // A deleted user's sessions go with it, also from the store.
    svc.delete_user("bob".into()).await.unwrap();
    assert!(!keys.sessions().iter().any(|k| k.id == token.access_key_id));
    drop(svc);
    let keys = fresh_keys();
    let _svc = open(&keys).await.unwrap();
    let ids: Vec<String> = keys.sessions().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, vec![assumed.credentials.access_key_id.clone()]);
}

#[tokio::test]
async fn session_policies_are_checked_as_sts_checks_them() {
    let (svc, _) = service().await;
    svc.create_user("bob".into(), None).await.unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]}"#;
    let role = svc.create_role("r".into(), None, trust.into(), None, None).await.unwrap();
    let mine = svc.create_policy("mine".into(), None, ALLOW_ALL.into(), None).await.unwrap();
    let ask = |policy: Option<&str>, arns: &[&str]| AssumeRoleInput {
        role_arn: role.arn.clone(),
        role_session_name: "s1".into(),
        policy: policy.map(str::to_string),
        policy_arns: arns.iter().map(|a| a.to_string()).collect(),
        ..AssumeRoleInput::default()
    };
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalTag/x":"{}"}}}}}}]}}"#,
        "a".repeat(2100)
    );
    let cases: Vec<(AssumeRoleInput, &str)> = vec![
        (ask(Some(ALLOW_ALL), &[]), "ok 5"),
        (ask(None, &[&mine.arn, "arn:aws:iam::aws:policy/service-role/AWSLambdaRole"]), "ok 5"),
        (ask(Some("{not json"), &[]), "400 MalformedPolicyDocument: Syntax errors in policy."),
        (ask(Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#), &[]), "400 MalformedPolicyDocument: Policy statement must contain resources."),
        (ask(Some(""), &[]), "400 ValidationError: 1 validation error detected: Value '' at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1"),
        (ask(Some(&big), &[]), "400 PackedPolicyTooLarge: Packed policy consumes 111% of allotted space, please use smaller policy."),
        (ask(None, &["arn:aws:iam::000000000000:policy/absent"]), "400 MalformedPolicyDocument: Policy arn:aws:iam::000000000000:policy/absent does not exist or is not attachable."),
        (ask(None, &["short"]), "400 ValidationError: 1 validation error detected: Value 'short' at 'policyArns.1.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20"),
    ];
    for (input, want) in cases {
        let got = svc.assume_role(&svc, &user("bob"), input).await.map(|s| s.packed_policy_size.unwrap_or_default());
        assert_eq!(code(got), want);
    }
}

#[tokio::test]
async fn a_sessions_policies_combine_inline_and_managed_ones_as_they_are_now() {
    use nimbus_identity::SessionPolicy;
    use nimbus_policy::{evaluate, Context, Policies, Request};

    let (svc, _) = service().await;
    let list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*"}]}"#;
    let send = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#;
    let managed = svc.create_policy("send".into(), None, send.into(), None).await.unwrap();
    let session = SessionPolicy { inline: Some(list.into()), managed: vec![managed.arn.clone()] };
    let principal = nimbus_policy::Principal::assumed_role(ACCOUNT, "r", "s", "AROAEXAMPLE");
    let context = Context::new();
    let allowed = |policy: &nimbus_policy::Policy, action: &str| {
        let all = nimbus_policy::Policy::parse(ALLOW_ALL, nimbus_policy::Kind::Identity).unwrap();
        let request = Request { principal: &principal, action, resource: "*", context: &context };
        let identity = [&all];
        evaluate(&request, &Policies { identity: &identity, session: Some(policy), ..Policies::default() }).allowed()
    };
    let combined = svc.session_policy(&session);
    assert!(allowed(&combined, "sqs:ListQueues") && allowed(&combined, "sqs:SendMessage") && !allowed(&combined, "sqs:CreateQueue"));
    assert!(Arc::ptr_eq(&combined, &svc.session_policy(&session)), "kept while nothing changed");
    // The managed policy deleted: it grants nothing any more.
    svc.delete_policy(managed.arn.clone()).await.unwrap();
    let now = svc.session_policy(&session);
    assert!(allowed(&now, "sqs:ListQueues") && !allowed(&now, "sqs:SendMessage"));
    let only_managed = SessionPolicy { inline: None, managed: vec![managed.arn] };
    assert!(!allowed(&svc.session_policy(&only_managed), "sqs:ListQueues"));
}

#[tokio::test]
async fn only_the_accounts_root_is_evaluated_as_root() {
    let (svc, _) = service().await;
    let cases = [
        ("arn:aws:iam::000000000000:root", true),
        ("arn:aws:iam::000000000000:user/bob", false),
        ("arn:aws:sts::000000000000:assumed-role/r/s", false),
        // ARNs Nimbus issues no keys for fail closed: evaluated, never waved through.
        ("arn:aws:sts::000000000000:federated-user/x", false),
        ("not an arn", false),
    ];
    for (arn, is_root) in cases {
        let p = svc.policy_principal(&Principal { account: ACCOUNT.into(), arn: arn.into() });
        assert_eq!(p.kind == nimbus_policy::PrincipalType::Root, is_root, "{arn}");
    }
}

#[tokio::test]
async fn a_role_sessions_principal_arn_has_the_roles_path() {
    let (svc, _) = service().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    svc.create_role("deep".into(), Some("/team/app/".into()), trust.into(), None, None).await.unwrap();
    let cases = [
        ("arn:aws:sts::000000000000:assumed-role/deep/s", Some("arn:aws:iam::000000000000:role/team/app/deep")),
        // A role this account does not have (gone, or another account's): its ARN as the session names it.
        ("arn:aws:sts::000000000000:assumed-role/gone/s", Some("arn:aws:iam::000000000000:role/gone")),
        ("arn:aws:sts::111122223333:assumed-role/deep/s", Some("arn:aws:iam::111122223333:role/deep")),
    ];
    for (arn, role_arn) in cases {
        let account = arn.split(':').nth(4).unwrap();
        let p = svc.policy_principal(&Principal { account: account.into(), arn: arn.into() });
        assert_eq!(p.arn, arn);
        assert_eq!(p.role_arn.as_deref(), role_arn, "{arn}");
    }
}
