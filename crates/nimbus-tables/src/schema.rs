//! A table's definition as stored (key schema, attribute definitions, indexes, billing,
//! stream and TTL settings), CreateTable's checks in AWS's words, and the key rules every
//! item operation applies: key attributes present, of their declared type, not empty, and
//! encoded so that SQLite's byte order on a key column is DynamoDB's order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::TableError;
use crate::value::{AttributeValue, Item, ValueType};

/// A key attribute's scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    /// `S`, `N` or `B` (AttributeType's values); anything else is refused as AWS refuses it.
    pub fn parse(text: &str, at: usize) -> Result<KeyType, TableError> {
        match text {
            "S" => Ok(KeyType::S),
            "N" => Ok(KeyType::N),
            "B" => Ok(KeyType::B),
            other => Err(TableError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'attributeDefinitions.{at}.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))),
        }
    }

    /// The value type it names.
    pub fn value_type(self) -> ValueType {
        match self {
            KeyType::S => ValueType::S,
            KeyType::N => ValueType::N,
            KeyType::B => ValueType::B,
        }
    }

    /// `S`, `N`, `B`.
    pub fn name(self) -> &'static str {
        self.value_type().name()
    }
}

/// One key attribute: its name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    /// Attribute name.
    pub name: String,
    /// Its declared type.
    pub kind: KeyType,
}

/// Most bytes of a partition key value (string or binary).
pub const MAX_HASH_KEY_BYTES: usize = 2048;
/// Most bytes of a sort key value (string or binary).
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// A partition key and an optional sort key (a table's or an index's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    /// The partition (HASH) key.
    pub hash: KeyAttr,
    /// The sort (RANGE) key.
    pub range: Option<KeyAttr>,
}

/// The order-preserving bytes of a key value: strings and binary as their bytes, numbers by
/// [`crate::Number::order_key`]. Within one key attribute all values have one type, so these
/// compare as DynamoDB compares them.
pub fn key_bytes(value: &AttributeValue) -> Vec<u8> {
    match value {
        AttributeValue::S(s) => s.as_bytes().to_vec(),
        AttributeValue::B(b) => b.clone(),
        AttributeValue::N(n) => n.order_key(),
        // Key attributes are checked to be S, N or B before they are encoded.
        _ => Vec::new(),
    }
}

/// An item's key, encoded: partition bytes and sort bytes (empty without a sort key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EncodedKey {
    /// Partition key bytes.
    pub pk: Vec<u8>,
    /// Sort key bytes (empty for a hash-only schema).
    pub sk: Vec<u8>,
}

