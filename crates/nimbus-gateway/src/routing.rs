//! Route selection as API Gateway HTTP APIs do it: parse route keys (`GET /items/{id}`,
//! `ANY /{proxy+}`, `$default`) and pick the best route for a request. AWS's order
//! (developer guide, "Routing API requests"): a full match of route and method first, then a
//! match with a greedy path variable (`{proxy+}`), then `$default`. Among full matches a
//! literal segment beats a variable at the same place, and a route with the request's method
//! beats `ANY`; among greedy ones the longer route path wins.

use std::collections::BTreeMap;

use crate::model::{Integration, Route};

/// Methods a route key may name.
pub const METHODS: &[&str] = &["ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// None for `$default`.
    path: Option<KeyPath>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath {
    /// None for `ANY`.
    method: Option<String>,
    segments: Vec<Segment>,
    /// The greedy variable's name (`proxy` for `{proxy+}`), always last.
    greedy: Option<String>,
    /// The path as written (`/items/{id}`): the event's `resource`.
    text: String,
}

impl RouteKey {
    /// Parses a route key; Err carries the reason, for AWS's BadRequestException.
    pub fn parse(key: &str) -> Result<RouteKey, String> {
        if key == "$default" {
            return Ok(RouteKey { path: None });
        }
        let (method, path) =
            key.split_once(' ').ok_or_else(|| format!("Invalid route key: {key}. Route keys look like 'GET /pets' or '$default'"))?;
        if !METHODS.contains(&method) {
            return Err(format!("Invalid HTTP method {method} in route key {key}"));
        }
        if !path.starts_with('/') || path.contains(' ') {
            return Err(format!("Invalid resource path {path} in route key {key}: it must start with '/'"));
        }
        let parts: Vec<&str> = path[1..].split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::new();
        let mut greedy = None;
        for (i, p) in parts.iter().enumerate() {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(var) if var.ends_with('+') => {
                    if i + 1 != parts.len() {
                        return Err(format!("Invalid route key {key}: a greedy path variable must be the last segment"));
                    }
                    greedy = Some(var.trim_end_matches('+').to_string());
                }
                Some(var) if !var.is_empty() && !var.contains(['{', '}']) => segments.push(Segment::Var(var.to_string())),
                Some(_) => return Err(format!("Invalid path variable in route key {key}")),
                None if p.contains(['{', '}']) => return Err(format!("Invalid path variable in route key {key}")),
                None => segments.push(Segment::Literal(p.to_string())),
            }
        }
        let method = (method != "ANY").then(|| method.to_string());
        Ok(RouteKey { path: Some(KeyPath { method, segments, greedy, text: path.to_string() }) })
    }

    /// Matches a request; Some(path parameters) when it does. `$default` matches everything.
    fn matches(&self, method: &str, segments: &[String]) -> Option<BTreeMap<String, String>> {
        let Some(k) = &self.path else { return Some(BTreeMap::new()) };
        if k.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let fixed = k.segments.len();
        let fits = match k.greedy {
            Some(_) => segments.len() > fixed,
            None => segments.len() == fixed,
        };
        if !fits {
            return None;
        }
        let mut params = BTreeMap::new();
        for (seg, value) in k.segments.iter().zip(segments) {
            match seg {
                Segment::Literal(l) if l == value => {}
                Segment::Literal(_) => return None,
                Segment::Var(name) => {
                    params.insert(name.clone(), value.clone());
                }
            }
        }
        if let Some(name) = &k.greedy {
            params.insert(name.clone(), segments[fixed..].join("/"));
        }
        Some(params)
    }

    /// Smaller is more specific: exact before greedy before `$default`; longer greedy paths
    /// first; literals before variables, place by place; a method before `ANY`.
    fn rank(&self) -> (u8, usize, Vec<u8>, bool) {
        match &self.path {
            None => (2, 0, Vec::new(), true),
            Some(k) => {
                let kinds = k.segments.iter().map(|s| u8::from(matches!(s, Segment::Var(_)))).collect();
                match k.greedy {
                    Some(_) => (1, usize::MAX - k.segments.len(), kinds, k.method.is_none()),
                    None => (0, 0, kinds, k.method.is_none()),
                }
            }
        }
    }

    /// The event's `resource`: the route's path, or `$default`.
    pub fn resource(&self) -> &str {
        self.path.as_ref().map(|k| k.text.as_str()).unwrap_or("$default")
    }
}

/// Splits a request path into decoded segments (a trailing slash is ignored).
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
}

/// Percent-decoding of a path segment (`+` stays `+` in paths).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Compiled {
    key: RouteKey,
    route: Route,
    integration: Option<Integration>,
}

/// The routes an API (or one of its deployments) serves, ready for selection.
pub struct RouteTable {
    routes: Vec<Compiled>,
}

