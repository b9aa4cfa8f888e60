//! The `run` subcommand: the life cycle of one locked command, as the user sees it.
//!
//! check the command and options → connect → look first (`-n`, `--once-per`: one read) → grant
//! the lease (setting up the command's tree meanwhile) → session → [`etcdlock::runner::hold`]:
//! wait, spawn, arm, supervise, `--min-hold`, release with records, all in the library. Here its
//! events become messages (wait.rs, command.rs), progress and metrics, and its outcome an exit
//! code. `run --handle` is the same around [`etcdlock::runner::hold_handle`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcdlock::client::{Check, Client};
use etcdlock::holder::{self, Holder, Mode};
use etcdlock::process::reaper::{self, Rescue};
use etcdlock::process::supervise::{self, Signals};
use etcdlock::process::tree::Tree;
use etcdlock::record::Retention;
use etcdlock::runner::{self, Outcome};
use etcdlock::safety::{SafetyParams, Unsafe};
use etcdlock::session::Lease;

use crate::cli::{RecordCommand, RunArgs};
use crate::command::{self, Command};
use crate::config::Resolved;
use crate::exit::{self, fail};
use crate::metrics::{Metrics, Skip};
use crate::output;
use crate::wait;

/// Run `args` under the lock; the exit code.
pub async fn run(resolved: Resolved, args: RunArgs) -> Result<u8> {
    if let Some(path) = &args.metrics_file {
        crate::metrics::check_writable(path)?;
    }
    let mut metrics = Metrics::new(
        args.metrics_file.clone(),
        &args.name,
        args.max_runtime().is_some(),
    );
    let result = match &args.handle {
        Some(_) => run_in(resolved, &args, &mut metrics).await,
        None => run_locked(resolved, &args, &mut metrics).await,
    };
    let code = match &result {
        Ok(code) => *code,
        Err(e) => exit::code_of(e),
    };
    let ended = metrics.ended(code);
    // The lock is released (or, with --handle, the command's part is over): the hooks cannot
    // delay anyone, and cannot change the exit code.
    crate::hooks::run(&args, &ended).await;
    result
}

/// What `run` will do, checked before anything touches etcd.
pub struct Plan {
    /// argv (`argv[0]` included).
    pub argv: Vec<OsString>,
    /// The path found for argv[0].
    pub program: PathBuf,
    params: SafetyParams,
    /// This run's metadata in the lock key.
    pub holder: Holder,
    /// How long the run's records are kept; `None`: no records (`--no-record`).
    pub retention: Option<Duration>,
}

impl Plan {
    /// The command to start in `tree`, as run `run_id`.
    pub fn command(
        &self,
        tree: &Arc<Tree>,
        run_id: &str,
        connection_env: Vec<(&'static str, String)>,
    ) -> Command {
        Command {
            program: self.program.clone(),
            argv: self.argv.clone(),
            env: connection_env,
            tree: tree.clone(),
            run_id: run_id.to_owned(),
        }
    }
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
    /// Check the command and the options.
    pub fn new(args: &RunArgs) -> Result<Plan> {
        if args.shared && args.limit > 1 {
            return Err(fail(
                exit::USAGE,
                "--shared cannot be combined with --limit above 1",
            ));
        }
        let retention = crate::config::records(&args.records)?;
        if args.once_per.is_some() && retention.is_none() {
            return Err(fail(
                exit::USAGE,
                "--once-per keeps its marker beside the run records in etcd; it cannot be combined with --no-record (or ETCDLOCK_NO_RECORD=1)",
            ));
        }
        // One run per period means one holder: N holders of a semaphore, or shared holders, would
        // each find no marker and run (the marker is written at the end of a run).
        if args.once_per.is_some() && (args.limit > 1 || args.shared) {
            let with = if args.shared {
                "--shared"
            } else {
                "--limit above 1"
            };
            return Err(fail(
                exit::USAGE,
                format!(
                    "--once-per cannot be combined with {with}: several holders at once would each run in the same period"
                ),
            ));
        }
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
        let mut holder = Holder::current(recorded, args.limit, meta);
        holder.shared = args.shared;
        Ok(Plan {
            argv,
            program,
            params,
            holder,
            retention,
        })
    }
}

/// `--shared` or not.
fn mode(args: &RunArgs) -> Mode {
    if args.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    }
}

