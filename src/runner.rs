//! The promise as library calls: run a command under a lock so that it stops before anyone else
//! can hold the lock, and give the lock up with the run's records.
//!
//! **One call does the whole run**: [`hold`] (with a [`Run`]: what to wait for, what to run, how
//! to stop it, what to keep) waits for the lock ([`crate::wait::wait`]), spawns the command into
//! its tree, arms the guard, supervises (forwarding the signals it is given), disarms once the
//! tree is empty and releases with the records; [`hold_handle`] does the same inside a lock held
//! by a handle. Their parts are public for programs that hold the lock by other means:
//! [`prepare_tree`] (the command's cgroup or subreaper, the reaper helper) →
//! [`run_command`] (spawn into the tree, arm the guard, supervise, disarm once the tree is empty)
//! → [`release`] (make sure the tree is gone, then the records and the revoke) or, in a lock held
//! by a handle, [`release_handle`] (the records, and the lease left to its TTL). These are the only
//! places that arm, disarm and revoke on a command's behalf: the `etcdlock` binary parses,
//! prints, writes metrics and picks exit codes around them.
//!
//! What happens is reported through one callback ([`Event`]); how a run ended is a typed
//! [`Outcome`] (how the command ended: [`Ended`]), whose `code()` is the documented exit code
//! (`70` when the lock was lost).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

use crate::error::Result;
use crate::handle::Handle;
use crate::holder::Holder;
use crate::lock::{self, Acquired};
use crate::process::reaper::{self, Rescue};
use crate::process::supervise::{self, Signals, Supervision};
use crate::process::tree::Tree;
use crate::record::{Ending, Retention, RunRecord};
use crate::session::{AbortOnDrop, Lease, Session};

/// etcdlock failed for a reason of its own (a bug, an unexpected OS error).
pub const INTERNAL: u8 = 1;
/// The lease was lost while the command ran; the command was stopped before it could expire.
pub const LOCK_LOST: u8 = 70;
/// Processes of the command's tree had to stop but refused the signal (EPERM): the promise could
/// not be kept for them (sysexits' EX_NOPERM).
pub const UNKILLABLE: u8 = 77;
/// `max_runtime` was reached and the command was stopped (as timeout(1) reports it).
pub const TIMED_OUT: u8 = 124;
/// The lock was held by others and the wait gave up (sysexits' EX_TEMPFAIL).
pub const CONFLICT: u8 = 75;
/// The lease was lost while waiting for the lock (sysexits' EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;

/// The code a shell reports for a process killed by signal `n`.
pub fn signal_code(n: i32) -> u8 {
    u8::try_from(128 + n).unwrap_or(255)
}

/// The exit code that reports `status` the way a shell would.
pub fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => signal_code(sig),
        _ => INTERNAL,
    }
}

/// What to execute and where: the program [`supervise::check_command`] found for `argv[0]`, the
/// argv, the variables to add, and the tree ([`prepare_tree`]) it runs as.
pub struct Command {
    /// The path found for `argv[0]`.
    pub program: PathBuf,
    /// argv (`argv[0]` included).
    pub argv: Vec<OsString>,
    /// Variables added to the command's environment (besides the lock's own, see
    /// [`run_command`]).
    pub env: Vec<(&'static str, String)>,
    /// The command's process tree.
    pub tree: Arc<Tree>,
    /// This run's `ETCDLOCK_RUN_ID` (see [`reaper::new_run_id`]).
    pub run_id: String,
}

impl Command {
    /// Find `argv[0]` (as [`supervise::check_command`] does, so a missing program is refused
    /// before any lock is taken), and set up its tree ([`prepare_tree`] with `rescue`, under a new
    /// run id): the command, ready for [`hold`].
    pub async fn prepare(argv: Vec<OsString>, rescue: Option<Rescue>) -> Result<Command> {
        let first = argv
            .first()
            .ok_or_else(|| crate::Error::Config("no command given".into()))?;
        let program = supervise::check_command(first)?;
        let run_id = reaper::new_run_id();
        let tree = prepare_tree(&run_id, rescue).await;
        Ok(Command {
            program,
            argv,
            env: Vec::new(),
            tree,
            run_id,
        })
    }
}

/// How to stop a command that must stop, besides the lease's own deadline (the guard's).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Sent first when the tree must stop (lease lost, `max_runtime`); SIGKILL follows after the
    /// session's grace.
    pub kill_signal: Signal,
    /// Stop the whole tree after this long.
    pub max_runtime: Option<Duration>,
    /// When the command exits, stop what it left running instead of holding the lock until it
    /// exits.
    pub kill_leftovers: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            kill_signal: Signal::SIGTERM,
            max_runtime: None,
            kill_leftovers: false,
        }
    }
}

