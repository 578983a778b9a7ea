//! Smithy RPC v2 CBOR (CloudWatch's SDKs speak it first): `POST /service/{Service}/operation/{Op}`
//! with a CBOR map in and out. CBOR values are read and written by the model's shapes, into
//! and out of the same JSON form the JSON protocols use (blobs as base64 text, timestamps as
//! epoch seconds), so a service's typed inputs and outputs serve every protocol alike.

use base64::Engine;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value};

use crate::error::DecodeError;
use crate::model::{Model, ShapeRef, ShapeType};

/// CBOR's tag for epoch-based date/time.
const EPOCH_TAG: u64 = 1;

/// The header every RPC v2 CBOR request and response carries.
pub const PROTOCOL_HEADER: (&str, &str) = ("smithy-protocol", "rpc-v2-cbor");

/// `(service, operation)` of an RPC v2 path (`/service/GraniteServiceVersion20100801/operation/PutMetricData`).
pub fn route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/service/")?;
    let (service, rest) = rest.split_once('/')?;
    let operation = rest.strip_prefix("operation/")?;
    (!service.is_empty() && !operation.is_empty() && !operation.contains('/')).then_some((service, operation))
}

/// The one CBOR data item a body holds (an empty body is an empty map).
pub(crate) fn parse(body: &[u8]) -> Result<Cbor, DecodeError> {
    if body.is_empty() {
        return Ok(Cbor::Map(Vec::new()));
    }
    let mut rest = body;
    let value: Cbor = ciborium::de::from_reader(&mut rest).map_err(|e| DecodeError::Malformed(format!("malformed CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed("malformed CBOR: bytes after the data item".into()));
    }
    Ok(value)
}

/// The value of the shape `r` that `v` holds, in JSON form. CBOR nulls are absent members;
/// members the shape does not define are ignored.
pub(crate) fn read(model: &Model, r: &ShapeRef, v: Cbor, path: &str) -> Result<Value, DecodeError> {
    let shape = model.shape(r);
    let wrong = |expected: &'static str, v: &Cbor| DecodeError::Type { member: path.to_string(), expected, value: brief(v) };
    Ok(match (shape.kind, v) {
        (ShapeType::Structure, Cbor::Map(entries)) => {
            let mut obj = Map::new();
            for (k, v) in entries {
                let Cbor::Text(k) = k else { return Err(wrong("structure", &k)) };
                if matches!(v, Cbor::Null) {
                    continue;
                }
                if let Some(member) = shape.member(&k) {
                    let sub = join(path, &k);
                    obj.insert(k, read(model, member, v, &sub)?);
                }
            }
            Value::Object(obj)
        }
        (ShapeType::List, Cbor::Array(items)) => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            let values = items.into_iter().enumerate().map(|(i, item)| read(model, member, item, &join(path, &(i + 1).to_string())));
            Value::Array(values.collect::<Result<_, _>>()?)
        }
        (ShapeType::Map, Cbor::Map(entries)) => {
            let v_ref = shape.value.as_ref().expect("map shapes have a value");
            let mut obj = Map::new();
            for (k, v) in entries {
                let Cbor::Text(k) = k else { return Err(wrong("map", &k)) };
                if matches!(v, Cbor::Null) {
                    continue;
                }
                let sub = join(path, &k);
                obj.insert(k, read(model, v_ref, v, &sub)?);
            }
            Value::Object(obj)
        }
        (ShapeType::String, Cbor::Text(s)) => Value::String(s),
        (ShapeType::Boolean, Cbor::Bool(b)) => Value::Bool(b),
        (ShapeType::Integer | ShapeType::Long, Cbor::Integer(i)) => {
            let n = i64::try_from(i128::from(i)).map_err(|_| wrong("integer", &Cbor::Integer(i)))?;
            Value::Number(n.into())
        }
        (ShapeType::Double | ShapeType::Float, v) => Value::Number(finite(&v).ok_or_else(|| wrong("number", &v))?),
        (ShapeType::Blob, Cbor::Bytes(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        (ShapeType::Timestamp, Cbor::Tag(EPOCH_TAG, inner)) => Value::Number(finite(&inner).ok_or_else(|| wrong("timestamp", &inner))?),
        (ShapeType::Timestamp, v @ (Cbor::Integer(_) | Cbor::Float(_))) => Value::Number(finite(&v).ok_or_else(|| wrong("timestamp", &v))?),
        (kind, v) => return Err(wrong(kind_name(kind), &v)),
    })
}

/// A CBOR number as a JSON number (NaN and infinities have no JSON form and no use in the
/// services we serve).
fn finite(v: &Cbor) -> Option<Number> {
    match v {
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i).ok().map(Number::from).or_else(|| Number::from_f64(i as f64))
        }
        Cbor::Float(f) => Number::from_f64(*f),
        _ => None,
    }
}

fn kind_name(kind: ShapeType) -> &'static str {
    match kind {
        ShapeType::Structure => "structure",
        ShapeType::List => "list",
        ShapeType::Map => "map",
        ShapeType::String => "string",
        ShapeType::Integer | ShapeType::Long => "integer",
        ShapeType::Boolean => "boolean",
        ShapeType::Blob => "blob",
        ShapeType::Timestamp => "timestamp",
        ShapeType::Double | ShapeType::Float => "number",
    }
}

