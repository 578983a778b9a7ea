//! Table tests of the stream domain: hash-key routing, sequence numbers, iterators,
//! resharding arithmetic, retention and throttling.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::hashkey::{self, uniform_ranges};
use crate::iterator::{IteratorKey, Position, Refusal, LIFETIME_MS};
use crate::sequence::{SequenceNumber, END};
use crate::shards::{self, Change, OpenShard};
use crate::throttle::{Limits, Throttle};
use crate::{Clock, CreateStream, IteratorStart, ListShards, NewRecord, PutOutcome, ShardFilter, StreamConfig, StreamMode, StreamService};

const MAX: u128 = u128::MAX;

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T0: i64 = 1_700_000_000_000;

fn service(limits: Limits) -> (Arc<StreamService>, Arc<TestClock>) {
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let config = StreamConfig { shard_limits: limits, ..StreamConfig::default() };
    (StreamService::in_memory("us-east-1", "000000000000", config, clock.clone()).expect("open"), clock)
}

async fn create(svc: &StreamService, name: &str, shards: u32) {
    let input = CreateStream { name: name.into(), shard_count: Some(shards), mode: StreamMode::Provisioned, tags: Default::default() };
    svc.create_stream(input).await.expect("create");
}

fn record(key: &str, data: &str) -> NewRecord {
    NewRecord { data: data.as_bytes().to_vec(), partition_key: key.into(), explicit_hash_key: None }
}

fn explicit(hash: &str) -> NewRecord {
    NewRecord { data: b"x".to_vec(), partition_key: "k".into(), explicit_hash_key: Some(hash.into()) }
}

#[test]
fn uniform_ranges_split_the_space_as_aws_does() {
    let cases: &[(u32, &[(&str, &str)])] = &[
        (1, &[("0", "340282366920938463463374607431768211455")]),
        (
            2,
            &[
                ("0", "170141183460469231731687303715884105727"),
                ("170141183460469231731687303715884105728", "340282366920938463463374607431768211455"),
            ],
        ),
        // AWS's three-shard stream.
        (
            3,
            &[
                ("0", "113427455640312821154458202477256070484"),
                ("113427455640312821154458202477256070485", "226854911280625642308916404954512140969"),
                ("226854911280625642308916404954512140970", "340282366920938463463374607431768211455"),
            ],
        ),
    ];
    for (count, want) in cases {
        let got: Vec<(String, String)> = uniform_ranges(*count).iter().map(|(s, e)| (s.to_string(), e.to_string())).collect();
        let want: Vec<(String, String)> = want.iter().map(|(s, e)| (s.to_string(), e.to_string())).collect();
        assert_eq!(got, want, "{count} shards");
    }
    for count in [4, 5, 7, 10, 100] {
        let r = uniform_ranges(count);
        assert_eq!(r.len(), count as usize);
        assert_eq!((r[0].0, r[r.len() - 1].1), (0, MAX));
        assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0), "{count}: contiguous");
    }
}

#[test]
fn partition_keys_hash_by_md5() {
    let cases = [
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        ("", 0xd41d8cd98f00b204e9800998ecf8427e_u128),
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        ("a", 0x0cc175b9c0f1b6a831c399e269772661_u128),
    ];
    for (key, want) in cases {
        assert_eq!(hashkey::of_partition_key(key), want, "{key:?}");
    }
    let parses = [
        ("0", Some(0)),
        ("340282366920938463463374607431768211455", Some(MAX)),
        ("340282366920938463463374607431768211456", None),
        ("-1", None),
        ("1e3", None),
        ("", None),
    ];
    for (text, want) in parses {
        assert_eq!(hashkey::parse(text), want, "{text}");
    }
}

