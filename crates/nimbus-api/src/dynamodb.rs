//! DynamoDB on the wire: recognises `X-Amz-Target: DynamoDB_20120810.<Op>` (awsJson 1.0),
//! decodes the body against DynamoDB's model into the typed inputs of `nimbus-tables`, runs
//! them on the account's [`TableService`] and answers in DynamoDB's JSON, errors with the
//! members AWS adds to some of them (`Item` of a failed condition, `CancellationReasons`).

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use nimbus_protocol::{calls, encode, AwsError, DecodeError, Protocol, DYNAMODB};
use nimbus_tables::request::*;
use nimbus_tables::{TableError, TableService};
use serde::Serialize;

use crate::response::Body;

mod target;

/// The `X-Amz-Target` prefix of DynamoDB's operations.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// One DynamoDB request: the operation, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct DynamoDbRequest {
    pub operation: &'static str,
    pub call: Result<DynamoDbCall, TableError>,
}

calls! {
    iam "dynamodb";
    /// Every DynamoDB operation Nimbus serves, with its typed input.
    pub enum DynamoDbCall {
        CreateTable(CreateTableInput),
        DescribeTable(TableNameInput),
        ListTables(ListTablesInput),
        UpdateTable(UpdateTableInput),
        DeleteTable(TableNameInput),
        UpdateTimeToLive(UpdateTimeToLiveInput),
        DescribeTimeToLive(TableNameInput),
        PutItem(PutItemInput),
        GetItem(GetItemInput),
        UpdateItem(UpdateItemInput),
        DeleteItem(DeleteItemInput),
        Query(ReadInput),
        Scan(ReadInput),
        BatchGetItem(BatchGetItemInput),
        BatchWriteItem(BatchWriteItemInput),
        TransactWriteItems(TransactWriteItemsInput),
        TransactGetItems(TransactGetItemsInput),
        TagResource(TagResourceInput),
        UntagResource(UntagResourceInput),
        ListTagsOfResource(ListTagsOfResourceInput),
        DescribeContinuousBackups(DescribeContinuousBackupsInput),
        UpdateContinuousBackups(UpdateContinuousBackupsInput),
        DescribeLimits(NoInput),
        DescribeEndpoints(NoInput),
    }
}

impl DynamoDbRequest {
    /// The IAM action name (`dynamodb:PutItem`).
    pub fn name(&self) -> &'static str {
        DynamoDbCall::iam_action(self.operation).unwrap_or("dynamodb:Unknown")
    }
}

/// Decodes a request whose target named `operation`.
pub fn parse(operation: &str, body: &[u8]) -> DynamoDbRequest {
    match DynamoDbCall::from_json(&DYNAMODB, operation, body) {
        Some((operation, call)) => DynamoDbRequest { operation, call: call.map_err(decode_error) },
        None => DynamoDbRequest { operation: "Unknown", call: Err(TableError::NotImplemented(operation.to_string())) },
    }
}

/// A member path as DynamoDB's validation messages name it: `tableName`, `key`.
fn camel(member: &str) -> String {
    member
        .split('.')
        .map(|part| {
            let mut c = part.chars();
            c.next().map(|f| f.to_lowercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn decode_error(e: DecodeError) -> TableError {
    match e {
        DecodeError::Missing { member } => TableError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            camel(&member)
        )),
        DecodeError::Type { member, expected, value } | DecodeError::Binding { member, expected, value } => {
            TableError::Serialization(format!("Unexpected value for {member}: expected {expected}, got {value}"))
        }
        DecodeError::Malformed(m) => TableError::Serialization(m),
        // A value the model allows and DynamoDB refuses while reading it (bad base64).
        DecodeError::Shape(m) => TableError::Serialization(m),
    }
}

/// A [`TableError`] as the protocol layer encodes it.
struct WireError<'a>(&'a TableError);

impl std::fmt::Display for WireError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl AwsError for WireError<'_> {
    fn code(&self) -> &str {
        self.0.code()
    }
    fn status(&self) -> u16 {
        self.0.status()
    }
}

/// The JSON answer to an error, with the members some errors carry.
fn error_response(e: &TableError, request_id: &str) -> Response<Bytes> {
    let response = encode::error(&DYNAMODB, Protocol::AwsJson1_0, &WireError(e), request_id);
    let extra = match e {
        TableError::ConditionalCheckFailed { item: Some(item) } => Some(("Item", serde_json::to_value(item))),
        TableError::TransactionCanceled(reasons) => Some(("CancellationReasons", serde_json::to_value(reasons))),
        _ => None,
    };
    let Some((name, Ok(value))) = extra else { return response };
    let (parts, body) = response.into_parts();
    let mut document: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(map) = document.as_object_mut() {
        map.insert(name.to_string(), value);
    }
    let body = serde_json::to_vec(&document).map(Bytes::from).unwrap_or(body);
    let mut response = Response::from_parts(parts, body.clone());
    response.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    response
}

