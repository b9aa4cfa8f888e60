//! The reaper helper: a second process that kills the command's whole tree when etcdlock cannot —
//! because etcdlock died (SIGKILL, the OOM killer, a panic that could not clean up) or because it
//! is not running when its deadline comes (SIGSTOP, a debugger, a cgroup freezer on etcdlock
//! alone, swapping or CPU starvation of etcdlock only).
//!
//! `PR_SET_PDEATHSIG` reaches only the direct child, a subreaper's knowledge dies with it, and a
//! frozen guard thread kills nothing. So before the command is spawned, etcdlock starts a helper
//! that holds two things from it:
//!
//! - **a pipe whose only writer is etcdlock.** The kernel closes it however etcdlock ends;
//!   end-of-file without the "done" byte means etcdlock died. Protocol: `p` + 4 bytes (the
//!   command's pid, once spawned), `r` (the command was reaped: its group id may be recycled,
//!   never signal it again), `w` (wake up: the deadlines moved earlier, or were armed), `d` (done:
//!   exit quietly);
//! - **a shared page with the deadlines** ([`Deadlines`], a memfd mapped by both): the guard's
//!   `term_at` and `kill_at` on CLOCK_BOOTTIME, stored with plain atomic writes whenever the guard
//!   extends or moves them — no system call per keep-alive. The helper sleeps on a CLOCK_BOOTTIME
//!   `timerfd` (absolute, so suspend does not stretch it) until the published `term_at`; when it
//!   wakes and no newer deadline was published, etcdlock did not run in time: the helper sends the
//!   kill signal to the whole tree (unless the guard marked it sent), and SIGKILL at `kill_at`, and
//!   marks the page `fired` so that a resumed etcdlock reports the lock lost. It wakes about once
//!   per renewal window (at the old `term_at`, which an extension has moved on by then).
//!
//! The helper is started through an intermediate, so it is not etcdlock's child (etcdlock's "no
//! child left" test of the tree stays exact); the intermediate shares etcdlock's memory
//! (`CLONE_VM | CLONE_VFORK`) and runs on a stack of its own with a guard page below it. The
//! helper holds descriptors 3 to 6 only (`watchdog_abi.rs`: the pipe, the page,
//! `cgroup.kill` and the rescue program) besides stdin/stdout (`/dev/null`) and stderr: no socket,
//! no epoll, no signal pipe of etcdlock's. It calls `setsid` (a signal to etcdlock's process group
//! does not take it along), resets every signal disposition, names itself `etcd-lock-watch`, and
//! its argv is `etcd-lock-watchdog internal-reap --run-id ID`, so that `pkill etcdlock` and `pkill
//! -f etcdlock` do not match it.
//!
//! **The helper is a program of its own** (`watchdog/main.rs`: freestanding, a few kilobytes,
//! built by `build.rs` and embedded in the library), exec'd from a sealed memfd by a second
//! `CLONE_VM | CLONE_VFORK` child of the intermediate. Nothing of etcdlock's address space is
//! copied: a fork had cost every run its page-table copy and then a copy-on-write fault, with a
//! TLB shootdown across etcdlock's threads, for every page etcdlock wrote while the helper lived
//! (about 1.2 ms of CPU and 0.5 ms of wall time per run on the 2-core bench machine, issue 25);
//! exec'ing etcdlock's own binary instead cost about 1 ms more per run. The embedded helper
//! starts in about 0.1 ms and runs the same watch loop as the forked helper below, with the
//! same rule (`watchdog_abi::next_step`, shared by both programs).
//!
//! **Where it cannot be exec'd** (a build for another architecture; a kernel or policy that does
//! not execute memfds, e.g. `vm.memfd_noexec = 2`; [`REAPER_MODE_ENV`]`=fork`), the intermediate
//! forks the helper instead, as before the embedded one existed: a copy of etcdlock that makes
//! only system calls, writes its title over the argv it inherited, and runs `watch`. In a
//! program that allows it ([`leave_heap_out_of_helper_fork`]: the `etcdlock` binary does), that
//! fork leaves out the main heap (`MADV_WIPEONFORK` for the moment of the fork, when nothing the
//! helper reads lies in it; `HeapWiped`): the helper gets zeroed pages there, which it never
//! reads, and etcdlock keeps writing its heap without a copy-on-write fault per page.
//!
//! When etcdlock dies or a `kill_at` passes, the helper first kills with system calls
//! (`cgroup.kill`, SIGKILL to the process group), then execs the [`Rescue`] program — for the
//! `etcdlock` binary, etcdlock's own binary (opened before the helper starts, so a package
//! upgrade meanwhile does not matter) as `etcd-lock-watchdog internal-reap --run-id ID --after
//! gone|expired --leader PID` (the cgroup path, which contains "etcdlock", travels in its
//! environment), which runs [`serve`]: it kills every process carrying the run's
//! `ETCDLOCK_RUN_ID` (in both modes: a descendant that moved to another cgroup or left the group),
//! waits until the tree is gone, and either removes the cgroup (etcdlock gone) or goes on
//! watching the pipe (etcdlock may come back and release). Without a rescue program (a library
//! caller) the helper stops after the system calls.
//!
//! etcdlock in turn watches the helper ([`Watchdog::helper_died`], a pidfd the guard's thread
//! polls at least once a second): if it dies, the guard treats the lock as lost and stops the
//! command, since nothing would kill the tree any more if etcdlock were then killed or frozen.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::spawn::Stack;
use super::tree::{self, Tree};
use crate::clock::BootTime;

/// The environment variable that marks every process of one run (for the rescue):
/// `<etcdlock pid>-<random hex>`.
pub const RUN_ID_ENV: &str = "ETCDLOCK_RUN_ID";

