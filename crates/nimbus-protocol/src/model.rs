//! AWS service models (botocore's `service-2.json`, vendored in `models/` by
//! `scripts/vendor-models`): the one description of each operation's wire shape that the
//! decoders and encoders read, so a service's names, types and XML layout are never guessed.

use std::collections::HashMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// One service's model: its protocol metadata, operations and shapes.
#[derive(Debug, Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    /// The protocol botocore speaks to the service (`json`, `query`, `rest-json`, …).
    pub protocol: String,
    /// Every protocol the service accepts.
    #[serde(default)]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<String>,
    /// Present when the JSON protocol also carries the query protocol's error codes
    /// (`x-amzn-query-error`).
    #[serde(default)]
    pub aws_query_compatible: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub name: String,
    pub http: Http,
    #[serde(default)]
    pub input: Option<ShapeRef>,
    #[serde(default)]
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub method: String,
    pub request_uri: String,
    #[serde(default)]
    pub response_code: Option<u16>,
}

/// A reference to a shape, with the traits the reference adds (a member's wire name, where
/// it travels, whether its list is flattened).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    #[serde(default)]
    pub location_name: Option<String>,
    /// The ec2 protocol's request name of a member, where it is not its capitalized
    /// `locationName`.
    #[serde(default)]
    pub query_name: Option<String>,
    /// `header`, `headers`, `uri`, `querystring`, `statusCode` (REST protocols).
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub flattened: Option<bool>,
    /// The query protocol's `<OperationResult>` element.
    #[serde(default)]
    pub result_wrapper: Option<String>,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// rest-xml: the member is an attribute of its structure's element (`xsi:type`).
    #[serde(default)]
    pub xml_attribute: bool,
    /// rest-xml: the namespace the member's element declares.
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
}

/// An XML namespace as the models write it: a bare URI, or a URI with a prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum XmlNamespace {
    Uri(String),
    Prefixed {
        #[serde(default)]
        prefix: Option<String>,
        uri: String,
    },
}

impl XmlNamespace {
    /// The attribute that declares it (`xmlns` or `xmlns:xsi`) and its URI.
    pub fn attribute(&self) -> (String, &str) {
        match self {
            XmlNamespace::Uri(uri) => ("xmlns".to_string(), uri),
            XmlNamespace::Prefixed { prefix: Some(p), uri } => (format!("xmlns:{p}"), uri),
            XmlNamespace::Prefixed { prefix: None, uri } => ("xmlns".to_string(), uri),
        }
    }
}

/// The kind of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Boolean,
    Blob,
    Timestamp,
    Double,
    Float,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: ShapeType,
    /// Structure members, in the model's order (the order of XML elements).
    #[serde(default, deserialize_with = "ordered_members")]
    pub members: Vec<(String, ShapeRef)>,
    #[serde(default)]
    pub required: Vec<String>,
    /// A list's member.
    #[serde(default)]
    pub member: Option<ShapeRef>,
    #[serde(default)]
    pub key: Option<ShapeRef>,
    #[serde(default)]
    pub value: Option<ShapeRef>,
    #[serde(default)]
    pub flattened: Option<bool>,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default, rename = "enum")]
    pub enum_values: Vec<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub exception: bool,
    /// rest protocols: the member that is the whole HTTP body (a blob is sent raw).
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorTrait>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub sender_fault: bool,
}

impl Shape {
    pub fn member(&self, name: &str) -> Option<&ShapeRef> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }
}

impl Model {
    /// Parses a vendored model. Panics on a malformed one: models are compiled in, and a
    /// test loads every one of them.
    pub fn parse(json: &str) -> Model {
        serde_json::from_str(json).expect("vendored service model parses")
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// The shape `r` refers to. Models are closed (a test checks every reference), so a
    /// missing shape is a bug in the vendored file.
    pub fn shape(&self, r: &ShapeRef) -> &Shape {
        self.shape_named(&r.shape)
    }

    pub fn shape_named(&self, name: &str) -> &Shape {
        self.shapes.get(name).unwrap_or_else(|| panic!("model references unknown shape {name}"))
    }

    /// Whether a member's list or map is flattened (on the reference or on the shape).
    pub fn flattened(&self, r: &ShapeRef) -> bool {
        r.flattened.or(self.shape(r).flattened).unwrap_or(false)
    }

    /// Every shape name referenced anywhere that the model does not define.
    pub fn dangling_references(&self) -> Vec<String> {
        let mut refs: Vec<&ShapeRef> = Vec::new();
        for op in self.operations.values() {
            refs.extend(op.input.iter().chain(op.output.iter()).chain(op.errors.iter()));
        }
        for s in self.shapes.values() {
            refs.extend(s.members.iter().map(|(_, r)| r));
            refs.extend(s.member.iter().chain(s.key.iter()).chain(s.value.iter()));
        }
        let mut out: Vec<String> = refs.iter().filter(|r| !self.shapes.contains_key(&r.shape)).map(|r| r.shape.clone()).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Deserializes a JSON object into `(key, value)` pairs in document order.
fn ordered_members<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, ShapeRef)>, D::Error> {
    struct Ordered;
    impl<'de> Visitor<'de> for Ordered {
        type Value = Vec<(String, ShapeRef)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of members")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some((k, v)) = map.next_entry::<String, ShapeRef>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Ordered)
}

impl Model {
    /// A value of the shape `r` refers to with every member set (lists and maps with one
    /// entry, strings from their enum or `"x"`), for tests that walk the model: a typed input
    /// must accept what the model allows. Recursive shapes stop at `depth`.
    pub fn example(&self, r: &ShapeRef, depth: usize) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let shape = self.shape(r);
        match shape.kind {
            ShapeType::Structure => {
                let mut obj = Map::new();
                if depth > 0 {
                    for (name, member) in &shape.members {
                        obj.insert(name.clone(), self.example(member, depth - 1));
                    }
                }
                Value::Object(obj)
            }
            ShapeType::List => match (&shape.member, depth) {
                (Some(m), d) if d > 0 => Value::Array(vec![self.example(m, d - 1)]),
                _ => json!([]),
            },
            ShapeType::Map => match (&shape.value, depth) {
                (Some(v), d) if d > 0 => json!({ "k": self.example(v, d - 1) }),
                _ => json!({}),
            },
            ShapeType::String => Value::String(shape.enum_values.first().cloned().unwrap_or_else(|| "x".into())),
            ShapeType::Integer | ShapeType::Long => json!(shape.min.map_or(1, |m| m.max(1.0) as i64)),
            ShapeType::Double | ShapeType::Float => json!(1.5),
            ShapeType::Boolean => json!(true),
            ShapeType::Blob => json!("eA=="),
            ShapeType::Timestamp => json!(1_700_000_000),
        }
    }
}
