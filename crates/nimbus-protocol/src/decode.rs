//! Request decoders: a JSON body (awsJson 1.0/1.1), a CBOR body (RPC v2) or query parameters (awsQuery, ec2) read
//! against the operation's input shape, checked (types, required members) and handed on as
//! an [`Input`] that only deserializes into the service's typed input.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::error::DecodeError;
use crate::model::{Model, ShapeRef, ShapeType};

/// A request's input, decoded and checked against its shape. Opaque: the only thing to do
/// with it is [`Input::parse`] it into the operation's input type.
#[derive(Debug)]
pub struct Input {
    value: Value,
    /// A REST operation's blob payload (Invoke's event), kept raw rather than in the JSON.
    payload: Option<Bytes>,
}

impl Input {
    pub(crate) fn new(value: Value, payload: Option<Bytes>) -> Input {
        Input { value, payload }
    }

    /// The typed input. Fails only when the service's type and the model disagree.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, DecodeError> {
        serde_json::from_value(self.value).map_err(|e| DecodeError::Shape(e.to_string()))
    }

    /// The typed input and the raw payload (empty when the operation has none).
    pub fn parse_with_payload<T: DeserializeOwned>(self) -> Result<(T, Bytes), DecodeError> {
        let payload = self.payload.unwrap_or_default();
        Ok((serde_json::from_value(self.value).map_err(|e| DecodeError::Shape(e.to_string()))?, payload))
    }
}

fn input_ref<'m>(model: &'m Model, operation: &str) -> Option<&'m ShapeRef> {
    model.operation(operation).and_then(|o| o.input.as_ref())
}

/// Decodes an awsJson body. An empty body is an empty input.
pub fn json(model: &Model, operation: &str, body: &[u8]) -> Result<Input, DecodeError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))?
    };
    if !value.is_object() {
        return Err(DecodeError::Malformed("the request body must be a JSON object".into()));
    }
    if let Some(r) = input_ref(model, operation) {
        check(model, r, &value, "")?;
    }
    Ok(Input::new(value, None))
}

/// Checks `value` against the shape `r` refers to: types everywhere first (AWS reads the
/// whole document before it validates it), then required members present. Unknown members
/// are ignored, as AWS ignores them.
pub fn check(model: &Model, r: &ShapeRef, value: &Value, path: &str) -> Result<(), DecodeError> {
    walk(model, r, value, path, Pass::Types)?;
    walk(model, r, value, path, Pass::Required)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Types,
    Required,
}

