//! Jepsen-style lock-set workload, fenced store, nemesis and checker for the fault tests.
//!
//! **The child.** The test binary itself is the locked command: a function in `.init_array` runs
//! before `main` (and before libtest), and if `ETCDLOCK_TEST_CHILD=lockset` is set it acts as the
//! child and exits, so a child starts in about a millisecond and nothing forks. Each child
//!
//! 1. *announces* itself: it creates `live/<pid>-<nanos>.tmp`, takes an exclusive `flock(2)` on it
//!    and renames it to `live/<pid>-<nanos>`. The kernel drops that lock exactly when the process
//!    dies (SIGKILL included), so "is the file locked" is "is that child still alive", with no
//!    clock involved;
//! 2. *scans* every other file in `live/`: a file it cannot lock (`LOCK_SH|LOCK_NB` fails) belongs
//!    to a child that is still alive — an **overlap**, recorded in its `S` line. Unlocked files are
//!    dead children's and are removed. Of two overlapping children the later one always sees the
//!    earlier one, since each announces before it scans;
//! 3. does the lock-set work: reads the plain counter file, registers its fencing token with the
//!    fenced store (a read), sleeps (short, sometimes long, optionally until a file exists), then
//!    writes counter+1 (write to a temp file, rename) and writes through the fenced store;
//! 4. logs `S` (start), `C` (counter written) and `E` (end) lines to `events` with `O_APPEND`, on
//!    CLOCK_MONOTONIC (one clock for all processes on this machine), and publishes itself in
//!    `current` for the nemesis.
//!
//! **The fenced store** (`store.log`) is an append-only log guarded by `flock(2)` on `store.lock`;
//! each line carries the full state after the operation (`op token ok|rej max value`), so a
//! SIGKILL can never leave state and log disagreeing. A read or write with a token lower than the
//! highest seen is rejected; an accepted read raises the highest seen, so a stale holder's later
//! write is refused even if the new holder has not written yet.
//!
//! **The checker** ([`Workload::check`]) replays the logs: overlaps seen by the witness, overlaps
//! of [start, end] intervals of children that ended normally, fencing tokens in start order,
//! stale store operations that were accepted (must be 0), store value = accepted writes, and
//! lost updates of the unfenced counter.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::libc;

use crate::*;

/// Set to `lockset` in the child's environment to make the test binary act as the child.
pub const CHILD_MODE_ENV: &str = "ETCDLOCK_TEST_CHILD";
/// Marker in the environment of every process a workload starts (orphan detection via /proc).
pub const RUN_ENV: &str = "ETCDLOCK_TEST_RUN";
const DIR_ENV: &str = "LOCKSET_DIR";
const CONTENDER_ENV: &str = "LOCKSET_CONTENDER";
/// `MIN-MAX` microseconds of work (sleep) between read and write.
const SLEEP_ENV: &str = "LOCKSET_SLEEP_US";
/// `PERMILLE:MIN-MAX`: that share of children sleep MIN..MAX microseconds instead (long holders,
/// so holder-targeted faults have something to hit).
const LONG_ENV: &str = "LOCKSET_LONG";
/// Extra hold in milliseconds after the sleep (lease-loss and pause cells).
const HOLD_MS_ENV: &str = "LOCKSET_HOLD_MS";
/// Hold until this file exists (scenario tests).
const HOLD_FILE_ENV: &str = "LOCKSET_HOLD_FILE";

// ---------------------------------------------------------------------------
// Small OS helpers
// ---------------------------------------------------------------------------

/// CLOCK_MONOTONIC in nanoseconds: system-wide, so comparable between processes on one machine.
pub fn now_ns() -> i64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    ts.tv_sec() * 1_000_000_000 + ts.tv_nsec()
}

