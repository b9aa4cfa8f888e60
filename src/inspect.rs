//! Inspection as data: who holds a lock, since when, and who waits ([`status`]); every lock under a
//! prefix ([`list`]); breaking a hold by revoking its lease ([`break_holder`]). Rendering is the
//! caller's business (the `etcdlock` binary prints tables and JSON).
//!
//! The types serialize to the JSON schema of `etcdlock status --json` / `list --json`: versioned
//! by [`SCHEMA_VERSION`], field names shared between the two, fields only ever added. Locks taken by
//! `etcdctl lock` (empty values) have unknown metadata (`None`).

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use etcd_client::{GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::holder::{Holder, Mode};
use crate::queue::{self, Slot};
use crate::record::RunRecord;

/// Bumped when fields are added (3: `list` has `last_success` and `next_run_allowed_in_s`);
/// fields are never removed or changed.
pub const SCHEMA_VERSION: u32 = 3;
/// Keys per range request when listing: large enough for few round trips, small enough to keep
/// each response well under etcd's default 1.5 MiB request limit.
const PAGE: i64 = 2000;
/// Values per request when reading holders' metadata.
const VALUE_BATCH: usize = 32;
/// Value requests in flight at once: `list` of 10 000 locks is 313 batches, which one after
/// another took 5.8x an `etcdctl get --prefix` of the same keys (issue 25).
const VALUE_BATCHES_IN_FLIGHT: usize = 16;

/// One key of a lock: a holder or a waiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The key, `NAME/<lease hex>`.
    pub key: String,
    /// Lease id, lowercase hex (the key's suffix).
    pub lease_id: String,
    /// Create revision of the key: the holder's fencing token.
    pub fencing_token: i64,
    /// The etcd cluster id, hex: fencing tokens are only comparable within one cluster.
    pub cluster_id: String,
    /// Seconds until the lease expires if not renewed (holders only).
    pub ttl_remaining_s: Option<i64>,
    /// Seconds since it acquired the lock (holders with etcdlock metadata).
    pub held_for_s: Option<u64>,
    /// Seconds since it joined the queue (waiters with etcdlock metadata).
    pub waited_for_s: Option<u64>,
    /// Host of the holder or waiter (None: not etcdlock).
    pub host: Option<String>,
    /// Its pid.
    pub pid: Option<u32>,
    /// The user it runs as.
    pub user: Option<String>,
    /// Its command as recorded.
    pub command: Option<Vec<String>>,
    /// `--meta` pairs.
    pub meta: BTreeMap<String, String>,
    /// When it joined the queue (RFC 3339).
    pub started_at: Option<String>,
    /// When it got the lock (RFC 3339).
    pub acquired_at: Option<String>,
    /// etcdlock version of the holder; null for keys not written by etcdlock (etcdctl lock).
    pub etcdlock_version: Option<String>,
    /// "exclusive" or "shared".
    pub mode: String,
    /// "etcdlock" (a run), "handle" (held by `etcdlock acquire`), "election" (an `etcdlock elect`
    /// candidate: the holder is the leader, the waiters stand by), or "other" (etcdctl lock, Go's
    /// Mutex, etcdctl elect: no metadata).
    pub kind: String,
}

/// `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The lock.
    pub name: String,
    /// Whether anyone holds it.
    pub held: bool,
    /// How many may hold it at once (1: a mutex).
    pub limit: u32,
    /// How many hold it.
    pub holder_count: usize,
    /// How many wait.
    pub waiter_count: usize,
    /// The holders, oldest first.
    pub holders: Vec<Entry>,
    /// The waiters, in queue order.
    pub waiters: Vec<Entry>,
    /// Keys named like a holder's (`NAME/<hex>`) but not attached to that lease: no lease at
    /// all (an `etcdctl put` over a holder's key detaches it), or another one. etcdlock does not
    /// queue behind them, but `etcdctl lock` and Go's Mutex do, for ever (nothing deletes a key
    /// without a lease); `etcdlock break NAME` removes them. Added in etcdlock 0.1 without a
    /// schema bump (new field).
    #[serde(default)]
    pub detached_keys: Vec<Detached>,
    /// Other keys under `NAME/` that are not in this lock's queue (nested locks' keys, data):
    /// skipped, and counted here.
    pub other_keys: usize,
    /// One of them, for the message.
    pub other_key_example: Option<String>,
    /// The last run that ended, however it ended (see [`crate::record`]).
    pub last_run: Option<RunRecord>,
    /// The last run that exited 0.
    pub last_success: Option<RunRecord>,
    /// With a `--once-per` marker in force: seconds until the next run is allowed.
    pub next_run_allowed_in_s: Option<i64>,
}

