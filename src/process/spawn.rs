//! Starting the command: `clone3` straight into its cgroup, in its own process group, dying with
//! etcdlock, with exec failures reported exactly.
//!
//! Why not `std::process::Command`: moving a process into a cgroup after it exists (writing to
//! `cgroup.procs`, the only way `pre_exec` could do it) takes the kernel's cgroup threadgroup
//! rwsem for writing, which waits for an RCU grace period: 10-15 ms measured here, on every run.
//! `clone3(CLONE_INTO_CGROUP)` creates the child inside the cgroup and takes that lock for reading
//! only. `CLONE_CLEAR_SIGHAND` starts the child with etcdlock's signal handlers reset, so a signal
//! that arrives before the exec takes its default action instead of running tokio's handler in
//! the child. Where `clone3` is unavailable (`ENOSYS`, `EPERM` from a seccomp profile; `E2BIG` or
//! `EINVAL` from kernels 5.3–5.6 without the flags), `fork` is used with every signal blocked until
//! the child has reset the handlers, and the child joins the cgroup itself before anything else.
//! Any other `clone3` error is the cgroup's and reported as such, not as the command's.
//!
//! On x86_64 the `clone3` also shares etcdlock's memory until the child's exec (`CLONE_VM |
//! CLONE_VFORK`, on a stack of the child's own), as posix_spawn and Go's `os/exec` do: a fork would
//! copy etcdlock's page tables and write-protect every page, so that etcdlock took a fault on each
//! page it wrote for the rest of the run. The calling thread waits until the exec (or the child's
//! exit); the child writes nothing of ours but its own stack and, when a call fails, the errno of
//! the calling thread (which reads errno only after a failed spawn, and sets it then).
//!
//! Between clone and exec the child only makes async-signal-safe system calls on memory prepared
//! before the clone. If anything fails there, it writes the errno to a close-on-exec pipe and exits
//! 127; end-of-file on that pipe means the exec happened.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc crate version.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// How the child is started.
pub struct Spec<'a> {
    /// The executable, as resolved before locking.
    pub program: &'a Path,
    /// argv (`argv[0]` included).
    pub argv: &'a [OsString],
    /// Variables added to (or replacing those in) etcdlock's own environment.
    pub env: &'a [(&'a str, String)],
    /// The cgroup directory to create the child in (`clone3`).
    pub cgroup_dir: Option<RawFd>,
    /// `cgroup.procs` of that cgroup, for the `fork` fallback.
    pub cgroup_procs: Option<RawFd>,
    /// Hand the terminal on stdin to the child's process group.
    pub tty: Option<BorrowedFd<'static>>,
}

/// Everything the child touches, allocated before the clone.
struct Prepared {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstring(s: &OsStr, what: &str) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::NotExecutable {
        command: s.to_string_lossy().into_owned(),
        reason: format!("{what} contains a NUL byte"),
    })
}

impl Prepared {
    fn new(spec: &Spec<'_>) -> Result<Prepared> {
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring(a, "an argument"))
            .collect::<Result<Vec<_>>>()?;
        let mut envp = Vec::new();
        for (k, v) in std::env::vars_os() {
            if spec.env.iter().all(|(name, _)| OsStr::new(name) != k) {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                envp.push(cstring(&kv, "the environment")?);
            }
        }
        for (k, v) in spec.env {
            envp.push(cstring(OsStr::new(&format!("{k}={v}")), "the environment")?);
        }
        Ok(Prepared {
            program: cstring(spec.program.as_os_str(), "the program path")?,
            argv,
            envp,
        })
    }
}

fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Start the child; its pid once it has exec'ed.
///
/// The child gets `PR_SET_PDEATHSIG`, which fires when the *thread* that forked it ends. So the
/// fork always happens on a thread that lives as long as the process: the main thread if that is
/// the caller, else the library's own spawner thread (started on first use, never ended), to
/// which the prepared command is handed through a channel. Calling from `spawn_blocking` or a
/// multi-thread runtime's worker is therefore safe: the command does not die when that thread
/// retires.
pub fn spawn(spec: &Spec<'_>) -> Result<Pid> {
    let prepared = Prepared::new(spec)?;
    let job = Job {
        prepared,
        cgroup_dir: spec.cgroup_dir,
        cgroup_procs: spec.cgroup_procs,
        tty: spec.tty.map(|t| t.as_raw_fd()),
        shown: spec.argv[0].to_string_lossy().into_owned(),
    };
    if nix::unistd::gettid() == nix::unistd::getpid() {
        return job.run();
    }
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    spawner()
        .send((job, reply))
        .map_err(|_| Error::Config("the spawner thread is gone".into()))?;
    answer
        .recv()
        .map_err(|_| Error::Config("the spawner thread is gone".into()))?
}