fn flock(fd: RawFd, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on an open descriptor.
        let r = unsafe { libc::flock(fd, op) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A process handle that cannot hit a recycled pid: `pidfd_open(2)` + `pidfd_send_signal(2)`.
pub struct PidFd {
    pub pid: i32,
    fd: OwnedFd,
}

impl PidFd {
    /// Opens a pidfd for `pid`; `None` if it does not exist (any more).
    pub fn open(pid: i32) -> Option<PidFd> {
        // SAFETY: plain syscall, the result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a fresh descriptor returned by the kernel.
        Some(PidFd {
            pid,
            fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
        })
    }

    /// True once the process has terminated (zombie or reaped): the pidfd polls readable.
    pub fn exited(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on a descriptor we own, no waiting.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        r > 0 && p.revents & libc::POLLIN != 0
    }

    /// Sends `sig`; false if the process is gone (it may be a zombie: then true, but harmless).
    pub fn signal(&self, sig: libc::c_int) -> bool {
        // SAFETY: plain syscall on a descriptor we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        r == 0
    }
}

/// The environment of `pid` as (name, value) pairs (empty if unreadable).
pub fn proc_environ(pid: i32) -> Vec<(String, String)> {
    let Ok(bytes) = fs::read(format!("/proc/{pid}/environ")) else {
        return Vec::new();
    };
    bytes
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Parent pid from `/proc/<pid>/stat`.
pub fn proc_ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Live (non-zombie) processes whose environment carries `RUN_ENV=<run_id>`, with their command
/// lines: the orphans a workload must not leave behind.
pub fn processes_of_run(run_id: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !pid_alive(pid) {
            continue;
        }
        if proc_environ(pid)
            .iter()
            .any(|(k, v)| k == RUN_ENV && v == run_id)
        {
            let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            out.push((pid, cmd));
        }
    }
    out
}

/// Waits (bounded) until no process of `run_id` is alive; panics listing them otherwise.
pub fn assert_no_orphans(run_id: &str, timeout: Duration) {
    let mut left = Vec::new();
    let ok = poll_until(timeout, || {
        left = processes_of_run(run_id);
        left.is_empty()
    });
    assert!(
        ok,
        "orphan processes of run {run_id} after {timeout:?}: {left:?}"
    );
}

/// xorshift64*: deterministic, seedable, good enough for fault schedules.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A seed from the environment (`ETCDLOCK_TEST_SEED`) or the clock; printed by the tests so a
/// failing schedule can be replayed.
pub fn seed() -> u64 {
    std::env::var("ETCDLOCK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ns() as u64 ^ (u64::from(std::process::id()) << 40))
}

// ---------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------

/// Act as the lock-set child if [`CHILD_MODE_ENV`] says so (then never return). A test binary
/// calls this from `.init_array`, before `main`:
///
/// ```ignore
/// #[used]
/// #[link_section = ".init_array"]
/// static CHILD_ENTRY: extern "C" fn() = etcdlock_testkit::lockset::child_entry;
/// ```
pub extern "C" fn child_entry() {
    if std::env::var_os(CHILD_MODE_ENV).is_some_and(|v| v == "lockset") {
        std::process::exit(run_child());
    }
}

/// The lock-set child's whole run (configured by the environment, see [`Workload::configure`]);
/// its exit code.
pub fn run_child() -> i32 {
    match child_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lockset child: {e}");
            3
        }
    }
}

/// The smallest child there is, for timing hand-offs: append "START_NS END_NS" (CLOCK_MONOTONIC,
/// the clock the lock-set events use) to `path`, with one write so concurrent children never
/// interleave.
pub fn stamp(path: &Path) -> i32 {
    let start = now_ns();
    let line = format!("{start} {}\n", now_ns());
    match append(path, &line) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lockset child: {e}");
            3
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn append(path: &Path, line: &str) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    // One write(2) per record: O_APPEND makes it land whole at the end.
    f.write_all(line.as_bytes())
        .map_err(|e| format!("append {}: {e}", path.display()))
}

fn child_main() -> Result<i32, String> {
    let dir = PathBuf::from(env(DIR_ENV).ok_or("LOCKSET_DIR not set")?);
    let pid = std::process::id() as i32;
    let ppid = nix::unistd::getppid().as_raw();
    let token: i64 = env("ETCDLOCK_FENCING_TOKEN")
        .or_else(|| env("ETCD_LOCK_REV"))
        .and_then(|t| t.parse().ok())
        .ok_or("no fencing token in the environment")?;
    let key = env("ETCDLOCK_KEY")
        .or_else(|| env("ETCD_LOCK_KEY"))
        .unwrap_or_else(|| "-".into());
    let lease = env("ETCDLOCK_LEASE_ID")
        .or_else(|| key.rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "-".into());
    let contender = env(CONTENDER_ENV).unwrap_or_else(|| "-".into());

    // 1. Announce: lock first, then make the file visible under its final name.
    let live = dir.join("live");
    let t_exec = now_ns();
    let name = format!("{pid}-{t_exec}");
    let tmp = live.join(format!("{name}.tmp"));
    let mine = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| format!("create {}: {e}", tmp.display()))?;
    flock(mine.as_raw_fd(), libc::LOCK_EX).map_err(|e| format!("flock own file: {e}"))?;
    let live_path = live.join(&name);
    fs::rename(&tmp, &live_path).map_err(|e| format!("rename: {e}"))?;
    let t_start = now_ns();

    // 2. Scan for anyone else alive.
    let mut alive = Vec::new();
    for entry in fs::read_dir(&live).map_err(|e| format!("read_dir: {e}"))? {
        let Ok(entry) = entry else { continue };
        let other = entry.file_name().to_string_lossy().into_owned();
        if other == name || other.ends_with(".tmp") {
            continue;
        }
        let Ok(f) = File::open(entry.path()) else {
            continue; // removed meanwhile: dead
        };
        match flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) {
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                alive.push(other);
            }
            _ => {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    // How long to work.
    let mut rng = Rng::new((t_start as u64) ^ ((pid as u64) << 32));
    let (lo, hi) = env(SLEEP_ENV)
        .and_then(|s| parse_range(&s))
        .unwrap_or((5_000, 20_000));
    let mut sleep_us = rng.range(lo, hi);
    if let Some((permille, range)) = env(LONG_ENV).and_then(|s| {
        let (p, r) = s.split_once(':')?;
        Some((p.parse::<u64>().ok()?, parse_range(r)?))
    }) {
        if rng.range(0, 999) < permille {
            sleep_us = rng.range(range.0, range.1);
        }
    }
    let hold_ms: u64 = env(HOLD_MS_ENV).and_then(|s| s.parse().ok()).unwrap_or(0);
    let planned_us = sleep_us + hold_ms * 1000;

    let events = dir.join("events");
    let alive_s = if alive.is_empty() {
        "-".to_owned()
    } else {
        alive.join(",")
    };
    append(
        &events,
        &format!(
            "S {pid} {ppid} {contender} {token} {t_start} {lease} {key} {planned_us} {alive_s} {name}\n"
        ),
    )?;
    // For the nemesis: who holds the lock now.
    let cur_tmp = dir.join(format!("current.{pid}"));
    fs::write(
        &cur_tmp,
        format!("{contender} {pid} {ppid} {token} {lease} {key} {t_start} {planned_us} {name}\n"),
    )
    .map_err(|e| format!("write current: {e}"))?;
    fs::rename(&cur_tmp, dir.join("current")).map_err(|e| format!("rename current: {e}"))?;

    // 3. The lock-set work: read, sleep, write.
    let counter_path = dir.join("counter");
    let counter: i64 = fs::read_to_string(&counter_path)
        .map_err(|e| format!("read counter: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("parse counter: {e}"))?;
    let fenced = store_op(&dir, token, None)?;

    thread::sleep(Duration::from_micros(sleep_us));
    if hold_ms > 0 {
        thread::sleep(Duration::from_millis(hold_ms));
    }
    if let Some(f) = env(HOLD_FILE_ENV) {
        while !Path::new(&f).exists() {
            thread::sleep(Duration::from_millis(10));
        }
    }

    let ctmp = dir.join(format!("counter.{pid}"));
    fs::write(&ctmp, format!("{}\n", counter + 1)).map_err(|e| format!("write counter: {e}"))?;
    fs::rename(&ctmp, &counter_path).map_err(|e| format!("rename counter: {e}"))?;
    append(
        &events,
        &format!("C {pid} {} {} {name}\n", now_ns(), counter + 1),
    )?;
    if let Some(value) = fenced {
        store_op(&dir, token, Some(value + 1))?;
    }

    append(&events, &format!("E {pid} {} {name}\n", now_ns()))?;
    let _ = fs::remove_file(&live_path);
    drop(mine);
    Ok(0)
}

/// One operation on the fenced store: a read (`write == None`) or a write of `write`. Returns the
/// value read (for an accepted read), or None if the token was rejected.
fn store_op(dir: &Path, token: i64, write: Option<i64>) -> Result<Option<i64>, String> {
    let lock = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dir.join("store.lock"))
        .map_err(|e| format!("open store.lock: {e}"))?;
    flock(lock.as_raw_fd(), libc::LOCK_EX).map_err(|e| format!("flock store: {e}"))?;
    let log_path = dir.join("store.log");
    let (max, value) = last_store_state(&log_path)?;
    let op = if write.is_some() { "W" } else { "R" };
    let (ok, new_max, new_value) = if token < max {
        (false, max, value)
    } else {
        (true, token, write.unwrap_or(value))
    };
    let verdict = if ok { "ok" } else { "rej" };
    append(
        &log_path,
        &format!(
            "{op} {token} {verdict} {new_max} {new_value} {} {}\n",
            std::process::id(),
            now_ns()
        ),
    )?;
    drop(lock);
    Ok(ok.then_some(value))
}

/// (max token seen, value) from the last line of the store log; (0, 0) when empty.
fn last_store_state(path: &Path) -> Result<(i64, i64), String> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(format!("open store.log: {e}")),
    };
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let from = len.saturating_sub(512);
    f.seek(SeekFrom::Start(from)).map_err(|e| e.to_string())?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).map_err(|e| e.to_string())?;
    let Some(line) = tail.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok((0, 0));
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 5 {
        return Err(format!("torn store.log line: {line:?}"));
    }
    Ok((
        f[3].parse().map_err(|_| format!("bad line {line:?}"))?,
        f[4].parse().map_err(|_| format!("bad line {line:?}"))?,
    ))
}

