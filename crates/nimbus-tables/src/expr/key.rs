//! Query's `KeyConditionExpression`: the condition grammar narrowed to an equality on the
//! partition key and at most one range condition on the sort key, returned as a structure a
//! storage layer turns into a range scan ([`KeyQuery`]).

use std::cmp::Ordering;

use super::condition::{parse_checked, CmpOp, Cond, Func, Operand};
use super::path::PathElement;
use super::{ExprError, ExpressionKind, KeyShape, Placeholders};
use crate::value::{AttributeValue, ValueType};

/// A condition on one key attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum SortCondition {
    /// `k = :v`.
    Eq(AttributeValue),
    /// `k < :v`.
    Lt(AttributeValue),
    /// `k <= :v`.
    Le(AttributeValue),
    /// `k > :v`.
    Gt(AttributeValue),
    /// `k >= :v`.
    Ge(AttributeValue),
    /// `k BETWEEN :low AND :high` (bounds included; low ≤ high is checked at parse).
    Between(AttributeValue, AttributeValue),
    /// `begins_with(k, :prefix)` (strings and binary).
    BeginsWith(AttributeValue),
}

impl SortCondition {
    /// Whether a key value satisfies the condition.
    pub fn matches(&self, value: &AttributeValue) -> bool {
        let cmp = |bound: &AttributeValue| value.compare(bound);
        match self {
            SortCondition::Eq(v) => cmp(v) == Some(Ordering::Equal),
            SortCondition::Lt(v) => cmp(v) == Some(Ordering::Less),
            SortCondition::Le(v) => matches!(cmp(v), Some(Ordering::Less | Ordering::Equal)),
            SortCondition::Gt(v) => cmp(v) == Some(Ordering::Greater),
            SortCondition::Ge(v) => matches!(cmp(v), Some(Ordering::Greater | Ordering::Equal)),
            SortCondition::Between(low, high) => {
                matches!(cmp(low), Some(Ordering::Greater | Ordering::Equal)) && matches!(cmp(high), Some(Ordering::Less | Ordering::Equal))
            }
            SortCondition::BeginsWith(prefix) => match (value, prefix) {
                (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                (AttributeValue::B(b), AttributeValue::B(p)) => b.starts_with(p),
                _ => false,
            },
        }
    }

    /// The values the condition compares with (for the key's type check).
    pub fn values(&self) -> Vec<&AttributeValue> {
        match self {
            SortCondition::Eq(v)
            | SortCondition::Lt(v)
            | SortCondition::Le(v)
            | SortCondition::Gt(v)
            | SortCondition::Ge(v)
            | SortCondition::BeginsWith(v) => vec![v],
            SortCondition::Between(a, b) => vec![a, b],
        }
    }
}

/// A key condition resolved against a key schema: the partition to read and the sort-key range
/// within it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyQuery {
    /// The partition key's value.
    pub partition: AttributeValue,
    /// The sort key's condition, if the expression has one.
    pub sort: Option<SortCondition>,
}

impl KeyQuery {
    /// DynamoDB's check that the values have the key attributes' types (from the table's
    /// `AttributeDefinitions`). Text: dynalite `actions/query.js`.
    pub fn check_types(&self, partition_type: ValueType, sort_type: Option<ValueType>) -> Result<(), ExprError> {
        let mismatch = self.partition.value_type() != partition_type
            || self.sort.as_ref().is_some_and(|s| s.values().iter().any(|v| Some(v.value_type()) != sort_type));
        if mismatch {
            return Err(ExprError::KeyTypeMismatch);
        }
        Ok(())
    }
}

/// A parsed `KeyConditionExpression`: one or two conditions, each on a top-level attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    conditions: Vec<(String, SortCondition)>,
}

