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
    entry_of(slot, value.and_then(Holder::parse), holding)
}

/// [`entry`], from the value already parsed (`None`: no etcdlock metadata).
fn entry_of(slot: &Slot, holder: Option<Holder>, holding: bool) -> Entry {
    let since = |s: &str| {
        humantime::parse_rfc3339(s).ok().map(|t| {
            SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs()
        })
    };
    let mut entry = Entry {
        key: slot.key.clone(),
        lease_id: format!("{:x}", slot.lease),
        fencing_token: slot.create_revision,
        cluster_id: String::new(),
        ttl_remaining_s: None,
        held_for_s: None,
        waited_for_s: None,
        host: None,
        pid: None,
        user: None,
        command: None,
        meta: BTreeMap::new(),
        started_at: None,
        acquired_at: None,
        etcdlock_version: None,
        mode: Mode::Exclusive.as_str().to_owned(),
        kind: "other".to_owned(),
    };
    // `list` makes one entry per lock: the holder's fields move into it, none is copied.
    let Some(h) = holder else {
        return entry;
    };
    if holding {
        entry.held_for_s = h.held_for().map(|d| d.as_secs());
        entry.acquired_at = Some(h.acquired_at.unwrap_or_else(|| h.started_at.clone()));
    } else {
        entry.waited_for_s = since(&h.started_at);
    }
    entry.mode = match h.shared {
        true => Mode::Shared,
        false => Mode::Exclusive,
    }
    .as_str()
    .to_owned();
    entry.kind = match (h.handle, h.election) {
        (true, _) => "handle",
        (_, true) => "election",
        _ => "etcdlock",
    }
    .to_owned();
    entry.host = Some(h.host);
    entry.pid = Some(h.pid);
    entry.user = Some(h.user);
    entry.command = Some(h.command);
    entry.meta = h.meta;
    entry.started_at = Some(h.started_at);
    entry.etcdlock_version = Some(h.version);
    entry
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

/// What `list` and [`names`] keep of the keys they read, page by page: the locks' queue keys (with
/// their values, when asked for), the locks' records, and the keys named like a holder's but
/// detached from their lease. Every other key goes with its page: memory grows with the locks,
/// never with unrelated keys. Plain lists in the order read (by key), sorted by lock name once at
/// the end: a map keyed by name cost a hash and a lookup per key (a third of `list`'s CPU over
/// 10 000 locks).
#[derive(Default)]
struct Gathered {
    /// Queue keys: the lock's name, the key, its value (`None`: not read, or gone before it was).
    queues: Vec<(String, Slot, Option<Vec<u8>>)>,
    /// Records: the lock's name and the record.
    records: Vec<(String, Record)>,
    /// Keys named like a holder's but not attached to that lease, by the name they would lock.
    detached: Vec<String>,
}

/// One record as `list` reads it.
enum Record {
    /// `last-run`'s value.
    LastRun(Option<Vec<u8>>),
    /// `last-success`'s value.
    LastSuccess(Option<Vec<u8>>),
    /// The once-marker's lease.
    Once(i64),
}

/// A lock's records as `list` reads them: the values of `last-run` and `last-success`, the
/// once-marker's lease.
#[derive(Default)]
struct FoundRecords {
    last_run: Option<Vec<u8>>,
    last_success: Option<Vec<u8>>,
    once_lease: Option<i64>,
}

/// What a key is to `list`.
enum Found<'a> {
    /// A queue key of the lock named.
    Queue(&'a [u8]),
    /// A record of the lock named, of this kind (`last-run`, `last-success`, `once`).
    Record(&'a [u8], &'a [u8]),
    /// Named like a queue key of the lock named, but not attached to that lease.
    Detached(&'a [u8]),
    /// Anything else: dropped.
    Other,
}

impl Found<'_> {
    /// Whether `list` needs the key's value.
    fn wants_value(&self) -> bool {
        match self {
            Found::Queue(_) => true,
            Found::Record(_, kind) => *kind != b"once",
            Found::Detached(_) | Found::Other => false,
        }
    }
}

/// What `kv` is, with the records kept under `records_prefix`. No allocation: every key of the
/// range goes through here.
fn classify<'a>(records_prefix: &str, kv: &'a KeyValue) -> Found<'a> {
    if let Some(name) = queue::lock_name_of(kv) {
        return Found::Queue(name);
    }
    let key = kv.key();
    let Some(slash) = key.iter().rposition(|&b| b == b'/') else {
        return Found::Other;
    };
    if let Some(name) = crate::record::lock_of(records_prefix, key) {
        return Found::Record(name, &key[slash + 1..]);
    }
    if is_detached(&key[..=slash], kv) {
        return Found::Detached(&key[..slash]);
    }
    Found::Other
}

