//! Kinesis's half of the authorization table: each call's IAM action (`kinesis:<Operation>`)
//! and stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`), as the Service
//! Authorization Reference lists them for Amazon Kinesis Data Streams. A stream named by its
//! ARN keeps the ARN's account (cross-account calls); GetRecords' stream is the one its
//! iterator names (checked again, with the iterator's MAC, when the call runs).

use super::*;
use crate::authz::{Scope, Target};

fn named(scope: &Scope<'_>, name: &str) -> String {
    format!("arn:aws:kinesis:{}:{}:stream/{name}", scope.region, scope.account)
}

fn stream_arn(scope: &Scope<'_>, s: &StreamRef) -> Option<String> {
    match (&s.stream_arn, &s.stream_name) {
        (Some(arn), _) if arn_name(arn).is_some() => Some(arn.clone()),
        (_, Some(name)) => Some(named(scope, name)),
        _ => None,
    }
}

impl KinesisRequest {
    /// What IAM authorizes this call as: its action and stream (None when it did not decode,
    /// or names no stream: it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use KinesisCall::*;
        let call = self.call.as_ref().ok()?;
        let action = KinesisCall::iam_action(call.operation())?;
        let on = |s: &StreamRef| stream_arn(scope, s).map(|arn| Target::on(action, arn));
        match call {
            ListStreams(_) => Some(Target::any(action)),
            CreateStream(i) => Some(
                Target::on(action, named(scope, &i.stream_name)).with_tags(i.tags.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))),
            ),
            GetRecords(i) => {
                let arn = match &i.stream_arn {
                    Some(arn) if arn_name(arn).is_some() => arn.clone(),
                    _ => named(scope, &nimbus_streams::iterator::stream_of(&i.shard_iterator)?),
                };
                Some(Target::on(action, arn))
            }
            DeleteStream(i) | DescribeStreamSummary(i) => on(&i.stream),
            DescribeStream(i) => on(&i.stream),
            ListShards(i) => on(&i.stream).or_else(|| Some(Target::any(action))),
            PutRecord(i) => on(&i.stream),
            PutRecords(i) => on(&i.stream),
            GetShardIterator(i) => on(&i.stream),
            IncreaseStreamRetentionPeriod(i) | DecreaseStreamRetentionPeriod(i) => on(&i.stream),
            SplitShard(i) => on(&i.stream),
            MergeShards(i) => on(&i.stream),
            UpdateShardCount(i) => on(&i.stream),
            AddTagsToStream(i) => on(&i.stream).map(|t| t.with_tags(i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
            RemoveTagsFromStream(i) => on(&i.stream).map(|t| t.with_values("aws:TagKeys", i.tag_keys.clone())),
            ListTagsForStream(i) => on(&i.stream),
            TagResource(i) => {
                Some(Target::on(action, i.resource_arn.clone()).with_tags(i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            }
            UntagResource(i) => Some(Target::on(action, i.resource_arn.clone()).with_values("aws:TagKeys", i.tag_keys.clone())),
            ListTagsForResource(i) => Some(Target::on(action, i.resource_arn.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, json};

    const S: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";

    #[test]
    fn actions_and_streams() {
        let j = |op: &str, body: &str| json(&format!("Kinesis_20131202.{op}"), body);
        let named = |op: &str, extra: &str| j(op, &format!(r#"{{"StreamName":"orders"{extra}}}"#));
        check(vec![
            (named("CreateStream", r#","ShardCount":1"#), "kinesis:CreateStream", S),
            (named("DeleteStream", ""), "kinesis:DeleteStream", S),
            (named("DescribeStream", ""), "kinesis:DescribeStream", S),
            (named("DescribeStreamSummary", ""), "kinesis:DescribeStreamSummary", S),
            (j("ListStreams", "{}"), "kinesis:ListStreams", "*"),
            (named("ListShards", ""), "kinesis:ListShards", S),
            (named("PutRecord", r#","Data":"aGk=","PartitionKey":"k""#), "kinesis:PutRecord", S),
            (named("PutRecords", r#","Records":[{"Data":"aGk=","PartitionKey":"k"}]"#), "kinesis:PutRecords", S),
            (named("GetShardIterator", r#","ShardId":"0","ShardIteratorType":"LATEST""#), "kinesis:GetShardIterator", S),
            (named("IncreaseStreamRetentionPeriod", r#","RetentionPeriodHours":48"#), "kinesis:IncreaseStreamRetentionPeriod", S),
            (named("DecreaseStreamRetentionPeriod", r#","RetentionPeriodHours":24"#), "kinesis:DecreaseStreamRetentionPeriod", S),
            (named("SplitShard", r#","ShardToSplit":"0","NewStartingHashKey":"5""#), "kinesis:SplitShard", S),
            (named("MergeShards", r#","ShardToMerge":"0","AdjacentShardToMerge":"1""#), "kinesis:MergeShards", S),
            (named("UpdateShardCount", r#","TargetShardCount":2,"ScalingType":"UNIFORM_SCALING""#), "kinesis:UpdateShardCount", S),
            (named("AddTagsToStream", r#","Tags":{"k":"v"}"#), "kinesis:AddTagsToStream", S),
            (named("RemoveTagsFromStream", r#","TagKeys":["k"]"#), "kinesis:RemoveTagsFromStream", S),
            (named("ListTagsForStream", ""), "kinesis:ListTagsForStream", S),
            (j("TagResource", &format!(r#"{{"ResourceARN":"{S}","Tags":{{"k":"v"}}}}"#)), "kinesis:TagResource", S),
            (j("UntagResource", &format!(r#"{{"ResourceARN":"{S}","TagKeys":["k"]}}"#)), "kinesis:UntagResource", S),
            (j("ListTagsForResource", &format!(r#"{{"ResourceARN":"{S}"}}"#)), "kinesis:ListTagsForResource", S),
            // By ARN, keeping its account.
            (
                j("PutRecord", r#"{"StreamARN":"arn:aws:kinesis:us-east-1:111122223333:stream/other","Data":"aGk=","PartitionKey":"k"}"#),
                "kinesis:PutRecord",
                "arn:aws:kinesis:us-east-1:111122223333:stream/other",
            ),
        ]);
    }

    #[test]
    fn get_records_is_authorized_on_the_iterators_stream() {
        let key = nimbus_streams::iterator::IteratorKey::generate();
        let it = key.encode(&nimbus_streams::iterator::Position { stream_id: 1, stream: "orders".into(), shard: 0, next: 0, issued_ms: 0 });
        let a = json("Kinesis_20131202.GetRecords", &format!(r#"{{"ShardIterator":"{it}"}}"#));
        check(vec![(a, "kinesis:GetRecords", S)]);
        let junk = json("Kinesis_20131202.GetRecords", r#"{"ShardIterator":"junk"}"#);
        assert!(junk.target(&crate::authz::testing::scope()).is_none());
    }
}