impl KeySchema {
    /// The key attributes' names, partition first.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![self.hash.name.as_str()];
        if let Some(range) = &self.range {
            names.push(range.name.as_str());
        }
        names
    }

    fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.hash).chain(self.range.as_ref())
    }

    /// The key of an item written whole (PutItem, a batch's PutRequest), with AWS's checks.
    pub fn item_key(&self, item: &Item) -> Result<EncodedKey, TableError> {
        for attr in self.attrs() {
            let Some(value) = item.get(&attr.name) else {
                return Err(TableError::invalid(format!("Missing the key {} in the item", attr.name)));
            };
            if value.value_type() != attr.kind.value_type() {
                return Err(TableError::invalid(format!(
                    "Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.kind.name(),
                    value.value_type()
                )));
            }
            check_not_empty(&attr.name, value)?;
            self.check_size(attr, value)?;
        }
        Ok(self.encode(item))
    }

    /// The key named by a `Key` parameter (GetItem, UpdateItem, DeleteItem, batches): exactly
    /// the key attributes, of their types.
    pub fn key_of(&self, key: &Item) -> Result<EncodedKey, TableError> {
        let mismatch = || TableError::Validation("The provided key element does not match the schema".into());
        if key.len() != self.names().len() {
            return Err(mismatch());
        }
        for attr in self.attrs() {
            let value = key.get(&attr.name).ok_or_else(mismatch)?;
            if value.value_type() != attr.kind.value_type() {
                return Err(mismatch());
            }
            check_not_empty(&attr.name, value)?;
            self.check_size(attr, value)?;
        }
        Ok(self.encode(key))
    }

    /// AWS's key size limits: 2048 bytes of partition key, 1024 of sort key (strings and
    /// binary; AWS's text has no space before 2048).
    fn check_size(&self, attr: &KeyAttr, value: &AttributeValue) -> Result<(), TableError> {
        let size = match value {
            AttributeValue::S(s) => s.len(),
            AttributeValue::B(b) => b.len(),
            _ => return Ok(()),
        };
        let hash = std::ptr::eq(attr, &self.hash);
        if hash && size > MAX_HASH_KEY_BYTES {
            return Err(TableError::invalid(format!("Size of hashkey has exceeded the maximum size limit of{MAX_HASH_KEY_BYTES} bytes")));
        }
        if !hash && size > MAX_RANGE_KEY_BYTES {
            return Err(TableError::invalid(format!(
                "Aggregated size of all range keys has exceeded the size limit of {MAX_RANGE_KEY_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// The encoded key of an item whose key attributes were checked.
    pub fn encode(&self, item: &Item) -> EncodedKey {
        let part = |attr: &KeyAttr| item.get(&attr.name).map(key_bytes).unwrap_or_default();
        EncodedKey { pk: part(&self.hash), sk: self.range.as_ref().map(part).unwrap_or_default() }
    }

    /// The key attributes of `item` (LastEvaluatedKey, stream records' `Keys`).
    pub fn project_key(&self, item: &Item) -> Item {
        self.attrs().filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone()))).collect()
    }

    /// An index's key of `item`: None when the item lacks an index key attribute (it is not
    /// in the index); AWS's refusal when one has another type or is empty.
    pub fn index_key(&self, index: &str, item: &Item) -> Result<Option<EncodedKey>, TableError> {
        for attr in self.attrs() {
            let Some(value) = item.get(&attr.name) else { return Ok(None) };
            if value.value_type() != attr.kind.value_type() {
                return Err(TableError::invalid(format!(
                    "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {index}",
                    attr.name,
                    attr.kind.name(),
                    value.value_type()
                )));
            }
            let empty = match value {
                AttributeValue::S(s) => s.is_empty(),
                AttributeValue::B(b) => b.is_empty(),
                _ => false,
            };
            if empty {
                return Err(TableError::Validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {} value. IndexName: {index}, IndexKey: {}",
                    if matches!(value, AttributeValue::S(_)) { "string" } else { "binary" },
                    attr.name
                )));
            }
        }
        Ok(Some(self.encode(item)))
    }
}

fn check_not_empty(name: &str, value: &AttributeValue) -> Result<(), TableError> {
    let kind = match value {
        AttributeValue::S(s) if s.is_empty() => "string",
        AttributeValue::B(b) if b.is_empty() => "binary",
        _ => return Ok(()),
    };
    Err(TableError::Validation(format!(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {name}"
    )))
}

/// Which attributes an index carries besides the keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionType {
    /// Every attribute.
    All,
    /// The table's and the index's keys.
    KeysOnly,
    /// The keys and these.
    Include(Vec<String>),
}

impl ProjectionType {
    /// AWS's name.
    pub fn name(&self) -> &'static str {
        match self {
            ProjectionType::All => "ALL",
            ProjectionType::KeysOnly => "KEYS_ONLY",
            ProjectionType::Include(_) => "INCLUDE",
        }
    }
}

/// Provisioned capacity (accepted and reported; nothing is throttled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    /// ReadCapacityUnits.
    pub read: i64,
    /// WriteCapacityUnits.
    pub write: i64,
}

/// A global or local secondary index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// IndexName.
    pub name: String,
    /// Its key.
    pub key: KeySchema,
    /// What it projects.
    pub projection: ProjectionType,
    /// A provisioned GSI's capacity.
    pub throughput: Option<Throughput>,
}

