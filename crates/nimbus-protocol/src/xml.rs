//! XML as the query and rest-xml protocols lay it out, in both directions, read from the
//! model: element names (`locationName`), wrapped and flattened lists and maps, attributes
//! (`xmlAttribute`), namespaces (`xmlNamespace`), ISO 8601 timestamps.

use base64::Engine;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use serde_json::{Map, Number, Value};

use crate::error::DecodeError;
use crate::model::{Model, ShapeRef, ShapeType, XmlNamespace};

// ---- writing -------------------------------------------------------------------------

/// A small XML writer over quick-xml. Text is escaped by quick-xml, plus `\r` as `&#xD;`
/// (XML parsers would otherwise turn a message body's CR LF into LF).
pub(crate) struct Xml(Writer<Vec<u8>>);

impl Xml {
    pub(crate) fn new() -> Xml {
        Xml(Writer::new(Vec::with_capacity(512)))
    }

    fn write(&mut self, e: Event<'_>) {
        self.0.write_event(e).expect("writing to memory cannot fail");
    }

    /// `<?xml version="1.0"?>`, or with `encoding="UTF-8"` (S3 writes it).
    pub(crate) fn decl(&mut self, utf8: bool) {
        self.write(Event::Decl(BytesDecl::new("1.0", utf8.then_some("UTF-8"), None)));
    }

    pub(crate) fn open(&mut self, name: &str) {
        self.write(Event::Start(BytesStart::new(name)));
    }

    pub(crate) fn open_with(&mut self, name: &str, attributes: &[(String, String)]) {
        let mut start = BytesStart::new(name);
        for (k, v) in attributes {
            start.push_attribute((k.as_str(), v.as_str()));
        }
        self.write(Event::Start(start));
    }

    pub(crate) fn open_ns(&mut self, name: &str, ns: Option<&str>) {
        let attributes: Vec<(String, String)> = ns.map(|ns| ("xmlns".to_string(), ns.to_string())).into_iter().collect();
        self.open_with(name, &attributes);
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.write(Event::End(BytesEnd::new(name)));
    }

