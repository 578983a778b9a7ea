//! CloudWatch Logs' half of the authorization table: each call's IAM action and resource, in
//! the form AWS's denials show: `…:log-group:<group>:log-stream:` for calls on a group,
//! `…:log-stream:<stream>` for calls on one stream, and `…:log-group::log-stream:` for
//! DescribeLogGroups, which names no group.

use super::*;
use crate::authz::{Scope, Target};

fn stream_arn(scope: &Scope<'_>, group: &str, stream: &str) -> String {
    format!("arn:aws:logs:{}:{}:log-group:{group}:log-stream:{stream}", scope.region, scope.account)
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
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, json, scope};

    const G: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:";

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
        ]);
        // Neither a name nor an identifier: the call fails on its own.
        assert!(l("FilterLogEvents", "{}").target(&scope()).is_none());
    }
}
