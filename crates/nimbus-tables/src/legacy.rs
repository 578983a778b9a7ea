//! DynamoDB's legacy (pre-expression) parameters — `AttributesToGet`, `KeyConditions`,
//! `QueryFilter`/`ScanFilter`, `Expected`, `ConditionalOperator`, `AttributeUpdates` — checked
//! with AWS's texts and translated into the expression structures ([`Projection`],
//! [`KeyCondition`], [`Condition`], [`Update`]): each is written out as an expression over
//! placeholders of its own (`#l0`, `:l0_0`, …) and parsed by the expression parsers, so there is
//! one evaluator.
//!
//! Texts: dynalite `validations/index.js` (`validateExpressionParams`,
//! `validateAttributeConditions`, `validateConditions`) and `validations/updateItem.js`, written
//! against DynamoDB; semantics checked with ScyllaDB Alternator's `test_expected.py` (written
//! against DynamoDB: `NOT_CONTAINS` on a missing attribute is false, `NE` true).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::TableError;
use crate::expr::{Condition, ExpressionKind, KeyCondition, Path, PathElement, Placeholders, Projection, Update};
use crate::value::{AttributeValue, ValueType, WireValue};

fn validation(text: impl Into<String>) -> TableError {
    TableError::Validation(text.into())
}

/// DynamoDB's refusals when a request mixes expression and non-expression parameters, or
/// carries `ExpressionAttributeNames`/`Values` without expressions. `expressions` and
/// `legacy` are the operation's parameter names in AWS's order, each with whether it is
/// present. Text: dynalite `validateExpressionParams`.
pub(crate) fn check_mixing(expressions: &[(&str, bool)], legacy: &[(&str, bool)], names: bool, values: bool) -> Result<(), TableError> {
    let present: Vec<&str> = expressions.iter().filter(|(_, p)| *p).map(|(n, _)| *n).collect();
    if !present.is_empty() {
        // Query's KeyConditions goes with a FilterExpression when there is no
        // KeyConditionExpression.
        let key_expression = expressions.iter().any(|(n, p)| *n == "KeyConditionExpression" && *p);
        let mixed: Vec<&str> = legacy.iter().filter(|(n, p)| *p && (*n != "KeyConditions" || key_expression)).map(|(n, _)| *n).collect();
        if !mixed.is_empty() {
            return Err(validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                mixed.join(", "),
                present.join(", ")
            )));
        }
    }
    if names && present.is_empty() {
        return Err(validation("ExpressionAttributeNames can only be specified when using expressions"));
    }
    let value_expressions: Vec<&str> = expressions.iter().filter(|(n, _)| *n != "ProjectionExpression").map(|(n, _)| *n).collect();
    if values && !value_expressions.is_empty() && expressions.iter().all(|(n, p)| *n == "ProjectionExpression" || !p) {
        let verb = if value_expressions.len() > 1 { "are" } else { "is" };
        return Err(validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} null",
            value_expressions.join(" and ")
        )));
    }
    Ok(())
}

/// The value of a legacy parameter that is not of its shape. No source gives DynamoDB's text
/// for these (the SDKs never send them); this follows its serialization errors.
fn malformed(parameter: &str) -> TableError {
    TableError::Serialization(format!("Unexpected value for {parameter}"))
}

fn attribute_value(json: &Value, parameter: &str) -> Result<AttributeValue, TableError> {
    let wire: WireValue = serde_json::from_value(json.clone()).map_err(|_| malformed(parameter))?;
    Ok(AttributeValue::try_from(wire)?)
}

fn object<'a>(json: &'a Value, parameter: &str) -> Result<&'a serde_json::Map<String, Value>, TableError> {
    json.as_object().ok_or_else(|| malformed(parameter))
}

/// `AttributesToGet` as a projection of top-level attributes. Text: dynalite
/// `validations/getItem.js` (duplicates).
pub(crate) fn attributes_to_get(json: Option<&Value>) -> Result<Option<Projection>, TableError> {
    let Some(json) = json else { return Ok(None) };
    let list = json.as_array().ok_or_else(|| malformed("AttributesToGet"))?;
    let mut seen = BTreeSet::new();
    let mut paths = Vec::new();
    for name in list {
        let name = name.as_str().ok_or_else(|| malformed("AttributesToGet"))?;
        if !seen.insert(name) {
            return Err(TableError::invalid(format!("Duplicate value in attribute name: {name}")));
        }
        paths.push(Path(vec![PathElement::Attr(name.to_string())]));
    }
    if paths.is_empty() {
        // DynamoDB's length constraint on the list (AWS's member-constraint form).
        return Err(validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    Ok(Some(Projection::from_paths(paths)))
}

/// `ConditionalOperator`: whether it is `OR` (absent is `AND`). Text: AWS's enum constraint.
pub(crate) fn is_or(json: Option<&Value>) -> Result<bool, TableError> {
    match json {
        None => Ok(false),
        Some(Value::String(s)) if s == "AND" => Ok(false),
        Some(Value::String(s)) if s == "OR" => Ok(true),
        Some(other) => {
            let shown = other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string());
            Err(validation(format!(
                "1 validation error detected: Value '{shown}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [AND, OR]"
            )))
        }
    }
}

/// A comparison operator of the legacy API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
    NotNull,
    Null,
    Contains,
    NotContains,
    BeginsWith,
    In,
    Between,
}

