//! DynamoDB's expression language, parsed once per request and evaluated per item:
//! condition and filter expressions ([`Condition`]), key conditions ([`KeyCondition`]), update
//! expressions ([`Update`]) and projections ([`Projection`]), with `ExpressionAttributeNames`
//! and `ExpressionAttributeValues` substituted at parse time ([`Placeholders`]).
//!
//! Errors are [`ExprError`]s whose text is AWS's. Where a text comes from is noted at its
//! variant: "dynalite" is mhart/dynalite (`db/*.pegjs`, `validations/*.js`, `test/*.js`),
//! an emulator whose messages its author checked against DynamoDB; "moto" is getmoto/moto
//! (`moto/dynamodb/exceptions.py` and its AWS-verified tests); "dynoxide" is nubo-db/dynoxide,
//! whose authors measured texts against eu-west-2; "issue" quotes a real AWS answer pasted in
//! a GitHub issue.

mod condition;
mod key;
mod lexer;
mod path;
mod projection;
mod update;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::value::{AttributeValue, ValueError, WireValue};

pub use condition::Condition;
pub use key::{KeyCondition, KeyQuery, SortCondition};
pub use path::{Path, PathElement};
pub use projection::Projection;
pub use update::{Update, UpdateError};

/// Longest expression DynamoDB accepts, in bytes (developer guide, "Expression parameters":
/// "The maximum length of any expression string is 4 KB").
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// Most operands an `IN` list may have (developer guide, "Comparison operator and function
/// reference": "up to 100 values").
pub const MAX_IN_OPERANDS: usize = 100;

/// Most operators and functions one expression may use (developer guide, "Expression
/// parameters": 300 for an update expression; applied to every expression here).
pub const MAX_OPERATORS: usize = 300;

/// Which request parameter an expression came in; AWS's error texts start with its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpressionKind {
    /// `ConditionExpression` (PutItem, UpdateItem, DeleteItem, transactions).
    Condition,
    /// `FilterExpression` (Query, Scan).
    Filter,
    /// `KeyConditionExpression` (Query).
    KeyCondition,
    /// `UpdateExpression` (UpdateItem).
    Update,
    /// `ProjectionExpression` (GetItem, Query, Scan, BatchGetItem, TransactGetItems).
    Projection,
}

impl fmt::Display for ExpressionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Update => "UpdateExpression",
            ExpressionKind::Projection => "ProjectionExpression",
        })
    }
}

/// A refused expression or expression parameter: the text of AWS's `ValidationException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// `Invalid <kind>: <reason>`. Prefix: dynalite `validations/index.js`
    /// `validateExpressions`; issue aws/aws-cdk#7591 quotes AWS's.
    #[error("Invalid {kind}: {reason}")]
    Invalid {
        /// Which expression.
        kind: ExpressionKind,
        /// What is wrong with it.
        reason: Reason,
    },
    /// A `#name` nobody used. Text: dynalite `validateExpressions`; keys listed sorted here.
    #[error("Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}", .0.join(", "))]
    UnusedNames(Vec<String>),
    /// A `:value` nobody used. Text: dynalite `validateExpressions`.
    #[error("Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}", .0.join(", "))]
    UnusedValues(Vec<String>),
    /// `ExpressionAttributeNames: {}`. Text: dynalite `validateExpressions`.
    #[error("ExpressionAttributeNames must not be empty")]
    EmptyNames,
    /// `ExpressionAttributeValues: {}`. Text: dynalite `validateExpressions`.
    #[error("ExpressionAttributeValues must not be empty")]
    EmptyValues,
    /// A names key not of the form `#[0-9a-zA-Z_]+`. Text: dynalite `validateExpressions`.
    #[error("ExpressionAttributeNames contains invalid key: Syntax error; key: \"{0}\"")]
    InvalidNameKey(String),
    /// A values key not of the form `:[0-9a-zA-Z_]+`. Text: dynalite `validateExpressions`.
    #[error("ExpressionAttributeValues contains invalid key: Syntax error; key: \"{0}\"")]
    InvalidValueKey(String),
    /// A value in `ExpressionAttributeValues` that fails the value checks. Text: dynalite
    /// `validateExpressions`.
    #[error("ExpressionAttributeValues contains invalid value: {error} for key {key}")]
    InvalidValue {
        /// The value's check.
        error: ValueError,
        /// Its `:key`.
        key: String,
    },
    /// A key condition's structure (not prefixed with the parameter's name). Texts: dynalite
    /// `validations/index.js` `checkExpr` and `test/query.js`.
    #[error("{0}")]
    KeyConditionShape(KeyShape),
    /// The key condition does not name the table's (or index's) partition key. Text: dynalite
    /// `actions/query.js`, moto `key_condition_expression.py`.
    #[error("Query condition missed key schema element: {0}")]
    MissedKeyElement(String),
    /// A key condition on non-key attributes, or a non-equality on the partition key. Text:
    /// dynalite `actions/query.js`, moto `key_condition_expression.py`.
    #[error("Query key condition not supported")]
    KeyConditionNotSupported,
    /// Key condition values of another type than the key attribute's. Text: dynalite
    /// `actions/query.js`.
    #[error("One or more parameter values were invalid: Condition parameter type does not match schema type")]
    KeyTypeMismatch,
    /// An update that writes a key attribute. Text: moto `exceptions.py`
    /// `UpdateHashRangeKeyException`.
    #[error("One or more parameter values were invalid: Cannot update attribute {0}. This attribute is part of the key")]
    UpdatesKey(String),
}

