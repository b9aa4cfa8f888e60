//! Child supervision: spawning the command, forwarding signals, and reaping it.
//!
//! The child runs in its own process group so that one signal reaches everything it started (a
//! shell script's children too), and with `PR_SET_PDEATHSIG = SIGKILL` so it dies with etcdlock even
//! on SIGKILL. pdeathsig fires when the *thread* that forked exits: we spawn from the runtime's main
//! thread, which lives exactly as long as the process. When etcdlock runs in the foreground of a
//! terminal, the child's group is made the foreground group so interactive commands can read the
//! terminal and get Ctrl-C directly.

use std::ffi::{OsStr, OsString};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::{killpg, SigHandler, Signal};
use nix::unistd::{AccessFlags, Pid};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tracing::debug;

use crate::exit::{self, fail};
use crate::guard::Guard;

/// Signals forwarded to the child while it runs.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Check before taking the lock that `program` can be run, so a typo fails fast (127/126) instead
/// of queueing for the lock first. Mirrors execvp's PATH search and returns the path found, which
/// [`spawn`] then executes directly.
pub fn check_command(program: &OsStr) -> Result<PathBuf> {
    let shown = program.to_string_lossy();
    if program.as_bytes().contains(&b'/') {
        check_file(Path::new(program), &shown)?;
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = None;
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            if nix::unistd::access(&candidate, AccessFlags::X_OK).is_ok() {
                return Ok(candidate);
            }
            denied.get_or_insert(candidate);
        }
    }
    match denied {
        Some(p) => check_file(&p, &shown).map(|()| p),
        None => Err(fail(exit::NOT_FOUND, format!("command not found: {shown}"))),
    }
}

fn check_file(path: &Path, shown: &str) -> Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|_| fail(exit::NOT_FOUND, format!("command not found: {shown}")))?;
    if meta.is_dir() {
        return Err(fail(
            exit::NOT_EXECUTABLE,
            format!("cannot execute {shown}: is a directory"),
        ));
    }
    if nix::unistd::access(path, AccessFlags::X_OK).is_err() {
        return Err(fail(
            exit::NOT_EXECUTABLE,
            format!("cannot execute {shown}: permission denied (chmod +x?)"),
        ));
    }
    Ok(())
}

/// The terminal on stdin, if etcdlock is in its foreground process group.
fn foreground_tty() -> Option<BorrowedFd<'static>> {
    // SAFETY: fd 0 stays open for the life of the process.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let fg = nix::unistd::tcgetpgrp(stdin).ok()?;
    (fg == nix::unistd::getpgrp()).then_some(stdin)
}

/// A running child in its own process group.
pub struct Child {
    inner: tokio::process::Child,
    pub pgid: Pid,
    tty: Option<BorrowedFd<'static>>,
    group_reaper: Option<GroupReaper>,
}

/// Kills the command's whole process group if etcdlock dies without saying goodbye.
///
/// PR_SET_PDEATHSIG reaches only the direct child: the real work of `sh -c '...'` or a script runs
/// in grandchildren, which would live on beside the next holder after a SIGKILL of etcdlock. So a
/// forked helper waits on a pipe whose only writer is etcdlock. The kernel closes that pipe however
/// etcdlock ends; end-of-file without the "done" byte means etcdlock died, and the helper SIGKILLs
/// the group. Forked, not exec'ed, it costs no start-up; between fork and exit it makes only
/// async-signal-safe calls.
struct GroupReaper {
    pid: Pid,
    writer: std::os::fd::OwnedFd,
}

impl GroupReaper {
    fn start(pgid: Pid) -> Option<GroupReaper> {
        use nix::fcntl::OFlag;
        use nix::unistd::{fork, ForkResult};
        use std::os::fd::AsRawFd;
        let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        // SAFETY: the child branch only calls async-signal-safe functions (sigaction, close, read,
        // kill, _exit) before it ends.
        match unsafe { fork() }.ok()? {
            ForkResult::Child => unsafe {
                for sig in FORWARDED.iter().chain(&[Signal::SIGPIPE, Signal::SIGTSTP]) {
                    let _ = nix::sys::signal::signal(*sig, SigHandler::SigIgn);
                }
                nix::libc::close(writer.as_raw_fd());
                let mut byte = 0u8;
                loop {
                    let n = nix::libc::read(reader.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n < 0 && *nix::libc::__errno_location() == nix::libc::EINTR {
                        continue;
                    }
                    if n == 0 {
                        nix::libc::kill(-pgid.as_raw(), nix::libc::SIGKILL);
                    }
                    nix::libc::_exit(0);
                }
            },
            ForkResult::Parent { child } => {
                drop(reader);
                Some(GroupReaper { pid: child, writer })
            }
        }
    }

    /// The command was reaped normally: let the helper go without killing anything.
    fn release(self) {
        let _ = nix::unistd::write(&self.writer, b"d");
        drop(self.writer);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Spawn `program` (the path [`check_command`] found for `argv[0]`) with `argv` and `env` added,
/// in its own process group, dying with us.
pub fn spawn(program: &Path, argv: &[OsString], env: &[(&str, String)]) -> Result<Child> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg0(&argv[0]).args(&argv[1..]).process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let tty = foreground_tty();
    if tty.is_some() {
        // We hand the terminal to the child's group and take it back afterwards; as a background
        // process we would otherwise be stopped by SIGTTOU when doing so. Reset in the child below.
        // SAFETY: setting a signal disposition to SIG_IGN is always sound.
        unsafe {
            let _ = nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigIgn);
        }
    }
    let parent = nix::unistd::getpid();
    let give_tty = tty.is_some();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // If etcdlock died before prctl took effect, nobody would kill us later.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("etcdlock exited during spawn"));
            }
            if give_tty {
                let stdin = BorrowedFd::borrow_raw(0);
                let _ = nix::unistd::tcsetpgrp(stdin, nix::unistd::getpid());
                let _ = nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigDfl);
            }
            Ok(())
        });
    }
    let shown = argv[0].to_string_lossy();
    let inner = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            fail(exit::NOT_FOUND, format!("command not found: {shown}"))
        }
        _ => fail(exit::NOT_EXECUTABLE, format!("cannot execute {shown}: {e}")),
    })?;
    let pid = inner.id().expect("a just-spawned child has a pid") as i32;
    let pgid = Pid::from_raw(pid);
    if let Some(fd) = tty {
        // Also from the parent: whichever runs first wins the race harmlessly.
        let _ = nix::unistd::tcsetpgrp(fd, pgid);
    }
    debug!(pid, "command started");
    let group_reaper = GroupReaper::start(pgid);
    Ok(Child {
        inner,
        pgid,
        tty,
        group_reaper,
    })
}

