//! The server's own address inside linked environments, so that a URL made on the host
//! (`http://127.0.0.1:<port>/…`: a queue URL, a function URL) works unchanged in a function,
//! where 127.0.0.1 is the environment's own loopback. Every linked namespace (VPC ones too)
//! is made with listeners at the server's port on its loopback (127.0.0.1 and ::1), and their
//! connections are handed to the server in this process through a [`ServerDoor`]: no
//! address translation, no packet leaves the namespace. When the server's port is the
//! Runtime API's (9001, both defaults), the one listener at 127.0.0.1:9001 serves both: a
//! connection whose first request is for the Runtime API (`/2018-06-01/runtime/…`, and
//! the extensions and telemetry APIs' paths) goes to the Runtime API, any other to the
//! server. Isolated environments get no door: they have no way out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Takes a connection made inside an environment to the server's own address (and the
/// peer as the environment saw it) and serves it as the server serves any other.
#[derive(Clone)]
pub struct ServerDoor(Arc<dyn Fn(TcpStream, SocketAddr) + Send + Sync>);

impl ServerDoor {
    pub fn new(serve: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static) -> ServerDoor {
        ServerDoor(Arc::new(serve))
    }

    pub(crate) fn enter(&self, stream: TcpStream, peer: SocketAddr) {
        (self.0)(stream, peer)
    }
}

impl std::fmt::Debug for ServerDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerDoor")
    }
}

/// Path prefixes of the APIs an environment's own endpoint at 127.0.0.1:9001 answers.
const RUNTIME_SIDE: &[&[u8]] = &[b"/2018-06-01/runtime/", b"/2020-01-01/extension/", b"/2022-07-01/telemetry"];

/// Whether a connection whose first bytes are `first` is for the Runtime API (true) or for
/// the server (false); None while too few bytes have arrived to tell. Anything that is not
/// an HTTP request line with one of [`RUNTIME_SIDE`]'s paths (a TLS handshake, say) is the
/// server's.
pub(crate) fn runtime_side(first: &[u8]) -> Option<bool> {
    let Some(space) = first.iter().position(|b| *b == b' ') else {
        // Still in the method, as long as it looks like one.
        let method_so_far = first.len() < 8 && first.iter().all(u8::is_ascii_uppercase);
        return if method_so_far { None } else { Some(false) };
    };
    if space == 0 || !first[..space].iter().all(u8::is_ascii_uppercase) {
        return Some(false);
    }
    let path = &first[space + 1..];
    let mut undecided = false;
    for prefix in RUNTIME_SIDE {
        let n = path.len().min(prefix.len());
        if path[..n] == prefix[..n] {
            if n == prefix.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

/// Reads (without consuming) the start of a connection until [`runtime_side`] can tell.
/// A connection that says nothing for a while, or closes, is the server's (it will find
/// out for itself).
pub(crate) async fn is_runtime_side(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 32];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false,
        };
        if let Some(decided) = runtime_side(&buf[..n]) {
            return decided;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        // Part of the request line came in its own segment: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Serves `listener` (made inside an environment's namespace) through `door` until `stop`
/// turns true; the listener is closed then, which lets the namespace go.
pub(crate) fn serve(listener: std::net::TcpListener, door: ServerDoor, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                accepted = listener.accept() => {
                    match accepted {
                        Ok((stream, peer)) => door.enter(stream, peer),
                        // Out of descriptors: retry shortly rather than spin (see runtime_api).
                        Err(_) => tokio::time::sleep(crate::connections::ACCEPT_RETRY).await,
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::runtime_side;

    #[test]
    fn first_bytes_tell_the_runtime_api_from_the_server() {
        let cases: &[(&[u8], Option<bool>)] = &[
            (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n", Some(true)),
            (b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\n", Some(true)),
            (b"POST /2018-06-01/runtime/init/error", Some(true)),
            (b"GET /2018-06-01/runtime/", Some(true)),
            (b"POST /2020-01-01/extension/register HTTP/1.1", Some(true)),
            (b"PUT /2022-07-01/telemetry HTTP/1.1", Some(true)),
            // The server's: SQS on its queue URL, Lambda, a function URL, TLS.
            (b"POST /000000000000/orders HTTP/1.1\r\n", Some(false)),
            (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:9001", Some(false)),
            (b"GET /2015-03-31/functions/f HTTP/1.1", Some(false)),
            (b"GET /2018-06-01/other HTTP/1.1", Some(false)),
            (b"GET /_aws/lambda-url/abc/ HTTP/1.1", Some(false)),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Some(false)),
            (b"get /2018-06-01/runtime/ HTTP/1.1", Some(false)),
            // Not enough yet.
            (b"", None),
            (b"GE", None),
            (b"POST", None),
            (b"GET ", None),
            (b"GET /2018-06", None),
            (b"POST /20", None),
            (b"GET /2018-06-01/runtim", None),
        ];
        for (first, want) in cases {
            assert_eq!(runtime_side(first), *want, "{:?}", String::from_utf8_lossy(first));
        }
    }
}