// ---------------------------------------------------------------------------
// Workload (test side)
// ---------------------------------------------------------------------------

/// What each child does: how long it works between read and write.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    pub sleep_us: (u64, u64),
    /// (permille, (min, max) us): long holders.
    pub long: Option<(u64, (u64, u64))>,
    pub hold_ms: u64,
    pub hold_file: Option<PathBuf>,
}

impl Default for ChildSpec {
    fn default() -> Self {
        ChildSpec {
            sleep_us: (5_000, 20_000),
            long: None,
            hold_ms: 0,
            hold_file: None,
        }
    }
}

/// The holder as published in `current` by its child.
#[derive(Clone, Debug)]
pub struct Holder {
    pub contender: Option<usize>,
    pub pid: i32,
    pub ppid: i32,
    pub token: i64,
    pub lease: String,
    pub key: String,
    pub t_start: i64,
    pub planned_us: u64,
    /// Unique id of the child (`<pid>-<exec time>`; pids get reused in long runs).
    pub id: String,
}

impl Holder {
    /// Nanoseconds of planned work left (negative: should be done).
    pub fn remaining_ns(&self) -> i64 {
        self.t_start + self.planned_us as i64 * 1000 - now_ns()
    }

    /// A pidfd for the child, verified to be this holder's child (same parent, our marker).
    pub fn child_pidfd(&self) -> Option<PidFd> {
        let fd = PidFd::open(self.pid)?;
        if proc_ppid(self.pid) != Some(self.ppid) || !pid_alive(self.pid) {
            return None;
        }
        let env = proc_environ(self.pid);
        let token_ok = env.iter().any(|(k, v)| {
            (k == "ETCDLOCK_FENCING_TOKEN" || k == "ETCD_LOCK_REV") && *v == self.token.to_string()
        });
        token_ok.then_some(fd)
    }
}

/// One lock-set run: a directory with the witness, counter, store and logs. If the test fails
/// (the thread panics) the directory is copied to `$TMPDIR/etcdlock-failed-<run id>` for a
/// post-mortem, and its path printed.
pub struct Workload {
    pub dir: tempfile::TempDir,
    pub run_id: String,
    /// (bytes of `events` already counted, `S` lines in them): `acquisitions` reads only what is new.
    counted: Mutex<(u64, usize)>,
}

impl Drop for Workload {
    fn drop(&mut self) {
        if thread::panicking() {
            let to = std::env::temp_dir().join(format!("etcdlock-failed-{}", self.run_id));
            let ok = Command::new("cp")
                .arg("-r")
                .arg(self.dir.path())
                .arg(&to)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                eprintln!("lock-set workload kept in {}", to.display());
            }
        }
    }
}

