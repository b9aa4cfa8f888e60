//! The `run` subcommand: the life cycle of one locked command.
//!
//! check the command and options → connect → grant the lease (setting up the command's tree
//! meanwhile) → session: guard and keep-alive → queue, give up or wait (wait.rs) → spawn and
//! supervise (command.rs) → hold on for `--min-hold` → make sure the tree is gone → release.
//! Every path after the grant goes through the same release (stop keep-alive, revoke), so no key
//! or lease is left behind and the next waiter starts at once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcdlock::client::{Check, Client};
use etcdlock::holder::{self, Holder};
use etcdlock::process::reaper::{self, Rescue};
use etcdlock::process::supervise::{self, Signals};
use etcdlock::process::tree::Tree;
use etcdlock::safety::{SafetyParams, Unsafe};
use etcdlock::session::Lease;
use etcdlock::Session;
use tokio::time::Instant;

use crate::cli::{RecordCommand, RunArgs};
use crate::command::{self, Command};
use crate::config::Resolved;
use crate::exit::{self, fail};
use crate::metrics::Metrics;
use crate::output;
use crate::wait::{self, Waited, Waiting};

/// Run `args` under the lock; the exit code.
pub async fn run(resolved: Resolved, args: RunArgs) -> Result<u8> {
    if let Some(path) = &args.metrics_file {
        crate::metrics::check_writable(path)?;
    }
    let mut metrics = Metrics::new(args.metrics_file.clone(), &args.name);
    let result = run_locked(resolved, &args, &mut metrics).await;
    let code = match &result {
        Ok(code) => *code,
        Err(e) => exit::code_of(e),
    };
    metrics.ended(code, code == exit::LOCK_LOST);
    result
}

/// What `run` will do, checked before anything touches etcd.
struct Plan {
    argv: Vec<OsString>,
    program: PathBuf,
    params: SafetyParams,
    holder: Holder,
}

/// The safety parameters of the options, refused in their own words.
pub fn safety_params(ttl: Duration, kill_after: Option<Duration>) -> Result<SafetyParams> {
    SafetyParams::new(ttl, kill_after).map_err(|e| match e {
        Unsafe::GraceTooLong { kill_after, ttl } => fail(
            exit::USAGE,
            format!(
                "--kill-after {} must be less than half the TTL ({})",
                humantime::format_duration(kill_after),
                humantime::format_duration(ttl)
            ),
        ),
        other => fail(exit::USAGE, format!("--ttl: {other}")),
    })
}

impl Plan {
    fn new(args: &RunArgs) -> Result<Plan> {
        let argv = args.argv();
        let program = supervise::check_command(&argv[0])?;
        let params = safety_params(args.ttl, args.kill_after)?;
        let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
        if holder::meta_size(&meta) > holder::MAX_STORED {
            return Err(fail(
                exit::USAGE,
                format!(
                    "--meta takes {} bytes in all; at most {} are stored in the lock key",
                    holder::meta_size(&meta),
                    holder::MAX_STORED
                ),
            ));
        }
        let recorded: &[OsString] = match args.record_command {
            RecordCommand::Full => &argv,
            RecordCommand::Program => argv.get(..1).unwrap_or_default(),
            RecordCommand::None => &[],
        };
        let holder = Holder::current(recorded, args.limit, meta);
        Ok(Plan {
            argv,
            program,
            params,
            holder,
        })
    }
}

/// What the reaper helper execs when etcdlock dies: this very binary (see commands.rs).
fn rescue() -> Rescue {
    Rescue {
        program: "/proc/self/exe".into(),
        args: vec!["etcdlock".into(), "internal-reap".into()],
    }
}

