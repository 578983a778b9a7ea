//! What a log group is beyond its events, kept across restarts: its creation time, retention,
//! tags, subscription and metric filters and the streams CreateLogStream made (which may hold no events yet), in a small JSON
//! file in the group's directory (`<root>/<hex group>/.group.json`), replaced whole by a
//! rename after an fsync. Lambda's groups get one only once something is set on them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) const META_FILE: &str = ".group.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupMeta {
    /// The group's name (its directory's name is a digest of a long one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Streams made by CreateLogStream, with their creation times.
    #[serde(default)]
    pub streams: BTreeMap<String, i64>,
    /// Its subscription filters (at most two), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_filters: Vec<crate::SubscriptionFilter>,
    /// Its metric filters (at most 100), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_filters: Vec<crate::MetricFilter>,
}

pub(crate) fn path(group_dir: &Path) -> PathBuf {
    group_dir.join(META_FILE)
}

/// The group's metadata, if it has a file (one that does not parse is ignored, with a warning).
pub(crate) fn read(group_dir: &Path) -> Option<GroupMeta> {
    let text = std::fs::read(path(group_dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(meta) => Some(meta),
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path(group_dir).display());
            None
        }
    }
}

/// Writes the group's metadata whole: a temporary file, fsynced, renamed over the old one.
pub(crate) fn write(group_dir: &Path, meta: &GroupMeta) -> std::io::Result<()> {
    std::fs::create_dir_all(group_dir)?;
    let tmp = group_dir.join(".group.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(meta).expect("group metadata serializes"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(group_dir))?;
    // The rename, and the group's directory itself when it is new, must last.
    for dir in [Some(group_dir), group_dir.parent()].into_iter().flatten() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        let meta = GroupMeta {
            name: Some("g".into()),
            creation_time: 5,
            retention_in_days: Some(7),
            tags: [("env".to_string(), "test".to_string())].into(),
            streams: [("s".to_string(), 6)].into(),
            subscription_filters: vec![crate::SubscriptionFilter {
                filter_name: "f".into(),
                filter_pattern: "ERROR".into(),
                destination_arn: "arn:aws:lambda:us-east-1:123456789012:function:c".into(),
                role_arn: None,
                distribution: "ByLogStream".into(),
                creation_time: 7,
            }],
            metric_filters: vec![crate::MetricFilter {
                filter_name: "m".into(),
                filter_pattern: "{ $.ms > 0 }".into(),
                metric_transformations: vec![crate::MetricTransformation {
                    metric_name: "Latency".into(),
                    metric_namespace: "App".into(),
                    metric_value: "$.ms".into(),
                    default_value: None,
                    dimensions: [("Server".to_string(), "$.server".to_string())].into(),
                    unit: Some("Milliseconds".into()),
                }],
                creation_time: 8,
            }],
        };
        write(dir.path(), &meta).unwrap();
        assert_eq!(read(dir.path()), Some(meta));
        std::fs::write(path(dir.path()), "{not json").unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