/// A value as an error message shows it.
fn brief(v: &Cbor) -> String {
    match v {
        Cbor::Text(s) => s.clone(),
        Cbor::Integer(i) => i128::from(*i).to_string(),
        Cbor::Float(f) => f.to_string(),
        Cbor::Bool(b) => b.to_string(),
        Cbor::Null => "null".into(),
        Cbor::Bytes(_) => "a byte string".into(),
        Cbor::Array(_) => "an array".into(),
        Cbor::Map(_) => "a map".into(),
        Cbor::Tag(t, _) => format!("a value tagged {t}"),
        _ => "an unknown value".into(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The JSON-form value of the shape `r` as CBOR: blobs as byte strings, timestamps tagged
/// epoch seconds, nulls left out.
pub(crate) fn write(model: &Model, r: &ShapeRef, v: &Value) -> Cbor {
    let shape = model.shape(r);
    match (shape.kind, v) {
        (ShapeType::Structure, Value::Object(obj)) => Cbor::Map(
            shape
                .members
                .iter()
                .filter_map(|(name, m)| obj.get(name).filter(|v| !v.is_null()).map(|v| (Cbor::Text(name.clone()), write(model, m, v))))
                .collect(),
        ),
        (ShapeType::List, Value::Array(items)) => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            Cbor::Array(items.iter().map(|i| write(model, member, i)).collect())
        }
        (ShapeType::Map, Value::Object(obj)) => {
            let v_ref = shape.value.as_ref().expect("map shapes have a value");
            Cbor::Map(obj.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (Cbor::Text(k.clone()), write(model, v_ref, v))).collect())
        }
        (ShapeType::Blob, Value::String(s)) => {
            Cbor::Bytes(base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_else(|_| s.as_bytes().to_vec()))
        }
        (ShapeType::Timestamp, v) => Cbor::Tag(EPOCH_TAG, Box::new(number(v))),
        (ShapeType::Double | ShapeType::Float, Value::Number(n)) => Cbor::Float(n.as_f64().unwrap_or_default()),
        (_, v) => plain(v),
    }
}

fn number(v: &Value) -> Cbor {
    match v {
        Value::Number(n) if n.is_i64() => Cbor::Integer(n.as_i64().unwrap_or_default().into()),
        Value::Number(n) => Cbor::Float(n.as_f64().unwrap_or_default()),
        other => plain(other),
    }
}

/// A JSON value as CBOR without a shape to say more.
fn plain(v: &Value) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Integer(i.into()),
            (None, Some(u)) => Cbor::Integer(u.into()),
            _ => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(plain).collect()),
        Value::Object(obj) => Cbor::Map(obj.iter().map(|(k, v)| (Cbor::Text(k.clone()), plain(v))).collect()),
    }
}

/// Serializes a CBOR value.
pub(crate) fn to_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    ciborium::ser::into_writer(v, &mut out).expect("writing CBOR to memory cannot fail");
    out
}
