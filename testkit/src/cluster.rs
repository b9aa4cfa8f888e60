//! Throwaway etcd servers: one member or a 3-member cluster on free loopback ports, each
//! member in its own temp dir, killed on drop; and what tests ask of them (keys, leases, health,
//! freezing, killing, restarting, the leader).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

use crate::*;

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/// `--heartbeat-interval` passed to every member (milliseconds).
pub const HEARTBEAT_INTERVAL_MS: u64 = 50;
/// `--election-timeout` passed to every member (milliseconds).
pub const ELECTION_TIMEOUT_MS: u64 = 500;
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS);
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(ELECTION_TIMEOUT_MS);

/// How long a cluster may take to become healthy (start, restart, failover).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on [`Cluster::wait_healthy`] / [`Cluster::leader_index`].
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Cluster::assert_clean`] keeps polling before failing.
pub const CLEAN_TIMEOUT: Duration = Duration::from_secs(15);
/// `--dial-timeout` passed to etcdctl (can be overridden in `args`).
pub const ETCDCTL_DIAL_TIMEOUT: &str = "3s";
/// `--command-timeout` passed to etcdctl (can be overridden in `args`).
pub const ETCDCTL_COMMAND_TIMEOUT: &str = "10s";
/// Hard wall-clock limit for a single etcdctl process; it is SIGKILLed after.
pub const ETCDCTL_PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval used by every wait loop in this module.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long the test kit waits for what a test's processes should do soon (a holder to start,
/// a waiter to queue) on a noisy 2-core machine, before the test fails.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The bound of [`Cluster::assert_clean_now`]: long enough for a revoke in flight, too short for
/// a lease to expire by its TTL.
pub const CLEAN_NOW_TIMEOUT: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Ports are handed out from this range, which lies below the Linux ephemeral
/// range (32768..61000 by default) so that outgoing client connections never
/// sit on a port we are about to give to etcd.
const PORT_LO: u32 = 15_000;
const PORT_HI: u32 = 32_000;

struct PortAlloc {
    next: u32,
    handed_out: HashSet<u16>,
}

/// A port on 127.0.0.1 that is currently free and has not been returned
/// before by this process.
///
/// Each process starts scanning at a pid-derived offset into 15000..32000 and
/// walks forward, skipping ports it already handed out and ports that cannot
/// be bound right now. Cross-process races (two test binaries picking the same
/// port between the probe and etcd's bind) are handled by [`Cluster`] start-up,
/// which retries with fresh ports when etcd reports "address already in use".
pub fn free_port() -> u16 {
    static ALLOC: OnceLock<Mutex<PortAlloc>> = OnceLock::new();
    let span = PORT_HI - PORT_LO;
    let alloc = ALLOC.get_or_init(|| {
        let pid = std::process::id();
        Mutex::new(PortAlloc {
            next: pid.wrapping_mul(7919) % span,
            handed_out: HashSet::new(),
        })
    });
    let mut a = alloc.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..span {
        let port = (PORT_LO + a.next % span) as u16;
        a.next = a.next.wrapping_add(1);
        if a.handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            a.handed_out.insert(port);
            return port;
        }
    }
    // Whole range exhausted (should not happen): fall back to the kernel.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if a.handed_out.insert(port) {
            return port;
        }
    }
}

// ---------------------------------------------------------------------------
// Etcd member
// ---------------------------------------------------------------------------

pub(crate) fn client_health(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    resp.starts_with("HTTP/1.") && resp.contains(" 200 ") && resp.contains("\"health\":\"true\"")
}

/// POST `body` (JSON) to etcd's HTTP gateway at `endpoint` (`http://host:port`), e.g.
/// `/v3/kv/range`; the response body. Much cheaper than starting etcdctl, for checks run
/// hundreds of times.
pub fn gateway_post(endpoint: &str, path: &str, body: &str) -> Result<String, String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    match resp.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_owned()),
        _ => Err(resp),
    }
}