#[tokio::test]
async fn records_go_to_the_shard_whose_range_holds_their_hash_key() {
    let (svc, _) = service(Limits::default());
    create(&svc, "s", 4).await;
    let quarter = 1u128 << 126;
    let cases = [
        ("0", "shardId-000000000000"),
        (&*(quarter - 1).to_string(), "shardId-000000000000"),
        (&*quarter.to_string(), "shardId-000000000001"),
        (&*(2 * quarter).to_string(), "shardId-000000000002"),
        (&*(3 * quarter - 1).to_string(), "shardId-000000000002"),
        ("340282366920938463463374607431768211455", "shardId-000000000003"),
    ]
    .map(|(k, s)| (k.to_string(), s));
    for (key, shard) in &cases {
        let (got, _) = svc.put_record("s", explicit(key), None).await.expect("put");
        assert_eq!(&got, shard, "hash key {key}");
    }
    // A partition key goes where its MD5 says: "a" hashes to 0x0cc1… (first quarter).
    assert_eq!(svc.put_record("s", record("a", "x"), None).await.expect("put").0, "shardId-000000000000");
    let err = svc.put_record("s", explicit("340282366920938463463374607431768211456"), None).await.unwrap_err();
    assert_eq!(err.type_name(), "InvalidArgumentException");
    assert!(err.to_string().starts_with("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]."), "{err}");
    let err = svc.put_record("missing", record("a", "x"), None).await.unwrap_err();
    assert_eq!(err.to_string(), "Stream missing under account 000000000000 not found.");
}

