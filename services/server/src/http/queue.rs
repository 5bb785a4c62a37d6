//! The bounded inference queue. Requests put their texts on it and wait; one
//! worker thread judges them and answers each request. The queue holds at
//! most `capacity` texts: a request that would overflow it is refused at once
//! (503 with a `Retry-After` from the measured drain rate) instead of piling
//! up latency and memory.
//!
//! The worker takes texts round robin over the requests waiting, one text of
//! each in turn (up to `max_batch` per encoder pass), so a 64-item batch
//! delays a single text by at most one of its texts, not all of them. A
//! request whose caller has gone (its future dropped: the client closed the
//! connection or the request timed out) is dropped before its next text is
//! judged, with the rest of its texts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use triage_risk::{Judgement, Triage, TriageError};

/// Seconds per encoder token assumed until the first measurement: a
/// 5,000-character text (about 5,000 tokens) took 8.3 s on two cores.
const SEED_SECS_PER_TOKEN: f64 = 0.002;
/// Weight of the newest measurement in the running drain rate.
const RATE_WEIGHT: f64 = 0.2;
/// Longest `Retry-After` given, in seconds.
const MAX_RETRY_AFTER: u64 = 300;

struct Part {
    /// Position in the request.
    index: usize,
    text: String,
    /// Encoder tokens (`Triage::cost`).
    cost: usize,
}

struct Job {
    id: u64,
    pending: VecDeque<Part>,
    done: Vec<Option<Judgement>>,
    reply: oneshot::Sender<Result<Vec<Judgement>, TriageError>>,
    _permit: OwnedSemaphorePermit,
}

impl Job {
    fn pending_cost(&self) -> usize {
        self.pending.iter().map(|p| p.cost).sum()
    }
}

/// The drain rate, shared by the worker (which measures it) and the requests
/// (which turn it into `Retry-After`).
#[derive(Default)]
struct Drain {
    /// Tokens waiting or being judged.
    queued_tokens: AtomicUsize,
    /// Running mean of seconds per token, as f64 bits; 0 until measured.
    secs_per_token: AtomicU64,
}

impl Drain {
    fn rate(&self) -> f64 {
        match f64::from_bits(self.secs_per_token.load(Ordering::Relaxed)) {
            r if r > 0.0 => r,
            _ => SEED_SECS_PER_TOKEN,
        }
    }

    fn measured(&self, tokens: usize, secs: f64) {
        if tokens == 0 {
            return;
        }
        let now = secs / tokens as f64;
        let old = f64::from_bits(self.secs_per_token.load(Ordering::Relaxed));
        let next = if old > 0.0 { old + RATE_WEIGHT * (now - old) } else { now };
        self.secs_per_token.store(next.to_bits(), Ordering::Relaxed);
    }

    fn done(&self, tokens: usize) {
        // Never below zero, whatever the order of updates.
        let _ =
            self.queued_tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| Some(q.saturating_sub(tokens)));
    }

    /// Seconds until what is queued now has been judged.
    fn retry_after(&self) -> u64 {
        let secs = self.queued_tokens.load(Ordering::Relaxed) as f64 * self.rate();
        (secs.ceil() as u64).clamp(1, MAX_RETRY_AFTER)
    }
}

#[derive(Clone)]
pub struct InferenceQueue {
    triage: Arc<Triage>,
    tx: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
    drain: Arc<Drain>,
    next_id: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the inference queue is full")]
    Full {
        /// Seconds until the queue has drained, at the measured rate.
        retry_after: u64,
    },
    #[error("the inference worker has stopped")]
    Stopped,
    #[error(transparent)]
    Triage(#[from] TriageError),
}

impl InferenceQueue {
    /// Starts the worker thread; it ends when the last queue handle is dropped.
    pub fn start(triage: Arc<Triage>, capacity: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let drain = Arc::new(Drain::default());
        let (t, d) = (triage.clone(), drain.clone());
        let spawned = std::thread::Builder::new().name("inference".into()).spawn(move || work(rx, &t, max_batch, &d));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the inference thread");
        }
        Self { triage, tx, slots: Arc::new(Semaphore::new(capacity)), capacity, drain, next_id: Arc::default() }
    }

