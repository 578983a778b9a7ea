//! Service tests: quick create, stages and deployments, resolution, and reopening the store,
//! each on both engines (`gateway.db` and PostgreSQL); and nodes sharing one PostgreSQL
//! database, each serving the APIs the others change within a second. The PostgreSQL tests
//! are skipped without `NIMBUS_TEST_POSTGRES` (outside CI), as `nimbus_store::pg::testing`
//! says.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{ApiInput, DeploymentInput, IntegrationInput, RouteInput, StageInput};
use crate::{GatewayError, GatewayService};

const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:echo";
const ACCOUNT: &str = "000000000000";

/// Where a test's services keep their APIs, reopened as often as the test likes: a
/// `gateway.db` in a directory of the test's own, or a fresh PostgreSQL database.
enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Engine {
    async fn open(&self) -> Arc<GatewayService> {
        match self {
            Engine::Sqlite(dir) => GatewayService::open(&dir.path().join("gateway.db"), ACCOUNT).await.expect("open"),
            Engine::Postgres(url) => GatewayService::open_shared(url, ACCOUNT).await.expect("open_shared"),
        }
    }
}

/// Each behaviour test runs on both engines: `sqlite::name` and `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Engine::Sqlite(tempfile::tempdir().expect("temp dir"))).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
                    super::$name(super::Engine::Postgres(url)).await
                }
            )*
        }
    };
}

on_both_engines!(quick_create_serves_default_stage, stages_deployments_and_restart, concurrent_changes_see_each_other);

async fn api(svc: &GatewayService, target: Option<&str>) -> String {
    let input =
        ApiInput { name: Some("a".into()), protocol_type: Some("HTTP".into()), target: target.map(String::from), ..Default::default() };
    svc.create_api(input).await.unwrap().api_id
}

async fn quick_create_serves_default_stage(e: Engine) {
    let svc = e.open().await;
    let id = api(&svc, Some(FN)).await;
    assert_eq!(id.len(), 10);
    let r = svc.resolve(&id, "GET", "/any/path").unwrap();
    assert_eq!((r.stage.as_str(), r.route_key.as_str(), r.integration.payload_format_version.as_str()), ("$default", "$default", "2.0"));
    assert!(svc.resolve("nope", "GET", "/").is_none());
}

