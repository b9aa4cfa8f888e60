//! Inspection for operators: `status` (who holds a lock, since when, who waits), `list` (every lock
//! under a prefix) and `break` (revoke a stuck holder's lease).
//!
//! Output is a compact table for people (fits 80 columns) or JSON for programs. The JSON schema is
//! versioned (`schema_version`) and shares its field names between `status` and `list`; fields are
//! only ever added. Locks taken by `etcdctl lock` (empty values) are shown with unknown metadata.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use etcd_client::{GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use crate::cli::{BreakArgs, ListArgs, StatusArgs};
use crate::etcd::{self, Check, Etcd};
use crate::exit::{self, fail};
use crate::lock;
use crate::meta::{short_duration, Holder};
use crate::output;
use crate::queue::{self, Slot};

/// Bumped only for incompatible changes; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;
/// Keys per range request when listing: large enough for few round trips, small enough to keep
/// each response well under etcd's default 1.5 MiB request limit.
const PAGE: i64 = 2000;
/// Values per request when reading holders' metadata.
const VALUE_BATCH: usize = 32;

/// One key of a lock: a holder or a waiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    /// Lease id, lowercase hex (the key's suffix).
    pub lease_id: String,
    /// Create revision of the key: the holder's fencing token.
    pub fencing_token: i64,
    /// Seconds until the lease expires if not renewed (holders only).
    pub ttl_remaining_s: Option<i64>,
    /// Seconds since it acquired the lock (holders with etcdlock metadata).
    pub held_for_s: Option<u64>,
    /// Seconds since it joined the queue (waiters with etcdlock metadata).
    pub waited_for_s: Option<u64>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub user: Option<String>,
    pub command: Option<Vec<String>>,
    pub meta: BTreeMap<String, String>,
    pub started_at: Option<String>,
    pub acquired_at: Option<String>,
    /// etcdlock version of the holder; null for keys not written by etcdlock (etcdctl lock).
    pub etcdlock_version: Option<String>,
}

/// `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub schema_version: u32,
    pub name: String,
    pub held: bool,
    pub limit: u32,
    pub holder_count: usize,
    pub waiter_count: usize,
    pub holders: Vec<Entry>,
    pub waiters: Vec<Entry>,
    /// Keys under `NAME/` that are not in this lock's queue (nested locks' keys, keys without a
    /// lease): skipped, and counted here.
    pub other_keys: usize,
    /// One of them, for the message.
    pub other_key_example: Option<String>,
}

/// One lock in `list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSummary {
    pub name: String,
    pub held: bool,
    pub limit: u32,
    pub holder_count: usize,
    pub waiter_count: usize,
    /// The oldest holder.
    pub holders: Vec<Entry>,
}

/// `list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    pub schema_version: u32,
    pub prefix: String,
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
        acquired_at: holder.as_ref().and_then(|h| h.acquired_at.clone()),
        etcdlock_version: holder.map(|h| h.version),
    }
}

/// The limit a lock's holders agreed on (1 for etcdctl's mutex), from the oldest holder's value.
fn limit_of(oldest: Option<&[u8]>) -> u32 {
    oldest.and_then(Holder::parse).map_or(1, |h| h.limit)
}

