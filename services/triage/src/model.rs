//! The trained risk model: standardiser, label heads with calibrated
//! thresholds, and the three level heads, saved as one small JSON file.
//!
//! Level structure (it holds for every example of the labelled sets): a text
//! with any threat label is orange or red, a text without one is blue or
//! yellow. So the level is decided in two steps: threat or not (the `threat`
//! head, or any flagged threat label), then red vs orange or yellow vs blue.

use serde::{Deserialize, Serialize};

use crate::label::{Label, RiskLevel};
use crate::logreg::LogReg;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Standardiser {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Standardiser {
    pub fn fit(rows: &[Vec<f32>]) -> Self {
        let d = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += *v as f64 / n;
            }
        }
        let mut var = vec![0f64; d];
        for r in rows {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (*v as f64 - m).powi(2) / n;
            }
        }
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            // A constant feature keeps scale 1 rather than dividing by zero.
            scale: var.iter().map(|&v| if v > 1e-12 { v.sqrt() as f32 } else { 1.0 }).collect(),
        }
    }

    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        x.iter().zip(&self.mean).zip(&self.scale).map(|((v, m), s)| (v - m) / s).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub model: LogReg,
    pub threshold: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heads {
    pub standardiser: Standardiser,
    /// In `Label::ALL` order.
    pub labels: Vec<Head>,
    pub threat: Head,
    /// Threat threshold for texts in which no threat cue fired: an implicit
    /// threat must be read by the model alone, so the bar is calibrated apart.
    pub threat_without_cue: f32,
    /// Red vs orange, among threats.
    pub red: Head,
    /// Yellow vs blue, among non-threats.
    pub yellow: Head,
}

/// The trained model shipped in the repository (`models/heads/risk.json`),
/// compiled in; `triage train` rewrites the file, so rebuild after training.
pub const BUILTIN_MODEL: &str = include_str!("../../../models/heads/risk.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskModel {
    /// Reported with every answer.
    pub version: String,
    /// Which encoder produced the embedding part of the features.
    pub encoder: String,
    pub embedding_dim: usize,
    pub cue_features: Vec<String>,
    /// The character n-gram reader whose probabilities sit between the
    /// sentence vector and the cue features (absent in models before 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_stack: Option<crate::tfidf::TextStack>,
    pub heads: Heads,
    /// How it was trained (data hash, seed, cross-validation figures).
    pub training: serde_json::Value,
}

impl RiskModel {
    pub fn builtin() -> Result<Self, serde_json::Error> {
        serde_json::from_str(BUILTIN_MODEL)
    }

    /// The heads' input for a text: its feature row (sentence vector, cue
    /// features) with the text stack's probabilities put in between.
    pub fn row(&self, text: &str, features: &[f32]) -> Vec<f32> {
        match &self.text_stack {
            Some(stack) => crate::tfidf::insert(features, self.embedding_dim, &stack.probs(text)),
            None => features.to_vec(),
        }
    }
}

/// Raw scores of one text.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    /// At least one threat cue fired (not suppressed) in the text.
    pub threat_cue: bool,
    /// A vague warning fired and no threat cue did (see `decide`).
    pub vague_warning_only: bool,
    /// The text ends saying the threat was withdrawn (see `decide`).
    pub withdrawn: bool,
    /// The text laughs after its last threat or mention cue (see `decide`).
    pub joking: bool,
    /// A vague warning shares a sentence with a fired threat cue (see `decide`).
    pub warning_with_act: bool,
    /// A threat cue is stated as the writer's own intent (see `decide`).
    pub intent_with_act: bool,
    /// A specific (time, means, gathering, in progress, place) fired in a text
    /// with a threat cue (see `may_be_red`).
    pub threat_with_specific: bool,
    /// Threat labels with a fired threat cue of their own (violence,
    /// retaliation, self_harm, collective).
    pub cue_labels: [bool; 4],
    /// The text names a brawl, drink, a spouse or a mental illness and no
    /// grievance (see `decide`).
    pub brawl_without_grievance: bool,
    pub labels: [f32; 5],
    pub threat: f32,
    pub red: f32,
    pub yellow: f32,
}

impl Scores {
    /// Whether the red head may make this threat red. labels.md: red needs a
    /// concrete target plus one specific (a set time, means in hand, people
    /// gathering, an act in progress, a named place). Where the lexicon read
    /// the threat (a threat or mention cue fired) but no specific, the red head's score
    /// is the threat's tone: by writers unseen, the threats it called red that
    /// way were 12 gold orange and 1 blue, none red (EVALUATION.md, risk-1.6).
    /// Where no threat cue fired, the lexicon did not read the threat at all,
    /// and its silence on specifics says nothing ("刚才隔着门说她把一瓶降压药
    /// 全吃了" is an act in progress in words it does not have).
    pub fn may_be_red(&self) -> bool {
        self.threat_with_specific || !self.threat_cue
    }

    /// Whether the text takes its threat back after making it: a withdrawal
    /// or a reconciliation, or a laugh (see `decide`).
    pub fn taken_back(&self) -> bool {
        self.withdrawn || self.joking
    }
}

