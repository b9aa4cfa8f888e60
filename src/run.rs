//! The `run` subcommand: the life cycle of one locked command.
//!
//! connect → grant lease → start keep-alive and guard → queue (give up at once with `-n`) → wait
//! with progress (give up after `-w`) → spawn → supervise → hold on for `--min-hold` → release.
//! Every path after the grant goes through the same release (stop keep-alive, revoke), so no key or
//! lease is left behind and the next waiter starts at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use crate::child::{self, Event, Signals, Supervision};
use crate::cli::RunArgs;
use crate::etcd::{self, Check, Etcd};
use crate::exit::{self, fail};
use crate::guard::Guard;
use crate::lease::{self, Lease};
use crate::lock::{self, Acquired, Queued};
use crate::meta::Holder;
use crate::metrics::Metrics;
use crate::output;
use crate::progress::{self, Progress};
use crate::reaper;
use crate::tree::Tree;

pub async fn run(config: etcd::Config, args: RunArgs) -> Result<u8> {
    if let Some(path) = &args.metrics_file {
        crate::metrics::check_writable(path)?;
    }
    let mut metrics = Metrics::new(args.metrics_file.clone(), &args.name);
    let result = run_locked(config, &args, &mut metrics).await;
    let code = match &result {
        Ok(code) => *code,
        Err(e) => exit::code_of(e),
    };
    metrics.ended(code, code == exit::LOCK_LOST);
    result
}

