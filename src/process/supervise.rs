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
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::{AccessFlags, Pid};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tracing::debug;

use super::tree::{Member, Tree};
use crate::error::{Error, Result};
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
        None => Err(Error::CommandNotFound(shown.into_owned())),
    }
}

fn check_file(path: &Path, shown: &str) -> Result<()> {
    let not_executable = |reason: &str| Error::NotExecutable {
        command: shown.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = std::fs::metadata(path).map_err(|_| Error::CommandNotFound(shown.to_owned()))?;
    if meta.is_dir() {
        return Err(not_executable("is a directory"));
    }
    if nix::unistd::access(path, AccessFlags::X_OK).is_err() {
        return Err(not_executable("permission denied (chmod +x?)"));
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

/// A running child in its own process group, tracked with its whole tree.
pub struct Child {
    pid: Pid,
    tty: Option<BorrowedFd<'static>>,
}

/// Spawn `program` (the path [`check_command`] found for `argv[0]`) with `argv` and `env` added,
/// in its own process group and, if there is one, the tree's cgroup; dying with us.
pub fn spawn(
    program: &Path,
    argv: &[OsString],
    env: &[(&str, String)],
    tree: &Tree,
) -> Result<Child> {
    // Never a command without its reaper helper.
    tree.wait_armed();
    let tty = foreground_tty();
    if tty.is_some() {
        // We hand the terminal to the child's group and take it back afterwards; as a background
        // process we would otherwise be stopped by SIGTTOU when doing so. Reset in the child.
        // SAFETY: setting a signal disposition to SIG_IGN is always sound.
        unsafe {
            let _ = nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigIgn);
        }
    }
    let spec = super::spawn::Spec {
        program,
        argv,
        env,
        cgroup_dir: tree.dir_fd(),
        cgroup_procs: tree.join_fd(),
        tty,
    };
    let pid = super::spawn::spawn(&spec)?;
    tree.set_leader(pid);
    if let Some(fd) = tty {
        // Also from the parent: whichever runs first wins the race harmlessly.
        let _ = nix::unistd::tcsetpgrp(fd, pid);
    }
    debug!(pid = pid.as_raw(), "command started");
    Ok(Child { pid, tty })
}

/// The signals etcdlock listens for, installed before anything else so that none kills us
/// before we can release the lease.
pub struct Signals {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
    /// SIGCHLD: one of our children (the command, or an orphan of its tree) changed state.
    child: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers.
    pub fn install() -> Result<Signals> {
        let streams = FORWARDED
            .iter()
            .map(|&s| Ok((s, signal(SignalKind::from_raw(s as i32))?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Signals {
            streams,
            child: signal(SignalKind::child())?,
        })
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

    /// The next forwarded signal, or `None` for a SIGCHLD.
    async fn recv_or_child(&mut self) -> Option<Signal> {
        let Signals { streams, child } = self;
        let forwarded = futures_select_all(streams.iter_mut().map(|(sig, stream)| {
            let sig = *sig;
            Box::pin(async move {
                stream.recv().await;
                sig
            })
        }));
        tokio::select! {
            sig = forwarded => Some(sig),
            _ = child.recv() => None,
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
    /// Sent first (lease loss is the guard's business; this is for --max-runtime and leftovers).
    pub kill_signal: Signal,
    /// Grace between `kill_signal` (or a forwarded SIGTERM) and SIGKILL.
    pub kill_after: Duration,
    /// `--max-runtime`: stop the whole tree after this long.
    pub max_runtime: Option<Duration>,
    /// `--kill-leftovers`: when the command exits, stop what it left running instead of waiting.
    pub kill_leftovers: bool,
}

/// How the child ended.
pub struct Ended {
    /// The command's own exit status.
    pub status: ExitStatus,
    /// We stopped it because --max-runtime was reached.
    pub timed_out: bool,
    /// Processes of the tree could not be killed (EPERM) and still run: the promise cannot be
    /// kept for them (the command's own status is then reported as SIGKILL if it was one of them).
    pub unkillable: bool,
}

/// What [`supervise`] tells its caller while it runs.
pub enum Event<'a> {
    /// The guard declared the lease lost (it is already stopping the tree).
    Lost(&'a str),
    /// The command exited but left processes running; `killing` with --kill-leftovers.
    Leftovers {
        /// How the command itself ended.
        status: ExitStatus,
        /// What it left running.
        members: &'a [Member],
        /// Whether they are being stopped (`--kill-leftovers`) rather than waited for.
        killing: bool,
    },
    /// The tree must stop but these processes refused the signal (EPERM: another user's, e.g. a
    /// setuid program): they may run on after the lock passes on.
    Unkillable(&'a [Member]),
}

/// Timers and latches of one supervision.
struct Watch<'a> {
    tree: &'a Tree,
    how: &'a Supervision,
    /// When to SIGKILL the tree (grace after a stop signal ran out); repeated until it is empty.
    kill_at: Option<Instant>,
    /// --max-runtime.
    stop_at: Option<Instant>,
    timed_out: bool,
    lost_reported: bool,
}

impl Watch<'_> {
    /// Send the stop signal now and SIGKILL after the grace period.
    fn stop(&mut self) {
        self.tree.signal(self.how.kill_signal);
        let kill_at = Instant::now() + self.how.kill_after;
        self.kill_at = Some(self.kill_at.map_or(kill_at, |k| k.min(kill_at)));
    }

    fn forward(&mut self, sig: Signal) {
        debug!(signal = %sig, "forwarding signal");
        self.tree.signal(sig);
        if sig == Signal::SIGTERM && self.kill_at.is_none() {
            self.kill_at = Some(Instant::now() + self.how.kill_after);
        }
    }

    fn max_runtime_reached(&mut self) {
        debug!("--max-runtime reached; stopping the command");
        self.timed_out = true;
        self.stop_at = None;
        self.stop();
    }

    /// SIGKILL pass; without cgroup.kill a fork may race with it, so repeat shortly.
    fn kill_now(&mut self) {
        debug!("sending SIGKILL to the command's processes");
        self.tree.kill_pass();
        self.kill_at = Some(Instant::now() + Duration::from_millis(50));
    }
}

async fn until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Run the child to its end, and then its tree: forward signals to every process of the tree,
/// escalate a forwarded SIGTERM to SIGKILL after the grace period, enforce --max-runtime, report
/// a lost lock as soon as the guard declares it (the guard's own thread does the lease-loss
/// killing). When the command exits while processes it started still run, keep supervising
/// (and holding the lock) until the last one has exited, or stop them with --kill-leftovers.
pub async fn supervise(
    child: Child,
    signals: &mut Signals,
    guard: &Guard,
    tree: &Tree,
    how: &Supervision,
    report: impl Fn(Event<'_>),
) -> Result<Ended> {
    let mut w = Watch {
        tree,
        how,
        kill_at: None,
        stop_at: how.max_runtime.map(|d| Instant::now() + d),
        timed_out: false,
        lost_reported: false,
    };
    let status = loop {
        // SIGCHLD is only a hint (signals merge). Only the command is reaped here; the tree's
        // orphans are reaped by `Tree::is_empty`, and children of an embedding program are
        // never touched.
        if let Some(status) = super::spawn::reap(child.pid.as_raw()) {
            break status;
        }
        if w.unkillable(guard, &report) {
            if let Some(fd) = child.tty {
                let _ = nix::unistd::tcsetpgrp(fd, nix::unistd::getpgrp());
            }
            return Ok(Ended {
                status: std::os::unix::process::ExitStatusExt::from_raw(libc_sigkill()),
                timed_out: w.timed_out,
                unkillable: true,
            });
        }
        // While stopping, look again every 250 ms: a process that refuses our signals (EPERM)
        // would otherwise be waited for forever.
        let recheck = w.stopping(guard);
        w.round(signals, guard, &report, async move {
            if recheck {
                tokio::time::sleep(Duration::from_millis(250)).await;
            } else {
                std::future::pending::<()>().await;
            }
        })
        .await;
    };
    tree.leader_reaped();
    if let Some(fd) = child.tty {
        let _ = nix::unistd::tcsetpgrp(fd, nix::unistd::getpgrp());
    }
    let mut unkillable = false;
    if !tree.is_empty() {
        unkillable = leftovers(&mut w, status, signals, guard, &report).await;
    }
    debug!(status = %status, "command ended, its tree is empty");
    // The child may have died of the guard's signal before the select above saw the loss.
    if !w.lost_reported {
        if let Some(reason) = guard.lost() {
            report(Event::Lost(&reason));
        }
    }
    Ok(Ended {
        status,
        timed_out: w.timed_out,
        unkillable,
    })
}

/// The wait status of a process killed by SIGKILL (what an unkillable command is reported as).
fn libc_sigkill() -> i32 {
    Signal::SIGKILL as i32
}

/// The command exited, processes it started did not: hold on until they end (or stop them).
async fn leftovers(
    w: &mut Watch<'_>,
    status: ExitStatus,
    signals: &mut Signals,
    guard: &Guard,
    report: &impl Fn(Event<'_>),
) -> bool {
    let members = w.tree.members();
    // Nothing to say when they are being killed anyway (lease lost, SIGTERM grace, timeout).
    if !members.is_empty() && w.kill_at.is_none() && guard.lost().is_none() {
        report(Event::Leftovers {
            status,
            members: &members,
            killing: w.how.kill_leftovers,
        });
        if w.how.kill_leftovers {
            w.stop();
        }
    }
    // SIGCHLD tells us when one of our children (the orphans) ends; the tick covers a process
    // that left our ancestry but not the cgroup.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !w.tree.is_empty() {
        if w.unkillable(guard, report) {
            return true;
        }
        let tick = tick.tick();
        w.round(signals, guard, report, async {
            tick.await;
        })
        .await;
    }
    false
}

impl Watch<'_> {
    /// Whether the tree is being stopped (lease lost, grace running out, --max-runtime).
    fn stopping(&self, guard: &Guard) -> bool {
        self.kill_at.is_some() || guard.lost().is_some()
    }

    /// While stopping: whether every process left refused our signals (EPERM), so that waiting
    /// for the tree to end is pointless; reported once.
    fn unkillable(&mut self, guard: &Guard, report: &impl Fn(Event<'_>)) -> bool {
        if !self.stopping(guard) {
            return false;
        }
        match self.tree.only_unkillable_left() {
            Some(members) => {
                report(Event::Unkillable(&members));
                true
            }
            None => false,
        }
    }

    /// One round of supervision, whichever comes first: a signal to forward (or SIGCHLD, after
    /// which the caller reaps), --max-runtime, the kill deadline, the lock lost, or `wake`.
    async fn round(
        &mut self,
        signals: &mut Signals,
        guard: &Guard,
        report: &impl Fn(Event<'_>),
        wake: impl std::future::Future<Output = ()>,
    ) {
        tokio::select! {
            () = wake => {}
            received = signals.recv_or_child() => if let Some(sig) = received {
                self.forward(sig);
            },
            () = until(self.stop_at) => self.max_runtime_reached(),
            () = until(self.kill_at) => self.kill_now(),
            reason = guard.wait_lost(), if !self.lost_reported => {
                self.lost_reported = true;
                report(Event::Lost(&reason));
            }
        }
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
        assert!(matches!(e, Error::CommandNotFound(_)), "{e}");
        for path in ["/etc/passwd", "/tmp"] {
            let e = check_command(OsStr::new(path)).unwrap_err();
            assert!(matches!(e, Error::NotExecutable { .. }), "{e}");
        }
    }
}
