//! Timestamps on the wire: RFC 3339 (`2026-11-20T09:30:00+08:00`), or a plain
//! date (`2026-11-20`) or local date-time (`2020/1/6 12:09:38`), read in China
//! Standard Time (UTC+8) because that is how the case platform's forms and
//! exports record workflow dates.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<FixedOffset>);

#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid date {0:?}: expected RFC 3339 (2026-11-20T09:30:00+08:00) or a date (2026-11-20)")]
pub struct InvalidDate(pub String);

const CST_SECONDS: i32 = 8 * 3600;

impl Timestamp {
    pub fn unix(self) -> i64 {
        self.0.timestamp()
    }

    pub fn from_unix(secs: i64) -> Option<Self> {
        let tz = FixedOffset::east_opt(CST_SECONDS)?;
        tz.timestamp_opt(secs, 0).single().map(Timestamp)
    }

    pub fn now() -> Self {
        let tz = FixedOffset::east_opt(CST_SECONDS).expect("valid offset");
        Timestamp(chrono::Utc::now().with_timezone(&tz))
    }
}

impl FromStr for Timestamp {
    type Err = InvalidDate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(t));
        }
        let tz = FixedOffset::east_opt(CST_SECONDS).expect("valid offset");
        // Local date-times as the platform's exports write them (2020/1/6 12:09:38), read as UTC+8.
        let local = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok());
        let local = match local {
            Some(t) => t,
            None => ["%Y-%m-%d", "%Y/%m/%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .ok_or_else(|| InvalidDate(s.to_string()))?,
        };
        tz.from_local_datetime(&local).single().map(Timestamp).ok_or_else(|| InvalidDate(s.to_string()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_rfc3339_parse() {
        let a: Timestamp = "2026-11-20".parse().unwrap();
        let b: Timestamp = "2026-11-20T00:00:00+08:00".parse().unwrap();
        assert_eq!(a.unix(), b.unix());
        let c: Timestamp = "2026-11-19T16:00:00Z".parse().unwrap();
        assert_eq!(a.unix(), c.unix());
        assert!("20/11/2026".parse::<Timestamp>().is_err());
        let d: Timestamp = "2020/1/6 12:09:38".parse().unwrap();
        assert_eq!(d.to_string(), "2020-01-06T12:09:38+08:00");
        assert!("2026-13-01".parse::<Timestamp>().is_err());
        assert_eq!(Timestamp::from_unix(a.unix()).unwrap().unix(), a.unix());
    }
}
