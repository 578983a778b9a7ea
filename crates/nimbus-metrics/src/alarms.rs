//! CloudWatch metric alarms: what PutMetricAlarm defines, the state machine AWS runs on it
//! (INSUFFICIENT_DATA → OK / ALARM by "M out of N" breaching datapoints, missing data
//! treated as asked), and the notification AWS sends to an alarm's SNS actions when its
//! state changes. Evaluation is a pure function of the alarm and its latest periods; the
//! [`crate::cloudwatch::MetricStore`] keeps the alarms and runs it. Composite alarms are
//! alarms with an `AlarmRule` over other alarms' states ([`Rule`]), evaluated after them.

use serde::{Deserialize, Serialize};

use crate::cloudwatch::Aggregate;

pub const INSUFFICIENT_DATA: &str = "INSUFFICIENT_DATA";
pub const OK: &str = "OK";
pub const ALARM: &str = "ALARM";

/// A metric alarm as stored (and as DescribeAlarms shows it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, `Average`…, or a percentile in `extended_statistic`.
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub period: i64,
    pub unit: Option<String>,
    pub evaluation_periods: i64,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: f64,
    pub comparison: String,
    /// `missing` (default), `notBreaching`, `breaching`, `ignore`; None when not set.
    pub treat_missing_data: Option<String>,
    pub state: String,
    pub state_reason: String,
    /// Milliseconds since the epoch.
    pub state_updated_ms: i64,
    pub state_transitioned_ms: i64,
    pub configuration_updated_ms: i64,
    /// A composite alarm's `AlarmRule` (it then has no metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A composite alarm's rule: `ALARM("name")`, `OK(name)`, `INSUFFICIENT_DATA(…)`, `TRUE`,
/// `FALSE`, `NOT`, `AND`, `OR` and parentheses (`NOT` binds tightest, then `AND`, then `OR`);
/// an alarm is named by its name or ARN.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    State(&'static str, String),
    Const(bool),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, String> {
        let tokens = rule_tokens(text)?;
        let mut at = 0;
        let rule = rule_or(&tokens, &mut at)?;
        if at != tokens.len() {
            return Err(format!("Unexpected '{}'", tokens[at]));
        }
        Ok(rule)
    }

    /// The alarms it names (names, or the names at the end of ARNs), in order.
    pub fn alarms(&self) -> Vec<String> {
        match self {
            Rule::State(_, name) => vec![name.clone()],
            Rule::Const(_) => Vec::new(),
            Rule::Not(r) => r.alarms(),
            Rule::And(a, b) | Rule::Or(a, b) => [a.alarms(), b.alarms()].concat(),
        }
    }

    /// Its value given each named alarm's state (an unknown alarm matches no state).
    pub fn holds(&self, state_of: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Rule::State(state, name) => state_of(name).as_deref() == Some(*state),
            Rule::Const(v) => *v,
            Rule::Not(r) => !r.holds(state_of),
            Rule::And(a, b) => a.holds(state_of) && b.holds(state_of),
            Rule::Or(a, b) => a.holds(state_of) || b.holds(state_of),
        }
    }
}