fn walk(model: &Model, r: &ShapeRef, value: &Value, path: &str, pass: Pass) -> Result<(), DecodeError> {
    let shape = model.shape(r);
    let wrong = |expected: &'static str| DecodeError::Type { member: path.to_string(), expected, value: brief(value) };
    match shape.kind {
        ShapeType::Structure => {
            let obj = value.as_object().ok_or_else(|| wrong("structure"))?;
            if pass == Pass::Required {
                for name in &shape.required {
                    if obj.get(name).is_none_or(Value::is_null) {
                        return Err(DecodeError::Missing { member: join(path, name) });
                    }
                }
            }
            for (name, member) in &shape.members {
                if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
                    walk(model, member, v, &join(path, name), pass)?;
                }
            }
        }
        ShapeType::List => {
            let items = value.as_array().ok_or_else(|| wrong("list"))?;
            let member = shape.member.as_ref().expect("list shapes have a member");
            for (i, item) in items.iter().enumerate() {
                walk(model, member, item, &join(path, &(i + 1).to_string()), pass)?;
            }
        }
        ShapeType::Map => {
            let obj = value.as_object().ok_or_else(|| wrong("map"))?;
            let v_ref = shape.value.as_ref().expect("map shapes have a value");
            for (k, v) in obj {
                walk(model, v_ref, v, &join(path, k), pass)?;
            }
        }
        ShapeType::String => {
            value.as_str().ok_or_else(|| wrong("string"))?;
        }
        ShapeType::Integer | ShapeType::Long => {
            if !(value.is_i64() || value.is_u64()) {
                return Err(wrong("integer"));
            }
        }
        ShapeType::Double | ShapeType::Float => {
            if !value.is_number() {
                return Err(wrong("number"));
            }
        }
        ShapeType::Boolean => {
            value.as_bool().ok_or_else(|| wrong("boolean"))?;
        }
        ShapeType::Blob => {
            value.as_str().ok_or_else(|| wrong("base64-encoded blob"))?;
        }
        ShapeType::Timestamp => {
            if !(value.is_number() || value.is_string()) {
                return Err(wrong("timestamp"));
            }
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A value as it appears in an error message: strings unquoted, others as JSON.
fn brief(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Decodes a Smithy RPC v2 CBOR body (an empty body is an empty input).
pub fn cbor(model: &Model, operation: &str, body: &[u8]) -> Result<Input, DecodeError> {
    let item = crate::cbor::parse(body)?;
    if !matches!(item, ciborium::Value::Map(_)) {
        return Err(DecodeError::Malformed("the request body must be a CBOR map".into()));
    }
    let value = match input_ref(model, operation) {
        Some(r) => {
            let v = crate::cbor::read(model, r, item, "")?;
            check(model, r, &v, "")?;
            v
        }
        None => Value::Object(Map::new()),
    };
    Ok(Input::new(value, None))
}

// ---- query ---------------------------------------------------------------------------

/// `a.1.b=c` parameters as a tree.
#[derive(Debug, Default)]
struct Tree {
    value: Option<String>,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn insert(&mut self, path: &[&str], value: String) {
        match path.split_first() {
            None => self.value = Some(value),
            Some((head, rest)) => self.children.entry((*head).to_string()).or_default().insert(rest, value),
        }
    }

    /// Numbered children (`1`, `2`, …) in index order.
    fn numbered(&self) -> Vec<&Tree> {
        let mut v: Vec<(u64, &Tree)> = self.children.iter().filter_map(|(k, t)| k.parse::<u64>().ok().map(|i| (i, t))).collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, t)| t).collect()
    }
}

/// How a query-style protocol names members and lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// awsQuery: members by `locationName` (or the member name), lists wrapped
    /// (`Name.member.N`) or flattened (`Name.N`).
    Query,
    /// ec2: members by `queryName`, else the capitalized `locationName`, else the member
    /// name (botocore's `EC2Serializer`); every list flattened (`Name.N`).
    Ec2,
}

/// Decodes awsQuery parameters (`Action` and `Version` are the caller's to strip or not:
/// members the shape does not name are ignored).
pub fn query(model: &Model, operation: &str, params: &[(String, String)]) -> Result<Input, DecodeError> {
    query_dialect(model, operation, params, Dialect::Query)
}

/// Decodes the ec2 protocol's parameters (EC2's query dialect).
pub fn ec2(model: &Model, operation: &str, params: &[(String, String)]) -> Result<Input, DecodeError> {
    query_dialect(model, operation, params, Dialect::Ec2)
}

fn query_dialect(model: &Model, operation: &str, params: &[(String, String)], dialect: Dialect) -> Result<Input, DecodeError> {
    let mut root = Tree::default();
    for (k, v) in params {
        let path: Vec<&str> = k.split('.').collect();
        root.insert(&path, v.clone());
    }
    let value = match input_ref(model, operation) {
        Some(r) => {
            let v = from_tree(model, r, &root, "", dialect)?;
            check(model, r, &v, "")?;
            v
        }
        None => Value::Object(Map::new()),
    };
    Ok(Input::new(value, None))
}

/// A member's name in an ec2 request.
fn ec2_name(model: &Model, name: &str, r: &ShapeRef) -> String {
    if let Some(q) = &r.query_name {
        return q.clone();
    }
    match r.location_name.as_deref().or(model.shape(r).location_name.as_deref()) {
        Some(l) => {
            let mut c = l.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        }
        None => name.to_string(),
    }
}