impl IndexDef {
    /// The item as the index holds it: its projection of `item` (`table` is the table's key).
    pub fn project(&self, table: &KeySchema, item: &Item) -> Item {
        let keep: Vec<&str> = match &self.projection {
            ProjectionType::All => return item.clone(),
            ProjectionType::KeysOnly => Vec::new(),
            ProjectionType::Include(names) => names.iter().map(String::as_str).collect(),
        };
        item.iter()
            .filter(|(name, _)| {
                table.names().contains(&name.as_str()) || self.key.names().contains(&name.as_str()) || keep.contains(&name.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A table's stream, while it is enabled (and after, for its records' readers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDef {
    /// Its row in `streams` (records are stored under it).
    pub id: i64,
    /// `NEW_IMAGE`, `OLD_IMAGE`, `NEW_AND_OLD_IMAGES`, `KEYS_ONLY`.
    pub view_type: String,
    /// `LatestStreamLabel`: the stream's creation time, ISO 8601 with milliseconds.
    pub label: String,
    /// Whether changes are recorded.
    pub enabled: bool,
}

impl StreamDef {
    /// Whether the view holds new images.
    pub fn new_image(&self) -> bool {
        matches!(self.view_type.as_str(), "NEW_IMAGE" | "NEW_AND_OLD_IMAGES")
    }

    /// Whether the view holds old images.
    pub fn old_image(&self) -> bool {
        matches!(self.view_type.as_str(), "OLD_IMAGE" | "NEW_AND_OLD_IMAGES")
    }
}

/// A table's definition, stored as JSON beside its row id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// TableName.
    pub name: String,
    /// TableId (a UUID).
    pub table_id: String,
    /// CreationDateTime, seconds since the epoch.
    pub created_at: f64,
    /// AttributeDefinitions in the order given.
    pub attributes: Vec<KeyAttr>,
    /// The primary key.
    pub key: KeySchema,
    /// Global secondary indexes.
    pub global_indexes: Vec<IndexDef>,
    /// Local secondary indexes.
    pub local_indexes: Vec<IndexDef>,
    /// None for on-demand (PAY_PER_REQUEST).
    pub throughput: Option<Throughput>,
    /// When billing last became on-demand (BillingModeSummary).
    pub pay_per_request_since: Option<f64>,
    /// The current (or last) stream.
    pub stream: Option<StreamDef>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
    /// DeletionProtectionEnabled.
    pub deletion_protection: bool,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Point-in-time recovery, while enabled (recorded; Nimbus offers no restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<PointInTimeRecovery>,
}

/// UpdateContinuousBackups' setting, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointInTimeRecovery {
    /// When it was enabled, seconds since the epoch.
    pub since: f64,
    /// RecoveryPeriodInDays.
    pub days: i64,
}

impl TableDef {
    /// A secondary index by name.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.global_indexes.iter().chain(&self.local_indexes).find(|i| i.name == name)
    }

    /// Every secondary index.
    pub fn indexes(&self) -> impl Iterator<Item = &IndexDef> {
        self.global_indexes.iter().chain(&self.local_indexes)
    }

    /// The stream, when enabled.
    pub fn live_stream(&self) -> Option<&StreamDef> {
        self.stream.as_ref().filter(|s| s.enabled)
    }

    /// The declared type of an attribute.
    pub fn attribute_type(&self, name: &str) -> Option<KeyType> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.kind)
    }
}

/// AWS's check of a table or index name (3 to 255 of `[a-zA-Z0-9_.-]`); `member` is the
/// parameter (`tableName`, `indexName`).
pub fn check_name(name: &str, member: &str) -> Result<(), TableError> {
    let mut errors = Vec::new();
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) || name.is_empty() {
        errors.push(format!(
            "Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        ));
    }
    if name.len() < 3 {
        errors
            .push(format!("Value '{name}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to 3"));
    }
    if name.len() > 255 {
        errors
            .push(format!("Value '{name}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to 255"));
    }
    match errors.len() {
        0 => Ok(()),
        n => Err(TableError::Validation(format!("{n} validation error{} detected: {}", if n == 1 { "" } else { "s" }, errors.join("; ")))),
    }
}
