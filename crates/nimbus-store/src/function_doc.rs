//! Function records as stored documents, whatever the database: the configuration as JSON
//! with its environment variables sealed (`sealed_environment`) under the master key or the
//! function's KMS key, bound to the function and version they belong to.

use std::sync::Arc;

use nimbus_model::FunctionConfig;

use crate::sealing::{Envelope, KeyWrapper, MasterKey};
use crate::StoreError;

/// How function records keep their environment variables: sealed under a fresh data key
/// wrapped by the master key, for that function and version (a sealed environment copied to
/// another record does not open).
#[derive(Clone)]
pub(crate) struct Sealer {
    pub(crate) master: Arc<MasterKey>,
    /// Nimbus's KMS, for functions with a `KMSKeyArn`.
    pub(crate) kms: Option<Arc<dyn KeyWrapper>>,
}

fn environment_context(name: &str, version: &str) -> Vec<u8> {
    format!("nimbus:function-environment:{name}:{version}").into_bytes()
}

impl Sealer {
    /// The stored document: the config with `environment` replaced by `sealed_environment`.
    pub(crate) fn encode(&self, c: &FunctionConfig) -> Result<String, StoreError> {
        let mut doc = serde_json::to_value(c).expect("function config serializes");
        let fields = doc.as_object_mut().expect("a struct serializes to an object");
        fields.remove("environment");
        if !c.environment.is_empty() {
            let plain = serde_json::to_vec(&c.environment).expect("variables serialize");
            let context = environment_context(&c.name, &c.version);
            let sealed = match (&c.kms_key_arn, &self.kms) {
                (Some(arn), Some(kms)) => self.master.seal_with(kms.as_ref(), arn, &plain, &context)?,
                _ => self.master.seal(&plain, &context),
            };
            fields.insert("sealed_environment".into(), serde_json::to_value(sealed).expect("envelope serializes"));
        }
        Ok(doc.to_string())
    }

    /// A stored document back to a config, its environment opened (or, written by an
    /// earlier release, in plain text).
    pub(crate) fn decode(&self, json: &str) -> Result<FunctionConfig, StoreError> {
        let bad = |e: serde_json::Error| StoreError::Backend(format!("a stored function record does not read: {e}"));
        let mut doc: serde_json::Value = serde_json::from_str(json).map_err(bad)?;
        if let Some(fields) = doc.as_object_mut() {
            if let Some(sealed) = fields.remove("sealed_environment") {
                let envelope: Envelope = serde_json::from_value(sealed).map_err(bad)?;
                let text = |k: &str| fields.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                let (name, version) = (text("name"), text("version"));
                let plain = self
                    .master
                    .open_any(self.kms.as_deref(), &envelope, &environment_context(&name, &version))
                    .map_err(|e| StoreError::Backend(format!("the environment of function {name} version {version} does not open: {e}")))?;
                fields.insert("environment".into(), serde_json::from_slice(&plain).map_err(bad)?);
            }
        }
        serde_json::from_value(doc).map_err(bad)
    }
}
