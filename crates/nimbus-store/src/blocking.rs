//! Long synchronous work (hashing and unpacking a zip, writing or reading a code blob,
//! removing a tree) run from async code without holding an API worker: the worker's other
//! tasks move to another thread while it runs, or the work is handed to a blocking thread,
//! so it does not stall the requests and Runtime APIs queued behind it.

/// Runs `f` in place, telling a multi-thread runtime first (`block_in_place`); anywhere else
/// (a current-thread runtime, as in tests, or no runtime) it simply runs.
pub fn in_place<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// [`in_place`] when the work is `long`; short work simply runs (handing a worker's queue on
/// costs more than it).
pub fn in_place_if<R>(long: bool, f: impl FnOnce() -> R) -> R {
    if long {
        in_place(f)
    } else {
        f()
    }
}

/// Runs `f` on the runtime's blocking threads and returns at once; outside a runtime it
/// simply runs. For clean-up in `Drop`s, which may run under a lock that an API worker would
/// then wait for (`in_place` would hand the worker's queue to a thread that waits too).
pub fn detached(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(f);
        }
        Err(_) => f(),
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
    fn detached_work_runs_elsewhere_or_here() {
        let here = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = tx.clone();
        detached(move || sent.send(std::thread::current().id()).unwrap());
        assert_eq!(rx.recv().unwrap(), here, "no runtime: at once, here");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let worker = rt.block_on(async {
            tokio::spawn(async move {
                let lock = std::sync::Mutex::new(());
                let _held = lock.lock().unwrap();
                detached(move || tx.send(std::thread::current().id()).unwrap());
                std::thread::current().id()
            })
            .await
            .unwrap()
        });
        let ran_on = rx.recv_timeout(std::time::Duration::from_secs(3)).unwrap();
        assert!(ran_on != worker && ran_on != here, "on a blocking thread");
    }

    /// Outside a runtime, on a current-thread one, on a blocking thread (a `Drop` run by
    /// `spawn_blocking`), and in a multi-thread runtime's `block_on`: it just runs.
    #[test]
    fn runs_anywhere() {
        assert_eq!(in_place(|| 7), 7);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(async { in_place(|| 8) }), 8);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        assert_eq!(rt.block_on(async { tokio::task::spawn_blocking(|| in_place(|| 9)).await.unwrap() }), 9);
        assert_eq!(rt.block_on(async { in_place(|| 10) }), 10);
        let _entered = rt.enter();
        assert_eq!(in_place(|| 11), 11);
    }
}
