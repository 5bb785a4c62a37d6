//! Escalation (提级): rules from `models/policy.toml` that raise a level with
//! context the text alone cannot show — repeat petitions, similar past cases
//! that escalated, 13715 time limits passed, collective action on a
//! livelihood matter. Rules only raise; each raise names its rule, the past
//! cases that caused it, and says why in Chinese. The policy is pure: the
//! caller looks up the past cases (see [`Policy::lookups`]) and passes them in
//! as [`Facts`].
//!
//! Rules are of two sorts. *Risk* rules read what the case says and who else
//! said it (repeat petitions, similar escalated cases, collective action);
//! the others (time limits) read only how the workflow went. Risk rules apply
//! first, so the level they reach — the case's *risk level* — is a step of the
//! chain and is what a later case's `similar_escalated` reads: a case raised
//! only for being late never makes its near-duplicates orange.

use serde::Deserialize;
use triage_proto::{Escalation, Label, RiskLevel};

/// The policy shipped in the repository, compiled in as the default.
pub const DEFAULT_POLICY: &str = include_str!("../../../models/policy.toml");

const DAY: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("escalation policy: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("escalation policy: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    pub similar: SimilarSettings,
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarSettings {
    pub top_k: usize,
    pub min_score: f32,
    /// The precision on the pairs set that `min_score` was chosen for.
    pub precision: Option<f32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub kind: RuleKind,
    #[serde(default = "one")]
    pub raise_by: usize,
    pub at_least: Option<RiskLevel>,
    #[serde(default = "orange")]
    pub at_most: RiskLevel,
    /// Whether a raise by this rule counts towards the case's risk level
    /// (default: every kind but `time_limit`, which may not count).
    pub risk: Option<bool>,
    /// The precision on the pairs set (`models/pairs`) that `min_similarity`
    /// was chosen for by `triage policy calibrate`; a test holds it.
    pub precision: Option<f32>,
}

impl Rule {
    pub fn counts_as_risk(&self) -> bool {
        self.risk.unwrap_or(!matches!(self.kind, RuleKind::TimeLimit { .. }))
    }

    /// The similarity threshold the rule reads, if any.
    pub fn min_similarity(&self) -> Option<f32> {
        match self.kind {
            RuleKind::RepeatPetition { min_similarity, .. } | RuleKind::SimilarEscalated { min_similarity, .. } => {
                Some(min_similarity)
            }
            _ => None,
        }
    }
}

fn one() -> usize {
    1
}
fn orange() -> RiskLevel {
    RiskLevel::Orange
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    RepeatPetition { min_cases: usize, within_days: i64, min_similarity: f32 },
    SimilarEscalated { min_similarity: f32, min_level: RiskLevel },
    TimeLimit { stage: Stage, days: i64 },
    CollectiveLivelihood,
}

/// The 13715 workflow stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Accept,
    Meet,
    Resolve,
    Close,
}

impl Stage {
    fn zh(self) -> &'static str {
        match self {
            Stage::Accept => "受理",
            Stage::Meet => "见面联系",
            Stage::Resolve => "解决",
            Stage::Close => "结案",
        }
    }
}

/// Workflow dates (Unix seconds) from the request's context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Workflow {
    pub received_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub met_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
}

impl Workflow {
    fn done_at(&self, s: Stage) -> Option<i64> {
        match s {
            Stage::Accept => self.accepted_at,
            Stage::Meet => self.met_at,
            Stage::Resolve => self.resolved_at,
            Stage::Close => self.closed_at,
        }
    }
}

/// A past case found by similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct PastCase {
    pub case_id: String,
    pub score: f32,
    /// Its risk level: the text's level raised by risk rules only, or the
    /// level people gave it (see [`Outcome::risk_level`]).
    pub risk_level: RiskLevel,
    pub received_at: Option<i64>,
}

