//! The service the routes call, and what they share: from a request to an
//! answer, check the text and context, judge the text on the queue, look up
//! past cases, escalate by policy, store if asked. Used by `/v1/triage`,
//! `/v1/triage/batch`, `/v1/cases` and search. It knows the wire contract's
//! error codes but nothing of HTTP, and holds the judge only as a
//! `triage_risk::Judge`, so that the routes can be driven on a stand-in.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use triage_cases::{CaseFilter, CaseRecord, CaseStore, Hit, StoreProfile};
use triage_proto::time::Timestamp;
use triage_proto::{CaseContext, ErrorCode, Escalation, Label, RiskLevel, SimilarCase, TriageResponse};
use triage_queue::{Batching, Health, InferenceQueue, QueueError};
use triage_risk::policy::{Facts, PastCase, Workflow};
use triage_risk::{Judge, Judgement, Policy, TriageError};

use super::error::{ApiError, ApiResult};
use crate::filing::{Filing, ModelView, Origin};

/// Longest case id accepted.
const MAX_CASE_ID: usize = 200;

/// A request's context, checked and with the reporter hashed.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub reporter_hash: Option<String>,
    pub district: Option<String>,
    pub workflow: Workflow,
    pub now: i64,
}

pub fn where_(index: Option<usize>) -> String {
    index.map(|i| format!("items[{i}]: ")).unwrap_or_default()
}

/// The library's input contract (`triage_risk::judge::validate`), answered with its wire code.
pub fn check_text(text: &str, index: Option<usize>) -> ApiResult<()> {
    triage_risk::judge::validate(index.unwrap_or(0), text).map_err(|e| {
        let code = match e {
            TriageError::TextTooLong { .. } => ErrorCode::TextTooLong,
            _ => ErrorCode::EmptyText,
        };
        ApiError::new(code, format!("{}{e}", where_(index)))
    })
}

pub fn check_case_id(id: &str, index: Option<usize>) -> ApiResult<()> {
    if id.trim().is_empty() || id.len() > MAX_CASE_ID || id.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{}case_id must be 1 to {MAX_CASE_ID} bytes without control characters", where_(index)),
        ));
    }
    Ok(())
}

pub fn parse_time(field: &str, v: &Option<String>, index: Option<usize>) -> ApiResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => s
            .parse::<Timestamp>()
            .map(|t| Some(t.unix()))
            .map_err(|e| ApiError::new(ErrorCode::InvalidDate, format!("{}{field}: {e}", where_(index)))),
    }
}

