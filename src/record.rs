//! What etcdlock keeps about a lock's runs, and where: in a namespace of its own, outside every
//! lock's tree, each key on a lease so that etcd deletes it by itself.
//!
//! # Where
//!
//! Under a prefix that is reserved for etcdlock, by default [`DEFAULT_PREFIX`] (`.etcdlock/`),
//! configurable ([`crate::Config::with_records_prefix`], `--records-prefix`,
//! `ETCDLOCK_RECORDS_PREFIX`). The layout is versioned: `PREFIX` `v1/` `NAME` `/` kind.
//!
//! | key (default prefix, lock `/jobs/backup`) | value | lease |
//! |---|---|---|
//! | `.etcdlock/v1//jobs/backup/last-run` | [`RunRecord`] of the last run that ended, however it ended | the name's retention lease |
//! | `.etcdlock/v1//jobs/backup/last-success` | [`RunRecord`] of the last run that exited 0 | the name's retention lease |
//! | `.etcdlock/v1//jobs/backup/once` | marker: a run succeeded less than its lease's TTL ago (`--once-per`) | TTL = what is left of the period |
//!
//! Why there: `etcdctl lock A` and Go's `concurrency.Mutex` on `A` wait for *every* older key
//! under `A/`, whatever it is. Records kept beside or under a lock (`NAME.etcdlock/...`, as
//! etcdlock did before) sit under the prefix of each of the lock's ancestors (`/jobs/` for
//! `/jobs/backup`) and of the empty name (`/`), and block those locks for as long as they exist.
//! The default prefix starts with neither `/` nor any name a lock has: no lock's queue covers it
//! but a lock named `.etcdlock` (or below it), and such names are refused
//! ([`check_lock_name`]). A prefix of your own must likewise lie outside every lock's tree.
//!
//! # How long
//!
//! Each name's records share one lease, its *retention lease*, granted with the retention period
//! (default [`DEFAULT_RETENTION`], 35 days: longer than a month, so a monthly job's last run is
//! always there) and renewed by the runs of the name ([`retention_lease`]: when a hundredth of
//! the period has passed since the last renewal). etcd deletes the records by itself when a name
//! has not run for the retention period: no scan, no cron job. A renewal is one keep-alive, which
//! etcd does not replicate through raft; only the first run of a name (or the first after the
//! records expired) grants the lease, one more raft write. The
//! lease's id is derived from the name ([`retention_lease_id`]), so every run of the name finds
//! the same one and no race leaves a second lease behind.
//!
//! # Rules
//!
//! - Three keys per lock name at most, overwritten, never appended.
//! - The once-marker's period is measured by etcd's lease timer, so no host's clock enters. It
//!   is written in the release transaction ([`crate::lock::release`]), which also checks that the
//!   run still holds its key: a marker is only ever written by a holder.
//! - The records need no such check: `run` sends them beside the revoke that frees the lock
//!   ([`Ending::records_txn`]), which saves a round trip.
//! - [`forget`] deletes exactly one name's keys (and those of the old layout), never a prefix.

use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, GetOptions, LeaseGrantOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Config};
use crate::error::{Error, Result};
use crate::holder::Holder;

/// Where records are kept unless configured otherwise.
pub const DEFAULT_PREFIX: &str = Config::DEFAULT_RECORDS_PREFIX;

/// The version of the key layout and of the values under [`DEFAULT_PREFIX`].
pub const LAYOUT: &str = "v1";

/// How long a name's records are kept after its last run, unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(35 * 24 * 3600);

/// The record kinds, as the last part of their keys.
const KINDS: [&str; 3] = ["last-run", "last-success", "once"];

/// Check a records prefix: not empty, ends with `/`, no control characters.
pub fn check_prefix(prefix: &str) -> Result<()> {
    Config::new([Config::DEFAULT_ENDPOINT])?
        .with_records_prefix(prefix)
        .map(|_| ())
}

/// Whether lock `name`'s queue (`name/`) and the records under `prefix` can overlap: either
/// contains the other.
pub fn collides(prefix: &str, name: &str) -> bool {
    let queue = format!("{name}/");
    queue.starts_with(prefix) || prefix.starts_with(&queue)
}

