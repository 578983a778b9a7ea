//! CloudWatch Logs' half of the authorization table: each call's IAM action and resource, in
//! the form AWS's denials show: `…:log-group:<group>:log-stream:` for calls on a group,
//! `…:log-stream:<stream>` for calls on one stream (CreateLogStream, DeleteLogStream,
//! PutLogEvents, GetLogEvents), `…:log-group::log-stream:` for DescribeLogGroups, which names no
//! group, and the ARN as given (`…:log-group:<group>`, AWS's `:*` left off) for the calls that
//! take one (TagResource, UntagResource, ListTagsForResource).

use super::*;
use crate::authz::{Scope, Target};

fn stream_arn(scope: &Scope<'_>, group: &str, stream: &str) -> String {
    format!("arn:aws:logs:{}:{}:log-group:{group}:log-stream:{stream}", scope.region, scope.account)
}

/// A log group's ARN as the caller gave it, without AWS's `:*` (None if it names no group).
fn resource_arn(arn: &str) -> Option<String> {
    group_of_arn(arn)?;
    Some(arn.strip_suffix(":*").unwrap_or(arn).to_string())
}

impl LogsRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode,
    /// or names its group in no usable way: it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use LogsCall::*;
        Some(match self.call.as_ref().ok()? {
            DescribeLogGroups(_) => Target::on("logs:DescribeLogGroups", stream_arn(scope, "", "")),
            DescribeLogStreams(i) => Target::on("logs:DescribeLogStreams", stream_arn(scope, &i.group.name().ok()?, "")),
            GetLogEvents(i) => Target::on("logs:GetLogEvents", stream_arn(scope, &i.group.name().ok()?, &i.log_stream_name)),
            FilterLogEvents(i) => Target::on("logs:FilterLogEvents", stream_arn(scope, &i.group.name().ok()?, "")),
            CreateLogGroup(i) => Target::on("logs:CreateLogGroup", stream_arn(scope, &i.log_group_name, "")),
            DeleteLogGroup(i) => Target::on("logs:DeleteLogGroup", stream_arn(scope, &i.log_group_name, "")),
            CreateLogStream(i) => Target::on("logs:CreateLogStream", stream_arn(scope, &i.log_group_name, &i.log_stream_name)),
            DeleteLogStream(i) => Target::on("logs:DeleteLogStream", stream_arn(scope, &i.log_group_name, &i.log_stream_name)),
            PutLogEvents(i) => Target::on("logs:PutLogEvents", stream_arn(scope, &i.log_group_name, &i.log_stream_name)),
            PutRetentionPolicy(i) => Target::on("logs:PutRetentionPolicy", stream_arn(scope, &i.log_group_name, "")),
            DeleteRetentionPolicy(i) => Target::on("logs:DeleteRetentionPolicy", stream_arn(scope, &i.log_group_name, "")),
            TagLogGroup(i) => Target::on("logs:TagLogGroup", stream_arn(scope, &i.log_group_name, "")),
            UntagLogGroup(i) => Target::on("logs:UntagLogGroup", stream_arn(scope, &i.log_group_name, "")),
            ListTagsLogGroup(i) => Target::on("logs:ListTagsLogGroup", stream_arn(scope, &i.log_group_name, "")),
            TagResource(i) => Target::on("logs:TagResource", resource_arn(&i.resource_arn)?),
            UntagResource(i) => Target::on("logs:UntagResource", resource_arn(&i.resource_arn)?),
            ListTagsForResource(i) => Target::on("logs:ListTagsForResource", resource_arn(&i.resource_arn)?),
            PutSubscriptionFilter(i) => Target::on("logs:PutSubscriptionFilter", stream_arn(scope, &i.log_group_name, "")),
            DescribeSubscriptionFilters(i) => Target::on("logs:DescribeSubscriptionFilters", stream_arn(scope, &i.log_group_name, "")),
            DeleteSubscriptionFilter(i) => Target::on("logs:DeleteSubscriptionFilter", stream_arn(scope, &i.log_group_name, "")),
            PutMetricFilter(i) => Target::on("logs:PutMetricFilter", stream_arn(scope, &i.log_group_name, "")),
            DescribeMetricFilters(i) => {
                Target::on("logs:DescribeMetricFilters", stream_arn(scope, i.log_group_name.as_deref().unwrap_or(""), ""))
            }
            DeleteMetricFilter(i) => Target::on("logs:DeleteMetricFilter", stream_arn(scope, &i.log_group_name, "")),
            // TestMetricFilter reads no resource.
            TestMetricFilter(_) => Target::any("logs:TestMetricFilter"),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, json, scope};

    const G: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:";
    const A: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f";

    #[test]
    fn actions_and_resources() {
        let l = |op: &str, body: &str| json(&format!("Logs_20140328.{op}"), body);
        let stream = "2024/01/01/[$LATEST]abc";
        check(vec![
            (l("DescribeLogGroups", "{}"), "logs:DescribeLogGroups", "arn:aws:logs:us-east-1:123456789012:log-group::log-stream:"),
            (l("DescribeLogStreams", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:DescribeLogStreams", G),
            (
                l("DescribeLogStreams", r#"{"logGroupIdentifier":"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"}"#),
                "logs:DescribeLogStreams",
                G,
            ),
            (
                l("GetLogEvents", &format!(r#"{{"logGroupName":"/aws/lambda/f","logStreamName":"{stream}"}}"#)),
                "logs:GetLogEvents",
                &format!("{G}{stream}"),
            ),
            (l("FilterLogEvents", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:FilterLogEvents", G),
            (l("CreateLogGroup", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:CreateLogGroup", G),
            (l("DeleteLogGroup", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:DeleteLogGroup", G),
            (l("CreateLogStream", r#"{"logGroupName":"/aws/lambda/f","logStreamName":"s"}"#), "logs:CreateLogStream", &format!("{G}s")),
            (l("DeleteLogStream", r#"{"logGroupName":"/aws/lambda/f","logStreamName":"s"}"#), "logs:DeleteLogStream", &format!("{G}s")),
            (
                l("PutLogEvents", r#"{"logGroupName":"/aws/lambda/f","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m"}]}"#),
                "logs:PutLogEvents",
                &format!("{G}s"),
            ),
            (l("PutRetentionPolicy", r#"{"logGroupName":"/aws/lambda/f","retentionInDays":1}"#), "logs:PutRetentionPolicy", G),
            (l("DeleteRetentionPolicy", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:DeleteRetentionPolicy", G),
            (l("TagLogGroup", r#"{"logGroupName":"/aws/lambda/f","tags":{"k":"v"}}"#), "logs:TagLogGroup", G),
            (l("UntagLogGroup", r#"{"logGroupName":"/aws/lambda/f","tags":["k"]}"#), "logs:UntagLogGroup", G),
            (l("ListTagsLogGroup", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:ListTagsLogGroup", G),
            (l("TagResource", &format!(r#"{{"resourceArn":"{A}","tags":{{"k":"v"}}}}"#)), "logs:TagResource", A),
            (l("UntagResource", &format!(r#"{{"resourceArn":"{A}:*","tagKeys":["k"]}}"#)), "logs:UntagResource", A),
            (l("ListTagsForResource", &format!(r#"{{"resourceArn":"{A}"}}"#)), "logs:ListTagsForResource", A),
            (
                l(
                    "PutSubscriptionFilter",
                    r#"{"logGroupName":"/aws/lambda/f","filterName":"s","filterPattern":"","destinationArn":"arn:aws:lambda:us-east-1:123456789012:function:c"}"#,
                ),
                "logs:PutSubscriptionFilter",
                G,
            ),
            (l("DescribeSubscriptionFilters", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:DescribeSubscriptionFilters", G),
            (l("DeleteSubscriptionFilter", r#"{"logGroupName":"/aws/lambda/f","filterName":"s"}"#), "logs:DeleteSubscriptionFilter", G),
            (
                l(
                    "PutMetricFilter",
                    r#"{"logGroupName":"/aws/lambda/f","filterName":"m","filterPattern":"ERROR","metricTransformations":[{"metricName":"E","metricNamespace":"N","metricValue":"1"}]}"#,
                ),
                "logs:PutMetricFilter",
                G,
            ),
            (l("DescribeMetricFilters", r#"{"logGroupName":"/aws/lambda/f"}"#), "logs:DescribeMetricFilters", G),
            (l("DescribeMetricFilters", "{}"), "logs:DescribeMetricFilters", "arn:aws:logs:us-east-1:123456789012:log-group::log-stream:"),
            (l("DeleteMetricFilter", r#"{"logGroupName":"/aws/lambda/f","filterName":"m"}"#), "logs:DeleteMetricFilter", G),
            (l("TestMetricFilter", r#"{"filterPattern":"ERROR","logEventMessages":["x"]}"#), "logs:TestMetricFilter", "*"),
        ]);
        // An ARN that names no log group: the call fails on its own.
        assert!(l("ListTagsForResource", r#"{"resourceArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#)
            .target(&scope())
            .is_none());
        // Neither a name nor an identifier: the call fails on its own.
        assert!(l("FilterLogEvents", "{}").target(&scope()).is_none());
    }
}
