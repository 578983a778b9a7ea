//! Plain data shared by every Nimbus crate: function configuration, names and ARNs,
//! runtimes, invoke requests and outcomes, and the AWS-shaped error. No IO lives here.

pub mod alias;
pub mod arn;
pub mod code_signing;
pub mod error;
pub mod event_source;
pub mod events;
pub mod function;
pub mod invoke;
pub mod layer;
pub mod log_every;
pub mod logging;
pub mod provisioned;
pub mod runtime;
pub mod trace;
pub mod url;
pub mod validate;

pub use arn::{FunctionRef, Qualifier};
pub use error::{ApiError, ErrorCode};
pub use function::{FunctionConfig, VpcConfig, LATEST};
pub use invoke::{FunctionErrorPayload, InvokeOutcome, InvokeRequest};
pub use runtime::{Runtime, RuntimeFamily};

/// Region and account that ARNs are minted in.
#[derive(Debug, Clone)]
pub struct Partition {
    pub region: String,
    pub account_id: String,
}

impl Partition {
    /// `arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>`.
    pub fn mapping_arn(&self, uuid: &str) -> String {
        format!("arn:aws:lambda:{}:{}:event-source-mapping:{}", self.region, self.account_id, uuid)
    }

    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}", self.region, self.account_id, name)
    }

    pub fn qualified_arn(&self, name: &str, qualifier: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}:{}", self.region, self.account_id, name, qualifier)
    }
}

/// Milliseconds since the Unix epoch, the unit all stored timestamps use.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// AWS's `LastModified` format: `2026-11-27T12:00:00.000+0000`.
pub fn format_last_modified(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}
