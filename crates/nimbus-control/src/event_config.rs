//! Event-invoke configs (Put/Update/Get/Delete/ListFunctionEventInvokeConfigs): retries,
//! maximum event age and destinations for a function's asynchronous invocations, per
//! qualifier.

use std::collections::HashMap;
use std::sync::Mutex;

use nimbus_model::invoke::{async_limits, EventInvokeConfig};
use nimbus_model::{now_millis, ApiError, ErrorCode, Qualifier};

use crate::{store_err, ControlPlane};

/// The configs the async dispatcher applies, kept in memory: it looks one up for every
/// attempt (and a throttled event is attempted again and again), which was a read on the
/// store's writer thread each time. Each (function, qualifier)'s config, or its absence, as
/// last read; dropped when one is written and when the function is deleted. A read that
/// overlapped a write is not kept (the generation moved on while it ran).
#[derive(Default)]
pub(crate) struct EventConfigs(Mutex<Known>);

#[derive(Default)]
struct Known {
    generation: u64,
    /// By function, then qualifier.
    configs: HashMap<String, HashMap<String, Option<EventInvokeConfig>>>,
}

impl EventConfigs {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached config (outer None: not known), and the generation a read should be
    /// filled in with.
    fn get(&self, function: &str, qualifier: &str) -> (Option<Option<EventInvokeConfig>>, u64) {
        let known = self.known();
        (known.configs.get(function).and_then(|by_qualifier| by_qualifier.get(qualifier)).cloned(), known.generation)
    }

    fn fill(&self, function: &str, qualifier: &str, read_at: u64, config: Option<EventInvokeConfig>) {
        let mut known = self.known();
        if known.generation == read_at {
            known.configs.entry(function.to_string()).or_default().insert(qualifier.to_string(), config);
        }
    }

    /// After a write of one config (committed).
    fn forget(&self, function: &str, qualifier: &str) {
        let mut known = self.known();
        known.generation += 1;
        if let Some(by_qualifier) = known.configs.get_mut(function) {
            by_qualifier.remove(qualifier);
        }
    }

    /// After a function's deletion (committed), which removes its configs.
    pub(crate) fn forget_function(&self, function: &str) {
        let mut known = self.known();
        known.generation += 1;
        known.configs.remove(function);
    }

    pub(crate) fn forget_all(&self) {
        let mut known = self.known();
        known.generation += 1;
        known.configs.clear();
    }
}

/// Fields of a Put (all replace) or Update (only the given ones change) request. `Some(None)`
/// clears a destination.
#[derive(Debug, Clone, Default)]
pub struct EventInvokeChange {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_secs: Option<u32>,
    pub on_success: Option<Option<String>>,
    pub on_failure: Option<Option<String>>,
}

/// A destination must be a function, queue, topic or event bus ARN.
pub fn validate_destination(arn: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() >= 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(parts[2], "lambda" | "sqs" | "sns" | "events")
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(ApiError::invalid(format!("The destination ARN {arn} is invalid.")));
    }
    Ok(())
}

impl ControlPlane {
    /// The function and its qualifier exist (AWS: "The function doesn't exist." otherwise).
    async fn check_qualifier(&self, function: &str, qualifier: &str) -> Result<(), ApiError> {
        let missing =
            |e: ApiError| if e.code == ErrorCode::ResourceNotFound { ApiError::not_found("The function doesn't exist.") } else { e };
        self.get(function).await.map_err(missing)?;
        let q = Qualifier::parse(qualifier)?;
        self.route(function, Some(&q)).await.map_err(missing)?;
        if let Qualifier::Named(v) = &q {
            if nimbus_model::alias::is_version_number(v) {
                self.resolve_version(function, v).await.map_err(missing)?;
            }
        }
        Ok(())
    }

