//! Links Nimbus hands out that work without a signature for a while, as AWS's presigned S3
//! URLs do: GetFunction's `Code.Location` and GetLayerVersion's `Content.Location` download a
//! zip for ten minutes. A link carries its expiry and an HMAC-SHA256 of its path and expiry
//! under a key only this server process holds, so nobody can make one (a zip's digest, which
//! GetFunctionConfiguration shows as `CodeSha256`, is not enough), and every link dies with
//! the process.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a link works (AWS: 10 minutes).
pub const LINK_LIFETIME_SECS: i64 = 600;

/// The query parameters of a signed link.
pub const EXPIRES: &str = "X-Nimbus-Expires";
pub const SIGNATURE: &str = "X-Nimbus-Signature";

pub struct LinkSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner")
    }
}

impl Default for LinkSigner {
    fn default() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source works");
        LinkSigner { key }
    }
}

impl LinkSigner {
    fn mac(&self, path: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string that makes `path` work until `now + LINK_LIFETIME_SECS`.
    pub fn query(&self, path: &str, now: i64) -> String {
        let expires = now + LINK_LIFETIME_SECS;
        format!("{EXPIRES}={expires}&{SIGNATURE}={}", hex::encode(self.mac(path, expires).finalize().into_bytes()))
    }

    /// Whether `query` (a link's query string) signs `path` and has not expired at `now`;
    /// the signature is compared in constant time.
    pub fn verify(&self, path: &str, query: Option<&str>, now: i64) -> bool {
        let (mut expires, mut signature) = (None, None);
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some((EXPIRES, v)) => expires = v.parse::<i64>().ok(),
                Some((SIGNATURE, v)) => signature = hex::decode(v).ok(),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else { return false };
        expires >= now && expires <= now + LINK_LIFETIME_SECS && self.mac(path, expires).verify_slice(&signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_work_for_their_path_and_lifetime_only() {
        let signer = LinkSigner::default();
        let path = "/_nimbus/code/000000000000/abc";
        let query = signer.query(path, 1_000);
        let tampered = query.replace(&format!("{EXPIRES}=1600"), &format!("{EXPIRES}=1700"));
        let cases: Vec<(&str, Option<&str>, i64, bool)> = vec![
            (path, Some(&query), 1_000, true),
            (path, Some(&query), 1_600, true),
            (path, Some(&query), 1_601, false),
            ("/_nimbus/code/000000000000/abd", Some(&query), 1_000, false),
            ("/_nimbus/code/111111111111/abc", Some(&query), 1_000, false),
            (path, Some(&tampered), 1_000, false),
            (path, None, 1_000, false),
            (path, Some("X-Nimbus-Expires=1600"), 1_000, false),
        ];
        for (p, q, now, ok) in cases {
            assert_eq!(signer.verify(p, q, now), ok, "{p} {q:?} at {now}");
        }
        // Another server (or this one after a restart) does not take it.
        assert!(!LinkSigner::default().verify(path, Some(&query), 1_000));
    }
}
