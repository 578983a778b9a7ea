//! Writes that arrive together go to the database together: callers submit one item each
//! and wait for its answer; a task takes whatever is waiting (up to a batch) once one of a
//! few write slots is free and writes it in one statement. Under load, items pile up while
//! the slots are busy, so each round trip and each commit's WAL flush serves many callers;
//! alone, an item goes at once.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

type Answer = oneshot::Sender<Result<(), String>>;

/// A batching writer of `T`s.
pub struct Batcher<T> {
    items: mpsc::UnboundedSender<(T, Answer)>,
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts the task: batches of at most `max` items, at most `slots` written at once by
    /// `write` (whose error every item of the batch is answered with). Ends when the
    /// batcher is dropped.
    pub fn start<F, Fut>(max: usize, slots: usize, write: F) -> Batcher<T>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(T, Answer)>();
        let write = Arc::new(write);
        let slots = Arc::new(Semaphore::new(slots.max(1)));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let write = write.clone();
                tokio::spawn(async move {
                    let (items, answers): (Vec<T>, Vec<Answer>) = batch.into_iter().unzip();
                    let outcome = write(items).await;
                    for answer in answers {
                        let _ = answer.send(outcome.clone());
                    }
                    drop(slot);
                });
            }
        });
        Batcher { items: tx }
    }

    /// Writes `item` with whatever else is waiting; answers once its batch is written.
    pub async fn submit(&self, item: T) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.items.send((item, tx)).map_err(|_| "the batch writer has stopped".to_string())?;
        rx.await.map_err(|_| "the batch writer has stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn items_waiting_while_the_slots_are_busy_go_together() {
        let batches: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let seen = batches.clone();
        let batcher = Arc::new(Batcher::start(8, 1, move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                seen.lock().unwrap().push(items);
                Ok(())
            }
        }));
        let mut waiting = Vec::new();
        for i in 0..20u32 {
            let b = batcher.clone();
            waiting.push(tokio::spawn(async move { b.submit(i).await }));
            if i == 0 {
                // The first goes alone; the rest pile up behind its write.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for w in waiting {
            assert_eq!(w.await.unwrap(), Ok(()));
        }
        let batches = batches.lock().unwrap().clone();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert_eq!(sizes[0], 1, "{sizes:?}");
        assert!(sizes.iter().all(|n| *n <= 8) && sizes.len() <= 5, "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_write_fails_each_item_of_its_batch() {
        let batcher = Batcher::start(4, 2, |items: Vec<u32>| async move {
            if items.contains(&13) {
                Err("unlucky".to_string())
            } else {
                Ok(())
            }
        });
        assert_eq!(batcher.submit(1).await, Ok(()));
        assert_eq!(batcher.submit(13).await, Err("unlucky".to_string()));
    }
}
