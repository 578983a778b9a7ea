//! [`GatewayService`]: API Gateway V2's management actions for HTTP APIs over durable records,
//! and [`GatewayService::resolve`], which picks the stage and route of a request to
//! `execute-api`. Every API lives in memory with its compiled route tables behind
//! `gateway.db` (or the table nodes share in PostgreSQL): a change is committed first (as
//! typed [`Changes`]) and applied to memory after (one writer at a time), so serving a
//! request never touches the database; over a shared store, every other node's change
//! reloads them all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::GatewayError;
use crate::model::{
    Api, ApiInput, Deployment, DeploymentInput, Integration, IntegrationInput, Route, RouteInput, RouteSettings, Snapshot, Stage,
    StageInput, PAYLOAD_FORMATS,
};
use crate::routing::{RouteKey, RouteTable};
use crate::store::{Changes, GatewayStore, Kind};

/// The stage served at the API's root.
pub const DEFAULT_STAGE: &str = "$default";

/// A deployment as stored: its record and what it serves.
#[derive(Clone, Serialize, Deserialize)]
struct StoredDeployment {
    #[serde(flatten)]
    deployment: Deployment,
    snapshot: Snapshot,
}

#[derive(Clone)]
struct ApiState {
    api: Api,
    routes: BTreeMap<String, Route>,
    integrations: BTreeMap<String, Integration>,
    stages: BTreeMap<String, Stage>,
    deployments: BTreeMap<String, (StoredDeployment, Arc<RouteTable>)>,
    /// What auto-deploy stages serve: the API as it is now.
    live: Arc<RouteTable>,
}

impl ApiState {
    fn new(api: Api) -> ApiState {
        ApiState {
            api,
            routes: BTreeMap::new(),
            integrations: BTreeMap::new(),
            stages: BTreeMap::new(),
            deployments: BTreeMap::new(),
            live: Arc::new(RouteTable::new(&[], &[])),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot { routes: self.routes.values().cloned().collect(), integrations: self.integrations.values().cloned().collect() }
    }

    fn recompile(&mut self) {
        let s = self.snapshot();
        self.live = Arc::new(RouteTable::new(&s.routes, &s.integrations));
    }
}

/// Where a request to `execute-api` goes: the stage, the route and its integration.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub api_id: String,
    pub stage: String,
    pub stage_variables: BTreeMap<String, String>,
    pub route_key: String,
    pub route_id: String,
    /// `NONE` or `AWS_IAM`.
    pub authorization_type: String,
    /// `/items/{id}` or `$default`.
    pub resource: String,
    pub path_parameters: BTreeMap<String, String>,
    pub integration: Integration,
}

/// What serving needs of an API before it picks a route.
#[derive(Debug, Clone)]
pub struct ApiFront {
    /// The API's CORS configuration.
    pub cors: Option<crate::model::CorsConfiguration>,
    pub disable_execute_api_endpoint: bool,
}

/// The HTTP API service. Share it with `Arc`.
pub struct GatewayService {
    account: String,
    store: Arc<GatewayStore>,
    /// Held from reading an API a change is made from until that change is in memory: one
    /// writer at a time, so each change sees those before it.
    writer: Arc<tokio::sync::Mutex<()>>,
    apis: Arc<RwLock<Apis>>,
}

type Apis = BTreeMap<String, Arc<ApiState>>;

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random id of `len` lower-case letters and digits, as AWS's API (10) and route,
/// integration and deployment (7) ids look.
fn new_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().take(len).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(msg.into())
}

/// The Lambda function ARN an integration URI names: the ARN itself, or API Gateway's
/// `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations` form.
pub fn function_arn(uri: &str) -> Option<&str> {
    let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations")?,
        None => uri,
    };
    (arn.starts_with("arn:") && arn.split(':').nth(2) == Some("lambda") && arn.contains(":function:")).then_some(arn)
}