/// What is wrong with an expression, after `Invalid <kind>: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The parser stopped at `token` (`<EOF>` at the end); `near` is the source from the token
    /// before it to the token after it. Texts and the near rule: issues aws/aws-cdk#7591
    /// (`token: ":", near: "hits : incr"`), getndazn/dazn-lambda-powertools#242 (`token: "#",
    /// near: ", #,"`), nubo-db/dynoxide#12 and #16 (`token: "INVALID", near: "INVALID
    /// SYNTAX"`, `token: "!", near: "!!"`), moto `test_dynamodb_exceptions.py`
    /// (`token: "<EOF>", near: ","`).
    #[error("Syntax error; token: \"{token}\", near: \"{near}\"")]
    Syntax {
        /// The offending token's text.
        token: String,
        /// The source around it.
        near: String,
    },
    /// An empty expression. Text: dynalite `validations/index.js` `parse`.
    #[error("The expression can not be empty;")]
    Empty,
    /// Over [`MAX_EXPRESSION_BYTES`]. Text: dynoxide `src/expressions/mod.rs` ("confirmed
    /// against real DynamoDB (eu-west-2)").
    #[error("Expression size has exceeded the maximum allowed size; expression size: {0}")]
    TooLong(usize),
    /// A reserved word used as an attribute name. Text: dynalite `db/*.pegjs`, moto.
    #[error("Attribute name is a reserved keyword; reserved keyword: {0}")]
    ReservedKeyword(String),
    /// A `#name` missing from `ExpressionAttributeNames`. Text: dynalite; issue
    /// neoeinstein/modyne#3 quotes AWS's.
    #[error("An expression attribute name used in the document path is not defined; attribute name: {0}")]
    UndefinedName(String),
    /// A `:value` missing from `ExpressionAttributeValues`. Text: dynalite; dynoxide#13.
    #[error("An expression attribute value used in expression is not defined; attribute value: {0}")]
    UndefinedValue(String),
    /// An unknown function. Text: dynalite `conditionParser.pegjs` `checkFunction`.
    #[error("Invalid function name; function: {0}")]
    UnknownFunction(String),
    /// A function given the wrong number of operands. Text: dynalite `checkFunction`.
    #[error("Incorrect number of operands for operator or function; operator or function: {function}, number of operands: {count}")]
    OperandCount {
        /// The function.
        function: String,
        /// How many it was given.
        count: usize,
    },
    /// A literal operand of the wrong type for a function or arithmetic operator. Text:
    /// dynalite `checkFunction`.
    #[error("Incorrect operand type for operator or function; operator or function: {function}, operand type: {operand}")]
    OperandType {
        /// The function or operator.
        function: String,
        /// The operand's type name.
        operand: String,
    },
    /// An `ADD`/`DELETE` value of the wrong type. Text: dynalite `updateParser.pegjs`
    /// `checkOperator` (`operator: ADD, operand type: STRING`).
    #[error("Incorrect operand type for operator or function; operator: {operator}, operand type: {operand}")]
    ActionOperandType {
        /// `ADD` or `DELETE`.
        operator: &'static str,
        /// `STRING`, `NUMBER`, `BINARY`, `NULL`, `BOOLEAN`, `LIST`, `MAP`.
        operand: &'static str,
    },
    /// A function that needs a path given a value. Text: dynalite `checkFunction`.
    #[error("Operator or function requires a document path; operator or function: {0}")]
    RequiresPath(String),
    /// `attribute_type` with a type name that is not one. Text: dynalite `checkFunction`.
    #[error("Invalid attribute type name found; type: {0}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}")]
    InvalidTypeName(String),
    /// A boolean function used as an operand, or `size` used as a condition. Text: dynalite
    /// `checkMisusedFunction`.
    #[error("The function is not allowed to be used this way in an expression; function: {0}")]
    MisusedFunction(String),
    /// `a = a`, `begins_with(a, a)`. Text: dynalite `checkDistinct`.
    #[error("The first operand must be distinct from the remaining operands for this operator or function; operator: {operator}, first operand: {operand}")]
    NotDistinct {
        /// The operator or function.
        operator: String,
        /// The path, as `[a, b]`.
        operand: String,
    },
    /// `BETWEEN` bounds of different types. Text: dynalite `checkBetweenArgs`, `test/query.js`.
    #[error("The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {lower}, upper bound operand: AttributeValue: {upper}")]
    BetweenTypes {
        /// `{N:1}`.
        lower: String,
        /// `{S:a}`.
        upper: String,
    },
    /// `BETWEEN` with the lower bound above the upper. Text: dynalite `checkBetweenArgs`.
    #[error("The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {lower}, upper bound operand: AttributeValue: {upper}")]
    BetweenOrder {
        /// `{N:2}`.
        lower: String,
        /// `{N:1}`.
        upper: String,
    },
    /// `((a = :v))`. Text: dynalite `redundantParensError`, moto `comparisons.py`.
    #[error("The expression has redundant parentheses;")]
    RedundantParentheses,
    /// A clause written twice. Text: dynalite `updateParser.pegjs` `checkSection`, moto
    /// `TooManyClauses`.
    #[error("The \"{0}\" section can only be used once in an update expression;")]
    SectionTwice(&'static str),
    /// One path inside (or equal to) another. Text: dynalite `checkPaths`, moto
    /// `DuplicateUpdateExpression`.
    #[error("Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {0}, path two: {1}")]
    PathsOverlap(String, String),
    /// Two paths that use one level as both map and list. Text: dynalite `checkPaths`.
    #[error("Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {0}, path two: {1}")]
    PathsConflict(String, String),
    /// More than [`MAX_IN_OPERANDS`] in an `IN` list. Text: guessed (no AWS answer found).
    #[error("The IN operator is provided with too many operands; number of operands: {0}")]
    TooManyInOperands(usize),
    /// More than [`MAX_OPERATORS`] operators and functions. Text: guessed.
    #[error("The expression contains too many operators; operator count: {0}")]
    TooManyOperators(usize),
}

