//! Names, paths, ids and ARNs as IAM forms and checks them.

use crate::IamError;

/// IAM's name pattern for users, roles and policies.
pub(crate) const NAME_PATTERN: &str = r"[\w+=,.@-]+";

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Checks a user, role or policy name (`member` is the wire member, e.g. `userName`).
pub(crate) fn check_name(name: &str, member: &str, max: usize) -> Result<(), IamError> {
    if name.is_empty() || !name.chars().all(name_char) {
        return Err(IamError::pattern(name, member, NAME_PATTERN));
    }
    if name.chars().count() > max {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

/// Checks a path (`/` or `/a/b/`); None means `/`.
pub(crate) fn path(path: Option<String>) -> Result<String, IamError> {
    let p = path.unwrap_or_else(|| "/".to_string());
    if !p.starts_with('/') || !p.ends_with('/') || p.len() > 512 {
        return Err(IamError::pattern(&p, "path", r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)"));
    }
    Ok(p)
}

/// Checks a session name (STS's `roleSessionName`).
pub(crate) fn check_session_name(name: &str) -> Result<(), IamError> {
    if !name.chars().all(name_char) {
        return Err(IamError::pattern(name, "roleSessionName", r"[\w+=,.@-]*"));
    }
    if name.len() < 2 || name.len() > 64 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must have length {}",
            if name.len() < 2 { "greater than or equal to 2" } else { "less than or equal to 64" }
        )));
    }
    Ok(())
}

/// A new unique id: `AIDA…` for users, `AROA…` for roles, `ANPA…` for policies.
pub(crate) fn unique_id(prefix: &str) -> String {
    nimbus_identity::keys::key_id(prefix)
}

/// `arn:aws:iam::<account>:<kind>/<path without the leading slash><name>`.
pub(crate) fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

/// What an ARN of an IAM user, role or STS session names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    Root { account: String },
    User { account: String, name: String },
    AssumedRole { account: String, role: String, session: String },
    Other,
}

/// Reads a principal ARN as `nimbus_identity` gives it.
pub(crate) fn who(arn: &str) -> Who {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = parts.as_slice() else { return Who::Other };
    let account = account.to_string();
    match (*service, resource.split_once('/')) {
        ("iam", None) if *resource == "root" => Who::Root { account },
        ("iam", Some(("user", rest))) => Who::User { account, name: rest.rsplit('/').next().unwrap_or(rest).to_string() },
        ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
            Some((role, session)) => Who::AssumedRole { account, role: role.to_string(), session: session.to_string() },
            None => Who::Other,
        },
        _ => Who::Other,
    }
}

/// A role ARN's account and name (`arn:aws:iam::<account>:role/<path>/<name>`).
pub(crate) fn role_arn(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, "iam", "", account, resource] = parts.as_slice() else { return None };
    if *arn_ != "arn" || partition.is_empty() || account.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix("role/")?;
    let name = rest.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some((account.to_string(), name.to_string()))
}

/// A stable role id for a role IAM does not know (environments' roles named by functions).
pub(crate) fn stable_role_id(arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // FNV-1a, twice with different seeds, for 16 characters.
    let mut out = String::from("AROA");
    for seed in [0xcbf29ce484222325u64, 0x84222325cbf29ce4] {
        let mut h = seed;
        for b in arn.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        for i in 0..8 {
            out.push(ALPHABET[((h >> (i * 5)) & 31) as usize] as char);
        }
    }
    out
}

/// An ISO 8601 timestamp as IAM writes them (`2026-12-03T12:00:00Z`).
pub(crate) fn iso(epoch_secs: i64) -> String {
    chrono::DateTime::from_timestamp(epoch_secs, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
