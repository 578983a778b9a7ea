//! ParallelizationFactor lanes and tumbling windows of a stream mapping, as pure functions
//! so they can be tested as tables: which lane a record goes to (the same partition key
//! always to the same lane, so its records stay in order), which window it belongs to, the
//! window members of an event, the state a function answers with, and how a shard's stored
//! checkpoint carries the open windows' state across restarts.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::stream_batch::MalformedAnswer;

/// The most state a window keeps (AWS: 1 MB per shard); a larger answer ends the window
/// early (`isWindowTerminatedEarly`).
pub const STATE_LIMIT: usize = 1024 * 1024;

/// The lane of `lanes` a record with this partition key (a Kinesis partition key, a
/// DynamoDB item's keys) goes to: FNV-1a, stable across restarts and builds.
pub fn lane_of(key: &str, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % lanes as u64) as usize
}

/// The start (epoch ms) of the window of `secs` seconds a record that arrived at
/// `arrival_ms` belongs to. Windows are aligned to the epoch, as AWS's are to the clock.
pub fn window_start(arrival_ms: i64, secs: u32) -> i64 {
    let width = i64::from(secs.max(1)) * 1000;
    arrival_ms.div_euclid(width) * width
}

/// A window a lane has open: where it starts, how long it is, and the state the function
/// last answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub start_ms: i64,
    pub state: Map<String, Value>,
    /// Its width in seconds (0 in checkpoints written before it was kept: the mapping's).
    #[serde(default)]
    pub secs: u32,
}

impl OpenWindow {
    pub fn new(start_ms: i64, secs: u32) -> OpenWindow {
        OpenWindow { start_ms, state: Map::new(), secs }
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.secs.max(1)) * 1000
    }
}

/// What an invocation of a window says besides its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCall<'a> {
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    /// `isFinalInvokeForWindow`: the window is over; its state is final.
    pub last: bool,
    /// `isWindowTerminatedEarly`: the state grew past [`STATE_LIMIT`].
    pub early: bool,
}

fn iso_secs(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Adds the tumbling-window members to an event (`{"Records": [...]}`), as AWS's
/// KinesisTimeWindowEvent and DynamodbTimeWindowEvent have them.
pub fn add_window_members(event: &mut Map<String, Value>, w: &OpenWindow, call: WindowCall<'_>) {
    event.insert("window".into(), json!({ "start": iso_secs(w.start_ms), "end": iso_secs(w.end_ms()) }));
    event.insert("state".into(), Value::Object(w.state.clone()));
    event.insert("shardId".into(), json!(call.shard_id));
    event.insert("eventSourceARN".into(), json!(call.stream_arn));
    event.insert("isFinalInvokeForWindow".into(), json!(call.last));
    event.insert("isWindowTerminatedEarly".into(), json!(call.early));
}

/// The state a windowed invocation answered with. An answer without a `state` object is a
/// failed invocation, as AWS has it.
pub fn answered_state(payload: &[u8]) -> Result<Map<String, Value>, MalformedAnswer> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(mut answer)) => match answer.remove("state") {
            Some(Value::Object(state)) => Ok(state),
            _ => Err(MalformedAnswer),
        },
        _ => Err(MalformedAnswer),
    }
}

/// The size a state counts for against [`STATE_LIMIT`].
pub fn state_size(state: &Map<String, Value>) -> usize {
    serde_json::to_vec(state).map(|v| v.len()).unwrap_or(usize::MAX)
}

/// A shard's stored checkpoint: where to read next and, with tumbling windows, the window
/// each lane has open. Stored as one value so the position and the state that aggregates
/// the records before it are written together: `<position>` or `<position> <windows JSON>`
/// (positions never hold a space).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    pub position: String,
    pub windows: Vec<Option<OpenWindow>>,
}

impl Checkpoint {
    pub fn parse(stored: &str) -> Checkpoint {
        match stored.split_once(' ') {
            Some((position, windows)) => Checkpoint {
                position: position.to_string(),
                windows: serde_json::from_str(windows).unwrap_or_else(|e| {
                    tracing::warn!("a stored checkpoint's window state is unreadable, starting the windows afresh: {e}");
                    Vec::new()
                }),
            },
            None => Checkpoint { position: stored.to_string(), windows: Vec::new() },
        }
    }