/// Refuse a lock name whose queue would cover the records, or lie among them.
pub fn check_lock_name(config: &Config, name: &str) -> Result<()> {
    let prefix = config.records_prefix();
    if collides(prefix, name) {
        return Err(Error::Config(format!(
            "the lock name {name:?} is reserved: etcdlock keeps its run records under {prefix:?} (choose another name, or move the records with --records-prefix)"
        )));
    }
    Ok(())
}

/// The keys of one lock's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    base: String,
    name: String,
}

impl Keys {
    /// The keys of lock `name`'s records under `prefix`.
    pub fn new(prefix: &str, name: &str) -> Keys {
        Keys {
            base: format!("{prefix}{LAYOUT}/{name}/"),
            name: name.to_owned(),
        }
    }

    /// The keys of lock `name`'s records where `client` keeps them.
    pub fn of(client: &Client, name: &str) -> Keys {
        Keys::new(client.config().records_prefix(), name)
    }

    /// The last run's record.
    pub fn last_run(&self) -> String {
        format!("{}last-run", self.base)
    }

    /// The last successful run's record.
    pub fn last_success(&self) -> String {
        format!("{}last-success", self.base)
    }

    /// The once-per-period marker.
    pub fn once(&self) -> String {
        format!("{}once", self.base)
    }

    /// A key that never exists: deleting it (a no-op) in a transaction makes etcd check that
    /// we may write the records, without writing anything.
    pub fn probe(&self) -> String {
        format!("{}write-probe", self.base)
    }

    /// The keys the old layout (before the records moved) kept beside the lock, under every
    /// ancestor's prefix: `NAME.etcdlock/` + kind. Exact keys: `last-run`, `last-success` and
    /// `once` are not lease ids in hex, so no queue key of a lock named `NAME.etcdlock` is ever
    /// among them.
    pub fn legacy(&self) -> [String; 3] {
        KINDS.map(|kind| format!("{}.etcdlock/{kind}", self.name))
    }
}

/// If `key` is one of the records kept under `prefix`, the lock's name.
pub fn lock_of<'a>(prefix: &str, key: &'a [u8]) -> Option<&'a [u8]> {
    let rest = key
        .strip_prefix(prefix.as_bytes())?
        .strip_prefix(LAYOUT.as_bytes())?
        .strip_prefix(b"/")?;
    KINDS
        .iter()
        .find_map(|kind| rest.strip_suffix(kind.as_bytes())?.strip_suffix(b"/"))
        .filter(|n| !n.is_empty())
}

/// The range `[start, end)` of every record kept under `prefix` for lock names starting with
/// `names`.
pub fn range(prefix: &str, names: &str) -> (Vec<u8>, Vec<u8>) {
    let start = format!("{prefix}{LAYOUT}/{names}").into_bytes();
    let end = crate::queue::range_end(&start);
    (start, end)
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
    /// The end of a handle's hold by `etcdlock release` (not a command's run): a second release
    /// of the same handle finds it and says "already released".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handle_released: bool,
    /// The etcdlock version that wrote this.
    pub etcdlock_version: String,
    /// The run's `--once-per` period in seconds, if it had one: `check` derives its default
    /// `--max-age` from it. Absent from records written before it existed (and from runs without
    /// `--once-per`), which still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once_per_s: Option<u64>,
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
            handle_released: false,
            etcdlock_version: env!("CARGO_PKG_VERSION").to_owned(),
            once_per_s: None,
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
    /// The run's record.
    pub record: RunRecord,
    /// Also the last success (and, with `once_lease`, the once-marker): the run exited 0.
    pub success: bool,
    /// The lease the records are kept on ([`retention_lease`]); `None`: no record is written
    /// (turned off, or no lease could be had).
    pub records_lease: Option<i64>,
    /// A lease whose TTL is the `--once-per` period, for the marker.
    pub once_lease: Option<i64>,
}

