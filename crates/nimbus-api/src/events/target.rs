//! EventBridge's half of the authorization table: each call's IAM action and resource, as the
//! Service Authorization Reference lists them for Amazon EventBridge. Rules are
//! `rule/<name>` on the default bus and `rule/<bus>/<name>` on others; PutEvents acts on each
//! bus its entries name; the listings and TestEventPattern act on no one resource.

use super::*;
use crate::authz::{Scope, Target};

const DEFAULT_BUS: &str = "default";

/// The bus `EventBusName` names (a name or an ARN; the default bus when absent): its name and
/// ARN.
fn bus(scope: &Scope<'_>, name: Option<&str>) -> (String, String) {
    match name.filter(|n| !n.is_empty()) {
        Some(arn) if arn.starts_with("arn:") => {
            let name = arn.split_once(":event-bus/").map_or(arn, |(_, n)| n);
            (name.to_string(), arn.to_string())
        }
        name => {
            let name = name.unwrap_or(DEFAULT_BUS);
            (name.to_string(), format!("arn:aws:events:{}:{}:event-bus/{name}", scope.region, scope.account))
        }
    }
}

/// `arn:aws:events:<region>:<account>:rule/[<bus>/]<name>`, in the bus's region and account.
fn rule_arn(scope: &Scope<'_>, bus_name: Option<&str>, rule: &str) -> String {
    let (bus, bus_arn) = bus(scope, bus_name);
    let prefix = bus_arn.split_once(":event-bus/").map_or("", |(p, _)| p);
    if bus == DEFAULT_BUS {
        format!("{prefix}:rule/{rule}")
    } else {
        format!("{prefix}:rule/{bus}/{rule}")
    }
}