/// What the heads decide for one text.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub scores: Scores,
    pub thresholds: [f32; 5],
    pub flagged: [bool; 5],
    pub level: RiskLevel,
    /// A threat label was flagged only because the level says threat.
    pub forced_label: Option<Label>,
    /// The threat head alone called it a threat, no threat cue fired and no
    /// label head backed it (`THREAT_LABEL_SUPPORT`), so it was not judged one.
    pub unsupported_threat: bool,
}

impl Heads {
    pub fn scores(&self, features: &[f32]) -> Scores {
        let x = self.standardiser.apply(features);
        let mut labels = [0f32; 5];
        for (s, h) in labels.iter_mut().zip(&self.labels) {
            *s = h.model.score(&x);
        }
        Scores {
            threat_cue: crate::features::has_threat_cue(features),
            vague_warning_only: crate::features::vague_warning_only(features),
            withdrawn: crate::features::withdrawn(features),
            joking: crate::features::joking(features),
            cue_labels: crate::features::threat_cue_labels(features),
            warning_with_act: crate::features::warning_with_act(features),
            intent_with_act: crate::features::intent_with_act(features),
            threat_with_specific: crate::features::threat_with_specific(features),
            brawl_without_grievance: crate::features::brawl_without_grievance(features),
            labels,
            threat: self.threat.model.score(&x),
            red: self.red.model.score(&x),
            yellow: self.yellow.model.score(&x),
        }
    }

    pub fn thresholds(&self) -> [f32; 5] {
        let mut t = [0.5f32; 5];
        for (t, h) in t.iter_mut().zip(&self.labels) {
            *t = h.threshold;
        }
        t
    }

