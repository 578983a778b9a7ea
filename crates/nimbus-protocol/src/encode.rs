//! Response encoders: a typed output as the protocol's document (JSON as serde writes it;
//! query XML laid out by the output shape: element names, flattened lists and maps, result
//! wrappers), and every [`AwsError`] in the protocol's error shape with AWS's headers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;
use serde_json::Value;

use crate::error::AwsError;
use crate::model::{Model, ShapeRef, ShapeType};
use crate::{Protocol, Service};

/// Writes `output`, the result of `operation`, in `protocol`.
pub fn output<T: Serialize>(service: &Service, protocol: Protocol, operation: &str, output: &T, request_id: &str) -> Response<Bytes> {
    let model = service.model();
    match protocol {
        Protocol::AwsJson1_0 | Protocol::AwsJson1_1 | Protocol::RestJson => {
            let body = serde_json::to_vec(output).expect("typed outputs serialize");
            #[cfg(debug_assertions)]
            debug_check_output(model, operation, &body);
            respond(StatusCode::OK, protocol.content_type(), Bytes::from(body), request_id)
        }
        Protocol::AwsQuery => {
            let value = serde_json::to_value(output).expect("typed outputs serialize");
            let xml = query_document(model, operation, &value, request_id);
            respond(StatusCode::OK, protocol.content_type(), Bytes::from(xml), request_id)
        }
    }
}

