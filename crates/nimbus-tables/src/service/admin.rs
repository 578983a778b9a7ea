//! The table calls IaC tools make beside CreateTable and DescribeTable: tags (TagResource,
//! UntagResource, ListTagsOfResource, CreateTable's `Tags`), point-in-time recovery's setting
//! (DescribeContinuousBackups, UpdateContinuousBackups: the flag is recorded, no restore is
//! offered), and the account calls DescribeLimits and DescribeEndpoints. Texts are AWS's.

use std::collections::{BTreeMap, BTreeSet};

use super::{now, validation, TableService};
use crate::error::TableError;
use crate::request::*;
use crate::schema::PointInTimeRecovery;
use crate::store::{in_tx, TableTx};

/// Most tags on one table.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE: usize = 256;
/// RecoveryPeriodInDays when UpdateContinuousBackups names none.
pub const DEFAULT_RECOVERY_DAYS: i64 = 35;
/// How far behind the present the latest restorable time stays (AWS's five minutes).
const RESTORE_LAG: f64 = 300.0;

/// AWS's default account quotas (DescribeLimits).
pub const ACCOUNT_MAX_CAPACITY: i64 = 80_000;
/// AWS's default per-table quotas (DescribeLimits).
pub const TABLE_MAX_CAPACITY: i64 = 40_000;

/// Letters, numbers, spaces and `_ . : / = + - @`: the characters AWS allows in tags.
fn tag_text_ok(text: &str) -> bool {
    text.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

fn check_tag_key(key: &str) -> Result<(), TableError> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY || !tag_text_ok(key) {
        return Err(validation(format!("The Tag Key provided is invalid, Key: {key}")));
    }
    if key.starts_with("aws:") {
        return Err(validation(format!("Tag Key cannot be prefixed with aws:, Key: {key}")));
    }
    Ok(())
}

/// Checks tags as TagResource and CreateTable do, and merges them over `existing`.
pub(crate) fn merge_tags(existing: &BTreeMap<String, String>, tags: &[Tag]) -> Result<BTreeMap<String, String>, TableError> {
    let mut seen = BTreeSet::new();
    for tag in tags {
        check_tag_key(&tag.key)?;
        if tag.value.chars().count() > MAX_TAG_VALUE || !tag_text_ok(&tag.value) {
            return Err(validation(format!("The Tag Value provided is invalid, Value: {}", tag.value)));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(validation(format!("Duplicate Tag Keys provided as input: Duplicate Tag Key found {}", tag.key)));
        }
    }
    let mut merged = existing.clone();
    merged.extend(tags.iter().map(|t| (t.key.clone(), t.value.clone())));
    if merged.len() > MAX_TAGS {
        return Err(validation("Number of Tags exceed the current limit for the provided ResourceArn"));
    }
    Ok(merged)
}

/// `TableName` of the backup calls: a name or a table's ARN.
fn table_name_of(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(_) => name_or_arn.split_once(":table/").map_or(name_or_arn, |(_, rest)| rest.split('/').next().unwrap_or(rest)),
        None => name_or_arn,
    }
}

impl TableService {
    /// The region this service answers for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The table a tagging call's `ResourceArn` names, with AWS's refusals of other ARNs.
    fn tagged_table(&self, arn: &str) -> Result<String, TableError> {
        if !arn.starts_with("arn:") {
            return Err(TableError::invalid(format!("ARNs must start with 'arn:': {arn}")));
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, region, _account, resource] = parts[..] else {
            return Err(TableError::invalid(format!("Provided Arn is not a DynamoDB resource arn: {arn}")));
        };
        let Some(rest) = resource.strip_prefix("table/").filter(|_| service == "dynamodb") else {
            return Err(TableError::invalid(format!("Provided Arn is not a DynamoDB resource arn: {arn}")));
        };
        if region != self.region {
            return Err(validation(format!("Invalid TableArn: Invalid ResourceArn provided as input {arn}")));
        }
        let mut pieces = rest.split('/');
        let name = pieces.next().unwrap_or_default();
        if name.is_empty() || matches!(pieces.next(), Some(kind) if kind != "stream") {
            return Err(TableError::invalid(format!(
                "Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}"
            )));
        }
        if arn != self.table_arn(name) {
            // Another account's table, or a stream's ARN: nothing here to tag.
            return Err(not_found_arn(arn));
        }
        Ok(name.to_string())
    }

