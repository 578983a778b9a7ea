//! CloudWatch Logs metric filters: a group's filters turn the events that reach it into
//! CloudWatch datapoints (`metricTransformations`: a name and namespace, a value that is a
//! number or a field the pattern extracts, a default for events that do not match, dimensions
//! from fields, a unit). Which groups have filters is looked up under a read lock for every
//! line (emitted or put), as for subscription filters; the datapoints go to the account's
//! [`MetricValues`] observer (its CloudWatch metric store).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::FilterPattern;

/// AWS's limit on the metric filters of one log group.
pub const MAX_METRIC_FILTERS: usize = 100;

/// How a metric filter's matches become a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformation {
    pub metric_name: String,
    pub metric_namespace: String,
    /// A number, or `$.field` (JSON patterns) / `$name` (space-delimited patterns).
    pub metric_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One metric filter, as kept in its group's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilter {
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformation>,
    pub creation_time: i64,
}

/// One datapoint a metric filter made.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDatapoint {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    /// AWS's unit name (`None` when the filter gives none).
    pub unit: String,
    pub timestamp: i64,
    pub value: f64,
}

/// Sees the datapoints metric filters make, as events reach their groups; called on the
/// emitting thread (or the caller of PutLogEvents), so it must be quick.
pub type MetricValues = Arc<dyn Fn(Vec<MetricDatapoint>) + Send + Sync>;

/// Why a transformation does not fit its filter's pattern (AWS's wording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformationError {
    /// The value is neither a number nor a field the pattern extracts.
    InvalidValue,
    /// Dimensions need a pattern that extracts fields, and fields it has.
    Dimensions,
}

impl std::fmt::Display for TransformationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransformationError::InvalidValue => f.write_str("Invalid metric value"),
            TransformationError::Dimensions => f.write_str("The specified filter pattern does not support dimensions"),
        }
    }
}

/// A transformation's value, ready to use.
#[derive(Debug, Clone)]
enum Value {
    Number(f64),
    Field(String),
}

impl MetricTransformation {
    /// Checks the value and dimensions against the (parsed) pattern they take fields from.
    pub fn check(&self, pattern: &FilterPattern) -> Result<(), TransformationError> {
        self.value(pattern)?;
        for selector in self.dimensions.values() {
            if !pattern.has_selector(selector) {
                return Err(TransformationError::Dimensions);
            }
        }
        Ok(())
    }

    fn value(&self, pattern: &FilterPattern) -> Result<Value, TransformationError> {
        let v = self.metric_value.trim();
        if let Ok(n) = v.parse::<f64>() {
            if n.is_finite() {
                return Ok(Value::Number(n));
            }
        }
        if pattern.has_selector(v) {
            return Ok(Value::Field(v.to_string()));
        }
        Err(TransformationError::InvalidValue)
    }
}

struct Active {
    pattern: FilterPattern,
    transformations: Vec<(MetricTransformation, Value)>,
}

impl Active {
    fn datapoints(&self, timestamp: i64, message: &str, out: &mut Vec<MetricDatapoint>) {
        let matched = self.pattern.evaluate(message);
        for (t, value) in &self.transformations {
            let point = |value: f64, dimensions: Vec<(String, String)>| MetricDatapoint {
                namespace: t.metric_namespace.clone(),
                name: t.metric_name.clone(),
                dimensions,
                unit: t.unit.clone().unwrap_or_else(|| "None".into()),
                timestamp,
                value,
            };
            let Some(m) = &matched else {
                // An event that does not match counts as the default, if there is one.
                if let Some(d) = t.default_value {
                    out.push(point(d, Vec::new()));
                }
                continue;
            };
            let value = match value {
                Value::Number(n) => Some(*n),
                Value::Field(f) => m.value(f).and_then(|v| v.trim().parse::<f64>().ok()).filter(|n| n.is_finite()),
            };
            // A field that is missing or not a number makes no datapoint (nor do dimensions
            // without a value).
            let Some(value) = value else { continue };
            let dimensions: Option<Vec<(String, String)>> =
                t.dimensions.iter().map(|(k, sel)| m.value(sel).filter(|v| !v.is_empty()).map(|v| (k.clone(), v))).collect();
            if let Some(dimensions) = dimensions {
                out.push(point(value, dimensions));
            }
        }
    }
}

/// The metric filters of every group that has some, and where their datapoints go.
#[derive(Default)]
pub(crate) struct MetricFilters {
    by_group: crate::ByGroup<Active>,
    out: RwLock<Option<MetricValues>>,
}

