//! What every [`Store`] must do, whatever its database: the cases both backends' tests run.

use nimbus_model::alias::AliasConfig;
use nimbus_model::invoke::AsyncEvent;
use nimbus_model::layer::LayerVersion;
use nimbus_model::provisioned::ProvisionedConfig;
use nimbus_model::{FunctionConfig, Runtime, LATEST};

use crate::{Store, StoreError};

pub(crate) fn cfg(name: &str, rev: &str) -> FunctionConfig {
    FunctionConfig {
        name: name.into(),
        version: LATEST.into(),
        runtime: Runtime::Python311,
        role: "arn:aws:iam::000000000000:role/r".into(),
        handler: "h.h".into(),
        description: String::new(),
        timeout_secs: 3,
        memory_mb: 128,
        ephemeral_storage_mb: 512,
        environment: Default::default(),
        code_digest: "ab".into(),
        code_size: 10,
        code_unzipped_size: 20,
        last_modified_ms: 0,
        revision_id: rev.into(),
        architectures: vec![],
        reserved_concurrency: None,
        last_published: 0,
        layers: vec![],
        dead_letter_target: None,
        tags: Default::default(),
        policies: Default::default(),
        recursive_loop: None,
        code_signing_config_id: None,
        runtime_management: None,
        kms_key_arn: None,
        vpc: None,
        tracing_active: false,
        logging: Default::default(),
    }
}

pub(crate) fn event(id: &str, at: i64) -> AsyncEvent {
    AsyncEvent {
        request_id: id.into(),
        function: "f".into(),
        qualifier: None,
        payload: br#"{"n":1}"#.to_vec(),
        attempts: 0,
        enqueued_ms: at,
        not_before_ms: at,
        trace: None,
        trigger: Default::default(),
    }
}

pub(crate) fn ids(events: Vec<AsyncEvent>) -> Vec<String> {
    events.into_iter().map(|e| e.request_id).collect()
}

/// Functions, versions, aliases and provisioned configs: conflicts, compare-and-swap,
/// paging, cascades.
pub(crate) async fn records(s: &dyn Store) {
    s.create_function(&cfg("b", "1")).await.unwrap();
    s.create_function(&cfg("a", "1")).await.unwrap();
    assert!(matches!(s.create_function(&cfg("a", "2")).await, Err(StoreError::Conflict)));
    assert!(matches!(s.update_function(&cfg("a", "3"), "wrong").await, Err(StoreError::RevisionMismatch)));
    assert!(matches!(s.update_function(&cfg("zz", "3"), "1").await, Err(StoreError::NotFound)));
    s.update_function(&cfg("a", "3"), "1").await.unwrap();
    assert_eq!(s.get_function("a", LATEST).await.unwrap().unwrap().revision_id, "3");
    let names: Vec<_> = s.list_functions(LATEST, None, 10).await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
    let page: Vec<_> = s.list_functions(LATEST, Some("a"), 10).await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(page, ["b"]);
    assert_eq!(s.usage().await.unwrap(), (20, 2));
    assert!(s.code_in_use("ab").await.unwrap());
    // Versions: publish 1 atomically with $LATEST's counter; a stale revision fails.
    let mut latest = s.get_function("a", LATEST).await.unwrap().unwrap();
    let mut v1 = latest.clone();
    v1.version = "1".into();
    v1.revision_id = "v1".into();
    latest.last_published = 1;
    latest.revision_id = "4".into();
    assert!(matches!(s.publish_version(&latest, "stale", &v1).await, Err(StoreError::RevisionMismatch)));
    s.publish_version(&latest, "3", &v1).await.unwrap();
    let versions: Vec<_> = s.list_versions("a").await.unwrap().into_iter().map(|c| c.version).collect();
    assert_eq!(versions, [LATEST, "1"]);
    // Aliases: create, conflict, CAS update, list, delete with the function.
    let alias = AliasConfig {
        function_name: "a".into(),
        name: "prod".into(),
        function_version: "1".into(),
        description: String::new(),
        additional_version: None,
        revision_id: "x".into(),
    };
    s.put_alias(&alias, None).await.unwrap();
    assert!(matches!(s.put_alias(&alias, None).await, Err(StoreError::Conflict)));
    let moved = AliasConfig { function_version: "$LATEST".into(), revision_id: "y".into(), ..alias.clone() };
    assert!(matches!(s.put_alias(&moved, Some("nope")).await, Err(StoreError::RevisionMismatch)));
    s.put_alias(&moved, Some("x")).await.unwrap();
    assert_eq!(s.list_aliases("a").await.unwrap(), vec![moved]);
    // Provisioned concurrency configs: replace, list per function and in all, cascade.
    let pc = ProvisionedConfig { function: "a".into(), qualifier: "prod".into(), requested: 2, last_modified_ms: 1 };
    s.put_provisioned_config(&pc).await.unwrap();
    s.put_provisioned_config(&ProvisionedConfig { requested: 3, ..pc.clone() }).await.unwrap();
    s.put_provisioned_config(&ProvisionedConfig { function: "b".into(), ..pc.clone() }).await.unwrap();
    assert_eq!(s.list_provisioned_configs(Some("a")).await.unwrap(), vec![ProvisionedConfig { requested: 3, ..pc.clone() }]);
    assert_eq!(s.list_provisioned_configs(None).await.unwrap().len(), 2);
    assert!(s.delete_provisioned_config("b", "prod").await.unwrap());
    assert!(!s.delete_provisioned_config("b", "prod").await.unwrap());
    assert!(s.delete_version("a", "1").await.unwrap());
    assert!(s.delete_function("a").await.unwrap());
    assert!(s.list_provisioned_configs(None).await.unwrap().is_empty());
    assert!(s.list_aliases("a").await.unwrap().is_empty());
    assert!(!s.delete_function("a").await.unwrap());
    assert!(s.get_function("a", LATEST).await.unwrap().is_none());
}

