//! Tables partitioned by time on PostgreSQL (log events by day, metric datapoints by day and
//! by hour): a write makes the partitions it needs, and retention drops whole partitions
//! instead of deleting rows one by one.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio_postgres::error::SqlState;

use crate::pg::backend;
use crate::StoreError;

/// How long dropping a partition waits for the tables' locks: queries queue behind the wait,
/// so it is short; a busy table is left for the next sweep.
const DROP_LOCK_WAIT_MS: u64 = 200;

/// How long making a partition waits for its parent's lock.
const CREATE_LOCK_WAIT_MS: u64 = 500;

/// The partitions of one table, `PARTITION BY RANGE` over a column of milliseconds since the
/// epoch, each `width_ms` wide and named `<parent>_<letter><n>` for the n-th width since the
/// epoch (`<letter>m<n>` before it).
pub struct TimePartitions {
    parent: &'static str,
    letter: char,
    width_ms: i64,
    /// The partitions known to exist (forgotten after a failed write: another node's sweep
    /// may have dropped one).
    known: Mutex<HashSet<i64>>,
}

impl TimePartitions {
    pub fn new(parent: &'static str, letter: char, width_ms: i64) -> TimePartitions {
        assert!(width_ms > 0, "a partition is wider than nothing");
        TimePartitions { parent, letter, width_ms, known: Mutex::default() }
    }

    /// The name of the partition holding the times of the `n`-th width.
    pub fn name(&self, n: i64) -> String {
        if n < 0 {
            format!("{}_{}m{}", self.parent, self.letter, n.unsigned_abs())
        } else {
            format!("{}_{}{n}", self.parent, self.letter)
        }
    }

    /// Which width a partition's name stands for (None for a table not named as ours).
    pub fn number_of(&self, name: &str) -> Option<i64> {
        let rest = name.strip_prefix(self.parent)?.strip_prefix('_')?.strip_prefix(self.letter)?;
        let (negative, digits) = match rest.strip_prefix('m') {
            Some(d) => (true, d),
            None => (false, rest),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().ok()?;
        Some(if negative { -n } else { n })
    }

    /// The partition a time falls in.
    pub fn of(&self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.width_ms)
    }

