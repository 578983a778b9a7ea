//! The store's behaviour, as tables of cases.

// The tables' row types are spelled out where they are used.
#![allow(clippy::type_complexity)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use md5::Digest;

use crate::checksum::{ChecksumAlgorithm, Hasher};
use crate::notify::{Destination, DestinationKind, NotificationConfig};
use crate::*;

fn open(dir: &Path) -> ObjectStore {
    // Every body a file, so the tables below can count blobs; small bodies kept in rows
    // have their own test.
    ObjectStore::open_with(dir, 0).expect("open")
}

async fn fresh() -> (tempfile::TempDir, ObjectStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path());
    s.create_bucket("b", "us-east-1").await.expect("bucket");
    (dir, s)
}

fn staged(s: &ObjectStore, data: &[u8], want: &[ChecksumAlgorithm]) -> Staged {
    let mut st = s.stage(want).expect("stage");
    for chunk in data.chunks(7) {
        st.write(chunk).expect("write");
    }
    st.finish().expect("finish")
}

async fn put(s: &ObjectStore, key: &str, data: &[u8]) -> Result<PutResult, ObjectError> {
    put_if(s, key, data, PutConditions::default()).await
}

async fn put_if(s: &ObjectStore, key: &str, data: &[u8], conditions: PutConditions) -> Result<PutResult, ObjectError> {
    s.put_object("b", key, staged(s, data, &[]), ObjectMeta::default(), vec![], None, conditions, "Put").await
}

fn read(s: &ObjectStore, o: &Object) -> Vec<u8> {
    let mut out = Vec::new();
    s.open_body(o).expect("body").read_to_end(&mut out).expect("read");
    out
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_in(&e.path()).into_iter().map(|f| format!("{}/{f}", e.file_name().to_string_lossy())));
            } else {
                out.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn blobs(dir: &Path) -> usize {
    files_in(&dir.join("blobs")).len()
}

fn staging(dir: &Path) -> usize {
    files_in(&dir.join("staging")).len()
}

// ---- bodies -------------------------------------------------------------------------------

#[tokio::test]
async fn bodies_read_back_byte_exact() {
    let (dir, s) = fresh().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"hello world".to_vec()),
        ("binary", (0..=255u8).cycle().take(100_003).collect()),
        ("../../etc/passwd", b"not a path".to_vec()),
        ("a/b/../c", b"dots".to_vec()),
        ("ключ/日本語 \u{1}\n", b"unicode".to_vec()),
    ];
    for (key, data) in &cases {
        let r = put(&s, key, data).await.expect("put");
        assert_eq!(r.etag, hex::encode(md5::Md5::digest(data)), "{key}");
        assert_eq!(r.size, data.len() as u64);
        let o = s.head("b", key, None).await.expect("head");
        assert_eq!(&read(&s, &o), data, "{key}");
        assert_eq!((o.size, o.etag.as_str(), o.is_latest, o.version_id.clone()), (data.len() as u64, r.etag.as_str(), true, None));
    }
    assert_eq!(blobs(dir.path()), cases.len());
    assert_eq!(staging(dir.path()), 0);
    // Nothing is named after a key.
    assert!(!dir.path().join("etc").exists());
}

#[tokio::test]
async fn dropping_a_staged_body_removes_its_file() {
    let (dir, s) = fresh().await;
    let mut st = s.stage(&[]).expect("stage");
    st.write(b"abc").expect("write");
    assert_eq!(staging(dir.path()), 1);
    drop(st);
    assert_eq!(staging(dir.path()), 0, "an unfinished body");
    let body = staged(&s, b"abc", &[ChecksumAlgorithm::Crc32]);
    assert_eq!(body.checksums.get(ChecksumAlgorithm::Crc32), Some("NSRBwg=="));
    assert_eq!(staging(dir.path()), 1);
    drop(body);
    assert_eq!(staging(dir.path()), 0, "a finished body");
    // A committed one is the blob's now; a refused one is removed.
    put(&s, "k", b"x").await.expect("put");
    let refused =
        s.put_object("nope", "k", staged(&s, b"y", &[]), ObjectMeta::default(), vec![], None, PutConditions::default(), "Put").await;
    assert_eq!(refused, Err(ObjectError::NoSuchBucket));
    assert_eq!((staging(dir.path()), blobs(dir.path())), (0, 1));
}

#[tokio::test]
async fn checksums_recorded_with_the_object() {
    let (_dir, s) = fresh().await;
    let body = staged(&s, b"hello world", &[ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Crc32c]);
    let r = s
        .put_object("b", "k", body, ObjectMeta::default(), vec![], Some(ChecksumAlgorithm::Crc32c), PutConditions::default(), "Put")
        .await
        .expect("put");
    assert_eq!(r.checksum, Some((ChecksumAlgorithm::Crc32c, "yZRlqg==".to_string())));
    assert_eq!(s.head("b", "k", None).await.expect("head").checksum, r.checksum);
    let missing = s
        .put_object(
            "b",
            "k",
            staged(&s, b"x", &[]),
            ObjectMeta::default(),
            vec![],
            Some(ChecksumAlgorithm::Sha1),
            PutConditions::default(),
            "Put",
        )
        .await;
    assert!(matches!(missing, Err(ObjectError::InvalidRequest(_))), "{missing:?}");
}

#[tokio::test]
async fn meta_and_tags_round_trip() {
    let (_dir, s) = fresh().await;
    let meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        cache_control: Some("no-cache".into()),
        user: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        ..ObjectMeta::default()
    };
    let tags = vec![("k1".to_string(), "v1".to_string()), ("k2".to_string(), "".to_string())];
    s.put_object("b", "k", staged(&s, b"x", &[]), meta.clone(), tags.clone(), None, PutConditions::default(), "Put").await.expect("put");
    let o = s.head("b", "k", None).await.expect("head");
    assert_eq!((o.meta, o.tag_count), (meta, 2));
    assert_eq!(s.tags("b", "k", None).await.expect("tags"), (tags, None));
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
    let too_many = ObjectError::InvalidArgument("Object tags cannot be greater than 10".into());
    assert_eq!(s.put_tags("b", "k", None, eleven.clone()).await, Err(too_many.clone()));
    let r = s.put_object("b", "k2", staged(&s, b"x", &[]), ObjectMeta::default(), eleven, None, PutConditions::default(), "Put").await;
    assert_eq!(r.map(|_| ()), Err(too_many));
    assert_eq!(s.put_tags("b", "k", None, vec![]).await, Ok(None));
    assert_eq!(s.head("b", "k", None).await.expect("head").tag_count, 0);
    assert_eq!(s.tags("b", "missing", None).await, Err(ObjectError::NoSuchKey { delete_marker: None }));
}