impl Ending {
    /// The record's puts: `last-run` (marked lost if `lost`), and `last-success` after a success.
    fn record_puts(&self, keys: &Keys, lost: bool) -> Vec<(String, Vec<u8>, PutOptions)> {
        let Some(lease) = self.records_lease else {
            return Vec::new();
        };
        let opts = PutOptions::new().with_lease(lease);
        let mut record = self.record.clone();
        record.lost |= lost;
        let value = record.to_json();
        let mut puts = vec![(keys.last_run(), value.clone(), opts.clone())];
        if self.success && !lost {
            puts.push((keys.last_success(), value, opts));
        }
        puts
    }

    /// Writes for a run that still held its key at the end.
    pub fn held_ops(&self, keys: &Keys) -> Vec<TxnOp> {
        let mut ops: Vec<TxnOp> = self
            .record_puts(keys, false)
            .into_iter()
            .map(|(k, v, o)| TxnOp::put(k, v, Some(o)))
            .collect();
        if let (true, Some(lease)) = (self.success, self.once_lease) {
            let opts = PutOptions::new().with_lease(lease);
            ops.push(TxnOp::put(keys.once(), "", Some(opts)));
        }
        ops
    }

    /// Whether there is any record to write beside a revoke ([`Ending::records_txn`]).
    pub fn has_records(&self) -> bool {
        self.records_lease.is_some()
    }

    /// The run's records (never the once-marker, which needs the release transaction's check
    /// that we still held the key) in a transaction of their own, for a release that revokes the
    /// lease beside it instead of deleting the key in the same transaction. With `up_to`, each
    /// record is written only if its key was last written at or before that revision: a record
    /// retried after the revoke (at `up_to`) then never overwrites one written after it, as every
    /// later holder's of an exclusive lock is (it can only start once our key is gone).
    pub fn records_txn(&self, keys: &Keys, up_to: Option<i64>) -> Txn {
        let ops = self
            .record_puts(keys, false)
            .into_iter()
            .map(|(key, value, opts)| match up_to {
                None => TxnOp::put(key, value, Some(opts)),
                Some(revision) => TxnOp::txn(
                    Txn::new()
                        .when([Compare::mod_revision(
                            key.clone(),
                            CompareOp::Less,
                            revision + 1,
                        )])
                        .and_then([TxnOp::put(key, value, Some(opts))]),
                ),
            });
        Txn::new().and_then(ops.collect::<Vec<_>>())
    }

    /// Writes for a run whose key was gone at the end: a lost lock, recorded as such.
    pub fn lost_ops(&self, keys: &Keys) -> Vec<TxnOp> {
        self.record_puts(keys, true)
            .into_iter()
            .map(|(k, v, o)| TxnOp::put(k, v, Some(o)))
            .collect()
    }
}

/// The id of lock `name`'s retention lease: the same for every run of the name (with the same
/// prefix and retention), so that all of them keep their records on one lease and no run can
/// leave a second one behind — not even two first runs racing to create it. A stable hash
/// (FNV-1a), not a secret: it only has to spread names over the id space.
pub fn retention_lease_id(prefix: &str, name: &str, retention: Duration) -> i64 {
    let text = format!(
        "etcdlock records {LAYOUT}\0{prefix}\0{name}\0{}",
        retention.as_secs()
    );
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // etcd's lease ids are positive int64s; 0 means "no lease".
    ((hash >> 1) as i64).max(1)
}

/// What etcd says of lease `id` if it is alive with exactly `ttl` granted (a retention lease of
/// ours, not somebody else's lease that happens to carry the id): its remaining seconds.
async fn granted_as(client: &Client, id: i64, ttl: Duration) -> Result<Option<i64>> {
    let asked = client
        .retrying("cannot read the run records' lease", || {
            client.call(|mut c| async move { c.lease_time_to_live(id, None).await })
        })
        .await?;
    Ok((asked.ttl() > 0 && asked.granted_ttl() == ttl.as_secs() as i64).then_some(asked.ttl()))
}

