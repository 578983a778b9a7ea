//! `ReturnConsumedCapacity`: the capacity units a request used, as DynamoDB counts them. A
//! read unit is 4 KB of item read (half a unit when eventually consistent), a write unit 1 KB
//! of item written (the larger of the item before and after), each item rounded up and
//! counting at least one unit; Query and Scan round the bytes of every item they read (before
//! the filter) together; transactions count double. A write to a table also writes each index
//! the item is in (its projection), twice when the write moves it within the index. `TOTAL`
//! answers the sum; `INDEXES` adds the table's and each index's share.

use std::collections::BTreeMap;

use crate::error::TableError;
use crate::request::{Capacity, ConsumedCapacity};
use crate::schema::TableDef;
use crate::value::{item_size, Item};

/// Bytes in a read capacity unit.
pub const READ_UNIT_BYTES: usize = 4096;
/// Bytes in a write capacity unit.
pub const WRITE_UNIT_BYTES: usize = 1024;

/// What the request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityMode {
    /// `NONE` or absent: no `ConsumedCapacity`.
    None,
    /// `TOTAL`: the table and its units.
    Total,
    /// `INDEXES`: also the table's and each index's units.
    Indexes,
}

impl CapacityMode {
    /// Reads `ReturnConsumedCapacity`.
    pub fn parse(value: Option<&str>) -> Result<CapacityMode, TableError> {
        match value {
            None | Some("NONE") => Ok(CapacityMode::None),
            Some("TOTAL") => Ok(CapacityMode::Total),
            Some("INDEXES") => Ok(CapacityMode::Indexes),
            Some(other) => Err(TableError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }
    }
}

/// Which kind of units a request used (transactions name them, as AWS does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// GetItem, Query, Scan, BatchGetItem.
    Read,
    /// PutItem, UpdateItem, DeleteItem, BatchWriteItem.
    Write,
    /// TransactGetItems (`ReadCapacityUnits` beside `CapacityUnits`).
    TransactRead,
    /// TransactWriteItems (`WriteCapacityUnits` beside `CapacityUnits`).
    TransactWrite,
}

/// Read units for `bytes` read.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Write units for `bytes` written.
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// The units one request used on one table and its indexes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// On the table.
    pub table: f64,
    /// On each global secondary index.
    pub global: BTreeMap<String, f64>,
    /// On each local secondary index.
    pub local: BTreeMap<String, f64>,
}

impl Tally {
    /// Units read from the table, or from `index` of `def`.
    pub fn read(&mut self, def: &TableDef, index: Option<&str>, units: f64) {
        match index {
            None => self.table += units,
            Some(name) => *self.index_entry(def, name) += units,
        }
    }

    fn index_entry(&mut self, def: &TableDef, name: &str) -> &mut f64 {
        let map = if def.global_indexes.iter().any(|i| i.name == name) { &mut self.global } else { &mut self.local };
        map.entry(name.to_string()).or_default()
    }

    /// One item written (`old` → `new`, None for absent), `factor` 2 in a transaction.
    pub fn write(&mut self, def: &TableDef, old: Option<&Item>, new: Option<&Item>, factor: f64) {
        let size = |i: Option<&Item>| i.map_or(0, item_size);
        self.table += write_units(size(old).max(size(new))) * factor;
        for index in def.indexes() {
            // Written items passed the index key checks; an item without the key is not in it.
            let entry = |item: Option<&Item>| {
                let item = item?;
                let key = index.key.index_key(&index.name, item).ok().flatten()?;
                Some((key, item_size(&index.project(&def.key, item))))
            };
            let units = match (entry(old), entry(new)) {
                (None, None) => continue,
                (Some((_, a)), None) | (None, Some((_, a))) => write_units(a),
                (Some((ka, a)), Some((kb, b))) if ka == kb => write_units(a.max(b)),
                (Some((_, a)), Some((_, b))) => write_units(a) + write_units(b),
            };
            *self.index_entry(def, &index.name) += units * factor;
        }
    }