impl MetricFilters {
    /// The groups that have filters.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.by_group.groups()
    }

    /// Sets (or, with none, forgets) a group's filters.
    pub(crate) fn set(&self, group: &str, filters: &[MetricFilter]) {
        let active: Vec<Active> = filters
            .iter()
            .filter_map(|f| {
                let pattern = FilterPattern::parse(&f.filter_pattern).ok()?;
                let transformations = f.metric_transformations.iter().filter_map(|t| Some((t.clone(), t.value(&pattern).ok()?))).collect();
                Some(Active { pattern, transformations })
            })
            .collect();
        self.by_group.set(group, active);
    }

    /// Starts handing datapoints to `observe`.
    pub(crate) fn start(&self, observe: MetricValues) {
        *self.out.write().unwrap_or_else(|p| p.into_inner()) = Some(observe);
    }

    /// Offers events that reached `group` to its filters.
    pub(crate) fn offer<'m>(&self, group: &str, events: impl IntoIterator<Item = (i64, &'m str)>) {
        let Some(filters) = self.by_group.get(group) else { return };
        let Some(observe) = self.out.read().unwrap_or_else(|p| p.into_inner()).clone() else { return };
        let mut points = Vec::new();
        for (timestamp, message) in events {
            for f in filters.iter() {
                f.datapoints(timestamp, message, &mut points);
            }
        }
        if !points.is_empty() {
            observe(points);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn transformation(value: &str, default: Option<f64>, dimensions: &[(&str, &str)]) -> MetricTransformation {
        MetricTransformation {
            metric_name: "m".into(),
            metric_namespace: "ns".into(),
            metric_value: value.into(),
            default_value: default,
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            unit: None,
        }
    }

    #[test]
    fn values_and_dimensions_fit_the_pattern() {
        let json = FilterPattern::parse("{ $.latency > 0 }").unwrap();
        let fields = FilterPattern::parse("[ip, status, bytes]").unwrap();
        let terms = FilterPattern::parse("ERROR").unwrap();
        let cases: Vec<(&FilterPattern, MetricTransformation, Result<(), TransformationError>)> = vec![
            (&terms, transformation("1", None, &[]), Ok(())),
            (&terms, transformation("2.5", Some(0.0), &[]), Ok(())),
            (&terms, transformation("$.latency", None, &[]), Err(TransformationError::InvalidValue)),
            (&terms, transformation("1", None, &[("a", "$.a")]), Err(TransformationError::Dimensions)),
            (&json, transformation("$.latency", None, &[("Server", "$.server")]), Ok(())),
            (&json, transformation("$latency", None, &[]), Err(TransformationError::InvalidValue)),
            (&fields, transformation("$bytes", None, &[("Status", "$status")]), Ok(())),
            (&fields, transformation("$size", None, &[]), Err(TransformationError::InvalidValue)),
            (&fields, transformation("1", None, &[("Host", "$host")]), Err(TransformationError::Dimensions)),
            (&terms, transformation("one", None, &[]), Err(TransformationError::InvalidValue)),
        ];
        for (pattern, t, want) in cases {
            assert_eq!(t.check(pattern), want, "{t:?}");
        }
    }

    #[test]
    fn events_become_datapoints() {
        let filters = MetricFilters::default();
        let filter = |name: &str, pattern: &str, t: MetricTransformation| MetricFilter {
            filter_name: name.into(),
            filter_pattern: pattern.into(),
            metric_transformations: vec![t],
            creation_time: 1,
        };
        filters.set(
            "g",
            &[
                filter("errors", "ERROR", transformation("1", Some(0.0), &[])),
                filter("latency", "{ $.latency = * }", transformation("$.latency", None, &[("Server", "$.server")])),
                filter("bytes", "[ip, status = 2*, bytes]", transformation("$bytes", None, &[("Status", "$status")])),
            ],
        );
        let got: Arc<Mutex<Vec<MetricDatapoint>>> = Default::default();
        let sink = got.clone();
        filters.start(Arc::new(move |points| sink.lock().unwrap().extend(points)));
        filters.offer(
            "g",
            [
                (1, "an ERROR"),
                (2, r#"{"latency": 12.5, "server": "a"}"#),
                (3, r#"{"latency": "slow", "server": "a"}"#),
                (4, r#"{"latency": 3}"#),
                (5, "1.2.3.4 200 512"),
                (6, "1.2.3.4 404 512"),
            ],
        );
        filters.offer("other", [(7, "ERROR elsewhere")]);
        /// (timestamp, value, dimensions)
        type Point = (i64, f64, Vec<(String, String)>);
        let summary: Vec<Point> = got.lock().unwrap().iter().map(|p| (p.timestamp, p.value, p.dimensions.clone())).collect();
        let dim = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            summary,
            vec![
                (1, 1.0, vec![]),
                (2, 0.0, vec![]),
                (2, 12.5, dim("Server", "a")),
                (3, 0.0, vec![]),
                (4, 0.0, vec![]),
                (5, 0.0, vec![]),
                (5, 512.0, dim("Status", "200")),
                (6, 0.0, vec![]),
            ]
        );
        assert!(got.lock().unwrap().iter().all(|p| p.unit == "None" && p.namespace == "ns"));
        filters.set("g", &[]);
        filters.offer("g", [(8, "ERROR")]);
        assert_eq!(got.lock().unwrap().len(), 8);
    }
}
