//! CloudWatch Logs' rules as pure functions, so they are tested as tables apart from any IO:
//! what a PutLogEvents batch may hold (size, count, order, span) and which of its events are
//! rejected for their time (too old, expired by the group's retention, too new); the
//! retention periods AWS allows; the names AWS accepts for groups and streams.

use std::ops::Range;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A batch's byte cap: its messages' UTF-8 bytes plus [`EVENT_OVERHEAD`] per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What each event adds to a batch's size.
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Events older than this (before now) are rejected as too old.
pub const TOO_OLD_MS: i64 = 14 * DAY_MS;
/// Events further ahead than this (after now) are rejected as too new.
pub const TOO_NEW_MS: i64 = 2 * HOUR_MS;
/// A batch's first and last events may be at most this far apart.
pub const MAX_SPAN_MS: i64 = 24 * HOUR_MS;

/// The retention periods PutRetentionPolicy accepts, in days.
pub const RETENTION_DAYS: [u32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Why a whole batch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    Empty,
    /// More than [`MAX_BATCH_EVENTS`] events (how many).
    TooManyEvents(usize),
    /// Over [`MAX_BATCH_BYTES`] (its size as counted).
    TooLarge(usize),
    /// An event earlier than the one before it.
    OutOfOrder,
    /// First and last events more than [`MAX_SPAN_MS`] apart.
    SpansTooLong,
}

/// The events of an accepted batch that are not stored, as AWS reports them: end indexes are
/// exclusive (the count of events rejected from the front), the start index inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
    pub too_new_start: Option<usize>,
}

impl Rejected {
    /// The events that are stored.
    pub fn accepted(&self, len: usize) -> Range<usize> {
        let start = self.too_old_end.unwrap_or(0).max(self.expired_end.unwrap_or(0));
        let end = self.too_new_start.unwrap_or(len);
        start..end.max(start)
    }

    pub fn is_empty(&self) -> bool {
        *self == Rejected::default()
    }
}

/// Checks a batch given as each event's (timestamp, message bytes), at `now`, for a group
/// keeping its events `retention_days` (None: forever). The batch's own checks come first, in
/// AWS's order: count, size, order, span; then each event's time.
pub fn check_batch(events: &[(i64, usize)], now: i64, retention_days: Option<u32>) -> Result<Rejected, BatchError> {
    if events.is_empty() {
        return Err(BatchError::Empty);
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(BatchError::TooManyEvents(events.len()));
    }
    let bytes: usize = events.iter().map(|(_, n)| n + EVENT_OVERHEAD).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(BatchError::TooLarge(bytes));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(BatchError::OutOfOrder);
    }
    let (first, last) = (events[0].0, events[events.len() - 1].0);
    if last - first > MAX_SPAN_MS {
        return Err(BatchError::SpansTooLong);
    }
    // In order, so each kind of rejection is a run at one end of the batch.
    let count_before = |cutoff: i64| events.iter().take_while(|(t, _)| *t < cutoff).count();
    let too_old = count_before(now - TOO_OLD_MS);
    let expired = retention_days.map(|d| count_before(now - i64::from(d) * DAY_MS)).unwrap_or(0);
    let too_new = events.iter().position(|(t, _)| *t > now + TOO_NEW_MS);
    Ok(Rejected {
        too_old_end: (too_old > 0).then_some(too_old),
        expired_end: (expired > too_old).then_some(expired),
        too_new_start: too_new,
    })
}

/// Why a log group or stream name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Longer than 512 characters.
    TooLong,
    /// Outside the name's pattern (shown as AWS shows it).
    Pattern(&'static str),
}

pub const GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
pub const STREAM_NAME_PATTERN: &str = "[^:*]*";
pub const MAX_NAME_LEN: usize = 512;