pub fn parse_labels(v: &[String]) -> ApiResult<Vec<Label>> {
    let mut out: Vec<Label> = Vec::new();
    for s in v {
        let l: Label =
            s.parse().map_err(|e: triage_proto::UnknownName| ApiError::new(ErrorCode::UnknownLabel, e.to_string()))?;
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out.sort();
    Ok(out)
}

pub fn parse_level(s: &str) -> ApiResult<RiskLevel> {
    s.parse().map_err(|e: triage_proto::UnknownName| ApiError::new(ErrorCode::UnknownLevel, e.to_string()))
}

/// How the service is set up; see the `serve` flags.
pub struct ServiceConfig {
    pub policy: Policy,
    /// Where SIGHUP re-reads the policy from; none for the built-in policy.
    pub policy_path: Option<PathBuf>,
    /// Salt for reporter hashes.
    pub salt: Vec<u8>,
    /// Whether case texts are stored with the vectors.
    pub store_text: bool,
    /// Most texts waiting for or in inference.
    pub queue_size: usize,
    /// How many texts, and encoder tokens, one judge call may take.
    pub batching: Batching,
}

/// The judge behind its queue, the case store, and the escalation policy.
pub struct Service {
    judge: Arc<dyn Judge>,
    queue: InferenceQueue,
    store: Arc<dyn CaseStore>,
    /// The store's mean vector, which hybrid search centres queries on.
    store_profile: StoreProfile,
    policy: RwLock<Arc<Policy>>,
    policy_path: Option<PathBuf>,
    salt: Vec<u8>,
    store_text: bool,
}

impl Service {
    /// Starts the inference worker over `judge`.
    pub fn start(judge: Arc<dyn Judge>, store: Arc<dyn CaseStore>, config: ServiceConfig) -> Self {
        let queue = InferenceQueue::start(judge.clone(), config.queue_size, config.batching);
        Self {
            judge,
            queue,
            store,
            store_profile: StoreProfile::new(),
            policy: RwLock::new(Arc::new(config.policy)),
            policy_path: config.policy_path,
            salt: config.salt,
            store_text: config.store_text,
        }
    }

    /// The judge itself, for work that must not take the queue's slots (evaluation jobs).
    pub fn judge_handle(&self) -> &Arc<dyn Judge> {
        &self.judge
    }

    pub fn queue(&self) -> &InferenceQueue {
        &self.queue
    }

    pub fn store(&self) -> &dyn CaseStore {
        self.store.as_ref()
    }

    pub fn store_profile(&self) -> &StoreProfile {
        &self.store_profile
    }

    pub fn model_version(&self) -> &str {
        self.judge.model_version()
    }

    /// Whether the inference worker is there to judge.
    pub fn worker_health(&self) -> Health {
        self.queue.health()
    }

    /// What judging these texts costs, in encoder tokens.
    pub fn cost<S: AsRef<str>>(&self, texts: &[S]) -> usize {
        self.queue.cost(texts)
    }

    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the policy file; a file that does not parse is refused and the running policy kept.
    pub fn reload_policy(&self) {
        let Some(path) = &self.policy_path else {
            tracing::info!("SIGHUP: the policy is the built-in one; nothing to reload");
            return;
        };
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Policy::from_toml(&t).map_err(|e| e.to_string()));
        match loaded {
            Ok(p) => {
                let rules = p.rules.len();
                match self.policy.write() {
                    Ok(mut g) => *g = Arc::new(p),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(p),
                }
                tracing::info!(path = %path.display(), rules, "escalation policy reloaded");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "escalation policy NOT reloaded; keeping the running one")
            }
        }
    }

    /// Salted SHA-256 of a reporter id: equal ids match, the id itself is never kept.
    pub fn hash_reporter(&self, reporter: &str) -> String {
        triage_cases::reporter_hash(&self.salt, reporter)
    }

    pub fn context(&self, c: Option<&CaseContext>, index: Option<usize>) -> ApiResult<Context> {
        let Some(c) = c else { return Ok(Context { now: Timestamp::now().unix(), ..Default::default() }) };
        let workflow = Workflow {
            received_at: parse_time("received_at", &c.received_at, index)?,
            accepted_at: parse_time("accepted_at", &c.accepted_at, index)?,
            met_at: parse_time("met_at", &c.met_at, index)?,
            resolved_at: parse_time("resolved_at", &c.resolved_at, index)?,
            closed_at: parse_time("closed_at", &c.closed_at, index)?,
        };
        let now = parse_time("as_of", &c.as_of, index)?.unwrap_or_else(|| Timestamp::now().unix());
        Ok(Context {
            reporter_hash: c.reporter.as_deref().filter(|r| !r.trim().is_empty()).map(|r| self.hash_reporter(r)),
            district: c.district.clone().filter(|d| !d.trim().is_empty()),
            workflow,
            now,
        })
    }

    /// Judges validated texts on the inference queue.
    pub async fn judge(&self, texts: Vec<String>) -> ApiResult<Vec<Judgement>> {
        self.queue.judge(texts).await.map_err(|e| match e {
            QueueError::Full { retry_after } => ApiError::overloaded(retry_after),
            QueueError::Stopped => ApiError::new(ErrorCode::NotReady, "the inference worker has stopped"),
            QueueError::Triage(e) => ApiError::internal(e),
        })
    }

    /// Past cases, escalation, and the answer (not yet stored).
    pub async fn assess(&self, j: &Judgement, case_id: Option<&str>, ctx: &Context) -> ApiResult<Assessment> {
        let policy = self.policy();
        let look = policy.lookups();
        let exclude = case_id.map(str::to_string);
        let similar_hits = self
            .store
            .search(
                &j.embedding,
                &CaseFilter { exclude_case_id: exclude.clone(), ..Default::default() },
                look.similar_top_k,
                Some(look.similar_min_score),
            )
            .await?;
        let same_reporter = match (&ctx.reporter_hash, look.repeat) {
            (Some(h), Some((days, min_sim, k))) => {
                let filter = CaseFilter {
                    reporter_hash: Some(h.clone()),
                    received_from: Some(ctx.now - days * 86_400),
                    exclude_case_id: exclude,
                    ..Default::default()
                };
                self.store.search(&j.embedding, &filter, k, Some(min_sim)).await?
            }
            _ => Vec::new(),
        };
        let flagged = j.flagged_labels();
        let facts = Facts {
            base_level: j.level,
            flagged: flagged.clone(),
            now: ctx.now,
            workflow: ctx.workflow,
            similar: similar_hits.iter().map(past).collect(),
            same_reporter: same_reporter.iter().map(past).collect(),
        };
        let outcome = policy.escalate(&facts);
        let similar = similar_hits
            .iter()
            .map(|h| SimilarCase {
                case_id: h.case.case_id.clone(),
                score: h.score,
                level: h.case.level,
                risk_level: h.case.risk(),
                escalations: h.case.escalations.clone(),
                labels: h.case.labels.clone(),
                district: h.case.district.clone(),
                received_at: h.case.received_at.and_then(Timestamp::from_unix).map(|t| t.to_string()),
                same_reporter: ctx.reporter_hash.is_some() && h.case.reporter_hash == ctx.reporter_hash,
            })
            .collect();
        Ok(Assessment {
            level: outcome.level,
            risk_level: outcome.risk_level,
            escalations: outcome.escalations,
            similar,
            flagged,
        })
    }

    pub fn record(&self, case_id: &str, text: &str, j: &Judgement, filing: Filing, ctx: &Context) -> CaseRecord {
        let origin = Origin {
            district: ctx.district.clone(),
            reporter_hash: ctx.reporter_hash.clone(),
            received_at: ctx.workflow.received_at,
        };
        crate::filing::record(case_id, text, self.store_text, j, filing, origin, Timestamp::now().unix())
    }
}