/// Where the helper finds the command's cgroup directory: in its environment, not its argv, so
/// that `pkill -f etcdlock` (which matches `/proc/PID/cmdline`) does not match the helper.
pub const CGROUP_PATH_ENV: &str = "ETCDLOCK_REAP_CGROUP";

/// The helper's `argv[0]`: recognisable in `ps`, not matched by the pattern `etcdlock`.
pub const HELPER_ARGV0: &str = "etcd-lock-watchdog";

/// The helper's process name (`comm`, 15 bytes at most), also not matched by `etcdlock`.
pub const HELPER_COMM: &std::ffi::CStr = c"etcd-lock-watch";

use super::watchdog_abi::{Page, Step, PAGE_SIZE};
pub use super::watchdog_abi::{KILL_FD, PAGE_FD, PIPE_FD, RESCUE_FD};

/// A mapping of the shared page.
#[derive(Debug)]
pub struct Deadlines {
    page: NonNull<Page>,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for Deadlines {}
// SAFETY: as above.
unsafe impl Sync for Deadlines {}

impl Drop for Deadlines {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this size and is not used after this.
        unsafe { libc::munmap(self.page.as_ptr().cast(), PAGE_SIZE) };
    }
}

impl Deadlines {
    /// A fresh page (a memfd, which survives the helper's exec, unlike an anonymous mapping).
    fn create() -> Option<(Deadlines, OwnedFd)> {
        // SAFETY: plain system calls on a descriptor we own.
        unsafe {
            let fd = libc::memfd_create(c"etcdlock-deadlines".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let fd = OwnedFd::from_raw_fd(fd);
            if libc::ftruncate(fd.as_raw_fd(), PAGE_SIZE as libc::off_t) != 0 {
                return None;
            }
            Some((Deadlines::map(fd.as_raw_fd())?, fd))
        }
    }

    /// Map the page behind `fd`.
    fn map(fd: RawFd) -> Option<Deadlines> {
        // SAFETY: a shared mapping of a descriptor; a failure is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(ptr.cast()).map(|page| Deadlines { page })
    }

    fn page(&self) -> &Page {
        // SAFETY: mapped for as long as `self` lives; a zero-filled page is a valid `Page`.
        unsafe { self.page.as_ref() }
    }

    /// Publish the guard's kill times; true if the helper must be woken to see them (they were
    /// not armed before, or moved earlier: its timer is set for the old ones).
    pub fn publish(&self, term_at: BootTime, kill_at: BootTime, signal: Signal) -> bool {
        self.page()
            .publish(term_at.as_nanos(), kill_at.as_nanos(), signal as i32)
    }

    /// No command to watch any more (it is gone): the helper stops timing.
    pub fn clear(&self) {
        self.page().clear();
    }

    /// The guard sent the kill signal itself.
    pub fn term_sent(&self) {
        self.page().term_sent.store(1, Ordering::Release);
    }

    /// Whether the helper found a deadline passed and stopped the command.
    pub fn fired(&self) -> bool {
        self.page().fired.load(Ordering::Acquire) != 0
    }
}

/// What the helper execs to finish the job: `program` (e.g. `/proc/self/exe`, which is the
/// running binary even if the file was replaced since; opened when the helper starts) with
/// `args`, followed by `--run-id ID --after gone|expired --leader PID`; with the pipe, the page
/// and `cgroup.kill` on descriptors [`PIPE_FD`], [`PAGE_FD`], [`KILL_FD`] and the cgroup
/// directory in [`CGROUP_PATH_ENV`] (exec'd by the embedded helper, it also finds itself, opened
/// `O_PATH`, on [`RESCUE_FD`]). The program must call [`serve`] with them.
#[derive(Debug, Clone)]
pub struct Rescue {
    /// The program to exec.
    pub program: String,
    /// Its argv (`argv[0]` included), before the run's own arguments. Nothing in it should
    /// contain "etcdlock" (see [`HELPER_ARGV0`]).
    pub args: Vec<String>,
}

/// The write end of the helper's pipe. Dropping it without [`Reaper::release`] triggers the kill.
#[derive(Debug)]
pub struct Reaper {
    writer: OwnedFd,
    /// Set when etcdlock lets the helper go (released, or left to kill): its end is no news.
    expected: Arc<AtomicBool>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.expected.store(true, Ordering::SeqCst);
    }
}

/// etcdlock's side of the helper, besides the pipe: the shared page and the helper's health.
#[derive(Debug)]
pub struct Watchdog {
    /// The shared page.
    pub deadlines: Deadlines,
    helper: Option<HelperWatch>,
}

/// The helper's pidfd, polled by the guard's thread (about once a second while a command runs:
/// no thread of its own).
#[derive(Debug)]
struct HelperWatch {
    pid: libc::pid_t,
    fd: OwnedFd,
    /// Set once etcdlock lets the helper go: its end is then no news.
    expected: Arc<AtomicBool>,
    died: OnceLock<String>,
}

