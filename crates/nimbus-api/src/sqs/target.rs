//! SQS's half of the authorization table: each call's IAM action and queue ARN, as the
//! Service Authorization Reference lists them for Amazon SQS. The batch calls need their
//! single call's action (AWS's denial of SendMessageBatch names `sqs:sendmessage`).

use super::*;
use crate::authz::{Scope, Target};

/// `arn:aws:sqs:<region>:<account>:<queue>` of a queue URL (`http://host/<account>/<queue>`),
/// its path, or a bare queue name (in the caller's account), as SQS reads them.
fn queue_arn(scope: &Scope<'_>, url: &str) -> String {
    let path = url.trim().split_once("://").map_or(url.trim(), |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let parts: Vec<&str> = path.split(['?', '#']).next().unwrap_or("").split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [name] => named(scope, scope.account, name),
        [.., account, name] => named(scope, account, name),
        [] => "*".into(),
    }
}

fn named(scope: &Scope<'_>, account: &str, name: &str) -> String {
    format!("arn:aws:sqs:{}:{account}:{name}", scope.region)
}

impl SqsRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use SqsCall::*;
        let on = |action, url: &str| Target::on(action, queue_arn(scope, url));
        Some(match self.call.as_ref().ok()? {
            CreateQueue(i) => Target::on("sqs:CreateQueue", named(scope, scope.account, &i.queue_name))
                .with_tags(i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            GetQueueUrl(i) => {
                let owner = i.queue_owner_aws_account_id.as_deref().unwrap_or(scope.account);
                Target::on("sqs:GetQueueUrl", named(scope, owner, &i.queue_name))
            }
            ListQueues(_) => Target::any("sqs:ListQueues"),
            DeleteQueue(i) => on("sqs:DeleteQueue", &i.queue_url),
            PurgeQueue(i) => on("sqs:PurgeQueue", &i.queue_url),
            GetQueueAttributes(i) => on("sqs:GetQueueAttributes", &i.queue_url),
            SetQueueAttributes(i) => on("sqs:SetQueueAttributes", &i.queue_url),
            SendMessage(i) => on("sqs:SendMessage", &i.queue_url),
            SendMessageBatch(i) => on("sqs:SendMessage", &i.queue_url),
            ReceiveMessage(i) => on("sqs:ReceiveMessage", &i.queue_url),
            DeleteMessage(i) => on("sqs:DeleteMessage", &i.queue_url),
            DeleteMessageBatch(i) => on("sqs:DeleteMessage", &i.queue_url),
            ChangeMessageVisibility(i) => on("sqs:ChangeMessageVisibility", &i.queue_url),
            ChangeMessageVisibilityBatch(i) => on("sqs:ChangeMessageVisibility", &i.queue_url),
            TagQueue(i) => on("sqs:TagQueue", &i.queue_url).with_tags(i.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            UntagQueue(i) => on("sqs:UntagQueue", &i.queue_url).with_values("aws:TagKeys", i.tag_keys.clone()),
            ListQueueTags(i) => on("sqs:ListQueueTags", &i.queue_url),
            ListDeadLetterSourceQueues(i) => on("sqs:ListDeadLetterSourceQueues", &i.queue_url),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, context, form, form_at, json, target};

    const Q: &str = "arn:aws:sqs:us-east-1:123456789012:orders";

    #[test]
    fn actions_and_queues() {
        let url = "http://localhost:9001/123456789012/orders";
        let j = |op: &str, body: String| json(&format!("AmazonSQS.{op}"), &body);
        let on_url = |op: &str, extra: &str| j(op, format!(r#"{{"QueueUrl":"{url}"{extra}}}"#));
        check(vec![
            (j("CreateQueue", r#"{"QueueName":"orders"}"#.into()), "sqs:CreateQueue", Q),
            (j("GetQueueUrl", r#"{"QueueName":"orders"}"#.into()), "sqs:GetQueueUrl", Q),
            (
                j("GetQueueUrl", r#"{"QueueName":"orders","QueueOwnerAWSAccountId":"111122223333"}"#.into()),
                "sqs:GetQueueUrl",
                "arn:aws:sqs:us-east-1:111122223333:orders",
            ),
            (j("ListQueues", "{}".into()), "sqs:ListQueues", "*"),
            (on_url("DeleteQueue", ""), "sqs:DeleteQueue", Q),
            (on_url("PurgeQueue", ""), "sqs:PurgeQueue", Q),
            (on_url("GetQueueAttributes", ""), "sqs:GetQueueAttributes", Q),
            (on_url("SetQueueAttributes", r#","Attributes":{}"#), "sqs:SetQueueAttributes", Q),
            (on_url("SendMessage", r#","MessageBody":"b""#), "sqs:SendMessage", Q),
            (on_url("SendMessageBatch", r#","Entries":[{"Id":"a","MessageBody":"b"}]"#), "sqs:SendMessage", Q),
            (on_url("ReceiveMessage", ""), "sqs:ReceiveMessage", Q),
            (on_url("DeleteMessage", r#","ReceiptHandle":"r""#), "sqs:DeleteMessage", Q),
            (on_url("DeleteMessageBatch", r#","Entries":[{"Id":"a","ReceiptHandle":"r"}]"#), "sqs:DeleteMessage", Q),
            (on_url("ChangeMessageVisibility", r#","ReceiptHandle":"r","VisibilityTimeout":5"#), "sqs:ChangeMessageVisibility", Q),
            (
                on_url("ChangeMessageVisibilityBatch", r#","Entries":[{"Id":"a","ReceiptHandle":"r","VisibilityTimeout":5}]"#),
                "sqs:ChangeMessageVisibility",
                Q,
            ),
            (on_url("TagQueue", r#","Tags":{"k":"v"}"#), "sqs:TagQueue", Q),
            (on_url("UntagQueue", r#","TagKeys":["k"]"#), "sqs:UntagQueue", Q),
            (on_url("ListQueueTags", ""), "sqs:ListQueueTags", Q),
            (on_url("ListDeadLetterSourceQueues", ""), "sqs:ListDeadLetterSourceQueues", Q),
            // The account comes from the URL; a path or a bare name works as SQS reads them.
            (
                j("SendMessage", r#"{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/111122223333/other","MessageBody":"b"}"#.into()),
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:111122223333:other",
            ),
            (j("SendMessage", r#"{"QueueUrl":"orders","MessageBody":"b"}"#.into()), "sqs:SendMessage", Q),
            // The query protocol, posted to the queue's URL.
            (form_at("/123456789012/orders", "Action=ReceiveMessage&Version=2012-11-05"), "sqs:ReceiveMessage", Q),
            (form(&format!("Action=SendMessage&Version=2012-11-05&QueueUrl={}&MessageBody=b", urlencode(url))), "sqs:SendMessage", Q),
        ]);
    }

    fn urlencode(s: &str) -> String {
        s.replace(':', "%3A").replace('/', "%2F")
    }

    #[test]
    fn tags_are_condition_keys() {
        let t = target(&json("AmazonSQS.CreateQueue", r#"{"QueueName":"q","tags":{"team":"a","env":"b"}}"#));
        assert_eq!(context(&t, "aws:TagKeys"), Some(&["env".to_string(), "team".to_string()][..]));
        assert_eq!(context(&t, "aws:RequestTag/team"), Some(&["a".to_string()][..]));
        let t = target(&json("AmazonSQS.UntagQueue", r#"{"QueueUrl":"q","TagKeys":["x"]}"#));
        assert_eq!(context(&t, "aws:TagKeys"), Some(&["x".to_string()][..]));
    }

    #[test]
    fn calls_that_did_not_decode_have_no_target() {
        let a = json("AmazonSQS.SendMessage", r#"{"MessageBody":"b"}"#);
        assert!(a.target(&crate::authz::testing::scope()).is_none());
    }
}
