//! `etcdlock exporter --listen ADDR [PREFIX...]`: Prometheus metrics for every lock under the
//! prefixes, cluster-wide, from etcd alone — who holds and waits, and how each job's runs went.
//!
//! The exporter keeps a model of the locks in memory and keeps it current with one etcd watch
//! stream (one watch per key range: the prefixes' locks and their names' run records). A scrape
//! only renders that model: no etcd request per scrape, so a scrape costs etcd nothing and takes
//! no round trip. The model is loaded by paginated range reads at one revision and the watch
//! starts right after it; when the stream breaks (etcd fail-over, a restart, a compaction that
//! overtook the watch) the model is loaded again and a new watch started, and
//! `etcdlock_exporter_resyncs_total` counts that. Until the first load, and while etcd cannot be
//! read, `etcdlock_exporter_synced` is 0 (the last model is still served).
//!
//! Memory is bounded by what etcd holds under the prefixes: per lock its name, a few numbers per
//! queue key and the parsed fields of its records (no raw values are kept); a lock whose keys and
//! records are all gone is dropped. It needs read permission only (range and watch).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use etcd_client::{EventType, GetOptions, KeyValue, WatchOptions};
use etcdlock::client::{Check, Client};
use etcdlock::holder::{Holder, Mode};
use etcdlock::record::RunRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::ExporterArgs;
use crate::exit::{self, fail};

/// Keys per range request while loading.
const PAGE: i64 = 1000;
/// How long to wait before loading again after a broken watch.
const RETRY: Duration = Duration::from_secs(1);
/// A scrape request's head must arrive within this, and be at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 8192;

/// One queue key: what the metrics need of it.
#[derive(Debug, Clone)]
struct QueueKey {
    mode: Mode,
    /// The holders' agreed limit (1 for keys without etcdlock metadata).
    limit: u32,
    /// Unix time it acquired the lock (or queued, until `acquired_at` is written), if etcdlock's.
    since: Option<f64>,
}

/// A run record: what the metrics need of it.
#[derive(Debug, Clone, Copy)]
struct Run {
    started: f64,
    ended: f64,
    exit_code: i32,
    once_per_s: Option<u64>,
}

/// One lock: its queue by create revision, and its records.
#[derive(Debug, Default)]
struct Lock {
    queue: BTreeMap<i64, QueueKey>,
    last_run: Option<Run>,
    last_success: Option<Run>,
    once: bool,
}

impl Lock {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
            && self.last_run.is_none()
            && self.last_success.is_none()
            && !self.once
    }

    /// How many hold it (as `etcdlock::queue::holders`): every leading shared key, else the
    /// oldest `limit` keys.
    fn holders(&self) -> usize {
        let mut keys = self.queue.values();
        match keys.next() {
            None => 0,
            Some(first) if first.mode == Mode::Shared => {
                1 + keys.take_while(|k| k.mode == Mode::Shared).count()
            }
            Some(first) => self.queue.len().min(first.limit as usize),
        }
    }
}

/// The model: every lock under the prefixes.
#[derive(Debug, Default)]
struct Model {
    locks: HashMap<String, Lock>,
    /// Queue key → (lock, create revision), for deletes (their events carry only the key).
    keys: HashMap<Vec<u8>, (String, i64)>,
    revision: i64,
    synced: bool,
    resyncs: u64,
    events: u64,
}

fn unix(rfc3339: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64())
}

fn run_of(value: &[u8]) -> Option<Run> {
    let r = RunRecord::parse(value)?;
    Some(Run {
        started: unix(&r.started_at)?,
        ended: unix(&r.ended_at)?,
        exit_code: r.exit_code,
        once_per_s: r.once_per_s,
    })
}