/// A publish that fails after writing leaves nothing behind, even beside a call that
/// succeeds at the same moment; layer versions count up and their policies are
/// compare-and-swapped. Leaves `a` with `$LATEST` at revision 2 and version 1.
pub(crate) async fn failed_calls_and_layers(s: &dyn Store) {
    s.create_function(&cfg("a", "1")).await.unwrap();
    let mut v1 = cfg("a", "v1");
    v1.version = "1".into();
    s.publish_version(&cfg("a", "2"), "1", &v1).await.unwrap();
    // Publishing version 1 again: $LATEST's update is undone with the failed insert.
    let (latest, b) = (cfg("a", "3"), cfg("b", "1"));
    let (again, other) = tokio::join!(s.publish_version(&latest, "2", &v1), s.create_function(&b));
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    other.unwrap();
    assert_eq!(s.get_function("a", LATEST).await.unwrap().unwrap().revision_id, "2");
    assert_eq!(s.list_functions(LATEST, None, 10).await.unwrap().len(), 2);
    let layer = LayerVersion {
        layer_name: "l".into(),
        version: 0,
        description: String::new(),
        compatible_runtimes: vec![],
        compatible_architectures: vec![],
        license_info: None,
        code_digest: "cd".into(),
        code_size: 1,
        unzipped_size: 1,
        created_ms: 0,
        policy: vec![],
        policy_revision: "p1".into(),
    };
    assert_eq!(s.publish_layer_version(&layer).await.unwrap(), 1);
    assert_eq!(s.publish_layer_version(&layer).await.unwrap(), 2);
    assert!(s.delete_layer_version("l", 2).await.unwrap());
    // Numbers are never reused.
    assert_eq!(s.publish_layer_version(&layer).await.unwrap(), 3);
    assert!(s.delete_layer_version("l", 3).await.unwrap());
    let moved = LayerVersion { version: 1, policy_revision: "p2".into(), ..layer.clone() };
    assert!(matches!(s.update_layer_version(&moved, "p0").await, Err(StoreError::RevisionMismatch)));
    s.update_layer_version(&moved, "p1").await.unwrap();
    assert!(matches!(s.update_layer_version(&LayerVersion { version: 9, ..moved.clone() }, "p2").await, Err(StoreError::NotFound)));
    assert_eq!(s.get_layer_version("l", 1).await.unwrap().unwrap().policy_revision, "p2");
    assert_eq!(s.list_layer_names().await.unwrap(), ["l"]);
    assert!(s.digest_in_use("cd").await.unwrap());
    assert!(!s.digest_in_use("ef").await.unwrap());
}

/// The async queue as one node sees it: due order, a retry stored from the dispatcher's
/// copy, a finished event's late retry ignored. Leaves `c` and `a` waiting.
pub(crate) async fn async_queue(s: &dyn Store) {
    let (a, b, c) = (event("a", 10), event("b", 20), event("c", 30));
    let (x, y, z) = tokio::join!(s.enqueue_event(&a), s.enqueue_event(&b), s.enqueue_event(&c));
    for accepted in [x, y, z] {
        accepted.unwrap();
    }
    assert_eq!(ids(s.due_events(25, 10).await.unwrap()), ["a", "b"]);
    // `a` failed once: retried after `c`.
    s.reschedule_event(&AsyncEvent { attempts: 1, not_before_ms: 40, ..a.clone() }).await.unwrap();
    assert_eq!(s.next_event_due().await.unwrap(), Some(20));
    let due = s.due_events(100, 10).await.unwrap();
    assert_eq!(due.iter().map(|e| (e.request_id.as_str(), e.attempts)).collect::<Vec<_>>(), [("b", 0), ("c", 0), ("a", 1)]);
    assert_eq!(due[2], AsyncEvent { attempts: 1, not_before_ms: 40, ..a.clone() });
    // A retry recorded after the event finished does not bring it back.
    s.complete_event("b").await.unwrap();
    s.reschedule_event(&AsyncEvent { not_before_ms: 50, ..b.clone() }).await.unwrap();
    assert_eq!(ids(s.due_events(100, 10).await.unwrap()), ["c", "a"]);
}