/// A command prepared for [`spawn`], with everything the fork needs: it can be handed to the
/// spawner thread.
struct Job {
    prepared: Prepared,
    cgroup_dir: Option<RawFd>,
    cgroup_procs: Option<RawFd>,
    tty: Option<RawFd>,
    /// argv[0], for messages.
    shown: String,
}

type Reply = std::sync::mpsc::SyncSender<Result<Pid>>;

/// The spawner thread's queue: the thread is started on first use and lives as long as the
/// process (its receiver never sees the channel closed: the sender is static).
fn spawner() -> &'static std::sync::mpsc::Sender<(Job, Reply)> {
    static SPAWNER: std::sync::OnceLock<std::sync::mpsc::Sender<(Job, Reply)>> =
        std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<(Job, Reply)>();
        let started = std::thread::Builder::new()
            .name("etcdlock-spawner".into())
            .spawn(move || {
                for (job, reply) in rx {
                    let _ = reply.send(job.run());
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the spawner thread");
        }
        tx
    })
}

impl Job {
    /// Fork and exec on the current thread.
    fn run(self) -> Result<Pid> {
        let prepared = &self.prepared;
        let argv = pointers(&prepared.argv);
        let envp = pointers(&prepared.envp);
        let (err_read, err_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let parent = nix::unistd::getpid().as_raw();
        let child = ChildSide {
            program: prepared.program.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            err_fd: err_write.as_raw_fd(),
            parent,
            cgroup_procs: self.cgroup_procs.unwrap_or(-1),
            tty: self.tty.unwrap_or(-1),
        };
        // SAFETY: the child side only makes async-signal-safe system calls on `child`'s memory,
        // prepared above and alive until after the exec (the parent waits on the error pipe).
        let pid = unsafe { clone_child(self.cgroup_dir, &child) }?;
        drop(err_write);
        let mut errno = [0u8; 4];
        let n = loop {
            match nix::unistd::read(&err_read, &mut errno) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.unwrap_or(0),
            }
        };
        if n == 0 {
            return Ok(Pid::from_raw(pid));
        }
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        let errno = i32::from_ne_bytes(errno);
        let shown = self.shown;
        Err(match errno {
            libc::ENOENT => Error::CommandNotFound(shown),
            _ => Error::NotExecutable {
                command: shown,
                reason: std::io::Error::from_raw_os_error(errno).to_string(),
            },
        })
    }
}

/// What the child needs, as raw pointers and descriptors.
struct ChildSide {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    err_fd: RawFd,
    parent: libc::pid_t,
    cgroup_procs: RawFd,
    tty: RawFd,
}

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the child starts with every handled signal back to its
/// default action, so no signal between clone and exec runs etcdlock's (tokio's) handlers.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// clone3 (into `cgroup_dir` if given), else fork where clone3 cannot be had; the child never
/// returns.
///
/// # Safety
/// See [`child_main`].
unsafe fn clone_child(cgroup_dir: Option<RawFd>, side: &ChildSide) -> Result<libc::pid_t> {
    let mut args: libc::clone_args = std::mem::zeroed();
    args.flags = CLONE_CLEAR_SIGHAND;
    if let Some(dir) = cgroup_dir {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir as u64;
    }
    args.exit_signal = libc::SIGCHLD as u64;
    // Where it can, the child shares our memory until its exec, as posix_spawn and Go's os/exec
    // have theirs: a fork would copy etcdlock's page tables and leave every page it writes later
    // to a copy-on-write fault (see `vm_clone3`).
    let stack = vm_clone3_supported().then(Stack::new).flatten();
    let pid = match &stack {
        Some(stack) => {
            (args.stack, args.stack_size) = stack.usable();
            args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
            vm_clone3(&mut args, side)
        }
        None => libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        ),
    };
    // Read before the stack's munmap could touch errno.
    let err = std::io::Error::last_os_error();
    drop(stack);
    match pid {
        0 => child_main(side, false),
        p if p > 0 => return Ok(p as libc::pid_t),
        _ => {
            match err.raw_os_error().unwrap_or(0) {
                // No clone3 (before Linux 5.3) or a seccomp profile that refuses it.
                libc::ENOSYS | libc::EPERM => {}
                // Linux 5.3–5.6: no CLONE_INTO_CGROUP (its field makes the arguments too big).
                libc::E2BIG if cgroup_dir.is_some() => {}
                // Linux 5.3–5.4: no CLONE_CLEAR_SIGHAND.
                libc::EINVAL if cgroup_dir.is_none() => {}
                // Anything else is the cgroup's doing (removed, a limit reached): say so, rather
                // than blame the command for what a fork and a failed join would report.
                _ => {
                    return Err(std::io::Error::new(
                        err.kind(),
                        format!("cannot start the command in its cgroup (clone3: {err})"),
                    )
                    .into())
                }
            }
        }
    }
    // fork runs the child with our handlers installed until it resets them: keep every signal
    // blocked across the fork (the child unblocks them once the handlers are reset).
    let all = nix::sys::signal::SigSet::all();
    let mut before = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut before),
    );
    let pid = libc::fork();
    if pid == 0 {
        child_main(side, true);
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&before),
        None,
    );
    match pid {
        p if p > 0 => Ok(p),
        _ => Err(std::io::Error::last_os_error().into()),
    }
}