/// A key condition's shape errors (Query), worded without the parameter's prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyShape {
    /// `OR`, `NOT`, `IN`, `<>`, `attribute_exists`… Text: dynalite `checkExpr`.
    #[error("Invalid operator used in KeyConditionExpression: {0}")]
    InvalidOperator(String),
    /// `size(…)` in a key condition. Text: dynalite `checkExpr`.
    #[error("KeyConditionExpressions cannot contain nested operations")]
    NestedOperation,
    /// `:a BETWEEN k AND …`, `begins_with(:a, k)`. Text: dynalite `checkExpr`.
    #[error("Invalid condition in KeyConditionExpression: {0} operator must have the key attribute as its first operand")]
    KeyNotFirst(String),
    /// `a = b`. Text: dynalite `checkExpr`.
    #[error("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")]
    MultipleAttributes,
    /// `a.b = :v`. Text: dynalite `checkExpr`.
    #[error("KeyConditionExpressions cannot have conditions on nested attributes")]
    NestedAttribute,
    /// `:a = :b`. Text: dynalite `checkExpr`.
    #[error("Invalid condition in KeyConditionExpression: No key attribute specified")]
    NoKeyAttribute,
    /// `k > :a AND k < :b`. Text: dynalite `checkExpr`.
    #[error("KeyConditionExpressions must only contain one condition per key")]
    TwoConditionsOnKey,
    /// More than two conditions. Text: dynalite `validations/query.js`.
    #[error("Conditions can be of length 1 or 2 only")]
    TooManyConditions,
}

/// A request's `ExpressionAttributeNames` and `ExpressionAttributeValues`, shared by the
/// request's expressions: parsing one marks what it used; [`Placeholders::check_unused`] then
/// refuses what none used, as DynamoDB does after parsing all of a request's expressions.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

