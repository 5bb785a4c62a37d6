//! The queue on a stand-in judge that the test holds at the gate, so that
//! what is waiting when the worker picks is known.

use std::sync::mpsc;
use std::time::Duration;

use triage_proto::RiskLevel;
use triage_risk::model::{Decision, Scores};

use super::*;

/// Judges at once, or, when gated, one call per permit the test sends.
/// `fail` is a model error; `panic` panics.
struct Fake {
    /// Each text, as its call starts.
    seen: Mutex<Vec<String>>,
    /// How many texts each call was given.
    calls: Mutex<Vec<usize>>,
    gate: Option<Mutex<mpsc::Receiver<()>>>,
    /// Tokens a text costs; 0 for its length in bytes.
    cost: usize,
}

impl Fake {
    fn new(cost: usize) -> Arc<Self> {
        Arc::new(Self { seen: Mutex::default(), calls: Mutex::default(), gate: None, cost })
    }

    fn gated(cost: usize) -> (Arc<Self>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        (Arc::new(Self { seen: Mutex::default(), calls: Mutex::default(), gate: Some(Mutex::new(rx)), cost }), tx)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A judgement that names its text, so answers can be matched to questions.
fn judgement(text: &str) -> Judgement {
    Judgement {
        labels: Vec::new(),
        level: RiskLevel::Blue,
        reasons: vec![text.to_string()],
        evidence: Vec::new(),
        model_version: "fake".into(),
        embedding: Vec::new(),
        decision: Decision {
            scores: Scores { labels: [0.0; 5], level: [0.0; 3] },
            thresholds: [0.5; 5],
            flagged: [false; 5],
            level: RiskLevel::Blue,
            forced_label: None,
        },
    }
}

impl Judge for Fake {
    fn judge_batch(&self, texts: &[&str]) -> Result<Vec<Judgement>, TriageError> {
        self.seen.lock().unwrap().extend(texts.iter().map(|t| t.to_string()));
        self.calls.lock().unwrap().push(texts.len());
        if let Some(gate) = &self.gate {
            gate.lock().unwrap().recv_timeout(Duration::from_secs(10)).expect("the test never opened the gate");
        }
        if texts.contains(&"panic") {
            panic!("a stand-in judge panicking on purpose");
        }
        if texts.contains(&"fail") {
            return Err(TriageError::Model("the stand-in judge failed on purpose".into()));
        }
        Ok(texts.iter().map(|t| judgement(t)).collect())
    }

    fn cost(&self, text: &str) -> usize {
        if self.cost == 0 {
            text.len()
        } else {
            self.cost
        }
    }

    fn model_version(&self) -> &str {
        "fake"
    }
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn named(js: Vec<Judgement>) -> Vec<String> {
    js.into_iter().map(|j| j.reasons[0].clone()).collect()
}

/// Waits (without holding the runtime) until `done` holds, for at most 5 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "waited 5 s for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_single_text_waits_behind_one_text_of_a_batch_not_all_of_it() {
    let (fake, gate) = Fake::gated(1);
    let q = InferenceQueue::start(fake.clone(), 16, Batching::ONE);
    let batch = tokio::spawn({
        let q = q.clone();
        async move { q.judge(texts("a", 5)).await }
    });
    until("the batch's first text to be judged", || fake.seen().len() == 1).await;
    let single = tokio::spawn({
        let q = q.clone();
        async move { q.judge(vec!["b0".into()]).await }
    });
    until("the single text to be queued", || q.depth() == 6).await;
    for _ in 0..6 {
        gate.send(()).unwrap();
    }
    assert_eq!(named(single.await.unwrap().unwrap()), ["b0"]);
    assert_eq!(named(batch.await.unwrap().unwrap()), texts("a", 5), "answers in the order asked");
    assert_eq!(fake.seen(), ["a0", "a1", "b0", "a2", "a3", "a4"]);
    assert_eq!(q.depth(), 0);
    assert_eq!(q.health(), Health::Running);
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_with_the_time_to_drain_it() {
    let (fake, gate) = Fake::gated(1000);
    let q = InferenceQueue::start(fake.clone(), 4, Batching::ONE);
    let first = tokio::spawn({
        let q = q.clone();
        async move { q.judge(texts("a", 3)).await }
    });
    until("the first text to be judged", || fake.seen().len() == 1).await;
    // 3,000 tokens queued at the assumed 2 ms a token.
    match q.judge(texts("b", 2)).await {
        Err(QueueError::Full { retry_after }) => assert_eq!(retry_after, 6),
        other => panic!("two more texts in a queue of 4 holding 3: {other:?}"),
    }
    assert_eq!(q.drain.queued_tokens.load(Ordering::Relaxed), 3000, "the refused texts are not counted");
    // One more still fits.
    let last = tokio::spawn({
        let q = q.clone();
        async move { q.judge(vec!["c0".into()]).await }
    });
    until("the last text to be queued", || q.depth() == 4).await;
    for _ in 0..4 {
        gate.send(()).unwrap();
    }
    assert_eq!(named(first.await.unwrap().unwrap()).len(), 3);
    assert_eq!(named(last.await.unwrap().unwrap()), ["c0"]);
    assert_eq!(q.depth(), 0);
}

#[tokio::test]
async fn a_caller_that_goes_away_takes_its_texts_off_the_queue() {
    let (fake, gate) = Fake::gated(10);
    let q = InferenceQueue::start(fake.clone(), 16, Batching::ONE);
    let gone = tokio::spawn({
        let q = q.clone();
        async move { q.judge(texts("a", 10)).await }
    });
    until("the first text to be judged", || fake.seen().len() == 1).await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    gate.send(()).unwrap();
    until("the dropped texts to leave the queue", || q.depth() == 0).await;
    assert_eq!(q.drain.queued_tokens.load(Ordering::Relaxed), 0);
    gate.send(()).unwrap();
    assert_eq!(named(q.judge(vec!["b0".into()]).await.unwrap()), ["b0"]);
    assert_eq!(fake.seen(), ["a0", "b0"], "nothing of the caller that went away was judged after it went");
}

#[tokio::test]
async fn max_batch_texts_are_judged_in_one_call() {
    let fake = Fake::new(1);
    let q = InferenceQueue::start(fake.clone(), 16, Batching { max_texts: 3, max_tokens: usize::MAX });
    assert_eq!(named(q.judge(texts("a", 7)).await.unwrap()), texts("a", 7));
    assert_eq!(*fake.calls.lock().unwrap(), [3, 3, 1]);
    assert_eq!(q.cost(&texts("x", 5)), 5);
}

#[tokio::test]
async fn a_batch_ends_before_the_text_that_would_break_the_token_budget() {
    let fake = Fake::new(0);
    let q = InferenceQueue::start(fake.clone(), 16, Batching { max_texts: 8, max_tokens: 10 });
    let asked: Vec<String> = ["aaaa", "bbbb", "cccc", "dddddddddddd", "e", "f"].map(String::from).to_vec();
    assert_eq!(named(q.judge(asked.clone()).await.unwrap()), asked);
    // 4 + 4; then 4, as 4 + 12 would break 10; a text over the budget goes alone; then 1 + 1.
    assert_eq!(*fake.calls.lock().unwrap(), [2, 1, 1, 2]);
}

#[tokio::test]
async fn concurrent_requests_share_a_judge_call() {
    let (fake, gate) = Fake::gated(1);
    let q = InferenceQueue::start(fake.clone(), 16, Batching { max_texts: 4, max_tokens: 512 });
    let first = tokio::spawn({
        let q = q.clone();
        async move { q.judge(vec!["a0".into()]).await }
    });
    until("the first text to be judged", || fake.seen().len() == 1).await;
    let others: Vec<_> = ["b", "c", "d"]
        .map(|p| {
            let q = q.clone();
            tokio::spawn(async move { q.judge(texts(p, 2)).await })
        })
        .into_iter()
        .collect();
    until("the other requests to be queued", || q.depth() == 7).await;
    for _ in 0..3 {
        gate.send(()).unwrap();
    }
    assert_eq!(named(first.await.unwrap().unwrap()), ["a0"]);
    for (o, p) in others.into_iter().zip(["b", "c", "d"]) {
        assert_eq!(named(o.await.unwrap().unwrap()), texts(p, 2));
    }
    // One text of each request in turn, four a call.
    assert_eq!(*fake.calls.lock().unwrap(), [1, 4, 2]);
    assert_eq!(fake.seen(), ["a0", "b0", "c0", "d0", "b1", "c1", "d1"]);
}

#[tokio::test]
async fn a_model_error_fails_the_request_and_the_worker_goes_on() {
    let q = InferenceQueue::start(Fake::new(1), 16, Batching::ONE);
    match q.judge(vec!["ok".into(), "fail".into()]).await {
        Err(QueueError::Triage(TriageError::Model(m))) => assert!(m.contains("on purpose"), "{m}"),
        other => panic!("a failed judge call: {other:?}"),
    }
    assert_eq!(q.health(), Health::Running);
    assert_eq!(named(q.judge(vec!["next".into()]).await.unwrap()), ["next"]);
    assert_eq!(q.depth(), 0);
}

#[tokio::test]
async fn a_judge_that_panics_stops_the_worker_and_health_says_so() {
    let q = InferenceQueue::start(Fake::new(1), 16, Batching::ONE);
    assert_eq!(q.health(), Health::Running);
    assert!(matches!(q.judge(vec!["panic".into()]).await, Err(QueueError::Stopped)));
    // Already, not eventually: readiness must not answer ready to the next caller.
    match q.health() {
        Health::Stopped { reason } => assert!(reason.contains("panicked"), "{reason}"),
        Health::Running => unreachable!(),
    }
    assert!(matches!(q.judge(vec!["after".into()]).await, Err(QueueError::Stopped)), "refused at once");
    assert_eq!(q.depth(), 0);
}

/// A judge that answers fewer texts than it was given fails the request instead of leaving it waiting.
#[tokio::test]
async fn a_short_answer_is_an_error_not_a_hang() {
    struct Short;
    impl Judge for Short {
        fn judge_batch(&self, _: &[&str]) -> Result<Vec<Judgement>, TriageError> {
            Ok(Vec::new())
        }
        fn cost(&self, _: &str) -> usize {
            1
        }
        fn model_version(&self) -> &str {
            "short"
        }
    }
    let q: InferenceQueue = InferenceQueue::start(Arc::new(Short), 16, Batching::ONE);
    let r = tokio::time::timeout(Duration::from_secs(5), q.judge(vec!["x".into()])).await.expect("no answer");
    assert!(matches!(r, Err(QueueError::Triage(TriageError::Model(_)))), "{r:?}");
}
