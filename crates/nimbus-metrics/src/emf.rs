//! CloudWatch's embedded metric format: a log event that is a JSON object with an `_aws`
//! member (`{"_aws": {"Timestamp": …, "CloudWatchMetrics": [{"Namespace", "Dimensions":
//! [[…]], "Metrics": [{"Name", "Unit"}]}]}, "<dimension>": "…", "<metric>": 1.5}`, as
//! AWS Lambda Powertools and the EMF libraries write it) becomes metric datapoints, as
//! CloudWatch Logs extracts them. An event that breaks the format's rules yields nothing
//! and stays an ordinary log line, as in AWS.

use serde_json::{Map, Value};

use crate::cloudwatch::{Aggregate, Datum, SeriesKey};

/// The format's limits: dimensions per set, values per metric, metrics per directive.
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 100;
const MAX_METRICS: usize = 100;

/// The datapoints `message` carries (none when it is not valid EMF). `default_ms` is the
/// event's own timestamp, used when `_aws.Timestamp` is not a number.
pub fn extract(message: &str, default_ms: i64) -> Vec<Datum> {
    // Runtimes that prefix their lines (`<time>\t<request id>\tINFO\t{…}`) still carry it.
    let Some(start) = message.find('{') else { return Vec::new() };
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(&message[start..]) else { return Vec::new() };
    datapoints(&root, default_ms).unwrap_or_default()
}

fn datapoints(root: &Map<String, Value>, default_ms: i64) -> Option<Vec<Datum>> {
    let aws = root.get("_aws")?.as_object()?;
    let timestamp_ms = aws.get("Timestamp").and_then(Value::as_i64).unwrap_or(default_ms);
    // As PutMetricData: at most two weeks old and two hours ahead of the event.
    if timestamp_ms > default_ms + 2 * 3600 * 1000 || timestamp_ms < default_ms - 14 * 24 * 3600 * 1000 {
        return None;
    }
    let mut out = Vec::new();
    for directive in aws.get("CloudWatchMetrics")?.as_array()? {
        let namespace = directive.get("Namespace")?.as_str().filter(|n| !n.is_empty() && n.len() <= 1024)?;
        let sets = directive.get("Dimensions")?.as_array()?;
        let metrics = directive.get("Metrics")?.as_array()?;
        if metrics.len() > MAX_METRICS {
            return None;
        }
        // Every dimension set, with each key's value from the root (a string).
        let mut dimension_sets = Vec::new();
        for set in sets {
            let keys = set.as_array()?;
            if keys.len() > MAX_DIMENSIONS {
                return None;
            }
            let mut dims = Vec::new();
            for k in keys {
                let k = k.as_str()?;
                dims.push((k.to_string(), root.get(k)?.as_str()?.to_string()));
            }
            dimension_sets.push(dims);
        }
        for m in metrics {
            let name = m.get("Name")?.as_str().filter(|n| !n.is_empty())?;
            let unit = m.get("Unit").and_then(Value::as_str).unwrap_or("None");
            let high_resolution = m.get("StorageResolution").and_then(Value::as_i64) == Some(1);
            let values = match root.get(name)? {
                Value::Number(n) => vec![n.as_f64()?],
                Value::Array(items) if items.len() <= MAX_VALUES => items.iter().map(Value::as_f64).collect::<Option<Vec<_>>>()?,
                _ => return None,
            };
            let mut agg = Aggregate::default();
            for v in values {
                agg.merge(&Aggregate::of(v, 1.0));
            }
            for dims in &dimension_sets {
                out.push(Datum {
                    key: SeriesKey::new(namespace, name, dims.clone()),
                    unit: unit.to_string(),
                    timestamp_ms,
                    values: agg.clone(),
                    high_resolution,
                });
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (namespace, name, dimensions, unit, sum, count, timestamp)
    type Summary = (String, String, Vec<(String, String)>, String, f64, f64, i64);

    /// What `extract` made.
    fn summary(line: &str) -> Vec<Summary> {
        extract(line, 7)
            .into_iter()
            .map(|d| (d.key.namespace, d.key.name, d.key.dimensions, d.unit, d.values.sum, d.values.count, d.timestamp_ms))
            .collect()
    }

    fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn powertools_lines_become_datapoints() {
        // As AWS Lambda Powertools (Python and Node) writes it.
        let line = r#"{"_aws":{"Timestamp":7000,"CloudWatchMetrics":[{"Namespace":"ServerlessAirline","Dimensions":[["service"]],"Metrics":[{"Name":"SuccessfulBooking","Unit":"Count"}]}]},"service":"booking","SuccessfulBooking":[1.0,1.0]}"#;
        assert_eq!(
            summary(line),
            vec![("ServerlessAirline".into(), "SuccessfulBooking".into(), dims(&[("service", "booking")]), "Count".into(), 2.0, 2.0, 7000)]
        );
        // Two dimension sets (one empty), two metrics, no unit, a prefixed line, no timestamp.
        let line = "2026-12-03T10:00:00.000Z\tid\tINFO\t{\"_aws\":{\"CloudWatchMetrics\":[{\"Namespace\":\"App\",\"Dimensions\":[[],[\"fn\",\"env\"]],\"Metrics\":[{\"Name\":\"latency\",\"Unit\":\"Milliseconds\"},{\"Name\":\"hits\"}]}]},\"fn\":\"f\",\"env\":\"prod\",\"latency\":12.5,\"hits\":3}";
        let got = summary(line);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], ("App".into(), "latency".into(), vec![], "Milliseconds".into(), 12.5, 1.0, 7));
        assert_eq!(got[1].2, dims(&[("env", "prod"), ("fn", "f")]));
        assert_eq!((got[3].1.as_str(), got[3].3.as_str(), got[3].4), ("hits", "None", 3.0));
    }

    #[test]
    fn lines_that_break_the_format_yield_nothing() {
        let cases = [
            "plain text",
            r#"{"message": "no _aws here"}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [["missing"]], "Metrics": [{"Name": "m"}]}]}, "m": 1}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}, "m": "1"}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [["d"]], "Metrics": [{"Name": "m"}]}]}, "d": 5, "m": 1}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}, "m": 1}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}}"#,
            r#"{"_aws": "x"}"#,
            r#"{"_aws": {"CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}, "m": 1"#,
            // Too far ahead of the event.
            r#"{"_aws": {"Timestamp": 99999999999, "CloudWatchMetrics": [{"Namespace": "A", "Dimensions": [[]], "Metrics": [{"Name": "m"}]}]}, "m": 1}"#,
        ];
        for line in cases {
            assert!(extract(line, 0).is_empty(), "{line}");
        }
    }
}
