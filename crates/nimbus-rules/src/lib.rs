//! AWS's rule language, once: the event patterns of EventBridge rules, the FilterCriteria of
//! Lambda's event source mappings and the filter policies of SNS subscriptions are one
//! language (Event Ruler's) spoken in three dialects. A [`Pattern`] is compiled once for a
//! [`Dialect`], which decides what the language allows there and how a refusal is worded (each
//! service's own messages), and is then matched against events: JSON documents
//! ([`Pattern::matches`]) or flat name/value sets such as SNS message attributes
//! ([`Pattern::matches_flat`]).
//!
//! Every field a pattern names must match (AND), any value listed for a field may (OR), `$or`
//! lists alternatives; a field absent from the event matches only `{"exists": false}`.

mod compile;
mod eval;
mod matcher;

use std::fmt;

use serde_json::Value;

pub use matcher::Scalar;

/// Where a rule is written, which decides what it may say and how errors are worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An EventBridge event pattern (PutRule, TestEventPattern). Errors read
    /// `Event pattern is not valid. Reason: …`.
    EventPattern,
    /// A pattern of a Lambda event source mapping's FilterCriteria: EventBridge's language,
    /// refused as `Invalid filter pattern definition. Event pattern is not valid. Reason: …`.
    FilterCriteria,
    /// An SNS subscription filter policy with its FilterPolicyScope: no wildcards, a narrower
    /// `anything-but`, at most 5 keys and 150 combinations, nested keys only on message bodies,
    /// objects inside arrays matched key by key. Errors read `FilterPolicy: …` (the caller
    /// adds `Invalid parameter: …`).
    FilterPolicy(Scope),
}

/// What an SNS filter policy looks at (the subscription's `FilterPolicyScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "MessageAttributes" => Some(Scope::MessageAttributes),
            "MessageBody" => Some(Scope::MessageBody),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

/// A rule that is not valid in its dialect, worded as that dialect's service words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    message: String,
}

impl RuleError {
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    dialect: Dialect,
    root: eval::Node,
}

impl Pattern {
    /// Compiles `text` as a rule of `dialect`, or says why it is not one.
    pub fn parse(dialect: Dialect, text: &str) -> Result<Pattern, RuleError> {
        let reason = match compile::compile(dialect, text) {
            Ok(root) => return Ok(Pattern { dialect, root }),
            Err(reason) => reason,
        };
        let message = match dialect {
            Dialect::EventPattern => format!("Event pattern is not valid. Reason: {reason}"),
            Dialect::FilterCriteria => format!("Invalid filter pattern definition. Event pattern is not valid. Reason: {reason}"),
            Dialect::FilterPolicy(_) => reason,
        };
        Err(RuleError { message })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the rule names nothing (an SNS policy `{}`), so that everything matches.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Whether a JSON document (a whole event, a record, a message body) matches.
    pub fn matches(&self, doc: &Value) -> bool {
        let arrays = match self.dialect {
            Dialect::EventPattern | Dialect::FilterCriteria => eval::Arrays::Consistent,
            Dialect::FilterPolicy(_) => eval::Arrays::Flattened,
        };
        self.root.matches_json(&[doc], arrays)
    }

    /// Whether a flat set of named values matches (SNS message attributes): `lookup` gives a
    /// name's values, `None` when the name is absent; a present name may have no value to
    /// match (a binary attribute), which only `{"exists": true}` sees.
    pub fn matches_flat(&self, lookup: &dyn Fn(&str) -> Option<Vec<Scalar>>) -> bool {
        self.root.matches_flat(lookup)
    }
}

#[cfg(test)]
mod tests;
