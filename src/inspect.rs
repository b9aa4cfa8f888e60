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
use etcd_client::{GetOptions, KeyValue, SortOrder, SortTarget};
use serde::{Deserialize, Serialize};

use crate::cli::{BreakArgs, ListArgs, StatusArgs};
use crate::etcd::{self, Check, Etcd};
use crate::exit::{self, fail};
use crate::lock::{self, prefix_of};
use crate::meta::{short_duration, Holder};

/// Bumped only for incompatible changes; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;
/// Keys per range request when listing: large enough for few round trips, small enough to keep
/// each response well under etcd's default 1.5 MiB request limit.
const PAGE: i64 = 2000;

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

fn entry(kv: &KeyValue, holding: bool) -> Entry {
    let holder = Holder::parse(kv.value());
    let since = |s: &str| {
        humantime::parse_rfc3339(s).ok().map(|t| {
            SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs()
        })
    };
    Entry {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        lease_id: format!("{:x}", kv.lease()),
        fencing_token: kv.create_revision(),
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

/// The limit a lock's holders agreed on (1 for etcdctl's mutex).
fn limit_of(kvs: &[KeyValue]) -> u32 {
    kvs.first()
        .and_then(|kv| Holder::parse(kv.value()))
        .map_or(1, |h| h.limit)
}

/// Read one lock's keys in queue order (one range request) and the holders' TTLs.
async fn read_status(etcd: &Etcd, name: &str) -> Result<Status> {
    let opts = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend);
    let prefix = prefix_of(name);
    let resp = lock::retrying("cannot read the lock", || {
        let (prefix, opts) = (prefix.clone(), opts.clone());
        etcd.call(|mut c| async move { c.get(prefix, Some(opts)).await })
    })
    .await?;
    // Only keys that are lock keys (attached to a lease), in case other data shares the prefix.
    let kvs: Vec<KeyValue> = resp
        .kvs()
        .iter()
        .filter(|kv| is_lock_key(kv))
        .cloned()
        .collect();
    let limit = limit_of(&kvs);
    let split = kvs.len().min(limit as usize);
    let mut holders: Vec<Entry> = kvs[..split].iter().map(|kv| entry(kv, true)).collect();
    for (h, kv) in holders.iter_mut().zip(&kvs) {
        let id = kv.lease();
        h.ttl_remaining_s = etcd
            .call(|mut c| async move { c.lease_time_to_live(id, None).await })
            .await
            .ok()
            .map(|r| r.ttl());
    }
    let waiters: Vec<Entry> = kvs[split..].iter().map(|kv| entry(kv, false)).collect();
    Ok(Status {
        schema_version: SCHEMA_VERSION,
        name: name.to_owned(),
        held: !holders.is_empty(),
        limit,
        holder_count: holders.len(),
        waiter_count: waiters.len(),
        holders,
        waiters,
    })
}

pub async fn status(config: etcd::Config, args: StatusArgs) -> Result<u8> {
    let etcd = Etcd::connect(config, Check::Leader).await?;
    let status = read_status(&etcd, &args.name).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render_status(&status));
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

fn render_status(s: &Status) -> String {
    if !s.held {
        return format!("{}: free\n", s.name);
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
    for e in s.holders.iter().chain(&s.waiters) {
        if !e.meta.is_empty() {
            let pairs: Vec<String> = e.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("meta {}: {}\n", e.lease_id, pairs.join(" ")));
        }
    }
    out
}

/// `NAME/<hex>` attached to the lease of that id: the shape etcdctl lock and etcdlock both write.
fn is_lock_key(kv: &KeyValue) -> bool {
    let key = kv.key();
    let Some(slash) = key.iter().rposition(|&b| b == b'/') else {
        return false;
    };
    let suffix = &key[slash + 1..];
    kv.lease() != 0 && suffix == format!("{:x}", kv.lease()).as_bytes()
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
    let mut start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.clone().into_bytes()
    };
    // name -> its lock keys; keys arrive sorted by key, so order within a lock is fixed below.
    let mut locks: HashMap<String, Vec<KeyValue>> = HashMap::new();
    loop {
        let opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        let resp = lock::retrying("cannot list the locks", || {
            let (start, opts) = (start.clone(), opts.clone());
            etcd.call(|mut c| async move { c.get(start, Some(opts)).await })
        })
        .await?;
        for kv in resp.kvs().iter().filter(|kv| is_lock_key(kv)) {
            let key = kv.key();
            let slash = key.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let name = String::from_utf8_lossy(&key[..slash]).into_owned();
            locks.entry(name).or_default().push(kv.clone());
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => break,
        }
    }
    let mut summaries: Vec<LockSummary> = locks
        .into_iter()
        .map(|(name, mut kvs)| {
            kvs.sort_by_key(KeyValue::create_revision);
            let limit = limit_of(&kvs);
            let holder_count = kvs.len().min(limit as usize);
            LockSummary {
                name,
                held: holder_count > 0,
                limit,
                holder_count,
                waiter_count: kvs.len() - holder_count,
                holders: kvs.first().map(|kv| entry(kv, true)).into_iter().collect(),
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
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", render_list(&list));
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

pub async fn break_lock(config: etcd::Config, args: BreakArgs) -> Result<u8> {
    let etcd = Etcd::connect(config, Check::Leader).await?;
    let status = read_status(&etcd, &args.name).await?;
    if !status.held {
        eprintln!("etcdlock: {} is not held; nothing to break", args.name);
        return Ok(1);
    }
    let describe = |e: &Entry| match (&e.host, e.pid) {
        (Some(h), Some(p)) => format!(
            "{h} pid {p} ({}) for {}",
            e.command.as_deref().unwrap_or_default().join(" "),
            age(e.held_for_s)
        ),
        _ => format!("a holder without etcdlock metadata (lease {})", e.lease_id),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(fail(
                exit::USAGE,
                "not breaking without confirmation: stdin is not a terminal; pass --yes",
            ));
        }
        let question = format!(
            "Break {} held by {}? [y/N] ",
            args.name,
            status
                .holders
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let answer = tokio::task::spawn_blocking(move || {
            eprint!("{question}");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await??;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            eprintln!("etcdlock: not broken");
            return Ok(exit::USAGE);
        }
    }
    for holder in &status.holders {
        let id = i64::from_str_radix(&holder.lease_id, 16).unwrap_or_default();
        lock::retrying("cannot revoke the holder's lease", || {
            etcd.call(|mut c| async move { c.lease_revoke(id).await })
        })
        .await?;
        println!(
            "broke {}: revoked lease {} of {}",
            args.name,
            holder.lease_id,
            describe(holder)
        );
    }
    Ok(0)
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