    /// TagResource: adds or replaces tags on a table.
    pub async fn tag_resource(&self, input: TagResourceInput) -> Result<Empty, TableError> {
        let name = self.tagged_table(&input.resource_arn)?;
        if input.tags.is_empty() {
            return Err(validation("Atleast one Tag needs to be provided as Input."));
        }
        let arn = input.resource_arn;
        in_tx!(&self.db, true, |tx| {
            let mut table = tx.find_table_for_change(&name).await?.ok_or_else(|| not_found_arn(&arn))?;
            table.def.tags = merge_tags(&table.def.tags, &input.tags)?;
            tx.save_table(&table).await?;
            Ok(Empty {})
        })
    }

    /// UntagResource: removes tags by key (keys the table lacks are ignored).
    pub async fn untag_resource(&self, input: UntagResourceInput) -> Result<Empty, TableError> {
        let name = self.tagged_table(&input.resource_arn)?;
        if input.tag_keys.is_empty() {
            return Err(validation("Atleast one Tag Key needs to be provided as Input."));
        }
        for key in &input.tag_keys {
            check_tag_key(key)?;
        }
        if input.tag_keys.len() > MAX_TAGS {
            return Err(validation("Number of Tags exceed the current limit for the provided ResourceArn"));
        }
        let arn = input.resource_arn;
        in_tx!(&self.db, true, |tx| {
            let mut table = tx.find_table_for_change(&name).await?.ok_or_else(|| not_found_arn(&arn))?;
            for key in &input.tag_keys {
                table.def.tags.remove(key);
            }
            tx.save_table(&table).await?;
            Ok(Empty {})
        })
    }

    /// ListTagsOfResource: a table's tags by key, in one page.
    pub async fn list_tags_of_resource(&self, input: ListTagsOfResourceInput) -> Result<ListTagsOfResourceOutput, TableError> {
        let name = self.tagged_table(&input.resource_arn)?;
        let arn = input.resource_arn;
        in_tx!(&self.db, false, |tx| {
            let table = tx.find_table(&name).await?.ok_or_else(|| not_found_arn(&arn))?;
            let tags = table.def.tags.into_iter().map(|(key, value)| Tag { key, value }).collect();
            Ok(ListTagsOfResourceOutput { tags, next_token: None })
        })
    }

    /// DescribeContinuousBackups.
    pub async fn describe_continuous_backups(&self, input: DescribeContinuousBackupsInput) -> Result<ContinuousBackupsOutput, TableError> {
        let name = table_name_of(&input.table_name).to_string();
        in_tx!(&self.db, false, |tx| {
            let table = tx.find_table(&name).await?.ok_or_else(|| table_not_found(&name))?;
            Ok(backups_output(table.def.point_in_time_recovery.as_ref(), now()))
        })
    }