impl Model {
    /// A key was put (or read while loading).
    fn put(&mut self, records_prefix: &str, kv: &KeyValue) {
        if let Some(name) = etcdlock::record::lock_of(records_prefix, kv.key()) {
            let name = String::from_utf8_lossy(name).into_owned();
            let lock = self.locks.entry(name).or_default();
            let key = kv.key();
            if key.ends_with(b"/last-run") {
                lock.last_run = run_of(kv.value());
            } else if key.ends_with(b"/last-success") {
                lock.last_success = run_of(kv.value());
            } else {
                lock.once = true;
            }
        } else if let Some(name) = etcdlock::queue::lock_name_of(kv) {
            let name = String::from_utf8_lossy(name).into_owned();
            let holder = Holder::parse(kv.value());
            let entry = QueueKey {
                mode: Mode::of_value(kv.value()),
                limit: holder.as_ref().map_or(1, |h| h.limit),
                since: holder
                    .as_ref()
                    .and_then(|h| unix(h.acquired_at.as_deref().unwrap_or(&h.started_at))),
            };
            self.keys
                .insert(kv.key().to_vec(), (name.clone(), kv.create_revision()));
            self.locks
                .entry(name)
                .or_default()
                .queue
                .insert(kv.create_revision(), entry);
        }
    }

    /// A key was deleted (or expired with its lease).
    fn delete(&mut self, records_prefix: &str, key: &[u8]) {
        let name = if let Some(name) = etcdlock::record::lock_of(records_prefix, key) {
            let name = String::from_utf8_lossy(name).into_owned();
            if let Some(lock) = self.locks.get_mut(&name) {
                if key.ends_with(b"/last-run") {
                    lock.last_run = None;
                } else if key.ends_with(b"/last-success") {
                    lock.last_success = None;
                } else {
                    lock.once = false;
                }
            }
            name
        } else if let Some((name, revision)) = self.keys.remove(key) {
            if let Some(lock) = self.locks.get_mut(&name) {
                lock.queue.remove(&revision);
            }
            name
        } else {
            return;
        };
        if self.locks.get(&name).is_some_and(Lock::is_empty) {
            self.locks.remove(&name);
        }
    }
}

/// The key ranges the exporter covers: each prefix's locks, and the records of its names.
fn ranges(records_prefix: &str, prefixes: &[String]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for prefix in prefixes {
        if prefix.is_empty() {
            // The whole keyspace, records included.
            return vec![(vec![0], vec![0])];
        }
        all.push((
            prefix.as_bytes().to_vec(),
            etcdlock::queue::range_end(prefix.as_bytes()),
        ));
        let records = etcdlock::record::range(records_prefix, prefix);
        if !records.0.starts_with(prefix.as_bytes()) {
            all.push(records);
        }
    }
    all
}

/// Load every range at one revision into a fresh model: (model, revision).
async fn load(client: &Client, ranges: &[(Vec<u8>, Vec<u8>)]) -> Result<(Model, i64)> {
    let records_prefix = client.config().records_prefix().to_owned();
    let mut model = Model::default();
    let mut revision = 0;
    for (start, end) in ranges {
        let mut from = start.clone();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let key = from.clone();
            let resp = client
                .retrying("cannot read the locks", || {
                    let (key, opts) = (key.clone(), opts.clone());
                    client.call(|mut c| async move { c.get(key, Some(opts)).await })
                })
                .await?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            for kv in resp.kvs() {
                model.put(&records_prefix, kv);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
    }
    model.revision = revision;
    Ok((model, revision))
}

/// Keep `shared` current: load, watch, and load again whenever the watch breaks. Never returns.
async fn keep_current(client: Client, ranges: Vec<(Vec<u8>, Vec<u8>)>, shared: Arc<Mutex<Model>>) {
    let records_prefix = client.config().records_prefix().to_owned();
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let (_, generation) = client.client();
        let broken = match sync_and_watch(&client, &ranges, &records_prefix, &shared).await {
            Ok(reason) => reason,
            Err(e) => e.to_string(),
        };
        {
            let mut model = lock();
            model.synced = false;
            model.resyncs += 1;
        }
        tracing::warn!(
            reason = broken,
            "etcd watch broken; loading the locks again"
        );
        client.failover(generation).await;
        tokio::time::sleep(RETRY).await;
    }
}

