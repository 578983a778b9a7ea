//! S3's bucket calls: create (names and location constraints as AWS checks them), head,
//! list, delete, location, versioning, tags, and the notification configuration (checked
//! as S3 checks it: known events, no overlapping rules, destinations that let S3 in).

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use nimbus_objects::notify::{Destination, DestinationKind};
use nimbus_objects::{NotificationConfig, ObjectError, Versioning};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::RequestBody;
use super::object::{checked_tags, TaggingDoc};
use super::{answer, decode, empty, S3Error, S3Request};
use crate::response::Body;
use crate::server::AppState;

pub async fn serve(state: &Arc<AppState>, req: &S3Request, parts: &Parts, body: RequestBody) -> Result<Response<Body>, S3Error> {
    let store = super::store(state)?;
    let bucket = req.bucket();
    let of = |e: ObjectError| S3Error::from_store(e, req);
    let account = state.account().to_string();
    match req.operation {
        "ListBuckets" => {
            let buckets = store.list_buckets().await.map_err(of)?;
            let region = &state.control.partition().region;
            let prefix = req.param("prefix").unwrap_or("");
            let list: Vec<Value> = buckets
                .iter()
                .filter(|b| b.name.starts_with(prefix) && req.param("bucket-region").is_none_or(|r| r == b.region))
                .map(|b| {
                    json!({"Name": b.name, "CreationDate": b.created_ms as f64 / 1000.0, "BucketRegion": b.region,
                           "BucketArn": format!("arn:aws:s3:::{}", b.name)})
                })
                .collect();
            let _ = region;
            let mut out = json!({"Buckets": list, "Owner": super::object::owner(&account)});
            if let Some(p) = req.param("prefix") {
                out["Prefix"] = json!(p);
            }
            Ok(answer("ListBuckets", &out))
        }
        "CreateBucket" => {
            if !super::valid_bucket_name(bucket) {
                return Err(S3Error::new("InvalidBucketName", 400, "The specified bucket is not valid.").with("BucketName", bucket));
            }
            let doc = body.read(parts).await?;
            let input: CreateBucketInput = decode(req, parts, &doc)?;
            let server_region = state.control.partition().region.clone();
            let constraint = input.create_bucket_configuration.and_then(|c| c.location_constraint).filter(|c| !c.is_empty());
            let region = match constraint {
                Some(c) if c == "us-east-1" => {
                    return Err(S3Error::new("InvalidLocationConstraint", 400, "The specified location-constraint is not valid")
                        .with("LocationConstraint", c))
                }
                Some(c) if c != server_region => {
                    return Err(S3Error::new(
                        "IllegalLocationConstraintException",
                        400,
                        format!("The {c} location constraint is incompatible for the region specific endpoint this request was sent to."),
                    ))
                }
                Some(c) => c,
                None if server_region != "us-east-1" => {
                    return Err(S3Error::new(
                        "IllegalLocationConstraintException",
                        400,
                        "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
                    ))
                }
                None => server_region,
            };
            // One namespace for the whole server, as for all of AWS.
            for other in state.accounts.all() {
                if other.account() != account {
                    if let Ok(s) = super::store(&other) {
                        if s.bucket(bucket).await.is_ok() {
                            return Err(S3Error::new(
                                "BucketAlreadyExists",
                                409,
                                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                            )
                            .with("BucketName", bucket));
                        }
                    }
                }
            }
            store.create_bucket(bucket, &region).await.map_err(of)?;
            Ok(answer("CreateBucket", &json!({"Location": format!("/{bucket}"), "BucketArn": format!("arn:aws:s3:::{bucket}")})))
        }
        "HeadBucket" => {
            let b = store.bucket(bucket).await.map_err(of)?;
            let mut r = empty(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(&b.region) {
                r.headers_mut().insert("x-amz-bucket-region", v);
            }
            r.headers_mut().insert("x-amz-access-point-alias", HeaderValue::from_static("false"));
            if let Ok(v) = HeaderValue::from_str(&format!("arn:aws:s3:::{bucket}")) {
                r.headers_mut().insert("x-amz-bucket-arn", v);
            }
            Ok(r)
        }
        "DeleteBucket" => {
            store.delete_bucket(bucket).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "GetBucketLocation" => {
            let b = store.bucket(bucket).await.map_err(of)?;
            // The document's root is the constraint itself (empty for us-east-1).
            let text = if b.region == "us-east-1" { String::new() } else { b.region };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{text}</LocationConstraint>"
            );
            let mut r = crate::response::raw(StatusCode::OK, "application/xml", Bytes::from(xml));
            super::stamp(&mut r, &super::request_id());
            Ok(r)
        }
        "GetBucketVersioning" => {
            let b = store.bucket(bucket).await.map_err(of)?;
            let out = match b.versioning {
                Versioning::Unversioned => json!({}),
                Versioning::Enabled => json!({"Status": "Enabled"}),
                Versioning::Suspended => json!({"Status": "Suspended"}),
            };
            Ok(answer("GetBucketVersioning", &out))
        }
        "PutBucketVersioning" => {
            let doc = body.read(parts).await?;
            let input: PutVersioningInput = decode(req, parts, &doc)?;
            let state = match input.versioning_configuration.status.as_deref() {
                Some("Enabled") => Versioning::Enabled,
                Some("Suspended") => Versioning::Suspended,
                None => {
                    return Err(S3Error::new("IllegalVersioningConfigurationException", 400, "The Versioning element must be specified"))
                }
                Some(_) => return Err(S3Error::malformed_xml()),
            };
            store.set_versioning(bucket, state).await.map_err(of)?;
            Ok(empty(StatusCode::OK))
        }
        "GetBucketTagging" => {
            let text = store.bucket_setting(bucket, "tagging").await.map_err(of)?;
            let tags: Vec<(String, String)> = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
            if tags.is_empty() {
                return Err(S3Error::new("NoSuchTagSet", 404, "The TagSet does not exist").with("BucketName", bucket));
            }
            let set: Vec<Value> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
            Ok(answer("GetBucketTagging", &json!({"TagSet": set})))
        }
        "PutBucketTagging" => {
            let doc = body.read(parts).await?;
            let input: PutBucketTaggingInput = decode(req, parts, &doc)?;
            let tags = checked_tags(input.tagging.tag_set.into_iter().map(|t| (t.key, t.value)).collect(), 50)?;
            let text = serde_json::to_string(&tags).map_err(S3Error::internal)?;
            store.put_bucket_setting(bucket, "tagging", Some(text)).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "DeleteBucketTagging" => {
            store.put_bucket_setting(bucket, "tagging", None).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "GetBucketPolicy" => match store.bucket_setting(bucket, "policy").await.map_err(of)? {
            Some(text) => {
                let mut r = crate::response::raw(StatusCode::OK, "application/json", Bytes::from(text));
                super::stamp(&mut r, &super::request_id());
                Ok(r)
            }
            None => Err(S3Error::new("NoSuchBucketPolicy", 404, "The bucket policy does not exist").with("BucketName", bucket)),
        },
        "PutBucketPolicy" => {
            store.bucket(bucket).await.map_err(of)?;
            let doc = body.read(parts).await?;
            let text =
                std::str::from_utf8(&doc).map_err(|_| malformed_policy("Policies must be valid JSON and the first byte must be '{'"))?;
            if !text.trim_start().starts_with('{') {
                return Err(malformed_policy("Policies must be valid JSON and the first byte must be '{'"));
            }
            nimbus_policy::Policy::parse(text, nimbus_policy::Kind::Resource).map_err(|e| malformed_policy(&e.to_string()))?;
            check_policy_resources(text, bucket)?;
            store.put_bucket_setting(bucket, "policy", Some(text.to_string())).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "DeleteBucketPolicy" => {
            store.put_bucket_setting(bucket, "policy", None).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "GetBucketNotificationConfiguration" => {
            let config = store.notifications(bucket).await.map_err(of)?;
            Ok(answer("GetBucketNotificationConfiguration", &notification_output(&config)))
        }
        "PutBucketNotificationConfiguration" => {
            let doc = body.read(parts).await?;
            let input: PutNotificationInput = decode(req, parts, &doc)?;
            store.bucket(bucket).await.map_err(of)?;
            let config = notification_config(input.notification_configuration)?;
            let skip = parts
                .headers
                .get("x-amz-skip-destination-validation")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if !skip {
                check_destinations(state, bucket, &config).await?;
            }
            store.set_notifications(bucket, config.clone()).await.map_err(of)?;
            test_events(state, bucket, &config).await;
            Ok(empty(StatusCode::OK))
        }
        _ => Err(S3Error::not_implemented()),
    }
}

fn malformed_policy(message: &str) -> S3Error {
    S3Error::new("MalformedPolicy", 400, message.to_string())
}

/// S3 refuses a bucket policy whose statements name resources outside the bucket.
fn check_policy_resources(text: &str, bucket: &str) -> Result<(), S3Error> {
    let own = format!("arn:aws:s3:::{bucket}");
    let doc: Value = serde_json::from_str(text).map_err(|e| malformed_policy(&e.to_string()))?;
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for statement in &statements {
        let resources = match statement.get("Resource").or_else(|| statement.get("NotResource")) {
            Some(Value::String(r)) => vec![r.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|r| r.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        for resource in resources {
            let inside = resource == own || resource.starts_with(&format!("{own}/")) || resource == "*";
            if !inside {
                return Err(malformed_policy("Policy has invalid resource"));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBucketInput {
    create_bucket_configuration: Option<CreateBucketConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBucketConfiguration {
    location_constraint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutVersioningInput {
    versioning_configuration: VersioningDoc,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersioningDoc {
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutBucketTaggingInput {
    tagging: TaggingDoc,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutNotificationInput {
    notification_configuration: NotificationDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NotificationDoc {
    #[serde(default)]
    topic_configurations: Vec<TargetDoc>,
    #[serde(default)]
    queue_configurations: Vec<TargetDoc>,
    #[serde(default)]
    lambda_function_configurations: Vec<TargetDoc>,
    event_bridge_configuration: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetDoc {
    id: Option<String>,
    topic_arn: Option<String>,
    queue_arn: Option<String>,
    lambda_function_arn: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    filter: Option<FilterDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterDoc {
    key: Option<KeyFilterDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyFilterDoc {
    #[serde(default)]
    filter_rules: Vec<FilterRuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterRuleDoc {
    name: String,
    value: String,
}

/// The events S3 notifies of, as configurations name them.
const EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
];

fn notification_config(doc: NotificationDoc) -> Result<NotificationConfig, S3Error> {
    let mut destinations = Vec::new();
    let groups = [
        (DestinationKind::Topic, doc.topic_configurations),
        (DestinationKind::Queue, doc.queue_configurations),
        (DestinationKind::Lambda, doc.lambda_function_configurations),
    ];
    for (kind, targets) in groups {
        for t in targets {
            let arn = match kind {
                DestinationKind::Topic => t.topic_arn,
                DestinationKind::Queue => t.queue_arn,
                DestinationKind::Lambda | DestinationKind::EventBridge => t.lambda_function_arn,
            }
            .ok_or_else(S3Error::malformed_xml)?;
            if t.events.is_empty() {
                return Err(S3Error::malformed_xml());
            }
            for e in &t.events {
                if !EVENTS.contains(&e.as_str()) {
                    return Err(S3Error::invalid_argument("The event is not supported for notifications", e, e));
                }
            }
            let (mut prefix, mut suffix) = (None, None);
            for rule in t.filter.and_then(|f| f.key).map(|k| k.filter_rules).unwrap_or_default() {
                let slot = match rule.name.to_ascii_lowercase().as_str() {
                    "prefix" => &mut prefix,
                    "suffix" => &mut suffix,
                    _ => {
                        return Err(S3Error::invalid_argument(
                            "filter rule name must be either prefix or suffix",
                            "FilterRule.Name",
                            &rule.name,
                        ))
                    }
                };
                if slot.is_some() {
                    return Err(S3Error::invalid_argument(
                        "Cannot specify more than one prefix rule in a filter.",
                        "FilterRule.Name",
                        &rule.name,
                    ));
                }
                *slot = Some(rule.value);
            }
            let id = t.id.filter(|i| !i.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            destinations.push(Destination { kind, id, arn, events: t.events, prefix, suffix });
        }
    }
    // Two rules for a common event type whose key filters can both match one key overlap.
    for (i, a) in destinations.iter().enumerate() {
        for b in &destinations[..i] {
            let shared = a.events.iter().any(|x| b.events.iter().any(|y| family_overlaps(x, y)));
            if shared && filters_overlap(a, b) {
                return Err(S3Error::invalid_argument(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                    "Event",
                    a.events.first().map_or("", String::as_str),
                ));
            }
        }
    }
    Ok(NotificationConfig { destinations, event_bridge: doc.event_bridge_configuration.is_some() })
}

fn family_overlaps(a: &str, b: &str) -> bool {
    let stem = |e: &str| e.strip_suffix('*').map(str::to_string);
    match (stem(a), stem(b)) {
        (Some(x), _) => b.starts_with(&x),
        (_, Some(y)) => a.starts_with(&y),
        _ => a == b,
    }
}

fn filters_overlap(a: &Destination, b: &Destination) -> bool {
    let prefix = match (&a.prefix, &b.prefix) {
        (Some(x), Some(y)) => x.starts_with(y.as_str()) || y.starts_with(x.as_str()),
        _ => true,
    };
    let suffix = match (&a.suffix, &b.suffix) {
        (Some(x), Some(y)) => x.ends_with(y.as_str()) || y.ends_with(x.as_str()),
        _ => true,
    };
    prefix && suffix
}

/// Every destination must exist and let `s3.amazonaws.com` in for this bucket, as S3 checks
/// when the configuration is put.
async fn check_destinations(state: &Arc<AppState>, bucket: &str, config: &NotificationConfig) -> Result<(), S3Error> {
    let source = format!("arn:aws:s3:::{bucket}");
    let mut failures: Vec<(String, String)> = Vec::new();
    for d in &config.destinations {
        let (action, why) = match d.kind {
            DestinationKind::Lambda => ("lambda:InvokeFunction", format!("Not authorized to invoke function [{}]", d.arn)),
            DestinationKind::Queue => {
                ("sqs:SendMessage", "Permissions on the destination queue do not allow S3 to publish notifications from this bucket".into())
            }
            DestinationKind::Topic => {
                ("sns:Publish", "Permissions on the destination topic do not allow S3 to publish notifications from this bucket".into())
            }
            // The account's own default bus takes S3's events without a policy.
            DestinationKind::EventBridge => continue,
        };
        let refused =
            crate::authz::service_may(state, "s3.amazonaws.com", action, &d.arn, &source, state.account()).await.err().map(|_| why);
        if let Some(why) = refused {
            failures.push((d.arn.clone(), why));
        }
    }
    if let Some((arn, why)) = failures.into_iter().next() {
        return Err(S3Error::invalid_argument("Unable to validate the following destination configurations", &arn, &why));
    }
    Ok(())
}

/// S3's `s3:TestEvent`, sent to every queue and topic of a configuration when it is put.
async fn test_events(state: &AppState, bucket: &str, config: &NotificationConfig) {
    let event = json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "Bucket": bucket,
        "RequestId": super::request_id(),
        "HostId": "nimbus",
    })
    .to_string();
    for d in &config.destinations {
        let sent = match d.kind {
            DestinationKind::Queue => state.queues.send(&d.arn, &event, Default::default()).await.map(drop).map_err(|e| e.to_string()),
            DestinationKind::Topic => {
                let input = nimbus_topics::PublishInput {
                    message: event.clone(),
                    subject: Some("Amazon S3 Notification".into()),
                    ..Default::default()
                };
                state.topics.publish(&d.arn, input).await.map(drop).map_err(|e| e.to_string())
            }
            DestinationKind::Lambda | DestinationKind::EventBridge => Ok(()),
        };
        if let Err(e) = sent {
            tracing::warn!(bucket, destination = %d.arn, "S3 test event not sent: {e}");
        }
    }
}

fn notification_output(config: &NotificationConfig) -> Value {
    let mut topics = Vec::new();
    let mut queues = Vec::new();
    let mut lambdas = Vec::new();
    for d in &config.destinations {
        let mut rules = Vec::new();
        if let Some(p) = &d.prefix {
            rules.push(json!({"Name": "Prefix", "Value": p}));
        }
        if let Some(s) = &d.suffix {
            rules.push(json!({"Name": "Suffix", "Value": s}));
        }
        let mut entry = json!({"Id": d.id, "Events": d.events});
        if !rules.is_empty() {
            entry["Filter"] = json!({"Key": {"FilterRules": rules}});
        }
        match d.kind {
            DestinationKind::Topic => {
                entry["TopicArn"] = json!(d.arn);
                topics.push(entry);
            }
            DestinationKind::Queue => {
                entry["QueueArn"] = json!(d.arn);
                queues.push(entry);
            }
            DestinationKind::Lambda => {
                entry["LambdaFunctionArn"] = json!(d.arn);
                lambdas.push(entry);
            }
            DestinationKind::EventBridge => {}
        }
    }
    let mut out = json!({});
    if !topics.is_empty() {
        out["TopicConfigurations"] = Value::Array(topics);
    }
    if !queues.is_empty() {
        out["QueueConfigurations"] = Value::Array(queues);
    }
    if !lambdas.is_empty() {
        out["LambdaFunctionConfigurations"] = Value::Array(lambdas);
    }
    if config.event_bridge {
        out["EventBridgeConfiguration"] = json!({});
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> Destination {
        Destination {
            kind: DestinationKind::Queue,
            id: "x".into(),
            arn: "arn".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.map(str::to_string),
            suffix: suffix.map(str::to_string),
        }
    }

    #[test]
    fn overlapping_rules_are_found() {
        let cases = [
            (dest(&["s3:ObjectCreated:*"], None, None), dest(&["s3:ObjectCreated:Put"], None, None), true),
            (dest(&["s3:ObjectCreated:*"], Some("a/"), None), dest(&["s3:ObjectCreated:Put"], Some("b/"), None), false),
            (dest(&["s3:ObjectCreated:*"], Some("a/"), None), dest(&["s3:ObjectCreated:Put"], Some("a/b"), None), true),
            (dest(&["s3:ObjectCreated:*"], None, Some(".jpg")), dest(&["s3:ObjectCreated:*"], None, Some(".png")), false),
            (dest(&["s3:ObjectRemoved:*"], None, None), dest(&["s3:ObjectCreated:*"], None, None), false),
        ];
        for (a, b, want) in cases {
            let shared = a.events.iter().any(|x| b.events.iter().any(|y| family_overlaps(x, y)));
            assert_eq!(shared && filters_overlap(&a, &b), want, "{a:?} {b:?}");
        }
    }
}
