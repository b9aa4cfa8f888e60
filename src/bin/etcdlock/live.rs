//! `list --watch`: the list kept current by an etcd watch — a live table on a terminal, one JSON
//! line per lock that changed otherwise (a log, a pipe into `jq`).
//!
//! One watch stream covers the listed prefix and the run records of the names under it. An event
//! (after a short pause that gathers a burst, a hand-off being two or three events) makes the list
//! be read again, whole: what `list` shows is always what `list` would print, and a missed event
//! cannot leave the view wrong for longer than the next one. On a terminal the table is also
//! redrawn every few seconds, for the ages. A broken watch (etcd fail-over, compaction, a
//! restart) is opened again and the list re-read, so nothing that happened meanwhile is lost.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use etcd_client::WatchOptions;
use etcdlock::client::Client;
use etcdlock::inspect::{self, LockSummary};
use tokio::signal::unix::{signal, SignalKind};

use crate::output;

/// How long a burst of events is gathered before the list is read again.
const SETTLE: Duration = Duration::from_millis(100);
/// How often a terminal's table is redrawn without events (the FOR column's ages).
const REDRAW: Duration = Duration::from_secs(2);
/// How long to wait before opening a broken watch again.
const RETRY: Duration = Duration::from_secs(1);

/// The key ranges to watch for `prefix`: the locks' keys and the records of their names.
fn ranges(client: &Client, prefix: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let locks = if prefix.is_empty() {
        (vec![0], vec![0])
    } else {
        (
            prefix.as_bytes().to_vec(),
            etcdlock::queue::range_end(prefix.as_bytes()),
        )
    };
    let records = etcdlock::record::range(client.config().records_prefix(), prefix);
    let covered = prefix.is_empty() || records.0.starts_with(prefix.as_bytes());
    let mut all = vec![locks];
    if !covered {
        all.push(records);
    }
    all
}

/// One watch stream over `ranges`.
async fn open(client: &Client, ranges: &[(Vec<u8>, Vec<u8>)]) -> Result<etcd_client::WatchStream> {
    let (first, rest) = ranges.split_first().expect("at least one range");
    let (key, end) = first.clone();
    let mut stream = client
        .call(|mut c| async move {
            c.watch(key, Some(WatchOptions::new().with_range(end)))
                .await
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot watch the locks: {e}"))?;
    for (key, end) in rest {
        stream
            .watch(
                key.clone(),
                Some(WatchOptions::new().with_range(end.clone())),
            )
            .await?;
    }
    Ok(stream)
}

/// A lock's summary without what changes by itself every second (ages, TTLs): two summaries
/// that compare equal here show no change worth a line.
fn steady(lock: &LockSummary) -> serde_json::Value {
    let mut v = serde_json::to_value(lock).unwrap_or_default();
    if let Some(holders) = v.get_mut("holders").and_then(|h| h.as_array_mut()) {
        for h in holders {
            if let Some(h) = h.as_object_mut() {
                for f in ["held_for_s", "waited_for_s", "ttl_remaining_s"] {
                    h.remove(f);
                }
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("next_run_allowed_in_s");
    }
    v
}

/// What the view prints.
enum View {
    Table {
        prefix: String,
    },
    Lines {
        seen: BTreeMap<String, serde_json::Value>,
    },
}

impl View {
    fn show(&mut self, list: &inspect::List) -> std::io::Result<()> {
        match self {
            View::Table { prefix } => {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let title = if prefix.is_empty() {
                    "every lock"
                } else {
                    prefix.as_str()
                };
                // Home and clear, then the frame: one write, so the terminal never shows half.
                output::print(&format!(
                    "\x1b[H\x1b[2Jetcdlock list --watch · {title} · {now} · Ctrl-C to leave\n\n{}",
                    crate::show::render_list(list)
                ))
            }
            View::Lines { seen } => {
                let mut text = String::new();
                let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let mut now: BTreeMap<String, serde_json::Value> = BTreeMap::new();
                for lock in &list.locks {
                    let key = steady(lock);
                    if seen.get(&lock.name) != Some(&key) {
                        text.push_str(&line(&time, &lock.name, Some(lock)));
                    }
                    now.insert(lock.name.clone(), key);
                }
                for gone in seen.keys().filter(|n| !now.contains_key(*n)) {
                    text.push_str(&line(&time, gone, None));
                }
                *seen = now;
                output::print(&text)
            }
        }
    }
}

/// `{"schema_version": 3, "time": ..., "name": ..., "lock": SUMMARY or null}` and a newline.
fn line(time: &humantime::Rfc3339Timestamp, name: &str, lock: Option<&LockSummary>) -> String {
    let v = serde_json::json!({
        "schema_version": inspect::SCHEMA_VERSION,
        "time": time.to_string(),
        "name": name,
        "lock": lock,
    });
    format!("{v}\n")
}

/// `list --watch`: until Ctrl-C or SIGTERM (exit 0), or etcd cannot be read at all (69).
pub async fn watch(config: etcdlock::Config, args: crate::cli::ListArgs) -> Result<u8> {
    let client = crate::exit::connect(config, etcdlock::client::Check::Leader).await?;
    let (prefix, json) = (args.prefix.unwrap_or_default(), args.json);
    let mut view = if json || !std::io::stdout().is_terminal() {
        View::Lines {
            seen: BTreeMap::new(),
        }
    } else {
        View::Table {
            prefix: prefix.clone(),
        }
    };
    let terminal = matches!(view, View::Table { .. });
    let ranges = ranges(&client, &prefix);
    let (mut int, mut term) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    );
    loop {
        // The watch first, then the list: whatever changes after the read is an event.
        let (_, generation) = client.client();
        let mut stream = open(&client, &ranges).await?;
        view.show(&inspect::list(&client, &prefix).await?)?;
        let mut redraw = tokio::time::interval(REDRAW);
        redraw.tick().await;
        let broken = loop {
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) if resp.canceled() => break resp.cancel_reason().to_owned(),
                    Ok(Some(resp)) if resp.events().is_empty() => {}
                    Ok(Some(_)) => {
                        // Gather the rest of a burst (a hand-off is a delete and a put).
                        let settle = tokio::time::sleep(SETTLE);
                        tokio::pin!(settle);
                        loop {
                            tokio::select! {
                                _ = &mut settle => break,
                                more = stream.message() => if !matches!(more, Ok(Some(_))) { break },
                            }
                        }
                        view.show(&inspect::list(&client, &prefix).await?)?;
                    }
                    Ok(None) => break "the watch stream ended".to_owned(),
                    Err(e) => break e.to_string(),
                },
                _ = redraw.tick(), if terminal => {
                    view.show(&inspect::list(&client, &prefix).await?)?;
                }
                _ = int.recv() => return Ok(0),
                _ = term.recv() => return Ok(0),
            }
        };
        tracing::info!(reason = broken, "watch broken; watching again");
        client.failover(generation).await;
        tokio::time::sleep(RETRY).await;
    }
}