/// A key named like a holder's but not attached to its lease (see [`Status::detached_keys`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detached {
    /// The key, `NAME/<hex>`.
    pub key: String,
    /// Its create revision (a holder's fencing token, if it was one).
    pub fencing_token: i64,
    /// The lease it is attached to now, hex; `None`: no lease.
    pub lease_id: Option<String>,
    /// Its mod revision (`break` deletes it only if it is unchanged since).
    pub mod_revision: i64,
}

/// Whether `kv`, under `prefix` (`NAME/`), is named like a queue key (`NAME/<lowercase hex>`, no
/// further `/`) but is not one: not attached to the lease its name says.
fn is_detached(prefix: &[u8], kv: &KeyValue) -> bool {
    let Some(suffix) = kv.key().strip_prefix(prefix) else {
        return false;
    };
    !suffix.is_empty()
        && suffix.len() <= 16
        && suffix
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && !queue::is_queue_key(prefix, kv)
}

fn detached_of(prefix: &[u8], keys: &[KeyValue]) -> Vec<Detached> {
    keys.iter()
        .filter(|kv| is_detached(prefix, kv))
        .map(|kv| Detached {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            fencing_token: kv.create_revision(),
            lease_id: (kv.lease() != 0).then(|| format!("{:x}", kv.lease())),
            mod_revision: kv.mod_revision(),
        })
        .collect()
}

/// One lock in `list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSummary {
    /// The lock.
    pub name: String,
    /// Whether anyone holds it.
    pub held: bool,
    /// How many may hold it at once.
    pub limit: u32,
    /// How many hold it.
    pub holder_count: usize,
    /// How many wait.
    pub waiter_count: usize,
    /// The oldest holder.
    pub holders: Vec<Entry>,
    /// How many keys under the lock are named like a holder's but not attached to that lease
    /// (see [`Status::detached_keys`]): they block `etcdctl lock`.
    #[serde(default)]
    pub detached_keys: usize,
    /// The last run that ended.
    pub last_run: Option<RunRecord>,
    /// The last run that exited 0.
    pub last_success: Option<RunRecord>,
    /// With a `--once-per` marker in force: seconds until the next run is allowed.
    pub next_run_allowed_in_s: Option<i64>,
}

/// `list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The prefix listed (`""`: everything).
    pub prefix: String,
    /// The locks, by name.
    pub locks: Vec<LockSummary>,
}

fn entry(slot: &Slot, value: Option<&[u8]>, holding: bool) -> Entry {
    let holder = value.and_then(Holder::parse);
    let since = |s: &str| {
        humantime::parse_rfc3339(s).ok().map(|t| {
            SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs()
        })
    };
    Entry {
        key: slot.key.clone(),
        lease_id: format!("{:x}", slot.lease),
        fencing_token: slot.create_revision,
        cluster_id: String::new(),
        ttl_remaining_s: None,
        held_for_s: holder
            .as_ref()
            .filter(|_| holding)
            .and_then(|h| h.held_for())
            .map(|d| d.as_secs()),
        waited_for_s: holder
            .as_ref()
            .filter(|_| !holding)
            .and_then(|h| since(&h.started_at)),
        host: holder.as_ref().map(|h| h.host.clone()),
        pid: holder.as_ref().map(|h| h.pid),
        user: holder.as_ref().map(|h| h.user.clone()),
        command: holder.as_ref().map(|h| h.command.clone()),
        meta: holder.as_ref().map(|h| h.meta.clone()).unwrap_or_default(),
        started_at: holder.as_ref().map(|h| h.started_at.clone()),
        acquired_at: holder.as_ref().filter(|_| holding).map(|h| {
            h.acquired_at
                .clone()
                .unwrap_or_else(|| h.started_at.clone())
        }),
        mode: value
            .map_or(Mode::Exclusive, Mode::of_value)
            .as_str()
            .to_owned(),
        kind: match &holder {
            Some(h) if h.handle => "handle",
            Some(h) if h.election => "election",
            Some(_) => "etcdlock",
            None => "other",
        }
        .to_owned(),
        etcdlock_version: holder.map(|h| h.version),
    }
}