/// Everything the rules read.
#[derive(Debug, Clone)]
pub struct Facts {
    pub base_level: RiskLevel,
    pub flagged: Vec<Label>,
    /// The moment time limits are judged at.
    pub now: i64,
    pub workflow: Workflow,
    /// Similar cases from any reporter (`[similar]` settings).
    pub similar: Vec<PastCase>,
    /// Similar cases by the same reporter (see [`Lookups::repeat`]); empty without a reporter.
    pub same_reporter: Vec<PastCase>,
}

/// The final level, the raises that led to it, and the level the risk rules
/// alone reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub level: RiskLevel,
    /// The text's level raised by risk rules only: what a later similar case reads.
    pub risk_level: RiskLevel,
    pub escalations: Vec<Escalation>,
}

/// What past cases the caller must look up for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookups {
    pub similar_top_k: usize,
    pub similar_min_score: f32,
    /// Same-reporter search: (received within this many days, minimum cosine, how many).
    pub repeat: Option<(i64, f32, usize)>,
}

impl Policy {
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let p: Policy = toml::from_str(text)?;
        p.check()?;
        Ok(p)
    }

    pub fn builtin() -> Result<Self, PolicyError> {
        Self::from_toml(DEFAULT_POLICY)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            if !seen.insert(r.id.as_str()) {
                return Err(PolicyError::Invalid(format!("rule id {:?} appears twice", r.id)));
            }
            if r.at_least.is_some_and(|l| l > r.at_most) {
                return Err(PolicyError::Invalid(format!("rule {:?}: at_least is above at_most", r.id)));
            }
            if r.risk == Some(true) && matches!(r.kind, RuleKind::TimeLimit { .. }) {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: a time-limit raise says nothing about the text and cannot count as risk",
                    r.id
                )));
            }
            if r.precision.is_some() && r.min_similarity().is_none() {
                return Err(PolicyError::Invalid(format!("rule {:?}: precision belongs to similarity rules", r.id)));
            }
            if r.precision.or(self.similar.precision).is_some_and(|p| !(0.0..=1.0).contains(&p)) {
                return Err(PolicyError::Invalid(format!("rule {:?}: precision must be in [0, 1]", r.id)));
            }
            let bad_sim = |s: f32| !(-1.0..=1.0).contains(&s);
            match &r.kind {
                RuleKind::RepeatPetition { min_cases, within_days, min_similarity }
                    if *min_cases == 0 || *within_days <= 0 || bad_sim(*min_similarity) =>
                {
                    return Err(PolicyError::Invalid(format!(
                        "rule {:?}: min_cases and within_days must be positive, min_similarity in [-1, 1]",
                        r.id
                    )));
                }
                RuleKind::SimilarEscalated { min_similarity, .. } if bad_sim(*min_similarity) => {
                    return Err(PolicyError::Invalid(format!("rule {:?}: min_similarity must be in [-1, 1]", r.id)));
                }
                RuleKind::TimeLimit { days, .. } if *days <= 0 => {
                    return Err(PolicyError::Invalid(format!("rule {:?}: days must be positive", r.id)));
                }
                _ => {}
            }
        }
        if self.similar.top_k == 0 || self.similar.top_k > triage_proto::MAX_TOP_K {
            return Err(PolicyError::Invalid(format!("similar.top_k must be 1 to {}", triage_proto::MAX_TOP_K)));
        }
        Ok(())
    }

    pub fn lookups(&self) -> Lookups {
        let repeat = self.rules.iter().find_map(|r| match r.kind {
            RuleKind::RepeatPetition { min_cases, within_days, min_similarity } => {
                Some((within_days, min_similarity, min_cases.max(10)))
            }
            _ => None,
        });
        // Similar-escalated rules read the `similar` list, so it must reach their threshold.
        let min_rule = self
            .rules
            .iter()
            .filter_map(|r| match r.kind {
                RuleKind::SimilarEscalated { min_similarity, .. } => Some(min_similarity),
                _ => None,
            })
            .fold(self.similar.min_score, f32::min);
        Lookups { similar_top_k: self.similar.top_k, similar_min_score: min_rule, repeat }
    }

    /// The final level and the raises that led to it: risk rules first, then
    /// the others, each group in file order.
    pub fn escalate(&self, f: &Facts) -> Outcome {
        let mut level = f.base_level;
        let mut escalations = Vec::new();
        let overdue = self.latest_overdue_stage(f);
        let (risk, other): (Vec<&Rule>, Vec<&Rule>) = self.rules.iter().partition(|r| r.counts_as_risk());
        let mut risk_level = level;
        for (rules, counts) in [(risk, true), (other, false)] {
            for rule in rules {
                let Some((reason, case_ids)) = self.fires(rule, f, overdue) else { continue };
                let to = raise(level, rule);
                if to > level {
                    escalations.push(Escalation {
                        from: level,
                        to,
                        rule: rule.id.clone(),
                        reason,
                        case_ids,
                        risk: counts,
                    });
                    level = to;
                }
            }
            if counts {
                risk_level = level;
            }
        }
        Outcome { level, risk_level, escalations }
    }

    /// The latest 13715 stage whose limit has passed, among the policy's time-limit rules.
    fn latest_overdue_stage(&self, f: &Facts) -> Option<Stage> {
        let received = f.workflow.received_at?;
        self.rules
            .iter()
            .filter_map(|r| match r.kind {
                RuleKind::TimeLimit { stage, days } => {
                    let deadline = received + days * DAY;
                    let late = match f.workflow.done_at(stage) {
                        Some(done) => done > deadline,
                        None => f.now > deadline,
                    };
                    late.then_some(stage)
                }
                _ => None,
            })
            .max()
    }

    /// Why the rule fires on these facts and the past cases that made it, or None.
    fn fires(&self, rule: &Rule, f: &Facts, overdue: Option<Stage>) -> Option<(String, Vec<String>)> {
        match &rule.kind {
            RuleKind::RepeatPetition { min_cases, within_days, min_similarity } => {
                let since = f.now - within_days * DAY;
                let ids: Vec<String> = f
                    .same_reporter
                    .iter()
                    .filter(|c| c.score >= *min_similarity && c.received_at.is_none_or(|t| t >= since))
                    .map(|c| c.case_id.clone())
                    .collect();
                let n = ids.len();
                (n >= *min_cases).then(|| {
                    let why = format!(
                        "同一信访人{within_days}天内已有{n}件相似诉求（相似度≥{min_similarity:.2}），属重复信访"
                    );
                    (why, ids)
                })
            }
            RuleKind::SimilarEscalated { min_similarity, min_level } => {
                let mut hits: Vec<&PastCase> =
                    f.similar.iter().filter(|c| c.score >= *min_similarity && c.risk_level >= *min_level).collect();
                hits.sort_by(|a, b| b.score.total_cmp(&a.score));
                let best = hits.first()?;
                let why = format!(
                    "相似历史案件{}（相似度{:.2}）按风险定为{}色预警",
                    best.case_id,
                    best.score,
                    best.risk_level.zh()
                );
                Some((why, hits.iter().map(|c| c.case_id.clone()).collect()))
            }
            RuleKind::TimeLimit { stage, days } => (overdue == Some(*stage)).then(|| {
                let state = match f.workflow.done_at(*stage) {
                    Some(_) => "逾期完成",
                    None => "至今未完成",
                };
                (format!("超过13715时限：应在收件后{days}日内{}，{state}", stage.zh()), Vec::new())
            }),
            RuleKind::CollectiveLivelihood => (f.flagged.contains(&Label::Collective)
                && f.flagged.contains(&Label::Livelihood))
            .then(|| ("涉及民生诉求的群体性行为或越级上访倾向".to_string(), Vec::new())),
        }
    }
}

fn raise(level: RiskLevel, rule: &Rule) -> RiskLevel {
    let by =
        RiskLevel::from_index((level.index() + rule.raise_by).min(RiskLevel::Red.index())).unwrap_or(RiskLevel::Red);
    let target = rule.at_least.map_or(by, |l| l.max(by));
    // Never above the cap, never below where the case already is.
    target.min(rule.at_most).max(level)
}

#[cfg(test)]
mod tests;
