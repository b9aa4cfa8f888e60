//! What etcdlock keeps about a lock's runs, beside the lock: under `NAME.etcdlock/`, never under
//! `NAME/` (etcdctl and Go's Mutex would queue behind anything there).
//!
//! | key | value | lease |
//! |---|---|---|
//! | `NAME.etcdlock/last-run` | [`RunRecord`] of the last run that ended, however it ended | none |
//! | `NAME.etcdlock/last-success` | [`RunRecord`] of the last run that exited 0 | none |
//! | `NAME.etcdlock/once` | marker: a run succeeded less than its lease's TTL ago (`--once-per`) | TTL = the period |
//!
//! Three keys per lock name at most, overwritten, never appended. The once-marker's period is
//! measured by etcd's lease timer, so no host's clock enters. The marker is written in the release
//! transaction (see [`crate::lock::release`]), which also checks that the run still holds its key:
//! a marker is only ever written by a holder. The records need no such check: `run` sends them
//! beside the revoke that frees the lock ([`Ending::records_txn`]), which saves a round trip.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;
use crate::holder::Holder;

/// The prefix of a lock's records.
pub fn prefix(name: &str) -> String {
    format!("{name}.etcdlock/")
}

/// The last run's record.
pub fn last_run_key(name: &str) -> String {
    format!("{}last-run", prefix(name))
}

/// The last successful run's record.
pub fn last_success_key(name: &str) -> String {
    format!("{}last-success", prefix(name))
}

/// The once-per-period marker.
pub fn once_key(name: &str) -> String {
    format!("{}once", prefix(name))
}

/// If `key` is one of a lock's records, the lock's name.
pub fn lock_of(key: &[u8]) -> Option<&[u8]> {
    const SUFFIXES: [&[u8]; 3] = [
        b".etcdlock/last-run",
        b".etcdlock/last-success",
        b".etcdlock/once",
    ];
    SUFFIXES
        .iter()
        .find_map(|s| key.strip_suffix(*s))
        .filter(|n| !n.is_empty())
}

/// One run of a command under a lock, as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Host it ran on.
    pub host: String,
    /// etcdlock's pid there.
    pub pid: u32,
    /// The user it ran as.
    pub user: String,
    /// The command as recorded (see `--record-command`).
    pub command: Vec<String>,
    /// When the command started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run ended (RFC 3339, UTC).
    pub ended_at: String,
    /// Seconds from start to end.
    pub duration: f64,
    /// The exit code etcdlock ended with (the command's, or 70 lost, 124 timed out, ...).
    pub exit_code: i32,
    /// The fencing token the run held the lock with.
    pub fencing_token: i64,
    /// Whether etcdlock saw the lock lost while it held it (the command was then stopped, exit 70;
    /// or `--min-hold` ended early).
    pub lost: bool,
    /// The etcdlock version that wrote this.
    pub etcdlock_version: String,
}

