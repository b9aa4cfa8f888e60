//! The command under the lock: its environment, spawning it into its tree, supervising it to the
//! end, and what etcdlock says about how it ended.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcdlock::lock::Acquired;
use etcdlock::process::reaper;
use etcdlock::process::supervise::{self, Event, Signals, Supervision};
use etcdlock::process::tree::{self, Tree};
use etcdlock::session::AbortOnDrop;
use etcdlock::Session;

use crate::cli::RunArgs;
use crate::exit::{self, fail};
use crate::output;

/// What to execute: the resolved program and the argv the user gave, and the tree it runs as.
pub struct Command<'a> {
    /// The path found for argv[0] before locking.
    pub program: &'a Path,
    /// argv (`argv[0]` included).
    pub argv: &'a [OsString],
    /// The command's process tree (prepared before the lock was taken).
    pub tree: &'a Arc<Tree>,
    /// This run's `ETCDLOCK_RUN_ID`.
    pub run_id: &'a str,
    /// Variables the connection settings add (see config.rs).
    pub connection_env: Vec<(&'static str, String)>,
}

/// The variables the command gets (besides etcdlock's own environment).
fn environment(
    session: &Session,
    name: &str,
    acquired: &Acquired,
    command: &Command<'_>,
) -> Vec<(&'static str, String)> {
    let mut env = command.connection_env.clone();
    env.extend([
        ("ETCDLOCK_NAME", name.to_owned()),
        ("ETCDLOCK_KEY", acquired.key.clone()),
        ("ETCDLOCK_LEASE_ID", format!("{:x}", session.lease().id)),
        ("ETCDLOCK_FENCING_TOKEN", acquired.fencing_token.to_string()),
        (
            "ETCDLOCK_CLUSTER_ID",
            format!("{:x}", session.client().cluster_id()),
        ),
        (reaper::RUN_ID_ENV, command.run_id.to_owned()),
        ("ETCD_LOCK_KEY", acquired.key.clone()),
        ("ETCD_LOCK_REV", acquired.revision.to_string()),
    ]);
    env
}

/// Run the command while holding the lock; the exit code.
pub async fn run(
    session: &Session,
    signals: &mut Signals,
    args: &RunArgs,
    command: &Command<'_>,
    acquired: &Acquired,
) -> Result<u8> {
    tracing::info!(
        key = acquired.key,
        fencing_token = acquired.fencing_token,
        "lock acquired"
    );
    let guard = session.guard();
    if let Some(reason) = guard.lost() {
        let name = &args.name;
        let why = format!("lock {name} lost before the command started: {reason}");
        return Err(fail(exit::LOCK_LOST, why));
    }
    let env = environment(session, &args.name, acquired, command);
    let child = supervise::spawn(command.program, command.argv, &env, command.tree)?;
    guard.arm(command.tree.clone());
    let _bug = test_bug();
    let kill_after = guard.params().kill_after();
    let supervision = Supervision {
        kill_signal: args.kill_signal,
        kill_after,
        max_runtime: args.max_runtime(),
        kill_leftovers: args.kill_leftovers,
    };
    let report = |event: Event<'_>| say(&args.name, args, guard, event);
    let ended =
        supervise::supervise(child, signals, guard, command.tree, &supervision, report).await;
    guard.disarm();
    let ended = ended?;
    if ended.unkillable {
        return Ok(exit::UNKILLABLE);
    }
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
    Ok(exit::of_status(ended.status))
}

/// Test hook: a bug one second into the command's run (see emergency.rs).
fn test_bug() -> Option<AbortOnDrop<()>> {
    std::env::var_os("ETCDLOCK_TEST_PANIC").map(|_| {
        AbortOnDrop(tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            crate::emergency::test_point("running");
        }))
    })
}

/// What the user reads about the supervision's events.
fn say(name: &str, args: &RunArgs, guard: &etcdlock::Guard, event: Event<'_>) {
    match event {
        // When SIGKILL comes is the guard's clock, not the nominal grace: after a freeze the
        // grace may be over already, and SIGKILL went out at once.
        Event::Lost(reason) => output::warn(match guard.kill_in() {
            left if left.is_zero() => {
                format!("lock {name} lost: {reason}; killing the command now (SIGKILL)")
            }
            left => format!(
                "lock {name} lost: {reason}; stopping the command ({}, SIGKILL in {:.1}s)",
                args.kill_signal,
                left.as_secs_f64()
            ),
        }),
        Event::Unkillable(members) => output::warn(format!(
            "cannot stop {} of {name}'s command: permission denied (another user's process, e.g. setuid or sudo); it may run on after the lock passes to the next holder",
            tree::describe(members)
        )),
        Event::Leftovers {
            status,
            members,
            killing,
        } => {
            let how = describe_status(status);
            let them = tree::describe(members);
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
    }
}

/// "exited 0" / "was killed by SIGKILL", as the leftovers line says it.
fn describe_status(status: ExitStatus) -> String {
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
