//! Evaluation jobs: `POST /v1/evals` takes a labelled JSON Lines set and a
//! worker of its own judges it, beside live traffic and below it. The job
//! never takes a slot of the inference queue (so it cannot push a live
//! request into 503): it runs on a one-thread rayon pool whose thread has the
//! lowest CPU priority, in small batches, and waits while live texts are
//! queued. Reports are kept in `<data-dir>/evals/<id>.json` and survive a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use triage_eval::Scored;
use triage_proto::time::Timestamp;
use triage_proto::{ErrorBody, ErrorCode, EvalJob, EvalList, EvalStatus, EvalSummary};
use triage_queue::InferenceQueue;
use triage_risk::data::{parse_labelled, Example};
use triage_risk::{Judge, TriageError};

use super::error::{ApiError, ApiResult};
use super::service::Service;
use super::AppState;

/// Largest set accepted, in bytes (the dev set is 0.2 MB).
pub const MAX_EVAL_BYTES: usize = 16 * 1024 * 1024;
/// Most labelled texts in one set.
pub const MAX_EVAL_TEXTS: usize = 10_000;
/// Most jobs waiting or running; one runs at a time, the others wait as `queued`.
pub const MAX_EVAL_JOBS: usize = 4;
/// Texts judged between two looks at the live queue: one batch is the most a
/// live request can find the eval thread busy with.
const BATCH: usize = 4;
/// How long the job waits before it looks at the live queue again.
const YIELD: Duration = Duration::from_millis(5);
/// The eval thread's nice value: the scheduler gives the live worker's threads (nice 0) about 70 times its share.
const NICE: i32 = 19;
const DEFAULT_NAME: &str = "upload.jsonl";
const MAX_NAME: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EvalsError {
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("in {}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing a report")]
    Write(#[source] serde_json::Error),
    #[error("starting the evaluation thread")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Judge(#[from] TriageError),
}

fn io(what: &'static str, path: &FsPath) -> impl FnOnce(std::io::Error) -> EvalsError {
    let path = path.to_path_buf();
    move |source| EvalsError::Io { what, path, source }
}

/// What is kept on disk per job.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    summary: EvalSummary,
    report: Option<serde_json::Value>,
}

struct Work {
    id: String,
    examples: Vec<Example>,
}

struct Shared {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<String, EvalSummary>>,
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, BTreeMap<String, EvalSummary>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes a job's file whole (through a temporary file), so a crash never leaves half a report.
    fn save(&self, summary: &EvalSummary, report: Option<serde_json::Value>) -> Result<(), EvalsError> {
        let path = self.path(&summary.id);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string(&Stored { summary: summary.clone(), report }).map_err(EvalsError::Write)?;
        std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
        Ok(())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut EvalSummary)) -> Option<EvalSummary> {
        let mut jobs = self.jobs();
        let s = jobs.get_mut(id)?;
        f(s);
        Some(s.clone())
    }
}

/// The evaluation jobs of one service: their summaries, and the worker.
pub struct Evals {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Work>,
    model_version: String,
    /// The last id's milliseconds: ids are the creation time, made strictly increasing.
    last_id: AtomicU64,
}

impl Evals {
    /// Loads earlier jobs from `dir` and starts the worker thread. A job that
    /// was waiting or running when the service stopped is marked failed: its
    /// set was held in memory only.
    pub fn start(dir: PathBuf, service: &Service) -> Result<Self, EvalsError> {
        let (judge, live) = (service.judge_handle().clone(), service.queue().clone());
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let shared = Arc::new(Shared { dir: dir.clone(), jobs: Mutex::new(BTreeMap::new()) });
        let mut last = 0;
        for (mut summary, report) in load(&dir)? {
            last = last.max(summary.id.trim_start_matches("ev-").parse().unwrap_or(0));
            if matches!(summary.status, EvalStatus::Queued | EvalStatus::Running) {
                summary.status = EvalStatus::Failed;
                summary.position = None;
                summary.error = Some("the service stopped before this job finished; upload the set again".into());
                shared.save(&summary, report)?;
            }
            shared.jobs().insert(summary.id.clone(), summary);
        }
        let (tx, rx) = mpsc::channel::<Work>();
        let model_version = judge.model_version().to_string();
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("eval".into())
            .spawn(move || run_worker(rx, worker, judge, live))
            .map_err(EvalsError::Thread)?;
        Ok(Self { shared, tx, model_version, last_id: AtomicU64::new(last) })
    }

