//! DynamoDB's half of the authorization table: each call's IAM action (`dynamodb:<Op>`) and
//! resource, as the Service Authorization Reference lists them: a table
//! (`arn:aws:dynamodb:<region>:<account>:table/<name>`), an index of it (`…/index/<name>`) for
//! a Query or Scan of one, every table a batch or transaction touches.

use super::*;
use crate::authz::{Scope, Target};

fn table(scope: &Scope<'_>, name: &str) -> String {
    format!("arn:aws:dynamodb:{}:{}:table/{name}", scope.region, scope.account)
}

/// A `TableName` member that may be a table's ARN, as a name.
fn table_name(name_or_arn: &str) -> &str {
    match name_or_arn.starts_with("arn:") {
        true => name_or_arn.split_once(":table/").map_or(name_or_arn, |(_, rest)| rest.split('/').next().unwrap_or(rest)),
        false => name_or_arn,
    }
}

/// One action on several tables: the first is the target's resource, the rest `also`.
fn on_tables<'a>(scope: &Scope<'_>, action: &'static str, names: impl IntoIterator<Item = &'a str>) -> Target {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.dedup();
    let mut target = Target::on(action, names.first().map_or("*".to_string(), |n| table(scope, n)));
    for name in names.iter().skip(1) {
        target = target.and(action, table(scope, name));
    }
    target
}

impl DynamoDbRequest {
    /// What IAM authorizes this call as (None when it did not decode).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use DynamoDbCall::*;
        let call = self.call.as_ref().ok()?;
        let action = DynamoDbCall::iam_action(self.operation)?;
        let on = |name: &str| Target::on(action, table(scope, name));
        Some(match call {
            ListTables(_) | DescribeLimits(_) | DescribeEndpoints(_) => Target::any(action),
            TagResource(i) => Target::on(action, i.resource_arn.clone()),
            UntagResource(i) => Target::on(action, i.resource_arn.clone()),
            ListTagsOfResource(i) => Target::on(action, i.resource_arn.clone()),
            DescribeContinuousBackups(i) => on(table_name(&i.table_name)),
            UpdateContinuousBackups(i) => on(table_name(&i.table_name)),
            CreateTable(i) => on(&i.table_name),
            DescribeTable(i) | DeleteTable(i) | DescribeTimeToLive(i) => on(&i.table_name),
            UpdateTable(i) => on(&i.table_name),
            UpdateTimeToLive(i) => on(&i.table_name),
            PutItem(i) => on(&i.table_name),
            GetItem(i) => on(&i.table_name),
            UpdateItem(i) => on(&i.table_name),
            DeleteItem(i) => on(&i.table_name),
            Query(i) | Scan(i) => match &i.index_name {
                Some(index) => Target::on(action, format!("{}/index/{index}", table(scope, &i.table_name))),
                None => on(&i.table_name),
            },
            BatchGetItem(i) => on_tables(scope, action, i.request_items.keys().map(String::as_str)),
            BatchWriteItem(i) => on_tables(scope, action, i.request_items.keys().map(String::as_str)),
            TransactGetItems(i) => on_tables(scope, "dynamodb:GetItem", i.transact_items.iter().map(|t| t.get.table_name.as_str())),
            TransactWriteItems(i) => {
                // Each entry needs its own action on its table (as AWS authorizes them).
                let mut checks: Vec<(&'static str, String)> = Vec::new();
                for entry in &i.transact_items {
                    let (action, e) = match (&entry.condition_check, &entry.put, &entry.delete, &entry.update) {
                        (Some(e), ..) => ("dynamodb:ConditionCheckItem", e),
                        (_, Some(e), ..) => ("dynamodb:PutItem", e),
                        (_, _, Some(e), _) => ("dynamodb:DeleteItem", e),
                        (_, _, _, Some(e)) => ("dynamodb:UpdateItem", e),
                        _ => continue,
                    };
                    checks.push((action, table(scope, &e.table_name)));
                }
                let mut checks = checks.into_iter();
                let (first_action, first) = checks.next()?;
                checks.fold(Target::on(first_action, first), |t, (a, r)| t.and(a, r))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, json};

    const T: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";

    #[test]
    fn actions_and_tables() {
        let j = |op: &str, body: &str| json(&format!("DynamoDB_20120810.{op}"), body);
        check(vec![
            (j("ListTables", "{}"), "dynamodb:ListTables", "*"),
            (j("DescribeLimits", "{}"), "dynamodb:DescribeLimits", "*"),
            (j("DescribeEndpoints", "{}"), "dynamodb:DescribeEndpoints", "*"),
            (j("TagResource", &format!(r#"{{"ResourceArn":"{T}","Tags":[{{"Key":"k","Value":"v"}}]}}"#)), "dynamodb:TagResource", T),
            (j("UntagResource", &format!(r#"{{"ResourceArn":"{T}","TagKeys":["k"]}}"#)), "dynamodb:UntagResource", T),
            (j("ListTagsOfResource", &format!(r#"{{"ResourceArn":"{T}"}}"#)), "dynamodb:ListTagsOfResource", T),
            (j("DescribeContinuousBackups", r#"{"TableName":"orders"}"#), "dynamodb:DescribeContinuousBackups", T),
            (
                j(
                    "UpdateContinuousBackups",
                    &format!(r#"{{"TableName":"{T}","PointInTimeRecoverySpecification":{{"PointInTimeRecoveryEnabled":true}}}}"#),
                ),
                "dynamodb:UpdateContinuousBackups",
                T,
            ),
            (j("DescribeTable", r#"{"TableName":"orders"}"#), "dynamodb:DescribeTable", T),
            (j("PutItem", r#"{"TableName":"orders","Item":{"id":{"S":"1"}}}"#), "dynamodb:PutItem", T),
            (j("GetItem", r#"{"TableName":"orders","Key":{"id":{"S":"1"}}}"#), "dynamodb:GetItem", T),
            (
                j("Query", r#"{"TableName":"orders","IndexName":"byUser","KeyConditionExpression":"u = :u"}"#),
                "dynamodb:Query",
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/byUser",
            ),
            (
                j("BatchWriteItem", r#"{"RequestItems":{"orders":[{"DeleteRequest":{"Key":{"id":{"S":"1"}}}}]}}"#),
                "dynamodb:BatchWriteItem",
                T,
            ),
            (
                j("TransactWriteItems", r#"{"TransactItems":[{"Put":{"TableName":"orders","Item":{"id":{"S":"1"}}}}]}"#),
                "dynamodb:PutItem",
                T,
            ),
        ]);
    }
}