/// The route chosen for a request.
#[derive(Debug)]
pub struct Selected<'a> {
    pub route: &'a Route,
    /// The route's target integration, if it has one that exists.
    pub integration: Option<&'a Integration>,
    pub path_parameters: BTreeMap<String, String>,
    /// `/items/{id}` or `$default`.
    pub resource: &'a str,
}

impl RouteTable {
    pub fn new(routes: &[Route], integrations: &[Integration]) -> RouteTable {
        let mut compiled: Vec<Compiled> = routes
            .iter()
            .filter_map(|r| {
                let key = RouteKey::parse(&r.route_key).ok()?;
                let integration = r
                    .target
                    .as_deref()
                    .and_then(|t| t.strip_prefix("integrations/"))
                    .and_then(|id| integrations.iter().find(|i| i.integration_id == id))
                    .cloned();
                Some(Compiled { key, route: r.clone(), integration })
            })
            .collect();
        compiled.sort_by_key(|c| c.key.rank());
        RouteTable { routes: compiled }
    }

    /// The best route for `method` and `path` (the path below the stage), if any.
    pub fn select(&self, method: &str, path: &str) -> Option<Selected<'_>> {
        let segments = path_segments(path);
        self.routes.iter().find_map(|c| {
            let params = c.key.matches(method, &segments)?;
            Some(Selected { route: &c.route, integration: c.integration.as_ref(), path_parameters: params, resource: c.key.resource() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> RouteTable {
        let routes: Vec<Route> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Route {
                route_id: format!("r{i}"),
                route_key: k.to_string(),
                target: None,
                api_key_required: false,
                authorization_type: "NONE".into(),
                api_gateway_managed: false,
            })
            .collect();
        RouteTable::new(&routes, &[])
    }

    /// The route key chosen and its path parameters, as `k=v` pairs.
    fn check(t: &RouteTable, method: &str, path: &str, expected: Option<(&str, &[(&str, &str)])>) {
        let got = t.select(method, path).map(|s| (s.route.route_key.clone(), s.path_parameters));
        let want =
            expected.map(|(k, ps)| (k.to_string(), ps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeMap<_, _>>()));
        assert_eq!(got, want, "{method} {path}");
    }

    #[test]
    fn exact_beats_greedy_beats_default() {
        let t = table(&["$default", "ANY /{proxy+}", "GET /items/{id}", "GET /items/special", "ANY /items/{id}", "POST /items", "GET /"]);
        check(&t, "GET", "/items/special", Some(("GET /items/special", &[])));
        check(&t, "GET", "/items/42", Some(("GET /items/{id}", &[("id", "42")])));
        check(&t, "DELETE", "/items/42", Some(("ANY /items/{id}", &[("id", "42")])));
        check(&t, "GET", "/items", Some(("ANY /{proxy+}", &[("proxy", "items")])));
        check(&t, "POST", "/items", Some(("POST /items", &[])));
        check(&t, "GET", "/a/b/c", Some(("ANY /{proxy+}", &[("proxy", "a/b/c")])));
        check(&t, "GET", "/", Some(("GET /", &[])));
        check(&t, "POST", "/", Some(("$default", &[])));
    }

    #[test]
    fn greedy_prefers_longer_paths_and_methods() {
        let t = table(&["ANY /{proxy+}", "ANY /api/{proxy+}", "GET /api/{proxy+}"]);
        check(&t, "GET", "/api/x/y", Some(("GET /api/{proxy+}", &[("proxy", "x/y")])));
        check(&t, "PUT", "/api/x", Some(("ANY /api/{proxy+}", &[("proxy", "x")])));
        check(&t, "PUT", "/other", Some(("ANY /{proxy+}", &[("proxy", "other")])));
        // A greedy variable needs at least one segment; without $default nothing matches.
        check(&t, "GET", "/api", Some(("ANY /{proxy+}", &[("proxy", "api")])));
        check(&t, "GET", "/", None);
    }

    #[test]
    fn parameters_are_decoded_and_trailing_slashes_ignored() {
        let t = table(&["GET /users/{name}/files/{file}"]);
        check(&t, "GET", "/users/a%20b/files/x+y/", Some(("GET /users/{name}/files/{file}", &[("name", "a b"), ("file", "x+y")])));
        check(&t, "GET", "/users/a/files", None);
    }

    #[test]
    fn route_keys() {
        for ok in ["$default", "GET /", "ANY /{proxy+}", "GET /items/{id}", "POST /a/b/{c}/{rest+}"] {
            assert!(RouteKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["GET", "FETCH /x", "GET x", "GET /{a+}/b", "GET /{}", "GET /a{b}", "$other"] {
            assert!(RouteKey::parse(bad).is_err(), "{bad}");
        }
    }
}
