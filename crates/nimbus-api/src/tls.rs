//! HTTPS on every listener (`--tls-cert`/`--tls-key`): the server's certificate chain and
//! key read from PEM into a rustls configuration (ring, HTTP/1.1 by ALPN), and the
//! handshake of each connection, which fails for that connection alone. A plain-HTTP client
//! gets one plain answer saying the port speaks HTTPS, as nginx does, instead of bytes it
//! cannot read.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to send its first byte and finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What is wrong with a certificate or key file. Never quotes a file (a key given as the
/// certificate, or the other way round, must not end up in a log).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: malformed PEM", path.display())]
    BadCertificates { path: PathBuf },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC), or it is malformed", path.display())]
    NoKey { path: PathBuf },
    /// rustls refuses the pair (an unsupported key type, or a key that is not the first
    /// certificate's).
    #[error("the certificate {} and the key {} cannot be used together: {source}", cert.display(), key.display())]
    Refused { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// The server side of TLS: one per server, shared by all its listeners.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    chain: Arc<[CertificateDer<'static>]>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("certificates", &self.chain.len()).finish_non_exhaustive()
    }
}

/// How an accepted connection went.
pub enum Accepted {
    Tls(Box<TlsStream<TcpStream>>),
    /// Answered or dropped: a plain-HTTP client, a failed or slow handshake, a client that
    /// went away.
    Refused,
}

impl Tls {
    /// Reads the certificate chain (leaf first, intermediates after it) and the private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source });
        let cert_pem = read(cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::BadCertificates { path: cert.to_owned() })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.to_owned() });
        }
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        // The error's text could quote the file; it is left out.
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey { path: key.to_owned() })?;
        let refused = |source| TlsError::Refused { cert: cert.to_owned(), key: key.to_owned(), source };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(refused)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), private)
            .map_err(refused)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), chain: chain.into() })
    }

    /// The certificate chain as PEM, for clients to trust (never the key).
    pub fn certificates_pem(&self) -> String {
        use base64::Engine;
        let mut out = String::new();
        for cert in self.chain.iter() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out
    }

    /// Whether the leaf certificate names this address (an IP subject alternative name),
    /// so that a client reaching the server there can verify it.
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        let Some(leaf) = self.chain.first() else { return false };
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(leaf) else { return false };
        rustls::client::verify_server_name(&parsed, &ServerName::IpAddress(ip.into())).is_ok()
    }

    /// The handshake of one connection. A client whose first byte is not a TLS handshake
    /// gets a plain `400` naming HTTPS and is closed; every failure ends this connection
    /// only, and is logged at debug level without anything the client sent.
    pub async fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Accepted {
        let mut first = [0u8; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
            Ok(Ok(1)) => {
                tracing::debug!(%peer, "a plain-HTTP request on the HTTPS port: answered 400");
                refuse_plain_http(stream).await;
                return Accepted::Refused;
            }
            _ => return Accepted::Refused,
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(s)) => Accepted::Tls(Box::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
                Accepted::Refused
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                Accepted::Refused
            }
        }
    }
}

/// Answers a plain-HTTP request on the HTTPS port. Reads the request head first (closing
/// with unread bytes would reset the connection before the client reads the answer), then
/// drains until the client closes, briefly.
async fn refuse_plain_http(mut stream: TcpStream) {
    const BODY: &str = "This port speaks HTTPS: use an https:// endpoint URL.\n";
    let mut buf = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_say_which() {
        let dir = std::env::temp_dir().join(format!("nimbus-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let missing = dir.join("missing.pem");
        assert!(matches!(Tls::load(&missing, &empty), Err(TlsError::Read { .. })));
        assert!(matches!(Tls::load(&empty, &empty), Err(TlsError::NoCertificate { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