#[tokio::test]
async fn limits_and_missing_things() {
    let (_dir, s) = fresh().await;
    let long = "k".repeat(1025);
    assert_eq!(put(&s, &long, b"x").await.map(|_| ()), Err(ObjectError::KeyTooLongError));
    put(&s, &"k".repeat(1024), b"x").await.expect("1,024 bytes is allowed");
    assert_eq!(s.create_upload("b", &long, ObjectMeta::default(), vec![], None).await, Err(ObjectError::KeyTooLongError));
    assert_eq!(s.head("nope", "k", None).await, Err(ObjectError::NoSuchBucket));
    assert_eq!(s.delete_object("nope", "k", None).await, Err(ObjectError::NoSuchBucket));
    assert_eq!(s.list_objects("nope", &ListQuery::default()).await, Err(ObjectError::NoSuchBucket));
    assert_eq!(s.create_bucket("b", "us-east-1").await.map(|_| ()), Err(ObjectError::BucketAlreadyOwnedByYou));
    assert_eq!(s.head("b", "missing", None).await, Err(ObjectError::NoSuchKey { delete_marker: None }));
    assert_eq!(s.head("b", "missing", Some("null")).await, Err(ObjectError::NoSuchVersion));
    assert_eq!(s.head("b", "missing", Some("abc")).await, Err(ObjectError::NoSuchVersion));
}

// ---- buckets ------------------------------------------------------------------------------

/// A node's own store knows its bucket names without a read: after each create and
/// delete, and again after a reopen.
#[tokio::test]
async fn bucket_names_are_known_after_each_change_and_a_reopen() {
    let (dir, s) = fresh().await;
    s.create_bucket("made", "us-east-1").await.expect("bucket");
    s.create_bucket("gone", "us-east-1").await.expect("bucket");
    s.delete_bucket("gone").await.expect("delete");
    assert_eq!(s.create_bucket("made", "us-east-1").await.map(|_| ()), Err(ObjectError::BucketAlreadyOwnedByYou));
    let reopened = open(dir.path());
    for store in [&s, &reopened] {
        for (name, known) in [("made", true), ("b", true), ("gone", false), ("never", false)] {
            assert_eq!(store.knows_bucket(name), Some(known), "{name}");
        }
    }
}

#[tokio::test]
async fn buckets_settings_and_emptiness() {
    let (_dir, s) = fresh().await;
    s.create_bucket("a", "eu-west-1").await.expect("bucket");
    let names: Vec<String> = s.list_buckets().await.expect("list").into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["a", "b"]);
    let a = s.bucket("a").await.expect("bucket");
    assert_eq!((a.region.as_str(), a.versioning), ("eu-west-1", Versioning::Unversioned));

    assert_eq!(s.bucket_setting("a", "policy").await, Ok(None));
    s.put_bucket_setting("a", "policy", Some("{}".into())).await.expect("set");
    s.put_bucket_setting("a", "policy", Some("{\"v\":2}".into())).await.expect("replace");
    assert_eq!(s.bucket_setting("a", "policy").await, Ok(Some("{\"v\":2}".into())));
    assert_eq!(s.bucket_setting("nope", "policy").await, Err(ObjectError::NoSuchBucket));

    s.set_versioning("a", Versioning::Enabled).await.expect("versioning");
    assert!(s.set_versioning("a", Versioning::Unversioned).await.is_err());
    s.set_versioning("a", Versioning::Suspended).await.expect("suspend");
    assert_eq!(s.bucket("a").await.expect("bucket").versioning, Versioning::Suspended);

    // A version, a delete marker and an upload each keep a bucket.
    s.put_object("a", "k", staged(&s, b"x", &[]), ObjectMeta::default(), vec![], None, PutConditions::default(), "Put").await.expect("put");
    assert_eq!(s.delete_bucket("a").await, Err(ObjectError::BucketNotEmpty));
    s.delete_object("a", "k", None).await.expect("delete"); // suspended: a null delete marker
    assert_eq!(s.delete_bucket("a").await, Err(ObjectError::BucketNotEmpty));
    s.delete_object("a", "k", Some("null")).await.expect("delete marker");
    let up = s.create_upload("a", "k", ObjectMeta::default(), vec![], None).await.expect("upload");
    assert_eq!(s.delete_bucket("a").await, Err(ObjectError::BucketNotEmpty));
    s.abort_upload("a", "k", &up).await.expect("abort");
    s.delete_bucket("a").await.expect("delete bucket");
    assert_eq!(s.bucket("a").await, Err(ObjectError::NoSuchBucket));
    // Its settings went with it.
    s.create_bucket("a", "eu-west-1").await.expect("bucket again");
    assert_eq!(s.bucket_setting("a", "policy").await, Ok(None));
}

// ---- conditions -----------------------------------------------------------------------------

#[tokio::test]
async fn write_conditions() {
    let etag_x = hex::encode(md5::Md5::digest(b"x"));
    // (existing state, conditions, expected)
    enum Before {
        Nothing,
        Object,
        DeleteMarker,
    }
    let cases: Vec<(Before, PutConditions, Result<(), ObjectError>)> = vec![
        (Before::Nothing, PutConditions { if_none_match_any: true, if_match: None }, Ok(())),
        (Before::Object, PutConditions { if_none_match_any: true, if_match: None }, Err(ObjectError::PreconditionFailed)),
        (Before::DeleteMarker, PutConditions { if_none_match_any: true, if_match: None }, Ok(())),
        (Before::Object, PutConditions { if_none_match_any: false, if_match: Some(etag_x.clone()) }, Ok(())),
        (Before::Object, PutConditions { if_none_match_any: false, if_match: Some(format!("\"{etag_x}\"")) }, Ok(())),
        (Before::Object, PutConditions { if_none_match_any: false, if_match: Some("0".repeat(32)) }, Err(ObjectError::PreconditionFailed)),
        (
            Before::Nothing,
            PutConditions { if_none_match_any: false, if_match: Some(etag_x.clone()) },
            Err(ObjectError::NoSuchKey { delete_marker: None }),
        ),
        (
            Before::DeleteMarker,
            PutConditions { if_none_match_any: false, if_match: Some(etag_x.clone()) },
            Err(ObjectError::NoSuchKey { delete_marker: None }),
        ),
    ];
    for (i, (before, conditions, want)) in cases.into_iter().enumerate() {
        let (dir, s) = fresh().await;
        s.set_versioning("b", Versioning::Enabled).await.expect("versioning");
        match before {
            Before::Nothing => {}
            Before::Object => drop(put(&s, "k", b"x").await.expect("put")),
            Before::DeleteMarker => {
                put(&s, "k", b"x").await.expect("put");
                s.delete_object("b", "k", None).await.expect("delete");
            }
        }
        let blobs_before = blobs(dir.path());
        let got = put_if(&s, "k", b"new", conditions).await.map(|_| ());
        assert_eq!(got, want, "case {i}");
        // A refused write leaves no blob behind.
        let expect = blobs_before + usize::from(want.is_ok());
        assert_eq!(blobs(dir.path()), expect, "case {i} blobs");
    }
}

