//! Tables for DynamoDB Streams: iterators (round trip, expiry, forgery), sequence numbers
//! (order, parsing), what each view type records, commit order, disable/enable, TTL
//! deletions, trimming, and AWS's errors.

use std::sync::Arc;

use serde_json::json;

use crate::streams::*;
use crate::{ReadFrom, TableError, TableService};

fn input<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("input")
}

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000";

#[test]
fn iterators_round_trip_expire_and_refuse_forgeries() {
    let key = IteratorKey::from_bytes([7; 32], [1; 8]);
    let p = IteratorPosition { stream_id: 3, arn: ARN.into(), after: 41, issued_ms: 1_000_000 };
    let it = key.encode(&p);
    assert!(it.starts_with(&format!("{ARN}|1|")), "{it}");
    assert_eq!(stream_of_iterator(&it), Some(ARN));
    let cases: Vec<(String, i64, Result<IteratorPosition, IteratorRefusal>)> = vec![
        (it.clone(), 1_000_000, Ok(p.clone())),
        (it.clone(), 1_000_000 + ITERATOR_LIFETIME_MS, Ok(p.clone())),
        (it.clone(), 1_000_001 + ITERATOR_LIFETIME_MS, Err(IteratorRefusal::Expired)),
        // Another stream's ARN in front of this one's position.
        (it.replacen("table/t/", "table/u/", 1), 1_000_000, Err(IteratorRefusal::Invalid)),
        // A position moved (one base64 character of the body changed).
        (
            {
                let (head, blob) = it.rsplit_once('|').expect("blob");
                let mut b: Vec<char> = blob.chars().collect();
                b[40] = if b[40] == 'A' { 'B' } else { 'A' };
                format!("{head}|{}", b.into_iter().collect::<String>())
            },
            1_000_000,
            Err(IteratorRefusal::Invalid),
        ),
        ("junk".into(), 1_000_000, Err(IteratorRefusal::Invalid)),
        (format!("{ARN}|1|not base64!"), 1_000_000, Err(IteratorRefusal::Invalid)),
        (IteratorKey::from_bytes([7; 32], [2; 8]).encode(&p), 1_000_000, Err(IteratorRefusal::OtherRun)),
        (IteratorKey::from_bytes([8; 32], [1; 8]).encode(&p), 1_000_000, Err(IteratorRefusal::Invalid)),
    ];
    for (iterator, now, want) in cases {
        assert_eq!(key.decode(&iterator, now), want, "{iterator}");
    }
}

#[test]
fn sequence_numbers_are_21_digits_in_order() {
    let seqs = [0i64, 1, 2, 9, 10, 99, 1_000, 123_456_789, i64::MAX];
    let texts: Vec<String> = seqs.iter().map(|s| sequence_number(*s)).collect();
    for (seq, text) in seqs.iter().zip(&texts) {
        assert!(text.len() >= 21 && text.len() <= 40 && !text.starts_with('0'), "{text}");
        assert_eq!(parse_sequence_number(text), Some(*seq));
    }
    for pair in texts.windows(2) {
        assert!(pair[0].len() == pair[1].len() && pair[0] < pair[1], "{pair:?}");
    }
    for bad in ["", "12", "99999999999999999999", "1000000000000000000x1", "-100000000000000000001", &"9".repeat(41)] {
        assert_eq!(parse_sequence_number(bad), None, "{bad}");
    }
    assert_eq!(sequence_number(1), "100000000000000000001");
}

