//! Where the URLs Nimbus hands out point (queue URLs, `FunctionUrl`, `ApiEndpoint`,
//! `Code.Location`), so that each works from the host and from inside a function alike,
//! with no name to resolve: on the address the caller used, except that the address
//! environments reach the server at (the bridge's gateway, `AWS_ENDPOINT_URL`) is answered
//! with the server's own listen address, which leads to the server inside linked
//! environments too (see `nimbus_sandbox::server_door`). Function URLs and HTTP APIs are
//! given by path (`/_aws/lambda-url/<id>/`, `/_aws/execute-api/<id>`) unless the operator
//! chose a domain for them, whose names are then theirs to resolve.

/// How this server's URLs are made.
#[derive(Debug, Clone)]
pub struct Urls {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The server as the host reaches it (`127.0.0.1:9001`): the listen address, loopback
    /// for an unspecified one.
    pub public: String,
    /// How environments reach the server (`10.213.0.1:9001`), if they do over a bridge.
    pub environments: Option<String>,
    /// Function URLs by host name under this domain (`--url-domain`); else by path.
    pub url_domain: Option<String>,
    /// HTTP APIs by host name under this domain (`--api-domain`); else by path.
    pub api_domain: Option<String>,
    /// The listen port, for host-name URLs.
    pub port: u16,
}

impl Urls {
    /// `http(s)://<host>` for a request that came with this Host header: the host the
    /// caller used, or the server's own address for a caller inside an environment (whose
    /// way in exists only there) or one that named no host.
    pub fn origin(&self, host: Option<&str>) -> String {
        let host = match host {
            Some(h) if !h.is_empty() && !self.is_environments(h) => h,
            _ => &self.public,
        };
        format!("{}://{host}", self.scheme)
    }

    /// Whether `host` (a Host header) names environments' way in, with its port or, when
    /// that is the scheme's default, without.
    fn is_environments(&self, host: &str) -> bool {
        let Some(inside) = self.environments.as_deref() else { return false };
        let default_port = if self.scheme == "https" { ":443" } else { ":80" };
        host == inside || inside.strip_suffix(default_port) == Some(host)
    }

    /// A function URL (with its trailing slash, as AWS gives it).
    pub fn function_url(&self, origin: &str, url_id: &str) -> String {
        match &self.url_domain {
            Some(domain) => format!("{}://{url_id}.{domain}:{}/", self.scheme, self.port),
            None => format!("{origin}/_aws/lambda-url/{url_id}/"),
        }
    }

    /// An HTTP API's default endpoint (no trailing slash, as AWS gives it).
    pub fn api_endpoint(&self, origin: &str, api_id: &str) -> String {
        match &self.api_domain {
            Some(domain) => format!("{}://{api_id}.{domain}:{}", self.scheme, self.port),
            None => format!("{origin}/_aws/execute-api/{api_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(environments: Option<&str>, url_domain: Option<&str>, api_domain: Option<&str>) -> Urls {
        Urls {
            scheme: "http",
            public: "127.0.0.1:9001".into(),
            environments: environments.map(str::to_string),
            url_domain: url_domain.map(str::to_string),
            api_domain: api_domain.map(str::to_string),
            port: 9001,
        }
    }

    #[test]
    fn origins_follow_the_caller_except_inside_environments() {
        let bridged = urls(Some("10.213.0.1:9001"), None, None);
        let on_80 = Urls { public: "127.0.0.1:80".into(), port: 80, ..urls(Some("10.213.0.1:80"), None, None) };
        let cases = [
            (&bridged, Some("127.0.0.1:9001"), "http://127.0.0.1:9001"),
            (&bridged, Some("localhost:9001"), "http://localhost:9001"),
            (&bridged, Some("nimbus.example:9001"), "http://nimbus.example:9001"),
            // AWS_ENDPOINT_URL's address works only inside: answered with the host's.
            (&bridged, Some("10.213.0.1:9001"), "http://127.0.0.1:9001"),
            (&bridged, Some("10.213.0.1:9002"), "http://10.213.0.1:9002"),
            (&bridged, None, "http://127.0.0.1:9001"),
            (&bridged, Some(""), "http://127.0.0.1:9001"),
            (&on_80, Some("10.213.0.1"), "http://127.0.0.1:80"),
            (&on_80, Some("10.213.0.1:80"), "http://127.0.0.1:80"),
            (&on_80, Some("10.213.0.2"), "http://10.213.0.2"),
        ];
        for (u, host, want) in cases {
            assert_eq!(u.origin(host), want, "{host:?}");
        }
        let tls = Urls { scheme: "https", ..urls(None, None, None) };
        assert_eq!(tls.origin(Some("10.213.0.1:9001")), "https://10.213.0.1:9001");
    }

    #[test]
    fn function_urls_and_api_endpoints_by_path_unless_a_domain_was_chosen() {
        let id = "abcdefghijklmnopqrstuvwxyz012345";
        let cases = [
            (
                urls(None, None, None),
                "http://127.0.0.1:9001/_aws/lambda-url/abcdefghijklmnopqrstuvwxyz012345/",
                "http://127.0.0.1:9001/_aws/execute-api/a1b2c3d4e5",
            ),
            (
                urls(None, Some("lambda-url.us-east-1.nimbus.test"), Some("execute-api.us-east-1.nimbus.test")),
                "http://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.nimbus.test:9001/",
                "http://a1b2c3d4e5.execute-api.us-east-1.nimbus.test:9001",
            ),
        ];
        for (u, url, endpoint) in cases {
            assert_eq!(u.function_url("http://127.0.0.1:9001", id), url);
            assert_eq!(u.api_endpoint("http://127.0.0.1:9001", "a1b2c3d4e5"), endpoint);
        }
    }
}
