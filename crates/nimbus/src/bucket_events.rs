//! S3's event notifications leave here: the notifications each committed object change
//! recorded (in the same transaction as the change, so none is lost once a PUT was
//! acknowledged) are delivered to their functions (an asynchronous invocation, with its
//! retries and destinations), queues, topics and the account's default event bus, and
//! forgotten only once handed over.

use std::sync::Arc;
use std::time::Duration;

use nimbus_control::ControlPlane;
use nimbus_invoke::AsyncInvoker;
use nimbus_model::Partition;
use nimbus_objects::notify::DestinationKind;
use nimbus_objects::{ObjectStore, PendingNotification};

/// Where S3's notifications go.
pub struct Targets {
    pub objects: Arc<ObjectStore>,
    pub async_invoker: Arc<AsyncInvoker>,
    pub queues: Arc<nimbus_queues::QueueService>,
    pub topics: Arc<nimbus_topics::TopicService>,
    /// The account's default event bus (`EventBridgeConfiguration`).
    pub events: Arc<nimbus_events::EventsService>,
    pub partition: Partition,
    /// With authentication on: a function is invoked only while its policy lets S3 in.
    pub guard: Option<Arc<ControlPlane>>,
}

/// Most notifications taken per round.
const BATCH: usize = 100;
/// How long a round waits for a wake-up before looking again (a notification a crash left
/// behind is found within this).
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// How long after a failed delivery it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Delivers until the store's last holder goes.
pub fn spawn(targets: Targets, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            let pending = match targets.objects.take_notifications(BATCH).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("S3 notifications: {e}");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            };
            if pending.is_empty() {
                let _ = tokio::time::timeout(IDLE_LOOK, wake.notified()).await;
                continue;
            }
            let mut done = Vec::new();
            let mut failed = false;
            for n in &pending {
                match deliver(&targets, n).await {
                    Ok(()) => done.push(n.id),
                    Err(Failure::Refused(why)) => {
                        tracing::warn!(bucket = %n.bucket, destination = %n.destination_arn, "S3 notification dropped: {why}");
                        done.push(n.id);
                    }
                    Err(Failure::Again(why)) => {
                        tracing::debug!(bucket = %n.bucket, destination = %n.destination_arn, "S3 notification to be retried: {why}");
                        failed = true;
                    }
                }
            }
            if let Err(e) = targets.objects.ack_notifications(done).await {
                tracing::warn!("S3 notifications: {e}");
            }
            if failed {
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    });
}

enum Failure {
    /// Never deliverable (the destination refuses S3): dropped, as S3 drops it.
    Refused(String),
    /// Tried again later.
    Again(String),
}

async fn deliver(t: &Targets, n: &PendingNotification) -> Result<(), Failure> {
    let account = &t.partition.account_id;
    let source = format!("arn:aws:s3:::{}", n.bucket);
    if n.kind == DestinationKind::EventBridge {
        let Some((detail_type, detail)) = n.event_bridge(account) else { return Ok(()) };
        return t
            .events
            .put_service_event("aws.s3", detail_type, &[source], &detail, n.event_time_ms)
            .await
            .map(drop)
            .map_err(|e| Failure::Again(e.to_string()));
    }
    let document = serde_json::json!({"Records": [n.record(&t.partition.region, account)]}).to_string();
    match n.kind {
        DestinationKind::EventBridge => Ok(()),
        DestinationKind::Lambda => {
            if let Some(control) = &t.guard {
                nimbus_api::service_may_invoke(control, "s3.amazonaws.com", &n.destination_arn, &source, account)
                    .await
                    .map_err(Failure::Refused)?;
            }
            let function =
                nimbus_model::FunctionRef::parse(&n.destination_arn, &t.partition).map_err(|e| Failure::Refused(e.to_string()))?;
            let trace = nimbus_model::trace::TraceContext { parent: None, trigger: nimbus_model::trace::Trigger::PubSub };
            t.async_invoker.submit_traced(&function, bytes::Bytes::from(document), trace).await.map(|_| ()).map_err(|e| {
                if e.code.status() == 404 {
                    Failure::Refused(e.to_string())
                } else {
                    Failure::Again(e.to_string())
                }
            })
        }
        DestinationKind::Queue => match t.queues.send(&n.destination_arn, &document, Default::default()).await {
            Ok(_) => Ok(()),
            Err(nimbus_queues::QueueError::QueueDoesNotExist) => Err(Failure::Refused("no such queue".into())),
            Err(e) => Err(Failure::Again(e.to_string())),
        },
        DestinationKind::Topic => {
            let input =
                nimbus_topics::PublishInput { message: document, subject: Some("Amazon S3 Notification".into()), ..Default::default() };
            t.topics.publish(&n.destination_arn, input).await.map(|_| ()).map_err(|e| Failure::Again(e.to_string()))
        }
    }
}