impl Watchdog {
    /// Why the helper is gone, if it died while etcdlock still needed it (one `poll` of its
    /// pidfd, without waiting).
    pub fn helper_died(&self) -> Option<&str> {
        let h = self.helper.as_ref()?;
        if h.died.get().is_none() && !h.expected.load(Ordering::SeqCst) {
            let mut pfd = libc::pollfd {
                fd: h.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd, no waiting.
            let exited = unsafe { libc::poll(&mut pfd, 1, 0) } > 0;
            if exited && !h.expected.load(Ordering::SeqCst) {
                let _ = h.died.set(format!(
                    "the reaper helper (pid {}) died, so nothing would stop the command if etcdlock were killed or frozen",
                    h.pid
                ));
            }
        }
        h.died.get().map(String::as_str)
    }
}

/// What [`Reaper::start`] gives: the pipe and the watchdog.
#[derive(Debug)]
pub struct Started {
    /// The pipe.
    pub reaper: Reaper,
    /// The page and the helper's health.
    pub watchdog: Watchdog,
}

/// Everything the helper needs, prepared before the fork (no allocation after it).
struct Prepared {
    /// The rescue program, its argv for "etcdlock is gone" and for "a deadline passed" (the
    /// leader's pid is written into `leader` before the exec), and its environment.
    exe: Option<CString>,
    argv_gone: Vec<CString>,
    argv_expired: Vec<CString>,
    /// The embedded helper's argv: the rescue program's before `--after` (so it need only
    /// append), else the title.
    argv_embedded: Vec<CString>,
    envp: Vec<CString>,
    /// `--leader`'s value, written by the helper just before the exec.
    leader: Box<[u8; 16]>,
    kill_fd: RawFd,
    /// What `/proc/PID/cmdline` of the helper shows (written over the argv it inherited, so that
    /// `pkill -f etcdlock` does not match it), and where that argv lies.
    title: Vec<u8>,
    arg_area: Option<(usize, usize)>,
    /// Where the main heap (the brk area) starts (`start_brk` of /proc/self/stat).
    start_brk: Option<usize>,
}

impl Prepared {
    fn new(tree: &Tree, run_id: &str, rescue: Option<&Rescue>) -> Option<Prepared> {
        let cstrings = |v: Vec<String>| {
            v.into_iter()
                .map(CString::new)
                .collect::<Result<Vec<_>, _>>()
                .ok()
        };
        let base = |after: &str| {
            let mut argv = rescue.map(|r| r.args.clone()).unwrap_or_default();
            argv.extend(["--run-id", run_id, "--after", after].map(str::to_owned));
            argv.push("--leader".to_owned());
            argv
        };
        let stat = stat_areas();
        let mut envp = Vec::new();
        if let Some(dir) = tree.cgroup_dir() {
            envp.push(format!("{CGROUP_PATH_ENV}={}", dir.to_str()?));
        }
        let title_args = [HELPER_ARGV0, "internal-reap", "--run-id", run_id];
        let mut title = Vec::new();
        for arg in title_args {
            title.extend_from_slice(arg.as_bytes());
            title.push(0);
        }
        let argv_embedded = match rescue {
            Some(r) => {
                let mut argv = r.args.clone();
                argv.extend(["--run-id", run_id].map(str::to_owned));
                argv
            }
            None => title_args.map(str::to_owned).to_vec(),
        };
        Some(Prepared {
            exe: match rescue {
                Some(r) => Some(CString::new(r.program.as_str()).ok()?),
                None => None,
            },
            argv_gone: cstrings(base("gone"))?,
            argv_expired: cstrings(base("expired"))?,
            argv_embedded: cstrings(argv_embedded)?,
            envp: cstrings(envp)?,
            leader: Box::new([0; 16]),
            kill_fd: tree.kill_fd().unwrap_or(-1),
            title,
            arg_area: stat.and_then(|s| s.1),
            start_brk: stat.map(|s| s.0),
        })
    }

    /// Whether any memory the helper reads after its fork lies in `range`.
    fn touches(
        &self,
        range: &std::ops::Range<usize>,
        pointer_arrays: &[&[*const libc::c_char]],
    ) -> bool {
        let within = |p: *const u8| range.contains(&(p as usize));
        let strings = self
            .argv_gone
            .iter()
            .chain(&self.argv_expired)
            .chain(&self.argv_embedded)
            .chain(&self.envp)
            .chain(&self.exe)
            .map(|c| c.as_ptr().cast::<u8>());
        let buffers = [
            self.title.as_ptr(),
            self.leader.as_ptr(),
            std::ptr::from_ref(self).cast(),
        ];
        strings
            .chain(buffers)
            .chain(pointer_arrays.iter().map(|a| a.as_ptr().cast()))
            .any(within)
    }
}

/// `start_brk` and where this process's argv strings lie (`arg_start`, `arg_end`), from
/// /proc/self/stat.
fn stat_areas() -> Option<(usize, Option<(usize, usize)>)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // Field 3 (the state) is the first after the command name; start_brk is field 47, then
    // arg_start and arg_end.
    let mut fields = rest.split_whitespace().skip(44);
    let start_brk = fields.next()?.parse().ok()?;
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    Some((start_brk, (end > start).then_some((start, end))))
}

/// Set by [`leave_heap_out_of_helper_fork`].
static HEAP_OUT_OF_FORK: AtomicBool = AtomicBool::new(false);

/// Let the reaper helper's fork leave out the process's main heap (the brk area), which saves
/// etcdlock a copy-on-write fault per heap page it writes afterwards (see the module's doc). Off
/// unless called, because the mark is process-wide for the moment of the fork: a child that
/// *another* thread forks at that moment (a real `fork`; `posix_spawn` and `vfork` share memory
/// and are not affected) would start with a zeroed heap. Call it in a program whose other threads
/// do not fork while a tree is prepared ([`crate::runner::prepare_tree`]), as the `etcdlock`
/// binary, whose only fork is its command's, after the helper is up.
pub fn leave_heap_out_of_helper_fork() {
    HEAP_OUT_OF_FORK.store(true, Ordering::SeqCst);
}

/// The main heap (the brk area) marked `MADV_WIPEONFORK` for the helper's fork, and unmarked
/// when dropped. The helper never reads it (it makes only system calls, on data of its own), and
/// a heap the fork does not share is one etcdlock then writes without a copy-on-write fault per
/// page: those faults and their TLB shootdowns were ~14 % of an uncontended run's CPU (issue 25).
struct HeapWiped(std::ops::Range<usize>);