/// The signals etcdlock listens for, installed before anything else so that none kills us
/// before we can release the lease.
pub struct Signals {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        let streams = FORWARDED
            .iter()
            .map(|&s| Ok((s, signal(SignalKind::from_raw(s as i32))?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Signals { streams })
    }

    /// The next signal received.
    pub async fn recv(&mut self) -> Signal {
        let futures = self.streams.iter_mut().map(|(sig, stream)| {
            let sig = *sig;
            Box::pin(async move {
                stream.recv().await;
                sig
            })
        });
        futures_select_all(futures).await
    }

    /// The next signal that should cancel a wait (INT, TERM, HUP, QUIT); USR1/USR2 are ignored.
    pub async fn recv_cancel(&mut self) -> Signal {
        loop {
            let s = self.recv().await;
            if !matches!(s, Signal::SIGUSR1 | Signal::SIGUSR2) {
                return s;
            }
        }
    }
}

/// Await whichever of the futures finishes first.
async fn futures_select_all<F>(futures: impl Iterator<Item = F>) -> Signal
where
    F: std::future::Future<Output = Signal> + Unpin,
{
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(s) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(s);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// How to stop a child that must stop.
pub struct Supervision {
    pub kill_signal: Signal,
    pub kill_after: Duration,
    pub max_runtime: Option<Duration>,
}

/// How the child ended.
pub struct Ended {
    pub status: ExitStatus,
    /// We stopped it because --max-runtime was reached.
    pub timed_out: bool,
}

/// Run the child to its end: forward signals to its group, escalate a forwarded SIGTERM to
/// SIGKILL after the grace period, enforce --max-runtime, report a lost lock as soon as the guard
/// declares it. The guard's own thread does the lease-loss killing; this loop only reaps.
pub async fn supervise(
    mut child: Child,
    signals: &mut Signals,
    guard: &Guard,
    how: &Supervision,
    on_lost: impl Fn(&str),
) -> Result<Ended> {
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut escalate_at = far;
    let mut stop_at = how.max_runtime.map_or(far, |d| Instant::now() + d);
    let mut timed_out = false;
    let mut lost_reported = false;
    let status = loop {
        tokio::select! {
            status = child.inner.wait() => {
                guard.disarm();
                if let Some(reaper) = child.group_reaper.take() {
                    reaper.release();
                }
                break status?;
            }
            sig = signals.recv() => {
                debug!(signal = %sig, "forwarding signal");
                let _ = killpg(child.pgid, sig);
                if sig == Signal::SIGTERM && escalate_at == far {
                    escalate_at = Instant::now() + how.kill_after;
                }
            }
            _ = tokio::time::sleep_until(stop_at) => {
                debug!("--max-runtime reached; stopping the command");
                timed_out = true;
                let _ = killpg(child.pgid, how.kill_signal);
                stop_at = far;
                escalate_at = escalate_at.min(Instant::now() + how.kill_after);
            }
            _ = tokio::time::sleep_until(escalate_at) => {
                debug!("the command outlived its grace period; sending SIGKILL");
                let _ = killpg(child.pgid, Signal::SIGKILL);
                escalate_at = far;
            }
            reason = guard.wait_lost(), if !lost_reported => {
                lost_reported = true;
                on_lost(&reason);
            }
        }
    };
    // The child may have died of the guard's signal before the select above saw the loss.
    if !lost_reported {
        if let Some(reason) = guard.lost() {
            on_lost(&reason);
        }
    }
    if let Some(fd) = child.tty {
        let _ = nix::unistd::tcsetpgrp(fd, nix::unistd::getpgrp());
    }
    Ok(Ended { status, timed_out })
}

/// The exit code that reports `status` the way a shell would.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => exit::signal(sig),
        _ => exit::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_checked_before_locking() {
        assert!(check_command(OsStr::new("sh")).is_ok());
        assert!(check_command(OsStr::new("/bin/sh")).is_ok());
        let e = check_command(OsStr::new("no-such-command-etcdlock")).unwrap_err();
        assert_eq!(exit::code_of(&e), exit::NOT_FOUND);
        let e = check_command(OsStr::new("/etc/passwd")).unwrap_err();
        assert_eq!(exit::code_of(&e), exit::NOT_EXECUTABLE);
        let e = check_command(OsStr::new("/tmp")).unwrap_err();
        assert_eq!(exit::code_of(&e), exit::NOT_EXECUTABLE);
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