/// Writes a rest-json answer. Members the model binds to headers and to the status code go
/// there; `payload` (a blob payload member, Invoke's result) is the body as it is, with its
/// content type; otherwise the remaining members are the JSON body, and an operation
/// without an output shape (or answering 204) has no body. The status is the output's status-code
/// member, else the operation's `responseCode`.
pub fn rest<T: Serialize>(
    service: &Service,
    operation: &str,
    output: &T,
    payload: Option<(Bytes, &'static str)>,
    request_id: &str,
) -> Response<Bytes> {
    let model = service.model();
    let op = model.operation(operation).expect("rest answers are for modelled operations");
    let mut value = serde_json::to_value(output).expect("typed outputs serialize");
    let mut status = op.http.response_code.unwrap_or(200);
    let mut headers: Vec<(String, String)> = Vec::new();
    let body = match (&op.output, &mut value) {
        (Some(out), Value::Object(obj)) => {
            #[cfg(debug_assertions)]
            debug_check_output(model, operation, &serde_json::to_vec(&obj).expect("serializes"));
            let shape = model.shape(out);
            for (name, member) in &shape.members {
                let wire = member.location_name.as_deref().unwrap_or(name);
                match member.location.as_deref() {
                    Some("statusCode") => {
                        if let Some(code) = obj.remove(name).and_then(|v| v.as_u64()) {
                            status = u16::try_from(code).unwrap_or(status);
                        }
                    }
                    Some("header") => {
                        if let Some(v) = obj.remove(name).filter(|v| !v.is_null()) {
                            headers.push((wire.to_string(), scalar_text(&v)));
                        }
                    }
                    Some("headers") => {
                        if let Some(Value::Object(map)) = obj.remove(name) {
                            headers.extend(map.into_iter().map(|(k, v)| (format!("{wire}{k}"), scalar_text(&v))));
                        }
                    }
                    _ => {}
                }
            }
            let json = |v: &Value| Bytes::from(serde_json::to_vec(v).expect("serializes"));
            match (payload, shape.payload.as_deref()) {
                (Some((bytes, content_type)), Some(_)) => Some((bytes, content_type)),
                (_, Some(p)) => {
                    let member = shape.member(p).expect("the payload is a member");
                    obj.remove(p).map(|v| (json(&crate::rest::to_wire(model, member, v)), "application/json"))
                }
                (_, None) => Some((json(&crate::rest::to_wire(model, out, Value::Object(std::mem::take(obj)))), "application/json")),
            }
        }
        _ => None,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    // 204 No Content has no body, whatever members are left.
    let body = body.filter(|_| status != StatusCode::NO_CONTENT);
    let mut r = match body {
        Some((bytes, content_type)) => respond(status, content_type, bytes, request_id),
        None => {
            let mut r = Response::new(Bytes::new());
            *r.status_mut() = status;
            if let Ok(h) = HeaderValue::from_str(request_id) {
                r.headers_mut().insert("x-amzn-requestid", h);
            }
            r
        }
    };
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// Writes a rest-json answer from an output kept in its wire form (a service whose records
/// are stored exactly as the API returns them, in `locationName`s): read back under the
/// model's member names, then written as [`rest`] writes any output.
pub fn rest_from_wire<T: Serialize>(service: &Service, operation: &str, wire: &T, request_id: &str) -> Response<Bytes> {
    let model = service.model();
    let value = serde_json::to_value(wire).expect("typed outputs serialize");
    let value = match model.operation(operation).and_then(|o| o.output.as_ref()) {
        Some(out) => crate::rest::from_wire(model, out, value),
        None => value,
    };
    rest(service, operation, &value, None, request_id)
}

/// The typed output of an operation that answers without members.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// Writes an operation's empty answer (operations without an output shape).
pub fn empty(service: &Service, protocol: Protocol, operation: &str, request_id: &str) -> Response<Bytes> {
    output(service, protocol, operation, &Empty {}, request_id)
}

/// Operations whose answer AWS sends as `{}` although the model marks members required
/// (Lambda's GetFunctionCodeSigningConfig for a function without a config, as recorded).
#[cfg(debug_assertions)]
const AWS_ANSWERS_EMPTY: &[&str] = &["GetFunctionCodeSigningConfig"];

/// Checks (in debug builds, which the end-to-end suite runs) that a JSON answer matches the
/// model's output shape: a member we name wrongly or type wrongly fails loudly.
#[cfg(debug_assertions)]
fn debug_check_output(model: &Model, operation: &str, body: &[u8]) {
    let Some(out) = model.operation(operation).and_then(|o| o.output.as_ref()) else { return };
    let value: Value = serde_json::from_slice(body).expect("just written");
    if value.as_object().is_some_and(|m| m.is_empty()) && AWS_ANSWERS_EMPTY.contains(&operation) {
        return;
    }
    if let Err(e) = crate::decode::check(model, out, &value, "") {
        panic!("{operation} output does not match the model: {e}");
    }
    if let Some(unknown) = unknown_member(model, out, &value, "") {
        panic!("{operation} output has a member the model does not define: {unknown}");
    }
}

/// The first member of `value` that the shape does not define.
#[cfg(debug_assertions)]
fn unknown_member(model: &Model, r: &ShapeRef, value: &Value, path: &str) -> Option<String> {
    let shape = model.shape(r);
    match (shape.kind, value) {
        (ShapeType::Structure, Value::Object(obj)) => obj.iter().find_map(|(k, v)| match shape.member(k) {
            None => Some(format!("{path}.{k}")),
            Some(m) => unknown_member(model, m, v, &format!("{path}.{k}")),
        }),
        (ShapeType::List, Value::Array(items)) => {
            items.iter().find_map(|i| unknown_member(model, shape.member.as_ref()?, i, &format!("{path}[]")))
        }
        (ShapeType::Map, Value::Object(obj)) => obj.values().find_map(|v| unknown_member(model, shape.value.as_ref()?, v, path)),
        _ => None,
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes, request_id: &str) -> Response<Bytes> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(h) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", h);
    }
    r
}

/// Writes `error` in `protocol`'s error shape.
pub fn error(service: &Service, protocol: Protocol, error: &dyn AwsError, request_id: &str) -> Response<Bytes> {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let fault = if error.sender_fault() { "Sender" } else { "Receiver" };
    let message = error.message();
    match protocol {
        Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
            #[derive(Serialize)]
            struct JsonError<'a> {
                #[serde(rename = "__type")]
                kind: String,
                message: &'a str,
            }
            let kind = format!("{}{}", service.json_type_prefix, error.code());
            let body = serde_json::to_vec(&JsonError { kind, message: &message }).expect("serializes");
            let mut r = respond(status, protocol.content_type(), Bytes::from(body), request_id);
            if service.model().metadata.aws_query_compatible.is_some() {
                if let Ok(h) = HeaderValue::from_str(&format!("{};{fault}", error.query_code())) {
                    r.headers_mut().insert("x-amzn-query-error", h);
                }
            }
            r
        }
        Protocol::RestJson => {
            /// The message member under the name the model's error shape gives it (Lambda's
            /// ResourceNotFoundException says `Message`, most errors `message`).
            #[derive(Serialize)]
            struct RestJsonError<'a> {
                #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
                fault: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                message: Option<&'a str>,
                #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
                capital_message: Option<&'a str>,
                #[serde(rename = "Reason", skip_serializing_if = "Option::is_none")]
                reason: Option<&'a str>,
            }
            let capital = service.model().shapes.get(error.code()).is_some_and(|shape| {
                shape
                    .members
                    .iter()
                    .any(|(name, m)| name.eq_ignore_ascii_case("message") && m.location_name.as_deref().unwrap_or(name) == "Message")
            });
            let (message, capital_message) = if capital { (None, Some(message.as_str())) } else { (Some(message.as_str()), None) };
            let fault = (service.rest_error_fault && error.typed()).then_some(if error.sender_fault() { "User" } else { "Service" });
            let reason = if service.rest_error_fault { error.reason() } else { None };
            let body = serde_json::to_vec(&RestJsonError { fault, message, capital_message, reason }).expect("serializes");
            let mut r = respond(status, protocol.content_type(), Bytes::from(body), request_id);
            if let Ok(h) = HeaderValue::from_str(error.code()) {
                r.headers_mut().insert("x-amzn-errortype", h);
            }
            r
        }
        Protocol::AwsQuery => {
            let mut w = Xml::new();
            w.decl();
            w.open_ns("ErrorResponse", service.model().metadata.xml_namespace.as_deref());
            w.open("Error");
            w.leaf("Type", fault);
            w.leaf("Code", error.query_code());
            w.leaf("Message", &message);
            if service.query_error_detail {
                w.empty("Detail");
            }
            w.close("Error");
            w.leaf("RequestId", request_id);
            w.close("ErrorResponse");
            respond(status, protocol.content_type(), Bytes::from(w.finish()), request_id)
        }
    }
}