// ---- versioning ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Put(&'static str),
    Delete,
    /// Deletes the n-th newest version (0 = latest) by its id.
    DeleteNth(usize),
    State(Versioning),
}

/// The versions of `k`, newest first: (null?, delete marker?, latest?, body).
type Shape = Vec<(bool, bool, bool, &'static str)>;

async fn shape(s: &ObjectStore) -> Vec<(bool, bool, bool, String)> {
    let page = s.list_versions("b", &VersionQuery { max_keys: 1000, ..VersionQuery::default() }).await.expect("versions");
    page.versions
        .iter()
        .map(|o| {
            let body = if o.delete_marker { String::new() } else { String::from_utf8(read(s, o)).expect("utf8") };
            (o.version_id.is_none(), o.delete_marker, o.is_latest, body)
        })
        .collect()
}

#[tokio::test]
async fn versioning_state_machine() {
    use Op::*;
    use Versioning::*;
    let cases: Vec<(&str, Vec<Op>, Shape)> = vec![
        ("unversioned overwrite", vec![Put("a"), Put("b")], vec![(true, false, true, "b")]),
        ("unversioned delete", vec![Put("a"), Delete], vec![]),
        ("unversioned delete of nothing", vec![Delete], vec![]),
        ("enabled keeps all", vec![State(Enabled), Put("a"), Put("b")], vec![(false, false, true, "b"), (false, false, false, "a")]),
        ("enabled delete marker", vec![State(Enabled), Put("a"), Delete], vec![(false, true, true, ""), (false, false, false, "a")]),
        ("enabled delete of nothing makes a marker", vec![State(Enabled), Delete], vec![(false, true, true, "")]),
        (
            "null version kept when enabled",
            vec![Put("a"), State(Enabled), Put("b")],
            vec![(false, false, true, "b"), (true, false, false, "a")],
        ),
        (
            "suspended replaces the null version",
            vec![Put("a"), State(Enabled), Put("b"), State(Suspended), Put("c")],
            vec![(true, false, true, "c"), (false, false, false, "b")],
        ),
        (
            "suspended delete: null marker replacing the null version",
            vec![State(Enabled), Put("a"), State(Suspended), Put("n"), Delete],
            vec![(true, true, true, ""), (false, false, false, "a")],
        ),
        (
            "removing the latest promotes the next newest",
            vec![State(Enabled), Put("a"), Put("b"), DeleteNth(0)],
            vec![(false, false, true, "a")],
        ),
        ("removing a delete marker undeletes", vec![State(Enabled), Put("a"), Delete, DeleteNth(0)], vec![(false, false, true, "a")]),
        (
            "removing an old version keeps the latest",
            vec![State(Enabled), Put("a"), Put("b"), Put("c"), DeleteNth(1)],
            vec![(false, false, true, "c"), (false, false, false, "a")],
        ),
        ("removing the only version", vec![State(Enabled), Put("a"), DeleteNth(0)], vec![]),
        ("suspended put after a null marker", vec![State(Suspended), Put("a"), Delete, Put("b")], vec![(true, false, true, "b")]),
    ];
    for (name, ops, want) in cases {
        let (dir, s) = fresh().await;
        for op in ops {
            match op {
                Put(body) => drop(put(&s, "k", body.as_bytes()).await.expect(name)),
                Delete => drop(s.delete_object("b", "k", None).await.expect(name)),
                DeleteNth(n) => {
                    let page = s.list_versions("b", &VersionQuery { max_keys: 1000, ..VersionQuery::default() }).await.expect(name);
                    let id = page.versions[n].version_id.clone();
                    let out = s.delete_object("b", "k", Some(id.as_deref().unwrap_or("null"))).await.expect(name);
                    assert_eq!((out.version_id, out.delete_marker), (id, page.versions[n].delete_marker), "{name}");
                }
                State(v) => s.set_versioning("b", v).await.expect(name),
            }
        }
        let want: Vec<(bool, bool, bool, String)> = want.into_iter().map(|(a, b, c, d)| (a, b, c, d.to_string())).collect();
        assert_eq!(shape(&s).await, want, "{name}");
        // Exactly the bodies of the versions are on disk.
        let bodies = want.iter().filter(|v| !v.1).count();
        assert_eq!(blobs(dir.path()), bodies, "{name}: blobs");
        // The latest decides head.
        match want.first() {
            None => assert_eq!(s.head("b", "k", None).await, Err(ObjectError::NoSuchKey { delete_marker: None }), "{name}"),
            Some((_, true, _, _)) => {
                assert!(matches!(s.head("b", "k", None).await, Err(ObjectError::NoSuchKey { delete_marker: Some(_) })), "{name}")
            }
            Some((_, false, _, body)) => assert_eq!(read(&s, &s.head("b", "k", None).await.expect(name)), body.as_bytes(), "{name}"),
        }
    }
}

#[tokio::test]
async fn delete_outcomes_and_markers() {
    let (_dir, s) = fresh().await;
    assert_eq!(s.delete_object("b", "k", None).await, Ok(DeleteOutcome { version_id: None, delete_marker: false }));
    s.set_versioning("b", Versioning::Enabled).await.expect("versioning");
    let v1 = put(&s, "k", b"1").await.expect("put").version_id.expect("id");
    assert_eq!(v1.len(), 32);
    assert!(v1.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let out = s.delete_object("b", "k", None).await.expect("delete");
    let marker = out.version_id.clone().expect("marker id");
    assert!(out.delete_marker);
    assert_eq!(s.head("b", "k", None).await, Err(ObjectError::NoSuchKey { delete_marker: Some(Some(marker.clone())) }));
    // By id: the marker as is, the old version readable.
    let m = s.head("b", "k", Some(&marker)).await.expect("marker");
    assert!(m.delete_marker && m.is_latest && m.blob.is_none());
    assert_eq!(read(&s, &s.head("b", "k", Some(&v1)).await.expect("v1")), b"1");
    assert_eq!(s.tags("b", "k", Some(&marker)).await, Err(ObjectError::MethodNotAllowed { version_id: Some(marker.clone()) }));
    assert_eq!(s.delete_object("b", "k", Some("unknown")).await, Err(ObjectError::NoSuchVersion));
    // Suspended: a null marker.
    s.set_versioning("b", Versioning::Suspended).await.expect("suspend");
    let out = s.delete_object("b", "k", None).await.expect("delete");
    assert_eq!(out, DeleteOutcome { version_id: None, delete_marker: true });
    assert_eq!(s.head("b", "k", None).await, Err(ObjectError::NoSuchKey { delete_marker: Some(None) }));
    assert!(s.head("b", "k", Some("null")).await.expect("null marker").delete_marker);

    // DeleteObjects: each key alone, refused ones leave no trace.
    let results = s
        .delete_objects("b", vec![("k".into(), Some(v1.clone())), ("x".into(), Some("unknown".into())), ("y".into(), None)])
        .await
        .expect("delete objects");
    assert_eq!(results[0], Ok(DeleteOutcome { version_id: Some(v1), delete_marker: false }));
    assert_eq!(results[1], Err(ObjectError::NoSuchVersion));
    assert_eq!(results[2], Ok(DeleteOutcome { version_id: None, delete_marker: true }));
}

#[tokio::test]
async fn concurrent_puts_last_commit_wins() {
    let (dir, s) = fresh().await;
    let s = std::sync::Arc::new(s);
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move { put(&s, "k", &[i; 100]).await.expect("put") }));
    }
    for h in handles {
        h.await.expect("join");
    }
    let o = s.head("b", "k", None).await.expect("head");
    let body = read(&s, &o);
    assert_eq!(body.len(), 100);
    assert!(body.iter().all(|b| *b == body[0]));
    assert_eq!(blobs(dir.path()), 1, "the replaced blobs are removed");
}

