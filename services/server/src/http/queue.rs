//! The bounded inference queue. Requests put their texts on it and wait; one
//! worker thread takes what is waiting (up to `max_batch` texts), judges it in
//! one batch and answers each request. The queue holds at most `capacity`
//! texts: a request that would overflow it is refused at once (503 with
//! `Retry-After`) instead of piling up latency and memory.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use triage_risk::{Judgement, Triage, TriageError};

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Judgement>, TriageError>>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct InferenceQueue {
    tx: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the inference queue is full")]
    Full,
    #[error("the inference worker has stopped")]
    Stopped,
    #[error(transparent)]
    Triage(#[from] TriageError),
}

impl InferenceQueue {
    /// Starts the worker thread; it ends when the last queue handle is dropped.
    pub fn start(triage: Arc<Triage>, capacity: usize, max_batch: usize) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let spawned = std::thread::Builder::new().name("inference".into()).spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut jobs = vec![first];
                let mut n = jobs[0].texts.len();
                while n < max_batch {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.texts.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
                metrics::histogram!("triage_inference_batch_texts").record(texts.len() as f64);
                let started = std::time::Instant::now();
                // A big request (a 64-item batch) is still judged `max_batch` texts at a time.
                let result = texts.chunks(max_batch).try_fold(Vec::with_capacity(texts.len()), |mut acc, c| {
                    acc.extend(triage.judge_batch(c)?);
                    Ok::<_, TriageError>(acc)
                });
                metrics::histogram!("triage_inference_seconds").record(started.elapsed().as_secs_f64());
                match result {
                    Ok(mut all) => {
                        for j in jobs {
                            let rest = all.split_off(j.texts.len());
                            let _ = j.reply.send(Ok(std::mem::replace(&mut all, rest)));
                        }
                    }
                    Err(e) => {
                        // One error for the whole batch: answer each job with it (texts are validated before they get here).
                        let msg = e.to_string();
                        for j in jobs {
                            let _ = j.reply.send(Err(TriageError::Model(msg.clone())));
                        }
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the inference thread");
        }
        Self { tx, slots: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Texts waiting or being judged.
    pub fn depth(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Judges texts (already validated), in order.
    pub async fn judge(&self, texts: Vec<String>) -> Result<Vec<Judgement>, QueueError> {
        let n = u32::try_from(texts.len()).map_err(|_| QueueError::Full)?;
        let permit = match self.slots.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => {
                metrics::counter!("triage_overloaded_total").increment(1);
                return Err(QueueError::Full);
            }
            Err(TryAcquireError::Closed) => return Err(QueueError::Stopped),
        };
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { texts, reply, _permit: permit }).map_err(|_| QueueError::Stopped)?;
        Ok(rx.await.map_err(|_| QueueError::Stopped)??)
    }
}
