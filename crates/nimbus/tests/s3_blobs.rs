//! `S3BlobStore` against a real S3 API: the one the Nimbus binary serves, so the code blobs
//! of a scaled-out Nimbus (issue 17) are tested without a third-party server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nimbus_store::blob::{sha256_hex, BlobStore};
use nimbus_store::s3_blob::S3Credentials;
use nimbus_store::{S3BlobStore, StoreError};

/// The administrator's key the server is started with (as the e2e suite does).
const KEY_ID: &str = "test";
const SECRET: &str = "test";
const BUCKET: &str = "blobs";

/// One `nimbus server` on a free loopback port, with its data directory; killed and removed
/// when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    async fn start() -> Server {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("s3_blobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("the server's log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        command
            .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log twice"))
            .stderr(log);
        // Ours alone: no configuration or credentials of whoever runs the tests.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("NIMBUS_") || k.starts_with("AWS_")) {
                command.env_remove(k);
            }
        }
        command.env("NIMBUS_ADMIN_ACCESS_KEY_ID", KEY_ID).env("NIMBUS_ADMIN_SECRET_ACCESS_KEY", SECRET);
        let child = command.spawn().expect("nimbus server starts");
        let mut server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().expect("the server's status") {
                panic!("nimbus server exited with {status} before becoming healthy:\n{}", server.log());
            }
            if let Ok((200, _)) = request(&server.endpoint(), "GET", "/health", None, Bytes::new()).await {
                return server;
            }
            assert!(Instant::now() < deadline, "nimbus server not healthy after 60 s:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, as an operator stops it: the server then ends its prestarted environments and
    /// takes down their mounts, which a SIGKILL would leave behind. SIGKILL after 15 s.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// One HTTP request, SigV4-signed for S3 with `key` when given: what object_store cannot
/// do (create a bucket) or should not (write a key that is not a blob's). (status, body).
async fn request(endpoint: &str, method: &str, path: &str, key: Option<(&str, &str)>, body: Bytes) -> Result<(u16, String), String> {
    let uri: http::Uri = format!("{endpoint}{path}").parse().map_err(|e| format!("{e}"))?;
    let mut headers = http::HeaderMap::new();
    let host = uri.authority().expect("an endpoint has a host").as_str();
    headers.insert(http::header::HOST, http::HeaderValue::from_str(host).expect("a host is a header value"));
    headers.insert("x-amz-content-sha256", http::HeaderValue::from_str(&sha256_hex(&body)).expect("hex"));
    if let Some((id, secret)) = key {
        let req = nimbus_identity::sigv4::Request { method, path: uri.path(), query: uri.query(), headers: &headers, body: &body };
        for (k, v) in nimbus_identity::sigv4::sign_request(id, secret, None, "us-east-1", "s3", &req, chrono::Utc::now()) {
            headers.insert(k, http::HeaderValue::from_str(&v).expect("signature headers are header values"));
        }
    }
    let mut builder = http::Request::builder().method(method).uri(uri);
    *builder.headers_mut().expect("a request builder has headers") = headers;
    let req = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `len` bytes that look like a zip to nobody but are not compressible either.
fn zip_like(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = b"PK\x03\x04".to_vec();
    while out.len() < len {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn store(endpoint: &str, id: &str, secret: &str) -> S3BlobStore {
    let credentials = S3Credentials { access_key_id: id.into(), secret_access_key: secret.into(), session_token: None };
    S3BlobStore::with_credentials(&format!("s3://{BUCKET}/nimbus?endpoint={endpoint}&region=us-east-1"), credentials).expect("a good URL")
}

fn backend(e: StoreError) -> String {
    match e {
        StoreError::Backend(m) => m,
        other => panic!("not a Backend error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_on_the_s3_api() {
    let mut server = Server::start().await;
    let endpoint = server.endpoint();
    let blobs = store(&endpoint, KEY_ID, SECRET);

    // Before the bucket exists: the probe (and a read) say so rather than "no such blob".
    let e = backend(blobs.probe().await.expect_err("no bucket yet"));
    assert!(e.starts_with("S3 blob store s3://blobs/nimbus: LIST nimbus/code/: "), "{e}");
    assert!(e.contains("NoSuchBucket"), "{e}");
    let e = backend(blobs.get(&sha256_hex(b"x")).await.expect_err("no bucket yet"));
    assert!(e.contains("NoSuchBucket"), "{e}");

    let (status, body) =
        request(&endpoint, "PUT", &format!("/{BUCKET}"), Some((KEY_ID, SECRET)), Bytes::new()).await.expect("CreateBucket");
    assert_eq!(status, 200, "CreateBucket: {body}");
    blobs.probe().await.expect("the bucket answers");
    assert_eq!(blobs.list().await.expect("an empty list"), Vec::<String>::new());

    // put twice: one object, one digest.
    let zip = zip_like(3 << 20, 17);
    let digest = blobs.put(&zip).await.expect("put");
    assert_eq!(digest, sha256_hex(&zip));
    assert_eq!(blobs.put(&zip).await.expect("put again"), digest);
    assert_eq!(blobs.get(&digest).await.expect("get").as_deref(), Some(zip.as_slice()));

    let small = zip_like(100, 5);
    let other = blobs.put(&small).await.expect("put");
    // Not a blob: left out of the list (and alone).
    let (status, body) =
        request(&endpoint, "PUT", &format!("/{BUCKET}/nimbus/code/README"), Some((KEY_ID, SECRET)), Bytes::from_static(b"hi"))
            .await
            .expect("PutObject");
    assert_eq!(status, 200, "PutObject: {body}");
    let mut listed = blobs.list().await.expect("list");
    listed.sort();
    let mut expected = vec![digest.clone(), other.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    assert_eq!(blobs.get(&sha256_hex(b"never stored")).await.expect("get of a missing blob"), None);
    assert_eq!(blobs.get("../../etc/passwd").await.expect("get of a non-digest"), None);

    // A blob written less than an hour ago may be about to be used by another node: kept.
    blobs.delete(&digest).await.expect("delete of a young blob");
    assert!(blobs.get(&digest).await.expect("get").is_some(), "a young blob is kept");
    let blobs = blobs.with_delete_grace(std::time::Duration::ZERO);
    blobs.delete(&digest).await.expect("delete");
    assert_eq!(blobs.get(&digest).await.expect("get after delete"), None);
    blobs.delete(&digest).await.expect("delete is idempotent");
    assert_eq!(blobs.list().await.expect("list"), vec![other.clone()]);
    assert_eq!(blobs.get(&other).await.expect("get").as_deref(), Some(small.as_slice()));

    // A wrong secret: refused, and the message does not carry it.
    let wrong = store(&endpoint, KEY_ID, "not-the-secret");
    let e = backend(wrong.put(b"x").await.expect_err("a wrong secret"));
    assert!(e.starts_with("S3 blob store s3://blobs/nimbus: HEAD nimbus/code/"), "{e}");
    assert!(!e.contains("not-the-secret"), "{e}");
    let e = backend(wrong.get(&other).await.expect_err("a wrong secret"));
    assert!(e.contains("SignatureDoesNotMatch"), "{e}");

    // The server gone: errors, promptly, for reads and writes.
    server.stop();
    for attempt in ["get", "put"] {
        let started = Instant::now();
        let result = match attempt {
            "get" => blobs.get(&other).await.map(|_| ()),
            _ => blobs.put(b"new").await.map(|_| ()),
        };
        let e = backend(result.expect_err("the server is down"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{attempt} took {took:?}: {e}");
        let op = if attempt == "get" { "GET" } else { "HEAD" };
        assert!(e.starts_with(&format!("S3 blob store s3://blobs/nimbus: {op} nimbus/code/")), "{e}");
        assert!(e.to_lowercase().contains("connection refused"), "{e}");
    }
}
