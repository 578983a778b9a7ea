//! Function URLs on the wire: recognising a URL request (by host name
//! `<url-id>.<url domain>` or by path `/_aws/lambda-url/<url-id>/…`), invoking the function
//! with AWS's payload format 2.0 event, and mapping its result back to HTTP exactly as AWS
//! does, with the URL's CORS rules. The events and the result mapping are
//! `nimbus_gateway::proxy`'s, shared with API Gateway routes. Nimbus extension: by path
//! `/_aws/elb/<url-id>/…` (or `/_aws/elb-multi-value/<url-id>/…`) the function gets an
//! Application Load Balancer target event instead, for handlers written for ALB. A URL in
//! `RESPONSE_STREAM` mode streams the function's response to the client as it is written.

use http::{HeaderValue, Response, StatusCode};
use nimbus_gateway::proxy::{self as events, Context};
use nimbus_model::url::{AuthType, FunctionUrlConfig};
use nimbus_model::{FunctionRef, InvokeRequest, Qualifier};
use serde_json::json;

use crate::auth::Signer;
use crate::authz::{self, Connection, Who};
use crate::forward::not_run;
use crate::proxy::{self, Door, HttpCall, Outcome};
use crate::response::{self, Body};
use crate::server::AppState;
use crate::streaming::UrlStream;

/// The event a URL request becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    /// AWS's payload format 2.0 (what function URLs send).
    V2,
    /// Nimbus extension: an ALB target event (`multi_value`: as with the target group's
    /// `lambda.multi_value_headers.enabled`).
    Alb { multi_value: bool },
}

/// A request addressed to a function URL.
#[derive(Debug)]
pub struct UrlRequest {
    pub url_id: String,
    pub format: UrlFormat,
    pub call: HttpCall,
}

/// Recognises a function URL request; returns (url id, path for the function, event format,
/// how it came: by path or by host name).
pub fn match_url(host: Option<&str>, path: &str, url_domain: &str) -> Option<(String, String, UrlFormat, Door)> {
    let prefixes = [
        ("/_aws/lambda-url/", UrlFormat::V2),
        ("/_aws/elb/", UrlFormat::Alb { multi_value: false }),
        ("/_aws/elb-multi-value/", UrlFormat::Alb { multi_value: true }),
    ];
    for (prefix, format) in prefixes {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (id, tail) = rest.split_once('/').map(|(i, t)| (i, format!("/{t}"))).unwrap_or((rest, "/".to_string()));
            return nimbus_model::url::is_url_id(id).then(|| (id.to_string(), tail, format, Door::Path));
        }
    }
    let host = host?.split(':').next()?;
    let id = host.strip_suffix(url_domain)?.strip_suffix('.')?;
    nimbus_model::url::is_url_id(id).then(|| (id.to_string(), path.to_string(), UrlFormat::V2, Door::Host))
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    response::json(status, &json!({ "Message": text }))
}

/// AWS's answer to a URL request its auth type does not let through.
fn forbidden(text: &str) -> Response<Body> {
    let mut r = message(StatusCode::FORBIDDEN, text);
    r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static("AccessDeniedException"));
    r
}

const FORBIDDEN_IAM: &str =
    "Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html";

/// Whether the URL's caller may invoke it: `lambda:InvokeFunctionUrl` on the function (as the
/// URL qualifies it) with `lambda:FunctionUrlAuthType`, for the anonymous caller of a `NONE`
/// URL (the function's policy must allow `"Principal": "*"`, as AWS requires of URLs made
/// through the API) or the signer of an `AWS_IAM` request (its own policies or the function's).
async fn authorize(state: &AppState, config: &FunctionUrlConfig, signer: &Signer, conn: &Connection<'_>) -> Result<(), Response<Body>> {
    let partition = state.control.partition();
    let resource = match &config.qualifier {
        Some(q) => partition.qualified_arn(&config.function, q),
        None => partition.function_arn(&config.function),
    };
    let (who, auth_type) = match (config.auth_type, signer) {
        (_, Signer::Off) => return Ok(()),
        (AuthType::None, _) => (Who::Anonymous, "NONE"),
        (AuthType::AwsIam, Signer::Unsigned) => return Err(forbidden("Forbidden")),
        (AuthType::AwsIam, Signer::Refused(e)) => {
            tracing::debug!(url = %config.url_id, "function URL signature refused: {e}");
            return Err(forbidden(FORBIDDEN_IAM));
        }
        (AuthType::AwsIam, Signer::Signed(caller)) => (Who::Caller(caller), "AWS_IAM"),
    };
    let extra = [("lambda:FunctionUrlAuthType", auth_type)];
    authz::decide(state, who, "lambda:InvokeFunctionUrl", &resource, &extra, conn).await.map_err(|why| {
        tracing::debug!(url = %config.url_id, "function URL request denied: {why}");
        forbidden(if auth_type == "NONE" { "Forbidden" } else { FORBIDDEN_IAM })
    })
}