impl EventsRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use EventsCall::*;
        let rule = |action, r: &NamedRule| Target::on(action, rule_arn(scope, r.event_bus_name.as_deref(), &r.name()));
        Some(match self.call.as_ref().ok()? {
            PutRule(i) => Target::on("events:PutRule", rule_arn(scope, i.event_bus_name.as_deref(), &i.name))
                .with_tags(i.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
            DescribeRule(i) => rule("events:DescribeRule", i),
            EnableRule(i) => rule("events:EnableRule", i),
            DisableRule(i) => rule("events:DisableRule", i),
            DeleteRule(i) => rule("events:DeleteRule", i),
            ListRules(_) => Target::any("events:ListRules"),
            PutTargets(i) => Target::on("events:PutTargets", rule_arn(scope, i.event_bus_name.as_deref(), &i.rule))
                .with_values("events:TargetArn", i.targets.iter().map(|t| t.arn.clone()).collect()),
            RemoveTargets(i) => Target::on("events:RemoveTargets", rule_arn(scope, i.event_bus_name.as_deref(), &i.rule)),
            ListTargetsByRule(i) => {
                Target::on("events:ListTargetsByRule", rule_arn(scope, i.event_bus_name.as_deref(), i.rule.as_deref().unwrap_or_default()))
            }
            ListRuleNamesByTarget(_) => Target::any("events:ListRuleNamesByTarget"),
            PutEvents(i) => {
                let mut buses: Vec<String> = Vec::new();
                for e in &i.entries {
                    let (_, arn) = bus(scope, e.event_bus_name.as_deref());
                    if !buses.contains(&arn) {
                        buses.push(arn);
                    }
                }
                let mut buses = buses.into_iter();
                let first = buses.next().unwrap_or_else(|| bus(scope, None).1);
                let values = |f: fn(&PutEventsRequestEntry) -> Option<&String>| {
                    let mut v: Vec<String> = i.entries.iter().filter_map(f).cloned().collect();
                    v.sort();
                    v.dedup();
                    v
                };
                let t = Target::on("events:PutEvents", first)
                    .with_values("events:source", values(|e| e.source.as_ref()))
                    .with_values("events:detail-type", values(|e| e.detail_type.as_ref()));
                buses.fold(t, |t, arn| t.and("events:PutEvents", arn))
            }
            TestEventPattern(_) => Target::any("events:TestEventPattern"),
            CreateEventBus(i) => Target::on("events:CreateEventBus", bus(scope, Some(&i.name)).1),
            DeleteEventBus(i) => Target::on("events:DeleteEventBus", bus(scope, Some(&i.name())).1),
            DescribeEventBus(i) => Target::on("events:DescribeEventBus", bus(scope, i.name.as_deref()).1),
            ListEventBuses(_) => Target::any("events:ListEventBuses"),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, context, json, target};

    const R: &str = "arn:aws:events:us-east-1:123456789012:rule/nightly";
    const R_ORDERS: &str = "arn:aws:events:us-east-1:123456789012:rule/orders/nightly";
    const DEFAULT: &str = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    const ORDERS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/orders";

    #[test]
    fn actions_and_resources() {
        let e = |op: &str, body: &str| json(&format!("AWSEvents.{op}"), body);
        check(vec![
            (e("PutRule", r#"{"Name":"nightly","ScheduleExpression":"rate(1 day)"}"#), "events:PutRule", R),
            (e("PutRule", r#"{"Name":"nightly","EventBusName":"orders","EventPattern":"{}"}"#), "events:PutRule", R_ORDERS),
            (e("PutRule", &format!(r#"{{"Name":"nightly","EventBusName":"{ORDERS}","EventPattern":"{{}}"}}"#)), "events:PutRule", R_ORDERS),
            (e("DescribeRule", r#"{"Name":"nightly"}"#), "events:DescribeRule", R),
            (e("DescribeRule", r#"{"Name":"nightly","EventBusName":"default"}"#), "events:DescribeRule", R),
            (e("EnableRule", r#"{"Name":"nightly","EventBusName":"orders"}"#), "events:EnableRule", R_ORDERS),
            (e("DisableRule", r#"{"Name":"nightly"}"#), "events:DisableRule", R),
            (e("DeleteRule", r#"{"Name":"nightly"}"#), "events:DeleteRule", R),
            (e("ListRules", "{}"), "events:ListRules", "*"),
            (
                e("PutTargets", r#"{"Rule":"nightly","Targets":[{"Id":"t","Arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}]}"#),
                "events:PutTargets",
                R,
            ),
            (e("RemoveTargets", r#"{"Rule":"nightly","EventBusName":"orders","Ids":["t"]}"#), "events:RemoveTargets", R_ORDERS),
            (e("ListTargetsByRule", r#"{"Rule":"nightly"}"#), "events:ListTargetsByRule", R),
            (
                e("ListRuleNamesByTarget", r#"{"TargetArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#),
                "events:ListRuleNamesByTarget",
                "*",
            ),
            (e("PutEvents", r#"{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}"}]}"#), "events:PutEvents", DEFAULT),
            (
                e("PutEvents", r#"{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}","EventBusName":"orders"}]}"#),
                "events:PutEvents",
                ORDERS,
            ),
            (e("TestEventPattern", r#"{"EventPattern":"{}","Event":"{}"}"#), "events:TestEventPattern", "*"),
            (e("CreateEventBus", r#"{"Name":"orders"}"#), "events:CreateEventBus", ORDERS),
            (e("DeleteEventBus", r#"{"Name":"orders"}"#), "events:DeleteEventBus", ORDERS),
            (e("DescribeEventBus", "{}"), "events:DescribeEventBus", DEFAULT),
            (e("DescribeEventBus", r#"{"Name":"orders"}"#), "events:DescribeEventBus", ORDERS),
            (e("ListEventBuses", "{}"), "events:ListEventBuses", "*"),
        ]);
    }

    #[test]
    fn put_events_acts_on_every_bus_it_names_with_its_sources() {
        let t = target(&json(
            "AWSEvents.PutEvents",
            r#"{"Entries":[{"Source":"b","DetailType":"d"},{"Source":"a","EventBusName":"orders"},{"Source":"a"}]}"#,
        ));
        assert_eq!((t.resource.as_str(), t.also.clone()), (DEFAULT, vec![("events:PutEvents", ORDERS.to_string())]));
        assert_eq!(context(&t, "events:source"), Some(&["a".to_string(), "b".to_string()][..]));
        assert_eq!(context(&t, "events:detail-type"), Some(&["d".to_string()][..]));
        let t =
            target(&json("AWSEvents.PutTargets", r#"{"Rule":"r","Targets":[{"Id":"t","Arn":"arn:aws:sqs:us-east-1:123456789012:q"}]}"#));
        assert_eq!(context(&t, "events:TargetArn"), Some(&["arn:aws:sqs:us-east-1:123456789012:q".to_string()][..]));
    }
}
