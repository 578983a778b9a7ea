//! Long synchronous work (hashing and unpacking a zip, writing or reading a code blob) run
//! from async code without holding an API worker: the worker's other tasks move to another
//! thread while it runs, so a deploy of a large zip does not stall the requests and Runtime
//! APIs queued behind it.

/// Runs `f` in place, telling a multi-thread runtime first (`block_in_place`); anywhere else
/// (a current-thread runtime, as in tests, or no runtime) it simply runs.
pub fn in_place<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While one task is in `in_place`, another task of a one-worker runtime still runs.
    #[test]
    fn other_tasks_run_while_one_works_in_place() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            // Waits for the other task inside `in_place`: it can only arrive if this task's
            // worker handed its queue on.
            let waited = tokio::spawn(async move { in_place(|| rx.recv_timeout(std::time::Duration::from_secs(3)).is_ok()) });
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let other = tokio::spawn(async move { tx.send(()).unwrap() });
            assert!(waited.await.unwrap(), "the other task never ran");
            other.await.unwrap();
        });
    }

    #[test]
    fn runs_anywhere() {
        assert_eq!(in_place(|| 7), 7);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(async { in_place(|| 8) }), 8);
    }
}
