//! The REST protocols' requests: every operation's HTTP binding (method, path template,
//! literal query) read from the model into a route table, and the decoder that gathers an
//! operation's input from its URI labels, query string, headers and body.

use std::cmp::Reverse;

use bytes::Bytes;
use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Number, Value};

use crate::decode::{check, Input};
use crate::error::DecodeError;
use crate::model::{Model, Operation, ShapeRef, ShapeType};

/// A service's operations by HTTP binding, most specific first.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    operation: String,
    method: Method,
    segments: Vec<Segment>,
    /// `?find=LayerVersion` in the request URI: the request must carry it.
    query: Vec<(String, Option<String>)>,
    /// Required members bound to headers: S3's CopyObject is PutObject's binding plus
    /// `x-amz-copy-source`.
    headers: Vec<String>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Label(String),
    /// `{Key+}`: the rest of the path, slashes included.
    Greedy(String),
}

impl Route {
    fn parse(model: &Model, op: &Operation) -> Option<Route> {
        let method = Method::from_bytes(op.http.method.as_bytes()).ok()?;
        let (path, query) = op.http.request_uri.split_once('?').unwrap_or((&op.http.request_uri, ""));
        let segments = split_path(path)
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(label) => match label.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_string()),
                    None => Segment::Label(label.to_string()),
                },
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        let query = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (kv.to_string(), None),
            })
            .collect();
        let headers = match &op.input {
            Some(r) => {
                let shape = model.shape(r);
                shape
                    .members
                    .iter()
                    .filter(|(n, m)| m.location.as_deref() == Some("header") && shape.required.contains(n))
                    .map(|(n, m)| m.location_name.clone().unwrap_or_else(|| n.clone()).to_ascii_lowercase())
                    .collect()
            }
            None => Vec::new(),
        };
        Some(Route { operation: op.name.clone(), method, segments, query, headers })
    }

    fn literals(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
    }

    fn matches(&self, method: &Method, path: &[&str], query: &[(String, String)], headers: &HeaderMap) -> Option<Vec<(String, String)>> {
        if self.method != method || !self.headers.iter().all(|h| headers.contains_key(h.as_str())) {
            return None;
        }
        let literal_query_present =
            self.query.iter().all(|(k, v)| query.iter().any(|(qk, qv)| qk == k && v.as_ref().is_none_or(|v| v == qv)));
        if !literal_query_present {
            return None;
        }
        let mut labels = Vec::new();
        let mut rest = path;
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) => match rest.split_first() {
                    Some((s, tail)) if s == l => rest = tail,
                    _ => return None,
                },
                Segment::Label(name) => match rest.split_first() {
                    Some((s, tail)) if !s.is_empty() => {
                        labels.push((name.clone(), decode_path(s)));
                        rest = tail;
                    }
                    _ => return None,
                },
                Segment::Greedy(name) => {
                    // Greedy labels end the template in every AWS model.
                    if i + 1 != self.segments.len() || rest.is_empty() {
                        return None;
                    }
                    labels.push((name.clone(), rest.iter().map(|s| decode_path(s)).collect::<Vec<_>>().join("/")));
                    rest = &[];
                }
            }
        }
        rest.is_empty().then_some(labels)
    }
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/').filter(|s| !s.is_empty())
}

fn decode_path(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The pairs of a query string, decoded (`+` is a space).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// An operation a request matched, with its URI labels (percent-decoded).
#[derive(Debug)]
pub struct Matched<'r> {
    pub operation: &'r str,
    labels: Vec<(String, String)>,
}

impl<'r> Matched<'r> {
    /// An operation a service placed itself, with its URI labels as they are (S3, whose
    /// keys keep every slash: `a//b/` is not `a/b`).
    pub fn new(operation: &'r str, labels: Vec<(String, String)>) -> Matched<'r> {
        Matched { operation, labels }
    }
}

impl Router {
    pub fn new(model: &Model) -> Router {
        let mut routes: Vec<Route> = model.operations.values().filter_map(|op| Route::parse(model, op)).collect();
        // Most specific first: literal query requirements, then literal segments, then
        // required headers; the name last keeps the order stable.
        routes.sort_by(|a, b| {
            (Reverse(a.query.len()), Reverse(a.literals()), Reverse(a.headers.len()), &a.operation).cmp(&(
                Reverse(b.query.len()),
                Reverse(b.literals()),
                Reverse(b.headers.len()),
                &b.operation,
            ))
        });
        Router { routes }
    }