fn ok<T: Serialize>(operation: &str, output: &T, request_id: &str) -> Response<Bytes> {
    encode::output(&DYNAMODB, Protocol::AwsJson1_0, operation, output, request_id)
}

async fn run(svc: &Arc<TableService>, call: DynamoDbCall, host: Option<&str>, request_id: &str) -> Result<Response<Bytes>, TableError> {
    let op = call.operation();
    Ok(match call {
        DynamoDbCall::CreateTable(i) => ok(op, &svc.create_table(i).await?, request_id),
        DynamoDbCall::DescribeTable(i) => ok(op, &svc.describe_table(i.table_name).await?, request_id),
        DynamoDbCall::ListTables(i) => ok(op, &svc.list_tables(i).await?, request_id),
        DynamoDbCall::UpdateTable(i) => ok(op, &svc.update_table(i).await?, request_id),
        DynamoDbCall::DeleteTable(i) => ok(op, &svc.delete_table(i.table_name).await?, request_id),
        DynamoDbCall::UpdateTimeToLive(i) => ok(op, &svc.update_time_to_live(i).await?, request_id),
        DynamoDbCall::DescribeTimeToLive(i) => ok(op, &svc.describe_time_to_live(i.table_name).await?, request_id),
        DynamoDbCall::PutItem(i) => ok(op, &svc.put_item(i).await?, request_id),
        DynamoDbCall::GetItem(i) => ok(op, &svc.get_item(i).await?, request_id),
        DynamoDbCall::UpdateItem(i) => ok(op, &svc.update_item(i).await?, request_id),
        DynamoDbCall::DeleteItem(i) => ok(op, &svc.delete_item(i).await?, request_id),
        DynamoDbCall::Query(i) => ok(op, &svc.read(i, true).await?, request_id),
        DynamoDbCall::Scan(i) => ok(op, &svc.read(i, false).await?, request_id),
        DynamoDbCall::BatchGetItem(i) => ok(op, &svc.batch_get_item(i).await?, request_id),
        DynamoDbCall::BatchWriteItem(i) => ok(op, &svc.batch_write_item(i).await?, request_id),
        DynamoDbCall::TransactWriteItems(i) => ok(op, &svc.transact_write_items(i).await?, request_id),
        DynamoDbCall::TransactGetItems(i) => ok(op, &svc.transact_get_items(i).await?, request_id),
        DynamoDbCall::TagResource(i) => ok(op, &svc.tag_resource(i).await?, request_id),
        DynamoDbCall::UntagResource(i) => ok(op, &svc.untag_resource(i).await?, request_id),
        DynamoDbCall::ListTagsOfResource(i) => ok(op, &svc.list_tags_of_resource(i).await?, request_id),
        DynamoDbCall::DescribeContinuousBackups(i) => ok(op, &svc.describe_continuous_backups(i).await?, request_id),
        DynamoDbCall::UpdateContinuousBackups(i) => ok(op, &svc.update_continuous_backups(i).await?, request_id),
        DynamoDbCall::DescribeLimits(_) => ok(op, &svc.describe_limits(), request_id),
        DynamoDbCall::DescribeEndpoints(_) => ok(op, &svc.describe_endpoints(host), request_id),
    })
}

/// Runs the request on the account's tables; `host` is the `Host` the caller reached
/// (DescribeEndpoints answers it).
pub async fn execute(svc: &Arc<TableService>, req: DynamoDbRequest, host: Option<&str>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, host, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let TableError::Internal(why) = &e {
            tracing::error!(operation = req.operation, "dynamodb: {why}");
        }
        error_response(&e, &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_are_dynamodb_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("PutItem", r#"{"Item":{"id":{"S":"a"}}}"#, "ValidationException"),
            ("PutItem", r#"{"TableName":"t","Item":{"id":{"N":5}}}"#, "SerializationException"),
            ("PutItem", r#"{"TableName":"t","Item":{"id":{"B":"not base64!"}}}"#, "SerializationException"),
            ("ExecuteStatement", r#"{"Statement":"SELECT * FROM t"}"#, "UnknownOperationException"),
            ("GetItem", "not json", "SerializationException"),
        ];
        for (op, body, code) in cases {
            let e = parse(op, body.as_bytes()).call.expect_err(body);
            assert_eq!(e.code(), *code, "{op} {body}: {e}");
        }
        let e = parse("PutItem", br#"{"Item":{"id":{"S":"a"}}}"#).call.expect_err("missing");
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn errors_carry_their_members() {
        let reasons = vec![
            nimbus_tables::CancellationReason {
                code: "ConditionalCheckFailed".into(),
                message: Some("The conditional request failed".into()),
                item: None,
            },
            nimbus_tables::CancellationReason::none(),
        ];
        let r = error_response(&TableError::TransactionCanceled(reasons), "rid");
        let body: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#TransactionCanceledException");
        assert_eq!(
            body["message"],
            "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"
        );
        assert_eq!(body["CancellationReasons"][1], serde_json::json!({"Code": "None"}));
        assert_eq!(body["CancellationReasons"][0]["Message"], "The conditional request failed");
    }
}