#[tokio::test]
async fn copies_share_no_file_they_would_lose() {
    let (dir, s) = fresh().await;
    put(&s, "src", b"payload").await.expect("put");
    let src = s.head("b", "src", None).await.expect("head");
    let meta = ObjectMeta { content_type: Some("a/b".into()), ..ObjectMeta::default() };
    let r = s.copy_object(&src, "b", "dst", meta.clone(), vec![("t".into(), "1".into())], PutConditions::default()).await.expect("copy");
    assert_eq!((r.etag.as_str(), r.size), (src.etag.as_str(), 7));
    // Copying onto itself in an unversioned bucket replaces the source's blob.
    s.copy_object(&src, "b", "src", ObjectMeta::default(), vec![], PutConditions::default()).await.expect("self copy");
    assert_eq!(blobs(dir.path()), 2);
    s.delete_object("b", "src", None).await.expect("delete source");
    let dst = s.head("b", "dst", None).await.expect("dst");
    assert_eq!((read(&s, &dst), dst.meta, dst.tag_count), (b"payload".to_vec(), meta, 1));
    assert_eq!(blobs(dir.path()), 1);
    // A source gone meanwhile.
    assert_eq!(
        s.copy_object(&src, "b", "again", ObjectMeta::default(), vec![], PutConditions::default()).await,
        Err(ObjectError::NoSuchKey { delete_marker: None })
    );
}

#[tokio::test]
async fn a_body_stays_readable_while_open() {
    let (_dir, s) = fresh().await;
    put(&s, "k", b"first").await.expect("put");
    let o = s.head("b", "k", None).await.expect("head");
    let mut f = s.open_body(&o).expect("open");
    put(&s, "k", b"second").await.expect("overwrite");
    let mut got = Vec::new();
    f.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"first");
}

// ---- listing ------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "a",
    "a/",
    "a//b",
    "a/b",
    "a/b/c",
    "a/c",
    "a0",
    "a\u{1}x",
    "..",
    "../up",
    "b c",
    "b/x/y",
    "z",
    "é",
    "é/ü",
    "日本/語",
    "\u{10FFFF}last",
    "~",
];

/// ListObjects by the book: every key, rolled up, deduplicated, after the marker, paged.
fn reference(keys: &[String], q: &ListQuery) -> (Vec<String>, bool) {
    let mut all: Vec<String> = Vec::new();
    for k in keys {
        if !k.starts_with(&q.prefix) {
            continue;
        }
        let e = match crate::list::common_prefix(k, &q.prefix, q.delimiter.as_deref()) {
            Some(cp) => format!("P:{cp}"),
            None => k.clone(),
        };
        if all.last() != Some(&e) {
            all.push(e);
        }
    }
    let name = |e: &str| e.strip_prefix("P:").unwrap_or(e).to_string();
    all.retain(|e| q.after.as_ref().is_none_or(|a| name(e).as_bytes() > a.as_bytes()));
    // S3 answers max-keys=0 with an empty page that is not truncated.
    let truncated = q.max_keys > 0 && all.len() > q.max_keys;
    all.truncate(q.max_keys);
    (all, truncated)
}

fn entries(page: &ListPage) -> Vec<String> {
    let mut out: Vec<String> =
        page.objects.iter().map(|o| o.key.clone()).chain(page.common_prefixes.iter().map(|p| format!("P:{p}"))).collect();
    out.sort_by(|a, b| a.strip_prefix("P:").unwrap_or(a).as_bytes().cmp(b.strip_prefix("P:").unwrap_or(b).as_bytes()));
    out
}

#[tokio::test]
async fn listing_table() {
    let (_dir, s) = fresh().await;
    let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    // A common prefix spanning many keys.
    keys.extend((0..300).map(|i| format!("many/{i:04}")));
    for k in &keys {
        put(&s, k, k.as_bytes()).await.expect("put");
    }
    // Delete markers and removed keys are not listed.
    s.set_versioning("b", Versioning::Enabled).await.expect("versioning");
    put(&s, "gone", b"x").await.expect("put");
    s.delete_object("b", "gone", None).await.expect("delete");
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    let q = |prefix: &str, delimiter: Option<&str>, after: Option<&str>, max_keys: usize| ListQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        after: after.map(Into::into),
        max_keys,
    };
    let cases: Vec<(ListQuery, Option<(Vec<&str>, bool)>)> = vec![
        (q("", Some("/"), None, 1000), None),
        (q("", Some("/"), None, 3), Some((vec!["..", "P:../", "a"], true))),
        // 0x01 sorts before '/'.
        (q("", Some("/"), Some("a"), 2), Some((vec!["a\u{1}x", "P:a/"], true))),
        // After a common prefix: nothing under it again.
        (q("", Some("/"), Some("a/"), 2), Some((vec!["a0", "b c"], true))),
        (q("", Some("/"), Some("a/zzz"), 1), Some((vec!["a0"], true))),
        (q("", Some("/"), Some("many/"), 2), Some((vec!["z", "~"], true))),
        (q("a/", Some("/"), None, 1000), Some((vec!["a/", "P:a//", "a/b", "P:a/b/", "a/c"], false))),
        (q("a/", None, None, 1000), Some((vec!["a/", "a//b", "a/b", "a/b/c", "a/c"], false))),
        (q("many/", None, Some("many/0297"), 1000), Some((vec!["many/0298", "many/0299"], false))),
        (q("many/", None, Some("many/0297"), 2), Some((vec!["many/0298", "many/0299"], false))),
        (q("many/", None, Some("many/0296"), 2), Some((vec!["many/0297", "many/0298"], true))),
        (q("é", Some("/"), None, 1000), Some((vec!["é", "P:é/"], false))),
        (q("", Some("/"), Some("é/"), 1000), Some((vec!["P:日本/", "\u{10FFFF}last"], false))),
        (q("x", None, None, 1000), Some((vec![], false))),
        (q("", None, None, 0), Some((vec![], false))),
        (q("", Some("b"), None, 1000), None),
        (q("a", Some("/"), Some("a/"), 1000), Some((vec!["a0"], false))),
        (q("", Some(".."), None, 1000), None),
        (q("", None, Some("\u{10FFFF}"), 1000), Some((vec!["\u{10FFFF}last"], false))),
    ];
    for (i, (query, want)) in cases.iter().enumerate() {
        let page = s.list_objects("b", query).await.expect("list");
        let (ref_entries, ref_truncated) = reference(&keys, query);
        assert_eq!((entries(&page), page.truncated), (ref_entries.clone(), ref_truncated), "case {i}: {query:?} against the reference");
        if let Some((want, truncated)) = want {
            assert_eq!((ref_entries, ref_truncated), (want.iter().map(|s| s.to_string()).collect(), *truncated), "case {i}: {query:?}");
        }
        let last = entries(&page).last().map(|e| e.strip_prefix("P:").unwrap_or(e).to_string());
        assert_eq!(page.next_after, if page.truncated { last } else { None }, "case {i}");
        // Listed objects are the latest and carry their bodies.
        for o in &page.objects {
            assert!(o.is_latest && !o.delete_marker);
            assert_eq!(read(&s, o), o.key.as_bytes());
        }
    }

    // Paging through with every page size gives the whole listing once.
    for delimiter in [None, Some("/")] {
        let full = reference(&keys, &q("", delimiter, None, 10_000)).0;
        for max in [1, 2, 3, 7, 50] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = s.list_objects("b", &q("", delimiter, after.as_deref(), max)).await.expect("page");
                assert!(page.objects.len() + page.common_prefixes.len() <= max);
                got.extend(entries(&page));
                if !page.truncated {
                    break;
                }
                after = page.next_after.clone();
            }
            assert_eq!(got, full, "pages of {max}, delimiter {delimiter:?}");
        }
    }
}

