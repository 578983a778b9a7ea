//! The web console's one-time login links: the server prints one at start (`nimbus console`
//! asks for another), and whoever opens it trades its token for session credentials of the
//! management account's root. A token is 256 random bits, held only in this process's
//! memory, compared in constant time, and works once, for [`LIFETIME`] (15 minutes) from
//! when it was made. At most one works at a time: a new link replaces the one before it,
//! used or not, so a link printed long ago (in a log, a terminal's scrollback) stops working
//! as soon as a fresh one is made, and by itself a quarter of an hour after it was printed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

/// How long a login token works after it is made.
pub const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The token that works now and when it was made.
struct Issued {
    token: [u8; 32],
    at: Instant,
}

/// The one login token that works now, if any.
pub struct LoginTokens {
    current: Mutex<Option<Issued>>,
    lifetime: Duration,
}

impl Default for LoginTokens {
    /// Tokens that work for [`LIFETIME`].
    fn default() -> LoginTokens {
        LoginTokens::with_lifetime(LIFETIME)
    }
}

impl std::fmt::Debug for LoginTokens {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginTokens")
    }
}

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl LoginTokens {
    /// Tokens that work for `lifetime` after they are made.
    pub fn with_lifetime(lifetime: Duration) -> LoginTokens {
        LoginTokens { current: Mutex::new(None), lifetime }
    }

    /// How long a token works after it is made.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new token (base64url, 43 characters), which replaces the unused one, if any.
    pub fn issue(&self) -> String {
        self.issue_at(Instant::now())
    }

    /// Whether `presented` is the token that works now (made less than the lifetime ago); if
    /// it is, it is used up. A token past its lifetime is refused as a wrong one is.
    pub fn redeem(&self, presented: &str) -> bool {
        self.redeem_at(presented, Instant::now())
    }

    /// [`LoginTokens::issue`] at `now`.
    fn issue_at(&self, now: Instant) -> String {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).expect("the OS random source works");
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Issued { token, at: now });
        ENGINE.encode(token)
    }

    /// [`LoginTokens::redeem`] at `now`.
    fn redeem_at(&self, presented: &str, now: Instant) -> bool {
        let Some(presented) = ENGINE.decode(presented.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else { return false };
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let Some(issued) = current.as_ref() else { return false };
        if now.saturating_duration_since(issued.at) >= self.lifetime {
            // Expired: it never works again, whoever presents it.
            *current = None;
            return false;
        }
        if !crate::keys::constant_time_eq(&presented, &issued.token) {
            return false;
        }
        *current = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_once() {
        let tokens = LoginTokens::default();
        assert!(!tokens.redeem(""), "none issued yet");
        let token = tokens.issue();
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        // (presented, works): anything but the token itself is refused and leaves it working.
        let mut other = token.clone().into_bytes();
        other[0] = if other[0] == b'A' { b'B' } else { b'A' };
        let other = String::from_utf8(other).expect("ASCII");
        let cases = [
            (String::new(), false),
            (other, false),
            (token[..42].to_string(), false),
            (format!("{token}A"), false),
            (format!("{token}="), false),
            (token.to_uppercase(), false),
            (token.clone(), true),
            (token.clone(), false),
        ];
        for (presented, works) in cases {
            assert_eq!(tokens.redeem(&presented), works, "{presented:?}");
        }
    }

    #[test]
    fn a_new_token_replaces_the_unused_one() {
        let tokens = LoginTokens::default();
        let first = tokens.issue();
        let second = tokens.issue();
        assert_ne!(first, second);
        assert!(!tokens.redeem(&first));
        assert!(tokens.redeem(&second));
        assert!(!tokens.redeem(&second));
        let third = tokens.issue();
        assert!(tokens.redeem(&third), "a link made after one was used works");
    }

    #[test]
    fn a_token_works_for_its_lifetime_only() {
        let tokens = LoginTokens::default();
        assert_eq!(tokens.lifetime(), Duration::from_secs(900));
        let start = Instant::now();
        let token = tokens.issue_at(start);
        assert!(!tokens.redeem_at("A", start + LIFETIME), "a wrong token is refused");
        assert!(tokens.redeem_at(&token, start + LIFETIME - Duration::from_millis(1)), "just inside its 15 minutes");

        let token = tokens.issue_at(start);
        assert!(!tokens.redeem_at(&token, start + LIFETIME), "15 minutes after it was made");
        assert!(!tokens.redeem_at(&token, start), "an expired token is gone for good");

        let token = tokens.issue_at(start);
        assert!(!tokens.redeem_at(&token, start + Duration::from_secs(24 * 3600)));
        // A new one made after it works for its own lifetime.
        let later = start + Duration::from_secs(3600);
        let token = tokens.issue_at(later);
        assert!(tokens.redeem_at(&token, later + Duration::from_secs(60)));

        // The lifetime is the constructor's.
        let short = LoginTokens::with_lifetime(Duration::from_secs(5));
        let token = short.issue_at(start);
        assert!(!short.redeem_at(&token, start + Duration::from_secs(5)));
        let token = short.issue_at(start);
        assert!(short.redeem_at(&token, start + Duration::from_secs(4)));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let tokens = LoginTokens::default();
        let token = tokens.issue();
        assert!(!format!("{tokens:?}").contains(&token));
    }
}
