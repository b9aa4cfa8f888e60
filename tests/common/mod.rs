//! Integration-test harness shared by the test binaries (`mod common;`).
//!
//! Everything here talks to a *real* etcd (3.4+) started from the binaries
//! found by [`etcd_bin`] / [`etcdctl_bin`]; nothing is mocked. All waits are
//! bounded polls (see [`wait_until`]) so the tests behave on slow, noisy
//! machines: conditions are re-checked every 20 ms for up to tens of seconds.
//!
//! * [`Cluster`] / [`Etcd`]: one or three etcd members on 127.0.0.1, each with
//!   its own temp dir (data dir + `etcd.log`). Members are SIGKILLed and reaped
//!   on drop, and additionally carry `PR_SET_PDEATHSIG=SIGKILL` so they do not
//!   outlive a test binary that is itself killed.
//! * [`Proxy`]: a TCP proxy (own thread, own tokio runtime) that can pass,
//!   blackhole, stall, delay or reset traffic, for partitions without root.
//! * Process helpers: [`pid_alive`], [`wait_until`], [`read_pid_file`],
//!   [`descendants_of`], [`run_with_timeout`].
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

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

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn find_binary(env_var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        if is_executable(&p) {
            return p;
        }
        // A bare name in the variable: look it up on PATH.
        if let Some(found) = search_path(&v) {
            return found;
        }
        panic!(
            "{name} not found: {env_var}={p:?} is not an executable file; \
             install Debian package {package} or set {env_var}"
        );
    }
    if let Some(found) = search_path(OsStr::new(name)) {
        return found;
    }
    // cargo may run tests with a reduced PATH; try the usual locations.
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            return p;
        }
    }
    panic!("{name} not found: install Debian package {package} or set {env_var}");
}

fn search_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `$ETCD_BIN`, or `etcd` from `PATH`. Panics (tests fail, never skip) if absent.
pub fn etcd_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_binary("ETCD_BIN", "etcd", "etcd-server"))
        .clone()
}

/// `$ETCDCTL_BIN`, or `etcdctl` from `PATH`. Panics if absent.
pub fn etcdctl_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_binary("ETCDCTL_BIN", "etcdctl", "etcd-client"))
        .clone()
}

/// The `etcdlock` binary built by cargo for this test run.
pub fn etcdlock_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdlock"))
}

/// Remove everything from the caller's environment that would change what etcdlock or etcdctl
/// does: an etcd operator's shell has `ETCDCTL_*` exported, a developer may have `RUST_LOG`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("ETCDCTL_")
            || k.starts_with("ETCDLOCK_")
            || ["RUST_LOG", "NO_COLOR", "RUST_BACKTRACE"].contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd
}

/// `etcdctl` with a clean environment and nothing else set (callers add `--endpoints`).
pub fn etcdctl_plain() -> Command {
    let mut cmd = Command::new(etcdctl_bin());
    clean_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3");
    cmd
}

/// `etcdlock` with a clean environment (see [`clean_env`]).
pub fn etcdlock_command() -> Command {
    let mut cmd = Command::new(etcdlock_bin());
    clean_env(&mut cmd);
    cmd
}

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
// Generic process helpers
// ---------------------------------------------------------------------------

/// Polls `f` every 20 ms until it returns true; panics
/// `"timed out after {timeout:?} waiting for {what}"` otherwise.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Like [`wait_until`] but returns whether the condition became true instead
/// of panicking.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Parses `/proc/<pid>/stat` into (state, ppid). The comm field may contain
/// spaces and parentheses, so parse after the *last* `)`.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Process state letter from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, ...).
pub fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid).map(|(s, _)| s)
}

/// True if `pid` exists (`kill(pid, 0)` succeeds or says EPERM) and is not a
/// zombie / dead task.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X' && s != 'x')
}

/// Waits (bounded) until `pid` is gone or a zombie.
pub fn wait_pid_gone(pid: i32, timeout: Duration) {
    wait_until(&format!("pid {pid} to exit"), timeout, || !pid_alive(pid));
}

