//! The records of an HTTP API (API, route, integration, stage, deployment) as API Gateway V2
//! names them: serialized, each is exactly the JSON object the management API returns
//! (members in camelCase, as botocore's model gives their `locationName`), and what
//! `gateway.db` stores. The inputs are named as the model names members (the protocol layer
//! maps wire names to them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    pub api_id: String,
    /// Filled in by the HTTP edge when answering (it names this server as the caller
    /// reached it).
    #[serde(default)]
    pub api_endpoint: String,
    pub api_key_selection_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_configuration: Option<CorsConfiguration>,
    pub created_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub disable_execute_api_endpoint: bool,
    pub name: String,
    pub protocol_type: String,
    pub route_selection_expression: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// An API's CORS configuration, applied to every route (stored in camelCase, the wire
/// form; read from a decoded input under the model's member names too).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "AllowCredentials")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "AllowHeaders")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "AllowMethods")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "AllowOrigins")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "ExposeHeaders")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "MaxAge")]
    pub max_age: Option<i64>,
}

/// A stage's route settings (stored and returned; Nimbus does not throttle by them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "DataTraceEnabled")]
    pub data_trace_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "DetailedMetricsEnabled")]
    pub detailed_metrics_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "LoggingLevel")]
    pub logging_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "ThrottlingBurstLimit")]
    pub throttling_burst_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(alias = "ThrottlingRateLimit")]
    pub throttling_rate_limit: Option<f64>,
}

/// A route: `GET /items/{id}`, `ANY /{proxy+}` or `$default`, and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub route_id: String,
    pub route_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub api_key_required: bool,
    pub authorization_type: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

/// Payload formats: AWS's two API Gateway versions, and Nimbus's load-balancer extension.
pub const PAYLOAD_FORMATS: &[&str] = &["1.0", "2.0", ALB_FORMAT, ALB_MULTI_VALUE_FORMAT];
/// Nimbus extension: the function receives an Application Load Balancer target event.
pub const ALB_FORMAT: &str = "alb";
/// Nimbus extension: ALB events as with the target group's `lambda.multi_value_headers.enabled`.
pub const ALB_MULTI_VALUE_FORMAT: &str = "alb-multi-value";

/// An AWS_PROXY integration with a Lambda function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub integration_id: String,
    pub connection_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub integration_method: String,
    pub integration_type: String,
    pub integration_uri: String,
    pub payload_format_version: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub request_parameters: BTreeMap<String, String>,
    pub timeout_in_millis: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

/// A stage: a name under which a deployment (or, with auto-deploy, the API as it is) is served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: String,
    pub auto_deploy: bool,
    pub created_date: String,
    pub last_updated_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub default_route_settings: RouteSettings,
    pub route_settings: BTreeMap<String, RouteSettings>,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub api_gateway_managed: bool,
}

/// A deployment: the routes and integrations as they were when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub deployment_id: String,
    pub auto_deployed: bool,
    pub created_date: String,
    pub deployment_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Routes and integrations frozen by a deployment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
}

/// CreateApi / UpdateApi input (members as in botocore's model; all optional for updates).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiInput {
    pub name: Option<String>,
    pub protocol_type: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub route_key: Option<String>,
    pub target: Option<String>,
    pub route_selection_expression: Option<String>,
    pub api_key_selection_expression: Option<String>,
    pub cors_configuration: Option<CorsConfiguration>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// CreateRoute / UpdateRoute input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteInput {
    pub route_key: Option<String>,
    pub target: Option<String>,
    pub authorization_type: Option<String>,
    pub api_key_required: Option<bool>,
}

/// CreateIntegration / UpdateIntegration input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntegrationInput {
    pub integration_type: Option<String>,
    pub integration_uri: Option<String>,
    pub integration_method: Option<String>,
    pub payload_format_version: Option<String>,
    pub connection_type: Option<String>,
    pub description: Option<String>,
    pub timeout_in_millis: Option<i64>,
    pub request_parameters: Option<BTreeMap<String, String>>,
}

/// CreateStage / UpdateStage input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageInput {
    pub stage_name: Option<String>,
    pub auto_deploy: Option<bool>,
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub stage_variables: Option<BTreeMap<String, String>>,
    pub default_route_settings: Option<RouteSettings>,
    pub route_settings: Option<BTreeMap<String, RouteSettings>>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// CreateDeployment input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentInput {
    pub description: Option<String>,
    pub stage_name: Option<String>,
}
