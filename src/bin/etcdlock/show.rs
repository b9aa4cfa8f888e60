//! `status`, `list` and `break`: the library's inspection data rendered for people (a compact
//! table that fits 80 columns) or programs (JSON, schema in the README).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use etcdlock::client::Check;
use etcdlock::inspect::{self, Detached, Entry, List, Status};
use etcdlock::record::RunRecord;

use crate::cli::{BreakArgs, ForgetArgs, ListArgs, StatusArgs};
use crate::exit::{self, fail};
use crate::output::{self, short_duration};

pub async fn status(config: etcdlock::Config, args: StatusArgs) -> Result<u8> {
    let etcd = crate::exit::connect(config, Check::Leader).await?;
    let status = inspect::status(&etcd, &args.name).await?;
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&status)?))?;
    } else {
        output::print(&render_status(&status))?;
        if nothing_there(&status) {
            // "free" alone reads the same for a typo as for a lock that is merely not held.
            let names = inspect::names(&etcd, "").await.unwrap_or_default();
            let hint = match nearest(&args.name, &names) {
                Some(near) => format!("; did you mean {near}?"),
                None => " (etcdlock list shows every lock)".to_owned(),
            };
            output::warn(format!(
                "nothing in etcd is named {}: no lock key, waiter or run record{hint}",
                args.name
            ));
        }
    }
    // With --json the document says held or free: exit 0 whenever it could be read, so that
    // `status --json | jq` works under `set -o pipefail`. The plain form keeps flock-like codes.
    Ok(if status.held || args.json { 0 } else { 1 })
}

/// No key, record or marker of the name at all (and none under `NAME/`).
fn nothing_there(s: &Status) -> bool {
    !s.held
        && s.waiters.is_empty()
        && s.other_keys == 0
        && s.last_run.is_none()
        && s.last_success.is_none()
        && s.next_run_allowed_in_s.is_none()
}

/// The existing name closest to `name`, if it is close: a typo's few edits.
fn nearest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    let allowed = (name.chars().count() / 3).max(2);
    names
        .iter()
        .map(|n| (crate::cli::edit_distance(name, n), n.as_str()))
        .filter(|(d, _)| *d <= allowed)
        .min()
        .map(|(_, n)| n)
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

/// A handle's pid is the `etcdlock acquire` that has long exited: not worth showing.
fn pid_of(e: &Entry) -> String {
    match e.pid {
        Some(_) if e.kind == "handle" => "-".to_owned(),
        Some(p) => p.to_string(),
        None => "?".to_owned(),
    }
}

fn short_mode(e: &Entry) -> &'static str {
    if e.mode == "shared" {
        "shared"
    } else {
        "excl"
    }
}

/// The command, or what holds the lock when no command does.
fn command_of(e: &Entry) -> String {
    match (&e.command, e.kind.as_str()) {
        (_, "handle") => "(handle)".to_owned(),
        (Some(c), _) => etcdlock::holder::shell_words(c),
        (None, _) => "?".to_owned(),
    }
}

/// The widest a lock name gets in `list`: one long name must not push every row off the screen
/// (`--json` has the whole name).
const LIST_NAME_WIDTH: usize = 32;

/// `s` cut to `width` characters in the middle, where lock names differ least ("/ci/very/lo…/deploy").
fn fit_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    let tail = (width - 1) * 2 / 3;
    let head = width - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// An aligned table, at most 80 columns wide: the last column is truncated to fit. Written into
