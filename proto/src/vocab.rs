//! The labelling standard's vocabulary (`shared/spec/labels.md`): five labels,
//! four ordered risk levels. Their wire names are the product's contract.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// 暴力倾向
    Violence,
    /// 报复过激
    Retaliation,
    /// 自伤自杀
    SelfHarm,
    /// 群体性及越级
    Collective,
    /// 民生福祉
    Livelihood,
}

impl Label {
    pub const ALL: [Label; 5] =
        [Label::Violence, Label::Retaliation, Label::SelfHarm, Label::Collective, Label::Livelihood];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Violence => "violence",
            Label::Retaliation => "retaliation",
            Label::SelfHarm => "self_harm",
            Label::Collective => "collective",
            Label::Livelihood => "livelihood",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Label::Violence => "暴力倾向",
            Label::Retaliation => "报复过激",
            Label::SelfHarm => "自伤自杀",
            Label::Collective => "群体性及越级",
            Label::Livelihood => "民生福祉",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Threat labels are the ones that can carry a level to orange or red.
    pub fn is_threat(self) -> bool {
        self != Label::Livelihood
    }
}

/// Risk level, ordered blue < yellow < orange < red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// 蓝 / IV级: routine consultation, request or complaint
    Blue,
    /// 黄 / III级: no threat, a grievance likely to escalate
    Yellow,
    /// 橙 / II级: explicit threat without concrete specifics
    Orange,
    /// 红 / I级: imminent harm, concrete target plus a specific, or an act in progress
    Red,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 4] = [RiskLevel::Blue, RiskLevel::Yellow, RiskLevel::Orange, RiskLevel::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Blue => "blue",
            RiskLevel::Yellow => "yellow",
            RiskLevel::Orange => "orange",
            RiskLevel::Red => "red",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            RiskLevel::Blue => "蓝",
            RiskLevel::Yellow => "黄",
            RiskLevel::Orange => "橙",
            RiskLevel::Red => "红",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

impl FromStr for Label {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| UnknownName {
            kind: "label",
            value: s.to_string(),
            expected: Label::ALL.map(Label::as_str).join(", "),
        })
    }
}

impl FromStr for RiskLevel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RiskLevel::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| UnknownName {
            kind: "level",
            value: s.to_string(),
            expected: RiskLevel::ALL.map(RiskLevel::as_str).join(", "),
        })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknowns_are_rejected() {
        for l in Label::ALL {
            assert_eq!(l.as_str().parse::<Label>().unwrap(), l);
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{}\"", l.as_str()));
        }
        for l in RiskLevel::ALL {
            assert_eq!(l.as_str().parse::<RiskLevel>().unwrap(), l);
        }
        assert!("selfharm".parse::<Label>().is_err());
        assert!("purple".parse::<RiskLevel>().is_err());
        assert!(RiskLevel::Red > RiskLevel::Orange && RiskLevel::Yellow > RiskLevel::Blue);
    }
}