/// What the reaper helper execs: this very binary (see commands.rs), under a name that `pkill
/// etcdlock` and `pkill -f etcdlock` do not match.
pub fn rescue() -> Rescue {
    Rescue {
        program: "/proc/self/exe".into(),
        args: vec![reaper::HELPER_ARGV0.into(), "internal-reap".into()],
    }
}

/// Set up the command's tree with this binary as its reaper helper (see
/// [`etcdlock::runner::prepare_tree`]).
pub async fn prepare_tree(run_id: &str) -> Arc<Tree> {
    etcdlock::runner::prepare_tree(run_id, Some(rescue())).await
}

async fn run_locked(resolved: Resolved, args: &RunArgs, metrics: &mut Metrics) -> Result<u8> {
    let plan = Plan::new(args)?;
    let mut signals = Signals::install()?;
    let connection_env = resolved.child_env();
    let client = tokio::select! {
        client = exit::connect(resolved.config, Check::Lazy) => client?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    refuse_nested(&client, args).await?;
    let (mut wait_args, mut claimed) = (args.wait.clone(), None);
    let looked = look_first(
        &client,
        args,
        metrics,
        &mut signals,
        &mut wait_args,
        &mut claimed,
    );
    if let Some(code) = looked
        .await
        .map_err(|e| once_per_denied(e, &client, args))?
    {
        return Ok(code);
    }
    // The records' lease is looked up meanwhile (reads only), for the release.
    let records = Retention::start(&client, &args.name, plan.retention);
    let run_id = reaper::new_run_id();
    // Not cancellable: bounded by the dial timeout, and cancelling could orphan a lease. Its round
    // trip hides setting up the command's tree. Under --once-per the herd may have claimed the
    // lease already.
    let open = runner::open_session(&client, claimed, plan.params, args.kill_signal);
    let (session, tree) = tokio::join!(open, prepare_tree(&run_id));
    etcdlock::runner::last_resort::tracking(Some(tree.clone()));
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            tree.finish();
            return Err(e.into());
        }
    };
    let command = plan.command(&tree, &run_id, connection_env);
    let session_client = session.client().clone();
    let guard = session.guard().clone();
    let shown = wait::Shown::new(&args.name, args.wait.no_wait || args.once_per.is_some());
    let metrics = RefCell::new(metrics);
    let bug = RefCell::new(None);
    let report = |event: runner::Event<'_>| match event {
        runner::Event::Wait(event) => shown.event(&event),
        runner::Event::Acquired { .. } => shown.acquired(),
        runner::Event::SkippedOncePer => {
            tracing::info!(
                name = args.name,
                "a run succeeded within --once-per; skipping"
            );
            // Silent, as a skip without waiting is; but a wait that said so gets its ending.
            if shown.said_anything() {
                output::info(format!(
                    "{}: a run succeeded while this one waited; skipping (--once-per)",
                    args.name
                ));
            }
            metrics.borrow_mut().skipped(Skip::OncePer);
        }
        runner::Event::Starting(acquired) => {
            shown.announce();
            metrics.borrow_mut().started(acquired.fencing_token);
            tracing::info!(
                key = acquired.key,
                fencing_token = acquired.fencing_token,
                "lock acquired"
            );
            *bug.borrow_mut() = command::test_bug();
        }
        other => command::tell(&args.name, args, &guard, &session_client, other),
    };
    let run = runner::Run {
        wait: wait::how(&args.name, &plan.holder, &wait_args),
        command: &command,
        options: command::options(args),
        once_per: args.once_per,
        min_hold: args.min_hold,
        retention: records,
    };
    let outcome = runner::hold(session, &mut signals, run, &report).await;
    drop(bug.take());
    etcdlock::runner::last_resort::lease_released();
    etcdlock::runner::last_resort::tracking(None);
    match outcome.map_err(|e| once_per_denied(e.into(), &client, args))? {
        Outcome::GaveUp(info) => {
            shown.finish();
            let code = wait::gave_up(&args.name, &args.wait, info.as_deref());
            // A give-up ends with the conflict code (-E 0 is a silent skip).
            metrics.borrow_mut().skipped(Skip::Held);
            Ok(code)
        }
        Outcome::Cancelled(sig) => {
            shown.finish();
            Ok(wait::cancelled(&args.name, sig))
        }
        Outcome::LostWaiting(reason) => {
            shown.finish();
            Err(wait::lost_waiting(&args.name, &reason))
        }
        Outcome::Skipped => Ok(0),
        Outcome::Ran(ended) => command::ending(args, ended),
    }
}

