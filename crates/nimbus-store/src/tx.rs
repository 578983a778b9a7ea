//! One transaction's logic for two engines: a store whose operations are written once per
//! engine (behind a trait of its own, whose methods are `async` for PostgreSQL) composes
//! them in logic written once, and [`in_tx!`](crate::in_tx) runs that logic in whichever
//! [`Engine`] the store opened: on SQLite's writer thread (where nothing ever waits, so
//! [`at_once`] completes it in one poll), or in a PostgreSQL transaction.

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Where a store's records are.
pub enum Engine<S, P> {
    /// A SQLite file behind a [`crate::group_commit::GroupCommit`] writer.
    Sqlite(S),
    /// A PostgreSQL schema several nodes share.
    Postgres(P),
}

/// The result of `work`, which must not wait: SQLite operations are plain calls on the
/// writer thread. A wait is a bug (a PostgreSQL-only call reached SQLite); it panics, which
/// the writer turns into the job's error.
pub fn at_once<T>(work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("a SQLite store operation waited on the writer thread"),
    }
}

/// Runs `$body` (an expression using `$tx`, a `&mut` transaction of the store's own type,
/// evaluating to a `Result`, `.await`s allowed) in one transaction of `$engine` (an
/// `&Engine<S, P>`) and evaluates to its result once committed; `$durable` asks for the
/// commit to reach the disk before the answer. `S` has
/// `run(durable, FnOnce(&rusqlite::Connection) -> Result)` (a `GroupCommit`'s), and
/// `$sqlite_tx::new(&Connection)` makes its transaction; `P` has `client(durable)` and
/// `begin(&mut client)`, whose transaction has `commit()`. The body is compiled for each.
/// `in_tx!($engine, $durable, $sqlite_tx, begin = $begin, |$tx| $body)` starts the
/// PostgreSQL transaction with `P`'s method `$begin` instead (a store's read-only snapshot).
#[macro_export]
macro_rules! in_tx {
    ($engine:expr, $durable:expr, $sqlite_tx:path, |$tx:ident| $body:expr) => {
        $crate::in_tx!($engine, $durable, $sqlite_tx, begin = begin, |$tx| $body)
    };
    ($engine:expr, $durable:expr, $sqlite_tx:path, begin = $begin:ident, |$tx:ident| $body:expr) => {
        match $engine {
            $crate::tx::Engine::Sqlite(store) => {
                store
                    .run($durable, move |conn| {
                        $crate::tx::at_once(async move {
                            let $tx = &mut <$sqlite_tx>::new(conn);
                            $body
                        })
                    })
                    .await
            }
            $crate::tx::Engine::Postgres(shared) => {
                async {
                    let mut client = shared.client($durable).await?;
                    let mut transaction = shared.$begin(&mut client).await?;
                    let result = async {
                        let $tx = &mut transaction;
                        $body
                    }
                    .await;
                    match result {
                        Ok(value) => transaction.commit().await.map(|()| value),
                        Err(e) => Err(e),
                    }
                }
                .await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_once_completes_what_never_waits() {
        async fn add(a: i32, b: i32) -> i32 {
            a + b
        }
        assert_eq!(at_once(async { add(add(1, 2).await, 3).await }), 6);
    }

    #[test]
    #[should_panic(expected = "waited on the writer thread")]
    fn at_once_refuses_what_waits() {
        at_once(std::future::pending::<()>());
    }
}