    /// The operation bound to `method` and `path` (trailing slashes ignored) with `query`,
    /// for services whose bindings never differ by header alone.
    pub fn find(&self, method: &Method, path: &str, query: &[(String, String)]) -> Option<Matched<'_>> {
        self.find_with_headers(method, path, query, &HeaderMap::new())
    }

    /// The operation bound to `method`, `path`, `query` and the required headers present.
    pub fn find_with_headers(&self, method: &Method, path: &str, query: &[(String, String)], headers: &HeaderMap) -> Option<Matched<'_>> {
        let segments: Vec<&str> = split_path(path).collect();
        self.routes
            .iter()
            .find_map(|r| r.matches(method, &segments, query, headers).map(|labels| Matched { operation: &r.operation, labels }))
    }
}

/// One HTTP request as the REST decoders read it.
pub struct HttpRequest<'a> {
    pub headers: &'a HeaderMap,
    /// The decoded query string ([`query_pairs`]).
    pub query: &'a [(String, String)],
    pub body: &'a Bytes,
}

/// Decodes a rest-json request for the operation `matched` names: members bound to the URI,
/// the query string and headers from there, a blob payload member as the raw body (kept out
/// of the JSON: see [`Input::parse_with_payload`]), and the other members from the JSON body.
pub fn rest_json(model: &Model, matched: &Matched<'_>, req: &HttpRequest<'_>) -> Result<Input, DecodeError> {
    rest(model, matched, req, BodyFormat::Json)
}

/// Decodes a rest-xml request: the bindings as [`rest_json`] reads them, and the body as the
/// XML document of the payload member (or of the input's unbound members).
pub fn rest_xml(model: &Model, matched: &Matched<'_>, req: &HttpRequest<'_>) -> Result<Input, DecodeError> {
    rest(model, matched, req, BodyFormat::Xml)
}

#[derive(Clone, Copy)]
enum BodyFormat {
    Json,
    Xml,
}

impl BodyFormat {
    /// The body as the structure of shape `r` (the member at `path` of the input), under
    /// member names (`None` when empty).
    fn read(self, model: &Model, r: &ShapeRef, body: &[u8], path: &str) -> Result<Option<Map<String, Value>>, DecodeError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value = match self {
            BodyFormat::Json => from_wire(model, r, Value::Object(json_object(body)?)),
            BodyFormat::Xml => crate::xml::read(model, r, &crate::xml::parse(body)?, path)?,
        };
        Ok(match value {
            Value::Object(o) => Some(o),
            _ => None,
        })
    }
}