async fn run_locked(resolved: Resolved, args: &RunArgs, metrics: &mut Metrics) -> Result<u8> {
    let plan = Plan::new(args)?;
    let mut signals = Signals::install()?;
    let connection_env = resolved.child_env();
    let client = tokio::select! {
        client = exit::connect(resolved.config, Check::Lazy) => client?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    let run_id = reaper::new_run_id();
    // Not cancellable: bounded by the dial timeout, and cancelling could orphan a lease. Its round
    // trip hides setting up the command's tree (cgroup, reaper helper): yield once so that the
    // request is on the wire before the forks.
    let (lease, tree) = tokio::join!(Lease::grant(&client, plan.params.ttl()), async {
        tokio::task::yield_now().await;
        let tree = Arc::new(Tree::prepare());
        tree.guard_against_our_death(&run_id, Some(&rescue()));
        tree
    });
    crate::emergency::tracking(Some(tree.clone()));
    let session = match lease {
        Ok(lease) => start_session(&client, lease, &plan, args).await,
        Err(e) => Err(e.into()),
    };
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            tree.finish();
            return Err(e);
        }
    };
    let command = Command {
        program: &plan.program,
        argv: &plan.argv,
        tree: &tree,
        run_id: &run_id,
        connection_env,
    };
    let result = hold(&session, &mut signals, args, &plan, &command, metrics).await;
    release(session, &tree, &result).await;
    result
}

async fn start_session(
    client: &Client,
    lease: Lease,
    plan: &Plan,
    args: &RunArgs,
) -> Result<Session> {
    crate::emergency::lease_granted(client.config(), lease.id);
    Ok(Session::from_lease(client, lease, plan.params, args.kill_signal).await?)
}

/// The command must be dead before the lease goes: normally the tree is gone already; after an
/// error it is killed here. If it will not die, the lease is left to expire (the reaper helper
/// goes on killing).
async fn release(session: Session, tree: &Tree, result: &Result<u8>) {
    let dead = tree.stop_all(Duration::from_secs(3));
    crate::emergency::tracking(None);
    // After a lost lock the lease is gone or about to be, and etcd is often unreachable: a
    // failed revoke is then no news (the lost-lock line said it all).
    let lost = matches!(result, Ok(exit::LOCK_LOST));
    let lease = *session.lease();
    session.guard().stop();
    if dead {
        if let Err(why) = session.close().await {
            if !lost {
                output::warn(format!(
                    "could not revoke lease {:x} ({why}); the lock frees when it expires within {}",
                    lease.id,
                    humantime::format_duration(lease.ttl)
                ));
            }
        }
    }
    crate::emergency::lease_released();
}

/// Everything between the grant and the release.
async fn hold(
    session: &Session,
    signals: &mut Signals,
    args: &RunArgs,
    plan: &Plan,
    command: &Command<'_>,
    metrics: &mut Metrics,
) -> Result<u8> {
    let waiting = Waiting {
        name: &args.name,
        no_wait: args.no_wait,
        timeout: args.timeout,
        conflict_exit_code: args.conflict_exit_code,
        progress_interval: args.progress_interval,
    };
    let (client, guard) = (session.client(), session.guard());
    let acquired = match wait::acquire(
        client,
        session.lease(),
        &plan.holder,
        guard,
        signals,
        &waiting,
    )
    .await?
    {
        Waited::Held(acquired) => acquired,
        Waited::Ended(code) => return Ok(code),
    };
    let acquired_at = Instant::now();
    metrics.started();
    let code = command::run(session, signals, args, command, &acquired).await?;
    if let Some(min_hold) = args.min_hold {
        hold_on(signals, session, acquired_at + min_hold).await;
    }
    Ok(code)
}

/// --min-hold: keep the lock until `until`, unless told to stop or the lease is lost.
async fn hold_on(signals: &mut Signals, session: &Session, until: Instant) {
    if until <= Instant::now() {
        return;
    }
    tracing::info!("holding the lock for --min-hold");
    tokio::select! {
        _ = tokio::time::sleep_until(until) => {}
        _ = signals.recv_cancel() => {}
        _ = session.lost() => {}
    }
}