impl RunRecord {
    /// A record of `holder`'s run that started at `started` and ran for `duration`.
    pub fn new(holder: &Holder, started: std::time::SystemTime, duration: Duration) -> RunRecord {
        RunRecord {
            host: holder.host.clone(),
            pid: holder.pid,
            user: holder.user.clone(),
            command: holder.command.clone(),
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            ended_at: crate::holder::now_rfc3339(),
            duration: (duration.as_millis() as f64) / 1000.0,
            exit_code: 0,
            fencing_token: 0,
            lost: false,
            etcdlock_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The value stored in etcd.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and numbers only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse a stored value; `None` if it is not one.
    pub fn parse(value: &[u8]) -> Option<RunRecord> {
        serde_json::from_slice(value).ok()
    }
}

/// What a run leaves behind: its record, and after a success under `--once-per` the marker.
#[derive(Debug, Clone)]
pub struct Ending {
    /// The run's record (always written, even when the lock was lost).
    pub record: RunRecord,
    /// Also the last success (and, with `once_lease`, the once-marker): the run exited 0.
    pub success: bool,
    /// A lease whose TTL is the `--once-per` period, for the marker.
    pub once_lease: Option<i64>,
}

impl Ending {
    /// Writes for a run that still held its key at the end.
    pub fn held_ops(&self, name: &str) -> Vec<TxnOp> {
        let value = self.record.to_json();
        let mut ops = vec![TxnOp::put(last_run_key(name), value.clone(), None)];
        if self.success {
            ops.push(TxnOp::put(last_success_key(name), value, None));
            if let Some(lease) = self.once_lease {
                let opts = PutOptions::new().with_lease(lease);
                ops.push(TxnOp::put(once_key(name), "", Some(opts)));
            }
        }
        ops
    }

    /// The run's records (never the once-marker, which needs the release transaction's check
    /// that we still held the key) in a transaction of their own, for a release that revokes the
    /// lease beside it instead of deleting the key in the same transaction. With `up_to`, each
    /// record is written only if its key was last written at or before that revision: a record
    /// retried after the revoke (at `up_to`) then never overwrites one written after it, as every
    /// later holder's of an exclusive lock is (it can only start once our key is gone).
    pub fn records_txn(&self, name: &str, up_to: Option<i64>) -> Txn {
        let value = self.record.to_json();
        let mut keys = vec![last_run_key(name)];
        if self.success {
            keys.push(last_success_key(name));
        }
        let ops = keys.into_iter().map(|key| match up_to {
            None => TxnOp::put(key, value.clone(), None),
            Some(revision) => TxnOp::txn(
                Txn::new()
                    .when([Compare::mod_revision(
                        key.clone(),
                        CompareOp::Less,
                        revision + 1,
                    )])
                    .and_then([TxnOp::put(key, value.clone(), None)]),
            ),
        });
        Txn::new().and_then(ops.collect::<Vec<_>>())
    }

    /// Writes for a run whose key was gone at the end: a lost lock, recorded as such.
    pub fn lost_ops(&self, name: &str) -> Vec<TxnOp> {
        let mut record = self.record.clone();
        record.lost = true;
        vec![TxnOp::put(last_run_key(name), record.to_json(), None)]
    }
}

/// A lock's records as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    /// The last run.
    pub last_run: Option<RunRecord>,
    /// The last successful run.
    pub last_success: Option<RunRecord>,
    /// With a once-marker in force: seconds until it expires (the next run is allowed then).
    pub once_remaining_s: Option<i64>,
}

/// Read a lock's records (one request, plus one for the marker's remaining time).
pub async fn read(client: &Client, name: &str) -> Result<Records> {
    let txn = Txn::new().and_then([
        TxnOp::get(last_run_key(name), None),
        TxnOp::get(last_success_key(name), None),
        TxnOp::get(once_key(name), None),
    ]);
    let resp = client
        .txn("cannot read the lock's run records", txn)
        .await?;
    let kv = |i: usize| match resp.op_responses().get(i) {
        Some(TxnOpResponse::Get(g)) => g.kvs().first().cloned(),
        _ => None,
    };
    let parse = |i: usize| kv(i).and_then(|kv| RunRecord::parse(kv.value()));
    let once_remaining_s = match kv(2).map(|kv| kv.lease()).filter(|l| *l != 0) {
        Some(lease) => client
            .call(|mut c| async move { c.lease_time_to_live(lease, None).await })
            .await
            .ok()
            .map(|r| r.ttl().max(0)),
        None => None,
    };
    Ok(Records {
        last_run: parse(0),
        last_success: parse(1),
        once_remaining_s,
    })
}

/// Delete a lock's records (the once-marker too: the next run may go at once). How many keys went.
pub async fn forget(client: &Client, name: &str) -> Result<i64> {
    let key = prefix(name);
    let resp = client
        .retrying("cannot delete the lock's run records", || {
            let key = key.clone();
            client.call(|mut c| async move {
                c.delete(key, Some(etcd_client::DeleteOptions::new().with_prefix()))
                    .await
            })
        })
        .await?;
    Ok(resp.deleted())
}

/// Read-only ops that tell whether a once-marker is in force (keys only).
pub fn once_probe(name: &str) -> TxnOp {
    TxnOp::get(once_key(name), Some(GetOptions::new().with_keys_only()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_live_beside_the_lock_not_under_it() {
        assert_eq!(
            last_run_key("/jobs/backup"),
            "/jobs/backup.etcdlock/last-run"
        );
        assert!(!once_key("/jobs/backup").starts_with("/jobs/backup/"));
        assert_eq!(
            lock_of(b"/jobs/backup.etcdlock/once"),
            Some(&b"/jobs/backup"[..])
        );
        assert_eq!(lock_of(b"/jobs/backup/1f"), None);
        assert_eq!(lock_of(b".etcdlock/once"), None);
    }

    #[test]
    fn records_round_trip() {
        let holder = Holder::current(&[], 1, Default::default());
        let mut r = RunRecord::new(
            &holder,
            std::time::SystemTime::now(),
            Duration::from_millis(1500),
        );
        r.exit_code = 3;
        assert_eq!(RunRecord::parse(&r.to_json()), Some(r.clone()));
        assert_eq!(r.duration, 1.5);
        let ending = Ending {
            record: r,
            success: false,
            once_lease: Some(7),
        };
        assert_eq!(ending.held_ops("/x").len(), 1);
        assert_eq!(ending.lost_ops("/x").len(), 1);
    }
}