#[test]
fn a_common_prefix_is_jumped_over() {
    use crate::list::{walk, Cursor, Entry};
    // 10,000 keys under "big/": the walk must seek past them, not read them.
    let mut keys: Vec<String> = (0..10_000).map(|i| format!("big/{i:05}")).collect();
    keys.extend(["a".to_string(), "c".to_string()]);
    keys.sort();
    struct Keys {
        keys: Vec<String>,
        rows_read: usize,
    }
    impl crate::list::Fetch<String> for Keys {
        async fn fetch(&mut self, c: &Cursor, limit: usize) -> Result<Vec<(String, i64, String)>, ObjectError> {
            let from = |k: &String| match c {
                Cursor::AtLeast(b) => k.as_bytes() >= b.as_slice(),
                Cursor::After(a) | Cursor::AfterRow(a, _) => k.as_bytes() > a.as_bytes(),
            };
            let rows: Vec<(String, i64, String)> =
                self.keys.iter().filter(|k| from(k)).take(limit).map(|k| (k.clone(), 0, k.clone())).collect();
            self.rows_read += rows.len();
            Ok(rows)
        }
    }
    let mut fetch = Keys { keys, rows_read: 0 };
    let (out, truncated) = nimbus_store::tx::at_once(walk("", Some("/"), 10, Some(Cursor::AtLeast(Vec::new())), &mut fetch)).expect("walk");
    let rows_read = fetch.rows_read;
    let names: Vec<String> = out
        .into_iter()
        .map(|e| match e {
            Entry::Item(k) => k,
            Entry::Prefix(p) => format!("P:{p}"),
        })
        .collect();
    assert_eq!((names, truncated), (vec!["a".to_string(), "P:big/".to_string(), "c".to_string()], false));
    assert!(rows_read < 40, "read {rows_read} rows");
}

#[tokio::test]
async fn version_listing_and_markers() {
    let (_dir, s) = fresh().await;
    put(&s, "a", b"null").await.expect("put");
    s.set_versioning("b", Versioning::Enabled).await.expect("versioning");
    let mut ids = Vec::new();
    for body in ["1", "2", "3"] {
        ids.push(put(&s, "a", body.as_bytes()).await.expect("put").version_id.expect("id"));
    }
    let marker = s.delete_object("b", "b/x", None).await.expect("marker").version_id.expect("id");
    put(&s, "c", b"c").await.expect("put");
    let all = s.list_versions("b", &VersionQuery { max_keys: 1000, ..VersionQuery::default() }).await.expect("list");
    let got: Vec<(String, Option<String>, bool)> =
        all.versions.iter().map(|o| (o.key.clone(), o.version_id.clone(), o.is_latest)).collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), Some(ids[2].clone()), true),
            ("a".into(), Some(ids[1].clone()), false),
            ("a".into(), Some(ids[0].clone()), false),
            ("a".into(), None, false),
            ("b/x".into(), Some(marker.clone()), true),
            ("c".into(), got[5].1.clone(), true),
        ]
    );
    assert!(!all.truncated && all.next_key_marker.is_none());

    // Paging with every size gives the same versions once.
    for max in 1..=7 {
        let mut seen = Vec::new();
        let (mut km, mut vm) = (None, None);
        loop {
            let page = s
                .list_versions(
                    "b",
                    &VersionQuery { max_keys: max, key_marker: km.clone(), version_id_marker: vm.clone(), ..VersionQuery::default() },
                )
                .await
                .expect("page");
            seen.extend(page.versions.iter().map(|o| (o.key.clone(), o.version_id.clone(), o.is_latest)));
            if !page.truncated {
                break;
            }
            km = page.next_key_marker;
            vm = page.next_version_id_marker;
        }
        assert_eq!(seen, got, "pages of {max}");
    }
    let q = |prefix: &str, delimiter: Option<&str>, km: Option<&str>, vm: Option<&str>, max: usize| VersionQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        key_marker: km.map(Into::into),
        version_id_marker: vm.map(Into::into),
        max_keys: max,
    };
    let cases: Vec<(VersionQuery, Vec<(&str, Option<&str>)>, Vec<&str>, bool)> = vec![
        (q("", None, Some("a"), None, 10), vec![("b/x", Some(&marker)), ("c", None)], vec![], false),
        (
            q("", None, Some("a"), Some(&ids[1]), 10),
            vec![("a", Some(&ids[0])), ("a", Some("null")), ("b/x", Some(&marker)), ("c", None)],
            vec![],
            false,
        ),
        (q("", None, Some("a"), Some("null"), 1), vec![("b/x", Some(&marker))], vec![], true),
        (
            q("", Some("/"), None, None, 10),
            vec![("a", Some(&ids[2])), ("a", Some(&ids[1])), ("a", Some(&ids[0])), ("a", Some("null")), ("c", None)],
            vec!["b/"],
            false,
        ),
        (q("b/", None, None, None, 10), vec![("b/x", Some(&marker))], vec![], false),
        (q("", Some("/"), Some("b/"), None, 10), vec![("c", None)], vec![], false),
    ];
    for (i, (query, want, prefixes, truncated)) in cases.into_iter().enumerate() {
        let page = s.list_versions("b", &query).await.expect("list");
        let got: Vec<(String, String)> =
            page.versions.iter().map(|o| (o.key.clone(), o.version_id.clone().unwrap_or("null".into()))).collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(k, v)| {
                let v = v
                    .map(str::to_string)
                    .unwrap_or_else(|| page.versions.iter().find(|o| o.key == k).and_then(|o| o.version_id.clone()).unwrap_or_default());
                (k.to_string(), v)
            })
            .collect();
        assert_eq!(got, want, "case {i}");
        assert_eq!(page.common_prefixes, prefixes, "case {i}");
        assert_eq!(page.truncated, truncated, "case {i}");
    }
}

