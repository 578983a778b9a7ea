//! Response encoders: a typed output as the protocol's document (JSON as serde writes it;
//! query XML laid out by the output shape: element names, flattened lists and maps, result
//! wrappers), and every [`AwsError`] in the protocol's error shape with AWS's headers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::error::AwsError;
use crate::model::{Model, ShapeRef, ShapeType};
use crate::xml::{self, scalar_text, Xml};
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
        Protocol::RestXml => rest_xml(service, operation, output, None, request_id),
        Protocol::Ec2 => {
            let value = serde_json::to_value(output).expect("typed outputs serialize");
            #[cfg(debug_assertions)]
            debug_check_output(model, operation, &serde_json::to_vec(&value).expect("serializes"));
            let xml = ec2_document(service, operation, &value, request_id);
            respond(StatusCode::OK, protocol.content_type(), Bytes::from(xml), request_id)
        }
        Protocol::RpcV2Cbor => {
            let value = serde_json::to_value(output).expect("typed outputs serialize");
            #[cfg(debug_assertions)]
            debug_check_output(model, operation, &serde_json::to_vec(&value).expect("serializes"));
            let body = match model.operation(operation).and_then(|o| o.output.as_ref()) {
                Some(out) => Bytes::from(crate::cbor::to_bytes(&crate::cbor::write(model, out, &value))),
                None => Bytes::new(),
            };
            let mut r = respond(StatusCode::OK, protocol.content_type(), body, request_id);
            r.headers_mut().insert(crate::cbor::PROTOCOL_HEADER.0, HeaderValue::from_static(crate::cbor::PROTOCOL_HEADER.1));
            r
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
    rest_answer(service, operation, output, payload, request_id, Protocol::RestJson)
}

