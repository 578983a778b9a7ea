//! API Gateway V2 management's half of the authorization table: permissions are named by the
//! HTTP method (`apigateway:GET`, `POST`, `PATCH`, `DELETE`) on the resource's path, as the
//! Service Authorization Reference lists them for Amazon API Gateway Management V2:
//! `arn:aws:apigateway:<region>::/apis/<id>/routes/<id>` (no account), a collection's own
//! path for creating in it and listing it.

use super::*;
use crate::authz::{Scope, Target};

impl GatewayRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use GatewayCall::*;
        let api = |id: &str| format!("/apis/{id}");
        let under = |id: &str, kind: &str, child: Option<&str>| match child {
            Some(c) => format!("/apis/{id}/{kind}/{c}"),
            None => format!("/apis/{id}/{kind}"),
        };
        let path = match self.call.as_ref().ok()? {
            CreateApi(_) | GetApis(_) => "/apis".to_string(),
            GetApi(r) | DeleteApi(r) => api(&r.api_id),
            UpdateApi(c) => api(&c.api_id),
            CreateRoute(c) | UpdateRoute(c) => under(&c.api_id, "routes", c.route_id.as_deref()),
            GetRoutes(l) => under(l.api(), "routes", None),
            GetRoute(r) | DeleteRoute(r) => under(&r.api_id, "routes", Some(&r.route_id)),
            CreateIntegration(c) | UpdateIntegration(c) => under(&c.api_id, "integrations", c.integration_id.as_deref()),
            GetIntegrations(l) => under(l.api(), "integrations", None),
            GetIntegration(r) | DeleteIntegration(r) => under(&r.api_id, "integrations", Some(&r.integration_id)),
            // CreateStage names its stage in the body; UpdateStage in the URI.
            CreateStage(c) => under(&c.api_id, "stages", None),
            UpdateStage(c) => under(&c.api_id, "stages", c.input.stage_name.as_deref()),
            GetStages(l) => under(l.api(), "stages", None),
            GetStage(r) | DeleteStage(r) => under(&r.api_id, "stages", Some(&r.stage_name)),
            CreateDeployment(c) => under(&c.api_id, "deployments", None),
            GetDeployments(l) => under(l.api(), "deployments", None),
            GetDeployment(r) => under(&r.api_id, "deployments", Some(&r.deployment_id)),
        };
        Some(Target::on(self.name(), format!("arn:aws:apigateway:{}::{path}", scope.region)))
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, rest};
    use http::Method;

    #[test]
    fn methods_on_paths() {
        let arn = |path: &str| format!("arn:aws:apigateway:us-east-1::{path}");
        let api = "/apis/a1b2c3";
        let cases = vec![
            (rest(Method::POST, "/v2/apis", r#"{"name":"n","protocolType":"HTTP"}"#), "apigateway:POST", arn("/apis")),
            (rest(Method::GET, "/v2/apis", ""), "apigateway:GET", arn("/apis")),
            (rest(Method::GET, "/v2/apis/a1b2c3", ""), "apigateway:GET", arn(api)),
            (rest(Method::PATCH, "/v2/apis/a1b2c3", r#"{"name":"m"}"#), "apigateway:PATCH", arn(api)),
            (rest(Method::DELETE, "/v2/apis/a1b2c3", ""), "apigateway:DELETE", arn(api)),
            (rest(Method::POST, "/v2/apis/a1b2c3/routes", r#"{"routeKey":"GET /x"}"#), "apigateway:POST", arn(&format!("{api}/routes"))),
            (rest(Method::GET, "/v2/apis/a1b2c3/routes", ""), "apigateway:GET", arn(&format!("{api}/routes"))),
            (rest(Method::GET, "/v2/apis/a1b2c3/routes/r1", ""), "apigateway:GET", arn(&format!("{api}/routes/r1"))),
            (rest(Method::PATCH, "/v2/apis/a1b2c3/routes/r1", "{}"), "apigateway:PATCH", arn(&format!("{api}/routes/r1"))),
            (rest(Method::DELETE, "/v2/apis/a1b2c3/routes/r1", ""), "apigateway:DELETE", arn(&format!("{api}/routes/r1"))),
            (
                rest(Method::POST, "/v2/apis/a1b2c3/integrations", r#"{"integrationType":"AWS_PROXY"}"#),
                "apigateway:POST",
                arn(&format!("{api}/integrations")),
            ),
            (rest(Method::GET, "/v2/apis/a1b2c3/integrations/i1", ""), "apigateway:GET", arn(&format!("{api}/integrations/i1"))),
            (rest(Method::POST, "/v2/apis/a1b2c3/stages", r#"{"stageName":"prod"}"#), "apigateway:POST", arn(&format!("{api}/stages"))),
            (rest(Method::PATCH, "/v2/apis/a1b2c3/stages/prod", "{}"), "apigateway:PATCH", arn(&format!("{api}/stages/prod"))),
            (rest(Method::DELETE, "/v2/apis/a1b2c3/stages/prod", ""), "apigateway:DELETE", arn(&format!("{api}/stages/prod"))),
            (rest(Method::POST, "/v2/apis/a1b2c3/deployments", "{}"), "apigateway:POST", arn(&format!("{api}/deployments"))),
            (rest(Method::GET, "/v2/apis/a1b2c3/deployments/d1", ""), "apigateway:GET", arn(&format!("{api}/deployments/d1"))),
        ];
        for (request, action, resource) in cases {
            check(vec![(request, action, &resource)]);
        }
    }
}