impl HeapWiped {
    /// Mark the heap, unless the program did not allow it ([`leave_heap_out_of_helper_fork`]) or
    /// something the helper reads lies in it (then the fork shares it, as any fork does). `None`
    /// also without a heap or without the flag (Linux before 4.14).
    fn mark(prepared: &Prepared, pointer_arrays: &[&[*const libc::c_char]]) -> Option<HeapWiped> {
        if !HEAP_OUT_OF_FORK.load(Ordering::SeqCst) {
            return None;
        }
        let page = 4096;
        let start = prepared.start_brk? & !(page - 1);
        // SAFETY: sbrk(0) only reads the current program break.
        let end = unsafe { libc::sbrk(0) } as usize;
        let range = start..end;
        if end <= start || prepared.touches(&range, pointer_arrays) {
            return None;
        }
        // SAFETY: advice on our own heap's pages; it changes only what a fork copies.
        let marked = unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_WIPEONFORK,
            )
        } == 0;
        marked.then_some(HeapWiped(range))
    }
}

impl Drop for HeapWiped {
    fn drop(&mut self) {
        let Self(range) = self;
        // SAFETY: as in `mark`: back to what every later fork expects.
        unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                range.end - range.start,
                libc::MADV_KEEPONFORK,
            );
        }
    }
}

fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl Reaper {
    /// Start the helper for `tree` (before the command is spawned). `None` if the system cannot
    /// fork; the command then runs with `PR_SET_PDEATHSIG` only, as before this helper existed.
    pub fn start(tree: &Tree, run_id: &str, rescue: Option<&Rescue>) -> Option<Started> {
        use nix::fcntl::OFlag;
        let mut prepared = Prepared::new(tree, run_id, rescue)?;
        let leader_arg = prepared.leader.as_mut_ptr();
        let with_leader = |argv: &[CString]| {
            let mut v = pointers(argv);
            v.insert(argv.len(), leader_arg.cast_const().cast());
            v
        };
        let argv_gone = with_leader(&prepared.argv_gone);
        let argv_expired = with_leader(&prepared.argv_expired);
        let argv_embedded = pointers(&prepared.argv_embedded);
        let envp = pointers(&prepared.envp);
        let (deadlines, page_fd) = Deadlines::create()?;
        let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let mut embedded = embedded_helper();
        let rescue_fd = embedded
            .as_ref()
            .and(rescue)
            .and_then(|r| open_rescue(&r.program));
        if rescue.is_some() && rescue_fd.is_none() {
            // The embedded helper execs the rescue program from a descriptor; without one, the
            // forked helper execs it by its path.
            embedded = None;
        }
        let stack = Stack::new()?;
        let launch = Launch {
            embedded: embedded.as_ref().map_or(-1, AsRawFd::as_raw_fd),
            rescue_fd: rescue_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd),
            argv_embedded: argv_embedded.as_ptr(),
            embedded_stack: stack.middle(),
            embedded_failed: AtomicBool::new(false),
            reader: reader.as_raw_fd(),
            writer: writer.as_raw_fd(),
            page_fd: page_fd.as_raw_fd(),
            prepared: &prepared,
            argv_gone: argv_gone.as_ptr(),
            argv_expired: argv_expired.as_ptr(),
            leader_arg,
            envp: envp.as_ptr(),
            devnull: c"/dev/null".as_ptr(),
            helper: AtomicI32::new(0),
            pidfd: AtomicI32::new(-1),
        };
        // The intermediate shares our memory and we are suspended until it exits (CLONE_VM |
        // CLONE_VFORK, as posix_spawn does): it copies nothing of etcdlock's (the embedded
        // helper's exec shares nothing either; a forked helper copies the address space once).
        // It shares our descriptor table too (CLONE_FILES), so the helper's pidfd, which the
        // kernel gives the intermediate, is ours; it opens nothing else, and closes only the
        // pidfd of an exec'ing child whose exec failed.
        // Every signal blocked until the helper has reset them: none may run etcdlock's handlers
        // in the intermediate (on etcdlock's memory), or kill it or the helper before then.
        let all = nix::sys::signal::SigSet::all();
        let mut before = nix::sys::signal::SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&all),
            Some(&mut before),
        )
        .ok()?;
        // Only a fork copies the heap: the embedded helper's exec shares nothing.
        let wiped = embedded.is_none().then(|| {
            HeapWiped::mark(
                &prepared,
                &[&argv_gone, &argv_expired, &argv_embedded, &envp],
            )
        });
        // SAFETY: the stack outlives the intermediate (CLONE_VFORK: clone returns once it has
        // exited); it and its child make only async-signal-safe system calls on `launch`.
        let pid = unsafe {
            libc::clone(
                intermediate,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::from_ref(&launch).cast_mut().cast(),
            )
        };
        drop(wiped);
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&before),
            None,
        );
        if pid <= 0 {
            return None;
        }
        drop(reader);
        drop(page_fd);
        drop(rescue_fd);
        drop(embedded);
        // The intermediate exits 0 only if the helper was forked: else there is no safety net.
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        drop(stack);
        if !matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) {
            return None;
        }
        let expected = Arc::new(AtomicBool::new(false));
        let pid = launch.helper.load(Ordering::SeqCst);
        let pidfd = match launch.pidfd.load(Ordering::SeqCst) {
            // SAFETY: the pidfd the kernel gave the intermediate, in our descriptor table
            // (CLONE_FILES), owned by nothing else.
            fd if fd >= 0 => Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            // Linux before 5.2 ignores CLONE_PIDFD.
            _ => open_pidfd(pid),
        };
        let helper = pidfd.map(|fd| HelperWatch {
            pid,
            fd,
            expected: expected.clone(),
            died: OnceLock::new(),
        });
        Some(Started {
            reaper: Reaper { writer, expected },
            watchdog: Watchdog { deadlines, helper },
        })
    }

    fn send(&self, bytes: &[u8]) {
        let _ = nix::unistd::write(&self.writer, bytes);
    }

    /// The command runs as `pid`, in its own process group.
    pub fn leader(&self, pid: Pid) {
        let mut msg = [super::watchdog_abi::MSG_LEADER, 0, 0, 0, 0];
        msg[1..].copy_from_slice(&pid.as_raw().to_le_bytes());
        self.send(&msg);
    }

    /// The command was reaped: its process group id must not be signalled any more.
    pub fn leader_reaped(&self) {
        self.send(&[super::watchdog_abi::MSG_REAPED]);
    }

    /// The published deadlines were armed or moved earlier: the helper re-reads them.
    pub fn wake(&self) {
        self.send(&[super::watchdog_abi::MSG_WAKE]);
    }

    /// The whole tree is gone and cleaned up: let the helper go without killing anything.
    pub fn release(self) {
        self.expected.store(true, Ordering::SeqCst);
        self.send(&[super::watchdog_abi::MSG_DONE]);
    }
}