/// The tree node holding a structure member: under its wire name (the reference's or the
/// shape's `locationName`), or for a flattened list whose items are renamed, under the
/// items' name; the model's member name is accepted too.
fn member_node<'t>(model: &Model, tree: &'t Tree, name: &str, r: &ShapeRef) -> Option<&'t Tree> {
    let shape = model.shape(r);
    let mut candidates: Vec<&str> = Vec::with_capacity(3);
    if shape.kind == ShapeType::List && model.flattened(r) {
        if let Some(n) = shape.member.as_ref().and_then(|m| m.location_name.as_deref()) {
            candidates.push(n);
        }
    }
    candidates.extend(r.location_name.as_deref().or(shape.location_name.as_deref()));
    candidates.push(name);
    candidates.into_iter().find_map(|c| tree.children.get(c))
}

fn from_tree(model: &Model, r: &ShapeRef, node: &Tree, path: &str, dialect: Dialect) -> Result<Value, DecodeError> {
    let shape = model.shape(r);
    let scalar = |expected: &'static str| -> Result<&str, DecodeError> {
        node.value.as_deref().ok_or_else(|| DecodeError::Type { member: path.to_string(), expected, value: String::new() })
    };
    Ok(match shape.kind {
        ShapeType::Structure => {
            let mut obj = Map::new();
            for (name, member) in &shape.members {
                let child = match dialect {
                    Dialect::Query => member_node(model, node, name, member),
                    Dialect::Ec2 => node.children.get(&ec2_name(model, name, member)),
                };
                if let Some(child) = child {
                    obj.insert(name.clone(), from_tree(model, member, child, &join(path, name), dialect)?);
                }
            }
            Value::Object(obj)
        }
        ShapeType::List => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            // Items as `Name.N` (flattened) or `Name.member.N` (or the member's own name);
            // either form is accepted.
            let inner = member.location_name.as_deref().unwrap_or("member");
            let base = match dialect {
                Dialect::Query => node.children.get(inner).or_else(|| node.children.get("member")).unwrap_or(node),
                Dialect::Ec2 => node,
            };
            let mut items = Vec::new();
            for (i, item) in base.numbered().into_iter().enumerate() {
                items.push(from_tree(model, member, item, &join(path, &(i + 1).to_string()), dialect)?);
            }
            Value::Array(items)
        }
        ShapeType::Map => {
            let (k_ref, v_ref) = (shape.key.as_ref().expect("map key"), shape.value.as_ref().expect("map value"));
            let k_name = k_ref.location_name.as_deref().unwrap_or("key");
            let v_name = v_ref.location_name.as_deref().unwrap_or("value");
            let base = node.children.get("entry").unwrap_or(node);
            let mut obj = Map::new();
            for entry in base.numbered() {
                let Some(key) = entry.children.get(k_name).and_then(|k| k.value.clone()) else { continue };
                // An entry without a value reads as an empty one (a structure then lacks its
                // required members).
                let empty = Tree::default();
                let value = from_tree(model, v_ref, entry.children.get(v_name).unwrap_or(&empty), &join(path, &key), dialect)?;
                obj.insert(key, value);
            }
            Value::Object(obj)
        }
        ShapeType::String | ShapeType::Blob | ShapeType::Timestamp => Value::String(node.value.clone().unwrap_or_default()),
        ShapeType::Integer | ShapeType::Long => {
            let text = scalar("integer")?;
            let n: i64 = text.trim().parse().map_err(|_| DecodeError::Type {
                member: path.to_string(),
                expected: "integer",
                value: text.to_string(),
            })?;
            Value::Number(n.into())
        }
        ShapeType::Double | ShapeType::Float => {
            let text = scalar("number")?;
            let n = text.trim().parse::<f64>().ok().and_then(Number::from_f64).ok_or_else(|| DecodeError::Type {
                member: path.to_string(),
                expected: "number",
                value: text.to_string(),
            })?;
            Value::Number(n)
        }
        ShapeType::Boolean => {
            let text = scalar("boolean")?;
            match text.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(DecodeError::Type { member: path.to_string(), expected: "boolean", value: text.to_string() }),
            }
        }
    })
}