// ---- multipart ----------------------------------------------------------------------------

fn part_body(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n)).collect()
}

#[tokio::test]
async fn multipart_upload_end_to_end() {
    let (dir, s) = fresh().await;
    let big = limits::MIN_PART_BYTES as usize;
    let cases: Vec<(Option<ChecksumAlgorithm>, Vec<usize>)> = vec![
        (None, vec![100]),
        (None, vec![big, big + 3, 10]),
        (Some(ChecksumAlgorithm::Crc32), vec![big, 7]),
        (Some(ChecksumAlgorithm::Sha256), vec![big, 7]),
        (Some(ChecksumAlgorithm::Crc64Nvme), vec![big, 7]),
    ];
    for (i, (algorithm, sizes)) in cases.into_iter().enumerate() {
        let key = format!("mp{i}");
        let meta = ObjectMeta { content_type: Some("x/y".into()), ..ObjectMeta::default() };
        let id = s.create_upload("b", &key, meta.clone(), vec![("t".into(), "v".into())], algorithm).await.expect("create");
        let info = s.upload("b", &key, &id).await.expect("upload");
        assert_eq!((info.meta.clone(), info.checksum_algorithm), (meta.clone(), algorithm));
        let want: Vec<ChecksumAlgorithm> = algorithm.into_iter().collect();
        let mut whole = Vec::new();
        let mut named = Vec::new();
        let mut md5s = Vec::new();
        let mut part_sums = Vec::new();
        for (n, size) in sizes.iter().enumerate() {
            let data = part_body(n as u8, *size);
            // A first upload of the part, replaced.
            s.put_part("b", &key, &id, n as u32 + 1, staged(&s, b"replaced", &want), algorithm).await.expect("part");
            let p = s.put_part("b", &key, &id, n as u32 + 1, staged(&s, &data, &want), algorithm).await.expect("part");
            assert_eq!(p.etag, hex::encode(md5::Md5::digest(&data)));
            md5s.extend(md5::Md5::digest(&data));
            if let Some(a) = algorithm {
                let mut h = Hasher::new(a);
                h.update(&data);
                part_sums.push(h.finish_base64());
            }
            named.push(CompletedPart { part_number: n as u32 + 1, etag: format!("\"{}\"", p.etag) });
            whole.extend(data);
        }
        assert_eq!(blobs(dir.path()) - i, sizes.len(), "case {i}: replaced parts removed");
        let r = s.complete_upload("b", &key, &id, named, PutConditions::default()).await.expect("complete");
        // The ETag, computed independently.
        assert_eq!(r.etag, format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), sizes.len()), "case {i}");
        let o = s.head("b", &key, None).await.expect("head");
        assert_eq!(
            (o.parts_count, o.size, o.meta.clone(), o.tag_count),
            (Some(sizes.len() as u32), whole.len() as u64, meta, 1),
            "case {i}"
        );
        assert_eq!(o.part_sizes, sizes.iter().map(|s| *s as u64).collect::<Vec<_>>(), "case {i}: part sizes");
        assert!(read(&s, &o) == whole, "case {i}: body");
        // No algorithm named: S3's default, the whole object's CRC64NVME.
        let want_checksum = Some(algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme)).map(|a| {
            let value = if a == ChecksumAlgorithm::Crc64Nvme {
                let mut h = Hasher::new(a);
                h.update(&whole);
                h.finish_base64()
            } else {
                let mut h = Hasher::new(a);
                for p in &part_sums {
                    h.update(&base64::engine::general_purpose::STANDARD.decode(p).expect("b64"));
                }
                format!("{}-{}", h.finish_base64(), sizes.len())
            };
            (a, value)
        });
        assert_eq!(o.checksum, want_checksum, "case {i}: checksum");
        assert_eq!(r.checksum, want_checksum);
        // The upload and its parts are gone.
        assert_eq!(s.upload("b", &key, &id).await, Err(ObjectError::NoSuchUpload));
        assert_eq!(blobs(dir.path()), i + 1, "case {i}: part blobs removed");
        assert_eq!(staging(dir.path()), 0);
    }
}

#[tokio::test]
async fn multipart_refusals() {
    let (dir, s) = fresh().await;
    let id = s.create_upload("b", "k", ObjectMeta::default(), vec![], None).await.expect("create");
    let bad_number = Err(ObjectError::InvalidArgument("Part number must be an integer between 1 and 10000, inclusive".into()));
    for n in [0, 10_001] {
        assert_eq!(s.put_part("b", "k", &id, n, staged(&s, b"x", &[]), None).await, bad_number, "part {n}");
    }
    assert_eq!(s.put_part("b", "other", &id, 1, staged(&s, b"x", &[]), None).await, Err(ObjectError::NoSuchUpload));
    assert_eq!(s.put_part("b", "k", "nope", 1, staged(&s, b"x", &[]), None).await, Err(ObjectError::NoSuchUpload));
    assert_eq!(s.upload("b", "other", &id).await, Err(ObjectError::NoSuchUpload));
    let p1 = s.put_part("b", "k", &id, 1, staged(&s, b"small", &[]), None).await.expect("p1");
    let p2 = s.put_part("b", "k", &id, 2, staged(&s, b"small too", &[]), None).await.expect("p2");
    assert_eq!(blobs(dir.path()), 2);
    let part = |n: u32, e: &str| CompletedPart { part_number: n, etag: e.to_string() };
    let cases: Vec<(Vec<CompletedPart>, ObjectError)> = vec![
        (vec![], ObjectError::InvalidPart),
        (vec![part(2, &p2.etag), part(1, &p1.etag)], ObjectError::InvalidPartOrder),
        (vec![part(1, &p1.etag), part(3, &p1.etag)], ObjectError::InvalidPart),
        (vec![part(1, &p2.etag)], ObjectError::InvalidPart),
        (vec![part(1, &p1.etag), part(2, &p2.etag)], ObjectError::EntityTooSmall),
    ];
    for (i, (parts, want)) in cases.into_iter().enumerate() {
        assert_eq!(s.complete_upload("b", "k", &id, parts, PutConditions::default()).await, Err(want), "case {i}");
    }
    assert_eq!(
        s.complete_upload("b", "k", "nope", vec![part(1, &p1.etag)], PutConditions::default()).await,
        Err(ObjectError::NoSuchUpload)
    );
    // A failed condition keeps the upload.
    put(&s, "k", b"exists").await.expect("put");
    let none_match = PutConditions { if_none_match_any: true, if_match: None };
    assert_eq!(s.complete_upload("b", "k", &id, vec![part(1, &p1.etag)], none_match).await, Err(ObjectError::PreconditionFailed));
    assert_eq!(blobs(dir.path()), 3);
    // A single small part is a whole object; the unnamed part goes with the upload.
    let r = s.complete_upload("b", "k", &id, vec![part(1, &p1.etag)], PutConditions::default()).await.expect("complete");
    assert!(r.etag.ends_with("-1"));
    assert_eq!(read(&s, &s.head("b", "k", None).await.expect("head")), b"small");
    assert_eq!(blobs(dir.path()), 1);
    assert_eq!(staging(dir.path()), 0);
}