    /// UpdateContinuousBackups: records whether point-in-time recovery is on, and since when.
    pub async fn update_continuous_backups(&self, input: UpdateContinuousBackupsInput) -> Result<ContinuousBackupsOutput, TableError> {
        let spec = input.point_in_time_recovery_specification;
        if let Some(days) = spec.recovery_period_in_days {
            if !(1..=35).contains(&days) {
                let bound = if days < 1 { "greater than or equal to 1" } else { "less than or equal to 35" };
                return Err(validation(format!(
                    "1 validation error detected: Value '{days}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: Member must have value {bound}"
                )));
            }
            if !spec.point_in_time_recovery_enabled {
                return Err(validation("Invalid Request: Cannot specify RecoveryPeriodInDays when disabling point-in-time recovery."));
            }
        }
        let name = table_name_of(&input.table_name).to_string();
        in_tx!(&self.db, true, |tx| {
            let mut table = tx.find_table_for_change(&name).await?.ok_or_else(|| table_not_found(&name))?;
            let at = now();
            table.def.point_in_time_recovery = match (spec.point_in_time_recovery_enabled, table.def.point_in_time_recovery.take()) {
                (false, _) => None,
                (true, Some(pitr)) => {
                    Some(PointInTimeRecovery { days: spec.recovery_period_in_days.unwrap_or(pitr.days), since: pitr.since })
                }
                (true, None) => {
                    Some(PointInTimeRecovery { days: spec.recovery_period_in_days.unwrap_or(DEFAULT_RECOVERY_DAYS), since: at })
                }
            };
            tx.save_table(&table).await?;
            Ok(backups_output(table.def.point_in_time_recovery.as_ref(), at))
        })
    }

    /// DescribeLimits: AWS's default quotas.
    pub fn describe_limits(&self) -> DescribeLimitsOutput {
        DescribeLimitsOutput {
            account_max_read_capacity_units: ACCOUNT_MAX_CAPACITY,
            account_max_write_capacity_units: ACCOUNT_MAX_CAPACITY,
            table_max_read_capacity_units: TABLE_MAX_CAPACITY,
            table_max_write_capacity_units: TABLE_MAX_CAPACITY,
        }
    }

    /// DescribeEndpoints: the address the caller reached (`host`), else AWS's regional one.
    pub fn describe_endpoints(&self, host: Option<&str>) -> DescribeEndpointsOutput {
        let address = host.filter(|h| !h.is_empty()).map_or_else(|| format!("dynamodb.{}.amazonaws.com", self.region), str::to_string);
        DescribeEndpointsOutput { endpoints: vec![Endpoint { address, cache_period_in_minutes: 1440 }] }
    }
}

fn not_found_arn(arn: &str) -> TableError {
    TableError::NotFound(format!("Requested resource not found: ResourceArn: {arn} not found"))
}

fn table_not_found(name: &str) -> TableError {
    TableError::TableNotFound(format!("Table not found: {name}"))
}