fn rule_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(c.to_string());
            i += 1;
        } else if c == '"' {
            let end = chars[i + 1..].iter().position(|&d| d == '"').ok_or("Unterminated quote")?;
            out.push(format!("\"{}", chars[i + 1..i + 1 + end].iter().collect::<String>()));
            i += end + 2;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '(' && chars[i] != ')' && chars[i] != '"' {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn rule_or(t: &[String], at: &mut usize) -> Result<Rule, String> {
    let mut left = rule_and(t, at)?;
    while t.get(*at).is_some_and(|w| w == "OR") {
        *at += 1;
        left = Rule::Or(Box::new(left), Box::new(rule_and(t, at)?));
    }
    Ok(left)
}

fn rule_and(t: &[String], at: &mut usize) -> Result<Rule, String> {
    let mut left = rule_not(t, at)?;
    while t.get(*at).is_some_and(|w| w == "AND") {
        *at += 1;
        left = Rule::And(Box::new(left), Box::new(rule_not(t, at)?));
    }
    Ok(left)
}

fn rule_not(t: &[String], at: &mut usize) -> Result<Rule, String> {
    let word = t.get(*at).ok_or("Unexpected end of the rule")?.clone();
    *at += 1;
    let state = match word.as_str() {
        "NOT" => return Ok(Rule::Not(Box::new(rule_not(t, at)?))),
        "TRUE" => return Ok(Rule::Const(true)),
        "FALSE" => return Ok(Rule::Const(false)),
        "(" => {
            let r = rule_or(t, at)?;
            if t.get(*at).map(String::as_str) != Some(")") {
                return Err("Expected ')'".into());
            }
            *at += 1;
            return Ok(r);
        }
        "ALARM" => ALARM,
        "OK" => OK,
        "INSUFFICIENT_DATA" => INSUFFICIENT_DATA,
        other => return Err(format!("Unexpected '{}'", other.trim_start_matches('"'))),
    };
    let open = t.get(*at).map(String::as_str) == Some("(");
    let name = t.get(*at + 1).filter(|n| *n != ")").cloned();
    let close = t.get(*at + 2).map(String::as_str) == Some(")");
    match (open, name, close) {
        (true, Some(name), true) => {
            *at += 3;
            let name = name.trim_start_matches('"');
            // An ARN names the alarm at its end.
            let name = if name.starts_with("arn:") { name.rsplit(":alarm:").next().unwrap_or(name) } else { name };
            Ok(Rule::State(state, name.to_string()))
        }
        _ => Err(format!("{state} takes one alarm name or ARN in parentheses")),
    }
}

/// The comparison operators metric alarms take.
pub const COMPARISONS: [&str; 4] =
    ["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"];
pub const MISSING_DATA: [&str; 4] = ["breaching", "notBreaching", "ignore", "missing"];

impl Alarm {
    fn breaches(&self, v: f64) -> bool {
        match self.comparison.as_str() {
            "GreaterThanOrEqualToThreshold" => v >= self.threshold,
            "GreaterThanThreshold" => v > self.threshold,
            "LessThanThreshold" => v < self.threshold,
            _ => v <= self.threshold,
        }
    }

    fn verb(&self) -> &'static str {
        match self.comparison.as_str() {
            "GreaterThanOrEqualToThreshold" => "greater than or equal to",
            "GreaterThanThreshold" => "greater than",
            "LessThanThreshold" => "less than",
            _ => "less than or equal to",
        }
    }

    /// The statistic it compares.
    pub fn stat(&self) -> &str {
        self.extended_statistic.as_deref().or(self.statistic.as_deref()).unwrap_or("Average")
    }

    /// The state its latest `evaluation_periods` periods put it in, with AWS's reason; None
    /// when it stays as it is (`ignore`d missing data). `periods` holds (period start ms,
    /// values) of the periods that have data, oldest first.
    pub fn evaluate(&self, periods: &[(i64, Aggregate)]) -> Option<(&'static str, String)> {
        let n = self.evaluation_periods.max(1) as usize;
        let m = self.datapoints_to_alarm.unwrap_or(self.evaluation_periods).max(1) as usize;
        let values: Vec<(i64, f64)> = periods.iter().filter_map(|(t, a)| a.statistic(self.stat()).map(|v| (*t, v))).collect();
        let missing = n.saturating_sub(values.len());
        let treat = self.treat_missing_data.as_deref().unwrap_or("missing");
        if values.is_empty() {
            return match treat {
                "breaching" => Some((ALARM, format!("Threshold Crossed: no datapoints were received for {n} period{} and {n} missing datapoint{} {} treated as [Breaching].", plural(n), plural(n), if n == 1 { "was" } else { "were" }))),
                "notBreaching" => Some((OK, format!("Threshold Crossed: no datapoints were received for {n} period{} and {n} missing datapoint{} {} treated as [NonBreaching].", plural(n), plural(n), if n == 1 { "was" } else { "were" }))),
                "ignore" => None,
                _ => Some((INSUFFICIENT_DATA, format!("Insufficient Data: {n} datapoint{} {} unknown.", plural(n), if n == 1 { "was" } else { "were" }))),
            };
        }
        let mut breaching: Vec<(i64, f64)> = values.iter().copied().filter(|(_, v)| self.breaches(*v)).collect();
        let missing_breach = if treat == "breaching" { missing } else { 0 };
        let listed = |points: &[(i64, f64)]| {
            points
                .iter()
                .rev()
                .map(|(t, v)| {
                    format!(
                        "{} ({})",
                        trim(*v),
                        chrono::DateTime::from_timestamp_millis(*t).map(|d| d.format("%d/%m/%y %H:%M:%S").to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if breaching.len() + missing_breach >= m {
            breaching.truncate(m.max(1));
            let k = breaching.len();
            return Some((
                ALARM,
                format!(
                    "Threshold Crossed: {k} datapoint{} [{}] {} {} the threshold ({}).",
                    plural(k),
                    listed(&breaching),
                    if k == 1 { "was" } else { "were" },
                    self.verb(),
                    trim(self.threshold)
                ),
            ));
        }
        let k = values.len();
        Some((
            OK,
            format!(
                "Threshold Crossed: {k} datapoint{} [{}] {} not {} the threshold ({}).",
                plural(k),
                listed(&values),
                if k == 1 { "was" } else { "were" },
                self.verb(),
                trim(self.threshold)
            ),
        ))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A number as AWS prints it in reasons: `21.5`, `30.0`.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The message AWS sends to an alarm's SNS actions when its state changes.
pub fn notification(alarm: &Alarm, old_state: &str, region: &str, account: &str) -> serde_json::Value {
    let time = chrono::DateTime::from_timestamp_millis(alarm.state_updated_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let mut message = serde_json::json!({
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": alarm.state,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": time,
        "Region": region,
        "AlarmArn": alarm.arn,
        "OldStateValue": old_state,
        "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
    });
    // A composite alarm names its rule; a metric alarm its configuration time and trigger.
    let extra = match &alarm.rule {
        Some(rule) => serde_json::json!({ "AlarmRule": rule }),
        None => serde_json::json!({
            "AlarmConfigurationUpdatedTimestamp": chrono::DateTime::from_timestamp_millis(alarm.configuration_updated_ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
            "Trigger": {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "StatisticType": if alarm.extended_statistic.is_some() { "ExtendedStatistic" } else { "Statistic" },
                "Statistic": alarm.stat().to_uppercase(),
                "Unit": alarm.unit,
                "Dimensions": alarm.dimensions.iter().map(|(n, v)| serde_json::json!({"value": v, "name": n})).collect::<Vec<_>>(),
                "Period": alarm.period,
                "EvaluationPeriods": alarm.evaluation_periods,
                "ComparisonOperator": alarm.comparison,
                "Threshold": alarm.threshold,
                "TreatMissingData": alarm.treat_missing_data.clone().unwrap_or_default(),
                "EvaluateLowSampleCountPercentile": "",
            },
        }),
    };
    if let (Some(m), serde_json::Value::Object(extra)) = (message.as_object_mut(), extra) {
        m.extend(extra);
    }
    message
}

/// The actions of the state an alarm moved to (when its actions are enabled).
pub fn actions_for(alarm: &Alarm) -> &[String] {
    if !alarm.actions_enabled {
        return &[];
    }
    match alarm.state.as_str() {
        ALARM => &alarm.alarm_actions,
        OK => &alarm.ok_actions,
        _ => &alarm.insufficient_data_actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(comparison: &str, threshold: f64, n: i64, m: Option<i64>, treat: Option<&str>) -> Alarm {
        Alarm {
            name: "a".into(),
            arn: "arn:aws:cloudwatch:us-east-1:1:alarm:a".into(),
            description: None,
            actions_enabled: true,
            ok_actions: vec![],
            alarm_actions: vec![],
            insufficient_data_actions: vec![],
            namespace: "App".into(),
            metric_name: "M".into(),
            dimensions: vec![],
            statistic: Some("Average".into()),
            extended_statistic: None,
            period: 60,
            unit: None,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            threshold,
            comparison: comparison.into(),
            treat_missing_data: treat.map(str::to_string),
            state: INSUFFICIENT_DATA.into(),
            state_reason: String::new(),
            state_updated_ms: 0,
            state_transitioned_ms: 0,
            configuration_updated_ms: 0,
            rule: None,
        }
    }

    #[test]
    fn composite_rules() {
        let states = |name: &str| match name {
            "cpu" => Some(ALARM.to_string()),
            "mem" => Some(OK.to_string()),
            "disk" => Some(INSUFFICIENT_DATA.to_string()),
            _ => None,
        };
        let cases = [
            ("ALARM(cpu)", true),
            ("ALARM(\"cpu\")", true),
            ("ALARM(\"arn:aws:cloudwatch:us-east-1:1:alarm:cpu\")", true),
            ("ALARM(cpu) AND ALARM(mem)", false),
            ("ALARM(cpu) OR ALARM(mem)", true),
            ("ALARM(cpu) AND NOT OK(mem)", false),
            ("ALARM(mem) OR ALARM(cpu) AND OK(mem)", true),
            ("(ALARM(mem) OR ALARM(cpu)) AND INSUFFICIENT_DATA(disk)", true),
            ("NOT (ALARM(cpu) OR ALARM(mem))", false),
            ("TRUE AND NOT FALSE", true),
            ("ALARM(gone)", false),
        ];
        for (text, want) in cases {
            let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.holds(&states), want, "{text}");
        }
        assert_eq!(Rule::parse("ALARM(a) OR NOT OK(\"b c\")").unwrap().alarms(), ["a", "b c"]);
        for bad in ["ALARM(cpu", "ALARM cpu", "ALARM(cpu) AND", "MAYBE(cpu)", "(ALARM(cpu)", "ALARM(cpu) ALARM(mem)", ""] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }

    fn points(values: &[f64]) -> Vec<(i64, Aggregate)> {
        values.iter().enumerate().map(|(i, v)| (1_700_000_000_000 + i as i64 * 60_000, Aggregate::of(*v, 1.0))).collect()
    }

    #[test]
    fn m_out_of_n_and_missing_data() {
        let gt = "GreaterThanThreshold";
        let cases: &[(Alarm, &[f64], Option<&str>)] = &[
            (alarm(gt, 21.0, 1, None, None), &[21.5], Some(ALARM)),
            (alarm(gt, 21.0, 1, None, None), &[21.0], Some(OK)),
            (alarm("GreaterThanOrEqualToThreshold", 21.0, 1, None, None), &[21.0], Some(ALARM)),
            (alarm("LessThanThreshold", 5.0, 2, None, None), &[4.0, 6.0], Some(OK)),
            (alarm("LessThanThreshold", 5.0, 2, Some(1), None), &[4.0, 6.0], Some(ALARM)),
            (alarm(gt, 1.0, 3, Some(2), None), &[5.0, 0.0, 5.0], Some(ALARM)),
            (alarm(gt, 1.0, 1, None, None), &[], Some(INSUFFICIENT_DATA)),
            (alarm(gt, 1.0, 1, None, Some("breaching")), &[], Some(ALARM)),
            (alarm(gt, 1.0, 1, None, Some("notBreaching")), &[], Some(OK)),
            (alarm(gt, 1.0, 1, None, Some("ignore")), &[], None),
            (alarm(gt, 1.0, 3, Some(3), Some("breaching")), &[5.0], Some(ALARM)),
        ];
        for (a, values, want) in cases {
            let got = a.evaluate(&points(values)).map(|(s, _)| s);
            assert_eq!(got, *want, "{} {} of {:?} over {values:?}", a.comparison, a.threshold, a.treat_missing_data);
        }
        let (_, reason) = alarm(gt, 21.0, 1, None, None).evaluate(&points(&[21.5])).unwrap();
        assert!(
            reason.starts_with("Threshold Crossed: 1 datapoint [21.5 (") && reason.ends_with(")] was greater than the threshold (21.0)."),
            "{reason}"
        );
    }
}
