//! IAM on PostgreSQL (a throwaway database per test, `nimbus_store::pg::testing`): the store's
//! and the service's round trips of the `iam.db` tests, and nodes sharing one database, each
//! following the others' changes within a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nimbus_identity::sigv4::{self, PathStyle, Request};
use nimbus_identity::Keys;
use nimbus_store::pg::testing::fresh_database;
use nimbus_store::MasterKey;

use super::{fresh_keys, keeps_everything_across_restarts, root, sessions_outlive_restarts_until_they_expire, store_round_trip, user};
use super::{Place, ACCOUNT, ALLOW_ALL};
use crate::store::IamStore;
use crate::{AssumeRoleInput, IamError, IamService, Owner};

#[tokio::test]
async fn the_store_reads_back_what_it_committed() {
    let Some(url) = fresh_database().await else { return };
    store_round_trip(&IamStore::open_shared(&url, ACCOUNT, "nimbus-iam-test", MasterKey::generate()).await.unwrap()).await;
}

#[tokio::test]
async fn the_store_keeps_everything_across_restarts() {
    let Some(url) = fresh_database().await else { return };
    keeps_everything_across_restarts(&Place::Postgres(url)).await;
}

#[tokio::test]
async fn sessions_outlive_a_restart_until_they_expire() {
    let Some(url) = fresh_database().await else { return };
    sessions_outlive_restarts_until_they_expire(&Place::Postgres(url)).await;
}

#[tokio::test]
async fn a_node_with_another_master_key_is_refused() {
    let Some(url) = fresh_database().await else { return };
    let master = MasterKey::generate();
    IamService::open_shared(&url, ACCOUNT, Some(fresh_keys()), master.clone()).await.unwrap();
    let wrong = IamService::open_shared(&url, ACCOUNT, Some(fresh_keys()), MasterKey::generate()).await;
    assert!(matches!(wrong, Err(IamError::Internal(ref m)) if m.contains("master key")), "{:?}", wrong.err());
    // The right one still opens; so does another account's schema, with its own key.
    IamService::open_shared(&url, ACCOUNT, Some(fresh_keys()), master).await.unwrap();
    IamService::open_shared(&url, "111111111111", None, MasterKey::generate()).await.unwrap();
}

/// Two nodes of one account: each with its own `Keys`, as servers have.
async fn two_nodes(url: &str) -> [(Arc<IamService>, Arc<Keys>); 2] {
    let master = MasterKey::generate();
    let (ka, kb) = (fresh_keys(), fresh_keys());
    let a = IamService::open_shared(url, ACCOUNT, Some(ka.clone()), master.clone()).await.unwrap();
    let b = IamService::open_shared(url, ACCOUNT, Some(kb.clone()), master).await.unwrap();
    [(a, ka), (b, kb)]
}

/// Who a request signed with the key `id` (and `token`) authenticates as on a node.
fn signed_by(keys: &Keys, id: &str, secret: &str, token: Option<&str>) -> Option<String> {
    let now = chrono::Utc::now();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("127.0.0.1:9001"));
    let req = Request { method: "GET", path: "/", query: None, headers: &headers, body: b"" };
    let added = sigv4::sign_request(id, secret, token, "us-east-1", "sqs", &req, now);
    for (k, v) in added {
        headers.insert(k, v.parse().unwrap());
    }
    let req = Request { method: "GET", path: "/", query: None, headers: &headers, body: b"" };
    keys.authenticate(&req, now, PathStyle::Normalized).ok().map(|c| c.principal.arn)
}

/// Waits (a second at most) until `ok` holds.
async fn within_a_second(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < Duration::from_secs(1), "{what}: not after a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn what_one_node_changes_the_other_follows_within_a_second() {
    let Some(url) = fresh_database().await else { return };
    let [(a, ka), (b, kb)] = two_nodes(&url).await;
    let bob = "arn:aws:iam::000000000000:user/bob";

    // A user and its key made on a: the key signs on b.
    a.create_user("bob".into(), None).await.unwrap();
    let key = a.create_access_key(Some("bob".into()), &root()).await.unwrap();
    let (id, secret) = (key.access_key_id.clone(), key.secret_access_key.clone());
    within_a_second("b authenticates bob's key", || signed_by(&kb, &id, &secret, None).as_deref() == Some(bob)).await;
    assert_eq!(b.get_user(Some("bob"), &root()).unwrap().arn, bob);
    assert_eq!(b.list_access_keys(Some("bob".into()), &root()).unwrap()[0].access_key_id, id);

    // A role with a policy made on b: a's authorization sees both.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"sts:AssumeRole"}]}"#;
    let role = b.create_role("r".into(), None, trust.into(), None, None).await.unwrap();
    b.put_inline_policy(Owner::Role, "r".into(), "all".into(), ALLOW_ALL.into()).await.unwrap();
    within_a_second("a has the role's policy", || a.identity_policies("arn:aws:sts::000000000000:assumed-role/r/s").len() == 1).await;
    assert_eq!(a.get_role("r").unwrap().role_id, role.role_id);

    // A session assumed on a signs on b.
    let ask = AssumeRoleInput { role_arn: role.arn.clone(), role_session_name: "s1".into(), ..AssumeRoleInput::default() };
    let session = a.assume_role(&a, &user("bob"), ask).await.unwrap().credentials;
    let session_arn = "arn:aws:sts::000000000000:assumed-role/r/s1";
    within_a_second("b authenticates the role session", || {
        signed_by(&kb, &session.access_key_id, &session.secret_access_key, Some(&session.session_token)).as_deref() == Some(session_arn)
    })
    .await;

    // Set Inactive on b: a refuses the key; deleted on a: b refuses it too.
    b.update_access_key(Some("bob".into()), id.clone(), "Inactive", &root()).await.unwrap();
    within_a_second("a refuses the inactive key", || signed_by(&ka, &id, &secret, None).is_none()).await;
    a.update_access_key(Some("bob".into()), id.clone(), "Active", &root()).await.unwrap();
    within_a_second("b takes the key again", || signed_by(&kb, &id, &secret, None).is_some()).await;
    a.delete_access_key(Some("bob".into()), id.clone(), &root()).await.unwrap();
    within_a_second("b refuses the deleted key", || signed_by(&kb, &id, &secret, None).is_none()).await;
    assert!(b.list_access_keys(Some("bob".into()), &root()).unwrap().is_empty());

    // bob's GetSessionToken session, made on b, goes with bob, deleted on a, on both nodes.
    let token = b.get_session_token(&user("bob"), Some(900)).await.unwrap();
    let signs = |keys: &Keys| signed_by(keys, &token.access_key_id, &token.secret_access_key, Some(&token.session_token));
    within_a_second("a authenticates bob's session", || signs(&ka).as_deref() == Some(bob)).await;
    a.delete_user("bob".into()).await.unwrap();
    assert!(signs(&ka).is_none());
    within_a_second("b forgets bob and his session", || signs(&kb).is_none() && b.get_user(Some("bob"), &root()).is_err()).await;
    // The role session is not bob's: it still signs.
    assert!(signed_by(&kb, &session.access_key_id, &session.secret_access_key, Some(&session.session_token)).is_some());
}