/// What the queue's keys do not say: the cluster id of every entry, and each holder's remaining
/// TTL (none if it cannot be read).
async fn complete<'a>(
    etcd: &Client,
    holders: impl Iterator<Item = &'a mut Entry>,
    waiters: impl Iterator<Item = &'a mut Entry>,
    with_ttls: bool,
) {
    let holders: Vec<&mut Entry> = holders.collect();
    let leases = holders
        .iter()
        .map(|h| u64::from_str_radix(&h.lease_id, 16).map_or(0, |id| id as i64));
    let ttls = match with_ttls {
        true => lease_ttls(etcd, leases.collect()).await,
        false => HashMap::new(),
    };
    let cluster = format!("{:x}", etcd.cluster_id());
    for h in holders {
        let id = u64::from_str_radix(&h.lease_id, 16).map_or(0, |id| id as i64);
        h.ttl_remaining_s = ttls.get(&id).copied().flatten();
        h.cluster_id.clone_from(&cluster);
    }
    for w in waiters {
        w.cluster_id.clone_from(&cluster);
    }
}

/// The remaining TTL of each lease, 32 requests in flight at a time (`list` of a thousand locks
/// should not take a thousand round trips one after another).
async fn lease_ttls(etcd: &Client, mut ids: Vec<i64>) -> HashMap<i64, Option<i64>> {
    ids.sort_unstable();
    ids.dedup();
    let mut ttls = HashMap::new();
    for chunk in ids.chunks(32) {
        let mut tasks = tokio::task::JoinSet::new();
        for &id in chunk {
            let etcd = etcd.clone();
            tasks.spawn(async move {
                let ttl = etcd
                    .call(|mut c| async move { c.lease_time_to_live(id, None).await })
                    .await;
                (id, ttl.ok().map(|r| r.ttl()))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok((id, ttl)) = joined {
                ttls.insert(id, ttl);
            }
        }
    }
    ttls
}

/// The limit a lock's holders agreed on (1 for etcdctl's mutex), from the oldest holder's value.
fn limit_of(oldest: Option<&[u8]>) -> u32 {
    oldest.and_then(Holder::parse).map_or(1, |h| h.limit)
}

/// Every key in [start, end), keys only, in pages: inspection never reads values it does not
/// need, so an etcd shared with large ordinary data stays listable.
async fn scan_keys(
    etcd: &Client,
    start: Vec<u8>,
    end: Vec<u8>,
    what: &str,
) -> Result<Vec<KeyValue>> {
    let mut start = start;
    let mut keys = Vec::new();
    loop {
        let opts = GetOptions::new()
            .with_range(end.clone())
            .with_keys_only()
            .with_limit(PAGE);
        let resp = etcd
            .retrying(what, || {
                let (start, opts) = (start.clone(), opts.clone());
                etcd.call(|mut c| async move { c.get(start, Some(opts)).await })
            })
            .await?;
        keys.extend_from_slice(resp.kvs());
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok(keys),
        }
    }
}

/// The values of `keys` (absent if a key vanished meanwhile), a bounded batch per request:
/// etcdlock caps what it stores, but a foreign holder's value may be large.
async fn values_of(etcd: &Client, keys: &[&str]) -> Result<HashMap<String, Vec<u8>>> {
    let mut values = HashMap::new();
    let batches: Vec<Vec<String>> = keys
        .chunks(VALUE_BATCH)
        .map(|b| b.iter().map(|k| (*k).to_owned()).collect())
        .collect();
    for group in batches.chunks(VALUE_BATCHES_IN_FLIGHT) {
        let mut tasks = tokio::task::JoinSet::new();
        for batch in group {
            let (etcd, batch) = (etcd.clone(), batch.clone());
            tasks.spawn(async move {
                let txn = Txn::new().and_then(
                    batch
                        .iter()
                        .map(|k| TxnOp::get(k.as_str(), None))
                        .collect::<Vec<_>>(),
                );
                etcd.txn("cannot read the lock's holders", txn).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let resp = joined.map_err(|e| Error::Protocol(format!("value read failed: {e}")))??;
            for op in resp.op_responses() {
                if let TxnOpResponse::Get(g) = op {
                    for kv in g.kvs() {
                        values.insert(
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            kv.value().to_vec(),
                        );
                    }
                }
            }
        }
    }
    Ok(values)
}

/// One lock: its queue (keys only), then the values of its keys (in bounded batches) and the
/// holders' TTLs.
pub async fn status(etcd: &Client, name: &str) -> Result<Status> {
    let prefix = queue::prefix_of(name);
    let keys = scan_keys(
        etcd,
        prefix.clone().into_bytes(),
        crate::queue::range_end(prefix.as_bytes()),
        "cannot read the lock",
    )
    .await?;
    let mut slots = queue::slots(prefix.as_bytes(), &keys);
    slots.sort_by_key(|s| s.create_revision);
    // A user allowed to read the lock but not its records (see the README's RBAC list) still
    // sees who holds it.
    let records = match crate::record::read(etcd, name).await {
        Err(e) if e.to_string().contains("permission denied") => Default::default(),
        other => other?,
    };
    let detached_keys = detached_of(prefix.as_bytes(), &keys);
    let skipped: Vec<String> = keys
        .iter()
        .filter(|kv| {
            !queue::is_queue_key(prefix.as_bytes(), kv) && !is_detached(prefix.as_bytes(), kv)
        })
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect();
    let all: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
    let values = values_of(etcd, &all).await?;
    let value = |s: &Slot| values.get(&s.key).map(Vec::as_slice);
    let limit = limit_of(slots.first().and_then(value));
    for slot in &mut slots {
        slot.mode = Some(
            values
                .get(&slot.key)
                .map_or(Mode::Exclusive, |v| Mode::of_value(v)),
        );
    }
    let split = queue::holders(&slots, limit);
    let mut holders: Vec<Entry> = slots[..split]
        .iter()
        .map(|s| entry(s, value(s), true))
        .collect();
    let mut waiters: Vec<Entry> = slots[split..]
        .iter()
        .map(|s| entry(s, value(s), false))
        .collect();
    complete(etcd, holders.iter_mut(), waiters.iter_mut(), true).await;
    Ok(Status {
        schema_version: SCHEMA_VERSION,
        name: name.to_owned(),
        held: !holders.is_empty(),
        limit,
        holder_count: holders.len(),
        waiter_count: waiters.len(),
        holders,
        waiters,
        detached_keys,
        other_keys: skipped.len(),
        other_key_example: skipped.into_iter().next(),
        last_run: records.last_run,
        last_success: records.last_success,
        next_run_allowed_in_s: records.once_remaining_s,
    })
}

/// Lock keys grouped by lock, each queue in order: every lock once, nested ones included (each
/// key belongs to exactly the lock named by everything before its last slash).
fn group_by_lock(
    keys: &[KeyValue],
    records_prefix: &str,
) -> (HashMap<String, Vec<Slot>>, HashMap<String, usize>) {
    let mut locks: HashMap<String, Vec<Slot>> = HashMap::new();
    for kv in keys {
        if let Some(name) = crate::record::lock_of(records_prefix, kv.key()) {
            // A lock with a run record is listed even while nobody holds it.
            locks
                .entry(String::from_utf8_lossy(name).into_owned())
                .or_default();
        }
        if let Some(name) = queue::lock_name_of(kv) {
            let name = String::from_utf8_lossy(name).into_owned();
            let prefix = queue::prefix_of(&name);
            locks
                .entry(name)
                .or_default()
                .extend(queue::slots(prefix.as_bytes(), std::slice::from_ref(kv)));
        }
    }
    for slots in locks.values_mut() {
        slots.sort_by_key(|s| s.create_revision);
    }
    // Keys named like a holder's but detached from their lease, under the locks found (only
    // those: elsewhere a key ending in hex digits is as likely plain data).
    let mut detached: HashMap<String, usize> = HashMap::new();
    for kv in keys {
        let Some(slash) = kv.key().iter().rposition(|&b| b == b'/') else {
            continue;
        };
        let name = String::from_utf8_lossy(&kv.key()[..slash]).into_owned();
        if locks.contains_key(&name) && is_detached(&kv.key()[..=slash], kv) {
            *detached.entry(name).or_default() += 1;
        }
    }
    (locks, detached)
}

/// A lock's records as `list` read them: the values of `last-run` and `last-success`, and the
/// once-marker's remaining TTL.
#[derive(Default)]
struct ListedRecords<'a> {
    last_run: Option<&'a [u8]>,
    last_success: Option<&'a [u8]>,
    once_remaining_s: Option<i64>,
}

/// One lock's line in the list, from its queue, the values read and its records.
fn summarize(
    name: &str,
    slots: &[Slot],
    values: &HashMap<String, Vec<u8>>,
    records: ListedRecords<'_>,
) -> LockSummary {
    let value = slots
        .first()
        .and_then(|s| values.get(&s.key))
        .map(Vec::as_slice);
    let limit = limit_of(value);
    let with_modes: Vec<Slot> = slots
        .iter()
        .map(|s| Slot {
            mode: values.get(&s.key).map(|v| Mode::of_value(v)),
            ..s.clone()
        })
        .collect();
    let holder_count = queue::holders(&with_modes, limit);
    LockSummary {
        name: name.to_owned(),
        held: holder_count > 0,
        limit,
        holder_count,
        waiter_count: slots.len() - holder_count,
        holders: slots
            .first()
            .map(|s| entry(s, value, true))
            .into_iter()
            .collect(),
        detached_keys: 0,
        last_run: records.last_run.and_then(RunRecord::parse),
        last_success: records.last_success.and_then(RunRecord::parse),
        next_run_allowed_in_s: records.once_remaining_s,
    }
}

/// Every lock under `prefix` (`""`: all keys), each once, nested ones included: the oldest
/// holder's metadata and the counts. Reads keys only, then one value per lock, in batches; the
/// holders' and once-markers' remaining TTLs too (see [`list_with`]).
pub async fn list(etcd: &Client, prefix: &str) -> Result<List> {
    list_with(etcd, prefix, true).await
}

/// [`list`]; without `with_ttls`, no lease is asked for its remaining TTL (one request per
/// lease: the bulk of the time over thousands of locks held by as many leases), and
/// `ttl_remaining_s` and `next_run_allowed_in_s` are `None`. Memory grows with the locks' keys and
/// records, never with the values of other keys under `prefix` (those are read keys only).
pub async fn list_with(etcd: &Client, prefix: &str, with_ttls: bool) -> Result<List> {
    let prefix = prefix.to_owned();
    let end = if prefix.is_empty() {
        vec![0]
    } else {
        crate::queue::range_end(prefix.as_bytes())
    };
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.clone().into_bytes()
    };
    let mut keys = scan_keys(etcd, start, end, "cannot list the locks").await?;
    // The records of the names under `prefix`, where they are not in the range just read.
    let records_prefix = etcd.config().records_prefix();
    let (from, to) = crate::record::range(records_prefix, &prefix);
    if !from.starts_with(prefix.as_bytes()) {
        // Without read permission on the records, the locks are still worth listing.
        match scan_keys(etcd, from, to, "cannot list the run records").await {
            Ok(records) => keys.extend(records),
            Err(Error::Refused { reason, .. }) if reason.contains("permission denied") => {
                debug!("no permission to read the run records; listing locks without them");
            }
            Err(e) => return Err(e),
        }
    }
    let (locks, detached) = group_by_lock(&keys, records_prefix);
    // Keys only, but with their leases: the once-markers' remaining TTLs come from those.
    let present: HashMap<&[u8], i64> = keys.iter().map(|kv| (kv.key(), kv.lease())).collect();
    let record_keys: HashMap<&String, crate::record::Keys> = locks
        .keys()
        .map(|name| (name, crate::record::Keys::of(etcd, name)))
        .collect();
    let record_values: Vec<String> = record_keys
        .values()
        .flat_map(|k| [k.last_run(), k.last_success()])
        .filter(|key| present.contains_key(key.as_bytes()))
        .collect();
    let once_leases: HashMap<&String, i64> = record_keys
        .iter()
        .filter_map(|(name, k)| {
            let lease = *present.get(k.once().as_bytes())?;
            (lease != 0).then_some((*name, lease))
        })
        .collect();
    let once_ttls = match with_ttls {
        true => lease_ttls(etcd, once_leases.values().copied().collect()).await,
        false => HashMap::new(),
    };
    let wanted: Vec<&str> = locks
        .values()
        .filter_map(|s| s.first())
        .map(|s| s.key.as_str())
        .chain(record_values.iter().map(String::as_str))
        .collect();
    let mut values = values_of(etcd, &wanted).await?;
    // A lock held shared has as many holders as it has leading shared keys: read those values too.
    let shared_queues: Vec<&str> = locks
        .values()
        .filter(|slots| {
            let first = slots.first().and_then(|s| values.get(&s.key));
            first.is_some_and(|v| Mode::of_value(v) == Mode::Shared)
        })
        .flat_map(|slots| slots.iter().skip(1).map(|s| s.key.as_str()))
        .collect();
    values.extend(values_of(etcd, &shared_queues).await?);
    let mut summaries: Vec<LockSummary> = locks
        .iter()
        .map(|(name, slots)| {
            let keys = &record_keys[name];
            let records = ListedRecords {
                last_run: values.get(&keys.last_run()).map(Vec::as_slice),
                last_success: values.get(&keys.last_success()).map(Vec::as_slice),
                once_remaining_s: once_leases
                    .get(name)
                    .and_then(|l| once_ttls.get(l).copied().flatten())
                    .map(|t| t.max(0)),
            };
            let mut summary = summarize(name, slots, &values, records);
            summary.detached_keys = detached.get(name).copied().unwrap_or_default();
            summary
        })
        .collect();
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
    let entries = summaries.iter_mut().flat_map(|s| s.holders.iter_mut());
    complete(etcd, entries, std::iter::empty(), with_ttls).await;
    let list = List {
        schema_version: SCHEMA_VERSION,
        prefix,
        locks: summaries,
    };
    Ok(list)
}

/// The name of every lock under `prefix` (`""`: all keys) that has a queue key or a run record,
/// sorted; keys only (for suggestions when a name has nothing).
pub async fn names(etcd: &Client, prefix: &str) -> Result<Vec<String>> {
    let (start, end) = if prefix.is_empty() {
        (vec![0], vec![0])
    } else {
        (
            prefix.as_bytes().to_vec(),
            crate::queue::range_end(prefix.as_bytes()),
        )
    };
    let mut keys = scan_keys(etcd, start, end, "cannot list the locks").await?;
    let records_prefix = etcd.config().records_prefix();
    let (from, to) = crate::record::range(records_prefix, prefix);
    if !from.starts_with(prefix.as_bytes()) {
        // Names with only run records count too, where the user may read them.
        if let Ok(records) = scan_keys(etcd, from, to, "cannot list the run records").await {
            keys.extend(records);
        }
    }
    let mut names: Vec<String> = group_by_lock(&keys, records_prefix).0.into_keys().collect();
    names.sort();
    Ok(names)
}

/// Break a holder's (or a waiter's) hold, as [`status`] listed it: revoke its lease, which
/// deletes its key at once — the next waiter gets the lock, and an etcdlock holder stops its
/// command (its guard sees the lease gone) — and everything else on that lease.
pub async fn break_holder(etcd: &Client, entry: &Entry) -> Result<()> {
    let id = i64::from_str_radix(&entry.lease_id, 16)
        .map_err(|_| Error::Config(format!("{:?} is not a lease id", entry.lease_id)))?;
    etcd.retrying("cannot revoke the holder's lease", || {
        etcd.call(|mut c| async move { c.lease_revoke(id).await })
    })
    .await?;
    Ok(())
}

/// Delete `key` if it is still as `status` saw it (same mod revision): a detached key (see
/// [`Status::detached_keys`]) that nothing else would ever remove. True if deleted.
pub async fn remove_detached(etcd: &Client, detached: &Detached) -> Result<bool> {
    let key = detached.key.clone();
    let txn = Txn::new()
        .when([etcd_client::Compare::mod_revision(
            key.clone(),
            etcd_client::CompareOp::Equal,
            detached.mod_revision,
        )])
        .and_then([TxnOp::delete(key, None)]);
    Ok(etcd
        .txn("cannot delete the detached key", txn)
        .await?
        .succeeded())
}