    pub(crate) fn empty(&mut self, name: &str) {
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

    pub(crate) fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        self.text(text);
        self.close(name);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

/// The element `name` holding the structure `value` of the shape `r`, with the namespace
/// `ns` declared on it (a document's root).
pub(crate) fn write_root(w: &mut Xml, model: &Model, name: &str, ns: Option<&XmlNamespace>, r: &ShapeRef, value: &Value) {
    let shape = model.shape(r);
    let mut attributes: Vec<(String, String)> = ns.map(|ns| ns.attribute()).map(|(k, v)| (k, v.to_string())).into_iter().collect();
    if shape.kind == ShapeType::Structure {
        attributes.extend(member_attributes(model, r, value));
        w.open_with(name, &attributes);
        write_members(w, model, r, value);
        w.close(name);
    } else {
        w.open_with(name, &attributes);
        w.text(&scalar_text(value));
        w.close(name);
    }
}

/// A structure's members, in the model's order (attributes are written on its element).
pub(crate) fn write_members(w: &mut Xml, model: &Model, r: &ShapeRef, value: &Value) {
    let Value::Object(obj) = value else { return };
    for (name, member) in &model.shape(r).members {
        if member.xml_attribute || member.location.is_some() {
            continue;
        }
        if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
            write_member(w, model, name, member, v);
        }
    }
}

/// The attributes of a structure's element: namespace declarations its shape asks for and
/// the members that are attributes.
fn member_attributes(model: &Model, r: &ShapeRef, value: &Value) -> Vec<(String, String)> {
    let shape = model.shape(r);
    let mut out = Vec::new();
    let attrs: Vec<_> = shape.members.iter().filter(|(_, m)| m.xml_attribute).collect();
    if attrs.is_empty() {
        return out;
    }
    if let Some(ns) = &shape.xml_namespace {
        let (k, v) = ns.attribute();
        out.push((k, v.to_string()));
    }
    if let Value::Object(obj) = value {
        for (name, m) in attrs {
            if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
                out.push((m.location_name.clone().unwrap_or_else(|| name.clone()), scalar_text(v)));
            }
        }
    }
    out
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
            let attributes = member_attributes(model, r, value);
            w.open_with(name, &attributes);
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
        ShapeType::Timestamp => w.leaf(name, &timestamp_text(value, r.timestamp_format.as_deref().or(shape.timestamp_format.as_deref()))),
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

pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A timestamp as text in `format` (`iso8601` by default, `rfc822`/http-date for headers,
/// `unixTimestamp`); outputs hold timestamps as epoch seconds, and a string is written as
/// it is.
pub(crate) fn timestamp_text(v: &Value, format: Option<&str>) -> String {
    let Some(secs) = v.as_f64() else { return scalar_text(v) };
    let millis = (secs * 1000.0).round() as i64;
    let Some(t) = chrono::DateTime::from_timestamp_millis(millis) else { return scalar_text(v) };
    match format {
        Some("rfc822") => t.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        Some("unixTimestamp") => scalar_text(v),
        _ => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

// ---- reading -------------------------------------------------------------------------

/// Deepest element nesting a request may have (AWS's shapes are far shallower).
const MAX_DEPTH: usize = 64;

/// An XML element: its qualified name, attributes, text and children in order.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses a document into its root element. Malformed XML, a document without a root,
/// more than one root, or nesting deeper than [`MAX_DEPTH`] is [`DecodeError::Malformed`].
pub(crate) fn parse(body: &[u8]) -> Result<Element, DecodeError> {
    let bad = |m: String| DecodeError::Malformed(m);
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| bad(format!("malformed XML: {e}")))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(bad("malformed XML: more than one root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("malformed XML: nested too deeply".into()));
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => {
                let e = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| bad("malformed XML: unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| bad(format!("malformed XML: {e}")))?;
                let text = quick_xml::escape::unescape(&text).map_err(|e| bad(format!("malformed XML: {e}")))?;
                match stack.last_mut() {
                    Some(e) => e.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(bad("malformed XML: text outside the root element".into())),
                }
            }
            Event::CData(t) => {
                if let Some(e) = stack.last_mut() {
                    e.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| bad(format!("malformed XML: {e}")))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| bad(format!("malformed XML: {e}")))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| bad(format!("malformed XML: unknown entity &{name};")))?
                            .to_string()
                    }
                };
                if let Some(e) = stack.last_mut() {
                    e.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(bad("malformed XML: document type declarations are not allowed".into())),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(bad("malformed XML: unclosed element".into()));
    }
    root.ok_or_else(|| bad("malformed XML: no root element".into()))
}

fn element(start: &BytesStart<'_>) -> Result<Element, DecodeError> {
    let bad = |m: String| DecodeError::Malformed(format!("malformed XML: {m}"));
    let name = String::from_utf8(start.name().as_ref().to_vec()).map_err(|e| bad(e.to_string()))?;
    let mut attributes = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| bad(e.to_string()))?;
        let key = String::from_utf8(a.key.as_ref().to_vec()).map_err(|e| bad(e.to_string()))?;
        let value = a.unescape_value().map_err(|e| bad(e.to_string()))?.into_owned();
        attributes.push((key, value));
    }
    Ok(Element { name, attributes, children: Vec::new(), text: String::new() })
}

/// The value of the shape `r` that `e` holds, under the model's member names (the root's own
/// name is not checked: AWS's services differ in what they require of it).
pub(crate) fn read(model: &Model, r: &ShapeRef, e: &Element, path: &str) -> Result<Value, DecodeError> {
    let shape = model.shape(r);
    let text = || e.text.trim();
    let wrong = |expected: &'static str| DecodeError::Type { member: path.to_string(), expected, value: e.text.clone() };
    Ok(match shape.kind {
        ShapeType::Structure => {
            let mut obj = Map::new();
            for (name, member) in &shape.members {
                if member.location.is_some() {
                    continue;
                }
                let m_shape = model.shape(member);
                let wire = member.location_name.as_deref().or(m_shape.location_name.as_deref()).unwrap_or(name);
                let sub = join(path, name);
                let value = if member.xml_attribute {
                    e.attribute(wire).map(|v| Value::String(v.to_string()))
                } else if model.flattened(member) && m_shape.kind == ShapeType::List {
                    let item = m_shape.member.as_ref().expect("list shapes have a member");
                    let item_name = item.location_name.as_deref().unwrap_or(wire);
                    let items: Vec<&Element> = e.children.iter().filter(|c| c.name == item_name).collect();
                    if items.is_empty() {
                        None
                    } else {
                        let values = items.iter().enumerate().map(|(i, c)| read(model, item, c, &join(&sub, &(i + 1).to_string())));
                        Some(Value::Array(values.collect::<Result<_, _>>()?))
                    }
                } else if model.flattened(member) && m_shape.kind == ShapeType::Map {
                    let entries: Vec<&Element> = e.children.iter().filter(|c| c.name == wire).collect();
                    (!entries.is_empty()).then(|| read_entries(model, member, &entries, &sub)).transpose()?
                } else {
                    e.child(wire).map(|c| read(model, member, c, &sub)).transpose()?
                };
                if let Some(v) = value {
                    obj.insert(name.clone(), v);
                }
            }
            Value::Object(obj)
        }
        ShapeType::List => {
            let item = shape.member.as_ref().expect("list shapes have a member");
            let values = e.children.iter().enumerate().map(|(i, c)| read(model, item, c, &join(path, &(i + 1).to_string())));
            Value::Array(values.collect::<Result<_, _>>()?)
        }
        ShapeType::Map => {
            let entries: Vec<&Element> = e.children.iter().filter(|c| c.name == "entry").collect();
            read_entries(model, r, &entries, path)?
        }
        ShapeType::String | ShapeType::Timestamp => Value::String(e.text.clone()),
        ShapeType::Blob => {
            let t = text();
            base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| wrong("base64-encoded blob"))?;
            Value::String(t.to_string())
        }
        ShapeType::Integer | ShapeType::Long => Value::Number(text().parse::<i64>().map_err(|_| wrong("integer"))?.into()),
        ShapeType::Double | ShapeType::Float => {
            Value::Number(text().parse::<f64>().ok().and_then(Number::from_f64).ok_or_else(|| wrong("number"))?)
        }
        ShapeType::Boolean => match text() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(wrong("boolean")),
        },
    })
}

fn read_entries(model: &Model, r: &ShapeRef, entries: &[&Element], path: &str) -> Result<Value, DecodeError> {
    let shape = model.shape(r);
    let (k_ref, v_ref) = (shape.key.as_ref().expect("map key"), shape.value.as_ref().expect("map value"));
    let k_name = k_ref.location_name.as_deref().unwrap_or("key");
    let v_name = v_ref.location_name.as_deref().unwrap_or("value");
    let mut obj = Map::new();
    for entry in entries {
        let Some(key) = entry.child(k_name).map(|k| k.text.clone()) else { continue };
        let empty = Element::default();
        let value = read(model, v_ref, entry.child(v_name).unwrap_or(&empty), &join(path, &key))?;
        obj.insert(key, value);
    }
    Ok(Value::Object(obj))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}