/// Lock `name`'s retention lease if it exists, renewed when more than a hundredth of the
/// retention has passed since it last was (one keep-alive, no raft write; a job that runs every
/// minute renews it a few times a day, not every minute); `None` if it does not exist yet (the
/// name's first run, or its records expired): then [`grant_retention`] makes it. So records
/// live on for 99 % to 100 % of the retention after a name's last run. Reads only, so it can run
/// before we know whether the run will write anything.
pub async fn retention_lease(
    client: &Client,
    name: &str,
    retention: Duration,
) -> Result<Option<i64>> {
    let id = retention_lease_id(client.config().records_prefix(), name, retention);
    let Some(remaining) = granted_as(client, id, retention).await? else {
        return Ok(None);
    };
    let total = retention.as_secs() as i64;
    if total - remaining > total / 100 {
        client
            .call(|mut c| async move { c.lease_keep_alive(id).await.map(|_| ()) })
            .await
            .map_err(|e| Error::Refused {
                context: "cannot renew the run records' lease".into(),
                reason: e.to_string(),
            })?;
    }
    Ok(Some(id))
}

/// Grant lock `name`'s retention lease (see [`retention_lease_id`]); a lease granted meanwhile by
/// another run of the name is just as good. Should the id be taken by a lease that is not one
/// (another TTL), the records go on a lease of their own.
pub async fn grant_retention(client: &Client, name: &str, retention: Duration) -> Result<i64> {
    let id = retention_lease_id(client.config().records_prefix(), name, retention);
    let ttl = retention.as_secs() as i64;
    let granted = client
        .retrying("cannot grant the run records' lease", || {
            client.call(|mut c| async move {
                c.lease_grant(ttl, Some(LeaseGrantOptions::new().with_id(id)))
                    .await
            })
        })
        .await;
    match granted {
        Ok(_) => Ok(id),
        Err(e) if e.to_string().contains("lease already exists") => {
            if granted_as(client, id, retention).await?.is_some() {
                Ok(id)
            } else {
                Ok(crate::session::Lease::grant(client, retention).await?.id)
            }
        }
        Err(e) => Err(e),
    }
}

/// A name's retention lease, looked up in the background while a run goes on (started before
/// the lock is even asked for, so that its reads cost the run no time), and granted only when a
/// record is about to be written: a run that ends up writing nothing grants nothing.
#[derive(Debug)]
pub struct Retention {
    client: Client,
    name: String,
    retention: Option<Duration>,
    lookup: Option<tokio::task::JoinHandle<Result<Option<i64>>>>,
}

impl Retention {
    /// Start looking up lock `name`'s retention lease; `retention` `None`: records are off.
    /// Needs a tokio runtime.
    pub fn start(client: &Client, name: &str, retention: Option<Duration>) -> Retention {
        let lookup = retention.map(|retention| {
            let (client, name) = (client.clone(), name.to_owned());
            tokio::spawn(async move { retention_lease(&client, &name, retention).await })
        });
        Retention {
            client: client.clone(),
            name: name.to_owned(),
            retention,
            lookup,
        }
    }

    /// Records turned off.
    pub fn off(client: &Client) -> Retention {
        Retention {
            client: client.clone(),
            name: String::new(),
            retention: None,
            lookup: None,
        }
    }

    /// The run is about to write a record (its command starts): if the lookup finds no lease,
    /// grant it now, in the background, so that the release does not wait for the grant — one
    /// raft write fewer between the command's exit and the next holder's start, on a name's
    /// first run (and after its retention lapsed). A run that never gets this far grants nothing;
    /// one killed before its end leaves the lease without records, to the name's next run (the id
    /// is the name's, see [`retention_lease_id`]) or to its TTL. Needs a tokio runtime.
    pub fn grant_ahead(&mut self) {
        let (Some(retention), Some(lookup)) = (self.retention, self.lookup.take()) else {
            return;
        };
        let (client, name) = (self.client.clone(), self.name.clone());
        self.lookup = Some(tokio::spawn(async move {
            match lookup.await {
                Ok(Ok(Some(lease))) => Ok(Some(lease)),
                // As in `find_or_grant`: a failed lookup still tries the grant.
                _ => grant_retention(&client, &name, retention).await.map(Some),
            }
        }));
    }