/// A log group name as AWS allows it: 1 to 512 of `A-Za-z0-9._-/#`.
pub fn check_group_name(name: &str) -> Result<(), NameError> {
    check_name(name, GROUP_NAME_PATTERN, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'))
}

/// A log stream name as AWS allows it: 1 to 512 characters, no `:` or `*`.
pub fn check_stream_name(name: &str) -> Result<(), NameError> {
    check_name(name, STREAM_NAME_PATTERN, |c| !matches!(c, ':' | '*'))
}

fn check_name(name: &str, pattern: &'static str, allowed: impl Fn(char) -> bool) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.chars().count() > MAX_NAME_LEN {
        Err(NameError::TooLong)
    } else if !name.chars().all(allowed) {
        Err(NameError::Pattern(pattern))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn batches() {
        let ev = |offsets: &[i64]| offsets.iter().map(|o| (NOW + o, 10)).collect::<Vec<_>>();
        let rej = |too_old_end, expired_end, too_new_start| Rejected { too_old_end, expired_end, too_new_start };
        /// (events as offsets from now, retention, result, accepted range of the batch)
        type Case = (Vec<(i64, usize)>, Option<u32>, Result<Rejected, BatchError>);
        let cases: Vec<Case> = vec![
            (vec![], None, Err(BatchError::Empty)),
            (ev(&[0, 0, 1]), None, Ok(rej(None, None, None))),
            (ev(&[1, 0]), None, Err(BatchError::OutOfOrder)),
            (ev(&[-MAX_SPAN_MS, 0]), None, Ok(rej(None, None, None))),
            (ev(&[-MAX_SPAN_MS - 1, 0]), None, Err(BatchError::SpansTooLong)),
            // Exactly 14 days old is kept; a millisecond more is too old.
            (ev(&[-TOO_OLD_MS - 1, -TOO_OLD_MS, -TOO_OLD_MS + 5]), None, Ok(rej(Some(1), None, None))),
            (ev(&[-30 * DAY_MS]), None, Ok(rej(Some(1), None, None))),
            // Two hours ahead is kept; a millisecond more is too new.
            (ev(&[TOO_NEW_MS, TOO_NEW_MS + 1, TOO_NEW_MS + 2]), None, Ok(rej(None, None, Some(1)))),
            (ev(&[DAY_MS]), None, Ok(rej(None, None, Some(0)))),
            // Retention: older than the group keeps is expired.
            (ev(&[-DAY_MS - 2 * HOUR_MS, -DAY_MS - 1, -DAY_MS, -3 * HOUR_MS]), Some(1), Ok(rej(None, Some(2), None))),
            (ev(&[-DAY_MS - 2 * HOUR_MS, -DAY_MS - 1, -3 * HOUR_MS]), Some(3), Ok(rej(None, None, None))),
            // Too old counts first; expired says how far the rejection goes past it.
            (ev(&[-14 * DAY_MS - HOUR_MS, -14 * DAY_MS + HOUR_MS, -13 * DAY_MS - HOUR_MS]), Some(1), Ok(rej(Some(1), Some(3), None))),
            (ev(&[-14 * DAY_MS - HOUR_MS, -14 * DAY_MS + HOUR_MS]), Some(14), Ok(rej(Some(1), None, None))),
            (vec![(NOW, 0); MAX_BATCH_EVENTS + 1], None, Err(BatchError::TooManyEvents(MAX_BATCH_EVENTS + 1))),
            (vec![(NOW, 0); MAX_BATCH_EVENTS], None, Ok(rej(None, None, None))),
            (vec![(NOW, MAX_BATCH_BYTES - EVENT_OVERHEAD)], None, Ok(rej(None, None, None))),
            (vec![(NOW, MAX_BATCH_BYTES - EVENT_OVERHEAD + 1)], None, Err(BatchError::TooLarge(MAX_BATCH_BYTES + 1))),
            (vec![(NOW, 500_000), (NOW, 548_525)], None, Err(BatchError::TooLarge(1_048_576 + 1))),
        ];
        for (events, retention, want) in cases {
            assert_eq!(check_batch(&events, NOW, retention), want, "{:?} retention {retention:?}", &events[..events.len().min(3)]);
        }
    }

    #[test]
    fn accepted_ranges() {
        let rej = |too_old_end, expired_end, too_new_start| Rejected { too_old_end, expired_end, too_new_start };
        let cases = [
            (rej(None, None, None), 3, 0..3),
            (rej(Some(1), None, None), 3, 1..3),
            (rej(Some(1), Some(2), None), 3, 2..3),
            (rej(None, None, Some(2)), 3, 0..2),
            (rej(Some(2), None, Some(1)), 3, 2..2),
            (rej(Some(3), None, None), 3, 3..3),
        ];
        for (r, len, want) in cases {
            assert_eq!(r.accepted(len), want, "{r:?}");
        }
    }

    #[test]
    fn names() {
        let long = "a".repeat(513);
        /// (name, as a group name, as a stream name)
        type Case<'a> = (&'a str, Result<(), NameError>, Result<(), NameError>);
        let cases: Vec<Case> = vec![
            ("/aws/lambda/f", Ok(()), Ok(())),
            ("my-app_1.#x", Ok(()), Ok(())),
            ("", Err(NameError::Empty), Err(NameError::Empty)),
            (&long, Err(NameError::TooLong), Err(NameError::TooLong)),
            (&long[..512], Ok(()), Ok(())),
            ("has space", Err(NameError::Pattern(GROUP_NAME_PATTERN)), Ok(())),
            ("2026/01/01/[$LATEST]abc", Err(NameError::Pattern(GROUP_NAME_PATTERN)), Ok(())),
            ("a:b", Err(NameError::Pattern(GROUP_NAME_PATTERN)), Err(NameError::Pattern(STREAM_NAME_PATTERN))),
            ("a*", Err(NameError::Pattern(GROUP_NAME_PATTERN)), Err(NameError::Pattern(STREAM_NAME_PATTERN))),
        ];
        for (name, group, stream) in cases {
            assert_eq!(check_group_name(name), group, "group {name}");
            assert_eq!(check_stream_name(name), stream, "stream {name}");
        }
    }
}