/// One load and the watch after it, until the watch breaks: why it broke.
async fn sync_and_watch(
    client: &Client,
    ranges: &[(Vec<u8>, Vec<u8>)],
    records_prefix: &str,
    shared: &Arc<Mutex<Model>>,
) -> Result<String> {
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    let (mut fresh, revision) = load(client, ranges).await?;
    let mut switched = client.subscribe();
    let (first, rest) = ranges.split_first().expect("at least one range");
    let opts = |end: &Vec<u8>| {
        WatchOptions::new()
            .with_range(end.clone())
            .with_start_revision(revision + 1)
            .with_progress_notify()
    };
    let (key, first_opts) = (first.0.clone(), opts(&first.1));
    let mut stream = client
        .call(|mut c| async move { c.watch(key, Some(first_opts)).await })
        .await
        .map_err(|e| anyhow::anyhow!("cannot watch the locks: {e}"))?;
    for (key, end) in rest {
        stream.watch(key.clone(), Some(opts(end))).await?;
    }
    {
        let mut model = lock();
        fresh.resyncs = model.resyncs;
        fresh.events = model.events;
        fresh.synced = true;
        *model = fresh;
    }
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = switched.changed() => return Ok("the etcd endpoint changed".into()),
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) => return Ok("the watch stream ended".into()),
            Err(e) => return Ok(e.to_string()),
        };
        if resp.compact_revision() != 0 {
            return Ok(format!(
                "etcd compacted the history the watch needed (up to revision {})",
                resp.compact_revision()
            ));
        }
        if resp.canceled() {
            return Ok(format!("watch canceled: {}", resp.cancel_reason()));
        }
        let mut model = lock();
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            model.events += 1;
            match event.event_type() {
                EventType::Put => model.put(records_prefix, kv),
                EventType::Delete => model.delete(records_prefix, kv.key()),
            }
        }
        if let Some(h) = resp.header() {
            model.revision = model.revision.max(h.revision());
        }
    }
}

/// Prometheus label value escaping: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics text of `model` at `now` (Unix seconds).
fn render(model: &Model, now: f64) -> String {
    let mut locks: Vec<(&String, &Lock)> = model.locks.iter().collect();
    locks.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let labels: Vec<String> = locks.iter().map(|(n, _)| escape(n)).collect();
    let mut out = String::with_capacity(locks.len() * 400 + 1024);
    let mut family = |name: &str, help: &str, value: &dyn Fn(&Lock) -> Option<f64>| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
        for ((_, lock), label) in locks.iter().zip(&labels) {
            if let Some(v) = value(lock) {
                let _ = writeln!(out, "{name}{{lock=\"{label}\"}} {v}");
            }
        }
    };
    family("etcdlock_lock_holders", "How many hold the lock.", &|l| {
        Some(l.holders() as f64)
    });
    family(
        "etcdlock_lock_waiters",
        "How many wait for the lock.",
        &|l| Some((l.queue.len() - l.holders()) as f64),
    );
    family(
        "etcdlock_lock_limit",
        "How many may hold the lock at once (1: a mutex), as its oldest key says.",
        &|l| l.queue.values().next().map(|k| f64::from(k.limit)),
    );
    family(
        "etcdlock_lock_held_seconds",
        "Seconds the oldest holder has held the lock (holders with etcdlock metadata).",
        &|l| {
            let since = l.queue.values().next()?.since?;
            (l.holders() > 0).then_some((now - since).max(0.0))
        },
    );
    family(
        "etcdlock_last_run_timestamp_seconds",
        "Unix time the last run ended, whatever its outcome (run records).",
        &|l| l.last_run.map(|r| r.ended),
    );
    family(
        "etcdlock_last_success_timestamp_seconds",
        "Unix time the last run that exited 0 ended (run records).",
        &|l| l.last_success.map(|r| r.ended),
    );
    family(
        "etcdlock_last_exit_code",
        "Exit code of the last run (70: lock lost, 124: --max-runtime).",
        &|l| l.last_run.map(|r| f64::from(r.exit_code)),
    );
    family(
        "etcdlock_once_per_seconds",
        "The --once-per period recorded with the last run.",
        &|l| l.last_run.and_then(|r| r.once_per_s).map(|s| s as f64),
    );
    family(
        "etcdlock_next_run_allowed_timestamp_seconds",
        "While a --once-per marker is in force: Unix time the next run is allowed (the last success's start plus its period).",
        &|l| {
            let s = l.last_success.filter(|_| l.once)?;
            Some(s.started + s.once_per_s? as f64)
        },
    );
    let _ = write!(
        out,
        "# HELP etcdlock_exporter_locks Locks in the exporter's view.\n# TYPE etcdlock_exporter_locks gauge\netcdlock_exporter_locks {}\n\
         # HELP etcdlock_exporter_synced 1 while the view is loaded and watched; 0 while etcd cannot be read (the last view is served).\n# TYPE etcdlock_exporter_synced gauge\netcdlock_exporter_synced {}\n\
         # HELP etcdlock_exporter_resyncs_total Times the view was loaded again after the watch broke (fail-over, compaction, restart).\n# TYPE etcdlock_exporter_resyncs_total counter\netcdlock_exporter_resyncs_total {}\n\
         # HELP etcdlock_exporter_watch_events_total etcd watch events applied to the view.\n# TYPE etcdlock_exporter_watch_events_total counter\netcdlock_exporter_watch_events_total {}\n\
         # HELP etcdlock_exporter_revision etcd revision the view is current to.\n# TYPE etcdlock_exporter_revision gauge\netcdlock_exporter_revision {}\n",
        model.locks.len(),
        u8::from(model.synced),
        model.resyncs,
        model.events,
        model.revision
    );
    out
}