/// Serves one URL request end to end.
pub async fn serve(state: &AppState, req: UrlRequest, signer: Signer, conn: &Connection<'_>) -> Response<Body> {
    let config: std::sync::Arc<FunctionUrlConfig> = match state.control.url_by_id(&req.url_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_run(message(StatusCode::NOT_FOUND, "Not Found")),
        Err(e) => return not_run(message(StatusCode::INTERNAL_SERVER_ERROR, &e.message)),
    };
    if req.call.too_large() {
        return not_run(message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
    }
    let cors = config.cors.as_ref();
    // CORS preflight is answered here, without invoking the function.
    if let Some(r) = proxy::preflight(cors, &req.call, StatusCode::OK) {
        return r;
    }
    if let Err(refused) = authorize(state, &config, &signer, conn).await {
        return not_run(refused);
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let domain_name = format!("{}.{}", req.url_id, state.url_domain);
    let partition = state.control.partition();
    let target_group = format!(
        "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}/{}",
        partition.region,
        partition.account_id,
        &config.function[..config.function.len().min(32)],
        &req.url_id[..16]
    );
    let ev = req.call.with_view(|view| match req.format {
        UrlFormat::V2 => {
            let ctx = Context {
                account_id: "anonymous",
                api_id: &req.url_id,
                domain_name: &domain_name,
                domain_prefix: &req.url_id,
                stage: "$default",
                route_key: "$default",
                resource: "$default",
                path_parameters: None,
                stage_variables: None,
                request_id: &request_id,
                now: chrono::Utc::now(),
            };
            events::v2_event(view, &ctx)
        }
        UrlFormat::Alb { multi_value } => events::alb_event(view, &target_group, multi_value),
    });
    let qualifier = config.qualifier.as_deref().and_then(|q| Qualifier::parse(q).ok());
    let function = FunctionRef { name: config.function.clone(), qualifier };
    let trace = proxy::trace_parent(&req.call.headers);
    let streams = config.invoke_mode == "RESPONSE_STREAM" && req.format == UrlFormat::V2;
    let outcome = if streams && ev.len() <= nimbus_model::validate::MAX_SYNC_PAYLOAD {
        let invoke = InvokeRequest {
            function,
            payload: ev,
            tail_log: false,
            client_context: None,
            request_id: Some(request_id.clone()),
            trace: nimbus_model::trace::TraceContext { parent: trace, trigger: nimbus_model::trace::Trigger::Http },
        };
        match crate::streaming::serve_url(state, invoke).await {
            UrlStream::Streaming(r) => Err(r),
            UrlStream::Whole(result) => Ok(proxy::outcome(result)),
        }
    } else {
        Ok(proxy::invoke(state, function, ev, &request_id, None, trace).await)
    };
    let mut r = match outcome {
        Err(streaming) => streaming,
        Ok(Outcome::Result(payload)) => {
            let mapped = match req.format {
                UrlFormat::V2 => events::v2_response(&payload),
                UrlFormat::Alb { multi_value } => events::alb_response(&payload, multi_value),
            };
            mapped.map(proxy::body).unwrap_or_else(|| message(StatusCode::BAD_GATEWAY, "Internal Server Error"))
        }
        Ok(Outcome::FunctionError { .. }) => message(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        Ok(Outcome::Throttled) => not_run(message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded.")),
        Ok(Outcome::FunctionMissing) => not_run(message(StatusCode::NOT_FOUND, "Not Found")),
        Ok(Outcome::TooLarge) => message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Ok(Outcome::TimedOut | Outcome::Failed) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    proxy::apply_cors(cors, &req.call, &mut r);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let id = "abcdefghijklmnopqrstuvwxyz012345";
        let d = "lambda-url.us-east-1.localhost";
        assert_eq!(match_url(Some(&format!("{id}.{d}:9001")), "/x", d), Some((id.to_string(), "/x".into(), UrlFormat::V2, Door::Host)));
        assert_eq!(
            match_url(None, &format!("/_aws/lambda-url/{id}/a/b"), d),
            Some((id.to_string(), "/a/b".into(), UrlFormat::V2, Door::Path))
        );
        assert_eq!(match_url(None, &format!("/_aws/lambda-url/{id}"), d), Some((id.to_string(), "/".into(), UrlFormat::V2, Door::Path)));
        assert_eq!(
            match_url(None, &format!("/_aws/elb/{id}/a"), d),
            Some((id.to_string(), "/a".into(), UrlFormat::Alb { multi_value: false }, Door::Path))
        );
        assert_eq!(
            match_url(None, &format!("/_aws/elb-multi-value/{id}"), d),
            Some((id.to_string(), "/".into(), UrlFormat::Alb { multi_value: true }, Door::Path))
        );
        assert_eq!(match_url(Some("127.0.0.1:9001"), "/2015-03-31/functions", d), None);
        assert_eq!(match_url(Some(&format!("short.{d}")), "/", d), None);
    }
}