    /// PutFunctionEventInvokeConfig (`replace`) or UpdateFunctionEventInvokeConfig.
    pub async fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        change: EventInvokeChange,
        replace: bool,
    ) -> Result<EventInvokeConfig, ApiError> {
        self.check_qualifier(function, qualifier).await?;
        if let Some(r) = change.maximum_retry_attempts {
            if r > async_limits::MAX_RETRIES {
                return Err(ApiError::validation(&r.to_string(), "maximumRetryAttempts", "Member must have value less than or equal to 2"));
            }
        }
        if let Some(a) = change.maximum_event_age_secs {
            if !(async_limits::MIN_EVENT_AGE_SECS..=async_limits::MAX_EVENT_AGE_SECS).contains(&a) {
                return Err(ApiError::validation(
                    &a.to_string(),
                    "maximumEventAgeInSeconds",
                    "Member must have value between 60 and 21600",
                ));
            }
        }
        for arn in [&change.on_success, &change.on_failure].into_iter().flatten().flatten() {
            validate_destination(arn)?;
        }
        let current = if replace { None } else { self.store.get_event_invoke_config(function, qualifier).await.map_err(store_err)? };
        if !replace && current.is_none() {
            return Err(self.no_event_config(function, qualifier));
        }
        let base = current.unwrap_or(EventInvokeConfig {
            function: function.to_string(),
            qualifier: qualifier.to_string(),
            maximum_retry_attempts: None,
            maximum_event_age_secs: None,
            on_success: None,
            on_failure: None,
            last_modified_ms: 0,
        });
        let next = EventInvokeConfig {
            maximum_retry_attempts: change.maximum_retry_attempts.or(if replace { None } else { base.maximum_retry_attempts }),
            maximum_event_age_secs: change.maximum_event_age_secs.or(if replace { None } else { base.maximum_event_age_secs }),
            on_success: change.on_success.unwrap_or(if replace { None } else { base.on_success.clone() }),
            on_failure: change.on_failure.unwrap_or(if replace { None } else { base.on_failure.clone() }),
            last_modified_ms: now_millis(),
            ..base
        };
        let written = self.store.put_event_invoke_config(&next).await.map_err(store_err);
        self.event_configs.forget(function, qualifier);
        written?;
        Ok(next)
    }

    fn no_event_config(&self, function: &str, qualifier: &str) -> ApiError {
        ApiError::not_found(format!("The function {} doesn't have an EventInvokeConfig", self.partition.qualified_arn(function, qualifier)))
    }

    /// A missing function reads as a missing config, as AWS answers it.
    pub async fn get_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<EventInvokeConfig, ApiError> {
        self.store
            .get_event_invoke_config(function, qualifier)
            .await
            .map_err(store_err)?
            .ok_or_else(|| self.no_event_config(function, qualifier))
    }

    /// The config the dispatcher applies to an event (None: AWS's defaults).
    pub async fn event_invoke_config(&self, function: &str, qualifier: &str) -> Result<Option<EventInvokeConfig>, ApiError> {
        let (known, generation) = self.event_configs.get(function, qualifier);
        if let Some(config) = known {
            return Ok(config);
        }
        let config = self.store.get_event_invoke_config(function, qualifier).await.map_err(store_err)?;
        self.event_configs.fill(function, qualifier, generation, config.clone());
        Ok(config)
    }

    pub async fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<EventInvokeConfig>, ApiError> {
        self.get(function).await.map_err(|e| {
            if e.code == ErrorCode::ResourceNotFound {
                ApiError::not_found("The function doesn't exist.")
            } else {
                e
            }
        })?;
        self.store.list_event_invoke_configs(function).await.map_err(store_err)
    }

    pub async fn delete_event_invoke_config(&self, function: &str, qualifier: &str) -> Result<(), ApiError> {
        let deleted = self.store.delete_event_invoke_config(function, qualifier).await.map_err(store_err);
        self.event_configs.forget(function, qualifier);
        if !deleted? {
            return Err(self.no_event_config(function, qualifier));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioned::tests::{control, function};

    fn retries(n: u32) -> EventInvokeChange {
        EventInvokeChange { maximum_retry_attempts: Some(n), ..Default::default() }
    }

    async fn applied(c: &ControlPlane, qualifier: &str) -> Option<u32> {
        c.event_invoke_config("f", qualifier).await.unwrap().and_then(|x| x.maximum_retry_attempts)
    }

    /// What the dispatcher reads follows every write: put, update, delete, and the
    /// function's deletion.
    #[tokio::test]
    async fn the_dispatchers_view_follows_writes() {
        let dir = tempfile::tempdir().unwrap();
        let c = control(dir.path()).await;
        function(&c, "f").await;
        assert_eq!(applied(&c, "$LATEST").await, None);
        c.put_event_invoke_config("f", "$LATEST", retries(1), true).await.unwrap();
        assert_eq!(applied(&c, "$LATEST").await, Some(1));
        assert_eq!(applied(&c, "live").await, None, "per qualifier");
        c.put_event_invoke_config("f", "$LATEST", retries(0), false).await.unwrap();
        assert_eq!(applied(&c, "$LATEST").await, Some(0));
        c.delete_event_invoke_config("f", "$LATEST").await.unwrap();
        assert_eq!(applied(&c, "$LATEST").await, None);
        c.put_event_invoke_config("f", "live", retries(2), true).await.unwrap();
        assert_eq!(applied(&c, "live").await, Some(2));
        c.delete("f").await.unwrap();
        function(&c, "f").await;
        assert_eq!(applied(&c, "live").await, None, "the deleted function's configs went with it");
    }

    /// A read that started before a write is not kept.
    #[test]
    fn a_read_overlapping_a_write_is_not_kept() {
        let known = EventConfigs::default();
        let (hit, read_at) = known.get("f", "$LATEST");
        assert!(hit.is_none());
        known.forget("f", "$LATEST"); // a write committed while the read ran
        known.fill("f", "$LATEST", read_at, None);
        assert!(known.get("f", "$LATEST").0.is_none());
        let (_, read_at) = known.get("f", "$LATEST");
        known.fill("f", "$LATEST", read_at, None);
        assert_eq!(known.get("f", "$LATEST").0, Some(None));
        known.forget_function("f");
        assert!(known.get("f", "$LATEST").0.is_none());
    }
}