impl Gathered {
    /// Keep what `list` needs of `kv` (`value`: its value, if read).
    fn take(&mut self, records_prefix: &str, kv: &KeyValue, value: Option<&[u8]>) {
        let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        let value = || value.map(<[u8]>::to_vec);
        match classify(records_prefix, kv) {
            Found::Queue(n) => {
                let slot = Slot {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    create_revision: kv.create_revision(),
                    lease: kv.lease(),
                    mode: None,
                };
                self.queues.push((name(n), slot, value()));
            }
            Found::Record(n, kind) => {
                let record = match kind {
                    b"last-run" => Record::LastRun(value()),
                    b"last-success" => Record::LastSuccess(value()),
                    _ if kv.lease() != 0 => Record::Once(kv.lease()),
                    _ => Record::Once(0),
                };
                self.records.push((name(n), record));
            }
            Found::Detached(n) => self.detached.push(name(n)),
            Found::Other => {}
        }
    }

    /// Add what another range found (the records' range, beside the locks' own).
    fn merge(&mut self, other: Gathered) {
        self.queues.extend(other.queues);
        self.records.extend(other.records);
        self.detached.extend(other.detached);
    }

    /// Sort by lock name (each queue by create revision): what [`Gathered::locks`] walks.
    fn sort(&mut self) {
        // Read by key, so nearly sorted already: the sort only fixes the few places where key
        // order and name order differ ("a-b/..." sorts before "a/...").
        self.queues.sort_by(|(a, x, _), (b, y, _)| {
            a.cmp(b).then(x.create_revision.cmp(&y.create_revision))
        });
        self.records.sort_by(|(a, _), (b, _)| a.cmp(b));
        self.detached.sort_unstable();
    }

    /// Every lock found, by name: its queue (oldest first), its records, and how many detached
    /// keys are under it. After [`Gathered::sort`].
    #[allow(clippy::type_complexity)]
    fn locks(
        &mut self,
    ) -> Vec<(
        String,
        &mut [(String, Slot, Option<Vec<u8>>)],
        FoundRecords,
        usize,
    )> {
        let mut out = Vec::new();
        let (mut queues, mut records) = (&mut self.queues[..], &mut self.records[..]);
        let mut detached = &self.detached[..];
        loop {
            // The next name of either list (a lock with a run record is listed even while
            // nobody holds it).
            let name = match (queues.first(), records.first()) {
                (Some((q, ..)), Some((r, _))) => q.min(r).clone(),
                (Some((q, ..)), None) => q.clone(),
                (None, Some((r, _))) => r.clone(),
                (None, None) => return out,
            };
            let n = queues.iter().take_while(|(q, ..)| *q == name).count();
            let (queue, rest) = std::mem::take(&mut queues).split_at_mut(n);
            queues = rest;
            let n = records.iter().take_while(|(r, _)| *r == name).count();
            let (mine, rest) = std::mem::take(&mut records).split_at_mut(n);
            records = rest;
            let mut found = FoundRecords::default();
            for (_, record) in mine {
                match record {
                    Record::LastRun(v) => found.last_run = v.take(),
                    Record::LastSuccess(v) => found.last_success = v.take(),
                    Record::Once(lease) => found.once_lease = (*lease != 0).then_some(*lease),
                }
            }
            let skip = detached.iter().take_while(|d| **d < name).count();
            detached = &detached[skip..];
            let here = detached.iter().take_while(|d| **d == name).count();
            detached = &detached[here..];
            out.push((name, queue, found, here));
        }
    }
}

/// Keys in the first range request read with values; later ones are sized from the bytes per
/// key seen so far to weigh about [`VALUES_PAGE_BYTES`], between [`MIN_VALUES_PAGE`] and
/// [`MAX_VALUES_PAGE`] keys.
const FIRST_VALUES_PAGE: i64 = 1000;
/// The fewest keys in a page read with values.
const MIN_VALUES_PAGE: i64 = 64;
/// The most keys in a page read with values (10 000 locks of etcdlock's size: about 3 MB).
const MAX_VALUES_PAGE: i64 = 10_000;
/// Half the 4 MiB a response may weigh (tonic's default): a page of locks' keys is read in one
/// request, and a jump in value sizes still fits or is refused whole (then read keys only).
const VALUES_PAGE_BYTES: usize = 2 << 20;

