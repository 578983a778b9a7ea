//! Tables for the storage layer: key bytes sort as DynamoDB sorts, Query ranges, index
//! maintenance, transactions all or nothing.

use std::collections::BTreeMap;

use crate::request::*;
use crate::schema::key_bytes;
use crate::value::{AttributeValue, WireValue};
use crate::{TableError, TableService};

#[test]
fn key_bytes_sort_as_dynamodb_sorts() {
    let numbers = [
        "-9.9999999999999999999999999999999999999E+125",
        "-1e10",
        "-100",
        "-12.5",
        "-12.4",
        "-12",
        "-1.2",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.001",
        "0.5",
        "1",
        "1.2",
        "1.201",
        "12",
        "12.4",
        "100",
        "1e10",
        "9.9999999999999999999999999999999999999E+125",
    ];
    let keys: Vec<Vec<u8>> = numbers.iter().map(|n| key_bytes(&AttributeValue::n(n))).collect();
    for (i, pair) in keys.windows(2).enumerate() {
        assert!(pair[0] < pair[1], "{} < {}", numbers[i], numbers[i + 1]);
    }
    assert_eq!(key_bytes(&AttributeValue::n("1.50")), key_bytes(&AttributeValue::n("15e-1")), "equal numbers, equal bytes");
    let strings = ["", "A", "Z", "a", "ab", "b", "é", "😀"];
    for pair in strings.windows(2) {
        assert!(key_bytes(&AttributeValue::s(pair[0])) < key_bytes(&AttributeValue::s(pair[1])), "{pair:?}");
    }
    let binaries: [&[u8]; 4] = [&[0x00], &[0x00, 0x00], &[0x7F], &[0xFF]];
    for pair in binaries.windows(2) {
        assert!(key_bytes(&AttributeValue::B(pair[0].to_vec())) < key_bytes(&AttributeValue::B(pair[1].to_vec())));
    }
}

pub(crate) fn wire(json: &str) -> BTreeMap<String, WireValue> {
    serde_json::from_str(json).expect("wire item")
}

pub(crate) fn input<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> T {
    serde_json::from_value(json).expect("input")
}

pub(crate) async fn table(svc: &std::sync::Arc<TableService>) {
    svc.create_table(input(serde_json::json!({
        "TableName": "things",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "ALL"}}],
        "BillingMode": "PAY_PER_REQUEST"
    })))
    .await
    .expect("created");
    for i in -5..15 {
        let item = format!(
            r#"{{"pk":{{"S":"p"}},"sk":{{"N":"{}"}},"g":{{"S":"{}"}}}}"#,
            f64::from(i) / 2.0,
            if i % 2 == 0 { "even" } else { "odd" }
        );
        svc.put_item(PutItemInput {
            table_name: "things".into(),
            item: wire(&item),
            condition_expression: None,
            params: ExpressionParams::default(),
            return_values: None,
            return_values_on_condition_check_failure: None,
            legacy: LegacyParams::default(),
            return_consumed_capacity: None,
        })
        .await
        .expect("put");
    }
}

pub(crate) async fn query(svc: &TableService, body: serde_json::Value) -> Vec<String> {
    let out = svc.read(input(body), true).await.expect("query");
    out.items.unwrap_or_default().iter().map(|i| i["sk"].brief()).collect()
}

#[tokio::test]
async fn query_ranges() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    table(&svc).await;
    let q = |cond: &str, values: serde_json::Value| serde_json::json!({"TableName": "things", "KeyConditionExpression": cond, "ExpressionAttributeValues": values});
    let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
        (q("pk = :p AND sk < :v", serde_json::json!({":p": {"S": "p"}, ":v": {"N": "-1.5"}})), vec!["{N:-2.5}", "{N:-2}"]),
        (
            q("pk = :p AND sk BETWEEN :a AND :b", serde_json::json!({":p": {"S": "p"}, ":a": {"N": "-0.5"}, ":b": {"N": "0.5"}})),
            vec!["{N:-0.5}", "{N:0}", "{N:0.5}"],
        ),
        (q("pk = :p AND sk >= :v", serde_json::json!({":p": {"S": "p"}, ":v": {"N": "6.5"}})), vec!["{N:6.5}", "{N:7}"]),
        (q("pk = :p AND sk = :v", serde_json::json!({":p": {"S": "p"}, ":v": {"N": "3"}})), vec!["{N:3}"]),
    ];
    for (body, want) in cases {
        assert_eq!(query(&svc, body.clone()).await, want, "{body}");
    }
    let mut back = q("pk = :p AND sk > :v", serde_json::json!({":p": {"S": "p"}, ":v": {"N": "5.5"}}));
    back["ScanIndexForward"] = false.into();
    assert_eq!(query(&svc, back).await, vec!["{N:7}", "{N:6.5}", "{N:6}"]);
}