async fn run_locked(config: etcd::Config, args: &RunArgs, metrics: &mut Metrics) -> Result<u8> {
    let argv = args.argv();
    let program = child::check_command(&argv[0])?;
    check_kill_after(args, args.ttl)?;
    let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
    if crate::meta::meta_size(&meta) > crate::meta::MAX_STORED {
        return Err(fail(
            exit::USAGE,
            format!(
                "--meta takes {} bytes in all; at most {} are stored in the lock key",
                crate::meta::meta_size(&meta),
                crate::meta::MAX_STORED
            ),
        ));
    }
    let mut signals = Signals::install()?;

    let etcd = tokio::select! {
        etcd = Etcd::connect(config, Check::Lazy) => etcd?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    let run_id = reaper::new_run_id();
    // Not cancellable: bounded by the dial timeout, and cancelling could orphan a lease. Its round
    // trip hides setting up the command's tree (cgroup, reaper helper): yield once so that the
    // request is on the wire before the forks.
    let (lease, tree) = tokio::join!(Lease::grant(&etcd, args.ttl), async {
        tokio::task::yield_now().await;
        let tree = Arc::new(Tree::prepare());
        tree.guard_against_our_death(&run_id);
        tree
    });
    crate::emergency::tracking(Some(tree.clone()));
    let lease = match lease {
        Ok(lease) => lease,
        Err(e) => {
            tree.finish();
            return Err(e);
        }
    };
    crate::emergency::lease_granted(etcd.config(), lease.id);
    let command = Command {
        program: &program,
        argv: &argv,
        tree: &tree,
        run_id: &run_id,
    };
    let result = hold(&etcd, &lease, &mut signals, args, &command, metrics).await;
    // Normally the tree is gone already; after an error, the command must be dead before the
    // lease goes. If it will not die, leave the lease to expire (the reaper helper goes on).
    let dead = tree.stop_all(Duration::from_secs(3));
    crate::emergency::tracking(None);
    // After a lost lock the lease is gone or about to be, and etcd is often unreachable: a
    // failed revoke is then no news (the lost-lock line said it all).
    let lost = matches!(result, Ok(exit::LOCK_LOST));
    if dead {
        lease.revoke(&etcd, lost).await;
    }
    crate::emergency::lease_released();
    result
}

/// --kill-after must leave the child at least half the TTL between renewals going quiet and the kill.
fn check_kill_after(args: &RunArgs, ttl: Duration) -> Result<()> {
    let kill_after = args.kill_after_for(ttl);
    if kill_after * 2 >= ttl {
        return Err(fail(
            exit::USAGE,
            format!(
                "--kill-after {} must be less than half the TTL ({})",
                humantime::format_duration(kill_after),
                humantime::format_duration(ttl)
            ),
        ));
    }
    Ok(())
}

/// Everything between the grant and the revoke.
async fn hold(
    etcd: &Etcd,
    lease: &Lease,
    signals: &mut Signals,
    args: &RunArgs,
    command: &Command<'_>,
    metrics: &mut Metrics,
) -> Result<u8> {
    // The server may grant more than we asked for, never less; re-check against what it granted.
    check_kill_after(args, lease.ttl)?;
    let kill_after = args.kill_after_for(lease.ttl);
    let guard = Guard::start(lease.granted_at + lease.ttl, kill_after, args.kill_signal);
    let _keeper = AbortOnDrop(tokio::spawn(lease::keep_alive(
        etcd.clone(),
        *lease,
        guard.clone(),
    )));
    let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
    let recorded: &[std::ffi::OsString] = match args.record_command {
        crate::cli::RecordCommand::Full => command.argv,
        crate::cli::RecordCommand::Program => command.argv.get(..1).unwrap_or_default(),
        crate::cli::RecordCommand::None => &[],
    };
    let holder = Holder::current(recorded, args.limit, meta);
    let result = async {
        let acquired = match acquire(etcd, lease, signals, args, &guard, &holder).await? {
            Ok(acquired) => acquired,
            Err(code) => return Ok(code),
        };
        let acquired_at = Instant::now();
        metrics.started();
        let code = run_child(
            etcd, lease, signals, args, command, &guard, &acquired, kill_after,
        )
        .await?;
        if let Some(min_hold) = args.min_hold {
            hold_on(signals, &guard, acquired_at + min_hold).await;
        }
        Ok(code)
    }
    .await;
    guard.stop();
    result
}

/// Queue and wait. `Ok(Err(code))` when we end without the lock (gave up, cancelled).
async fn acquire(
    etcd: &Etcd,
    lease: &Lease,
    signals: &mut Signals,
    args: &RunArgs,
    guard: &Arc<Guard>,
    holder: &Holder,
) -> Result<Result<Acquired, u8>> {
    let lost_while_waiting = |reason: String| {
        fail(
            exit::UNAVAILABLE,
            format!("lost the lease while waiting for {}: {reason}", args.name),
        )
    };
    let (queued, acquired, noticed) = tokio::select! {
        r = lock::enqueue(etcd, &args.name, lease, holder) => r?,
        reason = guard.wait_lost() => return Err(lost_while_waiting(reason)),
    };
    warn_about_name(&args.name, noticed.related_lock.as_deref());
    if let Some(acquired) = acquired {
        return Ok(Ok(acquired));
    }
    crate::emergency::test_point("waiting");
    if args.no_wait || args.timeout.is_some_and(|t| t.is_zero()) {
        return Ok(Err(give_up(etcd, &queued, args, "--no-wait").await));
    }
    let mut progress = Progress::new(&args.name, output::is_quiet());
    let mut waiter = queued.clone();
    let wait = waiter.wait(etcd);
    tokio::pin!(wait);
    let give_up_at = args.timeout.map(|t| Instant::now() + t);
    let mut ticks = tokio::time::interval(progress.tick(args.progress_interval));
    // Progress costs a queue read per tick; with nothing to show, do not ask.
    let show_progress = !output::is_quiet();
    loop {
        tokio::select! {
            acquired = &mut wait => {
                let acquired = acquired?;
                tokio::spawn(queued.clone().mark_acquired(etcd.clone(), holder.clone()));
                let waited = crate::meta::short_duration(progress.waited());
                progress.finish(Some(format!("acquired {} after {waited}", args.name)));
                return Ok(Ok(acquired));
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                progress.finish(None);
                let why = format!("--timeout {}", humantime::format_duration(args.timeout.unwrap_or_default()));
                return Ok(Err(give_up(etcd, &queued, args, &why).await));
            }
            _ = ticks.tick(), if show_progress => {
                let info = lock::queue_info(etcd, &queued).await.ok().flatten();
                progress.update(info.as_ref());
            }
            reason = guard.wait_lost() => {
                progress.finish(None);
                return Err(lost_while_waiting(reason));
            }
            sig = signals.recv_cancel() => {
                progress.finish(None);
                output::info(format!("{sig} received while waiting for {}; leaving the queue", args.name));
                return Ok(Err(exit::signal(sig as i32)));
            }
        }
    }
}

/// Names that are legal but likely typos: a trailing slash, or a live lock whose name is a prefix
/// of ours or the other way round (different locks, though `etcdctl lock` would queue one behind
/// the other's keys).
fn warn_about_name(name: &str, related: Option<&str>) {
    if name.ends_with('/') && name.len() > 1 {
        output::info(format!(
            "note: {name} ends in '/': it is a different lock from {} (its keys are {name}/<lease>)",
            name.trim_end_matches('/')
        ));
    }
    if let Some(other) = related {
        output::info(format!(
            "note: a lock named {other} is held too; {other} and {name} are different locks \
             (etcdlock never mixes them up, but `etcdctl lock` on the shorter name also waits for the longer one's holders)"
        ));
    }
}

/// One line naming the holder (none with `-E 0`: skipping is then the expected, silent outcome),
/// then the conflict exit code. Leaving the queue is the caller's revoke.
async fn give_up(etcd: &Etcd, queued: &Queued, args: &RunArgs, why: &str) -> u8 {
    if args.conflict_exit_code == 0 {
        return 0;
    }
    let state = match lock::queue_info(etcd, queued).await {
        Ok(Some(info)) => progress::describe_queue(&info),
        _ => "held by someone else".to_owned(),
    };
    output::info(format!("{} is {state}; giving up ({why})", args.name));
    args.conflict_exit_code
}

#[allow(clippy::too_many_arguments)]
async fn run_child(
    etcd: &Etcd,
    lease: &Lease,
    signals: &mut Signals,
    args: &RunArgs,
    command: &Command<'_>,
    guard: &Arc<Guard>,
    acquired: &Acquired,
    kill_after: Duration,
) -> Result<u8> {
    tracing::info!(
        key = acquired.key,
        fencing_token = acquired.fencing_token,
        "lock acquired"
    );
    let _watcher = AbortOnDrop(tokio::spawn(lock::watch_own_key(
        etcd.clone(),
        acquired.key.clone(),
        acquired.fencing_token,
        acquired.revision,
        guard.clone(),
    )));
    if let Some(reason) = guard.lost() {
        return Err(fail(
            exit::LOCK_LOST,
            format!(
                "lock {} lost before the command started: {reason}",
                args.name
            ),
        ));
    }
    let tree = command.tree;
    let mut env = etcd.config().child_env();
    env.extend([
        ("ETCDLOCK_NAME", args.name.clone()),
        ("ETCDLOCK_KEY", acquired.key.clone()),
        ("ETCDLOCK_LEASE_ID", format!("{:x}", lease.id)),
        ("ETCDLOCK_FENCING_TOKEN", acquired.fencing_token.to_string()),
        ("ETCDLOCK_CLUSTER_ID", format!("{:x}", etcd.cluster_id())),
        (reaper::RUN_ID_ENV, command.run_id.to_owned()),
        ("ETCD_LOCK_KEY", acquired.key.clone()),
        ("ETCD_LOCK_REV", acquired.revision.to_string()),
    ]);
    let child = child::spawn(command.program, command.argv, &env, tree)?;
    guard.arm(tree.clone());
    // Test hook: a bug one second into the command's run (see emergency.rs).
    let _bug = std::env::var_os("ETCDLOCK_TEST_PANIC").map(|_| {
        AbortOnDrop(tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            crate::emergency::test_point("running");
        }))
    });
    let name = &args.name;
    let supervision = Supervision {
        kill_signal: args.kill_signal,
        kill_after,
        max_runtime: args.max_runtime(),
        kill_leftovers: args.kill_leftovers,
    };
    let ended = child::supervise(
        child,
        signals,
        guard,
        tree,
        &supervision,
        |event| match event {
            Event::Lost(reason) => output::warn(format!(
                "lock {name} lost: {reason}; stopping the command ({}, SIGKILL after {})",
                args.kill_signal,
                humantime::format_duration(kill_after)
            )),
            Event::Leftovers {
                status,
                members,
                killing,
            } => {
                let how = describe_status(status);
                let them = crate::tree::describe(members);
                if killing {
                    output::info(format!(
                        "{name}: command {how}; stopping {them} (--kill-leftovers)"
                    ));
                } else {
                    let until = if members.len() == 1 {
                        "it exits"
                    } else {
                        "they exit"
                    };
                    output::warn(format!(
                    "{name}: command {how}; {them} still running — holding the lock until {until}"
                ));
                }
            }
        },
    )
    .await;
    guard.disarm();
    let ended = ended?;
    if guard.lost().is_some() {
        return Ok(exit::LOCK_LOST);
    }
    if ended.timed_out {
        output::warn(format!(
            "the command ran longer than --max-runtime {}; stopped it",
            humantime::format_duration(args.max_runtime().unwrap_or_default())
        ));
        return Ok(exit::TIMED_OUT);
    }
    Ok(child::exit_code(ended.status))
}

/// "exited 0" / "was killed by SIGKILL", as the leftovers line says it.
fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {sig}"),
        },
        _ => "ended".to_owned(),
    }
}

/// --min-hold: keep the lock until `until`, unless told to stop or the lease is lost.
async fn hold_on(signals: &mut Signals, guard: &Guard, until: Instant) {
    if until <= Instant::now() {
        return;
    }
    tracing::info!("holding the lock for --min-hold");
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {}
        _ = signals.recv_cancel() => {}
        _ = guard.wait_lost() => {}
    }
}

/// What to execute: the resolved program and the argv the user gave, and the tree it will run as.
struct Command<'a> {
    program: &'a std::path::Path,
    argv: &'a [std::ffi::OsString],
    tree: &'a Arc<Tree>,
    run_id: &'a str,
}

/// Aborts a background task when the owning scope ends, on every path.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
