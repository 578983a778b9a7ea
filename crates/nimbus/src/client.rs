//! A small HTTP client for the CLI: one request at a time to the Nimbus API, answers
//! decoded from Lambda's and CloudWatch Logs' JSON.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

pub struct Api {
    endpoint: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    credentials: Option<Credentials>,
}

/// How the CLI connects: plain HTTP, or HTTPS trusting `ca_bundle` (PEM; as the aws CLI's
/// `--ca-bundle`, it replaces the system's roots) or else the system's roots.
fn connector(endpoint: &str, ca_bundle: Option<&Path>) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("cannot read the CA bundle {}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| anyhow!("{}: malformed PEM", path.display()))?;
                roots.add(cert).with_context(|| format!("{}: a certificate rustls cannot use", path.display()))?;
            }
            if roots.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        // The system's roots are read only when they can be needed.
        None if endpoint.starts_with("https://") => builder
            .with_provider_and_native_roots(provider)
            .context("cannot read the system's root certificates (give the server's with --ca-bundle)")?,
        None => builder.with_tls_config(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    };
    Ok(builder.https_or_http().enable_http1().build())
}

/// The key the CLI signs with.
struct Credentials {
    id: String,
    secret: String,
    token: Option<String>,
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), else the
    /// `nimbus` profile of `AWS_SHARED_CREDENTIALS_FILE`, else the administrator's key the
    /// server keeps in its data directory on this machine (`NIMBUS_DATA`, default `./.nimbus`).
    fn find() -> Option<Credentials> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Some(Credentials { id, secret, token: var("AWS_SESSION_TOKEN") });
        }
        let files = [
            var("AWS_SHARED_CREDENTIALS_FILE").map(std::path::PathBuf::from),
            Some(
                std::path::PathBuf::from(var("NIMBUS_DATA").unwrap_or_else(|| "./.nimbus".into()))
                    .join(nimbus_identity::keys::CREDENTIALS_FILE),
            ),
        ];
        files
            .into_iter()
            .flatten()
            .find_map(|f| nimbus_identity::keys::read_credentials(&f).ok().flatten())
            .map(|(id, secret)| Credentials { id, secret, token: None })
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the server answered with invalid JSON")
    }

    /// Turns an AWS error answer into an error naming its type and message.
    pub fn ok(self) -> anyhow::Result<Answer> {
        if self.status < 300 {
            return Ok(self);
        }
        let kind = self
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.json().ok().and_then(|v| v["__type"].as_str().map(str::to_string)))
            .unwrap_or_else(|| format!("HTTP {}", self.status));
        let message = match self.json() {
            Ok(v) => v["message"].as_str().or(v["Message"].as_str()).unwrap_or_default().to_string(),
            // Not an AWS error: a plain-text answer (a plain-HTTP request to an HTTPS port) says why.
            Err(_) => String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).trim().to_string(),
        };
        Err(anyhow!("{kind}: {message}"))
    }
}

impl Api {
    pub fn new(endpoint: &str, ca_bundle: Option<&Path>) -> anyhow::Result<Api> {
        Ok(Api {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector(endpoint, ca_bundle)?),
            credentials: Credentials::find(),
        })
    }

    pub async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> anyhow::Result<Answer> {
        self.call_as(None, method, path, headers, body).await
    }

    /// [`Client::call`] signed for `service` (the SigV4 scope's service, which the server
    /// routes query-protocol requests by), or for the service the request looks addressed to.
    async fn call_as(
        &self,
        service: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let uri: http::Uri = format!("{}{path}", self.endpoint).parse().context("a bad endpoint or path")?;
        let mut h = http::HeaderMap::new();
        if let Some(host) = uri.authority() {
            h.insert(http::header::HOST, http::HeaderValue::from_str(host.as_str())?);
        }
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        }
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())?, http::HeaderValue::from_str(v)?);
        }
        if let Some(c) = &self.credentials {
            // The service a request is signed for, from what it looks like.
            let target = h.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
            let service = if let Some(service) = service {
                service
            } else if target.starts_with("AmazonSQS") {
                "sqs"
            } else if target.starts_with("Logs_") {
                "logs"
            } else if h.get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded")) {
                "sns"
            } else {
                "lambda"
            };
            let req = nimbus_identity::sigv4::Request { method, path: uri.path(), query: uri.query(), headers: &h, body: &body };
            let added =
                nimbus_identity::sigv4::sign_request(&c.id, &c.secret, c.token.as_deref(), "us-east-1", service, &req, chrono::Utc::now());
            for (k, v) in added {
                h.insert(k, http::HeaderValue::from_str(&v)?);
            }
        }
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(hm) = b.headers_mut() {
            *hm = h;
        }
        let req = b.body(Full::new(Bytes::from(body)))?;
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("cannot reach the Nimbus server at {} (is `nimbus server` running?)", self.endpoint))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    /// An SNS query-protocol call; returns the XML answer (errors as `Code: Message`).
    pub async fn sns(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        self.query("sns", "2010-03-31", action, params).await
    }

    /// An IAM query-protocol call; returns the XML answer (errors as `Code: Message`).
    pub async fn iam(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        self.query("iam", "2010-05-08", action, params).await
    }

    /// A query-protocol call of `service`, whose API version is `version`.
    async fn query(&self, service: &str, version: &str, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form = format!("Action={action}&Version={version}");
        for (k, v) in params {
            form.push('&');
            form.push_str(k);
            form.push('=');
            form.push_str(&url_encode(v));
        }
        let a =
            self.call_as(Some(service), "POST", "/", &[("content-type", "application/x-www-form-urlencoded")], form.into_bytes()).await?;
        let text = String::from_utf8_lossy(&a.body).into_owned();
        if a.status >= 300 {
            return Err(anyhow!("{}: {}", xml_text(&text, "Code"), xml_text(&text, "Message")));
        }
        Ok(text)
    }

    /// An SQS JSON 1.0 call.
    pub async fn sqs(&self, op: &str, input: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let target = format!("AmazonSQS.{op}");
        let a = self
            .call("POST", "/", &[("x-amz-target", &target), ("content-type", "application/x-amz-json-1.0")], serde_json::to_vec(&input)?)
            .await?
            .ok()?;
        a.json()
    }

    /// A CloudWatch Logs JSON 1.1 call.
    pub async fn logs(&self, op: &str, input: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let target = format!("Logs_20140328.{op}");
        let a = self
            .call("POST", "/", &[("x-amz-target", &target), ("content-type", "application/x-amz-json-1.1")], serde_json::to_vec(&input)?)
            .await?
            .ok()?;
        a.json()
    }
}

/// The text of the first `<tag>` element of a query-protocol answer ("" if none).
pub fn xml_text(xml: &str, tag: &str) -> String {
    xml.split(&format!("<{tag}>")).nth(1).and_then(|r| r.split(&format!("</{tag}>")).next()).unwrap_or("").to_string()
}

/// Percent-encodes a form value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
