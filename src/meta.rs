//! Holder metadata: the JSON value stored in each lock key, telling operators who holds or waits.
//!
//! `etcdctl lock` stores an empty value and ignores values, so the metadata costs compatibility
//! nothing. Fields are only ever added; readers must accept values they do not understand,
//! including empty ones.

use std::ffi::OsString;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Who holds (or waits for) a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub command: Vec<String>,
    /// When this etcdlock queued for the lock (RFC 3339, UTC).
    pub started_at: String,
    /// etcdlock version that wrote this value.
    pub version: String,
}

impl Holder {
    /// Metadata describing this process running `command`.
    pub fn current(command: &[OsString]) -> Holder {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        Holder {
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid: std::process::id(),
            user,
            command: command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("holder metadata serialises")
    }

    /// Parse a key's value; `None` for values not written by etcdlock (e.g. etcdctl's empty one).
    #[allow(dead_code)] // used by the inspection commands
    pub fn parse(value: &[u8]) -> Option<Holder> {
        serde_json::from_slice(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_foreign_values() {
        let h = Holder::current(&[OsString::from("./backup.sh"), OsString::from("--full")]);
        assert_eq!(Holder::parse(&h.to_json()), Some(h.clone()));
        assert_eq!(h.pid, std::process::id());
        assert!(h.started_at.ends_with('Z'));
        assert_eq!(Holder::parse(b""), None);
        assert_eq!(Holder::parse(b"not json"), None);
    }
}