    /// `ConsumedCapacity` for `table` as `mode` asks (None for `NONE`).
    pub fn consumed(&self, table: &str, mode: CapacityMode, usage: Usage) -> Option<ConsumedCapacity> {
        let capacity = |units: f64| Capacity {
            capacity_units: units,
            read_capacity_units: (usage == Usage::TransactRead).then_some(units),
            write_capacity_units: (usage == Usage::TransactWrite).then_some(units),
        };
        let total = self.table + self.global.values().sum::<f64>() + self.local.values().sum::<f64>();
        let whole = capacity(total);
        let indexes = mode == CapacityMode::Indexes;
        let map = |m: &BTreeMap<String, f64>| {
            (indexes && !m.is_empty()).then(|| m.iter().map(|(name, units)| (name.clone(), capacity(*units))).collect())
        };
        match mode {
            CapacityMode::None => None,
            _ => Some(ConsumedCapacity {
                table_name: table.to_string(),
                capacity_units: whole.capacity_units,
                read_capacity_units: whole.read_capacity_units,
                write_capacity_units: whole.write_capacity_units,
                table: indexes.then(|| capacity(self.table)),
                local_secondary_indexes: map(&self.local),
                global_secondary_indexes: map(&self.global),
            }),
        }
    }
}

/// One `ConsumedCapacity` per table (the batch and transaction calls), None for `NONE`.
pub fn per_table(tallies: &BTreeMap<String, Tally>, mode: CapacityMode, usage: Usage) -> Option<Vec<ConsumedCapacity>> {
    (mode != CapacityMode::None).then(|| tallies.iter().filter_map(|(name, t)| t.consumed(name, mode, usage)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::AttributeValue;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), AttributeValue::s(*v))).collect()
    }

    #[test]
    fn units_round_up_per_item() {
        let cases: &[(usize, bool, f64)] =
            &[(0, false, 0.5), (1, false, 0.5), (4096, false, 0.5), (4097, false, 1.0), (4097, true, 2.0), (10_000, true, 3.0)];
        for (bytes, consistent, units) in cases {
            assert_eq!(read_units(*bytes, *consistent), *units, "{bytes} {consistent}");
        }
        let cases: &[(usize, f64)] = &[(0, 1.0), (1024, 1.0), (1025, 2.0), (400 * 1024, 400.0)];
        for (bytes, units) in cases {
            assert_eq!(write_units(*bytes), *units, "{bytes}");
        }
        assert_eq!(CapacityMode::parse(Some("INDEXES")).expect("ok"), CapacityMode::Indexes);
        assert_eq!(
            CapacityMode::parse(Some("ALL")).expect_err("bad").to_string(),
            "1 validation error detected: Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        );
    }

    #[test]
    fn writes_count_the_indexes_an_item_is_in() {
        let def: TableDef = serde_json::from_value(serde_json::json!({
            "name": "t", "table_id": "x", "created_at": 0.0,
            "attributes": [{"name": "pk", "kind": "S"}, {"name": "g", "kind": "S"}],
            "key": {"hash": {"name": "pk", "kind": "S"}, "range": null},
            "global_indexes": [{"name": "by-g", "key": {"hash": {"name": "g", "kind": "S"}, "range": null},
                                "projection": "KeysOnly", "throughput": null}],
            "local_indexes": [], "throughput": null, "pay_per_request_since": null, "stream": null,
            "ttl_attribute": null, "deletion_protection": false
        }))
        .expect("def");
        let big = "b".repeat(3000);
        let old = item(&[("pk", "p"), ("g", "x"), ("body", &big)]);
        let moved = item(&[("pk", "p"), ("g", "y"), ("body", &big)]);
        let outside = item(&[("pk", "p"), ("body", &big)]);
        let mut t = Tally::default();
        t.write(&def, None, Some(&outside), 1.0);
        assert_eq!((t.table, t.global.get("by-g")), (3.0, None), "not in the index");
        let mut t = Tally::default();
        t.write(&def, Some(&old), Some(&moved), 1.0);
        assert_eq!((t.table, t.global["by-g"]), (3.0, 2.0), "moved within the index: a delete and a put");
        let mut t = Tally::default();
        t.write(&def, Some(&old), None, 2.0);
        assert_eq!((t.table, t.global["by-g"]), (6.0, 2.0), "a transaction's delete");
        let c = t.consumed("t", CapacityMode::Indexes, Usage::TransactWrite).expect("asked");
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"TableName": "t", "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0,
                               "Table": {"CapacityUnits": 6.0, "WriteCapacityUnits": 6.0},
                               "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}})
        );
        let total = serde_json::to_value(t.consumed("t", CapacityMode::Total, Usage::Write)).expect("json");
        assert_eq!(total, serde_json::json!({"TableName": "t", "CapacityUnits": 8.0}));
        assert!(t.consumed("t", CapacityMode::None, Usage::Write).is_none());
    }
}