impl KeyCondition {
    /// Parses and checks `text` as DynamoDB does (the condition grammar and its checks, then
    /// the key condition's shape). Marks the placeholders it uses.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<KeyCondition, ExprError> {
        let cond = parse_checked(text, ExpressionKind::KeyCondition, placeholders)?;
        let mut conditions = Vec::new();
        shape(&cond, &mut conditions).map_err(ExprError::KeyConditionShape)?;
        if conditions.len() > 2 {
            return Err(ExprError::KeyConditionShape(KeyShape::TooManyConditions));
        }
        Ok(KeyCondition { conditions })
    }

    /// The conditions, by attribute, in the order written.
    pub fn conditions(&self) -> &[(String, SortCondition)] {
        &self.conditions
    }

    /// Resolves the conditions against a key schema (a table's or an index's), with
    /// DynamoDB's refusals (dynalite `actions/query.js`).
    pub fn for_schema(&self, partition_key: &str, sort_key: Option<&str>) -> Result<KeyQuery, ExprError> {
        let find = |name: &str| self.conditions.iter().find(|(n, _)| n == name).map(|(_, c)| c);
        if sort_key.is_none() && self.conditions.len() > 1 {
            return Err(ExprError::KeyConditionNotSupported);
        }
        let partition = match find(partition_key) {
            None => return Err(ExprError::MissedKeyElement(partition_key.to_string())),
            Some(SortCondition::Eq(v)) => v.clone(),
            Some(_) => return Err(ExprError::KeyConditionNotSupported),
        };
        let sort = match sort_key {
            None => None,
            Some(sort_key) => match find(sort_key) {
                Some(condition) => Some(condition.clone()),
                None if self.conditions.len() > 1 => return Err(ExprError::MissedKeyElement(sort_key.to_string())),
                None => None,
            },
        };
        Ok(KeyQuery { partition, sort })
    }
}

/// dynalite `checkExpr`, in its order: the node's operator, then its operands.
fn shape(cond: &Cond, out: &mut Vec<(String, SortCondition)>) -> Result<(), KeyShape> {
    let operands: Vec<&Operand> = match cond {
        Cond::Paren(inner) => return shape(inner, out),
        Cond::And(a, b) => {
            shape(a, out)?;
            return shape(b, out);
        }
        Cond::Or(..) => return Err(KeyShape::InvalidOperator("OR".into())),
        Cond::Not(_) => return Err(KeyShape::InvalidOperator("NOT".into())),
        Cond::In(..) => return Err(KeyShape::InvalidOperator("IN".into())),
        Cond::Compare(CmpOp::Ne, ..) => return Err(KeyShape::InvalidOperator("<>".into())),
        Cond::Func(f) => {
            check_function(f)?;
            f.args.iter().collect()
        }
        Cond::Between(x, low, high) => {
            if x.raw_path().is_none() {
                return Err(KeyShape::KeyNotFirst("BETWEEN".into()));
            }
            vec![x, low, high]
        }
        Cond::Compare(_, a, b) => vec![a, b],
    };
    let mut key: Option<(String, usize)> = None;
    for (i, operand) in operands.iter().enumerate() {
        if let Some(path) = operand.raw_path() {
            if key.is_some() {
                return Err(KeyShape::MultipleAttributes);
            }
            let path = path.path();
            if path.0.len() > 1 {
                return Err(KeyShape::NestedAttribute);
            }
            key = Some((path.attribute().to_string(), i));
        } else if let Operand::Func(f) = operand.bare() {
            check_function(f)?;
            return Err(KeyShape::NestedOperation);
        }
    }
    let Some((name, at)) = key else { return Err(KeyShape::NoKeyAttribute) };
    if out.iter().any(|(n, _)| *n == name) {
        return Err(KeyShape::TwoConditionsOnKey);
    }
    let value = |i: usize| operands[i].value().cloned().expect("checked operands are values");
    let condition = match cond {
        Cond::Compare(op, ..) => {
            let other = value(1 - at);
            // `:v < k` is `k > :v`.
            let op = if at == 0 { *op } else { flip(*op) };
            match op {
                CmpOp::Eq => SortCondition::Eq(other),
                CmpOp::Lt => SortCondition::Lt(other),
                CmpOp::Le => SortCondition::Le(other),
                CmpOp::Gt => SortCondition::Gt(other),
                _ => SortCondition::Ge(other),
            }
        }
        Cond::Between(..) => SortCondition::Between(value(1), value(2)),
        _ => SortCondition::BeginsWith(value(1)),
    };
    debug_assert!(matches!(operands[at].raw_path().map(|p| &p.path().0[0]), Some(PathElement::Attr(_))));
    out.push((name, condition));
    Ok(())
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

fn check_function(f: &Func) -> Result<(), KeyShape> {
    match f.name.as_str() {
        "attribute_exists" | "attribute_not_exists" | "attribute_type" | "contains" => Err(KeyShape::InvalidOperator(f.name.clone())),
        "size" => Err(KeyShape::NestedOperation),
        _ => {
            if f.args.first().and_then(Operand::raw_path).is_none() {
                return Err(KeyShape::KeyNotFirst(f.name.clone()));
            }
            Ok(())
        }
    }
}