/// Answer one HTTP connection: `GET /metrics` (and `/`), anything else 404; then close.
async fn serve(mut conn: TcpStream, shared: Arc<Mutex<Model>>) {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let path = path.map(|p| p.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, kind, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let text = render(&shared.lock().unwrap_or_else(|e| e.into_inner()), now);
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (Some(b"GET"), Some(b"/")) => (
            "200 OK",
            "text/plain; charset=utf-8",
            "etcdlock exporter: metrics at /metrics\n".to_owned(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: etcdlock exporter serves GET /metrics\n".to_owned(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes()).await;
    let _ = conn.write_all(body.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// `etcdlock exporter`: serve until SIGINT or SIGTERM (exit 0).
pub async fn exporter(config: etcdlock::Config, args: ExporterArgs) -> Result<u8> {
    let listener = TcpListener::bind(args.listen).await.map_err(|e| {
        fail(
            exit::USAGE,
            format!("--listen {}: cannot listen there: {e}", args.listen),
        )
    })?;
    let client = crate::exit::connect(config, Check::Lazy).await?;
    let prefixes = if args.prefixes.is_empty() {
        vec![String::new()]
    } else {
        args.prefixes.clone()
    };
    let ranges = ranges(client.config().records_prefix(), &prefixes);
    let shared = Arc::new(Mutex::new(Model::default()));
    let started = Instant::now();
    let _sync =
        etcdlock::session::AbortOnDrop(tokio::spawn(keep_current(client, ranges, shared.clone())));
    tracing::info!(listen = %local(&listener, args.listen), "serving /metrics");
    let (mut int, mut term) = (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
    );
    loop {
        tokio::select! {
            conn = listener.accept() => {
                if let Ok((conn, _)) = conn {
                    tokio::spawn(serve(conn, shared.clone()));
                }
            }
            _ = int.recv() => break,
            _ = term.recv() => break,
        }
    }
    tracing::info!(uptime = ?started.elapsed(), "exporter stopped");
    Ok(0)
}

fn local(listener: &TcpListener, asked: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_follow_the_queue_rules() {
        let key = |mode, limit| QueueKey {
            mode,
            limit,
            since: None,
        };
        let mut lock = Lock::default();
        assert_eq!(lock.holders(), 0);
        lock.queue.insert(1, key(Mode::Exclusive, 2));
        lock.queue.insert(2, key(Mode::Exclusive, 2));
        lock.queue.insert(3, key(Mode::Exclusive, 2));
        assert_eq!(lock.holders(), 2);
        let mut shared = Lock::default();
        shared.queue.insert(1, key(Mode::Shared, 1));
        shared.queue.insert(2, key(Mode::Shared, 1));
        shared.queue.insert(3, key(Mode::Exclusive, 1));
        shared.queue.insert(4, key(Mode::Shared, 1));
        assert_eq!(shared.holders(), 2);
    }

    #[test]
    fn labels_are_escaped_and_families_grouped() {
        let mut model = Model::default();
        model.locks.insert("/a\"b".into(), Lock::default());
        model.locks.get_mut("/a\"b").unwrap().once = true;
        let text = render(&model, 0.0);
        assert!(
            text.contains("etcdlock_lock_holders{lock=\"/a\\\"b\"} 0\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE etcdlock_lock_holders ").count(), 1);
    }
}