    pub fn decide(&self, s: Scores) -> Decision {
        let t = LevelThresholds {
            threat: self.threat.threshold,
            threat_without_cue: self.threat_without_cue,
            red: self.red.threshold,
            yellow: self.yellow.threshold,
            label_support: THREAT_LABEL_SUPPORT,
        };
        decide(s, self.thresholds(), t)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LevelThresholds {
    pub threat: f32,
    pub threat_without_cue: f32,
    pub red: f32,
    pub yellow: f32,
    /// The share of its bar the label of a threat only the threat head saw
    /// must reach (`THREAT_LABEL_SUPPORT`; 0 while the threat bars are
    /// searched, see `calibrate::threat_thresholds`).
    pub label_support: f32,
}

/// Where the threat head alone calls a text a threat (no threat label over its
/// bar, no act rule) and no threat cue of any label fired (mentions such as
/// 上访 or 全体业主 are not threat cues), the label it would name must score
/// at least this share of its own bar. The threat head reads
/// tone; with no threat cue and every label head far under its bar, the text
/// names no act it could threaten. Out of fold on the training set, the
/// threat head's lone calls in texts with no threat cue were gold blue or
/// yellow 16 times and gold orange or red once by writer (11 and once on
/// random folds; those two threats' labels at 0.98 and 0.63 of their bars):
/// 0.3 leaves 8 and 7 of the wrong calls under it (family quarrels, a
/// scraped bumper, long letters of grievance). Where a threat cue fired the
/// lexicon has named the act, and the label heads of a short explicit threat
/// can sit low: the standard's own "大不了同归于尽" has retaliation at 0.28 of
/// its bar (EVALUATION.md, risk-1.10).
pub const THREAT_LABEL_SUPPORT: f32 = 0.3;

/// The decision rule, separate from the heads so calibration can search thresholds.
///
/// With a threat cue in the text, a flagged threat label or the threat head
/// makes it a threat. Without one, only the threat head can, against its own
/// (higher) bar: sentence vectors alone put chatty everyday text near threats.
/// A vague warning with no act named (别逼我, 后果自负) is never a threat: the
/// standard makes it yellow, while both readers take its anger for a threat
/// (half such training texts came out orange or red by writers unseen).
/// The same warning tied to an act in its sentence ("到时候别怪我把机器拆了")
/// is a threat, as labels.md says, whatever the heads score; so is an act
/// the writer states as their own intent ("我要报复社会").
/// Nor is a text that ends saying the threat was withdrawn or the parties
/// reconciled: labels.md judges it "as it stands now: usually blue"; nor one
/// that laughs after its threat words (哈哈, 😂: a joke among family or
/// friends, "再不戒烟我就跟他拼了 结果他今天真把烟扔了 哈哈").
/// Labels and level are kept consistent: no threat label below orange, and at
/// least one at orange or red. A threat is red only if the red head says so
/// and, where the lexicon read it, a specific fired (`Scores::may_be_red`).
/// Where the text names a brawl and no grievance, retaliation needs a revenge
/// cue of its own (`Scores::brawl_without_grievance`); where a revenge cue
/// fired and no violence cue did, violence needs one of its own. A threat
/// only the threat head saw, in a text where no threat cue fired, needs some
/// support from the label it would name (`THREAT_LABEL_SUPPORT`).
pub fn decide(s: Scores, thresholds: [f32; 5], t: LevelThresholds) -> Decision {
    let mut flagged = [false; 5];
    for i in 0..5 {
        flagged[i] = s.labels[i] >= thresholds[i];
    }
    // Harm to oneself and harm to others are different threats. Where the
    // text's threat cues all name other labels ("刀我已经揣身上了，我现在就去他家"),
    // a self-harm score without a self-harm cue of its own is the shared
    // threat tone, not a second threat (left out of fold by writer: 0 right,
    // 5 wrong). The other way round too: where the only threat cues are
    // self-harm ("今天不给说法就点了自己", 以死相逼 is leverage, not an attack),
    // violence and retaliation need cues of their own (0 right, 6 wrong).
    let own_cue = |l: Label| s.cue_labels.get(l.index()).copied().unwrap_or(false);
    let other_cue = Label::ALL.iter().any(|&l| l.is_threat() && l != Label::SelfHarm && own_cue(l));
    if other_cue && !own_cue(Label::SelfHarm) {
        flagged[Label::SelfHarm.index()] = false;
    }
    if own_cue(Label::SelfHarm) && !other_cue {
        for l in [Label::Violence, Label::Retaliation] {
            flagged[l.index()] = false;
        }
    }
    // labels.md: a brawl, or a threat used to coerce a spouse or parent with no
    // grievance behind it, is violence alone. Where the text names a brawl,
    // drink, a spouse or a mental illness, no grievance, and no revenge cue
    // fired, a retaliation score is the threat's tone (EVALUATION.md, risk-1.7).
    let no_revenge = s.brawl_without_grievance && !own_cue(Label::Retaliation);
    if no_revenge {
        flagged[Label::Retaliation.index()] = false;
    }
    // labels.md: violence is physical harm to people or property; a threat to
    // someone's peace without it ("这个年他家别想过安稳", 不让他好过, 让他付出代价)
    // is retaliation alone. Where revenge cues fired and no violence cue did,
    // a violence score is the revenge's tone, learnt from the many threats
    // that carry both (EVALUATION.md, risk-1.9). The lexicon's violence cues
    // include the standard's hints at harm (我知道他孩子在哪上学).
    let harm_unnamed = own_cue(Label::Retaliation) && !own_cue(Label::Violence);
    if harm_unnamed {
        flagged[Label::Violence.index()] = false;
    }
    // The two rules above also bar a label from naming a forced threat.
    let barred = |l: Label| (no_revenge && l == Label::Retaliation) || (harm_unnamed && l == Label::Violence);
    let threat_flagged = Label::ALL.iter().any(|l| l.is_threat() && flagged[l.index()]);
    // The label a threat without a flagged label is named by: the likeliest,
    // relative to its own threshold, among the labels whose own cues fired if
    // any did ("我就报复社会" is retaliation whatever the heads lean to).
    let any_cued = other_cue || own_cue(Label::SelfHarm);
    let ratio = |l: Label| s.labels[l.index()] / thresholds[l.index()].max(1e-3);
    let best = Label::ALL
        .into_iter()
        .filter(|&l| l.is_threat() && (!any_cued || own_cue(l)) && !barred(l))
        .max_by(|&a, &b| ratio(a).total_cmp(&ratio(b)))
        .expect("a label whose own cue fired is never barred, and without cues at most one is");
    // `THREAT_LABEL_SUPPORT`: the threat head's lone call needs that label behind it.
    let head_only = !threat_flagged && !s.warning_with_act && !s.intent_with_act;
    let judged = judged_threat(&s, threat_flagged, t);
    let unsupported_threat = judged && head_only && !any_cued && ratio(best) < t.label_support;
    let threat = judged && !unsupported_threat;
    let mut forced_label = None;
    let level = if threat {
        if !threat_flagged {
            flagged[best.index()] = true;
            forced_label = Some(best);
        }
        if s.red >= t.red && s.may_be_red() {
            RiskLevel::Red
        } else {
            RiskLevel::Orange
        }
    } else {
        for l in Label::ALL.into_iter().filter(|l| l.is_threat()) {
            flagged[l.index()] = false;
        }
        // labels.md: vague warnings with no act named (别逼我, 你等着瞧, 后果自负)
        // are yellow, and so is strong emotion; a withdrawal still makes it blue.
        if s.yellow >= t.yellow || (s.vague_warning_only && !s.taken_back()) {
            RiskLevel::Yellow
        } else {
            RiskLevel::Blue
        }
    };
    Decision { scores: s, thresholds, flagged, level, forced_label, unsupported_threat }
}

/// Threat or not: the standard's own rules first, then the heads against
/// their bars.
fn judged_threat(s: &Scores, threat_flagged: bool, t: LevelThresholds) -> bool {
    if s.taken_back() {
        return false; // judged as it stands now, or a joke
    }
    if s.warning_with_act || s.intent_with_act {
        return true; // a warning tied to an act, or an act stated as intent
    }
    if s.threat_cue {
        return threat_flagged || s.threat >= t.threat;
    }
    !s.vague_warning_only && s.threat >= t.threat_without_cue
}

#[cfg(test)]
mod tests;
