//! DynamoDB Streams' half of the authorization table: each call's IAM action (`dynamodb:<Op>`,
//! as the Service Authorization Reference lists them) and resource: the stream
//! (`arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`), read off the iterator
//! for GetRecords; ListStreams acts on `*`.

use super::*;
use crate::authz::{Scope, Target};

impl DynamoDbStreamsRequest {
    /// What IAM authorizes this call as (None when it did not decode).
    pub(crate) fn target(&self, _scope: &Scope<'_>) -> Option<Target> {
        use DynamoDbStreamsCall::*;
        let call = self.call.as_ref().ok()?;
        let action = DynamoDbStreamsCall::iam_action(self.operation)?;
        Some(match call {
            ListStreams(_) => Target::any(action),
            DescribeStream(i) => Target::on(action, i.stream_arn.clone()),
            GetShardIterator(i) => Target::on(action, i.stream_arn.clone()),
            // An iterator that names no stream is refused by the call itself.
            GetRecords(i) => Target::on(action, stream_of_iterator(&i.shard_iterator).unwrap_or("*")),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, json};

    const S: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000";

    #[test]
    fn actions_and_streams() {
        let j = |op: &str, body: &str| json(&format!("DynamoDBStreams_20120810.{op}"), body);
        check(vec![
            (j("ListStreams", "{}"), "dynamodb:ListStreams", "*"),
            (j("DescribeStream", &format!(r#"{{"StreamArn":"{S}"}}"#)), "dynamodb:DescribeStream", S),
            (
                j("GetShardIterator", &format!(r#"{{"StreamArn":"{S}","ShardId":"shardId-1","ShardIteratorType":"LATEST"}}"#)),
                "dynamodb:GetShardIterator",
                S,
            ),
            (j("GetRecords", &format!(r#"{{"ShardIterator":"{S}|1|AAAA"}}"#)), "dynamodb:GetRecords", S),
        ]);
    }
}
