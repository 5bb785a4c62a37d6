//! The bounded inference queue between the requests and a [`Judge`], on the
//! lines of text-embeddings-inference's `core` (`queue.rs`, `infer.rs`). A
//! crate of its own so that what holds it (the HTTP routes) can run on a
//! stand-in judge in tests, and so that it needs no web framework: it knows
//! texts, their cost, and one worker thread.
//!
//! Requests put their texts on the queue and wait; the worker judges them
//! and answers each request. The queue holds at most `capacity` texts: a
//! request that would overflow it is refused at once ([`QueueError::Full`],
//! with a retry delay from the measured drain rate) instead of piling up
//! latency and memory.
//!
//! The worker takes texts round robin over the requests waiting, one text of
//! each in turn, so a 64-item batch delays a single text by at most one of
//! its texts, not all of them. Texts taken together go to the judge in one
//! call, up to a number of texts and a budget of encoder tokens
//! ([`Batching`]), as text-embeddings-inference's queue does: concurrent
//! requests share an encoder pass, and a batch stays small enough for the
//! encoder's activations to stay in cache. A
//! request whose caller has gone (its future dropped: the client closed the
//! connection or the request timed out) is dropped before its next text is
//! judged, with the rest of its texts.
//!
//! A judge that panics ends the worker: every request waiting and every later
//! one gets [`QueueError::Stopped`], and [`InferenceQueue::health`] says so,
//! for readiness to report. The worker is not restarted: a model that panicked
//! once is not trusted with the next text, and the process is better replaced.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};
pub use triage_risk::Judge;
use triage_risk::{Judgement, TriageError};

/// Seconds per encoder token assumed until the first measurement:
/// deliberately pessimistic (about 20 times the int8 encoder's rate on two
/// cores), so that a `Retry-After` given before any text was judged errs long.
const SEED_SECS_PER_TOKEN: f64 = 0.002;
/// Weight of the newest measurement in the running drain rate.
const RATE_WEIGHT: f64 = 0.2;
/// Longest retry delay given, in seconds.
pub const MAX_RETRY_AFTER: u64 = 300;

/// How much one judge call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most texts in one call (at least 1).
    pub max_texts: usize,
    /// Most encoder tokens in one call (`Judge::cost`), except that a text
    /// costlier than this on its own still goes, alone.
    pub max_tokens: usize,
}

impl Batching {
    /// One text a call.
    pub const ONE: Batching = Batching { max_texts: 1, max_tokens: usize::MAX };
}

struct Part {
    /// Position in the request.
    index: usize,
    text: String,
    /// Encoder tokens (`Judge::cost`).
    cost: usize,
}

struct Job {
    id: u64,
    pending: VecDeque<Part>,
    done: Vec<Option<Judgement>>,
    // Before `reply`, so that a job dropped unanswered frees its slots before
    // its caller hears `Stopped`: fields drop in the order they are declared.
    _permit: OwnedSemaphorePermit,
    reply: oneshot::Sender<Result<Vec<Judgement>, TriageError>>,
}

impl Job {
    fn pending_cost(&self) -> usize {
        self.pending.iter().map(|p| p.cost).sum()
    }

    /// Frees the job's slots, then answers: a caller that has its answer no
    /// longer counts in the depth.
    fn answer(self, result: Result<Vec<Judgement>, TriageError>) {
        let Job { reply, _permit: permit, .. } = self;
        drop(permit);
        let _ = reply.send(result);
    }
}

/// The drain rate, shared by the worker (which measures it) and the requests
/// (which turn it into a retry delay).
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

/// Whether the worker thread is there to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Judging, or waiting for texts.
    Running,
    /// The worker has ended and will not come back; requests get `Stopped`.
    Stopped {
        /// Why, for the log and for readiness; never a text.
        reason: String,
    },
}

/// What the worker reports to the queue handles.
struct Worker {
    stopped: Mutex<Option<String>>,
}

impl Worker {
    fn stop(&self, reason: &str) {
        let mut s = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        s.get_or_insert_with(|| reason.to_string());
    }

    fn health(&self) -> Health {
        match self.stopped.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            None => Health::Running,
            Some(reason) => Health::Stopped { reason: reason.clone() },
        }
    }
}

/// Marks the worker stopped when `work` ends, returning or unwinding. Made
/// after the jobs, so dropped before them: a caller told `Stopped` finds
/// the health saying so too.
struct Ending<'a> {
    worker: &'a Worker,
    slots: &'a Semaphore,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        // No new request may take a slot of a queue nobody drains.
        self.slots.close();
        if std::thread::panicking() {
            // The panic's own message goes to stderr through the panic hook.
            tracing::error!("the judge panicked; the inference worker has stopped");
            metrics::counter!("triage_inference_worker_panics_total").increment(1);
            self.worker.stop("the judge panicked");
        } else {
            self.worker.stop("the queue was shut down");
        }
    }
}