async fn table(svc: &Arc<TableService>, name: &str, view: Option<&str>) -> Option<String> {
    let mut body = json!({
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    if let Some(view) = view {
        body["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
    }
    svc.create_table(input(body)).await.expect("created").table_description.latest_stream_arn
}

async fn put(svc: &TableService, table: &str, id: &str, v: &str) {
    svc.put_item(input(json!({"TableName": table, "Item": {"id": {"S": id}, "v": {"S": v}}}))).await.expect("put");
}

async fn changes(svc: &TableService, table: &str) {
    put(svc, table, "a", "1").await;
    svc.update_item(input(json!({"TableName": table, "Key": {"id": {"S": "a"}}, "UpdateExpression": "SET v = :v",
                                 "ExpressionAttributeValues": {":v": {"S": "2"}}})))
        .await
        .expect("update");
    put(svc, table, "b", "1").await;
    svc.delete_item(input(json!({"TableName": table, "Key": {"id": {"S": "a"}}}))).await.expect("delete");
}

async fn all(svc: &TableService, arn: &str) -> Vec<Record> {
    svc.read_stream(arn, ReadFrom::TrimHorizon, 1000).await.expect("read").records
}

fn brief(r: &Record) -> String {
    let v = |image: &Option<serde_json::Value>| image.as_ref().map_or("-".to_string(), |i| i["v"]["S"].as_str().unwrap_or("?").to_string());
    format!(
        "{} {} new={} old={}",
        r.event_name,
        r.dynamodb.keys["id"]["S"].as_str().unwrap_or("?"),
        v(&r.dynamodb.new_image),
        v(&r.dynamodb.old_image)
    )
}

#[tokio::test]
async fn each_view_type_records_its_images_in_commit_order() {
    let svc = TableService::in_memory("eu-west-1", "123456789012").expect("open");
    let cases: [(&str, [&str; 4]); 4] = [
        ("KEYS_ONLY", ["INSERT a new=- old=-", "MODIFY a new=- old=-", "INSERT b new=- old=-", "REMOVE a new=- old=-"]),
        ("NEW_IMAGE", ["INSERT a new=1 old=-", "MODIFY a new=2 old=-", "INSERT b new=1 old=-", "REMOVE a new=- old=-"]),
        ("OLD_IMAGE", ["INSERT a new=- old=-", "MODIFY a new=- old=1", "INSERT b new=- old=-", "REMOVE a new=- old=2"]),
        ("NEW_AND_OLD_IMAGES", ["INSERT a new=1 old=-", "MODIFY a new=2 old=1", "INSERT b new=1 old=-", "REMOVE a new=- old=2"]),
    ];
    for (view, want) in cases {
        let name = format!("t-{}", view.to_lowercase().replace('_', "-"));
        let arn = table(&svc, &name, Some(view)).await.expect("a stream");
        changes(&svc, &name).await;
        let records = all(&svc, &arn).await;
        assert_eq!(records.iter().map(brief).collect::<Vec<_>>(), want, "{view}");
        for r in &records {
            assert_eq!((r.event_version.as_str(), r.event_source.as_str(), r.aws_region.as_str()), ("1.1", "aws:dynamodb", "eu-west-1"));
            assert_eq!(r.dynamodb.stream_view_type, view);
            assert!(r.user_identity.is_none());
            assert_eq!(r.event_id.len(), 32);
        }
        let seqs: Vec<&str> = records.iter().map(|r| r.dynamodb.sequence_number.as_str()).collect();
        assert!(seqs.windows(2).all(|p| p[0].len() == p[1].len() && p[0] < p[1]), "{seqs:?}");
        // Keys {"id": "a"} are 2 + 1 bytes; an image {"id": "a", "v": "1"} is 5.
        let sizes: Vec<u64> = records.iter().map(|r| r.dynamodb.size_bytes).collect();
        let want_sizes: &[u64] = match view {
            "KEYS_ONLY" => &[3, 3, 3, 3],
            "NEW_IMAGE" => &[8, 8, 8, 3],
            "OLD_IMAGE" => &[3, 8, 3, 8],
            _ => &[8, 13, 8, 8],
        };
        assert_eq!(sizes, want_sizes, "{view}");
    }
    assert!(table(&svc, "no-stream", None).await.is_none());
}

#[tokio::test]
async fn iterators_of_each_type_and_paging() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    let arn = table(&svc, "tab1", Some("NEW_IMAGE")).await.expect("stream");
    changes(&svc, "tab1").await;
    let described = svc.describe_stream(input(json!({"StreamArn": arn}))).await.expect("described").stream_description;
    assert_eq!(described.stream_status, "ENABLED");
    assert_eq!(described.shards.len(), 1);
    let shard = described.shards[0].clone();
    assert!(shard.sequence_number_range.ending_sequence_number.is_none());
    let records = all(&svc, &arn).await;
    let seq = |i: usize| records[i].dynamodb.sequence_number.clone();
    assert_eq!(shard.sequence_number_range.starting_sequence_number, Some(seq(0)));
    let iterator = |kind: &str, seq: Option<String>| {
        let svc = svc.clone();
        let body = json!({"StreamArn": arn, "ShardId": shard.shard_id, "ShardIteratorType": kind, "SequenceNumber": seq});
        async move { svc.get_shard_iterator(input(body)).await.map(|o| o.shard_iterator) }
    };
    let read = |it: String, limit: Option<i64>| {
        let svc = svc.clone();
        async move { svc.get_records(input(json!({"ShardIterator": it, "Limit": limit}))).await.expect("records") }
    };
    let names = |out: &GetRecordsOutput| out.records.iter().map(brief).collect::<Vec<_>>();
    let page = read(iterator("TRIM_HORIZON", None).await.expect("it"), Some(3)).await;
    assert_eq!(names(&page), ["INSERT a new=1 old=-", "MODIFY a new=2 old=-", "INSERT b new=1 old=-"]);
    let page = read(page.next_shard_iterator.expect("open shard: a next iterator"), None).await;
    assert_eq!(names(&page), ["REMOVE a new=- old=-"]);
    let tail = page.next_shard_iterator.expect("next");
    assert_eq!(names(&read(tail.clone(), None).await), Vec::<String>::new());
    assert_eq!(names(&read(iterator("AT_SEQUENCE_NUMBER", Some(seq(1))).await.expect("it"), Some(1)).await), ["MODIFY a new=2 old=-"]);
    assert_eq!(names(&read(iterator("AFTER_SEQUENCE_NUMBER", Some(seq(1))).await.expect("it"), Some(1)).await), ["INSERT b new=1 old=-"]);
    let latest = iterator("LATEST", None).await.expect("it");
    assert_eq!(names(&read(latest.clone(), None).await), Vec::<String>::new());
    put(&svc, "tab1", "c", "9").await;
    assert_eq!(names(&read(latest, None).await), ["INSERT c new=9 old=-"]);
    assert_eq!(names(&read(tail, None).await), ["INSERT c new=9 old=-"], "an iterator at the end sees later records");

    // The poller's reader: a checkpoint resumes after the last record handled.
    let first = svc.read_stream(&arn, ReadFrom::TrimHorizon, 2).await.expect("read");
    assert_eq!(first.records.len(), 2);
    assert_eq!(first.next.as_deref(), Some(seq(1).as_str()));
    let rest = svc.read_stream(&arn, ReadFrom::AfterSequence(first.next.expect("checkpoint")), 100).await.expect("read");
    assert_eq!(
        rest.records.iter().map(brief).collect::<Vec<_>>(),
        ["INSERT b new=1 old=-", "REMOVE a new=- old=-", "INSERT c new=9 old=-"]
    );
    assert_eq!(rest.shard_id, shard.shard_id);

    // AWS's errors.
    let error = |r: Result<String, TableError>| r.expect_err("refused");
    let e = error(iterator("AT_SEQUENCE_NUMBER", None).await);
    assert_eq!(e.code(), "ValidationException");
    let e = error(iterator("AT_SEQUENCE_NUMBER", Some("12".into())).await);
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value '12' at 'sequenceNumber' failed to satisfy constraint: Member must have length greater than or equal to 21"
    );
    let e = error(iterator("SOMEWHERE", None).await);
    assert_eq!(e.code(), "ValidationException");
    let gone = arn.replace("stream/", "stream/1999");
    let e = svc.get_shard_iterator(input(json!({"StreamArn": gone, "ShardId": shard.shard_id, "ShardIteratorType": "LATEST"}))).await;
    assert_eq!(e.expect_err("no stream").to_string(), format!("Requested resource not found: Stream: {gone} not found"));
    let e = svc
        .get_shard_iterator(input(
            json!({"StreamArn": arn, "ShardId": "shardId-00000000000000000000-00000000", "ShardIteratorType": "LATEST"}),
        ))
        .await;
    assert_eq!(e.expect_err("no shard").code(), "ResourceNotFoundException");
    let e = svc.get_records(input(json!({"ShardIterator": "nonsense"}))).await.expect_err("junk");
    assert_eq!(e.code(), "ValidationException");
    let e = svc.get_records(input(json!({"ShardIterator": iterator("LATEST", None).await.expect("it"), "Limit": 1001}))).await;
    assert_eq!(
        e.expect_err("limit").to_string(),
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"
    );
    let e = svc.describe_stream(input(json!({"StreamArn": gone}))).await.expect_err("no stream");
    assert_eq!(e.code(), "ResourceNotFoundException");
}

#[tokio::test]
async fn disabling_closes_the_stream_and_enabling_makes_another() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    let first = table(&svc, "tab2", Some("KEYS_ONLY")).await.expect("stream");
    put(&svc, "tab2", "a", "1").await;
    let it = svc.read_stream(&first, ReadFrom::TrimHorizon, 1).await.expect("read");
    assert!(it.next.is_some());
    svc.update_table(input(json!({"TableName": "tab2", "StreamSpecification": {"StreamEnabled": false}}))).await.expect("disabled");
    put(&svc, "tab2", "b", "1").await;
    let d = svc.describe_stream(input(json!({"StreamArn": first}))).await.expect("described").stream_description;
    assert_eq!(d.stream_status, "DISABLED");
    let range = &d.shards[0].sequence_number_range;
    let records = all(&svc, &first).await;
    assert_eq!(records.len(), 1, "nothing recorded after the stream was disabled");
    assert_eq!(range.ending_sequence_number.as_deref(), Some(records[0].dynamodb.sequence_number.as_str()));
    let read = svc.read_stream(&first, ReadFrom::TrimHorizon, 10).await.expect("read");
    assert_eq!((read.records.len(), read.next), (1, None), "a closed stream read to its end has no next position");
    let shard = d.shards[0].shard_id.clone();
    let it = svc
        .get_shard_iterator(input(json!({"StreamArn": first, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})))
        .await
        .expect("iterator");
    let page = svc.get_records(input(json!({"ShardIterator": it.shard_iterator}))).await.expect("records");
    assert_eq!((page.records.len(), page.next_shard_iterator), (1, None));

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = svc
        .update_table(input(json!({"TableName": "tab2", "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}})))
        .await
        .expect("enabled")
        .table_description
        .latest_stream_arn
        .expect("a new stream");
    assert_ne!(first, second);
    put(&svc, "tab2", "c", "1").await;
    assert_eq!(all(&svc, &second).await.iter().map(brief).collect::<Vec<_>>(), ["INSERT c new=1 old=-"]);
    let listed = svc.list_streams(input(json!({"TableName": "tab2"}))).await.expect("listed").streams;
    assert_eq!(listed.iter().map(|s| s.stream_arn.as_str()).collect::<Vec<_>>(), [first.as_str(), second.as_str()]);
    let paged = svc.list_streams(input(json!({"Limit": 1}))).await.expect("listed");
    assert_eq!(paged.last_evaluated_stream_arn.as_deref(), Some(first.as_str()));
    let rest = svc.list_streams(input(json!({"ExclusiveStartStreamArn": first}))).await.expect("listed");
    assert_eq!((rest.streams.len(), rest.last_evaluated_stream_arn), (1, None));
    let e = svc.list_streams(input(json!({"TableName": "nope"}))).await.expect_err("no table");
    assert_eq!(e.to_string(), "Requested resource not found: Table: nope not found");
}

#[tokio::test]
async fn ttl_deletions_are_service_records_and_old_records_are_trimmed() {
    let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
    let arn = table(&svc, "tab3", Some("NEW_AND_OLD_IMAGES")).await.expect("stream");
    svc.update_time_to_live(input(json!({"TableName": "tab3", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}})))
        .await
        .expect("ttl");
    svc.put_item(input(json!({"TableName": "tab3", "Item": {"id": {"S": "old"}, "exp": {"N": "1000"}}}))).await.expect("put");
    assert_eq!(svc.sweep_expired(100).await.expect("swept"), 1);
    let records = all(&svc, &arn).await;
    assert_eq!(records.iter().map(|r| r.event_name.as_str()).collect::<Vec<_>>(), ["INSERT", "REMOVE"]);
    assert_eq!(
        serde_json::to_value(&records[1].user_identity).expect("json"),
        json!({"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"})
    );
    assert!(records[0].user_identity.is_none());
    let first = records[0].dynamodb.sequence_number.clone();
    let last = records[1].dynamodb.sequence_number.clone();

    // Retention: nothing is older than a day; with no retention, everything goes.
    assert_eq!(svc.sweep_stream_records(RETENTION_SECS).await.expect("kept"), 0);
    let checkpoint = svc.read_stream(&arn, ReadFrom::TrimHorizon, 1).await.expect("read").next.expect("next");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(svc.sweep_stream_records(0.0).await.expect("trimmed"), 2);
    assert!(all(&svc, &arn).await.is_empty());
    let e = svc.read_stream(&arn, ReadFrom::AfterSequence(checkpoint), 10).await.expect_err("trimmed");
    assert_eq!(e.code(), "TrimmedDataAccessException");
    let e = svc.read_stream(&arn, ReadFrom::AtSequence(first), 10).await.expect_err("trimmed");
    assert_eq!(e.code(), "TrimmedDataAccessException");
    let resumed = svc.read_stream(&arn, ReadFrom::AfterSequence(last.clone()), 10).await.expect("at the horizon");
    assert!(resumed.records.is_empty());
    put(&svc, "tab3", "new", "1").await;
    let d = svc.describe_stream(input(json!({"StreamArn": arn}))).await.expect("described").stream_description;
    let start = d.shards[0].sequence_number_range.starting_sequence_number.clone().expect("start");
    assert!(start > last, "the shard starts at its oldest kept record");
    assert_eq!(all(&svc, &arn).await.len(), 1);
}