fn valid_key(key: &str, sigil: char) -> bool {
    key.len() > 1 && key.starts_with(sigil) && key[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Placeholders {
    /// No names and no values.
    pub fn none() -> Placeholders {
        Placeholders::default()
    }

    /// Checks the parameters as DynamoDB does before parsing: present maps non-empty, keys
    /// `#name`/`:value` shaped.
    pub fn new(
        names: Option<BTreeMap<String, String>>,
        values: Option<BTreeMap<String, AttributeValue>>,
    ) -> Result<Placeholders, ExprError> {
        let names = match names {
            Some(names) if names.is_empty() => return Err(ExprError::EmptyNames),
            Some(names) => names,
            None => BTreeMap::new(),
        };
        if let Some(key) = names.keys().find(|k| !valid_key(k, '#')) {
            return Err(ExprError::InvalidNameKey(key.clone()));
        }
        let values = match values {
            Some(values) if values.is_empty() => return Err(ExprError::EmptyValues),
            Some(values) => values,
            None => BTreeMap::new(),
        };
        if let Some(key) = values.keys().find(|k| !valid_key(k, ':')) {
            return Err(ExprError::InvalidValueKey(key.clone()));
        }
        Ok(Placeholders { names, values, ..Placeholders::default() })
    }

    /// As [`Placeholders::new`], with values still in their wire form: a value that fails its
    /// checks is `ExpressionAttributeValues contains invalid value: … for key :k`.
    pub fn from_wire(
        names: Option<BTreeMap<String, String>>,
        values: Option<BTreeMap<String, WireValue>>,
    ) -> Result<Placeholders, ExprError> {
        // Names first, then the values' keys, then the values themselves: DynamoDB's order.
        let names = Placeholders::new(names, None)?.names;
        let values = match values {
            None => None,
            Some(values) if values.is_empty() => return Err(ExprError::EmptyValues),
            Some(values) => {
                if let Some(key) = values.keys().find(|k| !valid_key(k, ':')) {
                    return Err(ExprError::InvalidValueKey(key.clone()));
                }
                let mut checked = BTreeMap::new();
                for (key, wire) in values {
                    let value = AttributeValue::try_from(wire).map_err(|error| ExprError::InvalidValue { error, key: key.clone() })?;
                    checked.insert(key, value);
                }
                Some(checked)
            }
        };
        let names = if names.is_empty() { None } else { Some(names) };
        Placeholders::new(names, values)
    }

    /// The first name no parsed expression used, then the first value: DynamoDB's
    /// `Value provided in ExpressionAttribute… unused in expressions` (all unused keys listed).
    pub fn check_unused(&self) -> Result<(), ExprError> {
        let unused: Vec<String> = self.names.keys().filter(|k| !self.used_names.contains(*k)).cloned().collect();
        if !unused.is_empty() {
            return Err(ExprError::UnusedNames(unused));
        }
        let unused: Vec<String> = self.values.keys().filter(|k| !self.used_values.contains(*k)).cloned().collect();
        if !unused.is_empty() {
            return Err(ExprError::UnusedValues(unused));
        }
        Ok(())
    }

    fn name(&self, key: &str) -> Option<&String> {
        self.names.get(key)
    }

    fn value(&self, key: &str) -> Option<&AttributeValue> {
        self.values.get(key)
    }

    fn mark_name(&mut self, key: &str) {
        self.used_names.insert(key.to_string());
    }

    fn mark_value(&mut self, key: &str) {
        self.used_values.insert(key.to_string());
    }
}

/// The checks every expression gets before its grammar: empty, too long.
fn check_text(kind: ExpressionKind, text: &str) -> Result<(), ExprError> {
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprError::Invalid { kind, reason: Reason::TooLong(text.len()) });
    }
    if text.is_empty() {
        return Err(ExprError::Invalid { kind, reason: Reason::Empty });
    }
    Ok(())
}

/// Semantic errors found while checking a parsed expression, kept by rank: DynamoDB reports
/// the highest-ranked kind first (dynalite's `checkErrors` order), the first found of a kind.
#[derive(Default)]
struct Findings {
    found: BTreeMap<u8, Reason>,
}

impl Findings {
    fn add(&mut self, rank: u8, reason: Reason) {
        self.found.entry(rank).or_insert(reason);
    }

    fn first(mut self) -> Option<Reason> {
        self.found.pop_first().map(|(_, r)| r)
    }
}