#[test]
fn sequence_numbers_round_trip_and_order_by_index() {
    let cases = [
        SequenceNumber { shard_created_s: 1_700_000_000, shard: 0, index: 0, time_s: 1_700_000_000 },
        SequenceNumber { shard_created_s: 1_700_000_000, shard: 17, index: 1, time_s: 1_700_000_123 },
        SequenceNumber { shard_created_s: 1_700_000_000, shard: 3, index: END, time_s: 1_800_000_000 },
        SequenceNumber { shard_created_s: 1, shard: u32::MAX >> 1, index: 12345, time_s: 2 },
    ];
    for s in cases {
        let text = s.format();
        assert_eq!(text.len(), 56, "{text}");
        assert_eq!(SequenceNumber::parse(&text), Some(s), "{text}");
    }
    // Within a shard, a later record's number is larger, whatever the arrival times.
    let at = |index, time_s| SequenceNumber { shard_created_s: 1_700_000_000, shard: 2, index, time_s }.format();
    let ordered = [at(0, 1_700_000_000), at(1, 1_700_000_500), at(2, 1_700_000_400), at(1000, 1_700_000_000), at(END, 1_700_000_000)];
    assert!(ordered.windows(2).all(|w| w[0].len() < w[1].len() || (w[0].len() == w[1].len() && w[0] < w[1])), "{ordered:?}");
    // AWS's own example (the PutRecord documentation) has this layout.
    let aws = SequenceNumber::parse("49546986683135544286507457936321625675700192471156785154");
    assert_eq!(aws, Some(SequenceNumber { shard_created_s: 1421279230, shard: 0, index: 469, time_s: 1421279386 }));
    for bad in ["", "12", "abc", "59546986683135544286507457936321625675700192471156785154", &"9".repeat(70)] {
        assert_eq!(SequenceNumber::parse(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn sequence_numbers_increase_per_shard_in_put_order() {
    let (svc, clock) = service(Limits::default());
    create(&svc, "s", 2).await;
    let mut last: std::collections::HashMap<String, SequenceNumber> = Default::default();
    for i in 0..50 {
        // The clock going back does not reorder a shard.
        clock.0.store(T0 + if i % 2 == 0 { 5_000 } else { 0 }, Ordering::SeqCst);
        let (shard, seq) = svc.put_record("s", record(&format!("k{}", i % 7), "d"), None).await.expect("put");
        let parsed = SequenceNumber::parse(&seq).expect("ours");
        if let Some(prev) = last.insert(shard, parsed) {
            assert!(parsed.index > prev.index && parsed.time_s >= prev.time_s);
        }
    }
}

#[test]
fn iterators_encode_decode_expire_and_refuse_forgeries() {
    let key = IteratorKey::from_bytes([7; 32], [1; 8]);
    let p = Position { stream_id: 3, stream: "orders".into(), shard: 5, next: 42, issued_ms: T0 };
    let it = key.encode(&p);
    assert!(it.len() <= 512);
    assert_eq!(crate::iterator::stream_of(&it).as_deref(), Some("orders"));
    let mut flipped = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &it).expect("base64");
    flipped[30] ^= 1; // the position
    let forged = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &flipped);
    let other_run = IteratorKey::from_bytes([7; 32], [2; 8]);
    let other_key = IteratorKey::from_bytes([8; 32], [1; 8]);
    let cases: Vec<(&IteratorKey, &str, i64, Result<Position, Refusal>)> = vec![
        (&key, &it, T0, Ok(p.clone())),
        (&key, &it, T0 + LIFETIME_MS, Ok(p.clone())),
        (&key, &it, T0 + LIFETIME_MS + 1, Err(Refusal::Expired(T0))),
        (&key, &forged, T0, Err(Refusal::Invalid)),
        (&other_key, &it, T0, Err(Refusal::Invalid)),
        (&other_run, &it, T0, Err(Refusal::OtherRun)),
        (&key, "not base64!", T0, Err(Refusal::Invalid)),
        (&key, "AAAA", T0, Err(Refusal::Invalid)),
    ];
    for (k, text, now, want) in cases {
        assert_eq!(k.decode(text, now), want, "{text} at {now}");
    }
    let msg = crate::iterator::expired_message(0, 301_000).to_string();
    assert_eq!(
        msg,
        "Iterator expired. The iterator was created at time Thu Jan 01 00:00:00 UTC 1970 while right now it is Thu Jan 01 00:05:01 UTC 1970 which is further in the future than the tolerated delay of 300000 milliseconds."
    );
}

#[tokio::test]
async fn get_records_from_every_iterator_type() {
    let (svc, clock) = service(Limits::default());
    create(&svc, "s", 1).await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        clock.0.store(T0 + i * 1000, Ordering::SeqCst);
        seqs.push(svc.put_record("s", record("k", &format!("r{i}")), None).await.expect("put").1);
    }
    clock.0.store(T0 + 10_000, Ordering::SeqCst);
    let data =
        |page: &crate::RecordsPage| page.records.iter().map(|r| String::from_utf8(r.data.clone()).expect("utf8")).collect::<Vec<_>>();
    let cases = [
        (IteratorStart::TrimHorizon, vec!["r0", "r1", "r2", "r3", "r4"]),
        (IteratorStart::Latest, vec![]),
        (IteratorStart::AtSequence(seqs[2].clone()), vec!["r2", "r3", "r4"]),
        (IteratorStart::AfterSequence(seqs[2].clone()), vec!["r3", "r4"]),
        (IteratorStart::AtTimestamp(T0 + 3000), vec!["r3", "r4"]),
        (IteratorStart::AtTimestamp(T0 + 2500), vec!["r3", "r4"]),
        (IteratorStart::AtTimestamp(0), vec!["r0", "r1", "r2", "r3", "r4"]),
    ];
    for (start, want) in cases {
        let it = svc.get_shard_iterator("s", "shardId-000000000000", start.clone()).await.expect("iterator");
        let page = svc.get_records(&it, None).await.expect("records");
        assert_eq!(data(&page), want, "{start:?}");
        assert!(page.next_iterator.is_some());
        assert_eq!(page.millis_behind_latest, 0);
    }
    // Limit, MillisBehindLatest and the next iterator.
    let it = svc.get_shard_iterator("s", "0", IteratorStart::TrimHorizon).await.expect("iterator");
    let page = svc.get_records(&it, Some(2)).await.expect("records");
    assert_eq!(data(&page), ["r0", "r1"]);
    assert_eq!(page.millis_behind_latest, 8000, "r2 arrived at T0+2s, read at T0+10s");
    let page = svc.get_records(page.next_iterator.as_deref().expect("next"), Some(10)).await.expect("records");
    assert_eq!(data(&page), ["r2", "r3", "r4"]);
    // A LATEST iterator sees records put after it.
    let latest = svc.get_shard_iterator("s", "shardId-000000000000", IteratorStart::Latest).await.expect("iterator");
    svc.put_record("s", record("k", "r5"), None).await.expect("put");
    assert_eq!(data(&svc.get_records(&latest, None).await.expect("records")), ["r5"]);
    // Errors, in AWS's words.
    let errors = [
        ("shardId-000000000009", IteratorStart::TrimHorizon, "Shard shardId-000000000009 in stream s under account 000000000000 does not exist"),
        ("bogus", IteratorStart::TrimHorizon, "Could not find shard bogus in stream s under account 000000000000."),
        ("shardId-000000000000", IteratorStart::AtSequence("123".into()), "StartingSequenceNumber 123 used in GetShardIterator on shard shardId-000000000000 in stream s under account 000000000000 is invalid."),
        ("shardId-000000000000", IteratorStart::AtTimestamp(T0 + 60_000), "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: 1700000060000, currentTimestampInMillis: 1700000010000"),
    ];
    for (shard, start, want) in errors {
        let err = svc.get_shard_iterator("s", shard, start).await.unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    clock.0.store(T0 + 10_000 + LIFETIME_MS + 1, Ordering::SeqCst);
    assert_eq!(svc.get_records(&it, None).await.unwrap_err().type_name(), "ExpiredIteratorException");
    assert_eq!(svc.get_records("garbage", None).await.unwrap_err().to_string(), "Invalid ShardIterator.");
}

#[test]
fn split_and_merge_arithmetic() {
    let whole = OpenShard { ix: 0, start: 0, end: MAX };
    let mut next = 1;
    let half = 1u128 << 127;
    assert_eq!(
        shards::split(&whole, half, &mut next),
        Ok(Change::Split {
            parent: 0,
            children: [OpenShard { ix: 1, start: 0, end: half - 1 }, OpenShard { ix: 2, start: half, end: MAX }]
        })
    );
    assert_eq!(next, 3);
    for bad in [0, 1, MAX] {
        assert!(shards::split(&whole, bad, &mut next).is_err(), "{bad}");
    }
    shards::split(&whole, 2, &mut next).expect("2 is more than one plus 0");
    let (a, b) = (OpenShard { ix: 1, start: 0, end: half - 1 }, OpenShard { ix: 2, start: half, end: MAX });
    let mut next = 3;
    assert_eq!(
        shards::merge(&b, &a, &mut next),
        Some(Change::Merge { parent: 2, adjacent: 1, child: OpenShard { ix: 3, start: 0, end: MAX } })
    );
    let gap = OpenShard { ix: 5, start: half + 1, end: MAX };
    assert_eq!(shards::merge(&a, &gap, &mut next), None);
    // Uniform scaling ends with `target` even shards, through steps with at most two parents.
    for (from, to) in [(1, 2), (2, 1), (3, 5), (5, 3), (4, 8), (8, 4), (3, 3), (6, 4)] {
        let mut open: Vec<OpenShard> =
            uniform_ranges(from).into_iter().enumerate().map(|(i, (start, end))| OpenShard { ix: i as u32, start, end }).collect();
        let mut next = from;
        for change in shards::uniform(&open, to, &mut next) {
            match change {
                Change::Split { parent, children } => {
                    open.retain(|s| s.ix != parent);
                    open.extend(children);
                }
                Change::Merge { parent, adjacent, child } => {
                    open.retain(|s| s.ix != parent && s.ix != adjacent);
                    open.push(child);
                }
            }
        }
        open.sort_by_key(|s| s.start);
        let got: Vec<(u128, u128)> = open.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, uniform_ranges(to), "{from} -> {to}");
    }
}

#[tokio::test]
async fn resharding_keeps_lineage_and_reads_parent_then_children() {
    let (svc, _) = service(Limits::default());
    create(&svc, "s", 1).await;
    let (_, parent_seq) = svc.put_record("s", record("k", "before"), None).await.expect("put");
    let half = (1u128 << 127).to_string();
    svc.split_shard("s", "shardId-000000000000", &half).await.expect("split");
    let shards = svc.shards("s").await.expect("shards");
    let ids: Vec<(&str, Option<&str>, bool)> =
        shards.iter().map(|s| (s.shard_id.as_str(), s.parent_shard_id.as_deref(), s.ending_sequence_number.is_some())).collect();
    assert_eq!(
        ids,
        [
            ("shardId-000000000000", None, true),
            ("shardId-000000000001", Some("shardId-000000000000"), false),
            ("shardId-000000000002", Some("shardId-000000000000"), false)
        ]
    );
    let end = SequenceNumber::parse(shards[0].ending_sequence_number.as_deref().expect("closed")).expect("ours");
    assert!(end.index > SequenceNumber::parse(&parent_seq).expect("ours").index);
    // The parent reads to its end: a null next iterator and its children.
    let it = svc.get_shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon).await.expect("iterator");
    let page = svc.get_records(&it, None).await.expect("records");
    assert_eq!(page.records.len(), 1);
    assert!(page.next_iterator.is_none());
    assert_eq!(page.child_shards.iter().map(|c| c.shard_id.as_str()).collect::<Vec<_>>(), ["shardId-000000000001", "shardId-000000000002"]);
    let (shard, _) = svc.put_record("s", explicit("0"), None).await.expect("put");
    assert_eq!(shard, "shardId-000000000001");
    // Merging the children back: one child with both parents.
    let err = svc.merge_shards("s", "shardId-000000000000", "shardId-000000000001").await.unwrap_err();
    assert_eq!(err.type_name(), "ResourceInUseException");
    svc.merge_shards("s", "shardId-000000000001", "shardId-000000000002").await.expect("merge");
    let merged = svc.shards("s").await.expect("shards").pop().expect("child");
    assert_eq!(
        (merged.shard_id.as_str(), merged.parent_shard_id.as_deref(), merged.adjacent_parent_shard_id.as_deref()),
        ("shardId-000000000003", Some("shardId-000000000001"), Some("shardId-000000000002"))
    );
    assert_eq!((merged.starting_hash_key.as_str(), merged.ending_hash_key.as_str()), ("0", "340282366920938463463374607431768211455"));
    let err = svc.split_shard("s", "shardId-000000000003", "1").await.unwrap_err();
    assert_eq!(err.to_string(), "NewStartingHashKey 1 used in SplitShard() on shard shardId-000000000003 in stream s under account 000000000000 is not both greater than one plus the shard's StartingHashKey 0 and less than the shard's EndingHashKey 340282366920938463463374607431768211455.");
    // UpdateShardCount, and its bounds.
    assert_eq!(svc.update_shard_count("s", 2).await.expect("update"), (1, 2));
    let open = |v: Vec<crate::ShardInfo>| v.into_iter().filter(|s| s.ending_sequence_number.is_none()).count();
    assert_eq!(open(svc.shards("s").await.expect("shards")), 2);
    assert_eq!(svc.update_shard_count("s", 5).await.unwrap_err().type_name(), "InvalidArgumentException");
    let filtered = svc
        .list_shards(ListShards { stream: Some("s".into()), filter: Some(ShardFilter::AtLatest), ..Default::default() })
        .await
        .expect("list");
    assert_eq!(filtered.0.len(), 2);
    let paged = svc.list_shards(ListShards { stream: Some("s".into()), max_results: Some(2), ..Default::default() }).await.expect("list");
    assert_eq!(paged.0.len(), 2);
    let rest = svc.list_shards(ListShards { next_token: paged.1, ..Default::default() }).await.expect("list");
    assert_eq!(rest.0[0].shard_id, "shardId-000000000002");
}

