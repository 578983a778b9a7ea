//! Function URLs: a dedicated HTTP endpoint for a function (or one of its aliases), with its
//! auth type and CORS settings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthType {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "NONE",
            AuthType::AwsIam => "AWS_IAM",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    pub function: String,
    /// An alias (or `$LATEST`); None for the unqualified function.
    pub qualifier: Option<String>,
    /// The 32-character id in the URL's host name.
    pub url_id: String,
    pub auth_type: AuthType,
    #[serde(default)]
    pub cors: Option<Cors>,
    pub invoke_mode: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl Cors {
    /// Whether a request from `origin` may read the response.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    pub fn allows_method(&self, method: &str) -> bool {
        self.allow_methods.iter().any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    }
}

/// A new URL id: 32 lowercase letters and digits, like AWS's.
pub fn new_url_id() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    // uuid hex has only a–f; map to the full alphabet AWS uses.
    let b = uuid::Uuid::new_v4();
    a.bytes()
        .zip(b.as_bytes().iter().cycle())
        .map(|(c, r)| {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            ALPHABET[((c as usize) + (*r as usize)) % ALPHABET.len()] as char
        })
        .collect()
}

pub fn is_url_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_cors() {
        let id = new_url_id();
        assert!(is_url_id(&id), "{id}");
        assert_ne!(new_url_id(), id);
        let c = Cors { allow_origins: vec!["https://a.example".into()], allow_methods: vec!["GET".into()], ..Default::default() };
        assert!(c.allows_origin("https://a.example"));
        assert!(!c.allows_origin("https://b.example"));
        assert!(c.allows_method("get") && !c.allows_method("POST"));
    }
}