impl Workload {
    pub fn new(tag: &str) -> Workload {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = tempfile::Builder::new()
            .prefix(&format!("etcdlock-lockset-{tag}-"))
            .tempdir()
            .expect("workload dir");
        fs::create_dir(dir.path().join("live")).unwrap();
        fs::write(dir.path().join("counter"), "0\n").unwrap();
        let run_id = format!(
            "{}-{}-{}",
            std::process::id(),
            tag,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        Workload {
            dir,
            run_id,
            counted: Mutex::new((0, 0)),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The test binary, which acts as the child when [`CHILD_MODE_ENV`] is set.
    pub fn child_exe() -> PathBuf {
        std::env::current_exe().expect("current_exe")
    }

    /// Applies the child's environment (and the run marker) to a command that will start it.
    pub fn configure(&self, cmd: &mut Command, contender: usize, spec: &ChildSpec) {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("ETCDCTL_") || k.starts_with("ETCDLOCK_") || k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env(CHILD_MODE_ENV, "lockset")
            .env(RUN_ENV, &self.run_id)
            .env(DIR_ENV, self.path())
            .env(CONTENDER_ENV, contender.to_string())
            .env(
                SLEEP_ENV,
                format!("{}-{}", spec.sleep_us.0, spec.sleep_us.1),
            )
            .env(HOLD_MS_ENV, spec.hold_ms.to_string());
        match spec.long {
            Some((p, (lo, hi))) => cmd.env(LONG_ENV, format!("{p}:{lo}-{hi}")),
            None => cmd.env_remove(LONG_ENV),
        };
        match &spec.hold_file {
            Some(f) => cmd.env(HOLD_FILE_ENV, f),
            None => cmd.env_remove(HOLD_FILE_ENV),
        };
    }

    /// The current holder, if any child has started.
    pub fn current(&self) -> Option<Holder> {
        let s = fs::read_to_string(self.path().join("current")).ok()?;
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() < 9 {
            return None;
        }
        Some(Holder {
            contender: f[0].parse().ok(),
            pid: f[1].parse().ok()?,
            ppid: f[2].parse().ok()?,
            token: f[3].parse().ok()?,
            lease: f[4].to_owned(),
            key: f[5].to_owned(),
            t_start: f[6].parse().ok()?,
            planned_us: f[7].parse().ok()?,
            id: f[8].to_owned(),
        })
    }

    /// Number of children started so far (cheap: counts the `S` lines appended since last time).
    pub fn acquisitions(&self) -> usize {
        let mut counted = self.counted.lock().unwrap();
        let Ok(mut f) = File::open(self.path().join("events")) else {
            return counted.1;
        };
        if f.seek(SeekFrom::Start(counted.0)).is_err() {
            return counted.1;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return counted.1;
        }
        // Only complete lines; a record being appended right now is counted next time.
        let complete = buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
        counted.1 += buf[..complete]
            .split(|&c| c == b'\n')
            .filter(|l| l.starts_with(b"S "))
            .count();
        counted.0 += complete as u64;
        counted.1
    }

    /// Records a line in the event log from the test side (faults), same clock as the children.
    pub fn note(&self, what: &str) {
        let _ = append(
            &self.path().join("events"),
            &format!("N {} {}\n", now_ns(), what.replace('\n', " ")),
        );
    }

    /// Starts of all children, in start order.
    pub fn starts(&self) -> Vec<Start> {
        self.parse().0
    }

    /// (starts in start order, end time by child id, (time, value) of the counter write by id).
    #[allow(clippy::type_complexity)]
    fn parse(
        &self,
    ) -> (
        Vec<Start>,
        HashMap<String, i64>,
        HashMap<String, (i64, i64)>,
    ) {
        let text = fs::read_to_string(self.path().join("events")).unwrap_or_default();
        let mut starts = Vec::new();
        let mut ends = HashMap::new();
        let mut counters = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.first().copied() {
                Some("S") if f.len() >= 11 => starts.push(Start {
                    pid: f[1].parse().unwrap_or(0),
                    ppid: f[2].parse().unwrap_or(0),
                    contender: f[3].parse().ok(),
                    token: f[4].parse().unwrap_or(0),
                    t_start: f[5].parse().unwrap_or(0),
                    lease: f[6].to_owned(),
                    planned_us: f[8].parse().unwrap_or(0),
                    saw_alive: if f[9] == "-" {
                        vec![]
                    } else {
                        f[9].split(',').map(str::to_owned).collect()
                    },
                    id: f[10].to_owned(),
                }),
                Some("E") if f.len() >= 4 => {
                    ends.insert(f[3].to_owned(), f[2].parse().unwrap_or(0));
                }
                Some("C") if f.len() >= 5 => {
                    counters.insert(
                        f[4].to_owned(),
                        (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
                    );
                }
                _ => {}
            }
        }
        starts.sort_by_key(|s| s.t_start);
        (starts, ends, counters)
    }

    /// Runs the checker over everything logged so far.
    pub fn check(&self) -> Report {
        let (starts, ends, counters) = self.parse();
        let mut r = Report {
            acquisitions: starts.len(),
            completed: ends.len(),
            counter_writes: counters.len(),
            ..Report::default()
        };
        // Which children did each start overlap with? The witness (exact) plus the intervals
        // of children that ended normally (a sweep; live intervals are few).
        let text = fs::read_to_string(self.path().join("events")).unwrap_or_default();
        let mut victims: HashMap<String, String> = HashMap::new();
        let mut deaths: HashMap<String, i64> = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match (f.first().copied(), f.get(2).copied()) {
                (Some("N"), Some("victim")) if f.len() >= 5 => {
                    victims.insert(f[3].to_owned(), f[4].to_owned());
                }
                (Some("N"), Some("dead")) if f.len() >= 4 => {
                    deaths.insert(f[3].to_owned(), f[1].parse().unwrap_or(0));
                }
                _ => {}
            }
        }
        let mut open_intervals: Vec<(i64, String)> = Vec::new();
        for s in &starts {
            open_intervals.retain(|(end, _)| *end > s.t_start);
            let mut with: Vec<String> = s.saw_alive.clone();
            let from_intervals: Vec<String> =
                open_intervals.iter().map(|(_, p)| p.clone()).collect();
            for p in &from_intervals {
                if !with.contains(p) {
                    with.push(p.clone());
                }
            }
            if let Some(&e) = ends.get(&s.id) {
                open_intervals.push((e, s.id.clone()));
            }
            if with.is_empty() {
                continue;
            }
            let kinds: Vec<Option<&String>> = with.iter().map(|p| victims.get(p)).collect();
            let explained = |k: &str| kinds.iter().all(|v| v.is_some_and(|v| v == k));
            // How long the earlier child was still alive after this one started.
            let known: Vec<f64> = with
                .iter()
                .filter_map(|p| deaths.get(p).or_else(|| ends.get(p)))
                .map(|&d| (d - s.t_start) as f64 / 1e6)
                .collect();
            let stale_ms = known.iter().copied().fold(0.0f64, f64::max);
            let example = format!(
                "pid {} (token {}) started while {:?} still ran ({}){}",
                s.pid,
                s.token,
                with,
                if known.is_empty() {
                    "death not observed".to_owned()
                } else {
                    format!("for {stale_ms:.1} ms more")
                },
                match kinds.first() {
                    Some(Some(k)) => format!(" [{k}]"),
                    _ => String::new(),
                }
            );
            if explained("revoke") || explained("delete") {
                r.overlaps_after_revoke += 1;
                r.max_overlap_after_revoke_ms = r.max_overlap_after_revoke_ms.max(stale_ms);
                r.expected_examples.push(example);
            } else if explained("pause") {
                r.overlaps_while_paused += 1;
                r.expected_examples.push(example);
            } else {
                if !s.saw_alive.is_empty() {
                    r.witness_overlaps += 1;
                }
                if !from_intervals.is_empty() {
                    r.interval_overlaps += 1;
                }
                r.max_overlap_ms = r.max_overlap_ms.max(stale_ms);
                r.overlap_examples.push(example);
            }
        }
        // Fencing tokens in start order.
        for w in starts.windows(2) {
            if w[1].token <= w[0].token {
                r.token_order_violations += 1;
            }
        }
        let mut seen = std::collections::HashSet::new();
        r.duplicate_tokens = starts.iter().filter(|s| !seen.insert(s.token)).count();
        // Fenced store replay.
        let store = fs::read_to_string(self.path().join("store.log")).unwrap_or_default();
        let (mut max, mut value) = (0i64, 0i64);
        for line in store.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                r.store_torn_lines += 1;
                continue;
            }
            let token: i64 = f[1].parse().unwrap_or(0);
            let ok = f[2] == "ok";
            r.store_ops += 1;
            if ok {
                if token < max {
                    r.stale_accepted += 1;
                }
                max = max.max(token);
                if f[0] == "W" {
                    r.store_accepted_writes += 1;
                    let new: i64 = f[4].parse().unwrap_or(0);
                    if new != value + 1 {
                        r.store_lost_updates += 1;
                    }
                    value = new;
                }
            } else {
                if token >= max {
                    r.store_wrong_rejections += 1;
                }
                r.stale_rejected += 1;
            }
        }
        r.store_value = value;
        r.counter = fs::read_to_string(self.path().join("counter"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        r.counter_lost_updates = (r.counter_writes as i64 - r.counter).max(0) as usize;
        r
    }
}

#[derive(Clone, Debug)]
pub struct Start {
    pub pid: i32,
    pub ppid: i32,
    pub contender: Option<usize>,
    pub token: i64,
    pub t_start: i64,
    pub lease: String,
    pub planned_us: u64,
    /// Ids of the children it found alive when it started (the witness).
    pub saw_alive: Vec<String>,
    /// `<pid>-<exec time>`: unique even when pids are reused.
    pub id: String,
}

/// What the checker found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Children started (= locks acquired and used).
    pub acquisitions: usize,
    /// Children that ran to their normal end.
    pub completed: usize,
    /// Children that found another child alive when they started (exact, kernel-based).
    pub witness_overlaps: usize,
    /// Start before the end of an earlier child that ended normally (timestamps).
    pub interval_overlaps: usize,
    /// Longest time an earlier child was seen alive after a later one started (unexplained
    /// overlaps), milliseconds (0 if its death was not observed).
    pub max_overlap_ms: f64,
    pub overlap_examples: Vec<String>,
    /// Overlaps with a child whose lease was revoked or whose key was deleted by the nemesis: etcd
    /// hands the lock over the moment it deletes the key, before any client can react, so these
    /// are not preventable by a lock client; they are counted, with how long the old child lived
    /// on, but not failures.
    pub overlaps_after_revoke: usize,
    pub max_overlap_after_revoke_ms: f64,
    /// Overlaps with a child whose lock process the nemesis SIGSTOPped (not promised).
    pub overlaps_while_paused: usize,
    pub expected_examples: Vec<String>,
    /// Consecutive starts whose tokens did not increase.
    pub token_order_violations: usize,
    pub duplicate_tokens: usize,
    pub store_ops: usize,
    pub store_accepted_writes: usize,
    pub store_value: i64,
    /// Store operations with a token lower than one seen before that were accepted (must be 0).
    pub stale_accepted: usize,
    /// Stale store operations refused (the fence at work).
    pub stale_rejected: usize,
    pub store_wrong_rejections: usize,
    pub store_lost_updates: usize,
    pub store_torn_lines: usize,
    /// Plain (unfenced) counter and the writes children logged.
    pub counter: i64,
    pub counter_writes: usize,
    pub counter_lost_updates: usize,
}

impl Report {
    pub fn overlaps(&self) -> usize {
        self.witness_overlaps.max(self.interval_overlaps)
    }

