//! The web console's one-time login links: the server prints one at start (`nimbus console`
//! asks for another), and whoever opens it trades its token for session credentials of the
//! management account's root. A token is 256 random bits, held only in this process's
//! memory, compared in constant time, and works once. At most one works at a time: a new
//! link replaces the one before it, used or not, so a link printed long ago (in a log, a
//! terminal's scrollback) stops working as soon as a fresh one is made.

use std::sync::Mutex;

use base64::Engine;

/// The one login token that works now, if any.
#[derive(Default)]
pub struct LoginTokens {
    current: Mutex<Option<[u8; 32]>>,
}

impl std::fmt::Debug for LoginTokens {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginTokens")
    }
}

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl LoginTokens {
    /// A new token (base64url, 43 characters), which replaces the unused one, if any.
    pub fn issue(&self) -> String {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).expect("the OS random source works");
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
        ENGINE.encode(token)
    }

    /// Whether `presented` is the token that works now; if it is, it is used up.
    pub fn redeem(&self, presented: &str) -> bool {
        let Some(presented) = ENGINE.decode(presented.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else { return false };
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let Some(token) = current.as_ref() else { return false };
        if !crate::keys::constant_time_eq(&presented, token) {
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
    fn debug_never_shows_the_token() {
        let tokens = LoginTokens::default();
        let token = tokens.issue();
        assert!(!format!("{tokens:?}").contains(&token));
    }
}