/// The ContinuousBackupsDescription of a table whose recovery setting is `pitr`, at `at`.
pub(crate) fn backups_output(pitr: Option<&PointInTimeRecovery>, at: f64) -> ContinuousBackupsOutput {
    let description = match pitr {
        None => PointInTimeRecoveryDescription {
            point_in_time_recovery_status: "DISABLED".into(),
            recovery_period_in_days: None,
            earliest_restorable_date_time: None,
            latest_restorable_date_time: None,
        },
        Some(pitr) => {
            let earliest = pitr.since.max(at - pitr.days as f64 * 86_400.0);
            let latest = (at - RESTORE_LAG).max(earliest);
            PointInTimeRecoveryDescription {
                point_in_time_recovery_status: "ENABLED".into(),
                recovery_period_in_days: Some(pitr.days),
                earliest_restorable_date_time: Some(earliest),
                latest_restorable_date_time: Some(latest),
            }
        }
    };
    ContinuousBackupsOutput {
        continuous_backups_description: ContinuousBackupsDescription {
            continuous_backups_status: "ENABLED".into(),
            point_in_time_recovery_description: description,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: &str) -> Tag {
        Tag { key: key.into(), value: value.into() }
    }

    #[test]
    fn tags_are_checked_as_aws_checks_them() {
        let none = BTreeMap::new();
        let cases: &[(Vec<Tag>, &str)] = &[
            (vec![tag(&"k".repeat(129), "v")], "The Tag Key provided is invalid, Key: "),
            (vec![tag("a#b", "v")], "The Tag Key provided is invalid, Key: a#b"),
            (vec![tag("k", &"v".repeat(257))], "The Tag Value provided is invalid, Value: "),
            (vec![tag("k", "<>")], "The Tag Value provided is invalid, Value: <>"),
            (vec![tag("aws:owner", "v")], "Tag Key cannot be prefixed with aws:, Key: aws:owner"),
            (vec![tag("k", "1"), tag("k", "2")], "Duplicate Tag Keys provided as input: Duplicate Tag Key found k"),
            ((0..51).map(|i| tag(&format!("k{i}"), "v")).collect(), "Number of Tags exceed the current limit for the provided ResourceArn"),
        ];
        for (tags, text) in cases {
            let e = merge_tags(&none, tags).expect_err(text);
            assert!(e.to_string().starts_with(text), "{e}");
            assert_eq!(e.code(), "ValidationException");
        }
        let ok = merge_tags(&none, &[tag("Name", "orders table"), tag("team/owner", "a.b@c.d+-=:_"), tag("empty", "")]).expect("valid");
        assert_eq!(ok.len(), 3);
        // Replacing a key does not count twice; 50 in all is allowed.
        let fifty: BTreeMap<String, String> = (0..50).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert_eq!(merge_tags(&fifty, &[tag("k0", "new")]).expect("replace")["k0"], "new");
        merge_tags(&fifty, &[tag("k50", "v")]).expect_err("a 51st tag");
    }

    #[test]
    fn tagging_arns_are_table_arns_of_this_region() {
        let svc = TableService::in_memory("us-east-1", "123456789012").expect("service");
        let t = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
        assert_eq!(svc.tagged_table(t).expect("table"), "orders");
        let cases: &[(&str, &str)] = &[
            ("orders", "One or more parameter values were invalid: ARNs must start with 'arn:': orders"),
            (
                "arn:aws:sqs:us-east-1:123456789012:q",
                "One or more parameter values were invalid: Provided Arn is not a DynamoDB resource arn: ",
            ),
            ("arn:aws:dynamodb:us-west-2:123456789012:table/orders", "Invalid TableArn: Invalid ResourceArn provided as input "),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/byUser",
                "One or more parameter values were invalid: Invalid resource arn provided, only table or stream is accepted.",
            ),
            ("arn:aws:dynamodb:us-east-1:999999999999:table/orders", "Requested resource not found: ResourceArn: "),
        ];
        for (arn, text) in cases {
            let e = svc.tagged_table(arn).expect_err(arn);
            assert!(e.to_string().starts_with(text), "{arn}: {e}");
        }
    }

    #[test]
    fn recovery_windows() {
        let off = backups_output(None, 1000.0);
        let d = &off.continuous_backups_description;
        assert_eq!(d.continuous_backups_status, "ENABLED");
        assert_eq!(d.point_in_time_recovery_description.point_in_time_recovery_status, "DISABLED");
        assert!(d.point_in_time_recovery_description.earliest_restorable_date_time.is_none());
        // Just enabled: both ends at the moment it was enabled.
        let pitr = PointInTimeRecovery { since: 1000.0, days: 35 };
        let fresh = backups_output(Some(&pitr), 1010.0).continuous_backups_description.point_in_time_recovery_description;
        assert_eq!((fresh.earliest_restorable_date_time, fresh.latest_restorable_date_time), (Some(1000.0), Some(1000.0)));
        // Long enabled: the window is the recovery period, ending five minutes ago.
        let at = 1000.0 + 40.0 * 86_400.0;
        let old = backups_output(Some(&pitr), at).continuous_backups_description.point_in_time_recovery_description;
        assert_eq!(old.earliest_restorable_date_time, Some(at - 35.0 * 86_400.0));
        assert_eq!(old.latest_restorable_date_time, Some(at - 300.0));
        assert_eq!(old.recovery_period_in_days, Some(35));
        assert_eq!(table_name_of("arn:aws:dynamodb:us-east-1:1:table/orders"), "orders");
        assert_eq!(table_name_of("orders"), "orders");
    }
}