/// The embedded helper program (`watchdog/main.rs`, built by `build.rs`), in builds that have it.
#[cfg(embedded_watchdog)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!(env!("ETCDLOCK_WATCHDOG_BIN")));
#[cfg(not(embedded_watchdog))]
const EMBEDDED: Option<&[u8]> = None;

/// Set to `fork` to fork the helper even where the embedded one could be exec'd (to compare the
/// two, or to rule the embedded one out when diagnosing).
pub const REAPER_MODE_ENV: &str = "ETCDLOCK_REAPER";

/// The embedded helper in a sealed memfd, ready for `execveat`; `None` without one (another
/// architecture, [`REAPER_MODE_ENV`]) or if the kernel will not make the memfd.
fn embedded_helper() -> Option<OwnedFd> {
    let bytes = EMBEDDED?;
    if std::env::var_os(REAPER_MODE_ENV).is_some_and(|m| m == "fork") {
        return None;
    }
    let name = c"etcd-lock-watchdog";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create takes a string and flags and returns a new descriptor or -1.
    let fd = unsafe {
        // MFD_EXEC (Linux 6.3): executable even where `vm.memfd_noexec = 1` makes memfds
        // non-executable by default. Older kernels refuse the flag; they have no such default.
        match libc::memfd_create(name.as_ptr(), flags | libc::MFD_EXEC) {
            -1 => libc::memfd_create(name.as_ptr(), flags),
            fd => fd,
        }
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut file, bytes).ok()?;
    // Nothing may change the program between here and its exec.
    // SAFETY: fcntl on our own descriptor.
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return None;
    }
    Some(file.into())
}