/// What a run tells its caller while it goes on.
pub enum Event<'a> {
    /// Something happened while waiting for the lock ([`hold`] only).
    Wait(crate::wait::Event<'a>),
    /// The lock is ours ([`hold`] only), before the `once_per` look that may still skip the run.
    Acquired {
        /// The acquisition.
        acquired: &'a Acquired,
        /// How long the wait took.
        waited: Duration,
        /// Whether the lock was held by others when we queued.
        blocked: bool,
    },
    /// A run succeeded within `once_per` while this one waited: the command is not run.
    SkippedOncePer,
    /// The command is about to be spawned under the lock.
    Starting(&'a Acquired),
    /// Something happened to the command (the lock was lost, leftovers, unkillable processes).
    Command(supervise::Event<'a>),
    /// The run's records could not be written (the job itself is not affected).
    RecordsFailed(&'a str),
    /// The `once_per` marker could not be written: the next firing will run the job again.
    OnceMarkerFailed(&'a str),
    /// The lease could not be revoked: the lock frees when it expires.
    Unrevoked {
        /// The lease.
        lease: &'a Lease,
        /// Why.
        why: &'a str,
    },
}

/// How the command ended.
#[derive(Debug)]
pub enum Ended {
    /// The lease was lost before the command could start: it never ran.
    NotStarted(String),
    /// The command exited (with the whole tree gone).
    Exited(ExitStatus),
    /// The lease was lost; the command was stopped before it could expire.
    Lost,
    /// `max_runtime` was reached and the command was stopped.
    TimedOut,
    /// Processes of the tree refused to die (see [`UNKILLABLE`]).
    Unkillable,
}

impl Ended {
    /// The documented exit code for this ending: the command's own code (128+N for signal N),
    /// [`LOCK_LOST`], [`TIMED_OUT`], [`UNKILLABLE`].
    pub fn code(&self) -> u8 {
        match self {
            Ended::NotStarted(_) | Ended::Lost => LOCK_LOST,
            Ended::Exited(status) => status_code(*status),
            Ended::TimedOut => TIMED_OUT,
            Ended::Unkillable => UNKILLABLE,
        }
    }
}

/// See [`prepare_tree`].
const YIELDS_BEFORE_THE_THREAD: usize = 2;

/// Set up a command's tree (its cgroup, the reaper helper that `rescue` execs) on a thread of its
/// own, so that it can overlap the lease grant's round trip (the mkdir and the forks would
/// otherwise hold up the request on the runtime's thread). Returns once the cgroup is made; the
/// helper is forked on that thread meanwhile, and the spawn waits for it ([`Tree::wait_armed`]).
/// Which thread forks the helper does not matter (it is double-forked and watches a pipe, not its
/// parent).
pub async fn prepare_tree(run_id: &str, rescue: Option<Rescue>) -> Arc<Tree> {
    // Joined with the grant, this future is polled right after the grant's first poll, which only
    // queues the request: the connection's task still has to connect and write it. Yielding
    // (twice: once for the connect, once for the write once the socket is ready) lets it do so
    // before this thread spends ~0.05 ms starting another (issue 25).
    for _ in 0..YIELDS_BEFORE_THE_THREAD {
        tokio::task::yield_now().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (id, helper_rescue) = (run_id.to_owned(), rescue.clone());
    let thread = std::thread::Builder::new()
        .name("etcdlock-tree".into())
        .spawn(move || {
            let tree = Arc::new(Tree::prepare());
            // The tree is handed over before the helper is forked: the fork, its intermediate's
            // exit and the helper's first steps then overlap the queue's round trip instead of
            // holding it up (on 2 busy cores they often took longer than the grant's; issue 25).
            // What needs the helper waits for it (`Tree::wait_armed`): the spawn first.
            let arming = tree.arming();
            let _ = tx.send(tree.clone());
            tree.guard_against_our_death(&id, helper_rescue.as_ref());
            drop(arming);
        });
    if thread.is_ok() {
        if let Ok(tree) = rx.await {
            return tree;
        }
    }
    // No thread to be had (or it died): do it here.
    let tree = Arc::new(Tree::prepare());
    tree.guard_against_our_death(run_id, rescue.as_ref());
    tree
}

/// The session a run (or a term of an election) holds its lock with: a lease of `params.ttl()`
/// granted — or `claimed`, a lease granted already for this run (e.g. by [`crate::herd::claim`])
/// — registered with [`last_resort`] (a panic revokes it once the tree is dead), then kept alive
/// and guarded (`kill_signal` goes to an armed tree first). Overlaps [`prepare_tree`] well: join
/// the two.
///
/// Guarantees: the grant is idempotent (see [`Lease::grant`]); `params` are re-checked against the
/// TTL etcd granted, and a lease they do not fit is revoked before the error returns. No other
/// lease is left behind on any path.
pub async fn open_session(
    client: &crate::client::Client,
    claimed: Option<Lease>,
    params: crate::safety::SafetyParams,
    kill_signal: Signal,
) -> Result<Session> {
    let lease = match claimed {
        Some(lease) => lease,
        None => Lease::grant(client, params.ttl()).await?,
    };
    last_resort::lease_granted(client.config(), lease.id);
    Session::from_lease(client, lease, params, kill_signal).await
}

/// The variables a locked command gets (besides `command.env`).
fn environment(
    session: &Session,
    name: &str,
    acquired: &Acquired,
    command: &Command,
) -> Vec<(&'static str, String)> {
    let mut env = command.env.clone();
    env.extend([
        ("ETCDLOCK_NAME", name.to_owned()),
        ("ETCDLOCK_KEY", acquired.key.clone()),
        ("ETCDLOCK_LEASE_ID", format!("{:x}", session.lease().id)),
        ("ETCDLOCK_FENCING_TOKEN", acquired.fencing_token.to_string()),
        (
            "ETCDLOCK_CLUSTER_ID",
            format!("{:x}", session.client().cluster_id()),
        ),
        (reaper::RUN_ID_ENV, command.run_id.clone()),
        ("ETCD_LOCK_KEY", acquired.key.clone()),
        ("ETCD_LOCK_REV", acquired.revision.to_string()),
    ]);
    env
}

/// Run `command` while `session` holds `acquired` (the lock `name`), to the end of its whole
/// tree: spawn it into its tree, arm the guard with the tree (from then on the lease's
/// deadline kills it), forward the signals `signals` receives, enforce `options`, disarm once the
/// tree is empty. Never starts the command once the lease counts as lost.
///
/// The guarantee: when this returns, the tree is empty or its survivors are reported
/// ([`Ended::Unkillable`]); while it ran, it was stopped before the lease could expire.
///
/// Callable from any thread (a `spawn_blocking` thread, a multi-thread runtime's worker): the
/// fork happens on a thread that lives as long as the process (see
/// [`crate::process::spawn::spawn`]), so the command's `PR_SET_PDEATHSIG` fires only when the
/// process itself ends.
pub async fn run_command(
    session: &Session,
    signals: &mut Signals,
    name: &str,
    command: &Command,
    acquired: &Acquired,
    options: &Options,
    report: &dyn Fn(Event<'_>),
) -> Result<Ended> {
    let guard = session.guard();
    if let Some(reason) = guard.lost() {
        return Ok(Ended::NotStarted(reason));
    }
    let env = environment(session, name, acquired, command);
    let child = supervise::spawn(&command.program, &command.argv, &env, &command.tree)?;
    guard.arm(command.tree.clone());
    let supervision = Supervision {
        kill_signal: options.kill_signal,
        kill_after: guard.params().kill_after(),
        max_runtime: options.max_runtime,
        kill_leftovers: options.kill_leftovers,
    };
    let ended = supervise::supervise(
        child,
        signals,
        guard,
        &command.tree,
        &supervision,
        |event| report(Event::Command(event)),
    )
    .await;
    guard.disarm();
    let ended = ended?;
    Ok(if ended.unkillable {
        Ended::Unkillable
    } else if guard.lost().is_some() {
        Ended::Lost
    } else if ended.timed_out {
        Ended::TimedOut
    } else {
        Ended::Exited(ended.status)
    })
}

/// One run of a command under a lock, as [`hold`] does it: what to wait for, what to run, how to
/// stop it and what to keep.
pub struct Run<'a> {
    /// The lock, how to wait for it and the metadata our key stores (its `limit` and `shared` are
    /// the [`crate::wait::Kind`]). With `once_per`, [`hold`] adds the marker's write probe to the
    /// queue transaction's checks (a user who may not write it is refused before queueing).
    pub wait: crate::wait::Wait<'a>,
    /// What to run, and in which tree.
    pub command: &'a Command,
    /// How to stop it.
    pub options: Options,
    /// Skip the run if one succeeded within this period (checked again once the lock is ours),
    /// and mark the lock after a success.
    pub once_per: Option<Duration>,
    /// Keep the lock at least this long after it was acquired (unless a signal comes or the lock
    /// is lost).
    pub min_hold: Option<Duration>,
    /// The records' lease (see [`Retention::start`]); `None` in it: no records.
    pub retention: Retention,
}

impl<'a> Run<'a> {
    /// Wait as `wait` says, run `command` with the default [`Options`], no `once_per`, no
    /// `min_hold`, records kept as `retention` says.
    pub fn new(wait: crate::wait::Wait<'a>, command: &'a Command, retention: Retention) -> Run<'a> {
        Run {
            wait,
            command,
            options: Options::default(),
            once_per: None,
            min_hold: None,
            retention,
        }
    }
}

/// How a [`hold`] ended.
#[derive(Debug)]
pub enum Outcome {
    /// The patience ran out before the lock was ours; who held it, when asked.
    GaveUp(Option<Box<crate::lock::QueueInfo>>),
    /// A signal came while waiting.
    Cancelled(Signal),
    /// The lease was lost while waiting.
    LostWaiting(String),
    /// A run succeeded within `once_per` while this one waited: nothing ran.
    Skipped,
    /// The command ran (or the lock was lost just before it could start:
    /// [`Ended::NotStarted`]).
    Ran(Ended),
}

impl Outcome {
    /// The documented exit code for this outcome: [`Ended::code`] for a run, [`CONFLICT`] for a
    /// give-up, 128+N for signal N while waiting, [`UNAVAILABLE`] for a lease lost while waiting,
    /// 0 for a skip.
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Ran(ended) => ended.code(),
            Outcome::GaveUp(_) => CONFLICT,
            Outcome::Cancelled(sig) => signal_code(*sig as i32),
            Outcome::LostWaiting(_) => UNAVAILABLE,
            Outcome::Skipped => 0,
        }
    }
}

/// **The whole promise in one call**: wait for the lock ([`crate::wait::wait`]), spawn the
/// command into its tree, arm the guard, supervise (forwarding what `signals` receives, enforcing
/// `options`), disarm once the tree is empty, hold on for `min_hold`, and release ([`release`]:
/// the tree dead first, then the records and the revoke). `session` is consumed: every path,
/// errors included, ends with its lease revoked (or, if the tree would not die, left to expire
/// while the reaper helper goes on killing). The command's tree ([`Command::tree`], from
/// [`prepare_tree`]) is finished here ([`Tree::finish`]).
///
/// Guarantees: the command never starts once the lease counts as lost, is stopped before the
/// lease can expire, and is dead before the lease is revoked; a cancelled or failed wait leaves no
/// queue key. Everything that happens is reported through `report`; the ending is typed.
pub async fn hold(
    session: Session,
    signals: &mut Signals,
    mut run: Run<'_>,
    report: &dyn Fn(Event<'_>),
) -> Result<Outcome> {
    let name = run.wait.name;
    let result = hold_and_run(&session, signals, &mut run, report).await;
    let (how, outcome) = match result {
        Ok(Held::Ran {
            holding,
            ended,
            started,
            took,
        }) => {
            let how = match &ended {
                Ended::NotStarted(_) => Release::Abandon { lost: true },
                _ => Release::Ran {
                    acquired: holding.into_acquired(),
                    code: ended.code(),
                    started,
                    took,
                    records: Records {
                        holder: run.wait.holder,
                        retention: run.retention,
                        once_per: run.once_per,
                    },
                },
            };
            (how, Ok(Outcome::Ran(ended)))
        }
        Ok(Held::Skipped(holding)) => (
            Release::Skipped(holding.into_acquired()),
            Ok(Outcome::Skipped),
        ),
        Ok(Held::Not(outcome)) => {
            let lost = matches!(outcome, Outcome::LostWaiting(_));
            (Release::Abandon { lost }, Ok(outcome))
        }
        Err(e) => (Release::Abandon { lost: false }, Err(e)),
    };
    release(session, &run.command.tree, name, how, report).await;
    outcome
}

/// How the part of [`hold`] before the release ended.
enum Held {
    Not(Outcome),
    Skipped(crate::wait::Holding),
    Ran {
        holding: crate::wait::Holding,
        ended: Ended,
        started: SystemTime,
        took: Duration,
    },
}

async fn hold_and_run(
    session: &Session,
    signals: &mut Signals,
    run: &mut Run<'_>,
    report: &dyn Fn(Event<'_>),
) -> Result<Held> {
    use crate::wait::{self, Waited};
    let client = session.client();
    let name = run.wait.name;
    let mut checks = run.wait.checks.clone();
    if run.once_per.is_some() {
        // The marker must be writable: refused now, not after the command ran.
        checks.push(crate::record::write_probe(client, name));
    }
    let how = wait::Wait {
        checks,
        ..run.wait.clone()
    };
    let waited = wait::wait(
        client,
        session.lease(),
        session.guard(),
        signals,
        &how,
        &|event| report(Event::Wait(event)),
    )
    .await?;
    let holding = match waited {
        Waited::Acquired(holding) => holding,
        Waited::GaveUp(info) => return Ok(Held::Not(Outcome::GaveUp(info.map(Box::new)))),
        Waited::Cancelled(sig) => return Ok(Held::Not(Outcome::Cancelled(sig))),
        Waited::Lost(reason) => return Ok(Held::Not(Outcome::LostWaiting(reason))),
    };
    report(Event::Acquired {
        acquired: &holding.acquired,
        waited: holding.waited,
        blocked: holding.blocked,
    });
    let holder = run.wait.holder;
    if run.once_per.is_some()
        && lock::peek(client, name, holder.limit, holder.mode(), true)
            .await?
            .once_marker
    {
        report(Event::SkippedOncePer);
        return Ok(Held::Skipped(holding));
    }
    report(Event::Starting(&holding.acquired));
    // The command will run and its record be written: the records' lease is granted beside it.
    if session.guard().lost().is_none() {
        run.retention.grant_ahead();
    }
    let (acquired_at, started) = (tokio::time::Instant::now(), SystemTime::now());
    let ended = run_command(
        session,
        signals,
        name,
        run.command,
        &holding.acquired,
        &run.options,
        report,
    )
    .await?;
    let took = acquired_at.elapsed();
    if let (Some(min_hold), false) = (run.min_hold, matches!(ended, Ended::NotStarted(_))) {
        hold_on(signals, session, acquired_at + min_hold).await;
    }
    Ok(Held::Ran {
        holding,
        ended,
        started,
        took,
    })
}

/// `min_hold`: keep the lock until `until`, unless told to stop or the lease is lost.
async fn hold_on(signals: &mut Signals, session: &Session, until: tokio::time::Instant) {
    if until <= tokio::time::Instant::now() {
        return;
    }
    tracing::info!("holding the lock for min_hold");
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {}
        _ = signals.recv_cancel() => {}
        _ = session.lost() => {}
    }
}

/// [`hold`] for a lock held by a handle (`etcdlock run --handle`): no wait — the handle was
/// verified by the caller (`revision` and `value` are its key's, as [`Handle::verify`] read
/// them) — then the command run as [`run_command`] runs it, with the handle's key watched (any
/// change to it is loss), and [`release_handle`]: the record written while the lock stays held,
/// the lease left to its TTL (revoked if the lock was lost). `session` is consumed.
#[allow(clippy::too_many_arguments)]
pub async fn hold_handle(
    session: Session,
    signals: &mut Signals,
    handle: &Handle,
    (revision, value): (i64, Vec<u8>),
    command: &Command,
    options: &Options,
    (holder, retention): (&Holder, Retention),
    report: &dyn Fn(Event<'_>),
) -> Result<Ended> {
    let acquired = Acquired {
        key: handle.key(),
        fencing_token: handle.fencing_token,
        revision,
    };
    let watch = watch_handle_key(&session, handle, &acquired, value);
    report(Event::Starting(&acquired));
    let started = (std::time::Instant::now(), SystemTime::now());
    let ended = run_command(
        &session,
        signals,
        &handle.name,
        command,
        &acquired,
        options,
        report,
    )
    .await;
    let ran = match &ended {
        Ok(Ended::NotStarted(_)) | Err(_) => None,
        Ok(ended) => {
            let records = Records {
                holder,
                retention,
                once_per: None,
            };
            Some((ended.code(), acquired, records, started))
        }
    };
    release_handle(session, &command.tree, handle, ran, report).await;
    drop(watch);
    ended
}

/// What a run's records say and how long they are kept.
pub struct Records<'a> {
    /// The run's metadata (the lock key's holder).
    pub holder: &'a Holder,
    /// The records' lease (see [`Retention::start`]); `None` in it: no records.
    pub retention: Retention,
    /// After a success, mark the lock so that runs within this period skip (see
    /// [`crate::lock::peek`]).
    pub once_per: Option<Duration>,
}

/// How a hold ended, for [`release`].
pub enum Release<'a> {
    /// The lock was never held (gave up, cancelled, an error): revoke the lease; `lost` when the
    /// guard had declared it lost (a failed revoke is then no news).
    Abandon {
        /// The lease counted as lost.
        lost: bool,
    },
    /// The lock was held but the run skipped (`once_per`): give it up, no record.
    Skipped(Acquired),
    /// The command ran under the lock.
    Ran {
        /// The lock.
        acquired: Acquired,
        /// [`Ended::code`].
        code: u8,
        /// When the command started.
        started: SystemTime,
        /// How long it held the lock.
        took: Duration,
        /// Its records.
        records: Records<'a>,
    },
}

/// End a run: the command's tree must be dead before the lease goes, so whatever is left of it is
/// killed first (bounded, 3 s); if it will not die, the lease is left to expire (the reaper
/// helper goes on killing) and nothing is revoked. Then the guard stops, the lock goes with the
/// run's records and the lease is revoked; the tree's cgroup is removed and the helper let go
/// while etcd answers. Never fails: what went wrong is reported as [`Event`]s.
pub async fn release(
    session: Session,
    tree: &Tree,
    name: &str,
    how: Release<'_>,
    report: &dyn Fn(Event<'_>),
) {
    let dead = tree.stop_all(Duration::from_secs(3));
    session.guard().stop();
    let talk = async move {
        match how {
            Release::Ran {
                acquired,
                code,
                started,
                took,
                records,
            } if dead => {
                record_and_release(
                    session,
                    name,
                    acquired,
                    records,
                    (started, took, code),
                    report,
                )
                .await;
            }
            Release::Ran { .. } => {}
            Release::Skipped(acquired) => {
                let _ = lock::release(session.client(), name, &acquired, None).await;
                if dead {
                    revoke(session, false, report).await;
                }
            }
            Release::Abandon { lost } => {
                if dead {
                    revoke(session, lost, report).await;
                }
            }
        }
    };
    if !dead {
        // Something of the tree would not die: nothing was revoked (the lease is left to its
        // TTL), and `finish` drops the helper unreleased, which makes it go on killing.
        talk.await;
        tree.finish();
        return;
    }
    // The tree is gone, so its cleanup (the cgroup's rmdir, the helper let go: ~0.1 ms) needs
    // nothing of etcd: it is done while etcd answers, not after (issue 25). After one yield, so
    // that the connection's task has written the first request (the revoke, which the next holder
    // waits for) before this thread spends time on the cleanup.
    let cleanup = async {
        tokio::task::yield_now().await;
        tree.finish();
    };
    tokio::join!(talk, cleanup);
}

/// Write the run's record and give up the lock. Bounded (3 s per request). Where the record must
/// know whether we still held our key, it goes in the release transaction and the lease is
/// revoked afterwards (two round trips): after a success under `once_per` (the period's marker
/// must exist before anyone else can take the lock, and only if we held it to the end), and after
/// the guard saw the lock lost (the key may be gone and a later holder running: the run then goes
/// to `last-run` only, marked lost, never over `last-success`). Otherwise the record goes beside
/// the revoke, in one round trip (see [`crate::lock::release_with_records`]).
async fn record_and_release(
    session: Session,
    name: &str,
    acquired: Acquired,
    records: Records<'_>,
    (started, took, code): (SystemTime, Duration, u8),
    report: &dyn Fn(Event<'_>),
) {
    let client = session.client().clone();
    let (records_lease, no_lease) = match records.retention.lease().await {
        Ok(lease) => (lease, None),
        Err(why) => (None, Some(why)),
    };
    // What the guard saw: it latched a loss (the command was stopped, exit 70, or the min hold
    // ended early). A command that exits 70 by itself has not lost the lock.
    let lost = session.guard().lost().is_some();
    let mut record = RunRecord::new(records.holder, started, took);
    record.exit_code = i32::from(code);
    record.fencing_token = acquired.fencing_token;
    record.lost = lost;
    record.once_per_s = records.once_per.map(|p| p.as_secs());
    let success = code == 0;
    let mut ending = Ending {
        record,
        success,
        records_lease,
        once_lease: None,
    };
    let marker_ttl = records
        .once_per
        .filter(|_| success)
        .and_then(|p| once_ttl(p, took));
    let recorded = if lost || marker_ttl.is_some() {
        let marker = match marker_ttl {
            Some(ttl) => Lease::grant(&client, ttl).await.map_err(|e| e.to_string()),
            None => Err(String::new()),
        };
        ending.once_lease = marker.as_ref().ok().map(|l| l.id);
        let released = tokio::time::timeout(
            Duration::from_secs(3),
            lock::release(&client, name, &acquired, Some(&ending)),
        )
        .await;
        let released = match released {
            Ok(Ok(held)) => Ok(held),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 3s".to_owned()),
        };
        if marker_ttl.is_some() && !lost {
            let why = match (&marker, &released) {
                (Err(why), _) | (_, Err(why)) => Some(why.clone()),
                (Ok(_), Ok(false)) => Some("the lock key was no longer ours".to_owned()),
                (Ok(_), Ok(true)) => None,
            };
            if let Some(why) = why {
                report(Event::OnceMarkerFailed(&why));
            }
        }
        if let (Ok(marker), false) = (marker, matches!(released, Ok(true))) {
            let _ = marker.revoke(&client).await;
        }
        revoke(session, lost, report).await;
        match released {
            // The marker's event said it all.
            Err(_) if marker_ttl.is_some() => Ok(()),
            other => other.map(|_| ()),
        }
    } else {
        let lease = *session.lease();
        tracing::debug!("releasing: the run's records beside the lease's revoke");
        let (recorded, revoked) = lock::release_with_records(session, name, &ending).await;
        tell_if_unrevoked(&lease, revoked, false, report);
        recorded
    };
    if let (Err(_), Some(lease)) = (&recorded, records_lease) {
        crate::record::revoke_if_unused(&client, lease).await;
    }
    match (recorded, no_lease) {
        (Err(why), _) | (Ok(()), Some(why)) if !lost => report(Event::RecordsFailed(&why)),
        _ => {}
    }
}

/// The once-marker's TTL: what is left of the period counted from the start of the run (rounded
/// up to whole seconds, so the marker never ends early), or none if the run took the whole period.
/// Counting from the start makes `once_per` a per-slot guarantee whatever the run takes: with
/// `*/5` in cron and `--once-per 4m`, a 3-minute run at :00 does not make the :05 firings skip,
/// as a marker of the full period written at the end would.
fn once_ttl(period: Duration, took: Duration) -> Option<Duration> {
    let left = period.checked_sub(took).filter(|d| !d.is_zero())?;
    Some(Duration::from_secs(
        left.as_secs() + u64::from(left.subsec_nanos() > 0),
    ))
}

/// Revoke the session's lease (its queue key, if still there, goes with it).
async fn revoke(session: Session, lost: bool, report: &dyn Fn(Event<'_>)) {
    let lease = *session.lease();
    tell_if_unrevoked(&lease, session.close().await, lost, report);
}

/// Report a failed revoke. After a lost lock the lease is gone or about to be, and etcd is often
/// unreachable: a failed revoke is then no news.
fn tell_if_unrevoked<T>(
    lease: &Lease,
    revoked: std::result::Result<T, String>,
    lost: bool,
    report: &dyn Fn(Event<'_>),
) {
    if let (Err(why), false) = (revoked, lost) {
        report(Event::Unrevoked { lease, why: &why });
    }
}

/// Watch a handle's key while a command runs in it: any change to the key (deleted, put over,
/// detached from the lease) is loss. The watch ends when the returned value is dropped.
pub fn watch_handle_key(
    session: &Session,
    handle: &Handle,
    acquired: &Acquired,
    value: Vec<u8>,
) -> AbortOnDrop<()> {
    let own = lock::OwnKey::new(
        acquired.key.clone(),
        acquired.fencing_token,
        handle.lease_id,
        value,
    );
    AbortOnDrop(tokio::spawn(lock::watch_own_key(
        session.client().clone(),
        own,
        acquired.revision,
        session.guard().clone(),
    )))
}

/// End a run inside a lock held by a handle: kill what is left of the tree (bounded, 3 s); if the
/// tree is gone and the command ran (`code`), write its record while keeping the lock. A lost
/// lock's lease is revoked (and a key put over it removed); otherwise the lease is left to its TTL
/// (the handle's holder renews or releases it).
pub async fn release_handle(
    session: Session,
    tree: &Tree,
    handle: &Handle,
    ran: Option<(u8, Acquired, Records<'_>, (std::time::Instant, SystemTime))>,
    report: &dyn Fn(Event<'_>),
) {
    let dead = tree.stop_all(Duration::from_secs(3));
    if let (Some((code, acquired, records, started)), true) = (ran, dead) {
        record_kept(
            &session,
            &handle.name,
            &acquired,
            records,
            started,
            code,
            report,
        )
        .await;
    }
    let client = session.client().clone();
    let lost = session.guard().lost().is_some();
    if dead && lost {
        // A key put over is left without our lease: remove it now that the command is gone,
        // so that it does not block etcdctl lock for ever.
        let _ = handle.remove_detached(&client).await;
    }
    if lost {
        // The lease holds nothing any more (its key is gone or someone else's): revoke it rather
        // than leave it to its TTL. (It was ours: the handle was verified.)
        let _ = session.close().await;
    } else {
        session.detach();
    }
    tree.finish();
}

/// The run's record, keeping the lock (bounded; a failure is one event).
async fn record_kept(
    session: &Session,
    name: &str,
    acquired: &Acquired,
    records: Records<'_>,
    (at, started): (std::time::Instant, SystemTime),
    code: u8,
    report: &dyn Fn(Event<'_>),
) {
    let mut record = RunRecord::new(records.holder, started, at.elapsed());
    record.exit_code = i32::from(code);
    record.fencing_token = acquired.fencing_token;
    record.lost = code == LOCK_LOST;
    let client = session.client();
    let records_lease = match records.retention.lease().await {
        Ok(None) => return,
        Ok(Some(lease)) => lease,
        Err(why) => return report(Event::RecordsFailed(&why)),
    };
    let ending = Ending {
        record,
        success: code == 0,
        records_lease: Some(records_lease),
        once_lease: None,
    };
    let written = tokio::time::timeout(
        Duration::from_secs(3),
        lock::record_only(client, name, acquired, &ending),
    )
    .await;
    let why = match written {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 3s".to_owned(),
    };
    crate::record::revoke_if_unused(client, records_lease).await;
    if code != LOCK_LOST {
        report(Event::RecordsFailed(&why));
    }
}

/// The last resort for a program that aborts on panic (as the `etcdlock` binary does): a registry
/// of the lease and the tree a run holds, and [`last_resort::clean_up`], which a panic hook calls
/// to keep the promise even then — the tree killed and confirmed gone (bounded, 3 s) before the
/// lease is revoked from a fresh thread with its own runtime and connection (bounded, 5 s); if
/// the tree cannot be confirmed gone, the lease is left to expire (the reaper helper goes on
/// killing). Process-wide: for a program that runs one command at a time.
pub mod last_resort {
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use crate::client::Config;
    use crate::process::tree::Tree;

    #[derive(Default)]
    struct Registry {
        lease: Option<(Config, i64)>,
        tree: Option<Arc<Tree>>,
    }

    fn registry() -> &'static Mutex<Registry> {
        static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
        REGISTRY.get_or_init(Mutex::default)
    }

    fn update(f: impl FnOnce(&mut Registry)) {
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r);
    }

    /// Lease `id` (on the cluster of `config`) is held from now on: [`clean_up`] revokes it.
    pub fn lease_granted(config: &Config, id: i64) {
        update(|r| r.lease = Some((config.clone(), id)));
    }

    /// The lease was revoked (or is about to be): nothing left to revoke.
    pub fn lease_released() {
        update(|r| r.lease = None);
    }

    /// The command runs as `tree` (`None` once it is gone).
    pub fn tracking(tree: Option<Arc<Tree>>) {
        update(|r| r.tree = tree);
    }

    /// Kill the registered tree, then revoke the registered lease; `Some(id)` if lease `id` was
    /// to be revoked and could not be (it then frees when it expires). Safe in a panic hook: the
    /// registry is only tried, never waited for.
    pub fn clean_up() -> Option<i64> {
        let (lease, tree) = match registry().try_lock() {
            Ok(mut r) => (r.lease.take(), r.tree.take()),
            Err(_) => (None, None),
        };
        let dead = tree.as_deref().is_none_or(|t| {
            let dead = t.stop_all(Duration::from_secs(3));
            t.finish();
            dead
        });
        match (dead, lease) {
            (true, Some((config, id))) => (!revoke(config, id)).then_some(id),
            _ => None,
        }
    }

    /// Revoke lease `id` on a thread of its own, waiting at most 5 s; whether it was revoked.
    fn revoke(config: Config, id: i64) -> bool {
        crate::session::revoke_on_own_thread(config, id, Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shell_convention() {
        assert_eq!(signal_code(9), 137);
        assert_eq!(signal_code(200), 255);
        assert_eq!(status_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(status_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(Ended::Lost.code(), LOCK_LOST);
    }

    #[test]
    fn the_once_marker_covers_what_is_left_of_the_period_from_the_start() {
        let s = Duration::from_secs;
        assert_eq!(once_ttl(s(240), s(180)), Some(s(60)));
        assert_eq!(once_ttl(s(240), Duration::from_millis(1500)), Some(s(239)));
        assert_eq!(once_ttl(s(3600), Duration::ZERO), Some(s(3600)));
        assert_eq!(once_ttl(s(60), s(60)), None);
        assert_eq!(once_ttl(s(60), s(90)), None);
    }
}