fn rest(model: &Model, matched: &Matched<'_>, req: &HttpRequest<'_>, format: BodyFormat) -> Result<Input, DecodeError> {
    let op = model.operation(matched.operation).expect("routes come from the model");
    let Some(input_ref) = &op.input else { return Ok(Input::new(Value::Object(Map::new()), None)) };
    let shape = model.shape(input_ref);
    let payload_member = shape.payload.as_deref().and_then(|p| shape.member(p).map(|r| (p, r)));
    let mut obj = match payload_member {
        Some(_) => Map::new(),
        None => format.read(model, input_ref, req.body, "")?.unwrap_or_default(),
    };
    let mut raw_payload = None;
    if let Some((name, r)) = payload_member {
        match model.shape(r).kind {
            ShapeType::Blob => raw_payload = Some(req.body.clone()),
            ShapeType::String => {
                obj.insert(name.to_string(), Value::String(String::from_utf8_lossy(req.body).into_owned()));
            }
            _ => {
                if let Some(v) = format.read(model, r, req.body, name)? {
                    obj.insert(name.to_string(), Value::Object(v));
                }
            }
        }
    }
    let bound_query: Vec<&str> = shape
        .members
        .iter()
        .filter(|(_, m)| m.location.as_deref() == Some("querystring"))
        .map(|(n, m)| m.location_name.as_deref().unwrap_or(n))
        .collect();
    for (name, member) in &shape.members {
        let wire = member.location_name.as_deref().unwrap_or(name);
        let kind = model.shape(member).kind;
        let value = match member.location.as_deref() {
            Some("uri") => match matched.labels.iter().find(|(l, _)| l == wire) {
                Some((_, text)) => Some(scalar(model, member, text, wire)?),
                None => None,
            },
            Some("querystring") if kind == ShapeType::Map => {
                let rest: Map<String, Value> = req
                    .query
                    .iter()
                    .filter(|(k, _)| !bound_query.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                (!rest.is_empty()).then_some(Value::Object(rest))
            }
            Some("querystring") => {
                let mut values = req.query.iter().filter(|(k, _)| k == wire).map(|(_, v)| v.as_str());
                match kind {
                    ShapeType::List => {
                        let item = model.shape(member).member.as_ref().expect("list shapes have a member");
                        let items = values.map(|v| scalar(model, item, v, wire)).collect::<Result<Vec<_>, _>>()?;
                        (!items.is_empty()).then_some(Value::Array(items))
                    }
                    _ => values.next().map(|v| scalar(model, member, v, wire)).transpose()?,
                }
            }
            Some("header") => match req.headers.get(wire).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()) {
                Some(text) if kind == ShapeType::List => {
                    let item = model.shape(member).member.as_ref().expect("list shapes have a member");
                    Some(Value::Array(text.split(',').map(|v| scalar(model, item, v.trim(), wire)).collect::<Result<_, _>>()?))
                }
                Some(text) => Some(scalar(model, member, &text, wire)?),
                None => None,
            },
            Some("headers") => {
                let prefix = wire.to_ascii_lowercase();
                let map: Map<String, Value> = req
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let rest = k.as_str().strip_prefix(&prefix)?;
                        Some((rest.to_string(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
                    })
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            _ => continue,
        };
        if let Some(v) = value {
            obj.insert(name.clone(), v);
        }
    }
    // A required blob payload travels beside the JSON; it is present (possibly empty).
    let payload_name = payload_member.filter(|_| raw_payload.is_some()).map(|(n, _)| n.to_string());
    if let Some(n) = &payload_name {
        obj.insert(n.clone(), Value::String(String::new()));
    }
    let mut value = Value::Object(obj);
    check(model, input_ref, &value, "")?;
    if let (Some(n), Value::Object(o)) = (&payload_name, &mut value) {
        o.remove(n);
    }
    Ok(Input::new(value, raw_payload))
}

/// A JSON body as an object (an empty body is an empty object).
fn json_object(body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(DecodeError::Malformed("the request body must be a JSON object".into())),
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

/// A URI label, query value or header as the member's type.
fn scalar(model: &Model, r: &ShapeRef, text: &str, wire: &str) -> Result<Value, DecodeError> {
    let bad = |expected: &'static str| DecodeError::Binding { member: wire.to_string(), expected, value: text.to_string() };
    Ok(match model.shape(r).kind {
        ShapeType::Integer | ShapeType::Long => Value::Number(text.trim().parse::<i64>().map_err(|_| bad("integer"))?.into()),
        ShapeType::Double | ShapeType::Float => {
            Value::Number(text.trim().parse::<f64>().ok().and_then(Number::from_f64).ok_or_else(|| bad("number"))?)
        }
        ShapeType::Boolean => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("boolean")),
        },
        _ => Value::String(text.to_string()),
    })
}

/// A JSON body's members under their model names: the REST protocols key a member by its
/// `locationName` when the model gives one (API Gateway's `name` for `Name`). Members the
/// shape does not define are dropped; members bound elsewhere (URI, headers) are not read
/// from the body.
pub(crate) fn from_wire(model: &Model, r: &ShapeRef, value: Value) -> Value {
    rename(model, r, value, Direction::FromWire)
}

pub(crate) fn to_wire(model: &Model, r: &ShapeRef, value: Value) -> Value {
    rename(model, r, value, Direction::ToWire)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    FromWire,
    ToWire,
}

fn rename(model: &Model, r: &ShapeRef, value: Value, dir: Direction) -> Value {
    let shape = model.shape(r);
    match (shape.kind, value) {
        (ShapeType::Structure, Value::Object(mut obj)) => {
            let mut out = Map::new();
            for (name, member) in &shape.members {
                if member.location.is_some() {
                    continue;
                }
                let wire = member.location_name.as_deref().unwrap_or(name);
                let (from, to) = match dir {
                    Direction::FromWire => (wire, name.as_str()),
                    Direction::ToWire => (name.as_str(), wire),
                };
                if let Some(v) = obj.remove(from) {
                    out.insert(to.to_string(), rename(model, member, v, dir));
                }
            }
            Value::Object(out)
        }
        (ShapeType::List, Value::Array(items)) => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            Value::Array(items.into_iter().map(|i| rename(model, member, i, dir)).collect())
        }
        (ShapeType::Map, Value::Object(obj)) => {
            let v_ref = shape.value.as_ref().expect("map shapes have a value");
            Value::Object(obj.into_iter().map(|(k, v)| (k, rename(model, v_ref, v, dir))).collect())
        }
        (_, v) => v,
    }
}
