//! DynamoDB's item value model: `AttributeValue` in its JSON wire form, checked on input as
//! DynamoDB checks it, sized as DynamoDB sizes items (the 400 KB limit), and compared as
//! DynamoDB compares values (numbers exactly, strings by UTF-8 bytes, binary by unsigned bytes).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::number::{Number, NumberError};

/// An item: attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

/// The largest item DynamoDB stores, in bytes as [`item_size`] counts them.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// How deep documents may nest (DynamoDB's documented limit: 32 levels).
pub const MAX_NESTING: usize = 32;

/// One value of an item.
#[derive(Clone, Debug)]
pub enum AttributeValue {
    /// A string (UTF-8; may be empty outside keys).
    S(String),
    /// A number.
    N(Number),
    /// Binary data (base64 on the wire).
    B(Vec<u8>),
    /// A string set: non-empty, no duplicates; order as received.
    SS(Vec<String>),
    /// A number set: non-empty, no two numerically equal members.
    NS(Vec<Number>),
    /// A binary set: non-empty, no duplicates.
    BS(Vec<Vec<u8>>),
    /// A map (document).
    M(BTreeMap<String, AttributeValue>),
    /// A list (document).
    L(Vec<AttributeValue>),
    /// `{"NULL": true}`.
    Null,
    /// A boolean.
    Bool(bool),
}

/// A value's type, as DynamoDB names it (`attribute_type`'s argument, error texts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
    /// String set.
    SS,
    /// Number set.
    NS,
    /// Binary set.
    BS,
    /// Map.
    M,
    /// List.
    L,
    /// Null.
    Null,
    /// Boolean.
    Bool,
}

