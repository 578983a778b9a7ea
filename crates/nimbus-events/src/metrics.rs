//! What the event buses count for CloudWatch's `AWS/Events` namespace, handed to an
//! [`EventsMetrics`] observer (the binary's writes into the account's metric store), so the
//! buses know nothing of the store: events that matched rules, rules triggered, and target
//! invocations with their failures, by rule (with its bus when that is not the default one,
//! as AWS names them) and for the account where AWS publishes that too.

use crate::model::DEFAULT_BUS;

/// The `AWS/Events` metrics, by AWS's names (all counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsMetric {
    /// An event matched a rule: by rule, and once per event for the account.
    MatchedEvents,
    /// A rule matched an event (or its schedule fired).
    TriggeredRules,
    /// A target was invoked (handed its event), successfully or not: by rule and for the account.
    Invocations,
    /// A target invocation that failed for good.
    FailedInvocations,
}

impl EventsMetric {
    /// The metric's name in `AWS/Events`.
    pub fn name(self) -> &'static str {
        match self {
            EventsMetric::MatchedEvents => "MatchedEvents",
            EventsMetric::TriggeredRules => "TriggeredRules",
            EventsMetric::Invocations => "Invocations",
            EventsMetric::FailedInvocations => "FailedInvocations",
        }
    }

    /// The unit AWS publishes it in.
    pub fn unit(self) -> &'static str {
        "Count"
    }
}

/// Receives the event buses' datapoints; called on PutEvents' path, so it must be cheap
/// (no IO).
pub trait EventsMetrics: Send + Sync {
    /// One datapoint of `metric` with `dimensions` (none: the account's), at `timestamp_ms`.
    fn record(&self, metric: EventsMetric, dimensions: &[(&'static str, &str)], value: f64, timestamp_ms: i64);
}

/// A rule's dimensions as AWS names them: `RuleName` on the default bus, `EventBusName` and
/// `RuleName` on a custom one.
pub fn rule_dimensions<'a>(bus: &'a str, rule: &'a str) -> Vec<(&'static str, &'a str)> {
    if bus == DEFAULT_BUS {
        vec![("RuleName", rule)]
    } else {
        vec![("EventBusName", bus), ("RuleName", rule)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_bus_names_itself() {
        assert_eq!(rule_dimensions("default", "r"), vec![("RuleName", "r")]);
        assert_eq!(rule_dimensions("orders", "r"), vec![("EventBusName", "orders"), ("RuleName", "r")]);
    }
}