/// The rescue program, opened for `execveat` (resolved now: `/proc/self/exe` names etcdlock's
/// binary here, and the embedded helper's own in the helper).
fn open_rescue(program: &str) -> Option<OwnedFd> {
    nix::fcntl::open(
        program,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

/// A pidfd of the helper `pid` (readable once it has exited). Without pidfds (Linux before 5.3)
/// the helper is not watched (debug line).
fn open_pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (always
    // close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pid <= 0 || fd < 0 {
        tracing::debug!(pid, "cannot watch the reaper helper (no pidfd)");
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What the intermediate and the helper need, prepared before the clone.
struct Launch<'a> {
    /// The embedded helper in a memfd, or -1: fork instead.
    embedded: RawFd,
    /// The rescue program (`O_PATH`), or -1.
    rescue_fd: RawFd,
    argv_embedded: *const *const libc::c_char,
    /// Where the exec'ing child's stack starts: the lower half of the intermediate's stack (the
    /// intermediate, suspended meanwhile, uses a few hundred bytes at the top).
    embedded_stack: *mut libc::c_void,
    /// Set by the exec'ing child if the exec failed (then the intermediate forks).
    embedded_failed: AtomicBool,
    reader: RawFd,
    writer: RawFd,
    page_fd: RawFd,
    prepared: &'a Prepared,
    argv_gone: *const *const libc::c_char,
    argv_expired: *const *const libc::c_char,
    leader_arg: *mut u8,
    envp: *const *const libc::c_char,
    devnull: *const libc::c_char,
    /// The helper's pid, written by the intermediate (shared memory).
    helper: AtomicI32,
    /// The helper's pidfd (`CLONE_PIDFD`, in the descriptor table the intermediate shares with
    /// etcdlock), or -1: exact even if the helper dies at once and its pid is reused, which
    /// `pidfd_open` by pid afterwards would not be.
    pidfd: AtomicI32,
}

/// The intermediate, running in etcdlock's memory while etcdlock waits: fork the helper with the
/// raw system call (glibc's `fork` would run atfork handlers and take locks in memory we share
/// with etcdlock's other threads) and leave at once, so that the helper is re-parented away.
extern "C" fn intermediate(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Launch` that `Reaper::start` keeps alive until we have exited; only
    // async-signal-safe system calls follow.
    unsafe {
        let launch = &*arg.cast::<Launch<'_>>();
        if launch.embedded >= 0 {
            // The child shares this memory until its exec (CLONE_VM | CLONE_VFORK: we resume
            // once it has exec'd or exited), so nothing of etcdlock's is copied.
            let pid = libc::clone(
                exec_embedded,
                launch.embedded_stack,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                arg,
                launch.pidfd.as_ptr(),
            );
            if pid > 0 && !launch.embedded_failed.load(Ordering::SeqCst) {
                launch.helper.store(pid, Ordering::SeqCst);
                libc::_exit(0);
            }
            if pid > 0 {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            let failed = launch.pidfd.swap(-1, Ordering::SeqCst);
            if failed >= 0 {
                libc::close(failed);
            }
            // Refused (a kernel or policy that does not exec memfds): fork, as without it.
        }
        let flags = libc::c_long::from(libc::SIGCHLD | libc::CLONE_PIDFD);
        let none: libc::c_long = 0;
        // x86-64 and aarch64 order: flags, stack, parent_tid (where CLONE_PIDFD puts the
        // pidfd), child_tid, tls.
        let pidfd = launch.pidfd.as_ptr();
        let pid = libc::syscall(libc::SYS_clone, flags, none, pidfd, none, none);
        if pid == 0 {
            helper_main(launch);
        }
        launch.helper.store(pid as i32, Ordering::SeqCst);
        libc::_exit(if pid > 0 { 0 } else { 1 })
    }
}

/// The exec'ing child of the intermediate: the helper's descriptors into place (3 to 6, see
/// [`super::watchdog_abi`]), then the embedded helper from its memfd. It changes nothing but its
/// own descriptor table (not shared: no `CLONE_FILES`) before the exec.
extern "C" fn exec_embedded(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Launch` that outlives this child (CLONE_VFORK); only
    // async-signal-safe system calls follow.
    unsafe {
        let launch = &*arg.cast::<Launch<'_>>();
        let fds = [
            launch.reader,
            launch.page_fd,
            launch.prepared.kill_fd,
            launch.rescue_fd,
            launch.embedded,
        ];
        if place_fds(&fds) {
            let program = PIPE_FD + 4;
            libc::fcntl(program, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::syscall(
                libc::SYS_execveat,
                program,
                c"".as_ptr(),
                launch.argv_embedded,
                launch.envp,
                libc::AT_EMPTY_PATH,
            );
        }
        launch.embedded_failed.store(true, Ordering::SeqCst);
        libc::_exit(127)
    }
}

/// The helper's start: a process that holds only what it needs, then the rescue program (or the
/// watch loop, without one). Never returns.
///
/// # Safety
/// Called in a child of `fork()` (the raw system call): only async-signal-safe system calls.
unsafe fn helper_main(launch: &Launch<'_>) -> ! {
    libc::close(launch.writer);
    // What `ps` shows until the exec (else the name of the thread that forked it).
    libc::prctl(libc::PR_SET_NAME, HELPER_COMM.as_ptr());
    reset_signals();
    ignore_signals();
    // Unblock what `Reaper::start` blocked (the rescue program inherits the mask).
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::setsid();
    // Keep stderr (the helper says what it did); never hold the caller's stdin or stdout open.
    let null = libc::open(launch.devnull, libc::O_RDWR);
    if null >= 0 {
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        libc::close(null);
    }
    let kill_fd = launch.prepared.kill_fd;
    if !place_fds(&[launch.reader, launch.page_fd, kill_fd]) {
        // Without its descriptors in place the helper is of no use; etcdlock sees it die.
        libc::_exit(1);
    }
    set_title(launch.prepared);
    // The watch loop, with system calls only: no exec on the way of a normal run (an exec of the
    // binary cost every run about a millisecond of CPU beside etcdlock's own start).
    let page = Deadlines::map(PAGE_FD);
    let mut leader = 0;
    let has_kill = kill_fd >= 0;
    let end = watch(
        PIPE_FD,
        page.as_ref(),
        &mut leader,
        &mut |expiry, leader| {
            raw_stop(expiry, leader, has_kill);
            match expiry {
                Expiry::Term(_) if launch.prepared.exe.is_some() => {
                    // From a child of its own (a fork: this process has one thread), so that a
                    // stderr that does not take it (a pipe to a stopped reader, a terminal
                    // stopped with Ctrl-S) cannot hold up the SIGKILL that follows.
                    let flags = libc::c_long::from(libc::SIGCHLD);
                    if libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) == 0 {
                        let msg = b"etcdlock: etcdlock did not renew its lock in time (frozen or starved?); its reaper helper is stopping the command\n";
                        libc::write(2, msg.as_ptr().cast(), msg.len());
                        libc::_exit(0);
                    }
                }
                Expiry::Term(_) => {}
                // The rest of the tree (a descendant that left the group or the cgroup) is for
                // the rescue program; it also goes on watching the pipe.
                Expiry::Kill => exec_rescue(launch, launch.argv_expired, leader),
            }
        },
    );
    if matches!(end, End::Gone) {
        raw_stop(Expiry::Kill, leader, has_kill);
        exec_rescue(launch, launch.argv_gone, leader);
    }
    libc::_exit(0);
}

/// Exec the rescue program (if there is one) with `--leader LEADER`; returns only if it cannot.
///
/// # Safety
/// Async-signal-safe: writes the digits into the prepared buffer, then execve.
unsafe fn exec_rescue(launch: &Launch<'_>, argv: *const *const libc::c_char, leader: i32) {
    let Some(exe) = &launch.prepared.exe else {
        return;
    };
    let mut digits = [0u8; 12];
    super::watchdog_abi::decimal(leader.max(0) as u32, &mut digits);
    std::ptr::copy_nonoverlapping(digits.as_ptr(), launch.leader_arg, digits.len());
    libc::execve(exe.as_ptr(), argv, launch.envp);
}

/// Write the helper's title over the argv it inherited from etcdlock (its own copy of that
/// memory): `/proc/PID/cmdline` shows it, and `pkill -f etcdlock` no longer matches.
///
/// # Safety
/// Writes only inside the argv area the kernel reported for this process.
unsafe fn set_title(prepared: &Prepared) {
    let Some((start, end)) = prepared.arg_area else {
        return;
    };
    let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
    let n = prepared.title.len().min(area.len().saturating_sub(1));
    area[..n].copy_from_slice(&prepared.title[..n]);
    area[n..].fill(0);
}

/// Signal the tree with system calls only: the process group, and `cgroup.kill` for SIGKILL.
unsafe fn raw_stop(expiry: Expiry, leader: i32, has_kill: bool) {
    let sig = match expiry {
        Expiry::Term(sig) => sig,
        Expiry::Kill => {
            if has_kill {
                libc::write(KILL_FD, b"1".as_ptr().cast(), 1);
            }
            libc::SIGKILL
        }
    };
    if leader > 0 {
        libc::kill(-leader, sig);
    }
}

/// Move `fds` (-1: none; at most 5) to 3, 4, 5, … and close every other descriptor above 2.
///
/// # Safety
/// Async-signal-safe: only fcntl, dup2, close and close_range.
unsafe fn place_fds(fds: &[RawFd]) -> bool {
    let count = fds.len().min(5);
    let fds = &fds[..count];
    let end = PIPE_FD + count as RawFd;
    // First out of the way of the targets, then into place (dup2 clears close-on-exec).
    let above = fds.iter().copied().max().unwrap_or(0).max(end) + 1;
    let mut moved = [-1; 5];
    for (i, &fd) in fds.iter().enumerate() {
        if fd >= 0 {
            moved[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above);
            if moved[i] < 0 {
                return false;
            }
        }
    }
    for (target, &fd) in (PIPE_FD..).zip(&moved[..count]) {
        if fd >= 0 && libc::dup2(fd, target) != target {
            return false;
        }
    }
    let first = end as libc::c_uint;
    if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
        // Linux before 5.9: close them one by one, up to the descriptor limit.
        let mut lim: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as RawFd
        } else {
            1024
        };
        for fd in end..max {
            libc::close(fd);
        }
    }
    // A slot without a descriptor is closed, not left to whatever had that number.
    for (target, &fd) in (PIPE_FD..).zip(fds) {
        if fd < 0 {
            libc::close(target);
        }
    }
    true
}