/// Every key in [start, end), keys only, in pages: inspection never reads values it does not
/// need, so an etcd shared with large ordinary data stays listable.
async fn scan_keys(etcd: &Etcd, start: Vec<u8>, end: Vec<u8>, what: &str) -> Result<Vec<KeyValue>> {
    let mut start = start;
    let mut keys = Vec::new();
    loop {
        let opts = GetOptions::new()
            .with_range(end.clone())
            .with_keys_only()
            .with_limit(PAGE);
        let resp = lock::retrying(what, || {
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
async fn values_of(etcd: &Etcd, keys: &[&str]) -> Result<HashMap<String, Vec<u8>>> {
    let mut values = HashMap::new();
    for batch in keys.chunks(VALUE_BATCH) {
        let txn = Txn::new().and_then(
            batch
                .iter()
                .map(|k| TxnOp::get(*k, None))
                .collect::<Vec<_>>(),
        );
        let resp = lock::retrying("cannot read the lock's holders", || {
            let txn = txn.clone();
            etcd.call(|mut c| async move { c.txn(txn).await })
        })
        .await?;
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
    Ok(values)
}

/// Read one lock: its queue (keys only), then the values of its keys and the holders' TTLs.
async fn read_status(etcd: &Etcd, name: &str) -> Result<Status> {
    let prefix = queue::prefix_of(name);
    let keys = scan_keys(
        etcd,
        prefix.clone().into_bytes(),
        range_end(prefix.as_bytes()),
        "cannot read the lock",
    )
    .await?;
    let mut slots = queue::slots(prefix.as_bytes(), &keys);
    slots.sort_by_key(|s| s.create_revision);
    let skipped: Vec<String> = keys
        .iter()
        .filter(|kv| !queue::is_queue_key(prefix.as_bytes(), kv))
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect();
    let all: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
    let values = values_of(etcd, &all).await?;
    let value = |s: &Slot| values.get(&s.key).map(Vec::as_slice);
    let limit = limit_of(slots.first().and_then(value));
    let split = slots.len().min(limit as usize);
    let mut holders: Vec<Entry> = slots[..split]
        .iter()
        .map(|s| entry(s, value(s), true))
        .collect();
    for (h, s) in holders.iter_mut().zip(&slots) {
        let id = s.lease;
        h.ttl_remaining_s = etcd
            .call(|mut c| async move { c.lease_time_to_live(id, None).await })
            .await
            .ok()
            .map(|r| r.ttl());
    }
    let waiters: Vec<Entry> = slots[split..]
        .iter()
        .map(|s| entry(s, value(s), false))
        .collect();
    Ok(Status {
        schema_version: SCHEMA_VERSION,
        name: name.to_owned(),
        held: !holders.is_empty(),
        limit,
        holder_count: holders.len(),
        waiter_count: waiters.len(),
        holders,
        waiters,
        other_keys: skipped.len(),
        other_key_example: skipped.into_iter().next(),
    })
}

pub async fn status(config: etcd::Config, args: StatusArgs) -> Result<u8> {
    let etcd = Etcd::connect(config, Check::Leader).await?;
    let status = read_status(&etcd, &args.name).await?;
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&status)?))?;
    } else {
        output::print(&render_status(&status))?;
    }
    Ok(if status.held { 0 } else { 1 })
}

fn age(secs: Option<u64>) -> String {
    secs.map_or_else(
        || "?".to_owned(),
        |s| short_duration(Duration::from_secs(s)),
    )
}

fn who(e: &Entry) -> String {
    match (&e.user, &e.host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        _ => "(etcdctl?)".to_owned(),
    }
}

fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// An aligned table, at most 80 columns wide: the last column is truncated to fit.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let fixed: usize = widths[..n - 1].iter().map(|w| w + 2).sum();
    let last = 80usize.saturating_sub(fixed).max(10);
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == n {
                text.push_str(&fit(cell, last));
            } else {
                text.push_str(&format!("{:<w$}  ", fit(cell, widths[i]), w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|s| s.to_string()).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

/// One line about keys under `NAME/` that are not this lock's (empty if there are none).
fn other_keys_note(s: &Status) -> String {
    match (s.other_keys, &s.other_key_example) {
        (0, _) | (_, None) => String::new(),
        (n, Some(example)) => format!(
            "({n} other key{} under {}/ skipped: nested locks or data without a lease, e.g. {example})\n",
            if n == 1 { "" } else { "s" },
            s.name
        ),
    }
}

fn render_status(s: &Status) -> String {
    if !s.held {
        return format!("{}: free\n{}", s.name, other_keys_note(s));
    }
    let limit = if s.limit > 1 {
        format!(" (limit {})", s.limit)
    } else {
        String::new()
    };
    let mut out = format!(
        "{}: held by {}{limit} · {} waiting\n",
        s.name, s.holder_count, s.waiter_count
    );
    let rows: Vec<Vec<String>> = s
        .holders
        .iter()
        .map(|e| ("holder", e, age(e.held_for_s)))
        .chain(s.waiters.iter().map(|e| ("waiter", e, age(e.waited_for_s))))
        .map(|(role, e, since)| {
            vec![
                role.to_owned(),
                e.lease_id.clone(),
                e.fencing_token.to_string(),
                who(e),
                e.pid.map_or("?".to_owned(), |p| p.to_string()),
                since,
                e.ttl_remaining_s
                    .map_or("-".to_owned(), |t| format!("{t}s")),
                e.command.as_ref().map_or("?".to_owned(), |c| c.join(" ")),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "ROLE",
            "LEASE",
            "TOKEN",
            "USER@HOST",
            "PID",
            "FOR",
            "TTL",
            "COMMAND",
        ],
        &rows,
    ));
    out.push_str(&other_keys_note(s));
    for e in s.holders.iter().chain(&s.waiters) {
        if !e.meta.is_empty() {
            let pairs: Vec<String> = e.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("meta {}: {}\n", e.lease_id, pairs.join(" ")));
        }
    }
    out
}

/// The end of the key range holding every key that starts with `prefix` (etcd's convention).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub async fn list(config: etcd::Config, args: ListArgs) -> Result<u8> {
    let etcd = Etcd::connect(config, Check::Leader).await?;
    let prefix = args.prefix.unwrap_or_default();
    let end = if prefix.is_empty() {
        vec![0]
    } else {
        range_end(prefix.as_bytes())
    };
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.clone().into_bytes()
    };
    let keys = scan_keys(&etcd, start, end, "cannot list the locks").await?;
    // name -> its queue; every lock once, nested ones included (each key belongs to exactly the
    // lock named by everything before its last slash).
    let mut locks: HashMap<String, Vec<Slot>> = HashMap::new();
    for kv in &keys {
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
    let oldest: Vec<&str> = locks
        .values()
        .filter_map(|s| s.first())
        .map(|s| s.key.as_str())
        .collect();
    let values = values_of(&etcd, &oldest).await?;
    let mut summaries: Vec<LockSummary> = locks
        .iter()
        .map(|(name, slots)| {
            let value = slots
                .first()
                .and_then(|s| values.get(&s.key))
                .map(Vec::as_slice);
            let limit = limit_of(value);
            let holder_count = slots.len().min(limit as usize);
            LockSummary {
                name: name.clone(),
                held: holder_count > 0,
                limit,
                holder_count,
                waiter_count: slots.len() - holder_count,
                holders: slots
                    .first()
                    .map(|s| entry(s, value, true))
                    .into_iter()
                    .collect(),
            }
        })
        .collect();
    summaries.sort_by(|a, b| a.name.cmp(&b.name));
    let list = List {
        schema_version: SCHEMA_VERSION,
        prefix,
        locks: summaries,
    };
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
    } else {
        output::print(&render_list(&list))?;
    }
    Ok(0)
}