    /// Texts waiting or being judged.
    pub fn depth(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// What judging these texts costs, in encoder tokens.
    pub fn cost<S: AsRef<str>>(&self, texts: &[S]) -> usize {
        texts.iter().map(|t| self.triage.cost(t.as_ref())).sum()
    }

    /// Judges texts (already validated), in order. Dropping the returned
    /// future takes the texts not yet judged off the queue.
    pub async fn judge(&self, texts: Vec<String>) -> Result<Vec<Judgement>, QueueError> {
        let n = u32::try_from(texts.len()).map_err(|_| QueueError::Full { retry_after: MAX_RETRY_AFTER })?;
        let pending: VecDeque<Part> = texts
            .into_iter()
            .enumerate()
            .map(|(index, text)| Part { index, cost: self.triage.cost(&text), text })
            .collect();
        // Counted in the drain time before they count in the depth, so that no
        // request sees them in the queue but not in its Retry-After.
        let cost: usize = pending.iter().map(|p| p.cost).sum();
        self.drain.queued_tokens.fetch_add(cost, Ordering::Relaxed);
        let permit = match self.slots.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(e) => {
                self.drain.done(cost);
                return Err(match e {
                    TryAcquireError::NoPermits => {
                        metrics::counter!("triage_overloaded_total").increment(1);
                        QueueError::Full { retry_after: self.drain.retry_after() }
                    }
                    TryAcquireError::Closed => QueueError::Stopped,
                });
            }
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            done: (0..pending.len()).map(|_| None).collect(),
            pending,
            reply,
            _permit: permit,
        };
        if self.tx.send(job).is_err() {
            self.drain.done(cost);
            return Err(QueueError::Stopped);
        }
        Ok(rx.await.map_err(|_| QueueError::Stopped)??)
    }
}

/// The worker: round robin over the requests waiting, until every queue handle is gone.
fn work(mut rx: mpsc::UnboundedReceiver<Job>, triage: &Triage, max_batch: usize, drain: &Drain) {
    let mut active: VecDeque<Job> = VecDeque::new();
    loop {
        if active.is_empty() {
            match rx.blocking_recv() {
                Some(j) => active.push_back(j),
                None => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            active.push_back(j);
        }
        active.retain(|j| {
            if j.reply.is_closed() {
                metrics::counter!("triage_cancelled_texts_total").increment(j.pending.len() as u64);
                drain.done(j.pending_cost());
            }
            !j.reply.is_closed()
        });
        // One text of each request in turn; a request goes to the back once it has given one.
        let take = max_batch.min(active.iter().map(|j| j.pending.len()).sum());
        let mut picked: Vec<(u64, Part)> = Vec::with_capacity(take);
        while picked.len() < take {
            let Some(mut j) = active.pop_front() else { break };
            if let Some(p) = j.pending.pop_front() {
                picked.push((j.id, p));
            }
            active.push_back(j);
        }
        if picked.is_empty() {
            continue;
        }
        let texts: Vec<&str> = picked.iter().map(|(_, p)| p.text.as_str()).collect();
        let cost: usize = picked.iter().map(|(_, p)| p.cost).sum();
        metrics::histogram!("triage_inference_batch_texts").record(texts.len() as f64);
        let started = Instant::now();
        let result = triage.judge_batch(&texts);
        let secs = started.elapsed().as_secs_f64();
        metrics::histogram!("triage_inference_seconds").record(secs);
        drain.measured(cost, secs);
        drain.done(cost);
        match result {
            Ok(judgements) => {
                for ((id, p), j) in picked.into_iter().zip(judgements) {
                    if let Some(job) = active.iter_mut().find(|job| job.id == id) {
                        job.done[p.index] = Some(j);
                    }
                }
            }
            Err(e) => {
                // Texts are validated before they get here: an error is the model's, and fails each request it touched.
                let msg = e.to_string();
                for (id, _) in picked {
                    if let Some(pos) = active.iter().position(|job| job.id == id) {
                        if let Some(job) = active.remove(pos) {
                            drain.done(job.pending_cost());
                            let _ = job.reply.send(Err(TriageError::Model(msg.clone())));
                        }
                    }
                }
            }
        }
        let mut i = 0;
        while i < active.len() {
            if active[i].pending.is_empty() && active[i].done.iter().all(Option::is_some) {
                if let Some(job) = active.remove(i) {
                    let _ = job.reply.send(Ok(job.done.into_iter().flatten().collect()));
                }
            } else {
                i += 1;
            }
        }
    }
}
