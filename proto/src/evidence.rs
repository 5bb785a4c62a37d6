//! Evidence: which characters of the text triggered which cue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::vocab::Label;

/// What a cue says about the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CueKind {
    /// Intent, threat or act for a threat label.
    Threat,
    /// A word that often accompanies a threat but is none by itself (集体, 汽油).
    Mention,
    /// A livelihood matter.
    Topic,
    SpecificTime,
    SpecificMeans,
    SpecificGathering,
    SpecificInProgress,
    SpecificPlace,
    VagueWarning,
    Repeat,
    Survival,
}

impl CueKind {
    pub fn is_specific(self) -> bool {
        matches!(
            self,
            CueKind::SpecificTime
                | CueKind::SpecificMeans
                | CueKind::SpecificGathering
                | CueKind::SpecificInProgress
                | CueKind::SpecificPlace
        )
    }
}

/// One span of the text that triggered a cue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The label the cue supports; absent for level cues (specifics, warnings, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    pub kind: CueKind,
    pub cue: String,
    /// Char offsets, end exclusive.
    pub start: usize,
    pub end: usize,
}