#[tokio::test]
async fn retention_bounds_and_the_sweep_remove_expired_records() {
    let (svc, clock) = service(Limits::default());
    create(&svc, "s", 1).await;
    svc.increase_retention("s", 48).await.expect("increase");
    svc.put_record("s", record("k", "old"), None).await.expect("put");
    clock.0.store(T0 + 30 * 3_600_000, Ordering::SeqCst);
    svc.put_record("s", record("k", "new"), None).await.expect("put");
    assert_eq!(svc.sweep().await.expect("sweep"), 0, "48 h: nothing expired yet");
    let errors = [
        (true, 23, "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."),
        (true, 8761, "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."),
        (true, 30, "Requested retention period (30 hours) for stream s can not be shorter than existing retention period (48 hours). Use DecreaseRetentionPeriod API."),
        (false, 72, "Requested retention period (72 hours) for stream s can not be longer than existing retention period (48 hours). Use IncreaseRetentionPeriod API."),
    ];
    for (increase, hours, want) in errors {
        let err = if increase { svc.increase_retention("s", hours).await } else { svc.decrease_retention("s", hours).await }.unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    // Down to 24 h: the 30-hour-old record goes at once.
    svc.decrease_retention("s", 24).await.expect("decrease");
    let it = svc.get_shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon).await.expect("iterator");
    let page = svc.get_records(&it, None).await.expect("records");
    assert_eq!(page.records.iter().map(|r| r.data.as_slice()).collect::<Vec<_>>(), [b"new".as_slice()]);
    clock.0.store(T0 + 60 * 3_600_000, Ordering::SeqCst);
    assert_eq!(svc.sweep().await.expect("sweep"), 1);
    assert_eq!(svc.sweep().await.expect("sweep"), 0);
}