// ---- query XML -----------------------------------------------------------------------

/// A small XML writer over quick-xml. Text is escaped by quick-xml, plus `\r` as `&#xD;`
/// (XML parsers would otherwise turn a message body's CR LF into LF).
struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn new() -> Xml {
        Xml(Writer::new(Vec::with_capacity(512)))
    }

    fn write(&mut self, e: Event<'_>) {
        self.0.write_event(e).expect("writing to memory cannot fail");
    }

    fn decl(&mut self) {
        self.write(Event::Decl(BytesDecl::new("1.0", None, None)));
    }

    fn open(&mut self, name: &str) {
        self.write(Event::Start(BytesStart::new(name)));
    }

    fn open_ns(&mut self, name: &str, ns: Option<&str>) {
        let mut start = BytesStart::new(name);
        if let Some(ns) = ns {
            start.push_attribute(("xmlns", ns));
        }
        self.write(Event::Start(start));
    }

    fn close(&mut self, name: &str) {
        self.write(Event::End(BytesEnd::new(name)));
    }

    fn empty(&mut self, name: &str) {
        self.write(Event::Empty(BytesStart::new(name)));
    }

    fn text(&mut self, s: &str) {
        let escaped = quick_xml::escape::escape(s);
        if escaped.contains('\r') {
            let with_cr = escaped.replace('\r', "&#xD;");
            self.write(Event::Text(BytesText::from_escaped(with_cr)));
        } else {
            self.write(Event::Text(BytesText::from_escaped(escaped)));
        }
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        self.text(text);
        self.close(name);
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

/// `<{Op}Response xmlns><{Op}Result>…</{Op}Result><ResponseMetadata>…</…></{Op}Response>`.
pub(crate) fn query_document(model: &Model, operation: &str, value: &Value, request_id: &str) -> Vec<u8> {
    let mut w = Xml::new();
    w.decl();
    let response = format!("{operation}Response");
    w.open_ns(&response, model.metadata.xml_namespace.as_deref());
    if let Some(out) = model.operation(operation).and_then(|o| o.output.as_ref()) {
        let wrapper = out.result_wrapper.clone().unwrap_or_else(|| format!("{operation}Result"));
        w.open(&wrapper);
        write_members(&mut w, model, out, value);
        w.close(&wrapper);
    }
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&response);
    w.finish()
}

