//! Waiting for processes and conditions with generous bounds, never tight sleeps; running a
//! command with a time limit.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};
use std::fs::{self};
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

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
pub(crate) fn proc_stat(pid: i32) -> Option<(char, i32)> {
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
    wait_exit_named(child, timeout, "etcdlock")
}

/// [`wait_exit`] for a child the failure message calls `what` ("holder", "waiter", ...).
pub fn wait_exit_named(
    child: &mut Child,
    timeout: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Sends `sig` to `child` (which must not have been reaped yet).
pub fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig)
        .unwrap_or_else(|e| panic!("kill -{sig} {}: {e}", child.id()));
}

/// All that `child` wrote to its piped stderr (it must have been spawned with
/// `Stdio::piped()`); read to the end, so call it once the child has exited.
pub fn stderr_text(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut text)
        .expect("read stderr");
    text
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
pub(crate) fn spawn_tied_to_process(mut cmd: Command) -> io::Result<Child> {
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