#[test]
fn throttle_admits_a_second_of_writes_per_shard() {
    let limits = Limits { bytes_per_second: 1000, records_per_second: 10 };
    // (stream, shard, size, at ms, admitted)
    let steps: &[(i64, u32, u64, i64, bool)] = &[
        (1, 0, 600, 0, true),
        (1, 0, 600, 0, false), // 400 bytes left
        (1, 0, 400, 0, true),
        (1, 1, 1000, 0, true),    // another shard has its own budget
        (2, 0, 1000, 0, true),    // and another stream
        (1, 0, 150, 100, false),  // 100 ms later: 100 bytes back
        (1, 0, 150, 200, true),   // 200 ms later: 200
        (1, 0, 5000, 5000, true), // a full bucket takes any one record
        (1, 0, 1, 5000, false),
    ];
    let mut t = Throttle::new(limits);
    for (i, (stream, shard, size, at, want)) in steps.iter().enumerate() {
        assert_eq!(t.admit(*stream, *shard, *size, *at), *want, "step {i}");
    }
    let mut t = Throttle::new(limits);
    let admitted = (0..20).filter(|_| t.admit(1, 0, 1, 0)).count();
    assert_eq!(admitted, 10, "ten records per second");
}

#[tokio::test]
async fn put_records_fails_records_one_by_one_when_a_shard_is_over_its_limit() {
    let (svc, _) = service(Limits { bytes_per_second: 1 << 20, records_per_second: 3 });
    create(&svc, "s", 2).await;
    let records: Vec<NewRecord> = (0..5).map(|_| explicit("0")).chain([explicit("340282366920938463463374607431768211455")]).collect();
    let out = svc.put_records("s", records).await.expect("put");
    let codes: Vec<&str> = out
        .iter()
        .map(|o| match o {
            PutOutcome::Stored { .. } => "ok",
            PutOutcome::Failed { code, .. } => code,
        })
        .collect();
    let t = "ProvisionedThroughputExceededException";
    assert_eq!(codes, ["ok", "ok", "ok", t, t, "ok"]);
    let PutOutcome::Failed { message, .. } = &out[3] else { unreachable!("checked above") };
    assert_eq!(message, "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000.");
    let err = svc.put_record("s", explicit("0"), None).await.unwrap_err();
    assert_eq!(err.type_name(), t);
}