/// Keys and leases in the cluster at `endpoint`, through the gateway, but the run records and
/// the leases they are kept on (they stay by design): (keys, leases).
pub fn gateway_keys_and_leases(endpoint: &str) -> (usize, usize) {
    let keys = gateway_post(
        endpoint,
        "/v3/kv/range",
        r#"{"key":"AA==","range_end":"AA==","keys_only":true}"#,
    )
    .unwrap_or_default();
    let leases = gateway_post(endpoint, "/v3/lease/leases", "{}").unwrap_or_default();
    let kvs = serde_json::from_str::<serde_json::Value>(&keys)
        .ok()
        .and_then(|v| v["kvs"].as_array().cloned())
        .unwrap_or_default();
    let is_record = |kv: &serde_json::Value| {
        kv["key"]
            .as_str()
            .is_some_and(|k| is_run_record(&String::from_utf8_lossy(&base64_decode(k))))
    };
    // The gateway writes 64-bit numbers as JSON strings.
    let lease_of = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let record_leases: Vec<String> = kvs
        .iter()
        .filter(|kv| is_record(kv))
        .filter_map(|kv| lease_of(&kv["lease"]))
        .collect();
    let count = kvs.iter().filter(|kv| !is_record(kv)).count();
    let n_leases = serde_json::from_str::<serde_json::Value>(&leases)
        .ok()
        .and_then(|v| {
            v["leases"].as_array().map(|ls| {
                ls.iter()
                    .filter_map(|l| lease_of(&l["ID"]))
                    .filter(|id| !record_leases.contains(id))
                    .count()
            })
        })
        .unwrap_or(0);
    (count, n_leases)
}

/// Where etcdlock keeps run records by default (`etcdlock::record::DEFAULT_PREFIX` + layout).
pub const RECORDS: &str = ".etcdlock/v1/";

/// etcdlock's default `--record-retention` (35 days), in seconds: the TTL of its retention leases.
pub const DEFAULT_RECORD_RETENTION_S: u64 = 35 * 24 * 3600;

/// Whether `key` is one of the run records etcdlock keeps (they are meant to stay, on their
/// retention lease, until it expires).
pub fn is_run_record(key: &str) -> bool {
    key.starts_with(RECORDS) && (key.ends_with("/last-run") || key.ends_with("/last-success"))
}

/// One etcd member process. SIGKILLed and reaped on drop; its data dir and log
/// live in a [`TempDir`] removed on drop.
pub struct Etcd {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    dir: TempDir,
    /// All flags except `--initial-cluster-state` and `extra`.
    base_args: Vec<String>,
    extra_args: Vec<String>,
    /// The etcd binary ([`etcd_bin`] unless [`Cluster::single_with_bin`] chose another).
    bin: PathBuf,
    child: Option<Child>,
    pid: u32,
    stopped: AtomicBool,
}

impl Etcd {
    fn new(
        name: &str,
        client_port: u16,
        peer_port: u16,
        initial_cluster: &str,
        token: &str,
        extra: &[&str],
    ) -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix(&format!("etcdlock-test-{name}-"))
            .tempdir()
            .expect("create etcd temp dir");
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let data = dir.path().join("data");
        let base_args = vec![
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            data.to_string_lossy().into_owned(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client,
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer,
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-token".into(),
            token.into(),
            "--heartbeat-interval".into(),
            HEARTBEAT_INTERVAL_MS.to_string(),
            "--election-timeout".into(),
            ELECTION_TIMEOUT_MS.to_string(),
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
        ];
        Etcd {
            name: name.into(),
            client_port,
            peer_port,
            dir,
            base_args,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            bin: etcd_bin(),
            child: None,
            pid: 0,
            stopped: AtomicBool::new(false),
        }
    }

