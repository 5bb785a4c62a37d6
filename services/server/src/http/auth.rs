//! API keys and roles. The keys file holds names, roles and SHA-256 hashes
//! of the keys, never a key itself:
//!
//! ```toml
//! [[key]]
//! name = "platform-prod"
//! role = "platform"
//! sha256 = "…64 hex digits…"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use triage_proto::ErrorCode;

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The case platform: triage and index cases.
    Platform,
    /// Analysts: search and read cases.
    Analyst,
    /// Operators: metrics and evaluation jobs.
    Operator,
    /// Everything.
    Admin,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Triage,
    Index,
    Search,
    Read,
    Metrics,
    /// Evaluation jobs (`/v1/evals`).
    Evaluate,
    /// The API description: any valid key.
    Describe,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Platform => "platform",
            Role::Analyst => "analyst",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Platform => matches!(p, Triage | Index | Describe),
            Role::Analyst => matches!(p, Search | Read | Describe),
            Role::Operator => matches!(p, Metrics | Evaluate | Describe),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    role: Role,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<KeyEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("reading the keys file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("in the keys file {}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<KeysError>,
    },
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("key {0:?}: sha256 must be 64 hex digits")]
    BadHash(String),
    #[error("key {0:?}: the same key appears twice")]
    Duplicate(String),
    #[error("no [[key]] entries: create one with `triage keys new --name NAME --role ROLE`")]
    Empty,
    #[error("no randomness from the OS: {0}")]
    Randomness(getrandom::Error),
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Default)]
pub struct Keys {
    by_hash: HashMap<[u8; 32], Caller>,
}

pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Keys {
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| KeysError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text).map_err(|e| KeysError::File { path: path.to_path_buf(), source: Box::new(e) })
    }

    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let file: KeysFile = toml::from_str(text)?;
        let mut by_hash = HashMap::new();
        for k in file.key {
            let raw = hex::decode(k.sha256.trim()).ok().filter(|b| b.len() == 32);
            let Some(raw) = raw else {
                return Err(KeysError::BadHash(k.name));
            };
            let mut h = [0u8; 32];
            h.copy_from_slice(&raw);
            if by_hash.insert(h, Caller { name: k.name.clone(), role: k.role }).is_some() {
                return Err(KeysError::Duplicate(k.name));
            }
        }
        if by_hash.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Self { by_hash })
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Never true of keys that `parse` or `load` gave: they refuse a file with none.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// 401 without a known key, 403 when its role lacks the permission, 400
    /// with more than one `Authorization` header: which of them a proxy or
    /// another server would read is anyone's guess.
    pub fn check(&self, headers: &HeaderMap, need: Permission) -> Result<Caller, ApiError> {
        let mut sent = headers.get_all(header::AUTHORIZATION).iter();
        let first = sent.next();
        if sent.next().is_some() {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "send one Authorization header, not several"));
        }
        let key =
            first.and_then(|v| v.to_str().ok()).and_then(bearer).filter(|k| !k.is_empty()).ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthorized, "send an API key as `Authorization: Bearer KEY`")
            })?;
        let caller = self
            .by_hash
            .get(&key_hash(key))
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "unknown API key"))?;
        if !caller.role.allows(need) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the {} role may not do this", caller.role.as_str()),
            ));
        }
        Ok(caller.clone())
    }
}

/// The credentials of a `Bearer` authorization; the scheme name is
/// case-insensitive (RFC 9110, 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.trim().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// A new random key (32 bytes, URL-safe text) and its keys-file table.
pub fn new_key(name: &str, role: Role) -> Result<(String, String), KeysError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(KeysError::Randomness)?;
    let key = format!("trk_{}", hex::encode(raw));
    let table = format!(
        "[[key]]\nname = {}\nrole = \"{}\"\nsha256 = \"{}\"\n",
        toml::Value::String(name.to_string()),
        role.as_str(),
        hex::encode(key_hash(&key))
    );
    Ok((key, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_keys() {
        let (key, table) = new_key("a \"quoted\" name", Role::Analyst).unwrap();
        let keys = Keys::parse(&table).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(keys.check(&h, Permission::Search).unwrap_err().code, ErrorCode::Unauthorized);
        h.insert(header::AUTHORIZATION, format!("Bearer {key}x").parse().unwrap());
        assert_eq!(keys.check(&h, Permission::Search).unwrap_err().code, ErrorCode::Unauthorized);
        h.insert(header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
        assert_eq!(keys.check(&h, Permission::Search).unwrap().name, "a \"quoted\" name");
        assert_eq!(keys.check(&h, Permission::Triage).unwrap_err().code, ErrorCode::Forbidden);
        assert!(!table.contains(&key), "the table must not hold the key");
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            h.insert(header::AUTHORIZATION, format!("{scheme}  {key} ").parse().unwrap());
            assert!(keys.check(&h, Permission::Search).is_ok(), "{scheme}");
        }
        h.insert(header::AUTHORIZATION, format!("Basic {key}").parse().unwrap());
        assert_eq!(keys.check(&h, Permission::Search).unwrap_err().code, ErrorCode::Unauthorized);
        h.insert(header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
        h.append(header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
        assert_eq!(keys.check(&h, Permission::Search).unwrap_err().code, ErrorCode::InvalidRequest);
        assert!(Keys::parse("").is_err());
        assert!(Keys::parse("[[key]]\nname=\"x\"\nrole=\"root\"\nsha256=\"00\"\n").is_err());
    }
}
