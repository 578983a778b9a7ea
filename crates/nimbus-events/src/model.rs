//! The event service's typed inputs and outputs: what the API edge parses requests into and
//! renders responses from, and (for rules, targets and buses) what is stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The bus every account has, and the one rules and events use when none is named.
pub const DEFAULT_BUS: &str = "default";

/// PutRule's input. Absent fields of an existing rule are cleared, as AWS does.
#[derive(Debug, Clone, Default)]
pub struct PutRule {
    pub name: String,
    /// A bus name or ARN; `None` is the default bus.
    pub event_bus: Option<String>,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    /// `ENABLED` (the default), `DISABLED` or `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`.
    pub state: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// A rule as stored and described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub name: String,
    pub arn: String,
    pub event_bus: String,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    /// The account that made the rule.
    pub created_by: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl RuleInfo {
    /// Whether the rule matches events and fires on its schedule.
    pub fn enabled(&self) -> bool {
        self.state != "DISABLED"
    }
}

/// An `InputTransformer` as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTransformerSpec {
    pub input_paths_map: BTreeMap<String, String>,
    pub input_template: String,
}

/// A target as given to PutTargets and returned by ListTargetsByRule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    pub id: String,
    pub arn: String,
    pub role_arn: Option<String>,
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformerSpec>,
    /// Every other parameter (`SqsParameters`, `RetryPolicy`, `DeadLetterConfig`, …): stored
    /// and returned as given; they do not change delivery.
    #[serde(default)]
    pub other: Map<String, Value>,
}

impl TargetSpec {
    pub fn new(id: impl Into<String>, arn: impl Into<String>) -> TargetSpec {
        TargetSpec {
            id: id.into(),
            arn: arn.into(),
            role_arn: None,
            input: None,
            input_path: None,
            input_transformer: None,
            other: Map::new(),
        }
    }

    /// Only Lambda functions are delivered to; other targets are stored and listed.
    pub fn is_lambda(&self) -> bool {
        self.arn.split(':').nth(2) == Some("lambda")
    }
}

/// A target PutTargets or RemoveTargets could not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub target_id: String,
    pub error_code: String,
    pub error_message: String,
}

/// One entry of PutEvents.
#[derive(Debug, Clone, Default)]
pub struct PutEventsEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    /// A JSON object, as text.
    pub detail: Option<String>,
    pub resources: Vec<String>,
    /// Milliseconds since the epoch; now when absent.
    pub time_ms: Option<i64>,
    pub event_bus: Option<String>,
}

/// What PutEvents answers for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutEventsResult {
    Accepted { event_id: String },
    Failed { error_code: String, error_message: String },
}

/// An event bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// One page of a listing; `next_token` asks for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}