    /// Panics unless the run was safe: no overlap, increasing tokens, a consistent fenced store
    /// and no lost update of the unfenced counter.
    pub fn assert_safe(&self, context: &str) {
        let examples = self
            .overlap_examples
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        assert_eq!(
            (self.witness_overlaps, self.interval_overlaps),
            (0, 0),
            "{context}: overlapping children:\n  {examples}\n{self:#?}"
        );
        assert_eq!(
            self.token_order_violations, 0,
            "{context}: tokens not increasing\n{self:#?}"
        );
        assert_eq!(self.duplicate_tokens, 0, "{context}: {self:#?}");
        self.assert_store_consistent(context);
        assert_eq!(
            self.counter_lost_updates, 0,
            "{context}: lost updates on the plain counter\n{self:#?}"
        );
    }

    /// The fenced store itself must never accept a stale operation, whatever the lock did.
    pub fn assert_fence_works(&self, context: &str) {
        assert_eq!(
            (
                self.stale_accepted,
                self.store_wrong_rejections,
                self.store_torn_lines
            ),
            (0, 0, 0),
            "{context}: the fenced store accepted a stale operation\n{self:#?}"
        );
    }

    /// [`Report::assert_fence_works`], and no update was lost through the store: true whenever
    /// no two holders ever shared a token (equal tokens are not stale, so a fence that rejects
    /// lower tokens cannot keep two holders with the same token apart).
    pub fn assert_store_consistent(&self, context: &str) {
        self.assert_fence_works(context);
        assert_eq!(
            (self.duplicate_tokens, self.store_lost_updates),
            (0, 0),
            "{context}: updates lost through the fenced store\n{self:#?}"
        );
        assert_eq!(self.store_value, self.store_accepted_writes as i64);
    }

    pub fn summary(&self) -> String {
        format!(
            "acquisitions={} completed={} overlaps(witness)={} overlaps(interval)={} \
             overlaps_after_revoke={} (max {:.0} ms) overlaps_while_paused={} \
             token_violations={} duplicate_tokens={} store: ops={} accepted_writes={} \
             stale_accepted={} stale_rejected={} lost_updates={} | counter={} counter_writes={} \
             lost_updates={}",
            self.acquisitions,
            self.completed,
            self.witness_overlaps,
            self.interval_overlaps,
            self.overlaps_after_revoke,
            self.max_overlap_after_revoke_ms,
            self.overlaps_while_paused,
            self.token_order_violations,
            self.duplicate_tokens,
            self.store_ops,
            self.store_accepted_writes,
            self.stale_accepted,
            self.stale_rejected,
            self.store_lost_updates,
            self.counter,
            self.counter_writes,
            self.counter_lost_updates
        )
    }
}

// ---------------------------------------------------------------------------
// Tools under test
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Etcdlock,
    /// `etcdctl lock --ttl N NAME CMD` (the baseline).
    Etcdctl,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::Etcdlock => "etcdlock",
            Tool::Etcdctl => "etcdctl lock",
        }
    }

    /// The command that runs one child under the lock `name` via `endpoint`.
    pub fn command(
        self,
        w: &Workload,
        endpoint: &str,
        name: &str,
        ttl_secs: u64,
        contender: usize,
        spec: &ChildSpec,
    ) -> Command {
        let mut cmd = match self {
            Tool::Etcdlock => {
                let mut c = etcdlock_command();
                c.args(["--endpoints", endpoint, "--dial-timeout", "2s", "run"])
                    .args(["--ttl", &format!("{ttl_secs}s"), name, "--"])
                    .arg(Workload::child_exe());
                c
            }
            Tool::Etcdctl => {
                let mut c = etcdctl_plain();
                c.env("ETCDCTL_API", "3")
                    .args(["--endpoints", endpoint, "--dial-timeout", "2s", "lock"])
                    .args(["--ttl", &ttl_secs.to_string(), name])
                    .arg(Workload::child_exe());
                c
            }
        };
        w.configure(&mut cmd, contender, spec);
        if self == Tool::Etcdctl {
            cmd.env("ETCDCTL_API", "3");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }
}

/// How an etcdlock/etcdctl run ended, as a short label: `0`, `70`, `sig9`, ...
pub fn exit_label(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("sig{s}"),
        _ => "?".into(),
    }
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// One fault. `freeze_child`: SIGSTOP the holder's child first (a long-running job, or a child in
/// a GC pause) so the fault surely hits a live holder; it gets SIGCONT once the fault is over and
/// the lock had time to change hands — for a lock that does not stop its child, that is when the
/// stale child carries on next to the new holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every contender's proxy delays each chunk by `ms` for `for_ms`.
    DelayAll { ms: u64, for_ms: u64 },
    /// The holder's proxy discards all bytes for `for_ms`.
    Blackhole { for_ms: u64, freeze_child: bool },
    /// The holder's proxy stops moving bytes for `for_ms`, then delivers them late.
    Stall { for_ms: u64, freeze_child: bool },
    /// SIGSTOP etcd for `for_ms`.
    StopEtcd { for_ms: u64, freeze_child: bool },
    /// `etcdctl lease revoke` of the holder's lease.
    Revoke { freeze_child: bool },
    /// `etcdctl del` of the holder's key.
    DeleteKey { freeze_child: bool },
    /// SIGKILL the holder's child.
    KillChild,
    /// SIGKILL the holder's etcdlock / etcdctl.
    KillHolder,
    /// SIGSTOP the holder's etcdlock / etcdctl itself for `for_ms` (not promised: pause cells).
    PauseHolder { for_ms: u64, freeze_child: bool },
}