const OPS: [(&str, Op); 13] = [
    ("EQ", Op::Eq),
    ("NE", Op::Ne),
    ("LE", Op::Le),
    ("LT", Op::Lt),
    ("GE", Op::Ge),
    ("GT", Op::Gt),
    ("NOT_NULL", Op::NotNull),
    ("NULL", Op::Null),
    ("CONTAINS", Op::Contains),
    ("NOT_CONTAINS", Op::NotContains),
    ("BEGINS_WITH", Op::BeginsWith),
    ("IN", Op::In),
    ("BETWEEN", Op::Between),
];

impl Op {
    fn parse(json: &Value, member: &str) -> Result<Op, TableError> {
        let name = json.as_str().unwrap_or_default();
        OPS.iter().find(|(n, _)| *n == name).map(|(_, op)| *op).ok_or_else(|| {
            validation(format!(
                "1 validation error detected: Value '{name}' at '{member}.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            ))
        })
    }

    fn name(self) -> &'static str {
        OPS.iter().find(|(_, op)| *op == self).map(|(n, _)| *n).unwrap_or_default()
    }

    fn count_ok(self, n: usize) -> bool {
        match self {
            Op::NotNull | Op::Null => n == 0,
            Op::In => n >= 1,
            Op::Between => n == 2,
            _ => n == 1,
        }
    }

    /// The value types the operator takes (dynalite `validateConditions`). `EQ`/`NE` take
    /// every type: DynamoDB compares lists and maps with them too.
    fn takes(self, t: ValueType) -> bool {
        use ValueType::*;
        match self {
            Op::Eq | Op::Ne => true,
            Op::BeginsWith => matches!(t, S | B),
            Op::NotNull | Op::Null => true,
            _ => matches!(t, S | N | B),
        }
    }

    /// The operator as an expression on `#name` with values `vals` (their placeholders).
    fn expression(self, name: &str, vals: &[String]) -> String {
        let v = |i: usize| vals[i].as_str();
        match self {
            Op::Eq => format!("{name} = {}", v(0)),
            Op::Ne => format!("{name} <> {}", v(0)),
            Op::Le => format!("{name} <= {}", v(0)),
            Op::Lt => format!("{name} < {}", v(0)),
            Op::Ge => format!("{name} >= {}", v(0)),
            Op::Gt => format!("{name} > {}", v(0)),
            Op::NotNull => format!("attribute_exists({name})"),
            Op::Null => format!("attribute_not_exists({name})"),
            Op::Contains => format!("contains({name}, {})", v(0)),
            // False on a missing attribute, like CONTAINS (Alternator `test_expected.py`).
            Op::NotContains => format!("attribute_exists({name}) AND NOT contains({name}, {})", v(0)),
            Op::BeginsWith => format!("begins_with({name}, {})", v(0)),
            Op::In => format!("{name} IN ({})", vals.join(", ")),
            Op::Between => format!("{name} BETWEEN {} AND {}", v(0), v(1)),
        }
    }
}

/// One checked condition of a legacy map, on `attribute`.
struct Entry {
    attribute: String,
    op: Op,
    values: Vec<AttributeValue>,
}

/// The checks every AttributeValueList has (dynalite `validateConditions`): its size for the
/// operator, one type, the operator's types, BETWEEN's order.
fn check_values(op: Op, values: &[AttributeValue], check_types: bool) -> Result<(), TableError> {
    if !op.count_ok(values.len()) {
        return Err(TableError::invalid(format!("Invalid number of argument(s) for the {} ComparisonOperator", op.name())));
    }
    if let Some(first) = values.first() {
        if values.iter().any(|v| v.value_type() != first.value_type()) {
            return Err(TableError::invalid("AttributeValues inside AttributeValueList must be of same type"));
        }
    }
    if check_types {
        if let Some(v) = values.iter().find(|v| !op.takes(v.value_type())) {
            return Err(TableError::invalid(format!(
                "ComparisonOperator {} is not valid for {} AttributeValue type",
                op.name(),
                v.value_type().name()
            )));
        }
    }
    if op == Op::Between && values[0].compare(&values[1]) == Some(std::cmp::Ordering::Greater) {
        return Err(validation("The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"));
    }
    Ok(())
}

fn value_list(json: Option<&Value>, parameter: &str) -> Result<Vec<AttributeValue>, TableError> {
    match json {
        None => Ok(Vec::new()),
        Some(list) => list.as_array().ok_or_else(|| malformed(parameter))?.iter().map(|v| attribute_value(v, parameter)).collect(),
    }
}

/// A `QueryFilter`, `ScanFilter` or `KeyConditions` map: `{attr: {ComparisonOperator,
/// AttributeValueList}}`.
fn conditions(json: &Value, parameter: &str, member: &str) -> Result<Vec<Entry>, TableError> {
    let mut out = Vec::new();
    for (attribute, condition) in object(json, parameter)? {
        let condition = object(condition, parameter)?;
        let values = value_list(condition.get("AttributeValueList"), parameter)?;
        let op = match condition.get("ComparisonOperator") {
            Some(op) => Op::parse(op, &format!("{member}.{attribute}.member"))?,
            None => {
                return Err(validation(format!(
                    "1 validation error detected: Value null at '{member}.{attribute}.member.comparisonOperator' failed to satisfy constraint: Member must not be null"
                )))
            }
        };
        check_values(op, &values, true)?;
        out.push(Entry { attribute: attribute.clone(), op, values });
    }
    Ok(out)
}

/// `Expected`: each entry `{Value, Exists}` or `{ComparisonOperator, AttributeValueList | Value}`.
/// Texts: dynalite `validateAttributeConditions`.
fn expected_entries(json: &Value) -> Result<Vec<Entry>, TableError> {
    let mut out = Vec::new();
    for (key, condition) in object(json, "Expected")? {
        let condition = object(condition, "Expected")?;
        let value = condition.get("Value").map(|v| attribute_value(v, "Expected")).transpose()?;
        let list = condition.get("AttributeValueList");
        let exists = match condition.get("Exists") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(malformed("Expected")),
        };
        if list.is_some() && value.is_some() {
            return Err(TableError::invalid(format!("Value and AttributeValueList cannot be used together for Attribute: {key}")));
        }
        let entry = if let Some(op) = condition.get("ComparisonOperator") {
            let op = Op::parse(op, &format!("expected.{key}.member"))?;
            if exists.is_some() {
                return Err(TableError::invalid(format!("Exists and ComparisonOperator cannot be used together for Attribute: {key}")));
            }
            if !matches!(op, Op::Null | Op::NotNull) && list.is_none() && value.is_none() {
                return Err(TableError::invalid(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {} for Attribute: {key}",
                    op.name()
                )));
            }
            let values = match value {
                Some(v) => vec![v],
                None => value_list(list, "Expected")?,
            };
            check_values(op, &values, true)?;
            Entry { attribute: key.clone(), op, values }
        } else if list.is_some() {
            return Err(TableError::invalid(format!("AttributeValueList can only be used with a ComparisonOperator for Attribute: {key}")));
        } else {
            match (exists, value) {
                (Some(false), Some(_)) => {
                    return Err(TableError::invalid(format!("Value cannot be used when Exists is false for Attribute: {key}")))
                }
                (Some(false), None) => Entry { attribute: key.clone(), op: Op::Null, values: Vec::new() },
                (_, Some(v)) => Entry { attribute: key.clone(), op: Op::Eq, values: vec![v] },
                (shown, None) => {
                    let shown = if shown.is_some() { "true" } else { "null" };
                    return Err(TableError::invalid(format!("Value must be provided when Exists is {shown} for Attribute: {key}")));
                }
            }
        };
        out.push(entry);
    }
    Ok(out)
}