fn render_list(list: &List) -> String {
    if list.locks.is_empty() {
        return "no locks\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .locks
        .iter()
        .map(|l| {
            let oldest = l.holders.first();
            vec![
                l.name.clone(),
                format!("{}/{}", l.holder_count, l.limit),
                l.waiter_count.to_string(),
                oldest.map_or("?".to_owned(), |e| age(e.held_for_s)),
                oldest.map_or("?".to_owned(), |e| match (&e.host, e.pid) {
                    (Some(h), Some(p)) => format!("{h} pid {p}"),
                    _ => "(etcdctl?)".to_owned(),
                }),
            ]
        })
        .collect();
    table(&["LOCK", "HELD", "WAITING", "FOR", "OLDEST HOLDER"], &rows)
}

/// "web-3 pid 4121 (./backup.sh) for 3m12s", or what is known of a holder that is not etcdlock.
fn describe_holder(e: &Entry) -> String {
    match (&e.host, e.pid) {
        (Some(h), Some(p)) => format!(
            "{h} pid {p} ({}) for {}",
            e.command.as_deref().unwrap_or_default().join(" "),
            age(e.held_for_s)
        ),
        _ => format!("a holder without etcdlock metadata (lease {})", e.lease_id),
    }
}

pub async fn break_lock(config: etcd::Config, args: BreakArgs) -> Result<u8> {
    let etcd = Etcd::connect(config, Check::Leader).await?;
    let status = read_status(&etcd, &args.name).await?;
    let targets: Vec<&Entry> = match &args.lease {
        None => status.holders.iter().collect(),
        Some(id) => {
            let id = id.trim_start_matches("0x").to_ascii_lowercase();
            let found: Vec<&Entry> = status
                .holders
                .iter()
                .chain(&status.waiters)
                .filter(|e| e.lease_id == id)
                .collect();
            if found.is_empty() {
                output::warn(format!(
                    "{} has no holder or waiter with lease {id}; see etcdlock status {}",
                    args.name, args.name
                ));
                return Ok(1);
            }
            found
        }
    };
    if targets.is_empty() {
        output::warn(format!("{} is not held; nothing to break", args.name));
        return Ok(1);
    }
    if !args.yes && !confirm(&args.name, &targets).await? {
        output::warn("not broken");
        return Ok(exit::USAGE);
    }
    for e in targets {
        let id = i64::from_str_radix(&e.lease_id, 16).unwrap_or_default();
        lock::retrying("cannot revoke the holder's lease", || {
            etcd.call(|mut c| async move { c.lease_revoke(id).await })
        })
        .await?;
        output::print(&format!(
            "broke {}: revoked lease {} of {}\n",
            args.name,
            e.lease_id,
            describe_holder(e)
        ))?;
        if e.etcdlock_version.is_none() {
            output::warn(format!(
                "note: lease {} was not etcdlock's (e.g. etcdctl lock): its command keeps running; only the lock is gone",
                e.lease_id
            ));
        }
    }
    Ok(0)
}

/// Ask on the terminal; refuse (usage error) when there is none.
async fn confirm(name: &str, targets: &[&Entry]) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            exit::USAGE,
            "not breaking without confirmation: stdin is not a terminal; pass --yes",
        ));
    }
    let question = format!(
        "Break {name} held by {}? [y/N] ",
        targets
            .iter()
            .map(|e| describe_holder(e))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let answer = tokio::task::spawn_blocking(move || {
        output::stderr(&question);
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_follows_etcd() {
        assert_eq!(range_end(b"/jobs/"), b"/jobs0".to_vec());
        assert_eq!(range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(range_end(b"\xff"), vec![0]);
    }

    #[test]
    fn tables_fit_80_columns() {
        let rows = vec![vec!["x".repeat(10), "y".repeat(200)]];
        let t = table(&["A", "B"], &rows);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.contains('…'));
    }
}