impl Fault {
    pub fn label(&self) -> String {
        let frozen = |f: bool| if f { ", child frozen" } else { "" };
        match *self {
            Fault::DelayAll { ms, for_ms } => format!("delay {ms}ms for {for_ms}ms"),
            Fault::Blackhole {
                for_ms,
                freeze_child,
            } => format!("blackhole holder {for_ms}ms{}", frozen(freeze_child)),
            Fault::Stall {
                for_ms,
                freeze_child,
            } => format!("stall holder {for_ms}ms{}", frozen(freeze_child)),
            Fault::StopEtcd {
                for_ms,
                freeze_child,
            } => format!("SIGSTOP etcd {for_ms}ms{}", frozen(freeze_child)),
            Fault::Revoke { freeze_child } => {
                format!("revoke holder's lease{}", frozen(freeze_child))
            }
            Fault::DeleteKey { freeze_child } => {
                format!("delete holder's key{}", frozen(freeze_child))
            }
            Fault::KillChild => "SIGKILL child".into(),
            Fault::KillHolder => "SIGKILL holder process".into(),
            Fault::PauseHolder {
                for_ms,
                freeze_child,
            } => format!("SIGSTOP holder process {for_ms}ms{}", frozen(freeze_child)),
        }
    }

    fn freezes_child(&self) -> bool {
        matches!(
            *self,
            Fault::Blackhole {
                freeze_child: true,
                ..
            } | Fault::Stall {
                freeze_child: true,
                ..
            } | Fault::StopEtcd {
                freeze_child: true,
                ..
            } | Fault::PauseHolder {
                freeze_child: true,
                ..
            } | Fault::Revoke { freeze_child: true }
                | Fault::DeleteKey { freeze_child: true }
        )
    }

    fn needs_holder(&self) -> bool {
        self.freezes_child() || !matches!(self, Fault::DelayAll { .. } | Fault::StopEtcd { .. })
    }
}

/// The standard fault mix for a single-member cell with lease TTL `ttl_secs`: delay, blackhole
/// and stall bursts shorter and longer than the TTL, etcd SIGSTOP bursts, external revokes and
/// deletes, SIGKILL of the child and of the holder process.
pub fn standard_faults(ttl_secs: u64) -> Vec<Fault> {
    let ttl = ttl_secs * 1000;
    vec![
        Fault::DelayAll {
            ms: 60,
            for_ms: 1500,
        },
        Fault::Blackhole {
            for_ms: 600,
            freeze_child: false,
        },
        Fault::KillChild,
        Fault::Blackhole {
            for_ms: ttl + 1500,
            freeze_child: true,
        },
        Fault::StopEtcd {
            for_ms: 400,
            freeze_child: false,
        },
        Fault::Revoke {
            freeze_child: false,
        },
        Fault::Stall {
            for_ms: ttl + 1000,
            freeze_child: true,
        },
        Fault::DelayAll {
            ms: 900,
            for_ms: 2500,
        },
        Fault::DeleteKey {
            freeze_child: false,
        },
        Fault::KillHolder,
        Fault::StopEtcd {
            for_ms: ttl + 800,
            freeze_child: true,
        },
        Fault::Blackhole {
            for_ms: ttl + 1500,
            freeze_child: false,
        },
    ]
}

/// Lease-loss faults only: the holder (its child frozen, i.e. a long job) is partitioned from
/// etcd for longer than the TTL, or loses its lease to an external revoke or delete.
pub fn lease_loss_faults(ttl_secs: u64) -> Vec<Fault> {
    let ttl = ttl_secs * 1000;
    vec![
        Fault::Blackhole {
            for_ms: ttl + 1500,
            freeze_child: true,
        },
        Fault::Revoke { freeze_child: true },
        Fault::Stall {
            for_ms: ttl + 1500,
            freeze_child: true,
        },
        Fault::DeleteKey { freeze_child: true },
    ]
}

/// The holder process itself (etcdlock / etcdctl) is SIGSTOPped past the TTL while its child,
/// frozen too, keeps the job "in flight": not promised by any lease lock.
pub fn pause_faults(ttl_secs: u64) -> Vec<Fault> {
    vec![Fault::PauseHolder {
        for_ms: ttl_secs * 1000 + 1500,
        freeze_child: true,
    }]
}

/// Everything a cell needs from its surroundings.
pub struct Cell<'a> {
    pub label: String,
    pub tool: Tool,
    pub cluster: &'a Cluster,
    pub contenders: usize,
    /// Stop starting new runs once this many children have started...
    pub target: usize,
    /// ... and at least this many faults were applied.
    pub min_faults: usize,
    pub ttl_secs: u64,
    pub child: ChildSpec,
    /// Cycled in order; empty = fault-free.
    pub faults: Vec<Fault>,
    /// Quiet time between two faults (uniform), milliseconds.
    pub gap_ms: (u64, u64),
    pub time_limit: Duration,
    pub seed: u64,
}

/// The outcome of a cell.
#[derive(Debug)]
pub struct CellResult {
    pub label: String,
    pub tool: Tool,
    pub report: Report,
    /// Exit label -> count (`0`, `70`, `69`, `137`, `sig9`, ...).
    pub exits: BTreeMap<String, usize>,
    /// Fault label -> (applied, missed because no suitable holder showed up).
    pub faults: BTreeMap<String, (usize, usize)>,
    pub elapsed: Duration,
    /// Keys and leases left right after the last process exited, before any TTL ran out.
    pub keys_left: usize,
    pub leases_left: usize,
    pub timed_out: bool,
    /// Lock processes SIGKILLed by the harness because nothing progressed for [`STUCK_AFTER`].
    pub hung: usize,
    pub stderr_tail: String,
}

impl CellResult {
    pub fn exits_of(&self, label: &str) -> usize {
        self.exits.get(label).copied().unwrap_or(0)
    }