/// Under `--once-per`, etcd refusing us is a set-up mistake to fix, not an outage to wait out:
/// the run needs to read and write its marker, and without that it would run at every firing.
fn once_per_denied(e: anyhow::Error, client: &Client, args: &RunArgs) -> anyhow::Error {
    let denied = matches!(
        e.downcast_ref::<etcdlock::Error>(),
        Some(etcdlock::Error::Refused { reason, .. }) if reason.contains("permission denied")
    );
    if args.once_per.is_none() || !denied {
        return e;
    }
    let keys = etcdlock::record::Keys::of(client, &args.name);
    fail(
        exit::USAGE,
        format!(
            "--once-per: etcd denied permission; the etcd user needs read-write on the lock's prefix {}/ and on its records {:?} (e.g. the range prefix {:?}); not running the command",
            args.name,
            keys.once(),
            etcdlock::record::range(client.config().records_prefix(), "").0.escape_ascii().to_string(),
        ),
    )
}

/// `etcdlock run NAME -- ... etcdlock run NAME ...`: the inner run would queue behind the lock
/// its own parent holds until that parent ends, which is never. The environment every locked
/// command gets tells: the parent's lock (`ETCDLOCK_NAME`, `ETCDLOCK_KEY`) on this very cluster
/// (`ETCDLOCK_CLUSTER_ID`), whose key is still there. One read, only under such a parent; the
/// same name on another cluster, or a semaphore with room for more (`--limit` above 1), is fine.
async fn refuse_nested(client: &Client, args: &RunArgs) -> Result<()> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(parent), Some(key), Some(cluster)) = (
        var("ETCDLOCK_NAME"),
        var("ETCDLOCK_KEY"),
        var("ETCDLOCK_CLUSTER_ID"),
    ) else {
        return Ok(());
    };
    if parent != args.name || !key.starts_with(&format!("{parent}/")) {
        return Ok(());
    }
    let lookup = key.clone();
    let Ok(resp) = client
        .call(|mut c| async move { c.get(lookup, None).await })
        .await
    else {
        return Ok(()); // the usual path reports an unreachable etcd in its own words
    };
    let same_cluster = resp
        .header()
        .is_some_and(|h| format!("{:x}", h.cluster_id()) == cluster);
    let holder = resp
        .kvs()
        .first()
        .map(|kv| Holder::parse(kv.value()).map_or(1, |h| h.limit));
    match holder {
        Some(1) if same_cluster => Err(fail(
            exit::USAGE,
            format!(
                "this command already runs under the lock {parent} (ETCDLOCK_NAME, key {key}, \
                 held by the etcdlock that started it): a nested run on the same lock would wait \
                 for its own parent for ever; run the command directly, or lock another name"
            ),
        )),
        _ => Ok(()),
    }
}