/// A handle on the queue; clones share it. The worker ends when the last handle is dropped.
pub struct InferenceQueue<J: Judge + ?Sized = dyn Judge> {
    judge: Arc<J>,
    tx: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
    drain: Arc<Drain>,
    next_id: Arc<AtomicU64>,
    worker: Arc<Worker>,
}

impl<J: Judge + ?Sized> Clone for InferenceQueue<J> {
    fn clone(&self) -> Self {
        Self {
            judge: self.judge.clone(),
            tx: self.tx.clone(),
            slots: self.slots.clone(),
            capacity: self.capacity,
            drain: self.drain.clone(),
            next_id: self.next_id.clone(),
            worker: self.worker.clone(),
        }
    }
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

impl<J: Judge + ?Sized> InferenceQueue<J> {
    /// Starts the worker thread: at most `capacity` texts waiting or being
    /// judged, and judge calls as large as `batching` allows.
    pub fn start(judge: Arc<J>, capacity: usize, batching: Batching) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let drain = Arc::new(Drain::default());
        let worker = Arc::new(Worker { stopped: Mutex::new(None) });
        let slots = Arc::new(Semaphore::new(capacity));
        let (j, d, w, s) = (judge.clone(), drain.clone(), worker.clone(), slots.clone());
        let spawned = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || work(rx, &*j, batching, &d, Ending { worker: &w, slots: &s }));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the inference thread");
            slots.close();
            worker.stop("the inference thread could not start");
        }
        Self { judge, tx, slots, capacity, drain, next_id: Arc::default(), worker }
    }

    /// Whether the worker is running.
    pub fn health(&self) -> Health {
        self.worker.health()
    }

    /// Texts waiting or being judged.
    pub fn depth(&self) -> usize {
        // A closed semaphore (a stopped worker) still counts its permits.
        self.capacity.saturating_sub(self.slots.available_permits())
    }

    /// What judging these texts costs, in encoder tokens.
    pub fn cost<S: AsRef<str>>(&self, texts: &[S]) -> usize {
        texts.iter().map(|t| self.judge.cost(t.as_ref())).sum()
    }

    /// Judges texts (already validated), in order. Dropping the returned
    /// future takes the texts not yet judged off the queue.
    pub async fn judge(&self, texts: Vec<String>) -> Result<Vec<Judgement>, QueueError> {
        let n = u32::try_from(texts.len()).map_err(|_| QueueError::Full { retry_after: MAX_RETRY_AFTER })?;
        let pending: VecDeque<Part> = texts
            .into_iter()
            .enumerate()
            .map(|(index, text)| Part { index, cost: self.judge.cost(&text), text })
            .collect();
        // Counted in the drain time before they count in the depth, so that no
        // request sees them in the queue but not in its retry delay.
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

/// The worker: round robin over the requests waiting, until every queue
/// handle is gone or the judge panics.
fn work<J: Judge + ?Sized>(
    mut rx: mpsc::UnboundedReceiver<Job>,
    judge: &J,
    batching: Batching,
    drain: &Drain,
    ending: Ending<'_>,
) {
    let mut active: VecDeque<Job> = VecDeque::new();
    let _ending = ending;
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
        // One text of each request in turn; a request goes to the back once it
        // has given one. The batch ends at the first text that would break the
        // token budget, rather than skipping to a cheaper one, so that order
        // stays fair; that text heads the next batch.
        let take = batching.max_texts.max(1).min(active.iter().map(|j| j.pending.len()).sum());
        let mut picked: Vec<(u64, Part)> = Vec::with_capacity(take);
        let mut tokens = 0usize;
        while picked.len() < take {
            let Some(j) = active.front_mut() else { break };
            let Some(next) = j.pending.front() else {
                active.rotate_left(1);
                continue;
            };
            if !picked.is_empty() && tokens.saturating_add(next.cost) > batching.max_tokens {
                break;
            }
            tokens = tokens.saturating_add(next.cost);
            if let Some(p) = j.pending.pop_front() {
                picked.push((j.id, p));
            }
            active.rotate_left(1);
        }
        if picked.is_empty() {
            continue;
        }
        let texts: Vec<&str> = picked.iter().map(|(_, p)| p.text.as_str()).collect();
        let cost: usize = picked.iter().map(|(_, p)| p.cost).sum();
        metrics::histogram!("triage_inference_batch_texts").record(texts.len() as f64);
        let started = Instant::now();
        let result = judge.judge_batch(&texts).and_then(|js| {
            // A judge that answers short would leave a request waiting for ever.
            if js.len() == texts.len() {
                Ok(js)
            } else {
                Err(TriageError::Model(format!("{} judgements for {} texts", js.len(), texts.len())))
            }
        });
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
                            job.answer(Err(TriageError::Model(msg.clone())));
                        }
                    }
                }
            }
        }
        let mut i = 0;
        while i < active.len() {
            if active[i].pending.is_empty() && active[i].done.iter().all(Option::is_some) {
                if let Some(mut job) = active.remove(i) {
                    let done = std::mem::take(&mut job.done).into_iter().flatten().collect();
                    job.answer(Ok(done));
                }
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
