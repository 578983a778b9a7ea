//! The scheduler: fires each enabled scheduled rule once per period, sending AWS's
//! "Scheduled Event" to its targets.
//!
//! Each scheduled rule has a next fire time, stored with the rule. A fire first commits the
//! following fire time, then delivers: a crash in between loses that one fire, and a restart
//! never fires a period twice (at most once per period). Missed periods (the server was down,
//! or busy) are not replayed as a burst: the first tick that finds a rule overdue fires once,
//! for the most recent period that has passed, and carries on from there.
//!
//! Nodes sharing a PostgreSQL store all run the scheduler, each with its own next fire
//! times: a fire is claimed in the same commit (`events_schedule_fires`), and only the node
//! whose claim wins delivers it; the others only move on. So each period is delivered once
//! while any node is up, whichever nodes are down.
//!
//! [`EventsService::tick`] is the whole logic, given the time; [`EventsService::run_scheduler`]
//! only calls it when the next rule is due (or rules change). Tests drive `tick` with a fake
//! clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::error::EventsError;
use crate::service::{deliveries_for, format_time, Apply, EventsService, State};

/// The longest the scheduler sleeps without looking (rules changing wake it sooner).
const MAX_SLEEP_MS: i64 = 60_000;

/// One fire of a scheduled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub rule_arn: String,
    /// The scheduled time of the period fired (the event's `time`).
    pub time_ms: i64,
    /// Whether older periods were skipped (missed fires collapse into this one).
    pub skipped_missed: bool,
}

impl EventsService {
    /// Fires every enabled scheduled rule that is due at `now_ms`, once each: those whose
    /// claim this node won (over a shared store, another node may have fired a period).
    pub async fn tick(&self, now_ms: i64) -> Result<Vec<Fired>, EventsError> {
        let anything_due = self
            .shared
            .read()
            .rules
            .values()
            .any(|r| r.info.enabled() && r.schedule.is_some() && r.next_fire_ms.is_some_and(|t| t <= now_ms));
        if !anything_due {
            return Ok(Vec::new());
        }
        let (due, won) = self
            .write_claiming(move |changes, state| {
                let mut due = Vec::new();
                for (key, rule) in &state.rules {
                    let (Some(schedule), Some(next)) = (&rule.schedule, rule.next_fire_ms) else { continue };
                    if !rule.info.enabled() || next > now_ms {
                        continue;
                    }
                    let fire = schedule.latest_due(next, now_ms);
                    let following = schedule.next_after(fire, now_ms);
                    changes.claim_fire(&key.0, &key.1, fire);
                    changes.advance_fire(&key.0, &key.1, next, following);
                    due.push((key.clone(), fire, following, fire != next));
                }
                let updates: Vec<_> = due.iter().map(|(key, _, following, _)| (key.clone(), *following)).collect();
                let apply: Apply = Box::new(move |st: &mut State| {
                    for (key, following) in updates {
                        if let Some(r) = st.rules.get_mut(&key) {
                            r.next_fire_ms = following;
                        }
                    }
                });
                Ok((due, apply))
            })
            .await?;
        let ingestion = format_time(now_ms);
        let mut fired = Vec::new();
        let mut deliveries = Vec::new();
        {
            let state = self.shared.read();
            for (key, fire, _, skipped_missed) in due {
                if !won.iter().any(|w| w.bus == key.0 && w.rule == key.1 && w.fire_ms == fire) {
                    tracing::debug!(rule = key.1, "{} was fired by another node", format_time(fire));
                    continue;
                }
                let Some(rule) = state.rules.get(&key) else { continue };
                let id = uuid::Uuid::new_v4().to_string();
                let resources = [rule.info.arn.clone()];
                let event = self.make_event(&id, "Scheduled Event", "aws.events", &format_time(fire), &resources, &json!({}));
                self.matched(&rule.info.event_bus, std::slice::from_ref(&rule.info.name));
                deliveries.extend(deliveries_for(rule, &event, &ingestion));
                if skipped_missed {
                    tracing::info!(rule = rule.info.name, "missed scheduled periods skipped; firing once for {}", format_time(fire));
                }
                fired.push(Fired { rule_arn: rule.info.arn.clone(), time_ms: fire, skipped_missed });
            }
        }
        self.deliver(deliveries).await;
        Ok(fired)
    }

    /// When the next scheduled rule is due, if any is.
    pub fn next_fire_ms(&self) -> Option<i64> {
        self.shared.read().rules.values().filter(|r| r.info.enabled() && r.schedule.is_some()).filter_map(|r| r.next_fire_ms).min()
    }

    /// Runs the scheduler until the server stops.
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            let changed = self.schedule_changed.notified();
            let mut wait_ms = match self.tick(self.clock.now_ms()).await {
                Ok(_) => 0,
                Err(e) => {
                    tracing::warn!("scheduler: {e}");
                    1_000
                }
            };
            let until_next = self.next_fire_ms().map_or(MAX_SLEEP_MS, |t| t - self.clock.now_ms());
            wait_ms = until_next.clamp(wait_ms, MAX_SLEEP_MS.max(wait_ms));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                _ = changed => {}
            }
        }
    }
}