/// Writes entries out as one expression over fresh placeholders.
fn expression(entries: &[Entry], joiner: &str, wrap: bool) -> (String, Placeholders) {
    let mut names = BTreeMap::new();
    let mut values = BTreeMap::new();
    let mut parts = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let name = format!("#l{i}");
        names.insert(name.clone(), entry.attribute.clone());
        let mut keys = Vec::new();
        for (j, value) in entry.values.iter().enumerate() {
            let key = format!(":l{i}_{j}");
            values.insert(key.clone(), value.clone());
            keys.push(key);
        }
        let part = entry.op.expression(&name, &keys);
        parts.push(if wrap { format!("({part})") } else { part });
    }
    let names = (!names.is_empty()).then_some(names);
    let values = (!values.is_empty()).then_some(values);
    let placeholders = Placeholders::new(names, values).unwrap_or_default();
    (parts.join(joiner), placeholders)
}

fn condition_of(entries: &[Entry], or: bool, kind: ExpressionKind) -> Result<Option<Condition>, TableError> {
    if entries.is_empty() {
        return Ok(None);
    }
    // DynamoDB refuses redundant parentheses, so one condition goes bare.
    let (text, mut placeholders) = expression(entries, if or { " OR " } else { " AND " }, entries.len() > 1);
    Ok(Some(Condition::parse(&text, kind, &mut placeholders)?))
}

