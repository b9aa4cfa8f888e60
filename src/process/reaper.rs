//! The reaper helper: kills the command's whole tree if etcdlock dies without saying goodbye
//! (SIGKILL, the OOM killer, a panic that could not clean up).
//!
//! `PR_SET_PDEATHSIG` reaches only the direct child, and a subreaper's knowledge dies with it. So
//! before the command is spawned, etcdlock forks a helper that waits on a pipe whose only writer
//! is etcdlock. The kernel closes the pipe however etcdlock ends; end-of-file without the "done"
//! byte means etcdlock died, and the helper
//!
//! 1. writes `1` to the command's `cgroup.kill` (cgroup mode) and SIGKILLs its process group, with
//!    nothing but system calls (it is a fork of a multi-threaded process), then
//! 2. execs a [`Rescue`] program — for the `etcdlock` binary, itself as `etcdlock internal-reap`,
//!    which runs [`rescue`]: in cgroup mode it waits for the cgroup to empty and removes it; in
//!    subreaper mode it kills every process whose environment carries this run's
//!    `ETCDLOCK_RUN_ID` (descendants that left the process group keep their environment), until
//!    none is left. Without a rescue program the helper stops after step 1.
//!
//! The helper is double-forked, so it is not etcdlock's child (etcdlock's "no child left" test
//! of the tree stays exact); the intermediate shares etcdlock's memory (`CLONE_VM |
//! CLONE_VFORK`), so only one copy of the address space is made. The helper calls `setsid`, so a
//! signal sent to etcdlock's process group (a terminal, cron, `kill -- -PGID`) does not take it
//! along. Protocol on the pipe: `p` + 4 bytes
//! (the command's pid, once spawned), `r` (the command was reaped: its group id may be recycled,
//! never signal it again), `d` (done: exit quietly).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::tree::{self, Tree};

/// The environment variable that marks every process of one run (for the rescue in subreaper
/// mode): `<etcdlock pid>-<random hex>`.
pub const RUN_ID_ENV: &str = "ETCDLOCK_RUN_ID";

/// What the helper execs to finish the job: `program` (e.g. `/proc/self/exe`, which is the
/// running binary even if the file was replaced since) with `args`, followed by `--run-id ID` and,
/// in cgroup mode, `--cgroup DIR`. The program must call [`rescue`] with them.
#[derive(Debug, Clone)]
pub struct Rescue {
    /// The program to exec.
    pub program: String,
    /// Its argv (`argv[0]` included), before the run's own arguments.
    pub args: Vec<String>,
}

/// The write end of the helper's pipe. Dropping it without [`Reaper::release`] triggers the kill.
#[derive(Debug)]
pub struct Reaper {
    writer: OwnedFd,
}

/// Everything the helper needs, prepared before the fork (no allocation after it).
struct Prepared {
    /// The rescue program and its argv (empty: none).
    exe: Option<CString>,
    argv: Vec<CString>,
    kill_fd: RawFd,
}

impl Prepared {
    fn new(tree: &Tree, run_id: &str, rescue: Option<&Rescue>) -> Option<Prepared> {
        let (exe, argv) = match rescue {
            Some(r) => {
                let mut argv = r.args.clone();
                argv.extend(["--run-id".to_owned(), run_id.to_owned()]);
                if let Some(dir) = tree.cgroup_dir() {
                    argv.extend(["--cgroup".to_owned(), dir.to_str()?.to_owned()]);
                }
                let argv = argv.into_iter().map(CString::new);
                (
                    Some(CString::new(r.program.as_str()).ok()?),
                    argv.collect::<Result<_, _>>().ok()?,
                )
            }
            None => (None, Vec::new()),
        };
        Some(Prepared {
            exe,
            argv,
            kill_fd: tree.kill_fd().unwrap_or(-1),
        })
    }
}

impl Reaper {
    /// Fork the helper for `tree` (before the command is spawned). `None` if the system cannot
    /// fork; the command then runs with `PR_SET_PDEATHSIG` only, as before this helper existed.
    pub fn start(tree: &Tree, run_id: &str, rescue: Option<&Rescue>) -> Option<Reaper> {
        use nix::fcntl::OFlag;
        let prepared = Prepared::new(tree, run_id, rescue)?;
        let argv: Vec<*const libc::c_char> = prepared
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let launch = Launch {
            reader: reader.as_raw_fd(),
            writer: writer.as_raw_fd(),
            prepared: &prepared,
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            devnull: c"/dev/null".as_ptr(),
        };
        // The intermediate shares our memory and we are suspended until it exits (CLONE_VM |
        // CLONE_VFORK, as posix_spawn does): so the double fork copies etcdlock's address space
        // once, not twice, and etcdlock takes the copy-on-write faults of one copy only.
        let mut stack = vec![0u128; INTERMEDIATE_STACK / 16];
        // Every signal blocked until the helper ignores them: none may run etcdlock's handlers in
        // the intermediate (on etcdlock's memory), or kill it or the helper before then.
        let all = nix::sys::signal::SigSet::all();
        let mut before = nix::sys::signal::SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&all),
            Some(&mut before),
        )
        .ok()?;
        // SAFETY: the stack outlives the intermediate (CLONE_VFORK: clone returns once it has
        // exited); it and its child make only async-signal-safe system calls on `launch`.
        let pid = unsafe {
            libc::clone(
                intermediate,
                stack.as_mut_ptr_range().end.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::from_ref(&launch).cast_mut().cast(),
            )
        };
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&before),
            None,
        );
        if pid <= 0 {
            return None;
        }
        drop(reader);
        // The intermediate exits 0 only if the helper was forked: else there is no safety net.
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))).then_some(Reaper { writer })
    }

    fn send(&self, bytes: &[u8]) {
        let _ = nix::unistd::write(&self.writer, bytes);
    }

    /// The command runs as `pid`, in its own process group.
    pub fn leader(&self, pid: Pid) {
        let mut msg = [b'p', 0, 0, 0, 0];
        msg[1..].copy_from_slice(&pid.as_raw().to_le_bytes());
        self.send(&msg);
    }

    /// The command was reaped: its process group id must not be signalled any more.
    pub fn leader_reaped(&self) {
        self.send(b"r");
    }

    /// The whole tree is gone and cleaned up: let the helper go without killing anything.
    pub fn release(self) {
        self.send(b"d");
    }
}