/// A stack of its own for a child that shares our memory until it execs or exits (`CLONE_VM |
/// CLONE_VFORK`: the command here, the reaper helper's intermediate): mapped, with an inaccessible guard page
/// below it, so an overflow faults instead of writing over the heap.
pub(crate) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    /// The inaccessible page below the stack (the smallest page size; a larger page is protected
    /// whole).
    const GUARD_PAGE: usize = 4096;
    const SIZE: usize = 256 * 1024;

    pub(crate) fn new() -> Option<Stack> {
        let len = Self::SIZE + Self::GUARD_PAGE;
        // SAFETY: a fresh private mapping; the first page is made inaccessible.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let stack = Stack { base, len };
            (libc::mprotect(base, Self::GUARD_PAGE, libc::PROT_NONE) == 0).then_some(stack)
        }
    }

    /// The usable part (above the guard page): its lowest address and its size, as `clone3`
    /// takes them.
    pub(crate) fn usable(&self) -> (u64, u64) {
        (
            self.base as u64 + Self::GUARD_PAGE as u64,
            Self::SIZE as u64,
        )
    }

    /// The middle of the usable part, 16-byte aligned: the top of a second stack below the
    /// first half, for a `CLONE_VFORK` child of the code running at [`Stack::top`] (which is
    /// suspended while the child runs and uses far less than half).
    pub(crate) fn middle(&self) -> *mut libc::c_void {
        // SAFETY: within the mapping: half the usable size above the guard page.
        unsafe {
            self.base
                .cast::<u8>()
                .add(Self::GUARD_PAGE + Self::SIZE / 2)
                .cast()
        }
    }

    pub(crate) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, where a downward-growing stack starts.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer in use (the child that ran on it has exec'd or
        // exited: CLONE_VFORK).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Whether [`vm_clone3`] exists for this architecture.
const fn vm_clone3_supported() -> bool {
    cfg!(target_arch = "x86_64")
}

/// `clone3` with `args` (`CLONE_VM | CLONE_VFORK`, a stack of the child's own): the child runs
/// [`child_main`] on that stack and never returns here; the parent gets the pid (or -1, errno
/// set) once the child has exec'ed or exited.
///
/// Why assembly: a child that shares our memory must not return through the caller's frames (it
/// would run on, and overwrite, the suspended parent's stack), and `libc::syscall` returns in
/// both processes. glibc's `clone()` switches stacks but takes no `clone3` arguments, so no
/// `CLONE_INTO_CGROUP`. The child starts on the new stack right after the `syscall` instruction
/// and calls its entry from there; `CLONE_CLEAR_SIGHAND` keeps etcdlock's signal handlers (which
/// would run on shared memory) away from it.
///
/// # Safety
/// As [`child_main`]: `side` and the stack in `args` outlive the child's use of them, which
/// `CLONE_VFORK` bounds by its exec or exit.
#[cfg(target_arch = "x86_64")]
unsafe fn vm_clone3(args: &mut libc::clone_args, side: &ChildSide) -> libc::c_long {
    extern "C" fn entry(side: *const ChildSide) -> ! {
        // SAFETY: the parent's `side`, alive while it is suspended (CLONE_VFORK).
        unsafe { child_main(&*side, false) }
    }
    let ret: libc::c_long;
    std::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The child, on its own stack.
        "xor ebp, ebp",
        // The ABI's alignment at a call, whatever the stack's size.
        "and rsp, -16",
        "mov rdi, r12",
        "call r13",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone3 => ret,
        in("rdi") std::ptr::from_mut(args),
        in("rsi") std::mem::size_of::<libc::clone_args>(),
        in("r12") std::ptr::from_ref(side),
        in("r13") entry as extern "C" fn(*const ChildSide) -> !,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    if ret < 0 {
        // The raw system call returns -errno; callers read errno, as after libc::syscall.
        *libc::__errno_location() = (-ret) as i32;
        return -1;
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn vm_clone3(_: &mut libc::clone_args, _: &ChildSide) -> libc::c_long {
    unreachable!("vm_clone3_supported() is false here")
}

/// What `CLONE_CLEAR_SIGHAND` does, for a forked child: every handled signal back to default
/// (ignored ones stay ignored, as across exec).
///
/// # Safety
/// Async-signal-safe: only sigaction.
unsafe fn clear_handlers() {
    for sig in 1..=64 {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction != libc::SIG_DFL
            && old.sa_sigaction != libc::SIG_IGN
        {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// The child between clone and exec.
///
/// # Safety
/// Runs in a child of a multi-threaded process: only async-signal-safe system calls, no
/// allocation, no locks; every pointer in `side` is valid (the parent keeps it alive).
unsafe fn child_main(side: &ChildSide, forked: bool) -> ! {
    let fail = |fd: RawFd| -> ! {
        let errno = *libc::__errno_location();
        libc::write(fd, (&errno as *const i32).cast(), 4);
        libc::_exit(127);
    };
    if forked {
        clear_handlers();
    }
    let join_cgroup = forked;
    // Into the cgroup before anything can fork: no descendant is ever outside it.
    if join_cgroup
        && side.cgroup_procs >= 0
        && libc::write(side.cgroup_procs, b"0".as_ptr().cast(), 1) != 1
    {
        fail(side.err_fd);
    }
    // A process group of its own: one signal reaches everything it starts.
    if libc::setpgid(0, 0) != 0 {
        fail(side.err_fd);
    }
    // Undo what etcdlock's runtime set up: no blocked signals, SIGPIPE back to default.
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    // Die with etcdlock; if it died before prctl took effect, nobody would kill us later.
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    if libc::getppid() != side.parent {
        libc::_exit(127);
    }
    if side.tty >= 0 {
        // Our own group (setpgid above), by a system call: a glibc before 2.25 would answer
        // getpid() from a cache in the memory this child may share with etcdlock.
        libc::tcsetpgrp(side.tty, libc::getpgrp());
        libc::signal(libc::SIGTTOU, libc::SIG_DFL);
    }
    libc::execve(side.program, side.argv, side.envp);
    fail(side.err_fd);
}

/// Reap child `pid` if it has exited: its wait status then. Only that child: a program that
/// embeds the library keeps its own children (a `waitpid(-1)` would steal their statuses).
pub fn reap(pid: libc::pid_t) -> Option<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        let mut status = 0;
        // SAFETY: waitpid only writes the status through the valid pointer.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return (reaped == pid).then(|| std::process::ExitStatus::from_raw(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tree::Tree;

    /// A clone3 that fails for the cgroup's sake (here: removed under us) is reported as the
    /// cgroup's failure, not as "command not found"/"not executable" after a fork fallback.
    /// Needs a writable cgroup v2 (root, CI); passes vacuously elsewhere.
    #[test]
    fn a_cgroup_failure_is_reported_as_the_cgroups() {
        let tree = Tree::prepare();
        let Some(dir) = tree.cgroup_dir() else {
            return;
        };
        std::fs::remove_dir(dir).unwrap();
        let argv = [OsString::from("true")];
        let spec = Spec {
            program: Path::new("/bin/true"),
            argv: &argv,
            env: &[],
            cgroup_dir: tree.dir_fd(),
            cgroup_procs: tree.join_fd(),
            tty: None,
        };
        let err = match spawn(&spec) {
            Ok(pid) => panic!("spawned {pid} into a removed cgroup"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("cannot start the command in its cgroup"),
            "{err}"
        );
    }
}