/// `Expected` with `ConditionalOperator` as a condition (`None` for an empty map).
pub(crate) fn expected(json: &Value, or: bool) -> Result<Option<Condition>, TableError> {
    condition_of(&expected_entries(json)?, or, ExpressionKind::Condition)
}

/// `QueryFilter`/`ScanFilter` (`parameter`) with `ConditionalOperator` as a filter.
pub(crate) fn filter(json: &Value, parameter: &str, or: bool) -> Result<Option<Condition>, TableError> {
    let member = if parameter == "QueryFilter" { "queryFilter" } else { "scanFilter" };
    condition_of(&conditions(json, parameter, member)?, or, ExpressionKind::Filter)
}

/// `KeyConditions` as a key condition. Texts: dynalite `validations/query.js`,
/// `actions/query.js`.
pub(crate) fn key_conditions(json: &Value) -> Result<KeyCondition, TableError> {
    let entries = conditions(json, "KeyConditions", "keyConditions")?;
    if entries.is_empty() || entries.len() > 2 {
        return Err(validation("Conditions can be of length 1 or 2 only"));
    }
    if entries.iter().any(|e| !matches!(e.op, Op::Eq | Op::Le | Op::Lt | Op::Ge | Op::Gt | Op::BeginsWith | Op::Between)) {
        return Err(validation("Attempted conditional constraint is not an indexable operation"));
    }
    let (text, mut placeholders) = expression(&entries, " AND ", false);
    Ok(KeyCondition::parse(&text, &mut placeholders)?)
}

/// `AttributeUpdates` as an update (`None` for an empty map). Texts: dynalite
/// `validations/updateItem.js`.
pub(crate) fn attribute_updates(json: &Value) -> Result<Option<Update>, TableError> {
    let mut names = BTreeMap::new();
    let mut values = BTreeMap::new();
    let (mut set, mut remove, mut add, mut delete) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (attribute, update)) in object(json, "AttributeUpdates")?.iter().enumerate() {
        let update = object(update, "AttributeUpdates")?;
        let value = update.get("Value").map(|v| attribute_value(v, "AttributeUpdates")).transpose()?;
        let action = match update.get("Action") {
            None | Some(Value::Null) => "PUT",
            Some(Value::String(a)) if matches!(a.as_str(), "PUT" | "ADD" | "DELETE") => a.as_str(),
            Some(other) => {
                let shown = other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string());
                return Err(validation(format!(
                    "1 validation error detected: Value '{shown}' at 'attributeUpdates.{attribute}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )));
            }
        };
        let name = format!("#u{i}");
        let key = format!(":u{i}");
        names.insert(name.clone(), attribute.clone());
        let Some(value) = value else {
            if action != "DELETE" {
                return Err(TableError::invalid("Only DELETE action is allowed when no attribute value is specified"));
            }
            remove.push(name);
            continue;
        };
        let t = value.value_type();
        match action {
            "DELETE" => {
                if !matches!(t, ValueType::SS | ValueType::NS | ValueType::BS) {
                    return Err(TableError::invalid(format!("DELETE action with value is not supported for the type {}", t.name())));
                }
                delete.push(format!("{name} {key}"));
            }
            "ADD" => match t {
                ValueType::SS | ValueType::NS | ValueType::BS | ValueType::N => add.push(format!("{name} {key}")),
                // ADD appends to a list (a missing attribute is an empty list).
                ValueType::L => {
                    let empty = format!(":u{i}_empty");
                    values.insert(empty.clone(), AttributeValue::L(Vec::new()));
                    set.push(format!("{name} = list_append(if_not_exists({name}, {empty}), {key})"));
                }
                other => return Err(TableError::invalid(format!("ADD action is not supported for the type {}", other.name()))),
            },
            _ => set.push(format!("{name} = {key}")),
        }
        values.insert(key, value);
    }
    let mut text = Vec::new();
    for (section, actions) in [("SET", set), ("REMOVE", remove), ("ADD", add), ("DELETE", delete)] {
        if !actions.is_empty() {
            text.push(format!("{section} {}", actions.join(", ")));
        }
    }
    if text.is_empty() {
        return Ok(None);
    }
    let names = (!names.is_empty()).then_some(names);
    let values = (!values.is_empty()).then_some(values);
    let mut placeholders = Placeholders::new(names, values)?;
    Ok(Some(Update::parse(&text.join(" "), &mut placeholders)?))
}

#[cfg(test)]
#[path = "legacy_tests.rs"]
mod tests;