impl ValueType {
    /// The wire name: `S`, `N`, …, `NULL`, `BOOL`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::S => "S",
            ValueType::N => "N",
            ValueType::B => "B",
            ValueType::SS => "SS",
            ValueType::NS => "NS",
            ValueType::BS => "BS",
            ValueType::M => "M",
            ValueType::L => "L",
            ValueType::Null => "NULL",
            ValueType::Bool => "BOOL",
        }
    }

    /// The type named `name` (exact case), if any.
    pub fn from_name(name: &str) -> Option<ValueType> {
        Some(match name {
            "S" => ValueType::S,
            "N" => ValueType::N,
            "B" => ValueType::B,
            "SS" => ValueType::SS,
            "NS" => ValueType::NS,
            "BS" => ValueType::BS,
            "M" => ValueType::M,
            "L" => ValueType::L,
            "NULL" => ValueType::Null,
            "BOOL" => ValueType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a value was refused on input, in DynamoDB's words (a `ValidationException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `{}`. Text: dynalite `validations/index.js` `validateAttributeValue`.
    #[error("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")]
    Empty,
    /// `{"S": "a", "N": "1"}`. Text: dynalite `validateAttributeValue`.
    #[error("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")]
    MoreThanOneType,
    /// A bad `N` or `NS` member.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// `{"NULL": false}`. Text: dynalite `validateAttributeValue`.
    #[error("One or more parameter values were invalid: Null attribute value types must have the value of true")]
    NullFalse,
    /// `{"SS": []}` (the double space is AWS's). Text: dynalite `validateAttributeValue`,
    /// dynoxide `src/validation.rs`.
    #[error("One or more parameter values were invalid: An string set  may not be empty")]
    EmptyStringSet,
    /// `{"NS": []}`. Text: as [`ValueError::EmptyStringSet`].
    #[error("One or more parameter values were invalid: An number set  may not be empty")]
    EmptyNumberSet,
    /// `{"BS": []}`. Text: as [`ValueError::EmptyStringSet`].
    #[error("One or more parameter values were invalid: Binary sets should not be empty")]
    EmptyBinarySet,
    /// A string set with a repeated member; carries the set as sent. Text: dynalite
    /// `validateAttributeValue` (`Input collection [a, a] contains duplicates.`).
    #[error("One or more parameter values were invalid: Input collection [{}] contains duplicates.", .0.join(", "))]
    DuplicateStrings(Vec<String>),
    /// A number set with two equal members. Text: dynalite `validateAttributeValue`.
    #[error("Input collection contains duplicates")]
    DuplicateNumbers,
    /// A binary set with a repeated member; carries the members in base64. Text: dynalite
    /// `validateAttributeValue` (no space before "of": AWS's).
    #[error("One or more parameter values were invalid: Input collection [{}]of type BS contains duplicates.", .0.join(", "))]
    DuplicateBinaries(Vec<String>),
    /// More than 32 levels of maps and lists. Text: dynoxide `tests/nesting_depth.rs`
    /// (measured against AWS by its authors; not verified here).
    #[error("Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit")]
    TooDeep,
}

/// An item over [`MAX_ITEM_SIZE`]. Text: quoted from AWS (PutItem) in the gist "DynamoDB Item
/// Size Limit Checker" (khalidx), and moto `exceptions.py` `ItemSizeTooLarge`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Item size has exceeded the maximum allowed size")]
pub struct ItemTooLarge;

/// An `AttributeValue` exactly as it came off the wire, before DynamoDB's checks: every member
/// optional. [`AttributeValue::try_from`] checks it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WireValue {
    #[serde(rename = "S")]
    s: Option<String>,
    #[serde(rename = "N")]
    n: Option<String>,
    #[serde(rename = "B")]
    b: Option<Base64>,
    #[serde(rename = "SS")]
    ss: Option<Vec<String>>,
    #[serde(rename = "NS")]
    ns: Option<Vec<String>>,
    #[serde(rename = "BS")]
    bs: Option<Vec<Base64>>,
    #[serde(rename = "M")]
    m: Option<BTreeMap<String, WireValue>>,
    #[serde(rename = "L")]
    l: Option<Vec<WireValue>>,
    #[serde(rename = "NULL")]
    null: Option<bool>,
    #[serde(rename = "BOOL")]
    bool: Option<bool>,
}

/// Bytes carried as base64 text.
#[derive(Clone, Debug)]
struct Base64(Vec<u8>);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Base64, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map(Base64).map_err(de::Error::custom)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl TryFrom<WireValue> for AttributeValue {
    type Error = ValueError;
    fn try_from(wire: WireValue) -> Result<AttributeValue, ValueError> {
        from_wire(wire, 0)
    }
}

fn from_wire(wire: WireValue, depth: usize) -> Result<AttributeValue, ValueError> {
    let mut found = Vec::new();
    if let Some(s) = wire.s {
        found.push(AttributeValue::S(s));
    }
    if let Some(n) = wire.n {
        found.push(AttributeValue::N(Number::parse(&n)?));
    }
    if let Some(b) = wire.b {
        found.push(AttributeValue::B(b.0));
    }
    if let Some(ss) = wire.ss {
        if ss.is_empty() {
            return Err(ValueError::EmptyStringSet);
        }
        if has_duplicates(&ss) {
            return Err(ValueError::DuplicateStrings(ss));
        }
        found.push(AttributeValue::SS(ss));
    }
    if let Some(ns) = wire.ns {
        if ns.is_empty() {
            return Err(ValueError::EmptyNumberSet);
        }
        let numbers = ns.iter().map(|n| Number::parse(n)).collect::<Result<Vec<_>, _>>()?;
        if has_duplicates(&numbers) {
            return Err(ValueError::DuplicateNumbers);
        }
        found.push(AttributeValue::NS(numbers));
    }
    if let Some(bs) = wire.bs {
        if bs.is_empty() {
            return Err(ValueError::EmptyBinarySet);
        }
        let members: Vec<Vec<u8>> = bs.into_iter().map(|b| b.0).collect();
        if has_duplicates(&members) {
            return Err(ValueError::DuplicateBinaries(members.iter().map(|b| b64(b)).collect()));
        }
        found.push(AttributeValue::BS(members));
    }
    if let Some(m) = wire.m {
        if depth >= MAX_NESTING {
            return Err(ValueError::TooDeep);
        }
        let mut map = BTreeMap::new();
        for (name, value) in m {
            map.insert(name, from_wire(value, depth + 1)?);
        }
        found.push(AttributeValue::M(map));
    }
    if let Some(l) = wire.l {
        if depth >= MAX_NESTING {
            return Err(ValueError::TooDeep);
        }
        let list = l.into_iter().map(|v| from_wire(v, depth + 1)).collect::<Result<Vec<_>, _>>()?;
        found.push(AttributeValue::L(list));
    }
    if let Some(null) = wire.null {
        if !null {
            return Err(ValueError::NullFalse);
        }
        found.push(AttributeValue::Null);
    }
    if let Some(b) = wire.bool {
        found.push(AttributeValue::Bool(b));
    }
    match found.len() {
        0 => Err(ValueError::Empty),
        1 => Ok(found.pop().expect("one value")),
        _ => Err(ValueError::MoreThanOneType),
    }
}

fn has_duplicates<T: Ord>(members: &[T]) -> bool {
    let mut sorted: Vec<&T> = members.iter().collect();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// Checks a whole item off the wire.
pub fn item_from_wire(wire: BTreeMap<String, WireValue>) -> Result<Item, ValueError> {
    wire.into_iter().map(|(name, value)| Ok((name, AttributeValue::try_from(value)?))).collect()
}

impl AttributeValue {
    /// This value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            AttributeValue::S(_) => ValueType::S,
            AttributeValue::N(_) => ValueType::N,
            AttributeValue::B(_) => ValueType::B,
            AttributeValue::SS(_) => ValueType::SS,
            AttributeValue::NS(_) => ValueType::NS,
            AttributeValue::BS(_) => ValueType::BS,
            AttributeValue::M(_) => ValueType::M,
            AttributeValue::L(_) => ValueType::L,
            AttributeValue::Null => ValueType::Null,
            AttributeValue::Bool(_) => ValueType::Bool,
        }
    }

    /// A string value.
    pub fn s(text: impl Into<String>) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    /// A number value from its text; panics on a malformed literal (for tests and constants).
    pub fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).expect("a valid number literal"))
    }

    /// Bytes this value takes in an item, as DynamoDB counts them (developer guide, "Item
    /// sizes"): strings and binary by length in bytes, numbers by [`Number::size`], `NULL` and
    /// `BOOL` one byte, sets the sum of their members, lists and maps 3 bytes plus 1 per
    /// element plus their elements (and a map's keys).
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.size(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::SS(ss) => ss.iter().map(String::len).sum(),
            AttributeValue::NS(ns) => ns.iter().map(Number::size).sum(),
            AttributeValue::BS(bs) => bs.iter().map(Vec::len).sum(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + 1 + v.size()).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + v.size()).sum::<usize>(),
            AttributeValue::Null | AttributeValue::Bool(_) => 1,
        }
    }

    /// The order DynamoDB gives two values of the same scalar type (S, N, B): numbers
    /// numerically, strings by UTF-8 bytes, binary by unsigned bytes. `None` for other types
    /// or mixed types, where `<`, `>`, `BETWEEN` are false.
    pub fn compare(&self, other: &AttributeValue) -> Option<Ordering> {
        match (self, other) {
            (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
            (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// How DynamoDB writes this value in error texts: `AttributeValue: {N:1}`'s `{N:1}` part.
    pub fn brief(&self) -> String {
        let body = match self {
            AttributeValue::S(s) => s.clone(),
            AttributeValue::N(n) => n.to_string(),
            AttributeValue::B(b) => b64(b),
            AttributeValue::Bool(b) => b.to_string(),
            AttributeValue::Null => "true".to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        format!("{{{}:{body}}}", self.value_type())
    }
}

/// Equality as DynamoDB's `=`: same type and same value; numbers numerically, sets regardless
/// of order, documents deeply.
impl PartialEq for AttributeValue {
    fn eq(&self, other: &AttributeValue) -> bool {
        fn same_set<T: Ord>(a: &[T], b: &[T]) -> bool {
            if a.len() != b.len() {
                return false;
            }
            let mut a: Vec<&T> = a.iter().collect();
            let mut b: Vec<&T> = b.iter().collect();
            a.sort();
            b.sort();
            a == b
        }
        match (self, other) {
            (AttributeValue::S(a), AttributeValue::S(b)) => a == b,
            (AttributeValue::N(a), AttributeValue::N(b)) => a == b,
            (AttributeValue::B(a), AttributeValue::B(b)) => a == b,
            (AttributeValue::SS(a), AttributeValue::SS(b)) => same_set(a, b),
            (AttributeValue::NS(a), AttributeValue::NS(b)) => same_set(a, b),
            (AttributeValue::BS(a), AttributeValue::BS(b)) => same_set(a, b),
            (AttributeValue::M(a), AttributeValue::M(b)) => a == b,
            (AttributeValue::L(a), AttributeValue::L(b)) => a == b,
            (AttributeValue::Null, AttributeValue::Null) => true,
            (AttributeValue::Bool(a), AttributeValue::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// Bytes an item takes, as DynamoDB counts them: each attribute's name in UTF-8 bytes plus its
/// value's [`AttributeValue::size`].
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value.size()).sum()
}

/// [`ItemTooLarge`] when the item is over [`MAX_ITEM_SIZE`].
pub fn check_item_size(item: &Item) -> Result<(), ItemTooLarge> {
    if item_size(item) > MAX_ITEM_SIZE {
        return Err(ItemTooLarge);
    }
    Ok(())
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            AttributeValue::S(s) => map.serialize_entry("S", s)?,
            AttributeValue::N(n) => map.serialize_entry("N", &n.to_string())?,
            AttributeValue::B(b) => map.serialize_entry("B", &b64(b))?,
            AttributeValue::SS(ss) => map.serialize_entry("SS", ss)?,
            AttributeValue::NS(ns) => map.serialize_entry("NS", &ns.iter().map(Number::to_string).collect::<Vec<_>>())?,
            AttributeValue::BS(bs) => map.serialize_entry("BS", &bs.iter().map(|b| b64(b)).collect::<Vec<_>>())?,
            AttributeValue::M(m) => map.serialize_entry("M", m)?,
            AttributeValue::L(l) => map.serialize_entry("L", l)?,
            AttributeValue::Null => map.serialize_entry("NULL", &true)?,
            AttributeValue::Bool(b) => map.serialize_entry("BOOL", b)?,
        }
        map.end()
    }
}

/// Reads the wire form and applies DynamoDB's checks; a refusal's message is the
/// [`ValueError`]'s text. A caller that must tell a `ValidationException` from a malformed
/// document deserializes a [`WireValue`] and converts it instead.
impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AttributeValue, D::Error> {
        let wire = WireValue::deserialize(deserializer)?;
        AttributeValue::try_from(wire).map_err(de::Error::custom)
    }
}