    /// Header of the markdown table [`CellResult::table_row`] fills.
    pub const TABLE_HEADER: &'static str = "| cell | tool | acquisitions | faults applied | overlaps, unexplained | overlaps after external revoke/delete (max ms the old child lived on) | overlaps while the holder process was paused | duplicate fencing tokens | stale fenced ops rejected / accepted | lost updates: plain counter / fenced store | lost-lock exits (70) | other exits | hung runs (killed after 45 s) | keys / leases left at once | time |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// One markdown table row.
    pub fn table_row(&self) -> String {
        let r = &self.report;
        let faults: usize = self.faults.values().map(|v| v.0).sum();
        let other: Vec<String> = self
            .exits
            .iter()
            .filter(|(k, _)| k.as_str() != "70")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "| {} | {} | {} | {} | {} | {} ({:.0}) | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} / {} | {:.0} s |",
            self.label,
            self.tool.label(),
            r.acquisitions,
            faults,
            r.witness_overlaps.max(r.interval_overlaps),
            r.overlaps_after_revoke,
            r.max_overlap_after_revoke_ms,
            r.overlaps_while_paused,
            r.duplicate_tokens,
            r.stale_rejected,
            r.stale_accepted,
            r.counter_lost_updates,
            r.store_lost_updates,
            self.exits_of("70"),
            other.join(", "),
            self.hung,
            self.keys_left,
            self.leases_left,
            self.elapsed.as_secs_f64()
        )
    }

    pub fn summary(&self) -> String {
        let faults: usize = self.faults.values().map(|v| v.0).sum();
        format!(
            "[{}] {} in {:.1}s: {} | exits {:?} | hung {} | faults applied {} {:?} | left right after: {} keys, {} leases",
            self.label,
            self.tool.label(),
            self.elapsed.as_secs_f64(),
            self.report.summary(),
            self.exits,
            self.hung,
            faults,
            self.faults,
            self.keys_left,
            self.leases_left
        )
    }
}

struct Running {
    pidfd: Option<PidFd>,
    pid: i32,
}

/// A cell in which no child started for this long is stuck (longer than any fault plus a TTL).
pub const STUCK_AFTER: Duration = Duration::from_secs(45);

/// SIGKILLs every running lock process of a cell; returns how many.
fn kill_running(running: &[Mutex<Option<Running>>]) -> usize {
    let mut n = 0;
    for r in running {
        if let Some(fd) = r.lock().unwrap().as_ref().and_then(|r| r.pidfd.as_ref()) {
            if fd.signal(libc::SIGKILL) {
                n += 1;
            }
        }
    }
    n
}