    /// `ev-` and the creation time in milliseconds, one more than the last id
    /// when two come in the same millisecond, so that ids sort by creation.
    fn new_id(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let prev = self.last_id.fetch_max(now, Ordering::SeqCst);
        let id = if prev >= now { self.last_id.fetch_add(1, Ordering::SeqCst) + 1 } else { now };
        format!("ev-{id:014}")
    }

    fn summaries(&self) -> Vec<EvalSummary> {
        let jobs = self.shared.jobs();
        let mut ahead = 0;
        // Ids sort by creation time, so the map's order is the queue's order.
        let mut out: Vec<EvalSummary> = jobs
            .values()
            .map(|s| {
                let mut s = s.clone();
                if s.status == EvalStatus::Queued {
                    s.position = Some(ahead);
                }
                if matches!(s.status, EvalStatus::Queued | EvalStatus::Running) {
                    ahead += 1;
                }
                s
            })
            .collect();
        out.reverse();
        out
    }
}

fn load(dir: &FsPath) -> Result<Vec<(EvalSummary, Option<serde_json::Value>)>, EvalsError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
        let path = entry.map_err(io("reading", dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let stored = read_stored(&path)?;
        out.push((stored.summary, stored.report));
    }
    Ok(out)
}

/// Lowers the calling thread's CPU priority (Linux: nice applies per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, NICE) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the evaluation thread's priority");
        }
    }
}

fn read_stored(path: &FsPath) -> Result<Stored, EvalsError> {
    let text = std::fs::read_to_string(path).map_err(io("reading", path))?;
    serde_json::from_str(&text).map_err(|source| EvalsError::Json { path: path.to_path_buf(), source })
}

fn run_worker(rx: mpsc::Receiver<Work>, shared: Arc<Shared>, judge: Arc<dyn Judge>, live: InferenceQueue) {
    // The encoder and candle's kernels run on the current rayon pool: inside
    // this one-thread pool the whole job stays on one low-priority thread
    // instead of the global pool the live worker uses.
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "eval-judge".into())
        .start_handler(|_| lower_priority())
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "could not start the evaluation pool; evaluation jobs will not run");
            return;
        }
    };
    while let Ok(work) = rx.recv() {
        let id = work.id.clone();
        let result = pool.install(|| run_job(&shared, judge.as_ref(), &live, work));
        if let Err(e) = result {
            tracing::error!(eval = %id, error = %e, "evaluation job failed");
            let failed = shared.update(&id, |s| {
                s.status = EvalStatus::Failed;
                s.finished_at = Some(Timestamp::now().to_string());
                s.error = Some(e.to_string());
            });
            if let Some(s) = failed {
                if let Err(e) = shared.save(&s, None) {
                    tracing::error!(eval = %id, error = %e, "could not save the evaluation job");
                }
            }
        }
    }
}

fn run_job(shared: &Shared, judge: &dyn Judge, live: &InferenceQueue, work: Work) -> Result<(), EvalsError> {
    let started = Instant::now();
    let Some(summary) = shared.update(&work.id, |s| s.status = EvalStatus::Running) else { return Ok(()) };
    tracing::info!(eval = %work.id, texts = work.examples.len(), "evaluation job started");
    let mut judged = Vec::with_capacity(work.examples.len());
    for chunk in work.examples.chunks(BATCH) {
        while live.depth() > 0 {
            std::thread::sleep(YIELD);
        }
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        judged.extend(judge.judge_batch(&texts)?);
        shared.update(&work.id, |s| s.done = judged.len());
    }
    let scored: Vec<Scored> = work.examples.iter().zip(&judged).map(|(e, j)| Scored::new(e, j)).collect();
    let m = triage_eval::compute(&scored);
    let report = triage_eval::report::json(&m, judge.model_version(), &summary.name, started.elapsed().as_secs_f64())
        .map_err(EvalsError::Write)?;
    let done = shared
        .update(&work.id, |s| {
            s.status = EvalStatus::Done;
            s.finished_at = Some(Timestamp::now().to_string());
            s.macro_f1 = Some(m.macro_f1);
            s.red_recall = Some(m.red_recall);
            s.under_triage = Some(m.under_triage);
        })
        .unwrap_or(summary);
    shared.save(&done, Some(report))?;
    tracing::info!(eval = %work.id, seconds = started.elapsed().as_secs_f64(), "evaluation job done");
    Ok(())
}

/// Reads the body up to `MAX_EVAL_BYTES`; past it, reads (and drops) a little
/// more so that a client still sending sees the 413 rather than a reset.
async fn read_limited(body: Body) -> ApiResult<Vec<u8>> {
    let mut body = body;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("could not read the body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen <= MAX_EVAL_BYTES {
            bytes.extend_from_slice(&data);
        } else if seen > 2 * MAX_EVAL_BYTES {
            break;
        }
    }
    if seen > MAX_EVAL_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the set is larger than the service accepts ({MAX_EVAL_BYTES} bytes)"),
        ));
    }
    Ok(bytes)
}

