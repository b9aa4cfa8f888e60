//! The command under the lock, as the user reads about it: the run itself is the library's
//! ([`etcdlock::runner::hold`]: wait, spawn, arm, supervise, disarm, release); here its events
//! become messages and its ending an exit code.

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Result;
use etcdlock::process::supervise::Event;
use etcdlock::process::tree;
use etcdlock::runner::{self, Ended};
use etcdlock::session::AbortOnDrop;
use etcdlock::Client;

use crate::cli::RunArgs;
use crate::exit::{self, fail};
use crate::output;

pub use etcdlock::runner::Command;

/// How `run` stops a command that must stop (`--kill-signal`, `--max-runtime`,
/// `--kill-leftovers`).
pub fn options(args: &RunArgs) -> runner::Options {
    runner::Options {
        kill_signal: args.kill_signal,
        max_runtime: args.max_runtime(),
        kill_leftovers: args.kill_leftovers,
    }
}

/// How the command ended, as an exit code (and a line where the code alone does not say it).
pub fn ending(args: &RunArgs, ended: Ended) -> Result<u8> {
    match ended {
        Ended::NotStarted(reason) => {
            let name = &args.name;
            let why = format!("lock {name} lost before the command started: {reason}");
            Err(fail(exit::LOCK_LOST, why))
        }
        Ended::TimedOut => {
            output::warn(format!(
                "the command ran longer than --max-runtime {}; stopped it",
                humantime::format_duration(args.max_runtime().unwrap_or_default())
            ));
            Ok(exit::TIMED_OUT)
        }
        other => Ok(other.code()),
    }
}

/// Test hook: a bug one second into the command's run (see emergency.rs).
pub fn test_bug() -> Option<AbortOnDrop<()>> {
    std::env::var_os("ETCDLOCK_TEST_PANIC").map(|_| {
        AbortOnDrop(tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            crate::emergency::test_point("running");
        }))
    })
}

/// What the user reads about a run's events.
pub fn tell(
    name: &str,
    args: &RunArgs,
    guard: &etcdlock::Guard,
    client: &Client,
    event: runner::Event<'_>,
) {
    match event {
        runner::Event::Command(event) => say(name, args, guard, event),
        other => tell_ending(client, name, other),
    }
}

/// What the user reads about the end of a run: its records, its marker, its revoke.
pub fn tell_ending(client: &Client, name: &str, event: runner::Event<'_>) {
    match event {
        runner::Event::RecordsFailed(why) => records_failed(client, name, why),
        runner::Event::OnceMarkerFailed(why) => output::warn(format!(
            "could not write the --once-per marker of {name} ({why}): the next firing will run the job again"
        )),
        runner::Event::Unrevoked { lease, why } => output::warn(format!(
            "could not revoke lease {:x} ({why}); the lock frees when it expires within {}",
            lease.id,
            humantime::format_duration(lease.ttl)
        )),
        // Told where they happen (see `tell`, run.rs).
        _ => {}
    }
}

/// One line when a run's records could not be written: once per user and cluster when etcd
/// denies permission (a standing set-up choice: say it, do not nag every cron mail), every time
/// otherwise (etcd full, unreachable: news).
pub fn records_failed(client: &Client, name: &str, why: &str) {
    let records = etcdlock::record::Keys::of(client, name);
    if why.contains("permission denied") {
        let prefix = client.config().records_prefix();
        crate::notices::once(
            &format!("records-denied {:x} {prefix}", client.cluster_id()),
            &format!(
                "run records are not kept: the etcd user may not write {:?} (grant read-write on the range prefix {:?} to keep them, or pass --no-record); the jobs run as usual",
                records.last_run(),
                etcdlock::record::range(prefix, "").0.escape_ascii().to_string(),
            ),
        );
    } else {
        output::warn(format!(
            "could not record this run of {name} in etcd ({why}); the job itself is not affected"
        ));
    }
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