#[tokio::test]
async fn streams_create_list_describe_tag_and_delete() {
    let (svc, _) = service(Limits::default());
    create(&svc, "b", 2).await;
    let on_demand = CreateStream { name: "a".into(), shard_count: None, mode: StreamMode::OnDemand, tags: Default::default() };
    svc.create_stream(on_demand).await.expect("create");
    assert_eq!(svc.describe_stream_summary("a").await.expect("summary").open_shard_count, 4);
    let err = svc
        .create_stream(CreateStream { name: "a".into(), shard_count: Some(1), mode: StreamMode::Provisioned, tags: Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Stream a under account 000000000000 already exists.");
    let (page, more, token) = svc.list_streams(Some(1), None, None).await.expect("list");
    assert_eq!((page[0].name.as_str(), more), ("a", true));
    let (page, more, _) = svc.list_streams(None, None, token).await.expect("list");
    assert_eq!((page[0].name.as_str(), more), ("b", false));
    let d = svc.describe_stream("b", Some(1), None).await.expect("describe");
    assert_eq!((d.shards.len(), d.has_more_shards, d.arn.as_str()), (1, true, "arn:aws:kinesis:us-east-1:000000000000:stream/b"));
    let d = svc.describe_stream("b", None, Some("shardId-000000000000".into())).await.expect("describe");
    assert_eq!((d.shards[0].shard_id.as_str(), d.has_more_shards), ("shardId-000000000001", false));
    svc.add_tags("b", [("k1".to_string(), "v1".to_string()), ("k2".to_string(), "v2".to_string())].into()).await.expect("tag");
    svc.remove_tags("b", vec!["k1".into()]).await.expect("untag");
    assert_eq!(svc.list_tags("b", None, None).await.expect("tags"), (vec![("k2".to_string(), "v2".to_string())], false));
    let many = (0..51).map(|i| (format!("t{i}"), String::new())).collect();
    assert_eq!(svc.add_tags("b", many).await.unwrap_err().type_name(), "InvalidArgumentException");
    svc.delete_stream("b").await.expect("delete");
    assert_eq!(svc.describe_stream("b", None, None).await.unwrap_err().to_string(), "Stream b under account 000000000000 not found.");
    let quota = StreamConfig { shard_quota: 3, ..StreamConfig::default() };
    let small = StreamService::in_memory("us-east-1", "000000000000", quota, Arc::new(TestClock(AtomicI64::new(T0)))).expect("open");
    create(&small, "x", 3).await;
    let err = small
        .create_stream(CreateStream { name: "y".into(), shard_count: Some(1), mode: StreamMode::Provisioned, tags: Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.type_name(), "LimitExceededException");
    assert!(err.to_string().starts_with("This request would exceed the shard limit for the account 000000000000 in us-east-1. Current shard count for the account: 3. Limit: 3."), "{err}");
}

#[tokio::test]
async fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("streams.db");
    {
        let svc = StreamService::open(&path, "us-east-1", "000000000000", StreamConfig::default()).expect("open");
        create(&svc, "s", 1).await;
        svc.put_record("s", record("k", "kept"), None).await.expect("put");
    }
    let svc = StreamService::open(&path, "us-east-1", "000000000000", StreamConfig::default()).expect("reopen");
    let it = svc.get_shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon).await.expect("iterator");
    assert_eq!(svc.get_records(&it, None).await.expect("records").records[0].data, b"kept");
}

#[tokio::test]
async fn puts_follow_a_stream_deleted_and_made_again_under_its_name() {
    let (svc, _) = service(Limits::default());
    create(&svc, "s", 1).await;
    svc.put_record("s", record("k", "one"), None).await.expect("put");
    svc.put_record("s", record("k", "two"), None).await.expect("put");
    svc.delete_stream("s").await.expect("delete");
    create(&svc, "s", 2).await;
    let (shard, seq) = svc.put_record("s", explicit(&u128::MAX.to_string()), None).await.expect("put");
    assert_eq!(shard, "shardId-000000000001", "routed by the new stream's shards");
    assert_eq!(SequenceNumber::parse(&seq).expect("ours").index, 1, "the new shard's first record");
}
