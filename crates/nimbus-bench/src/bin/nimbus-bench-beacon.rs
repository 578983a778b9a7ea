//! The `provided` bootstrap of `nimbus-bench --s3`'s notification latency run: a Runtime API
//! client on the standard library alone that, the moment `/next` hands it an event, prints
//! one line `BEACON <unix µs> <event>` (the wall clock, which every process of the host
//! shares, namespaces or not) and answers `{}`. The bench reads the lines back from the
//! function's log group and compares each time with when its PUT (or Event invoke) was
//! acknowledged. With `BEACON_COUNT` set (`nimbus-bench --streams`' trigger throughput run)
//! it prints `BEACON <unix µs> {"count":N}` instead, N the batch's records (its `"eventID"`s).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Conn = BufReader<TcpStream>;
/// A response's headers (names lower-cased) and body.
type Response = (Vec<(String, String)>, Vec<u8>);

/// One request on the kept connection: (response headers, lower-cased names; body).
fn request(c: &mut Conn, head: &str, body: &[u8]) -> std::io::Result<Response> {
    let s = c.get_mut();
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut line = String::new();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let mut out = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            c.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            c.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        out.resize(n, 0);
        c.read_exact(&mut out)?;
    }
    Ok((headers, out))
}

fn main() {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("nimbus-bench-beacon: AWS_LAMBDA_RUNTIME_API is not set (a Lambda bootstrap)");
        return;
    };
    let count_only = std::env::var_os("BEACON_COUNT").is_some();
    let mut conn: Option<Conn> = None;
    loop {
        let c = match &mut conn {
            Some(c) => c,
            None => match TcpStream::connect(&api) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn.insert(BufReader::new(s))
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let next = format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
        let (headers, event) = match request(c, &next, b"") {
            Ok(r) => r,
            Err(_) => {
                conn = None;
                continue;
            }
        };
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros();
        let id = headers.iter().find(|(k, _)| k == "lambda-runtime-aws-request-id").map(|(_, v)| v.clone()).unwrap_or_default();
        let event = String::from_utf8_lossy(&event).replace(['\n', '\r'], " ");
        if count_only {
            println!("BEACON {at} {{\"count\":{}}}", event.matches("\"eventID\"").count());
        } else {
            println!("BEACON {at} {event}");
        }
        let _ = std::io::stdout().flush();
        let done = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        );
        if request(c, &done, b"{}").is_err() {
            conn = None;
        }
    }
}
