//! The thread the server forks its own children from (runtimes in process isolation,
//! `sandbox-init` when there is no spawner): a child's parent-death signal
//! (`PR_SET_PDEATHSIG`) fires when the thread that forked it ends, not the process, and the
//! async runtime's threads come and go (an idle blocking thread ends after 10 s), so a
//! runtime forked on one of them was killed seconds into its idle time. This thread lives as
//! long as the server.

use std::io;
use std::sync::{mpsc, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// The forker thread's queue; None if the thread could not be started.
fn queue() -> Option<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            match std::thread::Builder::new().name("nimbus-forker".into()).spawn(move || rx.into_iter().for_each(|job| job())) {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!("cannot start the forker thread (children are forked where they are asked for): {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Spawns `cmd` from the forker thread and waits for it; `cmd` (with its copies of the
/// child's descriptors) is dropped before this returns. Blocking: call off the async
/// workers, within a tokio runtime (which reaps the child).
pub fn spawn(mut cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
    let (Some(queue), Ok(runtime)) = (queue(), tokio::runtime::Handle::try_current()) else {
        return cmd.spawn();
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        let child = cmd.spawn();
        drop(cmd);
        let _ = tx.send(child);
    });
    queue.send(job).map_err(|_| io::Error::other("the forker thread ended"))?;
    rx.recv().map_err(|_| io::Error::other("the forker thread did not run the spawn"))?
}