/// Every signal back to its default action (etcdlock's handlers are not the helper's).
///
/// # Safety
/// Async-signal-safe: only sigaction.
unsafe fn reset_signals() {
    // 1..=64: every signal Linux has (glibc's reserved 32 and 33 just fail).
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
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

/// What a passed deadline calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// `term_at` passed and the guard did not send the kill signal: send this one.
    Term(i32),
    /// `kill_at` passed: SIGKILL.
    Kill,
}

/// How the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// etcdlock said "done".
    Released,
    /// End-of-file: etcdlock is gone.
    Gone,
}

fn boottime_ns() -> u64 {
    BootTime::now().as_nanos()
}

/// Arm `timer` (a CLOCK_BOOTTIME timerfd) for the absolute time `at` (0: disarm).
unsafe fn set_timer(timer: RawFd, at: u64) {
    let mut spec: libc::itimerspec = std::mem::zeroed();
    spec.it_value.tv_sec = (at / 1_000_000_000) as libc::time_t;
    spec.it_value.tv_nsec = (at % 1_000_000_000) as libc::c_long;
    libc::timerfd_settime(timer, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut());
}

/// The watch loop, shared by the helper before exec and [`serve`]: follow the pipe (the leader,
/// the end) and the deadlines on `page`; call `expire` when a published time passes without a
/// newer one (the kill signal once, then SIGKILL once; after that the deadlines are no longer
/// read: a lost lock is never revived). Returns when etcdlock says done or is gone.
///
/// # Safety
/// Async-signal-safe (system calls and atomics only) as long as `expire` is.
unsafe fn watch(
    pipe: RawFd,
    page: Option<&Deadlines>,
    leader: &mut i32,
    expire: &mut dyn FnMut(Expiry, i32),
) -> End {
    let timer = match page {
        Some(_) => libc::timerfd_create(libc::CLOCK_BOOTTIME, libc::TFD_CLOEXEC),
        None => -1,
    };
    let (mut termed, mut killed) = (false, false);
    loop {
        let mut wake = 0u64;
        if let (Some(p), false) = (page.map(Deadlines::page), killed) {
            let step = p.next_step(boottime_ns(), termed);
            match step {
                Step::Sleep(at) => wake = at,
                Step::Term { then } => {
                    p.fired.store(1, Ordering::Release);
                    termed = true;
                    expire(Expiry::Term(p.signal.load(Ordering::Relaxed)), *leader);
                    wake = then;
                }
                Step::Kill => {
                    p.fired.store(1, Ordering::Release);
                    killed = true;
                    expire(Expiry::Kill, *leader);
                }
            }
        }
        if timer >= 0 {
            set_timer(timer, wake);
        }
        let mut fds = [
            libc::pollfd {
                fd: pipe,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: timer,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut ticks = 0u64;
            libc::read(timer, (&raw mut ticks).cast(), 8);
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut byte = 0u8;
        if !read_exact(pipe, std::slice::from_mut(&mut byte)) {
            return End::Gone;
        }
        match byte {
            super::watchdog_abi::MSG_LEADER => {
                let mut pid = [0u8; 4];
                if !read_exact(pipe, &mut pid) {
                    return End::Gone;
                }
                *leader = i32::from_le_bytes(pid);
            }
            super::watchdog_abi::MSG_REAPED => *leader = 0,
            super::watchdog_abi::MSG_DONE => return End::Released,
            _ => {}
        }
    }
}

/// Where the helper was when it exec'ed the rescue program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// etcdlock died (end-of-file on the pipe); the cgroup and the group were killed already.
    Gone,
    /// A published `kill_at` passed; the cgroup and the group were killed already, and etcdlock
    /// may still come back (the pipe is still open).
    Expired,
}

/// What the helper tells the program that runs it, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// etcdlock did not extend its deadline in time (it is frozen or starved): the helper sent
    /// the kill signal (`Some`) or SIGKILL (`None`) to the whole tree.
    Expired(Option<Signal>),
    /// etcdlock died while the command ran; the rescue killed what was left.
    Rescued(Rescued),
}