#[tokio::test]
async fn indexes_follow_writes() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    table(&svc).await;
    let by_g = |g: &str| {
        serde_json::json!({"TableName": "things", "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                                             "ExpressionAttributeValues": {":g": {"S": g}}, "Select": "COUNT"})
    };
    let count = |svc: std::sync::Arc<TableService>, body| async move { svc.read(input(body), true).await.expect("count").count };
    assert_eq!((count(svc.clone(), by_g("even")).await, count(svc.clone(), by_g("odd")).await), (10, 10));
    svc.update_item(input(serde_json::json!({"TableName": "things", "Key": {"pk": {"S": "p"}, "sk": {"N": "0"}},
                                             "UpdateExpression": "SET g = :o", "ExpressionAttributeValues": {":o": {"S": "odd"}}})))
        .await
        .expect("moved");
    svc.update_item(input(
        serde_json::json!({"TableName": "things", "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}}, "UpdateExpression": "REMOVE g"}),
    ))
    .await
    .expect("left the index");
    svc.delete_item(input(serde_json::json!({"TableName": "things", "Key": {"pk": {"S": "p"}, "sk": {"N": "0.5"}}})))
        .await
        .expect("deleted");
    assert_eq!((count(svc.clone(), by_g("even")).await, count(svc.clone(), by_g("odd")).await), (8, 10));
    let refused = svc
        .put_item(input(serde_json::json!({"TableName": "things", "Item": {"pk": {"S": "p"}, "sk": {"N": "99"}, "g": {"N": "1"}}})))
        .await
        .expect_err("wrong index key type");
    assert_eq!(
        refused.to_string(),
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: by-g"
    );
}

#[tokio::test]
async fn transactions_are_all_or_nothing() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    table(&svc).await;
    let key = |sk: &str| serde_json::json!({"pk": {"S": "p"}, "sk": {"N": sk}});
    let failed = svc
        .transact_write_items(input(serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "things", "Item": {"pk": {"S": "p"}, "sk": {"N": "100"}}}},
            {"Delete": {"TableName": "things", "Key": key("1")}},
            {"ConditionCheck": {"TableName": "things", "Key": key("2"), "ConditionExpression": "attribute_not_exists(pk)"}},
        ]})))
        .await
        .expect_err("cancelled");
    let TableError::TransactionCanceled(reasons) = &failed else { panic!("{failed:?}") };
    assert_eq!(reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["None", "None", "ConditionalCheckFailed"]);
    assert_eq!(
        failed.to_string(),
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed]"
    );
    let get = |sk: &str| serde_json::json!({"TableName": "things", "Key": key(sk)});
    assert!(svc.get_item(input(get("100"))).await.expect("get").item.is_none(), "the put was not applied");
    assert!(svc.get_item(input(get("1"))).await.expect("get").item.is_some(), "the delete was not applied");
}

#[tokio::test]
async fn refusals_of_reads_and_keys() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    table(&svc).await;
    let cases: Vec<(serde_json::Value, bool, &str)> = vec![
        (
            serde_json::json!({"TableName": "things", "IndexName": "by-g", "KeyConditionExpression": "g = :g", "ConsistentRead": true,
                               "ExpressionAttributeValues": {":g": {"S": "even"}}}),
            true,
            "Consistent reads are not supported on global secondary indexes",
        ),
        (
            serde_json::json!({"TableName": "things", "IndexName": "by-g", "ConsistentRead": true}),
            false,
            "Consistent reads are not supported on global secondary indexes",
        ),
        (
            serde_json::json!({"TableName": "things", "KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :v",
                               "ExpressionAttributeValues": {":p": {"S": "p"}, ":v": {"N": "1"}}}),
            true,
            "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk",
        ),
        (
            serde_json::json!({"TableName": "things", "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                               "FilterExpression": "size(#g) > :v", "ExpressionAttributeNames": {"#g": "g"},
                               "ExpressionAttributeValues": {":g": {"S": "even"}, ":v": {"N": "1"}}}),
            true,
            "Filter Expression can only contain non-primary key attributes: Primary key attribute: g",
        ),
    ];
    for (body, query, text) in cases {
        let e = svc.read(input(body.clone()), query).await.expect_err(text);
        assert_eq!(e.to_string(), text, "{body}");
    }
    // A filter on the table's key is allowed on an index whose key it is not, and on a Scan.
    let ok = serde_json::json!({"TableName": "things", "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                                "FilterExpression": "sk > :v", "ExpressionAttributeValues": {":g": {"S": "even"}, ":v": {"N": "1"}}});
    assert_eq!(svc.read(input(ok), true).await.expect("filtered").count, 6);
    let scan = serde_json::json!({"TableName": "things", "FilterExpression": "pk = :p AND sk > :v", "ConsistentRead": true,
                                  "ExpressionAttributeValues": {":p": {"S": "p"}, ":v": {"N": "1"}}});
    assert_eq!(svc.read(input(scan), false).await.expect("scan").count, 12);
    // Key sizes: 2048 bytes of partition key, 1024 of sort key.
    let put = |pk: String, sk: String| serde_json::json!({"TableName": "things", "Item": {"pk": {"S": pk}, "sk": {"N": sk}}});
    svc.put_item(input(put("k".repeat(2048), "1".into()))).await.expect("2048 bytes");
    let e = svc.put_item(input(put("é".repeat(1025), "1".into()))).await.expect_err("2050 bytes");
    assert_eq!(
        e.to_string(),
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
    );
    let e = svc
        .get_item(input(serde_json::json!({"TableName": "things", "Key": {"pk": {"S": "k".repeat(2049)}, "sk": {"N": "1"}}})))
        .await
        .expect_err("a key too long to look up");
    assert_eq!(e.code(), "ValidationException");
    svc.create_table(input(serde_json::json!({
        "TableName": "ranged", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "B"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    })))
    .await
    .expect("created");
    let blob = |n: usize| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![7u8; n]);
    let put_b = |n: usize| serde_json::json!({"TableName": "ranged", "Item": {"pk": {"S": "p"}, "sk": {"B": blob(n)}}});
    svc.put_item(input(put_b(1024))).await.expect("1024 bytes");
    let e = svc.put_item(input(put_b(1025))).await.expect_err("1025 bytes");
    assert_eq!(
        e.to_string(),
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    );
}