#[tokio::test]
async fn upload_and_part_listings() {
    let (_dir, s) = fresh().await;
    let mut ids = Vec::new();
    for key in ["a", "a", "b/1", "b/2", "c"] {
        ids.push((key, s.create_upload("b", key, ObjectMeta::default(), vec![], None).await.expect("create")));
    }
    let q = |prefix: &str, delimiter: Option<&str>, km: Option<&str>, um: Option<&str>, max: usize| UploadsQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        key_marker: km.map(Into::into),
        upload_id_marker: um.map(Into::into),
        max_uploads: max,
    };
    let cases: Vec<(UploadsQuery, Vec<usize>, Vec<&str>, bool)> = vec![
        (q("", None, None, None, 1000), vec![0, 1, 2, 3, 4], vec![], false),
        (q("", Some("/"), None, None, 1000), vec![0, 1, 4], vec!["b/"], false),
        (q("", None, Some("a"), None, 1000), vec![2, 3, 4], vec![], false),
        (q("", None, Some("a"), Some(&ids[0].1), 1000), vec![1, 2, 3, 4], vec![], false),
        (q("", None, None, None, 2), vec![0, 1], vec![], true),
        (q("b/", None, None, None, 1000), vec![2, 3], vec![], false),
        (q("", Some("/"), None, None, 3), vec![0, 1], vec!["b/"], true),
    ];
    for (i, (query, want, prefixes, truncated)) in cases.into_iter().enumerate() {
        let page = s.list_uploads("b", &query).await.expect("uploads");
        let got: Vec<String> = page.uploads.iter().map(|u| u.upload_id.clone()).collect();
        let want: Vec<String> = want.iter().map(|n| ids[*n].1.clone()).collect();
        assert_eq!(
            (got, page.common_prefixes.clone(), page.truncated),
            (want, prefixes.iter().map(|p| p.to_string()).collect(), truncated),
            "case {i}"
        );
    }

    let id = &ids[4].1;
    for n in [3, 1, 2, 5] {
        s.put_part("b", "c", id, n, staged(&s, &[n as u8], &[]), None).await.expect("part");
    }
    let cases: Vec<(Option<u32>, usize, Vec<u32>, bool, Option<u32>)> = vec![
        (None, 1000, vec![1, 2, 3, 5], false, None),
        (None, 2, vec![1, 2], true, Some(2)),
        (Some(2), 2, vec![3, 5], false, None),
        (Some(3), 1, vec![5], false, None),
        (Some(5), 10, vec![], false, None),
    ];
    for (i, (marker, max, want, truncated, next)) in cases.into_iter().enumerate() {
        let page = s.list_parts("b", "c", id, marker, max).await.expect("parts");
        let got: Vec<u32> = page.parts.iter().map(|p| p.part_number).collect();
        assert_eq!((got, page.truncated, page.next_part_number_marker), (want, truncated, next), "case {i}");
    }
    assert_eq!(s.list_parts("b", "a", id, None, 10).await, Err(ObjectError::NoSuchUpload));
}

// ---- notifications ------------------------------------------------------------------------

fn destination(id: &str, events: &[&str], prefix: Option<&str>) -> Destination {
    Destination {
        kind: DestinationKind::Queue,
        id: id.into(),
        arn: format!("arn:aws:sqs:us-east-1:000000000000:{id}"),
        events: events.iter().map(|e| e.to_string()).collect(),
        prefix: prefix.map(Into::into),
        suffix: None,
    }
}

#[tokio::test]
async fn notifications_are_recorded_with_their_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path());
    s.create_bucket("b", "us-east-1").await.expect("bucket");
    let config = NotificationConfig {
        destinations: vec![
            destination("all", &["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectTagging:*"], None),
            destination("logs", &["s3:ObjectCreated:Put"], Some("logs/")),
        ],
        event_bridge: false,
    };
    s.set_notifications("b", config.clone()).await.expect("config");
    assert_eq!(s.notifications("b").await, Ok(config));

    put(&s, "logs/1", b"x").await.expect("put");
    let src = s.head("b", "logs/1", None).await.expect("head");
    s.copy_object(&src, "b", "copy", ObjectMeta::default(), vec![], PutConditions::default()).await.expect("copy");
    s.put_tags("b", "copy", None, vec![("a".into(), "b".into())]).await.expect("tags");
    s.put_tags("b", "copy", None, vec![]).await.expect("untag");
    s.delete_object("b", "copy", None).await.expect("delete");
    s.delete_object("b", "never-existed", None).await.expect("delete");
    // Refused changes owe nothing.
    put_if(&s, "logs/1", b"y", PutConditions { if_none_match_any: true, if_match: None }).await.expect_err("refused");
    s.set_versioning("b", Versioning::Enabled).await.expect("versioning");
    let marker = s.delete_object("b", "logs/1", None).await.expect("marker").version_id;
    let id = s.create_upload("b", "mp", ObjectMeta::default(), vec![], None).await.expect("create");
    let p = s.put_part("b", "mp", &id, 1, staged(&s, b"part", &[]), None).await.expect("part");
    let done = s
        .complete_upload("b", "mp", &id, vec![CompletedPart { part_number: 1, etag: p.etag }], PutConditions::default())
        .await
        .expect("complete");

    let taken = s.take_notifications(100).await.expect("take");
    let got: Vec<(&str, &str, &str, Option<u64>, Option<String>)> =
        taken.iter().map(|n| (n.configuration_id.as_str(), n.event_name.as_str(), n.key.as_str(), n.size, n.version_id.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("all", "ObjectCreated:Put", "logs/1", Some(1), None),
            ("logs", "ObjectCreated:Put", "logs/1", Some(1), None),
            ("all", "ObjectCreated:Copy", "copy", Some(1), None),
            ("all", "ObjectTagging:Put", "copy", None, None),
            ("all", "ObjectTagging:Delete", "copy", None, None),
            ("all", "ObjectRemoved:Delete", "copy", None, None),
            ("all", "ObjectRemoved:Delete", "never-existed", None, None),
            ("all", "ObjectRemoved:DeleteMarkerCreated", "logs/1", None, marker),
            ("all", "ObjectCreated:CompleteMultipartUpload", "mp", Some(4), done.version_id),
        ]
    );
    // Both destinations of one change share its sequencer; later changes have larger ones.
    assert_eq!(taken[0].sequencer, taken[1].sequencer);
    assert!(taken.windows(2).all(|w| w[0].sequencer <= w[1].sequencer));
    assert!(taken[2].sequencer > taken[1].sequencer);
    assert!(taken.iter().all(|n| n.sequencer.len() == 16 && n.bucket == "b" && n.kind == DestinationKind::Queue));
    assert_eq!(taken[0].etag.as_deref(), Some(hex::encode(md5::Md5::digest(b"x")).as_str()));
    assert_eq!(taken[0].destination_arn, "arn:aws:sqs:us-east-1:000000000000:all");

    // Taking does not remove; acknowledging does; what is left survives a restart.
    assert_eq!(s.take_notifications(2).await.expect("again"), taken[..2]);
    s.ack_notifications(taken[..3].iter().map(|n| n.id).collect()).await.expect("ack");
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.take_notifications(100).await.expect("after restart"), taken[3..]);
    // An empty configuration removes it.
    s.set_notifications("b", NotificationConfig::default()).await.expect("clear");
    put(&s, "z", b"z").await.expect("put");
    assert_eq!(s.take_notifications(100).await.expect("take").len(), taken.len() - 3);
}