/// `-n` and `--once-per`: learn with one read, before any lease or write, whether there is
/// anything to do. A thousand hosts firing at a held lock, or after this period's run, cost etcd
/// no write. When the read says free, go on as usual (a race costs only the usual path).
///
/// `--once-per` in a waiting mode then waits without queueing while the lock is held (see
/// [`crate::herd`]); what is left of `-w` afterwards goes in `wait`, the lease it claimed in
/// `claimed`.
async fn look_first(
    client: &Client,
    args: &RunArgs,
    metrics: &mut Metrics,
    signals: &mut Signals,
    wait: &mut crate::cli::WaitArgs,
    claimed: &mut Option<Lease>,
) -> Result<Option<u8>> {
    if !args.wait.no_wait && args.once_per.is_none() {
        return Ok(None);
    }
    let peek = etcdlock::lock::peek(
        client,
        &args.name,
        args.limit,
        mode(args),
        args.once_per.is_some(),
    )
    .await?;
    wait::warn_about_name(&args.name, peek.related_lock.as_deref());
    if args.once_per.is_some() && peek.once_marker {
        tracing::info!(
            name = args.name,
            "a run succeeded within --once-per; skipping"
        );
        metrics.skipped(Skip::OncePer);
        return Ok(Some(0));
    }
    if args.wait.no_wait && peek.full(args.limit) {
        metrics.skipped(Skip::Held);
        let code = wait::conflict(
            client,
            &args.name,
            &peek.holders,
            args.wait.conflict_exit_code,
        )
        .await;
        return Ok(Some(code));
    }
    if args.once_per.is_some() && !args.wait.no_wait {
        use crate::herd::Herded;
        match crate::herd::wait(client, &args.name, args.ttl, &args.wait, signals).await? {
            Herded::Queue(left, lease) => (wait.timeout, *claimed) = (left, lease),
            Herded::Skip => {
                metrics.skipped(Skip::OncePer);
                return Ok(Some(0));
            }
            Herded::Ended(code) => {
                if code == args.wait.conflict_exit_code {
                    metrics.skipped(Skip::Held);
                }
                return Ok(Some(code));
            }
        }
    }
    Ok(None)
}

/// `etcdlock run --handle HANDLE -- COMMAND`: the full supervision of `run` inside a lock held by
/// a handle — keep-alive while the command runs, kill before expiry, the run's record — and the
/// lock stays held afterwards, for its TTL from the last keep-alive. The handle is checked against
/// its key first (a forged handle, a waiter's or a plain run's key: exit 2, nothing written).
async fn run_in(resolved: Resolved, args: &RunArgs, metrics: &mut Metrics) -> Result<u8> {
    use crate::handles::{lost_since, open, refused_or_lost};
    use etcdlock::handle::State;
    let text = args.handle.clone().unwrap_or_default();
    let plan = Plan::new(args)?;
    let mut signals = Signals::install()?;
    let connection_env = resolved.child_env();
    let (client, handle) = open(resolved, &text).await?;
    let verified = match handle.verify(&client).await {
        Ok(v) => v,
        Err(e) => return Err(refused_or_lost(&client, &handle, e).await),
    };
    match verified.state {
        State::Held => {}
        State::Lost => return Err(lost_since(&client, &handle, handle.lost()).await.into()),
        State::Detached => {
            let _ = handle.remove_detached(&client).await;
            return Err(lost_since(&client, &handle, handle.lost()).await.into());
        }
    }
    let attached = handle.attach(&client).await.map_err(|_| handle.lost())?;
    let params = safety_params(attached.ttl(), args.kill_after)?;
    let run_id = reaper::new_run_id();
    let tree = prepare_tree(&run_id).await;
    etcdlock::runner::last_resort::tracking(Some(tree.clone()));
    let session = attached.keep_alive(params, args.kill_signal).await?;
    let command = plan.command(&tree, &run_id, connection_env);
    // The records' lease is looked up while the command runs (reads only).
    let records = Retention::start(&client, &args.name, plan.retention);
    let guard = session.guard().clone();
    let metrics = RefCell::new(metrics);
    let bug = RefCell::new(None);
    let report = |event: runner::Event<'_>| match event {
        runner::Event::Starting(acquired) => {
            metrics.borrow_mut().started(acquired.fencing_token);
            tracing::info!(
                key = acquired.key,
                fencing_token = acquired.fencing_token,
                "lock acquired"
            );
            *bug.borrow_mut() = command::test_bug();
        }
        other => command::tell(&args.name, args, &guard, &client, other),
    };
    let ended = runner::hold_handle(
        session,
        &mut signals,
        &handle,
        (verified.revision, verified.value.clone()),
        &command,
        &command::options(args),
        (&plan.holder, records),
        &report,
    )
    .await;
    drop(bug.take());
    etcdlock::runner::last_resort::tracking(None);
    command::ending(args, ended?)
}