/// one string cell by cell (`list` renders thousands of rows: no string per cell or line).
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
    let mut out = String::with_capacity((fixed + last + 1) * (rows.len() + 1));
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let start = out.len();
        for (i, cell) in cells.enumerate() {
            if i + 1 == n {
                push_fit(&mut out, cell, last);
            } else {
                let used = push_fit(&mut out, cell, widths[i]);
                out.extend(std::iter::repeat_n(' ', widths[i].saturating_sub(used) + 2));
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `s` appended to `out`, cut to `width` characters (the last one `…`) if longer; returns the
/// characters appended.
fn push_fit(out: &mut String, s: &str, width: usize) -> usize {
    let count = s.chars().count();
    if count <= width {
        out.push_str(s);
        count
    } else {
        out.extend(s.chars().take(width.saturating_sub(1)));
        out.push('…');
        width.saturating_sub(1) + 1
    }
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

/// One line per key named like a holder's but detached from its lease (empty if there are none).
fn detached_note(s: &Status) -> String {
    s.detached_keys
        .iter()
        .map(|d| {
            let lease = match &d.lease_id {
                Some(l) => format!("is attached to lease {l}, not its own"),
                None => "has no lease".to_owned(),
            };
            format!(
                "key {} {lease} (token {}; someone put over a holder's key?): a key without a lease blocks etcdctl lock and Go's Mutex here, for ever; `etcdlock break {}` removes it\n",
                d.key, d.fencing_token, s.name
            )
        })
        .collect()
}

/// "web-3, exit 0, 12m ago, took 3m12s" (and "lock lost" when it was).
fn describe_run(r: &RunRecord) -> String {
    let ago = humantime::parse_rfc3339(&r.ended_at)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map_or_else(|| "?".to_owned(), short_duration);
    let lost = if r.lost { ", lock lost" } else { "" };
    format!(
        "{}, exit {}{lost}, {ago} ago, took {}",
        r.host,
        r.exit_code,
        short_duration(Duration::from_secs_f64(r.duration.max(0.0)))
    )
}

/// The run-record lines of `status`.
fn records(s: &Status) -> String {
    let mut out = String::new();
    if let Some(r) = &s.last_run {
        out.push_str(&format!("last run: {}\n", describe_run(r)));
    }
    match (&s.last_success, &s.last_run) {
        (Some(ok), Some(last)) if ok != last => {
            out.push_str(&format!("last success: {}\n", describe_run(ok)));
        }
        _ => {}
    }
    if let Some(left) = s.next_run_allowed_in_s {
        out.push_str(&format!(
            "next run allowed in {} (--once-per)\n",
            short_duration(Duration::from_secs(left.max(0) as u64))
        ));
    }
    out
}

fn render_status(s: &Status) -> String {
    if !s.held {
        return format!(
            "{}: free\n{}{}{}",
            s.name,
            detached_note(s),
            other_keys_note(s),
            records(s)
        );
    }
    let limit = if s.limit > 1 {
        format!(" (limit {})", s.limit)
    } else {
        String::new()
    };
    // The MODE column only when readers are in the queue: for a plain mutex it would only
    // repeat "excl" (`--json` always carries `mode`).
    let shared = s
        .holders
        .iter()
        .chain(&s.waiters)
        .any(|e| e.mode == "shared");
    let held_by = if shared && s.holders.iter().all(|e| e.mode == "shared") {
        format!("{} shared", s.holder_count)
    } else {
        s.holder_count.to_string()
    };
    let mut out = format!(
        "{}: held by {held_by}{limit} · {} waiting\n",
        s.name, s.waiter_count
    );
    let rows: Vec<Vec<String>> = s
        .holders
        .iter()
        .map(|e| (role(e, "holder", "leader"), e, age(e.held_for_s)))
        .chain(
            s.waiters
                .iter()
                .map(|e| (role(e, "waiter", "standby"), e, age(e.waited_for_s))),
        )
        .map(|(role, e, since)| {
            let mut row = vec![
                role.to_owned(),
                e.lease_id.clone(),
                e.fencing_token.to_string(),
                who(e),
                pid_of(e),
                since,
                e.ttl_remaining_s
                    .map_or("-".to_owned(), |t| format!("{t}s")),
            ];
            row.extend(shared.then(|| short_mode(e).to_owned()));
            row.push(command_of(e));
            row
        })
        .collect();
    let mut header = vec!["ROLE", "LEASE", "TOKEN", "USER@HOST", "PID", "FOR", "TTL"];
    header.extend(shared.then_some("MODE"));
    header.push("COMMAND");
    out.push_str(&table(&header, &rows));
    out.push_str(&detached_note(s));
    out.push_str(&other_keys_note(s));
    out.push_str(&records(s));
    for e in s.holders.iter().chain(&s.waiters) {
        if !e.meta.is_empty() {
            let pairs: Vec<String> = e.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("meta {}: {}\n", e.lease_id, pairs.join(" ")));
        }
    }
    out
}

/// `list` (without `--watch`, which is live.rs's).
pub async fn list(config: etcdlock::Config, args: ListArgs) -> Result<u8> {
    let etcd = crate::exit::connect(config, Check::Leader).await?;
    // The table shows no TTL: only --json asks each holder's lease for it.
    let prefix = args.prefix.as_deref().unwrap_or_default();
    let list = inspect::list_with(&etcd, prefix, args.json).await?;
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
    } else {
        output::print(&render_list(&list))?;
    }
    // The process ends right after: freeing thousands of entries one by one is time for nothing.
    std::mem::forget(list);
    Ok(0)
}

pub fn render_list(list: &List) -> String {
    if list.locks.is_empty() {
        return "no locks\n".to_owned();
    }
    let mut notes = String::new();
    for l in list.locks.iter().filter(|l| l.detached_keys > 0) {
        notes.push_str(&format!(
            "{}: {} key(s) without a lease: a key without a lease blocks etcdctl lock and Go's Mutex here; see etcdlock status {}\n",
            l.name, l.detached_keys, l.name
        ));
    }
    let rows: Vec<Vec<String>> = list
        .locks
        .iter()
        .map(|l| {
            let oldest = l.holders.first();
            vec![
                fit_middle(&l.name, LIST_NAME_WIDTH),
                held_of(l),
                l.waiter_count.to_string(),
                oldest.map_or("-".to_owned(), |e| age(e.held_for_s)),
                oldest.map_or("-".to_owned(), |e| match (&e.host, e.pid) {
                    (Some(h), _) if e.kind == "handle" => format!("{h} handle"),
                    (Some(h), Some(p)) if e.kind == "election" => format!("{h} pid {p} leader"),
                    (Some(h), Some(p)) => format!("{h} pid {p}"),
                    _ => "(etcdctl?)".to_owned(),
                }),
                l.last_run.as_ref().map_or("-".to_owned(), |r| {
                    let run = describe_run(r);
                    run.split(", took")
                        .next()
                        .unwrap_or_default()
                        .replace(',', "")
                }),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "LOCK",
            "HELD",
            "WAITING",
            "FOR",
            "OLDEST HOLDER",
            "LAST RUN",
        ],
        &rows,
    );
    out.push_str(&notes);
    out
}

/// "2/3", or "4 shared" when shared holders hold it (a shared lock has no count limit).
fn held_of(l: &etcdlock::inspect::LockSummary) -> String {
    if l.holders.iter().any(|e| e.mode == "shared") {
        format!("{} shared", l.holder_count)
    } else {
        format!("{}/{}", l.holder_count, l.limit)
    }
}

/// A queue entry's role: `elected` for an `etcdlock elect` candidate, `plain` otherwise.
fn role(e: &Entry, plain: &'static str, elected: &'static str) -> &'static str {
    if e.kind == "election" {
        elected
    } else {
        plain
    }
}

/// "web-3 pid 4121 (./backup.sh) for 3m12s", or what is known of a holder that is not etcdlock.
pub fn describe_holder(e: &Entry) -> String {
    if e.kind == "election" {
        let mut other = e.clone();
        other.kind = "etcdlock".to_owned();
        return format!("the elected leader: {}", describe_holder(&other));
    }
    match (&e.host, e.pid) {
        (Some(h), _) if e.kind == "handle" => format!(
            "a handle acquired on {h} by {} for {}",
            e.user.as_deref().unwrap_or("?"),
            age(e.held_for_s)
        ),
        (Some(h), Some(p)) => match e.command.as_deref().unwrap_or_default() {
            // `--record-command none`: nothing to show.
            [] => format!("{h} pid {p} for {}", age(e.held_for_s)),
            command => format!(
                "{h} pid {p} ({}) for {}",
                etcdlock::holder::shell_words(command),
                age(e.held_for_s)
            ),
        },
        _ => format!("a holder without etcdlock metadata (lease {})", e.lease_id),
    }
}

pub async fn break_lock(config: etcdlock::Config, args: BreakArgs) -> Result<u8> {
    let etcd = crate::exit::connect(config, Check::Leader).await?;
    let status = inspect::status(&etcd, &args.name).await?;
    let wanted = args
        .lease
        .as_deref()
        .map(|id| id.trim_start_matches("0x").to_ascii_lowercase());
    // Keys without their lease go too: nothing else would ever remove them.
    let detached: Vec<&Detached> = status
        .detached_keys
        .iter()
        .filter(|d| {
            wanted
                .as_deref()
                .is_none_or(|id| d.key.ends_with(&format!("/{id}")))
        })
        .collect();
    let targets: Vec<&Entry> = match &wanted {
        None => status.holders.iter().collect(),
        Some(id) => {
            let found: Vec<&Entry> = status
                .holders
                .iter()
                .chain(&status.waiters)
                .filter(|e| &e.lease_id == id)
                .collect();
            if found.is_empty() && detached.is_empty() {
                output::warn(format!(
                    "{} has no holder or waiter with lease {id}; see etcdlock status {}",
                    args.name, args.name
                ));
                return Ok(1);
            }
            found
        }
    };
    if targets.is_empty() && detached.is_empty() {
        output::warn(format!("{} is not held; nothing to break", args.name));
        return Ok(1);
    }
    if !args.yes && !confirm(&args.name, &targets, &detached).await? {
        output::warn("not broken");
        return Ok(exit::USAGE);
    }
    for d in detached {
        if inspect::remove_detached(&etcd, d).await? {
            output::print(&format!(
                "broke {}: deleted key {}, which had no lease of its own\n",
                args.name, d.key
            ))?;
        } else {
            output::warn(format!(
                "key {} changed since it was read; not deleted (see etcdlock status {})",
                d.key, args.name
            ));
        }
    }
    for e in targets {
        inspect::break_holder(&etcd, e).await?;
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

/// `forget`: delete the lock's run records and once-marker.
pub async fn forget(config: etcdlock::Config, args: ForgetArgs) -> Result<u8> {
    let client = crate::exit::connect(config, Check::Leader).await?;
    let deleted = etcdlock::record::forget(&client, &args.name).await?;
    if deleted == 0 {
        output::warn(format!(
            "{} has no run records; nothing to forget",
            args.name
        ));
        return Ok(1);
    }
    output::print(&format!(
        "forgot {}: {deleted} record(s) deleted\n",
        args.name
    ))?;
    Ok(0)
}

/// Ask on the terminal; refuse (usage error) when there is none.
async fn confirm(name: &str, targets: &[&Entry], detached: &[&Detached]) -> Result<bool> {
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
            .chain(
                detached
                    .iter()
                    .map(|d| format!("key {} without a lease", d.key))
            )
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
    fn tables_fit_80_columns() {
        let rows = vec![vec!["x".repeat(10), "y".repeat(200)]];
        let t = table(&["A", "B"], &rows);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.contains('…'));
    }
}