// ---- crash leftovers ------------------------------------------------------------------------

#[tokio::test]
async fn open_removes_what_a_crash_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path());
    s.create_bucket("b", "us-east-1").await.expect("bucket");
    put(&s, "kept", b"kept").await.expect("put");
    let id = s.create_upload("b", "mp", ObjectMeta::default(), vec![], None).await.expect("create");
    s.put_part("b", "mp", &id, 1, staged(&s, b"part", &[]), None).await.expect("part");
    // A body being written, and one staged but never committed (leaked as by a crash).
    let mut writing = s.stage(&[]).expect("stage");
    writing.write(b"half").expect("write");
    // Taking the paths out keeps the files, as a crash would.
    let _ = staged(&s, b"orphan", &[]).take_path();
    let _ = std::mem::take(&mut writing.path);
    drop(writing);
    drop(s);
    // A blob renamed into place whose commit never happened, and a stray fan-out entry.
    std::fs::create_dir_all(dir.path().join("blobs/ab")).expect("fan");
    std::fs::write(dir.path().join("blobs/ab/ab0123456789abcdef0123456789abcd"), b"unreferenced").expect("blob");
    std::fs::write(dir.path().join("blobs/stray"), b"stray").expect("stray");
    assert_eq!((staging(dir.path()), blobs(dir.path())), (2, 4));

    let s = open(dir.path());
    assert_eq!((staging(dir.path()), blobs(dir.path())), (0, 2));
    assert_eq!(read(&s, &s.head("b", "kept", None).await.expect("head")), b"kept");
    let p = s.list_parts("b", "mp", &id, None, 10).await.expect("parts");
    let done = s
        .complete_upload("b", "mp", &id, vec![CompletedPart { part_number: 1, etag: p.parts[0].etag.clone() }], PutConditions::default())
        .await;
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(read(&s, &s.head("b", "mp", None).await.expect("head")), b"part");
}

#[test]
fn storage_full_is_its_own_kind() {
    let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
    let quota = std::io::Error::from_raw_os_error(libc::EDQUOT);
    for e in [full, quota] {
        let e = crate::files::full_kind(e);
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(crate::files::io_error(e), ObjectError::StorageFull);
    }
    let other = crate::files::full_kind(std::io::Error::from_raw_os_error(libc::EIO));
    assert_ne!(other.kind(), std::io::ErrorKind::StorageFull);
    assert!(matches!(crate::files::io_error(other), ObjectError::Internal(_)));
}

/// Small bodies live in their rows: no file is made for them, they read back byte-exact
/// (also after a reopen and through a copy), a body that grows past the limit becomes a
/// file, and a small part is written out as one.
#[tokio::test]
async fn small_bodies_are_kept_in_their_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = ObjectStore::open_with(dir.path(), 1024).expect("open");
    s.create_bucket("b", "us-east-1").await.expect("bucket");
    let cases: &[(&str, usize, usize)] = &[("empty", 0, 0), ("small", 100, 0), ("at-limit", 1024, 0), ("over", 1025, 1)];
    for (key, size, files) in cases {
        let before = blobs(dir.path());
        let data: Vec<u8> = (0..*size).map(|i| (i % 251) as u8).collect();
        let put = s
            .put_object("b", key, staged(&s, &data, &[]), ObjectMeta::default(), vec![], None, PutConditions::default(), "Put")
            .await
            .expect("put");
        assert_eq!(put.etag, hex::encode(md5::Md5::digest(&data)), "{key}");
        assert_eq!(blobs(dir.path()) - before, *files, "{key}: files made");
        assert_eq!(staging(dir.path()), 0, "{key}: nothing left in staging");
        let o = s.head("b", key, None).await.expect("head");
        assert!(read(&s, &o) == data, "{key}: body");
        let copy = format!("{key}-copy");
        s.copy_object(&o, "b", &copy, ObjectMeta::default(), vec![], PutConditions::default()).await.expect("copy");
        let c = s.head("b", &copy, None).await.expect("head copy");
        assert!(read(&s, &c) == data, "{key}: copy");
    }
    drop(s);
    let s = ObjectStore::open_with(dir.path(), 1024).expect("reopen");
    let o = s.head("b", "small", None).await.expect("head after reopen");
    assert_eq!(read(&s, &o).len(), 100);
    // A small part still becomes a file (completion joins files).
    let id = s.create_upload("b", "mp", ObjectMeta::default(), vec![], None).await.expect("upload");
    let before = blobs(dir.path());
    let p = s.put_part("b", "mp", &id, 1, staged(&s, b"tiny part", &[]), None).await.expect("part");
    assert_eq!(blobs(dir.path()) - before, 1);
    let done = s
        .complete_upload("b", "mp", &id, vec![CompletedPart { part_number: 1, etag: p.etag }], PutConditions::default())
        .await
        .expect("complete");
    assert!(done.etag.ends_with("-1"));
    let o = s.head("b", "mp", None).await.expect("head mp");
    assert!(read(&s, &o) == b"tiny part");
}
