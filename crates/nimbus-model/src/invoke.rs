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
    /// A request id chosen beforehand (an asynchronous event keeps the one it was
    /// accepted with); None mints a new one.
    pub request_id: Option<String>,
    /// The caller's trace context and the kind of trigger.
    pub trace: crate::trace::TraceContext,
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
        FunctionErrorPayload { error_type: error_type.to_string(), error_message: format!("RequestId: {request_id} Error: {detail}") }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("plain strings serialize"))
    }
}

/// An asynchronous invocation waiting in the durable queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct AsyncEvent {
    /// The request id returned to the caller (202) and used by every attempt.
    pub request_id: String,
    pub function: String,
    /// The qualifier the caller named (`None` for the unqualified function).
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    /// Attempts made so far (function errors count; throttles do not).
    pub attempts: u32,
    pub enqueued_ms: i64,
    /// Not to be run before this time (retry backoff).
    pub not_before_ms: i64,
    /// The trace context the event was accepted in (X-Ray's header form), which its
    /// processing continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// What kind of source submitted it (a topic, a rule, a direct Invoke).
    #[serde(default, skip_serializing_if = "crate::trace::Trigger::is_other")]
    pub trigger: crate::trace::Trigger,
}

/// PutFunctionEventInvokeConfig: retries, event age and destinations of a function's (or
/// one qualifier's) asynchronous invocations.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
pub struct EventInvokeConfig {
    pub function: String,
    /// `$LATEST`, a version, or an alias.
    pub qualifier: String,
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_secs: Option<u32>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    pub last_modified_ms: i64,
}

/// AWS's defaults and limits for asynchronous invocation.
pub mod async_limits {
    pub const DEFAULT_RETRIES: u32 = 2;
    pub const MAX_RETRIES: u32 = 2;
    pub const MIN_EVENT_AGE_SECS: u32 = 60;
    pub const DEFAULT_EVENT_AGE_SECS: u32 = 21_600;
    pub const MAX_EVENT_AGE_SECS: u32 = 21_600;
    /// Largest asynchronous payload.
    pub const MAX_PAYLOAD: usize = 1024 * 1024;
}