impl<'a> Cell<'a> {
    /// Runs the cell against `w`: contenders in a loop, the nemesis in parallel, until the target
    /// number of acquisitions; then heals everything and waits for every process to end.
    pub fn run(&self, w: &Workload) -> CellResult {
        let started = Instant::now();
        // The key ends up in whitespace-separated log lines: keep the name to [A-Za-z0-9-].
        let slug: String = self
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let name = format!("/lockset/{slug}");
        let proxies: Vec<Proxy> = (0..self.contenders)
            .map(|_| Proxy::start(&self.cluster.members[0].client_addr()))
            .collect();
        let stop = AtomicBool::new(false);
        let timed_out = AtomicBool::new(false);
        let exits: Mutex<BTreeMap<String, usize>> = Mutex::default();
        let running: Vec<Mutex<Option<Running>>> =
            (0..self.contenders).map(|_| Mutex::new(None)).collect();
        let faults: Mutex<BTreeMap<String, (usize, usize)>> = Mutex::default();
        let frozen: Mutex<Vec<PidFd>> = Mutex::default();
        let hung = AtomicU64::new(0);

        thread::scope(|s| {
            for c in 0..self.contenders {
                let (proxies, stop, exits, running, name) =
                    (&proxies, &stop, &exits, &running, &name);
                s.spawn(move || {
                    let stderr_path = w.path().join(format!("stderr.{c}"));
                    while !stop.load(Ordering::SeqCst) {
                        let mut cmd = self.tool.command(
                            w,
                            &proxies[c].url(),
                            name,
                            self.ttl_secs,
                            c,
                            &self.child,
                        );
                        let log = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&stderr_path)
                            .unwrap();
                        cmd.stderr(Stdio::from(log));
                        let mut child = cmd.spawn().expect("spawn contender");
                        let pid = child.id() as i32;
                        *running[c].lock().unwrap() = Some(Running {
                            pidfd: PidFd::open(pid),
                            pid,
                        });
                        let status = child.wait().expect("wait contender");
                        *running[c].lock().unwrap() = None;
                        *exits
                            .lock()
                            .unwrap()
                            .entry(exit_label(&status))
                            .or_default() += 1;
                    }
                });
            }

            // The nemesis.
            let nemesis = s.spawn(|| {
                if self.faults.is_empty() {
                    return;
                }
                let mut rng = Rng::new(self.seed);
                let mut i = (self.seed % self.faults.len() as u64) as usize;
                while !stop.load(Ordering::SeqCst) {
                    let gap = rng.range(self.gap_ms.0, self.gap_ms.1);
                    if sleep_unless(&stop, Duration::from_millis(gap)) {
                        break;
                    }
                    let fault = self.faults[i % self.faults.len()];
                    i += 1;
                    let applied = self.apply(w, fault, &proxies, &running, &stop, &frozen);
                    if !applied && stop.load(Ordering::SeqCst) {
                        break; // the cell ended while we waited for a holder
                    }
                    let mut f = faults.lock().unwrap();
                    let e = f.entry(fault.label()).or_default();
                    if applied {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
            });

            // The referee: stop at the target or the time limit; unstick a cell in which no
            // child started for STUCK_AFTER (a lock process hanging forever) by SIGKILLing the
            // running lock processes, counted as hung.
            let mut last = (0usize, Instant::now());
            while !nemesis.is_finished() || !stop.load(Ordering::SeqCst) {
                let applied: usize = faults.lock().unwrap().values().map(|v| v.0).sum();
                let acquired = w.acquisitions();
                if acquired >= self.target && applied >= self.min_faults {
                    stop.store(true, Ordering::SeqCst);
                }
                if started.elapsed() > self.time_limit && !timed_out.load(Ordering::SeqCst) {
                    timed_out.store(true, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                }
                if stop.load(Ordering::SeqCst) && nemesis.is_finished() {
                    break;
                }
                if acquired != last.0 {
                    last = (acquired, Instant::now());
                } else if last.1.elapsed() > STUCK_AFTER {
                    let n = kill_running(&running);
                    w.note(&format!(
                        "stuck: no child started for {STUCK_AFTER:?}; SIGKILLed {n} lock processes"
                    ));
                    hung.fetch_add(n as u64, Ordering::SeqCst);
                    last = (acquired, Instant::now());
                }
                thread::sleep(Duration::from_millis(100));
            }
            // Heal: the nemesis has finished; undo anything it may have left.
            for p in &proxies {
                p.pass();
            }
            for fd in frozen.lock().unwrap().drain(..) {
                fd.signal(libc::SIGCONT);
            }
            if self.cluster.members[0].is_running() && !self.cluster.members[0].is_live() {
                self.cluster.cont(0);
            }
            // Contenders finish their current run; hung ones are killed after a bound.
            let hard = Instant::now() + STUCK_AFTER;
            while running.iter().any(|r| r.lock().unwrap().is_some()) {
                if Instant::now() > hard {
                    let n = kill_running(&running);
                    w.note(&format!("stuck at the end; SIGKILLed {n} lock processes"));
                    hung.fetch_add(n as u64, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let elapsed = started.elapsed();
        drop(proxies);
        let keys_left = self.cluster.keys("").len();
        let leases_left = self.cluster.leases().len();
        let mut stderr_tail = String::new();
        for c in 0..self.contenders {
            let t = tail_file(&w.path().join(format!("stderr.{c}")), 5);
            if !t.is_empty() {
                stderr_tail += &format!("--- contender {c} stderr tail ---\n{t}\n");
            }
        }
        CellResult {
            label: self.label.clone(),
            tool: self.tool,
            report: w.check(),
            exits: exits.into_inner().unwrap(),
            faults: faults.into_inner().unwrap(),
            elapsed,
            keys_left,
            leases_left,
            timed_out: timed_out.load(Ordering::SeqCst),
            hung: hung.load(Ordering::SeqCst) as usize,
            stderr_tail,
        }
    }

    /// Waits (bounded) for a holder whose child has at least `min_left` of planned work left.
    fn wait_holder(&self, w: &Workload, stop: &AtomicBool, min_left: Duration) -> Option<Holder> {
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            if let Some(h) = w.current() {
                if h.remaining_ns() > min_left.as_nanos() as i64 && pid_alive(h.pid) {
                    return Some(h);
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn holder_process(&self, h: &Holder, running: &[Mutex<Option<Running>>]) -> Option<PidFd> {
        let c = h.contender?;
        let r = running.get(c)?.lock().unwrap();
        let r = r.as_ref()?;
        (r.pid == h.ppid).then(|| PidFd::open(r.pid)).flatten()
    }

    /// Applies one fault; false if there was no suitable holder to apply it to.
    fn apply(
        &self,
        w: &Workload,
        fault: Fault,
        proxies: &[Proxy],
        running: &[Mutex<Option<Running>>],
        stop: &AtomicBool,
        frozen: &Mutex<Vec<PidFd>>,
    ) -> bool {
        let holder = if fault.needs_holder() {
            match self.wait_holder(w, stop, Duration::from_millis(150)) {
                Some(h) => Some(h),
                None => return false,
            }
        } else {
            None
        };
        // The child whose fate the checker needs: a frozen one, or a revoke/delete/pause victim.
        let mut watched: Option<(PidFd, String)> = None;
        if fault.freezes_child() {
            let h = holder.as_ref().unwrap();
            let Some(fd) = h.child_pidfd() else {
                return false;
            };
            if !fd.signal(libc::SIGSTOP) {
                return false;
            }
            watched = h.child_pidfd().map(|fd| (fd, h.id.clone()));
            frozen.lock().unwrap().push(fd);
        }
        let proxy_of = |h: &Holder| h.contender.and_then(|c| proxies.get(c));
        let victim_kind = match fault {
            Fault::Revoke { .. } => Some("revoke"),
            Fault::DeleteKey { .. } => Some("delete"),
            Fault::PauseHolder { .. } => Some("pause"),
            _ => None,
        };
        if let (Some(kind), Some(h)) = (victim_kind, &holder) {
            w.note(&format!("victim {} {kind}", h.id));
            if watched.is_none() {
                watched = h.child_pidfd().map(|fd| (fd, h.id.clone()));
            }
        }
        w.note(&format!(
            "fault begin: {} holder={:?}",
            fault.label(),
            holder.as_ref().map(|h| (h.contender, h.pid, h.token))
        ));
        let ok = match fault {
            Fault::DelayAll { ms, for_ms } => {
                for p in proxies {
                    p.delay(Duration::from_millis(ms));
                }
                thread::sleep(Duration::from_millis(for_ms));
                for p in proxies {
                    p.pass();
                }
                true
            }
            Fault::Blackhole { for_ms, .. } | Fault::Stall { for_ms, .. } => {
                let h = holder.as_ref().unwrap();
                match proxy_of(h) {
                    Some(p) => {
                        if matches!(fault, Fault::Stall { .. }) {
                            p.stall();
                        } else {
                            p.blackhole();
                        }
                        thread::sleep(Duration::from_millis(for_ms));
                        p.pass();
                        true
                    }
                    None => false,
                }
            }
            Fault::StopEtcd { for_ms, .. } => {
                self.cluster.stop(0);
                thread::sleep(Duration::from_millis(for_ms));
                self.cluster.cont(0);
                true
            }
            Fault::Revoke { .. } => {
                let h = holder.as_ref().unwrap();
                self.cluster
                    .etcdctl(&["lease", "revoke", &h.lease])
                    .status
                    .success()
            }
            Fault::DeleteKey { .. } => {
                let h = holder.as_ref().unwrap();
                self.cluster.etcdctl(&["del", &h.key]).status.success()
            }
            Fault::KillChild => {
                let h = holder.as_ref().unwrap();
                h.child_pidfd().is_some_and(|fd| fd.signal(libc::SIGKILL))
            }
            Fault::KillHolder => {
                let h = holder.as_ref().unwrap();
                self.holder_process(h, running)
                    .is_some_and(|fd| fd.signal(libc::SIGKILL))
            }
            Fault::PauseHolder { for_ms, .. } => {
                let h = holder.as_ref().unwrap();
                match self.holder_process(h, running) {
                    Some(fd) => {
                        fd.signal(libc::SIGSTOP);
                        thread::sleep(Duration::from_millis(for_ms));
                        fd.signal(libc::SIGCONT);
                        true
                    }
                    None => false,
                }
            }
        };
        if let Some((fd, id)) = watched {
            // Give the lock time to change hands (a waiter needs the old lease gone), then let a
            // frozen child carry on. A lock that stops its child has killed it by now.
            let bound = Duration::from_secs(self.ttl_secs + 2);
            let _ = poll_until(bound, || {
                fd.exited() || w.current().is_some_and(|c| c.id != id)
            });
            for fd in frozen.lock().unwrap().drain(..) {
                fd.signal(libc::SIGCONT);
            }
            // Record when it died (the checker measures how long it outlived its lock).
            let deadline = Instant::now() + bound;
            while !fd.exited() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            if fd.exited() {
                w.note(&format!("dead {id}"));
            }
        }
        w.note(&format!("fault end: {} ok={ok}", fault.label()));
        ok
    }
}

/// Sleeps `d` in small steps; true if `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
    stop.load(Ordering::SeqCst)
}
