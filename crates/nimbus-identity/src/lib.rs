//! Who is calling: AWS Signature Version 4 verification of every signed request (header and
//! presigned-query forms; S3's Signature Version 2 as well, `sigv2`), the credentials it is checked against, the links Nimbus signs
//! itself (`links`), the web console's one-time login links (`login`), and S3's streamed
//! `aws-chunked` upload bodies, checked chunk by chunk (`chunked`).

pub mod chunked;
pub mod keys;
pub mod links;
pub mod login;
pub mod sigv2;
pub mod sigv4;

pub use keys::{AccessKey, AdminKeySource, Caller, KeyError, Keys, Principal, SessionPolicy};
pub use sigv4::BodyCheck;