/// Waits until `path` exists and contains a positive pid (surrounding
/// whitespace ignored); the content must be stable across two reads 20 ms
/// apart so a half-written file is not misread.
pub fn read_pid_file(path: &Path, timeout: Duration) -> i32 {
    let parse = || -> Option<i32> {
        let s = fs::read_to_string(path).ok()?;
        s.trim().parse::<i32>().ok().filter(|p| *p > 0)
    };
    let mut pid = 0;
    wait_until(&format!("pid file {}", path.display()), timeout, || {
        let Some(first) = parse() else { return false };
        thread::sleep(POLL_INTERVAL);
        if parse() == Some(first) {
            pid = first;
            true
        } else {
            false
        }
    });
    pid
}

/// All processes (including zombies) whose parent chain leads to `pid`,
/// excluding `pid` itself, sorted ascending.
pub fn descendants_of(pid: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some((_, ppid)) = proc_stat(p) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Waits for `child` (an etcdlock started by a test) to exit, at most `timeout`; on expiry it is
/// SIGKILLed and the test fails.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("etcdlock did not exit within {timeout:?}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Runs `cmd` with `input` on its stdin, capturing stdout and stderr.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs `cmd` (stdin null, stdout/stderr captured) and waits at most
/// `timeout`; on expiry the process is SIGKILLed and its (non-success) status
/// returned. Never panics because the command failed, only if it can't spawn.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("failed to spawn {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => {
            // Not reaped yet (the waiter thread still owns it), so the pid
            // cannot have been recycled.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            rx.recv().expect("waiter thread")
        }
    }
    .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Last `n` lines of a text file (lossy UTF-8); empty string if unreadable.