/// The rescue program's work ([`Rescue`]): after `after`, kill what is left of the tree (`leader`:
/// the command's process group, 0 if reaped) and, after [`After::Expired`], go on watching the
/// pipe until etcdlock says done or dies. Without `after` (a program that runs the helper's
/// whole life itself): watch etcdlock and the deadlines first. Returns when done.
pub fn serve(
    run_id: &str,
    cgroup: Option<&Path>,
    after: Option<After>,
    leader: i32,
    note: &mut dyn FnMut(Note),
) {
    // SAFETY: prctl with a valid string.
    unsafe { libc::prctl(libc::PR_SET_NAME, HELPER_COMM.as_ptr()) };
    let mut leader = leader;
    match after {
        Some(After::Gone) => {
            let rescued = kill_everything(leader, run_id, cgroup, true);
            if rescued.killed > 0 || rescued.refused > 0 || !rescued.cgroup_removed {
                note(Note::Rescued(rescued));
            }
            return;
        }
        Some(After::Expired) => {
            note(Note::Expired(None));
            kill_everything(leader, run_id, cgroup, false);
            // SAFETY: no deadlines: only reads the pipe.
            if unsafe { watch(PIPE_FD, None, &mut leader, &mut |_, _| {}) } == End::Gone {
                let rescued = kill_everything(leader, run_id, cgroup, true);
                if rescued.refused > 0 || !rescued.cgroup_removed {
                    note(Note::Rescued(rescued));
                }
            }
            return;
        }
        None => {}
    }
    let page = Deadlines::map(PAGE_FD);
    let mut expire = |expiry: Expiry, leader: i32| match expiry {
        Expiry::Term(sig) => {
            let sig = Signal::try_from(sig).unwrap_or(Signal::SIGTERM);
            note(Note::Expired(Some(sig)));
            signal_everything(sig, leader, run_id, cgroup);
        }
        Expiry::Kill => {
            note(Note::Expired(None));
            kill_everything(leader, run_id, cgroup, false);
        }
    };
    // SAFETY: `expire` may allocate: this is a fresh process of our own, not a fork.
    let end = unsafe { watch(PIPE_FD, page.as_ref(), &mut leader, &mut expire) };
    if end == End::Gone {
        let rescued = kill_everything(leader, run_id, cgroup, true);
        if rescued.killed > 0 || rescued.refused > 0 || !rescued.cgroup_removed {
            note(Note::Rescued(rescued));
        }
    }
}

/// Send `sig` to every process of the tree the helper can find: the cgroup's, the process
/// group, and every process carrying the run's marker (a descendant that moved to another
/// cgroup or left the group).
fn signal_everything(sig: Signal, leader: i32, run_id: &str, cgroup: Option<&Path>) -> usize {
    if leader > 0 {
        let _ = nix::sys::signal::killpg(Pid::from_raw(leader), sig);
    }
    let mut pids = cgroup.map(tree::cgroup_member_pids).unwrap_or_default();
    pids.extend(marked(run_id));
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), sig);
    }
    pids.len()
}

/// What the rescue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescued {
    /// Processes killed one by one (found in the cgroup without `cgroup.kill`, or by the run's
    /// marker; `cgroup.kill` does not count them).
    pub killed: usize,
    /// Processes that refused SIGKILL (EPERM: another user's) and may run on.
    pub refused: usize,
    /// Whether the cgroup (if any) is gone.
    pub cgroup_removed: bool,
}

/// SIGKILL the whole tree until nothing of it is left (gives up after 30 s: a process stuck in
/// uninterruptible sleep), then, if `remove`, remove the cgroup.
fn kill_everything(leader: i32, run_id: &str, cgroup: Option<&Path>, remove: bool) -> Rescued {
    let give_up = Instant::now() + Duration::from_secs(30);
    if leader > 0 {
        let _ = nix::sys::signal::killpg(Pid::from_raw(leader), Signal::SIGKILL);
    }
    let mut killed = 0usize;
    let mut refused = std::collections::BTreeSet::new();
    loop {
        let in_cgroup = cgroup.map_or(0, kill_cgroup);
        let mut left = 0;
        for pid in marked(run_id) {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                // Another user's process (setuid, sudo): no use trying again.
                Err(nix::errno::Errno::EPERM) => {
                    refused.insert(pid);
                }
                _ => {
                    killed += 1;
                    left += 1;
                }
            }
        }
        if in_cgroup + left == 0 || Instant::now() > give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Rescued {
        killed,
        refused: refused.len(),
        cgroup_removed: !remove || cgroup.is_none_or(tree::remove_cgroup_tree),
    }
}

/// What the rescue program runs when etcdlock died (for callers that run it by hand): kill the
/// rest of the tree and remove the cgroup.
pub fn rescue(run_id: &str, cgroup: Option<&Path>) -> Rescued {
    kill_everything(0, run_id, cgroup, true)
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
pub fn marked(run_id: &str) -> Vec<i32> {
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

#[cfg(test)]
mod tests {
    /// Every x86-64 Linux build carries the embedded helper unless it was built without on
    /// purpose: a build that lost it would only show as slower runs.
    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn x86_64_linux_builds_embed_the_helper() {
        let opted_out = option_env!("ETCDLOCK_NO_EMBEDDED_HELPER") == Some("1");
        assert_eq!(super::EMBEDDED.is_some(), !opted_out);
        if let Some(program) = super::EMBEDDED {
            // Small: it is written into a memfd on every run.
            assert!(program.len() < 16 * 1024, "{} bytes", program.len());
        }
    }
}