    /// The position of a stored checkpoint, without parsing its windows.
    pub fn position_of(stored: &str) -> &str {
        stored.split_once(' ').map_or(stored, |(position, _)| position)
    }

    pub fn encode(&self) -> String {
        if self.windows.iter().all(Option::is_none) {
            return self.position.clone();
        }
        format!("{} {}", self.position, serde_json::to_string(&self.windows).expect("window state serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_stable_and_spread() {
        assert_eq!(lane_of("anything", 1), 0);
        assert_eq!(lane_of("anything", 0), 0);
        for key in ["a", "user-17", "{\"id\":{\"S\":\"x\"}}"] {
            assert_eq!(lane_of(key, 7), lane_of(key, 7), "{key}");
            assert!(lane_of(key, 7) < 7);
        }
        let mut used = [0usize; 10];
        for k in 0..1000 {
            used[lane_of(&format!("key-{k}"), 10)] += 1;
        }
        assert!(used.iter().all(|n| *n > 50), "{used:?}");
    }

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        let cases = [
            (0, 60, 0),
            (59_999, 60, 0),
            (60_000, 60, 60_000),
            (1_607_497_475_000, 120, 1_607_497_440_000),
            (1_607_497_475_123, 1, 1_607_497_475_000),
            (-1, 60, -60_000),
        ];
        for (arrival, secs, want) in cases {
            assert_eq!(window_start(arrival, secs), want, "{arrival} {secs}");
        }
        assert_eq!(OpenWindow::new(60_000, 60).end_ms(), 120_000);
    }

    #[test]
    fn window_members_as_aws_sends_them() {
        let mut w = OpenWindow::new(1_607_497_440_000, 120);
        w.state.insert("1".into(), json!(282));
        let mut event = Map::new();
        event.insert("Records".into(), json!([]));
        let call = WindowCall { shard_id: "shardId-000000000006", stream_arn: "arn:s", last: true, early: false };
        add_window_members(&mut event, &w, call);
        assert_eq!(
            Value::Object(event),
            json!({
                "Records": [],
                "window": { "start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z" },
                "state": { "1": 282 },
                "shardId": "shardId-000000000006",
                "eventSourceARN": "arn:s",
                "isFinalInvokeForWindow": true,
                "isWindowTerminatedEarly": false,
            })
        );
    }

    #[test]
    fn answered_states() {
        let ok = |s: &str| answered_state(s.as_bytes()).map(Value::Object);
        assert_eq!(ok(r#"{"state":{"n":3}}"#), Ok(json!({"n": 3})));
        assert_eq!(ok(r#"{"state":{},"batchItemFailures":[]}"#), Ok(json!({})));
        for bad in [r#"{}"#, r#"{"state":null}"#, r#"{"state":[1]}"#, r#""state""#, "null", "not json"] {
            assert_eq!(ok(bad), Err(MalformedAnswer), "{bad}");
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        let mut w = OpenWindow::new(60_000, 60);
        w.state.insert("count".into(), json!(2));
        let cases = [
            Checkpoint { position: "41".into(), windows: vec![] },
            Checkpoint { position: "END".into(), windows: vec![None, None] },
            Checkpoint { position: "000000000000000000017".into(), windows: vec![None, Some(w.clone())] },
        ];
        for c in cases {
            let stored = c.encode();
            let back = Checkpoint::parse(&stored);
            assert_eq!(back.position, c.position, "{stored}");
            assert_eq!(Checkpoint::position_of(&stored), c.position, "{stored}");
            if c.windows.iter().all(Option::is_none) {
                assert_eq!(stored, c.position);
                assert!(back.windows.is_empty());
            } else {
                assert_eq!(back, c);
            }
        }
        let unreadable = Checkpoint::parse("41 {not json");
        assert_eq!((unreadable.position.as_str(), unreadable.windows.len()), ("41", 0));
    }
}