fn check_route_key(key: &str) -> Result<(), GatewayError> {
    RouteKey::parse(key).map(|_| ()).map_err(GatewayError::BadRequest)
}

fn check_stage_name(name: &str) -> Result<(), GatewayError> {
    let ok = name == DEFAULT_STAGE
        || (!name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(bad(format!("Stage name {name} is invalid: use $default or letters, digits, '-' and '_'")))
    }
}

impl GatewayService {
    /// Opens (or creates) `gateway.db` and loads every API into memory.
    pub async fn open(path: &Path, account: &str) -> Result<Arc<GatewayService>, GatewayError> {
        GatewayService::with_store(GatewayStore::open(path)?, account).await
    }

    /// Opens `account`'s HTTP APIs in the PostgreSQL database at `url`, which every node
    /// shares, loads them, and follows the other nodes' changes from then on: each one (or a
    /// cut in the change feed) reloads every API.
    pub async fn open_shared(url: &str, account: &str) -> Result<Arc<GatewayService>, GatewayError> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-gateway-{}", uuid::Uuid::new_v4().simple());
        GatewayService::with_store(GatewayStore::open_shared(url, account, &node).await?, account).await
    }

    async fn with_store(store: GatewayStore, account: &str) -> Result<Arc<GatewayService>, GatewayError> {
        let apis = load_apis(&store).await?;
        let svc = Arc::new(GatewayService {
            account: account.to_string(),
            store: Arc::new(store),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            apis: Arc::new(RwLock::new(apis)),
        });
        svc.follow();
        Ok(svc)
    }

    /// Over a shared store: reloads after every announcement of another node's change, one
    /// reload at a time; announcements heard during a reload make one more.
    fn follow(self: &Arc<Self>) {
        if !self.store.is_shared() {
            return;
        }
        let what = format!("API Gateway of account {}", self.account);
        self.store.watch(
            Arc::downgrade(self),
            nimbus_store::pg::reloader(Arc::downgrade(self), what, |svc: Arc<Self>| async move { svc.reload().await }),
        );
    }

    /// Reads every API from the store and replaces those in memory with them. As the writer:
    /// a change of this node's is either committed before the read (and in it) or made after
    /// the replacement, never lost in between.
    async fn reload(&self) -> Result<(), GatewayError> {
        let _writer = self.writer.lock().await;
        let apis = load_apis(&self.store).await?;
        *self.apis.write().unwrap_or_else(|e| e.into_inner()) = apis;
        Ok(())
    }

    fn state(&self, api_id: &str) -> Result<Arc<ApiState>, GatewayError> {
        self.apis
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(api_id)
            .cloned()
            .ok_or_else(|| GatewayError::NotFound(format!("Invalid API identifier specified {}:{api_id}", self.account)))
    }

    /// Runs one change to an API: `f` edits a copy and lists the stored changes; the copy
    /// replaces the API in memory once they are committed.
    async fn change<R>(
        &self,
        api_id: &str,
        f: impl FnOnce(&mut ApiState, &mut Changes) -> Result<R, GatewayError>,
    ) -> Result<R, GatewayError> {
        let writer = self.writer.clone().lock_owned().await;
        let mut next = (*self.state(api_id)?).clone();
        let mut changes = Changes::default();
        let out = f(&mut next, &mut changes)?;
        next.recompile();
        let api_id = api_id.to_string();
        self.commit(writer, changes, move |apis| {
            apis.insert(api_id, Arc::new(next));
        })
        .await?;
        Ok(out)
    }

    /// Commits `changes`, then applies `apply` to memory, as a task of its own (a caller that
    /// goes away cannot leave a committed change out of memory) holding the writer's turn.
    async fn commit(
        &self,
        writer: tokio::sync::OwnedMutexGuard<()>,
        changes: Changes,
        apply: impl FnOnce(&mut Apis) + Send + 'static,
    ) -> Result<(), GatewayError> {
        let (store, apis) = (self.store.clone(), self.apis.clone());
        tokio::spawn(async move {
            let _writer = writer;
            store.commit(changes).await?;
            apply(&mut apis.write().unwrap_or_else(|e| e.into_inner()));
            Ok(())
        })
        .await
        .map_err(|e| GatewayError::Internal(format!("the API Gateway write failed: {e}")))?
    }

    // ---- APIs ----------------------------------------------------------------------

    /// CreateApi, including quick create (`target` = a function ARN: an AWS_PROXY
    /// integration, a route for `routeKey` (default `$default`), and an auto-deploying
    /// `$default` stage).
    pub async fn create_api(&self, input: ApiInput) -> Result<Api, GatewayError> {
        let name = input.name.filter(|n| !n.is_empty()).ok_or_else(|| bad("Name is required"))?;
        match input.protocol_type.as_deref() {
            Some("HTTP") => {}
            Some("WEBSOCKET") => return Err(bad("Nimbus serves HTTP APIs only (ProtocolType HTTP)")),
            other => return Err(bad(format!("Invalid protocol type {}", other.unwrap_or("null")))),
        }
        if let Some(e) = input.route_selection_expression.as_deref().filter(|e| *e != "$request.method $request.path") {
            return Err(bad(format!("Unsupported route selection expression {e} for an HTTP API")));
        }
        if input.route_key.is_some() && input.target.is_none() {
            return Err(bad("RouteKey can only be specified together with Target (quick create)"));
        }
        let quick = match &input.target {
            Some(target) => {
                let key = input.route_key.clone().unwrap_or_else(|| "$default".to_string());
                check_route_key(&key)?;
                function_arn(target).ok_or_else(|| bad(format!("Invalid target {target}: quick create takes a Lambda function ARN")))?;
                Some((key, target.clone()))
            }
            None => None,
        };
        let created = now();
        let api = Api {
            api_id: new_id(10),
            api_endpoint: String::new(),
            api_key_selection_expression: input.api_key_selection_expression.unwrap_or_else(|| "$request.header.x-api-key".into()),
            cors_configuration: input.cors_configuration,
            created_date: created.clone(),
            description: input.description,
            disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
            name,
            protocol_type: "HTTP".into(),
            route_selection_expression: "$request.method $request.path".into(),
            tags: input.tags.unwrap_or_default(),
            version: input.version,
        };
        let mut state = ApiState::new(api.clone());
        let writer = self.writer.clone().lock_owned().await;
        let mut changes = Changes::default();
        changes.put(&api.api_id, Kind::Api, &api.api_id, &api)?;
        if let Some((key, target)) = quick {
            let integration = Integration {
                integration_id: new_id(7),
                connection_type: "INTERNET".into(),
                description: None,
                integration_method: "POST".into(),
                integration_type: "AWS_PROXY".into(),
                integration_uri: target,
                payload_format_version: "2.0".into(),
                request_parameters: BTreeMap::new(),
                timeout_in_millis: 30_000,
                api_gateway_managed: true,
            };
            let route = Route {
                route_id: new_id(7),
                route_key: key,
                target: Some(format!("integrations/{}", integration.integration_id)),
                api_key_required: false,
                authorization_type: "NONE".into(),
                api_gateway_managed: true,
            };
            let stage = Stage { api_gateway_managed: true, ..new_stage(DEFAULT_STAGE, true, &created) };
            changes.put(&api.api_id, Kind::Integration, &integration.integration_id, &integration)?;
            changes.put(&api.api_id, Kind::Route, &route.route_id, &route)?;
            changes.put(&api.api_id, Kind::Stage, &stage.stage_name, &stage)?;
            state.integrations.insert(integration.integration_id.clone(), integration);
            state.routes.insert(route.route_id.clone(), route);
            state.stages.insert(stage.stage_name.clone(), stage);
        }
        state.recompile();
        let id = api.api_id.clone();
        self.commit(writer, changes, move |apis| {
            apis.insert(id, Arc::new(state));
        })
        .await?;
        Ok(api)
    }

    pub fn get_api(&self, api_id: &str) -> Result<Api, GatewayError> {
        Ok(self.state(api_id)?.api.clone())
    }

    pub fn get_apis(&self) -> Vec<Api> {
        let apis = self.apis.read().unwrap_or_else(|e| e.into_inner());
        apis.values().map(|a| a.api.clone()).collect()
    }

    pub async fn update_api(&self, api_id: &str, input: ApiInput) -> Result<Api, GatewayError> {
        if input.protocol_type.as_deref().is_some_and(|p| p != "HTTP") {
            return Err(bad("The protocol type of an API cannot be changed"));
        }
        if input.target.is_some() || input.route_key.is_some() {
            return Err(bad("Nimbus does not update quick-create Target or RouteKey; change the route and integration instead"));
        }
        let api = self
            .change(api_id, |s, changes| {
                if let Some(n) = input.name {
                    if n.is_empty() {
                        return Err(bad("Name must not be empty"));
                    }
                    s.api.name = n;
                }
                if input.description.is_some() {
                    s.api.description = input.description;
                }
                if input.version.is_some() {
                    s.api.version = input.version;
                }
                if let Some(d) = input.disable_execute_api_endpoint {
                    s.api.disable_execute_api_endpoint = d;
                }
                if input.cors_configuration.is_some() {
                    s.api.cors_configuration = input.cors_configuration;
                }
                if let Some(e) = input.api_key_selection_expression {
                    s.api.api_key_selection_expression = e;
                }
                changes.put(api_id, Kind::Api, api_id, &s.api)?;
                Ok(s.api.clone())
            })
            .await?;
        Ok(api)
    }

    pub async fn delete_api(&self, api_id: &str) -> Result<(), GatewayError> {
        let writer = self.writer.clone().lock_owned().await;
        self.state(api_id)?;
        let mut changes = Changes::default();
        changes.delete_api(api_id);
        let api_id = api_id.to_string();
        self.commit(writer, changes, move |apis| {
            apis.remove(&api_id);
        })
        .await
    }

    // ---- routes --------------------------------------------------------------------

    fn check_target(s: &ApiState, target: &str) -> Result<(), GatewayError> {
        let id = target
            .strip_prefix("integrations/")
            .ok_or_else(|| bad(format!("Invalid target {target}: use integrations/<integration id>")))?;
        if !s.integrations.contains_key(id) {
            return Err(GatewayError::NotFound(format!("Invalid Integration identifier specified {id}")));
        }
        Ok(())
    }

    fn check_route_unique(s: &ApiState, key: &str, except: Option<&str>) -> Result<(), GatewayError> {
        if s.routes.values().any(|r| r.route_key == key && Some(r.route_id.as_str()) != except) {
            return Err(GatewayError::Conflict(format!(
                "Unable to complete operation due to concurrent modification. Route with key {key} already exists for this API"
            )));
        }
        Ok(())
    }

    fn check_authorization(t: Option<&str>) -> Result<(), GatewayError> {
        match t {
            None | Some("NONE") | Some("AWS_IAM") => Ok(()),
            Some(other) => Err(bad(format!("Nimbus serves routes with AuthorizationType NONE or AWS_IAM, not {other}"))),
        }
    }

    pub async fn create_route(&self, api_id: &str, input: RouteInput) -> Result<Route, GatewayError> {
        let key = input.route_key.ok_or_else(|| bad("RouteKey is required"))?;
        check_route_key(&key)?;
        Self::check_authorization(input.authorization_type.as_deref())?;
        self.change(api_id, |s, changes| {
            Self::check_route_unique(s, &key, None)?;
            if let Some(t) = &input.target {
                Self::check_target(s, t)?;
            }
            let route = Route {
                route_id: new_id(7),
                route_key: key,
                target: input.target,
                api_key_required: input.api_key_required.unwrap_or(false),
                authorization_type: input.authorization_type.unwrap_or_else(|| "NONE".into()),
                api_gateway_managed: false,
            };
            changes.put(api_id, Kind::Route, &route.route_id, &route)?;
            s.routes.insert(route.route_id.clone(), route.clone());
            Ok(route)
        })
        .await
    }

    pub async fn update_route(&self, api_id: &str, route_id: &str, input: RouteInput) -> Result<Route, GatewayError> {
        if let Some(k) = &input.route_key {
            check_route_key(k)?;
        }
        Self::check_authorization(input.authorization_type.as_deref())?;
        self.change(api_id, |s, changes| {
            let mut route = s.routes.get(route_id).cloned().ok_or_else(|| route_not_found(route_id))?;
            if let Some(k) = input.route_key {
                Self::check_route_unique(s, &k, Some(route_id))?;
                route.route_key = k;
            }
            if let Some(t) = input.target {
                Self::check_target(s, &t)?;
                route.target = Some(t);
            }
            if let Some(r) = input.api_key_required {
                route.api_key_required = r;
            }
            if let Some(t) = input.authorization_type {
                route.authorization_type = t;
            }
            changes.put(api_id, Kind::Route, route_id, &route)?;
            s.routes.insert(route_id.to_string(), route.clone());
            Ok(route)
        })
        .await
    }

    pub fn get_routes(&self, api_id: &str) -> Result<Vec<Route>, GatewayError> {
        Ok(self.state(api_id)?.routes.values().cloned().collect())
    }

    pub fn get_route(&self, api_id: &str, route_id: &str) -> Result<Route, GatewayError> {
        self.state(api_id)?.routes.get(route_id).cloned().ok_or_else(|| route_not_found(route_id))
    }

    pub async fn delete_route(&self, api_id: &str, route_id: &str) -> Result<(), GatewayError> {
        self.change(api_id, |s, changes| {
            s.routes.remove(route_id).ok_or_else(|| route_not_found(route_id))?;
            changes.delete(api_id, Kind::Route, route_id);
            Ok(())
        })
        .await
    }

    // ---- integrations --------------------------------------------------------------

    fn apply_integration(i: &mut Integration, input: IntegrationInput) -> Result<(), GatewayError> {
        if let Some(t) = input.integration_type {
            if t != "AWS_PROXY" {
                return Err(bad(format!("Nimbus serves AWS_PROXY integrations with Lambda functions only, not {t}")));
            }
        }
        if let Some(uri) = input.integration_uri {
            function_arn(&uri).ok_or_else(|| bad(format!("Invalid integration URI {uri}: use a Lambda function ARN")))?;
            i.integration_uri = uri;
        }
        if let Some(v) = input.payload_format_version {
            if !PAYLOAD_FORMATS.contains(&v.as_str()) {
                return Err(bad(format!("Invalid payload format version {v}: use 1.0 or 2.0 (or Nimbus's alb, alb-multi-value)")));
            }
            i.payload_format_version = v;
        }
        if let Some(m) = input.integration_method {
            i.integration_method = m;
        }
        if let Some(c) = input.connection_type {
            if c != "INTERNET" {
                return Err(bad(format!("Invalid connection type {c} for a Lambda proxy integration")));
            }
        }
        if input.description.is_some() {
            i.description = input.description;
        }
        if let Some(t) = input.timeout_in_millis {
            if !(50..=30_000).contains(&t) {
                return Err(bad(format!("Invalid timeout {t}: TimeoutInMillis must be between 50 and 30000")));
            }
            i.timeout_in_millis = t as u32;
        }
        if let Some(p) = input.request_parameters {
            i.request_parameters = p;
        }
        Ok(())
    }

    pub async fn create_integration(&self, api_id: &str, input: IntegrationInput) -> Result<Integration, GatewayError> {
        if input.integration_type.is_none() {
            return Err(bad("IntegrationType is required"));
        }
        if input.integration_uri.is_none() {
            return Err(bad("IntegrationUri is required for AWS_PROXY integrations"));
        }
        // AWS: "If you create a Lambda integration by using the AWS CLI, CloudFormation, or an
        // SDK, you must specify a payloadFormatVersion" (HTTP API Lambda integrations guide).
        if input.payload_format_version.is_none() {
            return Err(bad("PayloadFormatVersion is required for HTTP API Lambda proxy integrations (1.0 or 2.0)"));
        }
        let mut i = Integration {
            integration_id: new_id(7),
            connection_type: "INTERNET".into(),
            description: None,
            integration_method: "POST".into(),
            integration_type: "AWS_PROXY".into(),
            integration_uri: String::new(),
            payload_format_version: String::new(),
            request_parameters: BTreeMap::new(),
            timeout_in_millis: 30_000,
            api_gateway_managed: false,
        };
        Self::apply_integration(&mut i, input)?;
        self.change(api_id, |s, changes| {
            changes.put(api_id, Kind::Integration, &i.integration_id, &i)?;
            s.integrations.insert(i.integration_id.clone(), i.clone());
            Ok(i)
        })
        .await
    }

    pub async fn update_integration(&self, api_id: &str, id: &str, input: IntegrationInput) -> Result<Integration, GatewayError> {
        self.change(api_id, |s, changes| {
            let mut i = s.integrations.get(id).cloned().ok_or_else(|| integration_not_found(id))?;
            Self::apply_integration(&mut i, input)?;
            changes.put(api_id, Kind::Integration, id, &i)?;
            s.integrations.insert(id.to_string(), i.clone());
            Ok(i)
        })
        .await
    }

    pub fn get_integrations(&self, api_id: &str) -> Result<Vec<Integration>, GatewayError> {
        Ok(self.state(api_id)?.integrations.values().cloned().collect())
    }

    pub fn get_integration(&self, api_id: &str, id: &str) -> Result<Integration, GatewayError> {
        self.state(api_id)?.integrations.get(id).cloned().ok_or_else(|| integration_not_found(id))
    }

    pub async fn delete_integration(&self, api_id: &str, id: &str) -> Result<(), GatewayError> {
        self.change(api_id, |s, changes| {
            if !s.integrations.contains_key(id) {
                return Err(integration_not_found(id));
            }
            let target = format!("integrations/{id}");
            if let Some(r) = s.routes.values().find(|r| r.target.as_deref() == Some(target.as_str())) {
                return Err(GatewayError::Conflict(format!(
                    "Cannot delete integration {id}: it is the target of route {} ({})",
                    r.route_id, r.route_key
                )));
            }
            s.integrations.remove(id);
            changes.delete(api_id, Kind::Integration, id);
            Ok(())
        })
        .await
    }

    // ---- stages and deployments ----------------------------------------------------

    pub async fn create_stage(&self, api_id: &str, input: StageInput) -> Result<Stage, GatewayError> {
        let name = input.stage_name.clone().ok_or_else(|| bad("StageName is required"))?;
        check_stage_name(&name)?;
        self.change(api_id, |s, changes| {
            if s.stages.contains_key(&name) {
                return Err(GatewayError::Conflict(format!("Stage {name} already exists")));
            }
            let mut stage = new_stage(&name, false, &now());
            apply_stage(s, &mut stage, input)?;
            changes.put(api_id, Kind::Stage, &name, &stage)?;
            s.stages.insert(name, stage.clone());
            Ok(stage)
        })
        .await
    }

    pub async fn update_stage(&self, api_id: &str, name: &str, input: StageInput) -> Result<Stage, GatewayError> {
        self.change(api_id, |s, changes| {
            let mut stage = s.stages.get(name).cloned().ok_or_else(|| stage_not_found(name))?;
            apply_stage(s, &mut stage, StageInput { stage_name: None, ..input })?;
            stage.last_updated_date = now();
            changes.put(api_id, Kind::Stage, name, &stage)?;
            s.stages.insert(name.to_string(), stage.clone());
            Ok(stage)
        })
        .await
    }

    pub fn get_stages(&self, api_id: &str) -> Result<Vec<Stage>, GatewayError> {
        Ok(self.state(api_id)?.stages.values().cloned().collect())
    }

    pub fn get_stage(&self, api_id: &str, name: &str) -> Result<Stage, GatewayError> {
        self.state(api_id)?.stages.get(name).cloned().ok_or_else(|| stage_not_found(name))
    }

    pub async fn delete_stage(&self, api_id: &str, name: &str) -> Result<(), GatewayError> {
        self.change(api_id, |s, changes| {
            s.stages.remove(name).ok_or_else(|| stage_not_found(name))?;
            changes.delete(api_id, Kind::Stage, name);
            Ok(())
        })
        .await
    }

    /// CreateDeployment: freezes the routes and integrations; with `stageName`, that stage
    /// serves the new deployment.
    pub async fn create_deployment(&self, api_id: &str, input: DeploymentInput) -> Result<Deployment, GatewayError> {
        self.change(api_id, |s, changes| {
            let deployment = Deployment {
                deployment_id: new_id(7),
                auto_deployed: false,
                created_date: now(),
                deployment_status: "DEPLOYED".into(),
                description: input.description,
            };
            if let Some(name) = &input.stage_name {
                let mut stage = s.stages.get(name).cloned().ok_or_else(|| stage_not_found(name))?;
                stage.deployment_id = Some(deployment.deployment_id.clone());
                stage.last_updated_date = now();
                changes.put(api_id, Kind::Stage, name, &stage)?;
                s.stages.insert(name.clone(), stage);
            }
            let stored = StoredDeployment { deployment: deployment.clone(), snapshot: s.snapshot() };
            changes.put(api_id, Kind::Deployment, &deployment.deployment_id, &stored)?;
            let table = Arc::new(RouteTable::new(&stored.snapshot.routes, &stored.snapshot.integrations));
            s.deployments.insert(deployment.deployment_id.clone(), (stored, table));
            Ok(deployment)
        })
        .await
    }

    pub fn get_deployments(&self, api_id: &str) -> Result<Vec<Deployment>, GatewayError> {
        Ok(self.state(api_id)?.deployments.values().map(|(d, _)| d.deployment.clone()).collect())
    }

    pub fn get_deployment(&self, api_id: &str, id: &str) -> Result<Deployment, GatewayError> {
        self.state(api_id)?.deployments.get(id).map(|(d, _)| d.deployment.clone()).ok_or_else(|| deployment_not_found(id))
    }

    // ---- serving -------------------------------------------------------------------

    /// The API's CORS configuration and endpoint switch; None: no such API.
    pub fn front(&self, api_id: &str) -> Option<ApiFront> {
        let state = self.state(api_id).ok()?;
        Some(ApiFront { cors: state.api.cors_configuration.clone(), disable_execute_api_endpoint: state.api.disable_execute_api_endpoint })
    }

    /// Picks the stage and route for a request to `execute-api` (`path` below the API's
    /// root). AWS's order: a stage named by the first path segment, else the `$default`
    /// stage with the whole path; then the best route of what that stage serves. None: AWS's
    /// 404 `{"message":"Not Found"}` (no such API, stage, route, or a route without an
    /// integration).
    pub fn resolve(&self, api_id: &str, method: &str, path: &str) -> Option<Resolved> {
        let state = self.state(api_id).ok()?;
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let (stage, route_path) = match state.stages.get(first).filter(|_| first != DEFAULT_STAGE) {
            Some(stage) => (stage, &path[1 + first.len()..]),
            None => (state.stages.get(DEFAULT_STAGE)?, path),
        };
        let table = if stage.auto_deploy { state.live.clone() } else { state.deployments.get(stage.deployment_id.as_deref()?)?.1.clone() };
        let selected = table.select(method, if route_path.is_empty() { "/" } else { route_path })?;
        Some(Resolved {
            api_id: api_id.to_string(),
            stage: stage.stage_name.clone(),
            stage_variables: stage.stage_variables.clone(),
            route_key: selected.route.route_key.clone(),
            route_id: selected.route.route_id.clone(),
            authorization_type: selected.route.authorization_type.clone(),
            resource: selected.resource.to_string(),
            path_parameters: selected.path_parameters,
            integration: selected.integration?.clone(),
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }
}

/// Every API in the store, with its compiled route tables (those it serves live and each
/// deployment's).
async fn load_apis(store: &GatewayStore) -> Result<Apis, GatewayError> {
    let records = store.load().await?;
    let mut apis: BTreeMap<String, ApiState> = BTreeMap::new();
    for (_, api) in records.of::<Api>(Kind::Api)? {
        apis.insert(api.api_id.clone(), ApiState::new(api));
    }
    for (id, r) in records.of::<Route>(Kind::Route)? {
        if let Some(a) = apis.get_mut(&id) {
            a.routes.insert(r.route_id.clone(), r);
        }
    }
    for (id, i) in records.of::<Integration>(Kind::Integration)? {
        if let Some(a) = apis.get_mut(&id) {
            a.integrations.insert(i.integration_id.clone(), i);
        }
    }
    for (id, s) in records.of::<Stage>(Kind::Stage)? {
        if let Some(a) = apis.get_mut(&id) {
            a.stages.insert(s.stage_name.clone(), s);
        }
    }
    for (id, d) in records.of::<StoredDeployment>(Kind::Deployment)? {
        if let Some(a) = apis.get_mut(&id) {
            let table = Arc::new(RouteTable::new(&d.snapshot.routes, &d.snapshot.integrations));
            a.deployments.insert(d.deployment.deployment_id.clone(), (d, table));
        }
    }
    Ok(apis
        .into_iter()
        .map(|(id, mut a)| {
            a.recompile();
            (id, Arc::new(a))
        })
        .collect())
}

fn new_stage(name: &str, auto_deploy: bool, created: &str) -> Stage {
    Stage {
        stage_name: name.to_string(),
        auto_deploy,
        created_date: created.to_string(),
        last_updated_date: created.to_string(),
        deployment_id: None,
        description: None,
        default_route_settings: RouteSettings { detailed_metrics_enabled: Some(false), ..RouteSettings::default() },
        route_settings: BTreeMap::new(),
        stage_variables: BTreeMap::new(),
        tags: BTreeMap::new(),
        api_gateway_managed: false,
    }
}

fn apply_stage(s: &ApiState, stage: &mut Stage, input: StageInput) -> Result<(), GatewayError> {
    if let Some(a) = input.auto_deploy {
        stage.auto_deploy = a;
    }
    if let Some(id) = input.deployment_id {
        if !s.deployments.contains_key(&id) {
            return Err(deployment_not_found(&id));
        }
        stage.deployment_id = Some(id);
    }
    if input.description.is_some() {
        stage.description = input.description;
    }
    if let Some(vars) = input.stage_variables {
        // AWS: names [A-Za-z0-9_]+, values [A-Za-z0-9-._~:/?#&=,]+ (Stage variables reference).
        for (k, v) in &vars {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad(format!("Invalid stage variable name {k}")));
            }
            if v.len() > 2048 {
                return Err(bad(format!("Stage variable {k} is longer than 2048 characters")));
            }
        }
        stage.stage_variables = vars;
    }
    if let Some(d) = input.default_route_settings {
        stage.default_route_settings = d;
    }
    if let Some(r) = input.route_settings {
        stage.route_settings = r;
    }
    if let Some(t) = input.tags {
        stage.tags = t;
    }
    Ok(())
}

fn route_not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid Route identifier specified {id}"))
}

fn integration_not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid Integration identifier specified {id}"))
}

fn stage_not_found(name: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid stage identifier specified {name}"))
}

fn deployment_not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid Deployment identifier specified {id}"))
}
