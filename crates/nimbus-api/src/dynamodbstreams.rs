//! DynamoDB Streams on the wire: recognises `X-Amz-Target: DynamoDBStreams_20120810.<Op>`
//! (awsJson 1.0, signed for `dynamodb`), decodes the body against the Streams model into the
//! typed inputs of `nimbus_tables::streams`, runs them on the account's [`TableService`] (whose
//! tables the streams belong to) and answers in the Streams' JSON.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use nimbus_protocol::{calls, encode, AwsError, DecodeError, Protocol, DYNAMODBSTREAMS};
use nimbus_tables::streams::*;
use nimbus_tables::{TableError, TableService};
use serde::Serialize;

use crate::response::Body;

mod target;

/// The `X-Amz-Target` prefix of DynamoDB Streams' operations.
pub const TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";

/// One DynamoDB Streams request: the operation, decoded (or the error AWS would answer).
#[derive(Debug)]
pub struct DynamoDbStreamsRequest {
    pub operation: &'static str,
    pub call: Result<DynamoDbStreamsCall, TableError>,
}

calls! {
    iam "dynamodb";
    /// Every DynamoDB Streams operation, with its typed input.
    pub enum DynamoDbStreamsCall {
        ListStreams(ListStreamsInput),
        DescribeStream(DescribeStreamInput),
        GetShardIterator(GetShardIteratorInput),
        GetRecords(GetRecordsInput),
    }
}

impl DynamoDbStreamsRequest {
    /// The IAM action name (`dynamodb:GetRecords`).
    pub fn name(&self) -> &'static str {
        DynamoDbStreamsCall::iam_action(self.operation).unwrap_or("dynamodb:Unknown")
    }
}

/// Decodes a request whose target named `operation`.
pub fn parse(operation: &str, body: &[u8]) -> DynamoDbStreamsRequest {
    match DynamoDbStreamsCall::from_json(&DYNAMODBSTREAMS, operation, body) {
        Some((operation, call)) => DynamoDbStreamsRequest { operation, call: call.map_err(decode_error) },
        None => DynamoDbStreamsRequest { operation: "Unknown", call: Err(TableError::NotImplemented(operation.to_string())) },
    }
}

/// A member path as the validation messages name it: `streamArn`.
fn camel(member: &str) -> String {
    let mut c = member.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect::<String>()).unwrap_or_default()
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
        DecodeError::Malformed(m) | DecodeError::Shape(m) => TableError::Serialization(m),
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

fn ok<T: Serialize>(operation: &str, output: &T, request_id: &str) -> Response<Bytes> {
    encode::output(&DYNAMODBSTREAMS, Protocol::AwsJson1_0, operation, output, request_id)
}

async fn run(svc: &Arc<TableService>, call: DynamoDbStreamsCall, request_id: &str) -> Result<Response<Bytes>, TableError> {
    let op = call.operation();
    Ok(match call {
        DynamoDbStreamsCall::ListStreams(i) => ok(op, &svc.list_streams(i).await?, request_id),
        DynamoDbStreamsCall::DescribeStream(i) => ok(op, &svc.describe_stream(i).await?, request_id),
        DynamoDbStreamsCall::GetShardIterator(i) => ok(op, &svc.get_shard_iterator(i).await?, request_id),
        DynamoDbStreamsCall::GetRecords(i) => ok(op, &svc.get_records(i).await?, request_id),
    })
}

/// Runs the request on the account's tables' streams.
pub async fn execute(svc: &Arc<TableService>, req: DynamoDbStreamsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let TableError::Internal(why) = &e {
            tracing::error!(operation = req.operation, "dynamodbstreams: {why}");
        }
        encode::error(&DYNAMODBSTREAMS, Protocol::AwsJson1_0, &WireError(&e), &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_are_streams_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("DescribeStream", "{}", "ValidationException"),
            ("GetRecords", r#"{"ShardIterator":5}"#, "SerializationException"),
            ("ListStreams", "not json", "SerializationException"),
            ("DescribeTable", "{}", "UnknownOperationException"),
        ];
        for (op, body, code) in cases {
            let e = parse(op, body.as_bytes()).call.expect_err(body);
            assert_eq!(e.code(), *code, "{op} {body}: {e}");
        }
        let e = parse("DescribeStream", b"{}").call.expect_err("missing");
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn errors_carry_the_dynamodb_namespace() {
        let e = TableError::ExpiredIterator("Shard iterator has expired".into());
        let r = encode::error(&DYNAMODBSTREAMS, Protocol::AwsJson1_0, &WireError(&e), "rid");
        let body: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException");
        assert_eq!(r.status(), 400);
    }
}