/// Each node's own changes are never undone by a reload the other's changes cause: what a
/// node committed it reads at once, and in the end both have everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_never_undo_a_nodes_own_changes() {
    let Some(url) = fresh_database().await else { return };
    let [(a, _), (b, _)] = two_nodes(&url).await;
    let make = |svc: Arc<IamService>, prefix: &'static str| async move {
        for i in 0..25 {
            let name = format!("{prefix}{i}");
            svc.create_user(name.clone(), None).await.unwrap();
            assert!(svc.get_user(Some(&name), &root()).is_ok(), "{name} is there at once where it was made");
            svc.put_inline_policy(Owner::User, name.clone(), "p".into(), ALLOW_ALL.into()).await.unwrap();
            assert_eq!(svc.list_inline_policies(Owner::User, &name).unwrap(), ["p"]);
        }
    };
    let (x, y) = tokio::join!(tokio::spawn(make(a.clone(), "a")), tokio::spawn(make(b.clone(), "b")));
    x.unwrap();
    y.unwrap();
    within_a_second("both nodes have all 50 users with their policies", || {
        [&a, &b].iter().all(|svc| {
            let users = svc.list_users(None);
            users.len() == 50
                && users.iter().all(|u| svc.list_inline_policies(Owner::User, u.user_name.as_deref().unwrap()).unwrap().len() == 1)
        })
    })
    .await;
}

/// A node whose change feed was cut reads everything again once it is back: what was
/// announced meanwhile is not lost.
#[tokio::test]
async fn a_node_whose_feed_was_cut_catches_up() {
    let Some(url) = fresh_database().await else { return };
    let [(a, _), (b, _)] = two_nodes(&url).await;
    a.create_user("first".into(), None).await.unwrap();
    within_a_second("b has the first user", || b.get_user(Some("first"), &root()).is_ok()).await;
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let feeds = "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'";
    let started = Instant::now();
    while admin.query_one(&format!("SELECT count(*) {feeds}"), &[]).await.unwrap().get::<_, i64>(0) < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "the nodes' feeds do not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin.execute(&format!("SELECT pg_terminate_backend(pid) {feeds}"), &[]).await.unwrap();
    // Made while the feeds are down (they connect again after half a second): nobody hears it.
    a.create_user("meanwhile".into(), None).await.unwrap();
    let started = Instant::now();
    while b.get_user(Some("meanwhile"), &root()).is_err() {
        assert!(started.elapsed() < Duration::from_secs(5), "b never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What another node committed between a node's load and its feed's LISTEN reaches it too:
/// the watcher is called once as soon as the feed listens, then for each change.
#[tokio::test]
async fn the_watcher_hears_once_the_feed_listens_then_each_change() {
    let Some(url) = fresh_database().await else { return };
    let master = MasterKey::generate();
    let store = Arc::new(IamStore::open_shared(&url, ACCOUNT, "nimbus-iam-watched", master.clone()).await.unwrap());
    let heard = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = heard.clone();
    store.watch(Arc::downgrade(&store), move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let heard_now = || heard.load(std::sync::atomic::Ordering::SeqCst);
    within_a_second("the watcher hears that the feed listens", || heard_now() == 1).await;
    let other = IamStore::open_shared(&url, ACCOUNT, "nimbus-iam-other", master).await.unwrap();
    let user = crate::store::UserRecord {
        name: "u".into(),
        id: "AIDAU".into(),
        path: "/".into(),
        created: 1,
        inline: Default::default(),
        attached: vec![],
    };
    other.commit(vec![crate::store::Change::PutUser(user)]).await.unwrap();
    within_a_second("the watcher hears the other node's change", || heard_now() == 2).await;
    // Its own changes are not announced to it.
    store.commit(vec![crate::store::Change::DeleteUser("u".into())]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(heard_now(), 2);
}