/// Writes a rest-xml answer: bindings as [`rest`] writes them; the body is the payload
/// member's document (its element named by the member), or a document of the remaining
/// members whose root is [`Service::xml_root`], in the service's namespace.
pub fn rest_xml<T: Serialize>(
    service: &Service,
    operation: &str,
    output: &T,
    payload: Option<(Bytes, &'static str)>,
    request_id: &str,
) -> Response<Bytes> {
    rest_answer(service, operation, output, payload, request_id, Protocol::RestXml)
}

fn rest_answer<T: Serialize>(
    service: &Service,
    operation: &str,
    output: &T,
    payload: Option<(Bytes, &'static str)>,
    request_id: &str,
    protocol: Protocol,
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
                            let text = match model.shape(member).kind {
                                ShapeType::Timestamp => xml::timestamp_text(
                                    &v,
                                    Some(
                                        member
                                            .timestamp_format
                                            .as_deref()
                                            .or(model.shape(member).timestamp_format.as_deref())
                                            .unwrap_or("rfc822"),
                                    ),
                                ),
                                ShapeType::List => v
                                    .as_array()
                                    .map(|items| items.iter().map(scalar_text).collect::<Vec<_>>().join(","))
                                    .unwrap_or_default(),
                                _ => scalar_text(&v),
                            };
                            headers.push((wire.to_string(), text));
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
            let document = |r: &ShapeRef, root: Option<&str>, v: Value| -> (Bytes, &'static str) {
                match protocol {
                    Protocol::RestXml => {
                        let mut w = Xml::new();
                        w.decl(true);
                        let member_root = r.location_name.clone().unwrap_or_else(|| r.shape.clone());
                        let service_ns = service.xml_namespace.map(|ns| crate::model::XmlNamespace::Uri(ns.to_string()));
                        let ns = r.xml_namespace.as_ref().or(model.shape(r).xml_namespace.as_ref()).or(service_ns.as_ref());
                        xml::write_root(&mut w, model, root.unwrap_or(&member_root), ns, r, &v);
                        (Bytes::from(w.finish()), "application/xml")
                    }
                    _ => (Bytes::from(serde_json::to_vec(&crate::rest::to_wire(model, r, v)).expect("serializes")), "application/json"),
                }
            };
            match (payload, shape.payload.as_deref()) {
                (Some((bytes, content_type)), Some(_)) => Some((bytes, content_type)),
                (_, Some(p)) => {
                    let member = shape.member(p).expect("the payload is a member");
                    let member = ShapeRef { location_name: member.location_name.clone().or_else(|| Some(p.to_string())), ..member.clone() };
                    obj.remove(p).map(|v| document(&member, None, v))
                }
                // rest-xml: an output whose members all travel in headers has no document
                // (S3's PutObject, UploadPart, CreateBucket answer with an empty body).
                (_, None)
                    if protocol == Protocol::RestXml
                        && shape
                            .members
                            .iter()
                            .all(|(_, m)| matches!(m.location.as_deref(), Some("header" | "headers" | "statusCode"))) =>
                {
                    None
                }
                (_, None) => {
                    let root = service.xml_root(operation);
                    Some(document(out, Some(&root), Value::Object(std::mem::take(obj))))
                }
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
/// S3's `HostId` (its `x-amz-id-2`) for a request id: opaque, stable for the request.
pub fn host_id(request_id: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(format!("nimbus-host/{request_id}").as_bytes()))
}

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
                #[serde(skip_serializing_if = "Option::is_none")]
                message: Option<&'a str>,
                #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
                capital_message: Option<&'a str>,
            }
            let kind = format!("{}{}", service.json_type_prefix, error.code());
            let (message, capital_message) =
                if error.capital_message() { (None, Some(message.as_str())) } else { (Some(message.as_str()), None) };
            let body = serde_json::to_vec(&JsonError { kind, message, capital_message }).expect("serializes");
            let mut r = respond(status, protocol.content_type(), Bytes::from(body), request_id);
            query_compatible(service, error, fault, &mut r);
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
            let capital = error.capital_message()
                || service.model().shapes.get(error.code()).is_some_and(|shape| {
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
            w.decl(false);
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
        Protocol::RestXml if service.xml_error_unwrapped => {
            // S3: `<Error><Code/><Message/>…<RequestId/></Error>`.
            let mut w = Xml::new();
            w.decl(true);
            w.open("Error");
            w.leaf("Code", error.code());
            w.leaf("Message", &message);
            for (k, v) in error.fields() {
                w.leaf(k, &v);
            }
            w.leaf("RequestId", request_id);
            w.leaf("HostId", &host_id(request_id));
            w.close("Error");
            let mut r = respond(status, protocol.content_type(), Bytes::from(w.finish()), request_id);
            if let Ok(h) = HeaderValue::from_str(request_id) {
                r.headers_mut().insert("x-amz-request-id", h);
            }
            r
        }
        Protocol::RestXml => {
            let mut w = Xml::new();
            w.decl(false);
            w.open_ns("ErrorResponse", service.xml_namespace);
            w.open("Error");
            w.leaf("Type", fault);
            w.leaf("Code", error.code());
            w.leaf("Message", &message);
            for (k, v) in error.fields() {
                w.leaf(k, &v);
            }
            w.close("Error");
            w.leaf("RequestId", request_id);
            w.close("ErrorResponse");
            respond(status, protocol.content_type(), Bytes::from(w.finish()), request_id)
        }
        Protocol::Ec2 => {
            // `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
            let mut w = Xml::new();
            w.decl(true);
            w.open("Response");
            w.open("Errors");
            w.open("Error");
            w.leaf("Code", error.code());
            w.leaf("Message", &message);
            w.close("Error");
            w.close("Errors");
            w.leaf("RequestID", request_id);
            w.close("Response");
            respond(status, protocol.content_type(), Bytes::from(w.finish()), request_id)
        }
        Protocol::RpcV2Cbor => {
            use ciborium::Value as Cbor;
            let body = Cbor::Map(vec![
                (Cbor::Text("__type".into()), Cbor::Text(format!("{}{}", service.json_type_prefix, error.code()))),
                (Cbor::Text("message".into()), Cbor::Text(message)),
            ]);
            let mut r = respond(status, protocol.content_type(), Bytes::from(crate::cbor::to_bytes(&body)), request_id);
            r.headers_mut().insert(crate::cbor::PROTOCOL_HEADER.0, HeaderValue::from_static(crate::cbor::PROTOCOL_HEADER.1));
            query_compatible(service, error, fault, &mut r);
            r
        }
    }
}

/// A service whose JSON and CBOR errors also carry the query protocol's code says so in
/// `x-amzn-query-error: Code;Sender`.
fn query_compatible(service: &Service, error: &dyn AwsError, fault: &str, r: &mut Response<Bytes>) {
    if service.model().metadata.aws_query_compatible.is_some() {
        if let Ok(h) = HeaderValue::from_str(&format!("{};{fault}", error.query_code())) {
            r.headers_mut().insert("x-amzn-query-error", h);
        }
    }
}

// ---- query XML -----------------------------------------------------------------------

/// `<{Op}Response xmlns><requestId/>…members…</{Op}Response>`: the ec2 protocol's answer,
/// members under their `locationName`s with no result wrapper. An operation without an
/// output shape answers `<return>true</return>`, as EC2 does.
pub(crate) fn ec2_document(service: &Service, operation: &str, value: &Value, request_id: &str) -> Vec<u8> {
    let model = service.model();
    let mut w = Xml::new();
    w.decl(true);
    let response = format!("{operation}Response");
    w.open_ns(&response, service.xml_namespace.or(model.metadata.xml_namespace.as_deref()));
    w.leaf("requestId", request_id);
    match model.operation(operation).and_then(|o| o.output.as_ref()) {
        Some(out) => xml::write_members(&mut w, model, out, value),
        None => w.leaf("return", "true"),
    }
    w.close(&response);
    w.finish()
}

/// `<{Op}Response xmlns><{Op}Result>…</{Op}Result><ResponseMetadata>…</…></{Op}Response>`.
pub(crate) fn query_document(model: &Model, operation: &str, value: &Value, request_id: &str) -> Vec<u8> {
    let mut w = Xml::new();
    w.decl(false);
    let response = format!("{operation}Response");
    w.open_ns(&response, model.metadata.xml_namespace.as_deref());
    if let Some(out) = model.operation(operation).and_then(|o| o.output.as_ref()) {
        let wrapper = out.result_wrapper.clone().unwrap_or_else(|| format!("{operation}Result"));
        w.open(&wrapper);
        xml::write_members(&mut w, model, out, value);
        w.close(&wrapper);
    }
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&response);
    w.finish()
}
