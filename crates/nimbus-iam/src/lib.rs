//! IAM and STS, the domain: users, their access keys, roles, inline and managed policies and
//! their attachments (kept in `<data>/iam.db`, or with `--store postgres://…` in the account's
//! PostgreSQL schema that every node shares, through [`store::IamStore`], mirrored in memory;
//! a node reloads its mirror when another node changes the records),
//! and STS's answers about and for the authenticated caller (GetCallerIdentity, AssumeRole
//! with the role's trust policy evaluated by `nimbus-policy` and its session policies,
//! GetSessionToken). Users' Active keys and session keys (STS's, and the role sessions of
//! execution environments, [`IamService::issue_session`]) are handed to
//! `nimbus_identity::Keys` once committed, so they authenticate at once and across restarts;
//! their secrets are sealed in the store.
//! No wire formats here: `nimbus-api::iam` decodes requests and encodes these typed answers.
//!
//! Authorization is not enforced yet; what it will need is here:
//! [`IamService::identity_policies`] (a principal's inline and attached policies, parsed) and
//! [`IamService::trust_policy`].

mod error;
mod names;
pub mod organizations;
mod service;
pub mod store;
mod sts;
#[cfg(test)]
mod tests;

pub use error::IamError;
pub use service::*;
pub use sts::{AssumeRoleInput, AssumedRoleUser, CallerIdentity, Credentials, RoleSession};