/// One page of [start, end): `Ok(None)` if the answer would exceed what the client accepts (the
/// client refuses it by its length, before reading it).
async fn page(
    etcd: &Client,
    start: &[u8],
    end: &[u8],
    opts: GetOptions,
    what: &str,
) -> Result<Option<etcd_client::GetResponse>> {
    let opts = opts.with_range(end.to_vec());
    etcd.retrying(what, || {
        let (start, opts) = (start.to_vec(), opts.clone());
        async move {
            match etcd
                .call(|mut c| async move { c.get(start, Some(opts)).await })
                .await
            {
                Err(crate::client::CallError::Etcd(etcd_client::Error::GRpcStatus(s)))
                    if s.code() == tonic::Code::OutOfRange =>
                {
                    Ok(None)
                }
                other => other.map(Some),
            }
        }
    })
    .await
}

/// Read [start, end) in pages and keep what `list` needs ([`Gathered`]), with the values it needs
/// if `with_values`. A page is read with its values while most of its keys are locks' (one request
/// for keys and values, the common case under a lock prefix), keys only where most are not (a
/// prefix shared with ordinary data, whose values are never wanted): then the values wanted are
/// read by key, in bounded batches. A page too large for one answer is read keys only.
async fn gather(
    etcd: &Client,
    (mut start, end): (Vec<u8>, Vec<u8>),
    with_values: bool,
    what: &str,
) -> Result<Gathered> {
    let records_prefix = etcd.config().records_prefix();
    let mut found = Gathered::default();
    // `Some(limit)`: read the next page with values.
    let mut values_page = with_values.then_some(FIRST_VALUES_PAGE);
    loop {
        let with = match values_page {
            Some(limit) => {
                let opts = GetOptions::new().with_limit(limit);
                page(etcd, &start, &end, opts, what).await?
            }
            None => None,
        };
        let read_values = with.is_some();
        let resp = match with {
            Some(resp) => resp,
            None => {
                let opts = GetOptions::new().with_keys_only().with_limit(PAGE);
                page(etcd, &start, &end, opts, what)
                    .await?
                    .ok_or_else(|| Error::Protocol(format!("{what}: a page of keys too large")))?
            }
        };
        let kvs = resp.kvs();
        let wanted: Vec<&KeyValue> = kvs
            .iter()
            .filter(|kv| classify(records_prefix, kv).wants_value())
            .collect();
        if read_values {
            for kv in kvs {
                found.take(records_prefix, kv, Some(kv.value()));
            }
        } else {
            let keys: Vec<String> = match with_values {
                true => wanted
                    .iter()
                    .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                    .collect(),
                false => Vec::new(),
            };
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let values = values_of(etcd, &keys).await?;
            for kv in kvs {
                let key = String::from_utf8_lossy(kv.key());
                found.take(
                    records_prefix,
                    kv,
                    values.get(key.as_ref()).map(Vec::as_slice),
                );
            }
        }
        let mostly_wanted = wanted.len() * 2 >= kvs.len();
        values_page = match (with_values && mostly_wanted, read_values) {
            (false, _) => None,
            (true, false) => Some(MIN_VALUES_PAGE),
            (true, true) => {
                let bytes: usize = kvs
                    .iter()
                    .map(|kv| kv.key().len() + kv.value().len() + 32)
                    .sum();
                let per_key = (bytes / kvs.len().max(1)).max(1);
                Some(((VALUES_PAGE_BYTES / per_key) as i64).clamp(MIN_VALUES_PAGE, MAX_VALUES_PAGE))
            }
        };
        match kvs.last() {
            Some(last) if resp.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok(found),
        }
    }
}

/// The locks under `prefix` (`""`: all keys) and their records: one range over `prefix` and,
/// where the records are not in it, one over theirs, at once. A user who may not read the records
/// still gets the locks.
async fn gather_locks(etcd: &Client, prefix: &str, with_values: bool) -> Result<Gathered> {
    let range = if prefix.is_empty() {
        (vec![0], vec![0])
    } else {
        (
            prefix.as_bytes().to_vec(),
            crate::queue::range_end(prefix.as_bytes()),
        )
    };
    let records_range = crate::record::range(etcd.config().records_prefix(), prefix);
    let separate = !records_range.0.starts_with(prefix.as_bytes());
    let (locks, records) = tokio::join!(
        gather(etcd, range, with_values, "cannot list the locks"),
        async {
            match separate {
                true => Some(
                    gather(
                        etcd,
                        records_range,
                        with_values,
                        "cannot list the run records",
                    )
                    .await,
                ),
                false => None,
            }
        }
    );
    let mut locks = locks?;
    match records {
        Some(Ok(records)) => locks.merge(records),
        Some(Err(Error::Refused { reason, .. })) if reason.contains("permission denied") => {
            debug!("no permission to read the run records; listing locks without them");
        }
        Some(Err(e)) => return Err(e),
        None => {}
    }
    Ok(locks)
}

