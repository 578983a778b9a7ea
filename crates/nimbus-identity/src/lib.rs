//! Who is calling: AWS Signature Version 4 verification of every signed request (header and
//! presigned-query forms), and the credentials it is checked against.

pub mod keys;
pub mod sigv4;

pub use keys::{AccessKey, AdminKeySource, Caller, KeyError, Keys, Principal, SessionPolicy};