    /// Spawns the process; `state` is `new` or `existing`.
    fn launch(&mut self, state: &str) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open etcd log");
        let _ = writeln!(
            log,
            "=== harness: starting {} (--initial-cluster-state {state}) ===",
            self.name
        );
        let log_err = log.try_clone().expect("clone log fd");
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            // etcd reads ETCD_* as flags and warns about unknown ones.
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(&self.base_args)
            .args(["--initial-cluster-state", state])
            .args(&self.extra_args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = spawn_tied_to_process(cmd)
            .unwrap_or_else(|e| panic!("failed to spawn {:?}: {e}", self.bin));
        self.pid = child.id();
        self.child = Some(child);
        self.stopped.store(false, Ordering::SeqCst);
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// `127.0.0.1:PORT` of the client listener (for [`Proxy::start`]).
    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Pid of the current (or, after a kill, the last) process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Spawned, not killed by the harness, and not a zombie.
    pub fn is_running(&self) -> bool {
        self.child.is_some() && pid_alive(self.pid as i32)
    }

    /// Running and not frozen with SIGSTOP.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.stopped.load(Ordering::SeqCst)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Last `lines` lines of this member's log, leaving out the
    /// `/health error` warnings that etcd 3.4 writes for every failed health
    /// poll (they would otherwise fill the whole tail while we wait).
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(bytes) = fs::read(self.log_path()) else {
            return String::new();
        };
        let text = String::from_utf8_lossy(&bytes);
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("/health error"))
            .collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }

    fn log_contains(&self, needle: &str) -> bool {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
    }

    /// SIGKILL and reap (no-op if not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped.store(false, Ordering::SeqCst);
    }

    fn signal(&self, sig: Signal) {
        assert!(self.child.is_some(), "{} is not running", self.name);
        kill(Pid::from_raw(self.pid as i32), sig)
            .unwrap_or_else(|e| panic!("kill({}, {sig}) failed: {e}", self.pid));
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

enum StartError {
    PortInUse(String),
    Failed(String),
}

/// A static etcd cluster of 1 or 3 members on 127.0.0.1.
///
/// Members are started with `--initial-cluster-state new`, a unique
/// `--initial-cluster-token`, [`HEARTBEAT_INTERVAL_MS`]/[`ELECTION_TIMEOUT_MS`]
/// and zap logging to `<tempdir>/etcd.log`. If the test panics while the
/// cluster is alive, the tail of every member's log is printed on drop.
pub struct Cluster {
    pub members: Vec<Etcd>,
    token: String,
    etcdctl_user: Mutex<Option<String>>,
}

impl Cluster {
    /// One member, started and healthy.
    pub fn single() -> Cluster {
        Cluster::start(1, &[])
    }

    /// Three-member static cluster, healthy with a leader.
    pub fn three() -> Cluster {
        Cluster::start(3, &[])
    }

    /// One member with extra etcd flags appended last (so they override the
    /// harness defaults, e.g. `--election-timeout`).
    pub fn single_with_args(extra: &[&str]) -> Cluster {
        Cluster::start(1, extra)
    }

    /// One member of another etcd release (e.g. [`crate::etcd35_bin`]), started and healthy.
    pub fn single_with_bin(bin: &Path) -> Cluster {
        Cluster::start_with(1, &[], Some(bin))
    }

    /// `n` members with extra etcd flags appended to every member.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, None)
    }

    fn start_with(n: usize, extra: &[&str], bin: Option<&Path>) -> Cluster {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        const ATTEMPTS: usize = 5;
        let mut last_err = String::new();
        for attempt in 1..=ATTEMPTS {
            let seq = COUNTER.fetch_add(1, Ordering::SeqCst);
            let token = format!("etcdlock-test-{}-{seq}", std::process::id());
            let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
            let initial_cluster = ports
                .iter()
                .enumerate()
                .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut members: Vec<Etcd> = ports
                .iter()
                .enumerate()
                .map(|(i, &(c, p))| {
                    let mut m = Etcd::new(&format!("m{i}"), c, p, &initial_cluster, &token, extra);
                    if let Some(bin) = bin {
                        m.bin = bin.to_path_buf();
                    }
                    m
                })
                .collect();
            for m in &mut members {
                m.launch("new");
            }
            match Cluster::wait_started(&members, STARTUP_TIMEOUT) {
                Ok(()) => {
                    return Cluster {
                        members,
                        token,
                        etcdctl_user: Mutex::new(None),
                    };
                }
                Err(StartError::PortInUse(msg)) => {
                    eprintln!("harness: etcd start attempt {attempt}/{ATTEMPTS} lost a port race, retrying: {msg}");
                    last_err = msg;
                }
                Err(StartError::Failed(msg)) => panic!("etcd cluster failed to start:\n{msg}"),
            }
            // `members` dropped here: killed, reaped, temp dirs removed.
        }
        panic!(
            "etcd cluster failed to start after {ATTEMPTS} attempts (ports in use):\n{last_err}"
        );
    }

    fn wait_started(members: &[Etcd], timeout: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            for m in members {
                if !pid_alive(m.pid as i32) {
                    let msg = format!(
                        "member {} (pid {}) exited during start-up; log tail:\n{}",
                        m.name,
                        m.pid,
                        m.log_tail(30)
                    );
                    return Err(if m.log_contains("address already in use") {
                        StartError::PortInUse(msg)
                    } else {
                        StartError::Failed(msg)
                    });
                }
            }
            if members.iter().all(|m| client_health(m.client_port)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = members
                    .iter()
                    .map(|m| format!("--- {} log tail ---\n{}", m.name, m.log_tail(30)))
                    .collect();
                return Err(StartError::Failed(format!(
                    "not healthy after {timeout:?}\n{}",
                    logs.join("\n")
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Comma-separated client URLs of all members (killed ones included).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Etcd::client_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// Client URLs of members that are running and not SIGSTOPped (all
    /// members if none are).
    pub fn live_endpoints(&self) -> String {
        let live: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.is_live())
            .map(Etcd::client_url)
            .collect();
        if live.is_empty() {
            self.endpoints()
        } else {
            live.join(",")
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Makes every later [`Cluster::etcdctl`] call pass `--user=<user>`
    /// (`"name:password"`), e.g. after `etcdctl auth enable`; `None` clears it.
    pub fn set_etcdctl_user(&self, user: Option<&str>) {
        *self.etcdctl_user.lock().unwrap_or_else(|e| e.into_inner()) = user.map(str::to_owned);
    }

    /// etcdctl with `ETCDCTL_API=3` against the live members' endpoints
    /// (killed / frozen members are left out so requests don't hang on them).
    /// Bounded in time; does not panic on failure.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let mut cmd = etcdctl_command(&self.live_endpoints());
        if let Some(user) = self
            .etcdctl_user
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            cmd.arg(format!("--user={user}"));
        }
        cmd.args(args);
        run_with_timeout(cmd, ETCDCTL_PROCESS_TIMEOUT)
    }

    /// Like [`Cluster::etcdctl`] but panics (with stderr) on failure; returns stdout.
    pub fn etcdctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        if !out.status.success() {
            panic!(
                "{}",
                describe_output(&format!("etcdctl {args:?} failed"), &out)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn try_keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        let out = self.etcdctl(&["get", prefix, "--prefix", "--keys-only", "-w", "json"]);
        if !out.status.success() {
            return Err(describe_output("etcdctl get --prefix failed", &out));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "bad etcdctl json ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        Ok(v["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .filter_map(|kv| kv["key"].as_str())
                    .map(|k| String::from_utf8_lossy(&base64_decode(k)).into_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Keys under `prefix` (`""` = all keys). Uses JSON output, so keys with
    /// whitespace/newlines are returned intact. Panics if etcdctl fails.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.try_keys(prefix).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Cluster::keys`] without the run records etcdlock keeps beside each lock.
    pub fn lock_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = self.keys(prefix);
        keys.retain(|k| !is_run_record(k));
        keys
    }

    /// Waits (up to [`WAIT_TIMEOUT`]) until exactly `n` keys are under `prefix`, e.g. until the
    /// holders and waiters of a lock have queued.
    pub fn wait_keys(&self, prefix: &str, n: usize) {
        wait_until(&format!("{n} keys under {prefix}"), WAIT_TIMEOUT, || {
            self.keys(prefix).len() == n
        });
    }

    /// Value of `key`, or None if absent. Panics if etcdctl fails.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl_ok(&["get", key, "--print-value-only"]);
        // etcdctl prints "<value>\n" for a hit and nothing for a miss.
        out.strip_suffix('\n').map(str::to_owned)
    }

    fn try_all_leases(&self) -> Result<Vec<String>, String> {
        let out = self.etcdctl(&["lease", "list"]);
        if !out.status.success() {
            return Err(describe_output("etcdctl lease list failed", &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect())
    }

    /// The leases (hex) that run records are kept on.
    pub fn record_leases(&self) -> Result<Vec<String>, String> {
        let out = self.etcdctl(&["get", RECORDS, "--prefix", "--keys-only", "-w", "json"]);
        if !out.status.success() {
            return Err(describe_output("etcdctl get --prefix failed", &out));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("bad etcdctl json ({e})"))?;
        Ok(v["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .filter(|kv| {
                        kv["key"].as_str().is_some_and(|k| {
                            is_run_record(&String::from_utf8_lossy(&base64_decode(k)))
                        })
                    })
                    .filter_map(|kv| kv["lease"].as_i64())
                    .map(|l| format!("{l:016x}"))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Leases but those that only keep run records (see [`is_run_record`]), and but a keyless
    /// lease granted for the default record retention: a run that lost its lock to a frozen
    /// quorum sends its retention-lease grant to a frozen member, gives up after its bound and
    /// exits; the member applies the grant when it resumes. That lease is the name's (its id is
    /// derived from the name, see `etcdlock::record::retention_lease_id`), so the next run of
    /// the name reuses it: at most one per name, gone after the retention period.
    fn try_leases(&self) -> Result<Vec<String>, String> {
        // Leases first: a record lease granted meanwhile gets its keys a moment later, so it
        // would be in neither list if the records were read first.
        let mut leases = self.try_all_leases()?;
        let records = self.record_leases()?;
        leases.retain(|l| !records.contains(l));
        leases.retain(|l| !self.is_retention_lease(l));
        Ok(leases)
    }

    /// Whether lease `id` (hex) is alive with the default record retention granted and no key
    /// but run records attached (none at all between its grant and the records' write, or after
    /// a grant a frozen member applied late).
    fn is_retention_lease(&self, id: &str) -> bool {
        let out = self.etcdctl(&["lease", "timetolive", id, "--keys"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let keys = text
            .split_once("attached keys([")
            .and_then(|(_, rest)| rest.split_once("])"))
            .map(|(keys, _)| keys);
        out.status.success()
            && text.contains(&format!("granted with TTL({DEFAULT_RECORD_RETENTION_S}s)"))
            && keys.is_some_and(|keys| keys.split_whitespace().all(|k| k.starts_with(RECORDS)))
    }

    /// Lease ids as printed by `etcdctl lease list` (hex), but those that only keep run records
    /// (they stay for the retention period by design). Panics if etcdctl fails.
    pub fn leases(&self) -> Vec<String> {
        self.try_leases().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every lease id, record leases included.
    pub fn all_leases(&self) -> Vec<String> {
        self.try_all_leases().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Panics unless the cluster has no keys (but run records) and no leases. Polls for up to
    /// [`CLEAN_TIMEOUT`] first (lease revocation by a dying client is async),
    /// then prints what is left (keys with values, leases with TTL and keys).
    pub fn assert_clean(&self) {
        self.assert_clean_within(CLEAN_TIMEOUT);
    }

    /// [`Cluster::assert_clean`] within [`CLEAN_NOW_TIMEOUT`]: after etcdlock has exited, it
    /// revoked its lease itself, so nothing may be left right away (a lease merely expiring by
    /// its TTL would not pass).
    pub fn assert_clean_now(&self) {
        self.assert_clean_within(CLEAN_NOW_TIMEOUT);
    }

    /// [`Cluster::assert_clean`] with a custom polling bound.
    pub fn assert_clean_within(&self, timeout: Duration) {
        let mut last: (Result<Vec<String>, String>, Result<Vec<String>, String>) =
            (Ok(vec![]), Ok(vec![]));
        let clean = poll_until(timeout, || {
            // Run records (`.etcdlock/v1/NAME/last-run`, `.../last-success`) are meant to stay.
            let keys = self.try_keys("").map(|keys| {
                keys.into_iter()
                    .filter(|k| !is_run_record(k))
                    .collect::<Vec<_>>()
            });
            last = (keys, self.try_leases());
            matches!(&last, (Ok(k), Ok(l)) if k.is_empty() && l.is_empty())
        });
        if clean {
            return;
        }
        let mut msg = format!("etcd not clean after {timeout:?}:\n");
        match &last.0 {
            Ok(keys) if !keys.is_empty() => {
                msg += &format!("keys left: {keys:?}\n");
                let out = self.etcdctl(&["get", "", "--prefix"]);
                msg += &format!(
                    "get \"\" --prefix:\n{}\n",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            Ok(_) => {}
            Err(e) => msg += &format!("{e}\n"),
        }
        match &last.1 {
            Ok(leases) => {
                for id in leases {
                    let out = self.etcdctl(&["lease", "timetolive", id, "--keys"]);
                    msg += &format!("lease left: {}", String::from_utf8_lossy(&out.stdout));
                }
            }
            Err(e) => msg += &format!("{e}\n"),
        }
        panic!("{msg}");
    }

    /// Waits (up to [`HEALTH_TIMEOUT`]) until every running, non-frozen
    /// member answers `GET /health` with `{"health":"true"}` (which in etcd
    /// 3.4 requires a leader and a successful quorum read). Panics if such a
    /// member has exited or the timeout passes, printing the log tails.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            let live: Vec<(usize, &Etcd)> = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_live())
                .collect();
            for (i, m) in &live {
                if !pid_alive(m.pid as i32) {
                    panic!(
                        "etcd member {i} ({}, pid {}) died unexpectedly; log tail:\n{}",
                        m.name,
                        m.pid,
                        m.log_tail(40)
                    );
                }
            }
            let unhealthy: Vec<usize> = live
                .iter()
                .filter(|(_, m)| !client_health(m.client_port))
                .map(|(i, _)| *i)
                .collect();
            if unhealthy.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {HEALTH_TIMEOUT:?} waiting for etcd members {unhealthy:?} to be healthy\n{}",
                    self.all_log_tails(30)
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// `endpoint status -w json` of member `i` as (member_id, leader_id).
    pub fn status(&self, i: usize) -> Option<(u64, u64)> {
        let out = etcdctl_at(
            &self.endpoint(i),
            &[
                "--dial-timeout=2s",
                "--command-timeout=3s",
                "endpoint",
                "status",
                "-w",
                "json",
            ],
        );
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let st = &v.get(0)?["Status"];
        Some((st["header"]["member_id"].as_u64()?, st["leader"].as_u64()?))
    }

    /// Index of the current leader. Polls (up to [`HEALTH_TIMEOUT`]) until
    /// every running, non-frozen member reports the same non-zero leader id
    /// and that id belongs to one of those members.
    pub fn leader_index(&self) -> usize {
        let mut found = None;
        wait_until(
            "a leader agreed on by all live members",
            HEALTH_TIMEOUT,
            || {
                let mut ids = Vec::new();
                for (i, m) in self.members.iter().enumerate() {
                    if !m.is_live() {
                        continue;
                    }
                    match self.status(i) {
                        Some(s) => ids.push((i, s)),
                        None => return false,
                    }
                }
                let Some(&(_, (_, leader))) = ids.first() else {
                    return false;
                };
                if leader == 0 || ids.iter().any(|&(_, (_, l))| l != leader) {
                    return false;
                }
                found = ids
                    .iter()
                    .find(|&&(_, (id, _))| id == leader)
                    .map(|&(i, _)| i);
                found.is_some()
            },
        );
        found.expect("leader found")
    }

    /// Loses all of member `i`'s data, as after a disk wipe or a restore into a new data dir:
    /// SIGKILL, delete the data dir, start it again with the same name, ports, flags and
    /// `--initial-cluster-token` as a *new* cluster (single-member clusters only: a wiped member
    /// of a bigger cluster could not rejoin), and wait until it is healthy. Revisions, keys and
    /// leases start from scratch.
    pub fn wipe_and_restart(&mut self, i: usize) {
        assert_eq!(
            self.members.len(),
            1,
            "wipe_and_restart supports single-member clusters only"
        );
        self.members[i].kill();
        let data = self.members[i].data_dir();
        if data.exists() {
            fs::remove_dir_all(&data).expect("remove etcd data dir");
        }
        self.members[i].launch("new");
        self.wait_healthy();
    }

    /// SIGKILL member `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member `i` again with the same data dir, ports and flags
    /// (`--initial-cluster-state existing`). If a quorum of members is now
    /// running, waits until all live members are healthy; otherwise only
    /// waits until the member is up and listening on its client port.
    pub fn restart(&mut self, i: usize) {
        self.members[i].launch("existing");
        let running = self.members.iter().filter(|m| m.child.is_some()).count();
        if running > self.members.len() / 2 {
            self.wait_healthy();
        } else {
            let m = &self.members[i];
            let addr = SocketAddr::from(([127, 0, 0, 1], m.client_port));
            wait_until(
                &format!("{} to listen on {addr}", m.name),
                STARTUP_TIMEOUT,
                || {
                    assert!(
                        pid_alive(m.pid as i32),
                        "{} exited after restart; log tail:\n{}",
                        m.name,
                        m.log_tail(40)
                    );
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                },
            );
        }
    }

    /// SIGSTOP member `i` and wait until it is actually stopped.
    pub fn stop(&self, i: usize) {
        let m = &self.members[i];
        m.signal(Signal::SIGSTOP);
        m.stopped.store(true, Ordering::SeqCst);
        let pid = m.pid as i32;
        wait_until(
            &format!("{} (pid {pid}) to stop", m.name),
            STARTUP_TIMEOUT,
            || matches!(proc_state(pid), Some('T') | Some('t')),
        );
    }

    /// SIGCONT member `i` and wait until it is no longer stopped.
    pub fn cont(&self, i: usize) {
        let m = &self.members[i];
        m.signal(Signal::SIGCONT);
        let pid = m.pid as i32;
        wait_until(
            &format!("{} (pid {pid}) to continue", m.name),
            STARTUP_TIMEOUT,
            || !matches!(proc_state(pid), Some('T') | Some('t')),
        );
        m.stopped.store(false, Ordering::SeqCst);
    }

    /// Pid of member `i` (the last one if it was killed).
    pub fn pid(&self, i: usize) -> u32 {
        self.members[i].pid()
    }

    /// Last 40 lines of member `i`'s log (all of its runs, each preceded by
    /// a `=== harness: starting ... ===` marker; health-poll noise removed).
    pub fn log_tail(&self, i: usize) -> String {
        self.members[i].log_tail(40)
    }

    fn all_log_tails(&self, lines: usize) -> String {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "--- etcd member {i} ({}) log tail ---\n{}",
                    m.name,
                    m.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One [`Proxy`] per member, forwarding to its client port (same order).
    pub fn proxied(&self) -> Vec<Proxy> {
        self.members
            .iter()
            .map(|m| Proxy::start(&m.client_addr()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.all_log_tails(20));
        }
        // Members are killed by Etcd::drop.
    }
}

/// Comma-separated URLs of `proxies`, for `--endpoints`.
pub fn proxy_endpoints(proxies: &[Proxy]) -> String {
    proxies.iter().map(Proxy::url).collect::<Vec<_>>().join(",")
}