/// The intermediate's stack: it only makes one system call.
const INTERMEDIATE_STACK: usize = 64 * 1024;

/// What the intermediate and the helper need, prepared before the clone.
struct Launch<'a> {
    reader: RawFd,
    writer: RawFd,
    prepared: &'a Prepared,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    devnull: *const libc::c_char,
}

/// The intermediate, running in etcdlock's memory while etcdlock waits: fork the helper with the
/// raw system call (glibc's `fork` would run atfork handlers and take locks in memory we share
/// with etcdlock's other threads) and leave at once, so that the helper is re-parented away.
extern "C" fn intermediate(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Launch` that `Reaper::start` keeps alive until we have exited; only
    // async-signal-safe system calls follow.
    unsafe {
        let launch = &*arg.cast::<Launch<'_>>();
        let flags = libc::c_long::from(libc::SIGCHLD);
        let none: libc::c_long = 0;
        let pid = libc::syscall(libc::SYS_clone, flags, none, none, none, none);
        if pid == 0 {
            helper_main(
                launch.reader,
                launch.writer,
                launch.prepared,
                launch.argv,
                launch.envp,
                launch.devnull,
            );
        }
        libc::_exit(if pid > 0 { 0 } else { 1 })
    }
}

/// The helper's whole life. Never returns.
///
/// # Safety
/// Called in a child of `fork()` (the raw system call): only async-signal-safe system calls.
unsafe fn helper_main(
    reader: RawFd,
    writer: RawFd,
    prepared: &Prepared,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    devnull: *const libc::c_char,
) -> ! {
    libc::close(writer);
    // What `ps` shows (else the name of the thread that forked it).
    libc::prctl(libc::PR_SET_NAME, c"etcdlock-reaper".as_ptr());
    ignore_signals();
    // Unblock what `Reaper::start` blocked (the rescue program inherits the mask).
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::setsid();
    // Keep stderr (the rescue says what it did); never hold the caller's stdin or stdout open.
    let null = libc::open(devnull, libc::O_RDWR);
    if null >= 0 {
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        libc::close(null);
    }
    let mut leader: i32 = 0;
    loop {
        let mut byte = 0u8;
        if !read_exact(reader, std::slice::from_mut(&mut byte)) {
            break;
        }
        match byte {
            b'p' => {
                let mut pid = [0u8; 4];
                if !read_exact(reader, &mut pid) {
                    break;
                }
                leader = i32::from_le_bytes(pid);
            }
            b'r' => leader = 0,
            b'd' => libc::_exit(0),
            _ => {}
        }
    }
    // etcdlock is gone: kill first, with system calls only, then finish in a fresh process.
    if prepared.kill_fd >= 0 {
        libc::write(prepared.kill_fd, b"1".as_ptr().cast(), 1);
    }
    if leader > 0 {
        libc::kill(-leader, libc::SIGKILL);
    }
    if let Some(exe) = &prepared.exe {
        libc::execve(exe.as_ptr(), argv, envp);
    }
    libc::_exit(1);
}

/// The helper must outlive whatever signals reach etcdlock's group or terminal.
///
/// # Safety
/// Async-signal-safe: only sigaction.
unsafe fn ignore_signals() {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
}

/// read(2) until `buf` is full; false on end-of-file or error.
unsafe fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let n = libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done);
        if n > 0 {
            done += n as usize;
        } else if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    true
}

/// What [`rescue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescued {
    /// Processes killed (subreaper mode; in cgroup mode `cgroup.kill` does not count them).
    pub killed: usize,
    /// Whether the cgroup (if any) is gone.
    pub cgroup_removed: bool,
}

/// What the rescue program runs when etcdlock died: kill the rest of the tree and remove the
/// cgroup; gives up after 30 s (a process stuck in uninterruptible sleep).
pub fn rescue(run_id: &str, cgroup: Option<&Path>) -> Rescued {
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut killed = 0usize;
    loop {
        let left = match cgroup {
            Some(dir) => kill_cgroup(dir),
            None => {
                let pids = marked(run_id);
                for &pid in &pids {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                killed += pids.len();
                pids.len()
            }
        };
        if left == 0 || Instant::now() > give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Rescued {
        killed,
        cgroup_removed: cgroup.is_none_or(tree::remove_cgroup_tree),
    }
}

/// One SIGKILL pass over a cgroup; returns how many processes were still in it.
fn kill_cgroup(dir: &Path) -> usize {
    let pids = tree::cgroup_member_pids(dir);
    if !pids.is_empty() && std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    pids.len()
}

/// Live processes whose environment carries `ETCDLOCK_RUN_ID=<run_id>`.
fn marked(run_id: &str) -> Vec<i32> {
    let needle = format!("{RUN_ID_ENV}={run_id}");
    let me = std::process::id() as i32;
    tree::proc_table()
        .into_iter()
        .filter(|(pid, stat)| *pid != me && !matches!(stat.state, 'Z' | 'X'))
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// A fresh run id: unique on this host for as long as the run can matter.
pub fn new_run_id() -> String {
    format!("{}-{:016x}", std::process::id(), crate::random::u64())
}