/// One lock's line in the list, from its queue (oldest first, with the values read) and its
/// records. The oldest holder's value is parsed once; the others' only where a shared holder leads
/// the queue (their modes then say how many hold it).
fn summarize(
    name: String,
    queue: &[(String, Slot, Option<Vec<u8>>)],
    records: FoundRecords,
    once_remaining_s: Option<i64>,
) -> LockSummary {
    let first = queue.first();
    let holder = first
        .and_then(|(_, _, v)| v.as_deref())
        .and_then(Holder::parse);
    let limit = holder.as_ref().map_or(1, |h| h.limit);
    let holder_count = match &holder {
        Some(h) if h.shared => {
            1 + queue[1..]
                .iter()
                .take_while(|(_, _, v)| v.as_deref().map(Mode::of_value) == Some(Mode::Shared))
                .count()
        }
        _ => queue.len().min(limit as usize),
    };
    LockSummary {
        name,
        held: holder_count > 0,
        limit,
        holder_count,
        waiter_count: queue.len() - holder_count,
        holders: first
            .map(|(_, s, _)| entry_of(s, holder, true))
            .into_iter()
            .collect(),
        detached_keys: 0,
        last_run: records.last_run.as_deref().and_then(RunRecord::parse),
        last_success: records.last_success.as_deref().and_then(RunRecord::parse),
        next_run_allowed_in_s: once_remaining_s,
    }
}

/// Every lock under `prefix` (`""`: all keys), each once, nested ones included: the oldest
/// holder's metadata and the counts; the holders' and once-markers' remaining TTLs too (see
/// [`list_with`]).
pub async fn list(etcd: &Client, prefix: &str) -> Result<List> {
    list_with(etcd, prefix, true).await
}

/// [`list`]; without `with_ttls`, no lease is asked for its remaining TTL (one request per
/// lease: the bulk of the time over thousands of locks held by as many leases), and
/// `ttl_remaining_s` and `next_run_allowed_in_s` are `None`.
///
/// Reads `prefix` in pages, each with its values while most of its keys are locks' and keys only
/// where they are not, and the records' range beside it. Memory grows with the locks' keys and
/// records, never with the other keys under `prefix`: those are dropped page by page, and their
/// values are read only inside a page that is mostly locks' keys.
pub async fn list_with(etcd: &Client, prefix: &str, with_ttls: bool) -> Result<List> {
    let mut found = gather_locks(etcd, prefix, true).await?;
    found.sort();
    let once_leases: Vec<i64> = found
        .records
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Once(lease) if *lease != 0 => Some(*lease),
            _ => None,
        })
        .collect();
    let once_ttls = match with_ttls {
        true => lease_ttls(etcd, once_leases).await,
        false => HashMap::new(),
    };
    let mut summaries: Vec<LockSummary> = found
        .locks()
        .into_iter()
        .map(|(name, queue, records, detached)| {
            let once = records
                .once_lease
                .and_then(|l| once_ttls.get(&l).copied().flatten())
                .map(|t| t.max(0));
            let mut summary = summarize(name, queue, records, once);
            summary.detached_keys = detached;
            summary
        })
        .collect();
    let entries = summaries.iter_mut().flat_map(|s| s.holders.iter_mut());
    complete(etcd, entries, std::iter::empty(), with_ttls).await;
    Ok(List {
        schema_version: SCHEMA_VERSION,
        prefix: prefix.to_owned(),
        locks: summaries,
    })
}

/// The name of every lock under `prefix` (`""`: all keys) that has a queue key or a run record,
/// sorted; keys only (for suggestions when a name has nothing).
pub async fn names(etcd: &Client, prefix: &str) -> Result<Vec<String>> {
    let mut found = gather_locks(etcd, prefix, false).await?;
    found.sort();
    Ok(found.locks().into_iter().map(|(name, ..)| name).collect())
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