    /// The lease to write the records on: the one found, else a new one. `Ok(None)` when records
    /// are off; `Err` says why there is none (e.g. permission denied). Bounded to 3 s, as every
    /// request of a release: an etcd without quorum must not keep a run from ending.
    pub async fn lease(self) -> std::result::Result<Option<i64>, String> {
        const BOUND: Duration = Duration::from_secs(3);
        tokio::time::timeout(BOUND, self.find_or_grant())
            .await
            .unwrap_or_else(|_| Err("no answer from etcd within 3s".to_owned()))
    }

    async fn find_or_grant(mut self) -> std::result::Result<Option<i64>, String> {
        let (Some(retention), Some(lookup)) = (self.retention, self.lookup.take()) else {
            return Ok(None);
        };
        // A failed lookup (no read permission on the records, say) still tries a grant: the
        // write that follows then says what is wrong.
        if let Ok(Ok(Some(lease))) = lookup.await {
            return Ok(Some(lease));
        }
        grant_retention(&self.client, &self.name, retention)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        if let Some(lookup) = self.lookup.take() {
            lookup.abort();
        }
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
    let keys = Keys::of(client, name);
    let txn = Txn::new().and_then([
        TxnOp::get(keys.last_run(), None),
        TxnOp::get(keys.last_success(), None),
        TxnOp::get(keys.once(), None),
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

/// Delete lock `name`'s records and once-marker (the next run may go at once), those of the old
/// layout beside the lock too (where we may: a user granted only the new layout skips them), and
/// revoke the leases that only they used (a lease still holding any other key is left alone).
/// How many keys went.
pub async fn forget(client: &Client, name: &str) -> Result<i64> {
    let keys = Keys::of(client, name);
    let (deleted, mut leases) =
        delete_exactly(client, &[keys.last_run(), keys.last_success(), keys.once()]).await?;
    let old = match delete_exactly(client, &keys.legacy()).await {
        Ok(old) => old,
        Err(Error::Refused { reason, .. }) if reason.contains("permission denied") => (0, vec![]),
        Err(e) => return Err(e),
    };
    leases.extend(old.1);
    leases.sort_unstable();
    leases.dedup();
    for lease in leases {
        revoke_if_unused(client, lease).await;
    }
    Ok(deleted + old.0)
}

/// Delete exactly `keys` (never a range): how many went, and the leases they were on.
async fn delete_exactly(client: &Client, keys: &[String]) -> Result<(i64, Vec<i64>)> {
    let read = Txn::new().and_then(
        keys.iter()
            .map(|k| TxnOp::get(k.clone(), Some(GetOptions::new().with_keys_only())))
            .collect::<Vec<_>>(),
    );
    let found = client
        .txn("cannot read the lock's run records", read)
        .await?;
    let leases: Vec<i64> = found
        .op_responses()
        .iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.lease()),
            _ => None,
        })
        .filter(|l| *l != 0)
        .collect();
    let delete = Txn::new().and_then(
        keys.iter()
            .map(|k| TxnOp::delete(k.clone(), None))
            .collect::<Vec<_>>(),
    );
    let resp = client
        .txn("cannot delete the lock's run records", delete)
        .await?;
    let deleted = resp
        .op_responses()
        .iter()
        .map(|op| match op {
            TxnOpResponse::Delete(d) => d.deleted(),
            _ => 0,
        })
        .sum();
    Ok((deleted, leases))
}

/// Revoke `lease` if no key is attached to it any more (best effort): a lease that the records
/// used and that now holds something else (someone attached a lock key to it) is not ours to end.
/// After a records write that failed, so that a retention lease granted for it is not left alone
/// in etcd for the whole retention period.
pub async fn revoke_if_unused(client: &Client, lease: i64) {
    let asked = client
        .call(|mut c| async move {
            c.lease_time_to_live(
                lease,
                Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
            )
            .await
        })
        .await;
    if matches!(&asked, Ok(r) if r.ttl() > 0 && r.keys().is_empty()) {
        let _ = client
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await;
    }
}

/// A read that tells whether a once-marker is in force (keys only).
pub fn once_probe(client: &Client, name: &str) -> TxnOp {
    TxnOp::get(
        Keys::of(client, name).once(),
        Some(GetOptions::new().with_keys_only()),
    )
}

/// An op that changes nothing but makes etcd refuse the transaction it is in unless we may
/// write lock `name`'s records (`--once-per` must be able to write its marker before its
/// command runs).
pub fn write_probe(client: &Client, name: &str) -> TxnOp {
    TxnOp::delete(Keys::of(client, name).probe(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_live_in_their_own_namespace_outside_every_lock() {
        let keys = Keys::new(DEFAULT_PREFIX, "/jobs/backup");
        assert_eq!(keys.last_run(), ".etcdlock/v1//jobs/backup/last-run");
        for key in [
            keys.last_run(),
            keys.last_success(),
            keys.once(),
            keys.probe(),
        ] {
            // Not under any ancestor's queue (`/`, `/jobs/`) nor the lock's own.
            for ancestor in ["", "/jobs", "/jobs/backup"] {
                assert!(
                    !key.starts_with(&format!("{ancestor}/")),
                    "{key} under {ancestor}/"
                );
            }
        }
        assert_eq!(
            lock_of(DEFAULT_PREFIX, keys.once().as_bytes()),
            Some(&b"/jobs/backup"[..])
        );
        assert_eq!(
            lock_of(DEFAULT_PREFIX, b".etcdlock/v1//t/y//last-run"),
            Some(&b"/t/y/"[..])
        );
        assert_eq!(lock_of(DEFAULT_PREFIX, b"/jobs/backup/1f"), None);
        assert_eq!(lock_of(DEFAULT_PREFIX, b".etcdlock/v1/once"), None);
        assert_eq!(lock_of(DEFAULT_PREFIX, b"/jobs/backup.etcdlock/once"), None);
        assert_eq!(
            Keys::new(DEFAULT_PREFIX, "/c/x").legacy()[2],
            "/c/x.etcdlock/once"
        );
    }

    #[test]
    fn names_that_would_cover_or_sit_among_the_records_are_refused() {
        for bad in [".etcdlock", ".etcdlock/v1", ".etcdlock/v1//jobs/backup"] {
            assert!(collides(DEFAULT_PREFIX, bad), "{bad}");
        }
        for good in [
            "/jobs/backup",
            "/t/y/",
            ".etcdlockx",
            "etcdlock",
            "/.etcdlock",
            "",
        ] {
            assert!(!collides(DEFAULT_PREFIX, good), "{good}");
        }
        assert!(collides("/x/records/", "/x"));
        assert!(check_prefix("records").is_err());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("/r/").is_ok());
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
        // A record written before `once_per_s` existed still parses.
        let old = br#"{"host":"h","pid":1,"user":"u","command":[],"started_at":"2026-01-01T00:00:00Z","ended_at":"2026-01-01T00:00:01Z","duration":1.0,"exit_code":0,"fencing_token":5,"lost":false,"etcdlock_version":"0.1.0"}"#;
        assert_eq!(RunRecord::parse(old).map(|r| r.once_per_s), Some(None));
        r.once_per_s = Some(3600);
        assert_eq!(RunRecord::parse(&r.to_json()), Some(r.clone()));
        assert_eq!(r.duration, 1.5);
        let keys = Keys::new(DEFAULT_PREFIX, "/x");
        let mut ending = Ending {
            record: r,
            success: false,
            records_lease: Some(9),
            once_lease: Some(7),
        };
        assert_eq!(ending.held_ops(&keys).len(), 1);
        assert_eq!(ending.lost_ops(&keys).len(), 1);
        ending.success = true;
        assert_eq!(ending.held_ops(&keys).len(), 3);
        assert_eq!(
            ending.lost_ops(&keys).len(),
            1,
            "a lost run is never a success"
        );
        ending.records_lease = None;
        assert_eq!(ending.held_ops(&keys).len(), 1, "the marker only");
        assert!(ending.lost_ops(&keys).is_empty());
        assert!(!ending.has_records());
    }
}
