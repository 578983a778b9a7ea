//! An invocation as the invoke path sees it, independent of HTTP or any trigger.

use bytes::Bytes;
use serde::Serialize;

use crate::arn::FunctionRef;

#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: FunctionRef,
    pub payload: Bytes,
    /// Return the last 4 KB of the invocation's log.
    pub tail_log: bool,
    /// Decoded `X-Amz-Client-Context` JSON, passed to the runtime as is.
    pub client_context: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    pub request_id: String,
    pub payload: Bytes,
    /// `Unhandled` (or a runtime-given error) when the function failed.
    pub function_error: Option<String>,
    pub log_tail: Option<String>,
    pub executed_version: String,
}

/// AWS's error payload for failures the service itself reports (timeouts, crashes).
#[derive(Debug, Clone, Serialize)]
pub struct FunctionErrorPayload {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl FunctionErrorPayload {
    pub fn new(error_type: &str, request_id: &str, detail: &str) -> Self {
        FunctionErrorPayload {
            error_type: error_type.to_string(),
            error_message: format!("RequestId: {request_id} Error: {detail}"),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("plain strings serialize"))
    }
}