/// Evaluate the model on a labelled JSON Lines set (one `{"id", "text", "labels", "level", "source"?}` per
/// line, as `triage eval` reads). The job runs in the background at low priority; poll `GET /v1/evals/{id}`.
/// `?name=` names the set in the report. A malformed line is `invalid_line`, its message starting `line N:`.
#[utoipa::path(post, path = "/v1/evals", tag = "evals",
    params(("name" = Option<String>, Query, description = "the set's name, for people (default upload.jsonl)")),
    request_body(content = String, content_type = "application/x-ndjson", description = "labelled JSON Lines, up to 16 MiB and 10,000 texts"),
    responses((status = 202, body = EvalSummary), (status = "4XX", body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too_many_evals: 4 jobs are waiting or running (with Retry-After)")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult<(StatusCode, Json<EvalSummary>)> {
    let name = match query.get("name").map(|n| n.trim()) {
        None | Some("") => DEFAULT_NAME.to_string(),
        Some(n) if n.chars().count() <= MAX_NAME && !n.chars().any(char::is_control) => n.to_string(),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("name must be at most {MAX_NAME} characters without control characters"),
            ))
        }
    };
    let bytes = read_limited(body).await?;
    let examples = parse_labelled(&bytes).map_err(|e| ApiError::new(ErrorCode::InvalidLine, e.to_string()))?;
    if examples.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "the set has no labelled lines"));
    }
    if examples.len() > MAX_EVAL_TEXTS {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the set has {} texts; the limit is {MAX_EVAL_TEXTS}", examples.len()),
        ));
    }
    let evals = &state.evals;
    let id = evals.new_id();
    let summary = EvalSummary {
        id: id.clone(),
        status: EvalStatus::Queued,
        name,
        model_version: evals.model_version.clone(),
        total: examples.len(),
        done: 0,
        position: None,
        created_at: Timestamp::now().to_string(),
        finished_at: None,
        error: None,
        macro_f1: None,
        red_recall: None,
        under_triage: None,
    };
    {
        let mut jobs = evals.shared.jobs();
        let in_flight = jobs.values().filter(|s| matches!(s.status, EvalStatus::Queued | EvalStatus::Running)).count();
        if in_flight >= MAX_EVAL_JOBS {
            return Err(ApiError {
                code: ErrorCode::TooManyEvals,
                message: format!("{in_flight} evaluation jobs are waiting or running; the limit is {MAX_EVAL_JOBS}"),
                retry_after: Some(60),
            });
        }
        jobs.insert(id.clone(), summary.clone());
    }
    let saved = evals.shared.save(&summary, None);
    let sent = saved.map_err(ApiError::internal).and_then(|()| {
        evals
            .tx
            .send(Work { id: id.clone(), examples })
            .map_err(|_| ApiError::internal("the evaluation thread has stopped"))
    });
    if let Err(e) = sent {
        evals.shared.jobs().remove(&id);
        let _ = std::fs::remove_file(evals.shared.path(&id));
        return Err(e);
    }
    let summary = evals.summaries().into_iter().find(|s| s.id == id).unwrap_or(summary);
    Ok((StatusCode::ACCEPTED, Json(summary)))
}

/// A job: its status and progress, and once done the same JSON as `triage eval --json` in `report`.
#[utoipa::path(get, path = "/v1/evals/{id}", tag = "evals", params(("id" = String, Path)),
    responses((status = 200, body = EvalJob), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Json<EvalJob>> {
    let evals = &state.evals;
    let summary = evals
        .summaries()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownEval, format!("no evaluation job with id {id:?}")))?;
    let report = if summary.status == EvalStatus::Done {
        let path = evals.shared.path(&id);
        let stored = tokio::task::spawn_blocking(move || read_stored(&path))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        stored.report
    } else {
        None
    };
    Ok(Json(EvalJob { summary, report }))
}

/// Earlier and current jobs, newest first, each with its model version and headline figures.
#[utoipa::path(get, path = "/v1/evals", tag = "evals",
    params(("model_version" = Option<String>, Query, description = "only the jobs run with this model version")),
    responses((status = 200, body = EvalList)), security(("bearer" = [])))]
pub async fn list(State(state): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>) -> Json<EvalList> {
    let mut evals = state.evals.summaries();
    if let Some(v) = query.get("model_version") {
        evals.retain(|s| &s.model_version == v);
    }
    Json(EvalList { evals })
}
