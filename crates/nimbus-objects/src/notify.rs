//! Bucket notifications: the configuration (which events of which keys go to which
//! function, queue or topic), matching a change against it, and the notifications a commit
//! owes, kept until delivered. Kept apart from the store so the server's delivery side needs
//! only these types (and [`PendingNotification::record`], AWS's event record) to send them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::Digest;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DestinationKind {
    Lambda,
    Queue,
    Topic,
    /// The account's default event bus, when the configuration has an
    /// `EventBridgeConfiguration`: every event of every key goes there.
    EventBridge,
}

/// One `LambdaFunctionConfiguration`, `QueueConfiguration` or `TopicConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    pub kind: DestinationKind,
    /// The configuration's `Id` (S3 makes one up when none is given).
    pub id: String,
    /// The function, queue or topic ARN.
    pub arn: String,
    /// As given: `s3:ObjectCreated:*`, `s3:ObjectCreated:Put`, `s3:ObjectRemoved:*`, ...
    pub events: Vec<String>,
    /// `Filter.Key.FilterRules` `prefix` and `suffix` (at most one of each).
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// The destination every event goes to when a configuration turns EventBridge on.
static EVENT_BRIDGE: std::sync::LazyLock<Destination> = std::sync::LazyLock::new(|| Destination {
    kind: DestinationKind::EventBridge,
    id: String::new(),
    arn: String::new(),
    events: vec!["s3:*".into()],
    prefix: None,
    suffix: None,
});

/// A bucket's notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotificationConfig {
    pub destinations: Vec<Destination>,
    /// `EventBridgeConfiguration` present.
    pub event_bridge: bool,
}

impl NotificationConfig {
    /// The destinations `event` (`ObjectCreated:Put`, without the `s3:` prefix) of `key`
    /// goes to: the event matches one of a destination's patterns (exactly, or its
    /// `s3:ObjectCreated:*` family), and the key starts with its prefix and ends with its
    /// suffix.
    pub fn matching<'a>(&'a self, event: &str, key: &str) -> impl Iterator<Item = &'a Destination> + 'a {
        let event = event.strip_prefix("s3:").unwrap_or(event);
        // Decided here: the iterator may outlive `event` and `key`.
        let mut matched: Vec<&'a Destination> = self
            .destinations
            .iter()
            .filter(|d| {
                d.events.iter().any(|p| event_matches(p, event))
                    && d.prefix.as_deref().is_none_or(|p| key.starts_with(p))
                    && d.suffix.as_deref().is_none_or(|s| key.ends_with(s))
            })
            .collect();
        if self.event_bridge {
            matched.push(&EVENT_BRIDGE);
        }
        matched.into_iter()
    }
}

/// A notification a committed change owes one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotification {
    /// Its row (acknowledge it with [`crate::ObjectStore::ack_notifications`]).
    pub id: i64,
    pub kind: DestinationKind,
    pub destination_arn: String,
    /// The destination's configuration `Id` (`s3.configurationId`).
    pub configuration_id: String,
    /// `ObjectCreated:Put`, `ObjectRemoved:DeleteMarkerCreated`, ...
    pub event_name: String,
    pub bucket: String,
    pub key: String,
    /// Absent for removals.
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Hex, increasing per key with every change (`s3.object.sequencer`).
    pub sequencer: String,
    pub event_time_ms: i64,
}

impl PendingNotification {
    /// AWS's S3 event record (`eventVersion` "2.1", `eventSource` "aws:s3", the key
    /// URL-encoded as S3 sends it: spaces as `+`), for `region` and `account`.
    pub fn record(&self, region: &str, account: &str) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("key".into(), encode_key(&self.key).into());
        if let Some(size) = self.size {
            object.insert("size".into(), size.into());
        }
        match (&self.etag, self.event_name.as_str()) {
            (Some(etag), _) => {
                object.insert("eTag".into(), etag.as_str().into());
            }
            // A delete marker's is the empty body's.
            (None, "ObjectRemoved:DeleteMarkerCreated") => {
                object.insert("eTag".into(), "d41d8cd98f00b204e9800998ecf8427e".into());
            }
            (None, _) => {}
        }
        if let Some(v) = &self.version_id {
            object.insert("versionId".into(), v.as_str().into());
        }
        // Tagging records carry no sequencer (and are version 2.3 of the record).
        let tagging = self.event_name.starts_with("ObjectTagging:");
        if !tagging {
            object.insert("sequencer".into(), self.sequencer.as_str().into());
        }
        // Stable per notification, so a redelivery carries the same ids.
        let seed = md5::Md5::digest(format!("{}/{}/{}/{}", self.id, self.sequencer, self.configuration_id, self.key));
        serde_json::json!({
            "eventVersion": if tagging { "2.3" } else { "2.1" },
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": iso_millis(self.event_time_ms),
            "eventName": self.event_name,
            "userIdentity": {"principalId": account},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": hex::encode_upper(&seed[..8]),
                "x-amz-id-2": BASE64.encode(sha2::Sha256::digest(seed)),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": self.configuration_id,
                "bucket": {
                    "name": self.bucket,
                    "ownerIdentity": {"principalId": account},
                    "arn": format!("arn:aws:s3:::{}", self.bucket),
                },
                "object": object,
            },
        })
    }
}

