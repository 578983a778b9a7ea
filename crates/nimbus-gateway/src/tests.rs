//! Service tests: quick create, stages and deployments, resolution, and reopening the file.

use crate::model::{ApiInput, DeploymentInput, IntegrationInput, RouteInput, StageInput};
use crate::{GatewayError, GatewayService};

const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:echo";

async fn open(dir: &tempfile::TempDir) -> std::sync::Arc<GatewayService> {
    GatewayService::open(&dir.path().join("gateway.db"), "000000000000").await.unwrap()
}

async fn api(svc: &GatewayService, target: Option<&str>) -> String {
    let input =
        ApiInput { name: Some("a".into()), protocol_type: Some("HTTP".into()), target: target.map(String::from), ..Default::default() };
    svc.create_api(input).await.unwrap().api_id
}

#[tokio::test]
async fn quick_create_serves_default_stage() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir).await;
    let id = api(&svc, Some(FN)).await;
    assert_eq!(id.len(), 10);
    let r = svc.resolve(&id, "GET", "/any/path").unwrap();
    assert_eq!((r.stage.as_str(), r.route_key.as_str(), r.integration.payload_format_version.as_str()), ("$default", "$default", "2.0"));
    assert!(svc.resolve("nope", "GET", "/").is_none());
}

#[tokio::test]
async fn stages_deployments_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir).await;
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
    let svc = open(&dir).await;
    let r = svc.resolve(&id, "GET", "/prod/items/7").unwrap();
    assert_eq!(r.path_parameters["id"], "7");
    assert_eq!(r.stage_variables["env"], "prod");
    assert_eq!(r.resource, "/items/{id}");
    assert!(svc.resolve(&id, "GET", "/items/7").is_none(), "no $default stage");
    assert!(matches!(svc.delete_integration(&id, &i.integration_id).await, Err(GatewayError::Conflict(_))));
    svc.delete_api(&id).await.unwrap();
    assert!(matches!(svc.get_api(&id), Err(GatewayError::NotFound(_))));
    drop(svc);
    assert!(open(&dir).await.get_apis().is_empty());
}

/// Changes are made one at a time, each from the state the one before left: of two routes
/// with the same key created at once, one is refused.
#[tokio::test]
async fn concurrent_changes_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir).await;
    let id = api(&svc, None).await;
    let route = || RouteInput { route_key: Some("GET /same".into()), ..Default::default() };
    let (a, b) = tokio::join!(svc.create_route(&id, route()), svc.create_route(&id, route()));
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert!(matches!(a.and(b), Err(GatewayError::Conflict(_))));
    drop(svc);
    assert_eq!(open(&dir).await.get_routes(&id).unwrap().len(), 1);
}