async fn stages_deployments_and_restart(e: Engine) {
    let svc = e.open().await;
    let id = api(&svc, None).await;
    let uri = Some(format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FN}/invocations"));
    let i = svc
        .create_integration(
            &id,
            IntegrationInput {
                integration_type: Some("AWS_PROXY".into()),
                integration_uri: uri,
                payload_format_version: Some("1.0".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let target = Some(format!("integrations/{}", i.integration_id));
    svc.create_route(&id, RouteInput { route_key: Some("GET /items/{id}".into()), target: target.clone(), ..Default::default() })
        .await
        .unwrap();
    let dup = svc.create_route(&id, RouteInput { route_key: Some("GET /items/{id}".into()), ..Default::default() }).await;
    assert!(matches!(dup, Err(GatewayError::Conflict(_))));
    let vars = Some([("env".to_string(), "prod".to_string())].into());
    svc.create_stage(&id, StageInput { stage_name: Some("prod".into()), stage_variables: vars, ..Default::default() }).await.unwrap();
    // A stage without auto-deploy serves nothing until deployed.
    assert!(svc.resolve(&id, "GET", "/prod/items/1").is_none());
    svc.create_deployment(&id, DeploymentInput { stage_name: Some("prod".into()), description: None }).await.unwrap();
    // Routes added after the deployment are not served by it.
    svc.create_route(&id, RouteInput { route_key: Some("GET /later".into()), target, ..Default::default() }).await.unwrap();
    assert!(svc.resolve(&id, "GET", "/prod/later").is_none());
    drop(svc);
    let svc = e.open().await;
    let r = svc.resolve(&id, "GET", "/prod/items/7").unwrap();
    assert_eq!(r.path_parameters["id"], "7");
    assert_eq!(r.stage_variables["env"], "prod");
    assert_eq!(r.resource, "/items/{id}");
    assert!(svc.resolve(&id, "GET", "/items/7").is_none(), "no $default stage");
    assert!(matches!(svc.delete_integration(&id, &i.integration_id).await, Err(GatewayError::Conflict(_))));
    svc.delete_api(&id).await.unwrap();
    assert!(matches!(svc.get_api(&id), Err(GatewayError::NotFound(_))));
    drop(svc);
    assert!(e.open().await.get_apis().is_empty());
}

/// Changes are made one at a time, each from the state the one before left: of two routes
/// with the same key created at once, one is refused.
async fn concurrent_changes_see_each_other(e: Engine) {
    let svc = e.open().await;
    let id = api(&svc, None).await;
    let route = || RouteInput { route_key: Some("GET /same".into()), ..Default::default() };
    let (a, b) = tokio::join!(svc.create_route(&id, route()), svc.create_route(&id, route()));
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert!(matches!(a.and(b), Err(GatewayError::Conflict(_))));
    drop(svc);
    assert_eq!(e.open().await.get_routes(&id).unwrap().len(), 1);
}

// ---- nodes sharing one PostgreSQL database -------------------------------------------

/// Two nodes' services on one fresh PostgreSQL database (None where there is none to test
/// with; under CI there always is).
async fn two_nodes() -> Option<(Arc<GatewayService>, Arc<GatewayService>)> {
    let url = nimbus_store::pg::testing::fresh_database().await?;
    let a = GatewayService::open_shared(&url, ACCOUNT).await.expect("node a");
    let b = GatewayService::open_shared(&url, ACCOUNT).await.expect("node b");
    Some((a, b))
}

/// Waits up to a second for `check` to hold.
async fn within_a_second(what: &str, check: impl Fn() -> bool) {
    let started = tokio::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(1), "not within a second: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The route key `svc` picks for a request, if it serves one.
fn served(svc: &GatewayService, api_id: &str, method: &str, path: &str) -> Option<String> {
    svc.resolve(api_id, method, path).map(|r| r.route_key)
}

#[tokio::test]
async fn apis_are_the_nodes() {
    let Some((a, b)) = two_nodes().await else { return };
    // Quick create on a: b serves it.
    let quick = api(&a, Some(FN)).await;
    within_a_second("b serves a's quick-created API", || served(&b, &quick, "GET", "/anything").as_deref() == Some("$default")).await;

    // An API built up on a: integration, route, auto-deploying $default stage.
    let id = api(&a, None).await;
    let uri = Some(FN.to_string());
    let input = IntegrationInput {
        integration_type: Some("AWS_PROXY".into()),
        integration_uri: uri,
        payload_format_version: Some("2.0".into()),
        ..Default::default()
    };
    let i = a.create_integration(&id, input).await.expect("integration");
    let target = Some(format!("integrations/{}", i.integration_id));
    let items = a
        .create_route(&id, RouteInput { route_key: Some("GET /items/{id}".into()), target: target.clone(), ..Default::default() })
        .await
        .expect("route");
    a.create_stage(&id, StageInput { stage_name: Some("$default".into()), auto_deploy: Some(true), ..Default::default() })
        .await
        .expect("stage");
    within_a_second("b serves a's route", || served(&b, &id, "GET", "/items/7").as_deref() == Some("GET /items/{id}")).await;
    assert_eq!(b.resolve(&id, "GET", "/items/7").expect("served").path_parameters["id"], "7");

    // A route added on b: a serves it (and b's checks see a's routes: a duplicate is refused).
    b.create_route(&id, RouteInput { route_key: Some("POST /orders".into()), target: target.clone(), ..Default::default() })
        .await
        .expect("route on b");
    let dup = b.create_route(&id, RouteInput { route_key: Some("GET /items/{id}".into()), ..Default::default() }).await;
    assert!(matches!(dup, Err(GatewayError::Conflict(_))), "{dup:?}");
    within_a_second("a serves b's route", || served(&a, &id, "POST", "/orders").is_some()).await;

    // A route deleted on a disappears on b.
    a.delete_route(&id, &items.route_id).await.expect("delete route");
    within_a_second("b forgets the deleted route", || served(&b, &id, "GET", "/items/7").is_none()).await;
    assert_eq!(served(&b, &id, "POST", "/orders").as_deref(), Some("POST /orders"));

    // A stage deployed on b: a serves the deployment's routes under it.
    let vars = Some([("env".to_string(), "prod".to_string())].into());
    b.create_stage(&id, StageInput { stage_name: Some("prod".into()), stage_variables: vars, ..Default::default() })
        .await
        .expect("stage on b");
    b.create_deployment(&id, DeploymentInput { stage_name: Some("prod".into()), description: None }).await.expect("deploy");
    within_a_second("a serves b's deployment", || served(&a, &id, "POST", "/prod/orders").is_some()).await;
    assert_eq!(a.resolve(&id, "POST", "/prod/orders").expect("served").stage_variables["env"], "prod");

    // An API deleted on b is gone on a.
    b.delete_api(&id).await.expect("delete api");
    within_a_second("a forgets the deleted API", || a.get_api(&id).is_err()).await;
    assert!(served(&a, &id, "POST", "/orders").is_none());
    assert_eq!(a.get_apis().into_iter().map(|x| x.api_id).collect::<Vec<_>>(), [quick]);
}

/// Changes made on both nodes at once, while each reloads after the other's: neither loses
/// any, and both end with all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_both_nodes_at_once_are_all_kept() {
    let Some((a, b)) = two_nodes().await else { return };
    let id = api(&a, Some(FN)).await;
    within_a_second("b has the API", || b.get_api(&id).is_ok()).await;
    let make = |svc: Arc<GatewayService>, node: &'static str| {
        let id = id.clone();
        tokio::spawn(async move {
            for n in 0..20 {
                let key = format!("GET /{node}/{n}");
                svc.create_route(&id, RouteInput { route_key: Some(key), ..Default::default() }).await.expect("route");
            }
        })
    };
    let (x, y) = tokio::join!(make(a.clone(), "a"), make(b.clone(), "b"));
    x.expect("node a's writer");
    y.expect("node b's writer");
    for (name, svc) in [("a", &a), ("b", &b)] {
        within_a_second(&format!("{name} has all 41 routes"), || svc.get_routes(&id).is_ok_and(|r| r.len() == 41)).await;
    }
}