impl PendingNotification {
    /// The change as S3 sends it to EventBridge: its detail type (`Object Created`, `Object
    /// Deleted`, `Object Tags Added`, `Object Tags Deleted`) and detail (the key as it is,
    /// not URL-encoded; `reason`, `deletion-type`), for `account`. None for changes S3 does
    /// not send there.
    pub fn event_bridge(&self, account: &str) -> Option<(&'static str, serde_json::Value)> {
        let (detail_type, reason, deletion) = match self.event_name.as_str() {
            "ObjectCreated:Put" => ("Object Created", Some("PutObject"), None),
            "ObjectCreated:Post" => ("Object Created", Some("POST Object"), None),
            "ObjectCreated:Copy" => ("Object Created", Some("CopyObject"), None),
            "ObjectCreated:CompleteMultipartUpload" => ("Object Created", Some("CompleteMultipartUpload"), None),
            "ObjectRemoved:Delete" => ("Object Deleted", Some("DeleteObject"), Some("Permanently Deleted")),
            "ObjectRemoved:DeleteMarkerCreated" => ("Object Deleted", Some("DeleteObject"), Some("Delete Marker Created")),
            "ObjectTagging:Put" => ("Object Tags Added", None, None),
            "ObjectTagging:Delete" => ("Object Tags Deleted", None, None),
            _ => return None,
        };
        let mut object = serde_json::Map::new();
        object.insert("key".into(), self.key.as_str().into());
        if let (Some(size), "Object Created") = (self.size, detail_type) {
            object.insert("size".into(), size.into());
        }
        if let Some(etag) = &self.etag {
            object.insert("etag".into(), etag.as_str().into());
        }
        if let Some(v) = &self.version_id {
            object.insert("version-id".into(), v.as_str().into());
        }
        object.insert("sequencer".into(), self.sequencer.as_str().into());
        let seed = md5::Md5::digest(format!("{}/{}/eventbridge/{}", self.id, self.sequencer, self.key));
        let mut detail = serde_json::json!({
            "version": "0",
            "bucket": {"name": self.bucket},
            "object": object,
            "request-id": hex::encode_upper(&seed[..8]),
            "requester": account,
            "source-ip-address": "127.0.0.1",
        });
        if let Some(reason) = reason {
            detail["reason"] = reason.into();
        }
        if let Some(deletion) = deletion {
            detail["deletion-type"] = deletion.into();
        }
        Some((detail_type, detail))
    }
}

/// One configured event pattern (`s3:ObjectCreated:*`, `ObjectRemoved:Delete`, ...) against
/// an event name without the `s3:` prefix.
fn event_matches(pattern: &str, event: &str) -> bool {
    let pattern = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match pattern.strip_suffix('*') {
        Some(family) => event.starts_with(family),
        None => pattern == event,
    }
}

/// What S3 leaves as is in an event's key: unreserved characters and `/`; a space becomes
/// `+`, everything else (UTF-8 bytes) `%XX`.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// A key as S3 writes it in an event record (form encoding: `a/b c+d` is `a/b+c%2Bd`).
pub(crate) fn encode_key(key: &str) -> String {
    key.split(' ').map(|part| utf8_percent_encode(part, KEY_ENCODE).to_string()).collect::<Vec<_>>().join("+")
}