    /// The first time after the `n`-th partition.
    pub fn end_of(&self, n: i64) -> i64 {
        (n + 1).saturating_mul(self.width_ms)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partitions of `times` not known to exist.
    pub fn missing(&self, times: impl IntoIterator<Item = i64>) -> HashSet<i64> {
        let known = self.known();
        times.into_iter().map(|t| self.of(t)).filter(|n| !known.contains(n)).collect()
    }

    /// Makes the partitions of `times` that are not known to exist.
    pub async fn ensure(&self, client: &tokio_postgres::Client, times: impl IntoIterator<Item = i64>) -> Result<(), StoreError> {
        self.make(client, self.missing(times)).await
    }

    /// Makes the partitions `missing` (see [`TimePartitions::missing`]); another node may be
    /// making them at the same moment: they are there all the same.
    pub async fn make(&self, client: &tokio_postgres::Client, missing: HashSet<i64>) -> Result<(), StoreError> {
        for &n in &missing {
            // Making a partition locks its parent against every query: waited for briefly
            // (a failed write is retried; the sweeps make partitions ahead of need).
            let sql = format!(
                "BEGIN; SET LOCAL lock_timeout = '{CREATE_LOCK_WAIT_MS}ms';
                 CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({}); COMMIT",
                self.name(n),
                self.parent,
                n.saturating_mul(self.width_ms),
                self.end_of(n)
            );
            if let Err(e) = client.batch_execute(&sql).await {
                let raced = e.code().is_some_and(|c| *c == SqlState::DUPLICATE_TABLE || *c == SqlState::UNIQUE_VIOLATION);
                if !raced {
                    return Err(backend(e));
                }
            }
        }
        self.known().extend(missing);
        Ok(())
    }

    /// After a failed write: each partition is made again (if missing) before the next write.
    pub fn forget(&self) {
        self.known().clear();
    }

    /// The partitions there are, by number.
    pub async fn existing(&self, client: &tokio_postgres::Client) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = client
            .query(
                "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                 WHERE p.relname = $1 AND p.relnamespace = current_schema()::regnamespace",
                &[&self.parent],
            )
            .await
            .map_err(backend)?;
        let mut out: Vec<(i64, String)> = rows
            .into_iter()
            .filter_map(|r| {
                let name: String = r.get(0);
                Some((self.number_of(&name)?, name))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Drops the partitions that end at or before `before` (with `only_empty`, those of them
    /// that hold nothing), each in a transaction that locks the parent table, then the
    /// partition (the order every query takes them in, so no deadlock), waiting at most
    /// [`DROP_LOCK_WAIT_MS`] for them. Returns the names dropped.
    pub async fn drop_ended(&self, client: &mut tokio_postgres::Client, before: i64, only_empty: bool) -> Result<Vec<String>, StoreError> {
        let mut dropped = Vec::new();
        for (n, name) in self.existing(client).await? {
            if self.end_of(n) > before {
                continue;
            }
            // Looked at before the locks too: a partition still holding rows is not worth
            // holding every query up for.
            if only_empty && !is_empty(client, &name).await? {
                continue;
            }
            let tx = client.transaction().await.map_err(backend)?;
            let locked = tx
                .batch_execute(&format!(
                    "SET LOCAL lock_timeout = '{DROP_LOCK_WAIT_MS}ms'; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE; LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE",
                    self.parent
                ))
                .await;
            if let Err(e) = locked {
                tracing::debug!("partition {name} is busy: {e}");
                continue;
            }
            if only_empty && !is_empty(&tx, &name).await? {
                continue;
            }
            tx.batch_execute(&format!("DROP TABLE {name}")).await.map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            self.known().remove(&n);
            dropped.push(name);
        }
        Ok(dropped)
    }
}

/// Whether a write failed because a row's partition is not there (a sweep, this node's or
/// another's, dropped it empty after this node made it): made again, the write may be retried.
pub fn lost(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| *db.code() == SqlState::CHECK_VIOLATION && db.message().starts_with("no partition of relation"))
}

async fn is_empty(client: &impl tokio_postgres::GenericClient, table: &str) -> Result<bool, StoreError> {
    Ok(client.query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[]).await.map_err(backend)?.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        let days = TimePartitions::new("log_events", 'd', 86_400_000);
        let cases: &[(i64, &str)] =
            &[(0, "log_events_d0"), (20_427, "log_events_d20427"), (-1, "log_events_dm1"), (-365, "log_events_dm365")];
        for &(n, name) in cases {
            assert_eq!(days.name(n), name);
            assert_eq!(days.number_of(name), Some(n), "{name}");
        }
        for other in ["log_events", "log_events_d", "log_events_dm", "log_events_h12", "log_events_d1x", "log_eventsx_d1", "log_events_d-1"]
        {
            assert_eq!(days.number_of(other), None, "{other}");
        }
    }

    #[test]
    fn times_fall_in_their_width() {
        let hours = TimePartitions::new("metric_second_points", 'h', 3_600_000);
        let cases: &[(i64, i64, i64)] = &[(0, 0, 3_600_000), (3_599_999, 0, 3_600_000), (3_600_000, 1, 7_200_000), (-1, -1, 0)];
        for &(at, n, end) in cases {
            assert_eq!((hours.of(at), hours.end_of(hours.of(at))), (n, end), "{at}");
        }
    }

    /// Against a real PostgreSQL: partitions made on demand (twice is harmless), and only the
    /// ended ones dropped, the non-empty ones kept when asked.
    #[tokio::test]
    async fn partitions_are_made_and_dropped() {
        let Some(url) = crate::pg::testing::fresh_database().await else { return };
        let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute("CREATE TABLE t (at BIGINT NOT NULL) PARTITION BY RANGE (at)").await.unwrap();
        let parts = TimePartitions::new("t", 'h', 1000);
        parts.ensure(&client, [10, 1500, 2500, 2600]).await.unwrap();
        parts.forget();
        parts.ensure(&client, [10]).await.unwrap();
        let names = |v: Vec<(i64, String)>| v.into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        assert_eq!(names(parts.existing(&client).await.unwrap()), ["t_h0", "t_h1", "t_h2"]);
        client.batch_execute("INSERT INTO t VALUES (10), (2500)").await.unwrap();
        // Only partitions ending by 2000; of those only the empty one.
        assert_eq!(parts.drop_ended(&mut client, 2000, true).await.unwrap(), ["t_h1"]);
        assert_eq!(parts.drop_ended(&mut client, 2000, false).await.unwrap(), ["t_h0"]);
        assert_eq!(names(parts.existing(&client).await.unwrap()), ["t_h2"]);
        // A write into a dropped partition fails (as lost) until it is made again.
        assert!(client.batch_execute("INSERT INTO t VALUES (20)").await.is_err_and(|e| lost(&e)));
        client.batch_execute("CREATE TABLE c (at BIGINT CHECK (at > 0))").await.unwrap();
        assert!(client.batch_execute("INSERT INTO c VALUES (0)").await.is_err_and(|e| !lost(&e)), "another check's violation");
        parts.forget();
        parts.ensure(&client, [20]).await.unwrap();
        client.batch_execute("INSERT INTO t VALUES (20)").await.unwrap();
    }
}