pub fn tail_file(path: &Path, n: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Spawns long-lived helper processes (etcd) from one dedicated thread that
/// lives as long as the test process, with `PR_SET_PDEATHSIG=SIGKILL`: the
/// death signal fires when the *spawning thread* exits, so it must not be a
/// (short-lived) test thread. Net effect: etcd dies with the test binary even
/// if the binary is SIGKILLed and no destructor runs.
fn spawn_tied_to_process(mut cmd: Command) -> io::Result<Child> {
    type Req = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Req>>> = OnceLock::new();
    // SAFETY: prctl(2) is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Req>();
        thread::Builder::new()
            .name("test-etcd-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .expect("spawner thread alive");
    reply_rx.recv().expect("spawner reply")
}

// ---------------------------------------------------------------------------
// etcdctl
// ---------------------------------------------------------------------------

fn etcdctl_command(endpoints: &str) -> Command {
    let mut cmd = Command::new(etcdctl_bin());
    clean_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--dial-timeout={ETCDCTL_DIAL_TIMEOUT}"))
        .arg(format!("--command-timeout={ETCDCTL_COMMAND_TIMEOUT}"));
    cmd
}

/// Runs etcdctl (API v3) against arbitrary endpoints (e.g. a [`Proxy::url`]).
/// Default `--dial-timeout`/`--command-timeout` come first, so flags in `args`
/// override them. Bounded by [`ETCDCTL_PROCESS_TIMEOUT`]; never panics on failure.
pub fn etcdctl_at(endpoints: &str, args: &[&str]) -> Output {
    let mut cmd = etcdctl_command(endpoints);
    cmd.args(args);
    run_with_timeout(cmd, ETCDCTL_PROCESS_TIMEOUT)
}

/// Panicking message for a failed command.
pub fn describe_output(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue, // '=' padding, whitespace
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Etcd member
// ---------------------------------------------------------------------------

fn client_health(port: u16) -> bool {
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

/// Keys (all) and leases in the cluster at `endpoint`, through the gateway: (keys, leases).
pub fn gateway_keys_and_leases(endpoint: &str) -> (usize, usize) {
    let keys = gateway_post(
        endpoint,
        "/v3/kv/range",
        r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
    )
    .unwrap_or_default();
    let leases = gateway_post(endpoint, "/v3/lease/leases", "{}").unwrap_or_default();
    let count = serde_json::from_str::<serde_json::Value>(&keys)
        .ok()
        .and_then(|v| v["count"].as_str().and_then(|c| c.parse().ok()))
        .unwrap_or(0);
    let n_leases = serde_json::from_str::<serde_json::Value>(&leases)
        .ok()
        .and_then(|v| v["leases"].as_array().map(Vec::len))
        .unwrap_or(0);
    (count, n_leases)
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
        let mut cmd = Command::new(etcd_bin());
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
            .unwrap_or_else(|e| panic!("failed to spawn {:?}: {e}", etcd_bin()));
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

    /// `n` members with extra etcd flags appended to every member.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
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
                    Etcd::new(&format!("m{i}"), c, p, &initial_cluster, &token, extra)
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

    /// Value of `key`, or None if absent. Panics if etcdctl fails.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl_ok(&["get", key, "--print-value-only"]);
        // etcdctl prints "<value>\n" for a hit and nothing for a miss.
        out.strip_suffix('\n').map(str::to_owned)
    }

    fn try_leases(&self) -> Result<Vec<String>, String> {
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

    /// Lease ids as printed by `etcdctl lease list` (hex). Panics if etcdctl fails.
    pub fn leases(&self) -> Vec<String> {
        self.try_leases().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Panics unless the cluster has no keys and no leases. Polls for up to
    /// [`CLEAN_TIMEOUT`] first (lease revocation by a dying client is async),
    /// then prints what is left (keys with values, leases with TTL and keys).
    pub fn assert_clean(&self) {
        self.assert_clean_within(CLEAN_TIMEOUT);
    }

    /// [`Cluster::assert_clean`] with a custom polling bound.
    pub fn assert_clean_within(&self, timeout: Duration) {
        let mut last: (Result<Vec<String>, String>, Result<Vec<String>, String>) =
            (Ok(vec![]), Ok(vec![]));
        let clean = poll_until(timeout, || {
            last = (self.try_keys(""), self.try_leases());
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

// ---------------------------------------------------------------------------
// TCP proxy
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Read and discard everything, keep sockets open.
    Blackhole,
    /// Stop reading (bytes stay in kernel buffers, TCP back-pressure); on
    /// `pass()` everything resumes intact — a partition that heals.
    Stall,
    Delay(Duration),
}

/// Connections alive per "reset generation" (see [`Proxy::reset_all`]).
type GenCounts = Arc<Mutex<BTreeMap<u64, usize>>>;

struct ConnGuard {
    counts: GenCounts,
    generation: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.generation) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.generation);
            }
        }
    }
}

/// TCP proxy on `127.0.0.1:<free port>` forwarding every accepted connection
/// to `target`. Runs on its own thread with its own current-thread tokio
/// runtime, so plain `#[test]`s can use it. Dropping it closes the listener
/// and every connection.
pub struct Proxy {
    port: u16,
    target: String,
    mode: tokio::sync::watch::Sender<Mode>,
    reset: tokio::sync::watch::Sender<u64>,
    counts: GenCounts,
    accepted: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding to `target` (`"127.0.0.1:PORT"`) in pass mode.
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let (mode_tx, mode_rx) = tokio::sync::watch::channel(Mode::Pass);
        let (reset_tx, reset_rx) = tokio::sync::watch::channel(0u64);
        let (shut_tx, shut_rx) = tokio::sync::oneshot::channel::<()>();
        let counts: GenCounts = Arc::default();
        let accepted: Arc<AtomicU64> = Arc::default();
        let thread = {
            let target = target.to_owned();
            let counts = counts.clone();
            let accepted = accepted.clone();
            thread::Builder::new()
                .name(format!("test-proxy-{port}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("proxy runtime");
                    rt.block_on(async move {
                        let listener =
                            tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                        tokio::select! {
                            _ = shut_rx => {}
                            _ = accept_loop(listener, target, mode_rx, reset_rx, counts, accepted) => {}
                        }
                    });
                    // Dropping the runtime drops every connection task, which
                    // closes their sockets.
                    drop(rt);
                })
                .expect("spawn proxy thread")
        };
        Proxy {
            port,
            target: target.to_owned(),
            mode: mode_tx,
            reset: reset_tx,
            counts,
            accepted,
            shutdown: Some(shut_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Forward normally (also ends blackhole/stall/delay).
    pub fn pass(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Keep accepting and keep every socket open, but silently discard all
    /// bytes in both directions, on existing and new connections. Bytes
    /// discarded are gone: after `pass()` an existing connection's stream is
    /// corrupt (a real client will see a protocol error and reconnect).
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Stop moving bytes without discarding them: the proxy stops reading,
    /// so data waits in socket buffers (peers eventually block on write).
    /// After `pass()` the streams resume intact, like a healed partition.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forward every chunk `d` after it was received (latency, not a
    /// throughput limit: chunks are pipelined).
    pub fn delay(&self, d: Duration) {
        self.mode.send_replace(Mode::Delay(d));
    }

    /// Close all connections that exist now (RST to both sides: zero
    /// linger), and wait (bounded) until they are gone. Connections accepted
    /// afterwards are unaffected. The mode is not changed.
    pub fn reset_all(&self) {
        let mut new_gen = 0;
        self.reset.send_modify(|g| {
            *g += 1;
            new_gen = *g;
        });
        wait_until(
            "proxy connections to close after reset_all",
            STARTUP_TIMEOUT,
            || {
                let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                c.range(..new_gen).all(|(_, n)| *n == 0)
            },
        );
    }

    /// Total number of client connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Number of currently open client connections.
    pub fn active_connections(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    target: String,
    mode: tokio::sync::watch::Receiver<Mode>,
    reset: tokio::sync::watch::Receiver<u64>,
    counts: GenCounts,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let sock = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // e.g. EMFILE; back off instead of spinning.
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        let mut reset = reset.clone();
        let generation = *reset.borrow_and_update();
        *counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(generation)
            .or_default() += 1;
        let guard = ConnGuard {
            counts: counts.clone(),
            generation,
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(handle_conn(
            sock,
            target.clone(),
            mode.clone(),
            reset,
            guard,
        ));
    }
}

async fn handle_conn(
    mut client: tokio::net::TcpStream,
    target: String,
    mode: tokio::sync::watch::Receiver<Mode>,
    mut reset: tokio::sync::watch::Receiver<u64>,
    _guard: ConnGuard,
) {
    let _ = client.set_nodelay(true);
    let connected = tokio::select! {
        r = tokio::net::TcpStream::connect(&target) => r.ok(),
        _ = reset.changed() => {
            let _ = client.set_zero_linger();
            return;
        }
    };
    let Some(mut upstream) = connected else {
        // Target unreachable. A blackhole must look like a hang, not a
        // refusal: swallow bytes until reset. Otherwise just close.
        if matches!(*mode.borrow(), Mode::Blackhole | Mode::Stall) {
            sink(client, reset).await;
        }
        return;
    };
    let _ = upstream.set_nodelay(true);
    let was_reset = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let forward =
            async { tokio::try_join!(pump(cr, uw, mode.clone()), pump(ur, cw, mode.clone())) };
        tokio::select! {
            _ = forward => false,
            _ = reset.changed() => true,
        }
    };
    if was_reset {
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}

async fn sink(mut client: tokio::net::TcpStream, mut reset: tokio::sync::watch::Receiver<u64>) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = client.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = reset.changed() => {
                let _ = client.set_zero_linger();
                return;
            }
        }
    }
}

/// Moves bytes from `r` to `w` according to the current mode. Returns Ok on
/// a clean EOF (after forwarding it as a write shutdown), Err on I/O error.
async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    mut mode: tokio::sync::watch::Receiver<Mode>,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant as TInstant;
    const MAX_QUEUED_CHUNKS: usize = 256;
    let mut queue: VecDeque<(TInstant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    loop {
        let m = *mode.borrow_and_update();
        if eof && queue.is_empty() && matches!(m, Mode::Pass | Mode::Delay(_)) {
            let _ = w.shutdown().await;
            return Ok(());
        }
        let can_read = !eof && queue.len() < MAX_QUEUED_CHUNKS && m != Mode::Stall;
        let next_due = if m == Mode::Stall {
            None
        } else {
            queue.front().map(|(t, _)| *t)
        };
        tokio::select! {
            res = r.read(&mut buf), if can_read => {
                match res? {
                    0 => eof = true,
                    n => match m {
                        Mode::Blackhole => {}
                        Mode::Pass | Mode::Stall => queue.push_back((TInstant::now(), buf[..n].to_vec())),
                        Mode::Delay(d) => queue.push_back((TInstant::now() + d, buf[..n].to_vec())),
                    },
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(TInstant::now)), if next_due.is_some() => {
                let (_, data) = queue.pop_front().expect("queue non-empty");
                if *mode.borrow() != Mode::Blackhole {
                    w.write_all(&data).await?;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return Ok(()); // proxy dropped
                }
            }
        }
    }
}