/// A structure's members, in the model's order.
fn write_members(w: &mut Xml, model: &Model, r: &ShapeRef, value: &Value) {
    let Value::Object(obj) = value else { return };
    for (name, member) in &model.shape(r).members {
        if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
            write_member(w, model, name, member, v);
        }
    }
}

/// One member named `name` (its wire name comes from the model).
fn write_member(w: &mut Xml, model: &Model, name: &str, r: &ShapeRef, value: &Value) {
    let shape = model.shape(r);
    let elem = r.location_name.as_deref().or(shape.location_name.as_deref()).unwrap_or(name);
    match shape.kind {
        ShapeType::List if model.flattened(r) => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            let item_name = member.location_name.as_deref().unwrap_or(elem);
            for item in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                write_value(w, model, item_name, member, item);
            }
        }
        ShapeType::Map if model.flattened(r) => write_entries(w, model, r, elem, value),
        _ => write_value(w, model, elem, r, value),
    }
}

/// A value as the element `name` (collections in their wrapped form).
fn write_value(w: &mut Xml, model: &Model, name: &str, r: &ShapeRef, value: &Value) {
    let shape = model.shape(r);
    match shape.kind {
        ShapeType::Structure => {
            w.open(name);
            write_members(w, model, r, value);
            w.close(name);
        }
        ShapeType::List => {
            let member = shape.member.as_ref().expect("list shapes have a member");
            let item_name = member.location_name.as_deref().unwrap_or("member");
            w.open(name);
            for item in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                write_value(w, model, item_name, member, item);
            }
            w.close(name);
        }
        ShapeType::Map => {
            w.open(name);
            write_entries(w, model, r, "entry", value);
            w.close(name);
        }
        ShapeType::Timestamp => w.leaf(name, &timestamp_text(value)),
        _ => w.leaf(name, &scalar_text(value)),
    }
}

/// A map's entries, each as `<entry_name><key/><value/></entry_name>` with the model's key
/// and value names.
fn write_entries(w: &mut Xml, model: &Model, r: &ShapeRef, entry_name: &str, value: &Value) {
    let shape = model.shape(r);
    let (k_ref, v_ref) = (shape.key.as_ref().expect("map key"), shape.value.as_ref().expect("map value"));
    let k_name = k_ref.location_name.as_deref().unwrap_or("key");
    let v_name = v_ref.location_name.as_deref().unwrap_or("value");
    let Value::Object(entries) = value else { return };
    for (k, v) in entries {
        w.open(entry_name);
        w.leaf(k_name, k);
        write_value(w, model, v_name, v_ref, v);
        w.close(entry_name);
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Query responses carry timestamps as ISO 8601; outputs hold them as epoch seconds.
fn timestamp_text(v: &Value) -> String {
    match v.as_f64() {
        Some(secs) => {
            let millis = (secs * 1000.0).round() as i64;
            chrono::DateTime::from_timestamp_millis(millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_else(|| scalar_text(v))
        }
        None => scalar_text(v),
    }
}