fn past(h: &Hit) -> PastCase {
    PastCase {
        case_id: h.case.case_id.clone(),
        score: h.score,
        risk_level: h.case.risk(),
        received_at: h.case.received_at,
    }
}

impl Assessment {
    /// What the case is stored under: people's labels and level where sent, the model's otherwise.
    pub fn filing(&self, labels: Option<Vec<Label>>, level: Option<RiskLevel>) -> Filing {
        let model = ModelView {
            flagged: &self.flagged,
            level: self.level,
            risk_level: self.risk_level,
            escalations: &self.escalations,
        };
        Filing::new(model, labels, level)
    }
}

pub struct Assessment {
    pub level: RiskLevel,
    pub risk_level: RiskLevel,
    pub escalations: Vec<Escalation>,
    pub similar: Vec<SimilarCase>,
    pub flagged: Vec<Label>,
}

pub fn response(j: Judgement, a: Assessment, case_id: Option<String>, stored: bool) -> TriageResponse {
    metrics::counter!("triage_levels_total", "level" => a.level.as_str()).increment(1);
    for e in &a.escalations {
        metrics::counter!("triage_escalations_total", "rule" => e.rule.clone()).increment(1);
    }
    TriageResponse {
        case_id,
        labels: j.labels,
        level: a.level,
        base_level: j.level,
        escalations: a.escalations,
        reasons: j.reasons,
        evidence: j.evidence,
        similar: a.similar,
        stored,
        model_version: j.model_version,
    }
}