/// `1970-01-01T00:00:00.000Z`.
pub(crate) fn iso_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: &str, events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> Destination {
        Destination {
            kind: DestinationKind::Queue,
            id: id.into(),
            arn: format!("arn:aws:sqs:us-east-1:000000000000:{id}"),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.map(Into::into),
            suffix: suffix.map(Into::into),
        }
    }

    #[test]
    fn matching_by_event_and_key() {
        let config = NotificationConfig {
            destinations: vec![
                dest("created", &["s3:ObjectCreated:*"], None, None),
                dest("put-no-prefix", &["ObjectCreated:Put"], None, None),
                dest("removed-images", &["s3:ObjectRemoved:*"], Some("images/"), Some(".jpg")),
                dest("markers", &["s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectTagging:*"], None, Some(".txt")),
            ],
            event_bridge: false,
        };
        let cases: &[(&str, &str, &[&str])] = &[
            ("ObjectCreated:Put", "a.txt", &["created", "put-no-prefix"]),
            ("s3:ObjectCreated:Put", "a.txt", &["created", "put-no-prefix"]),
            ("ObjectCreated:Copy", "a.txt", &["created"]),
            ("ObjectCreated:CompleteMultipartUpload", "x", &["created"]),
            ("ObjectRemoved:Delete", "images/cat.jpg", &["removed-images"]),
            ("ObjectRemoved:Delete", "images/cat.png", &[]),
            ("ObjectRemoved:Delete", "other/images/cat.jpg", &[]),
            ("ObjectRemoved:DeleteMarkerCreated", "images/a.jpg", &["removed-images"]),
            ("ObjectRemoved:DeleteMarkerCreated", "notes.txt", &["markers"]),
            ("ObjectTagging:Put", "notes.txt", &["markers"]),
            ("ObjectTagging:Delete", "notes.md", &[]),
            // A family is matched by its name up to the colon, not by a longer name.
            ("ObjectCreatedX:Put", "a", &[]),
        ];
        for (event, key, want) in cases {
            let got: Vec<&str> = config.matching(event, key).map(|d| d.id.as_str()).collect();
            assert_eq!(got, *want, "{event} {key}");
        }
    }

    #[test]
    fn keys_are_encoded_as_s3_does() {
        let cases = [
            ("a/b c.txt", "a/b+c.txt"),
            ("plain-key_1.~x", "plain-key_1.~x"),
            ("a+b=c&d", "a%2Bb%3Dc%26d"),
            ("é/日本", "%C3%A9/%E6%97%A5%E6%9C%AC"),
            ("  ", "++"),
            ("(1)", "%281%29"),
            ("\n", "%0A"),
        ];
        for (key, want) in cases {
            assert_eq!(encode_key(key), want, "{key:?}");
        }
    }

    #[test]
    fn times_are_iso_with_millis() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_700_000_000_999, "2023-11-14T22:13:20.999Z"),
            (4_102_444_799_000, "2099-12-31T23:59:59.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(iso_millis(ms), want);
        }
    }

    #[test]
    fn record_has_aws_shape() {
        let n = PendingNotification {
            id: 7,
            kind: DestinationKind::Lambda,
            destination_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            configuration_id: "cfg".into(),
            event_name: "ObjectCreated:Put".into(),
            bucket: "b".into(),
            key: "dir/my file.txt".into(),
            size: Some(1024),
            etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            version_id: None,
            sequencer: "000000000000000A".into(),
            event_time_ms: 0,
        };
        let r = n.record("us-east-1", "123456789012");
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["eventTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["userIdentity"]["principalId"], "123456789012");
        assert_eq!(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
        let request_id = r["responseElements"]["x-amz-request-id"].as_str().expect("request id");
        assert_eq!(request_id.len(), 16);
        assert!(request_id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_eq!(r["s3"]["s3SchemaVersion"], "1.0");
        assert_eq!(r["s3"]["configurationId"], "cfg");
        assert_eq!(r["s3"]["bucket"]["name"], "b");
        assert_eq!(r["s3"]["bucket"]["ownerIdentity"]["principalId"], "123456789012");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::b");
        let object = &r["s3"]["object"];
        assert_eq!(object["key"], "dir/my+file.txt");
        assert_eq!(object["size"], 1024);
        assert_eq!(object["eTag"], "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(object["sequencer"], "000000000000000A");
        assert!(object.get("versionId").is_none());
        // Stable across calls (redeliveries).
        assert_eq!(r, n.record("us-east-1", "123456789012"));

        let removal = PendingNotification { size: None, etag: None, version_id: Some("v1".into()), ..n };
        let r = removal.record("eu-west-1", "1");
        assert!(r["s3"]["object"].get("size").is_none());
        assert!(r["s3"]["object"].get("eTag").is_none());
        assert_eq!(r["s3"]["object"]["versionId"], "v1");
    }
}
