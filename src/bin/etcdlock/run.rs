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
use std::time::{Duration, SystemTime};

use anyhow::Result;
use etcdlock::client::{Check, Client};
use etcdlock::holder::{self, Holder, Mode};
use etcdlock::process::reaper::{self, Rescue};
use etcdlock::process::supervise::{self, Signals};
use etcdlock::process::tree::Tree;
use etcdlock::record::{Ending, Retention, RunRecord};
use etcdlock::safety::{SafetyParams, Unsafe};
use etcdlock::session::Lease;
use etcdlock::Session;
use tokio::time::Instant;

use crate::cli::{RecordCommand, RunArgs};
use crate::command::{self, Command};
use crate::config::Resolved;
use crate::exit::{self, fail};
use crate::metrics::{Metrics, Skip};
use crate::output;
use crate::wait::{self, Held, Waited, Waiting};

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
        Some(_) => crate::handles::run_in(resolved, &args, &mut metrics).await,
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
    pub fn command<'a>(
        &'a self,
        tree: &'a Arc<Tree>,
        run_id: &'a str,
        connection_env: Vec<(&'static str, String)>,
    ) -> Command<'a> {
        Command {
            program: &self.program,
            argv: &self.argv,
            tree,
            run_id,
            connection_env,
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

/// Set up the command's tree (its cgroup, the reaper helper) on a thread of its own, so that it
/// overlaps the lease grant's round trip. On the runtime's thread it did not: the mkdir and the
/// forks held up the request itself, which reaches the socket only after passing through tonic's
/// buffer task and hyper's connection task (connect → lease granted took 0.6 ms more than at
/// 03ff58b; on this thread, 0.3 ms more). Which thread forks the helper does
/// not matter (it is double-forked and watches a pipe, not its parent); the command itself is
/// spawned from the main thread, for `PR_SET_PDEATHSIG`.
pub async fn prepare_tree(run_id: &str) -> Arc<Tree> {
    let prepare = |run_id: String| {
        move || {
            let tree = Arc::new(Tree::prepare());
            tree.guard_against_our_death(&run_id, Some(&rescue()));
            tree
        }
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = prepare(run_id.to_owned());
    let thread = std::thread::Builder::new()
        .name("etcdlock-tree".into())
        .spawn(move || tx.send(job()));
    if thread.is_ok() {
        if let Ok(tree) = rx.await {
            return tree;
        }
    }
    // No thread to be had (or it died): do it here.
    prepare(run_id.to_owned())()
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
    if let Some(code) = look_first(&client, args, metrics)
        .await
        .map_err(|e| once_per_denied(e, &client, args))?
    {
        return Ok(code);
    }
    // The records' lease is looked up meanwhile (reads only), for the release.
    let records = Retention::start(&client, &args.name, plan.retention);
    let run_id = reaper::new_run_id();
    // Not cancellable: bounded by the dial timeout, and cancelling could orphan a lease. Its round
    // trip hides setting up the command's tree.
    let (lease, tree) = tokio::join!(
        Lease::grant(&client, plan.params.ttl()),
        prepare_tree(&run_id)
    );
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
    let command = plan.command(&tree, &run_id, connection_env);
    let result = hold(&session, &mut signals, args, &plan, &command, metrics)
        .await
        .map_err(|e| once_per_denied(e, &client, args));
    release(session, &tree, args, &plan, result, records).await
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
async fn look_first(client: &Client, args: &RunArgs, metrics: &mut Metrics) -> Result<Option<u8>> {
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
    Ok(None)
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
/// goes on killing). Then the lock goes with the run's record (see [`record_and_release`]) and
/// the lease is revoked.
async fn release(
    session: Session,
    tree: &Tree,
    args: &RunArgs,
    plan: &Plan,
    result: Result<Outcome>,
    records: Retention,
) -> Result<u8> {
    let dead = tree.stop_all(Duration::from_secs(3));
    session.guard().stop();
    let code = match result {
        Ok(Outcome::Ran {
            held,
            code,
            started,
            took,
        }) if dead => {
            record_and_release(session, args, plan, held, records, (started, took, code)).await;
            Ok(code)
        }
        other => {
            let code = match other {
                Ok(Outcome::NotHeld(code)) => Ok(code),
                Ok(Outcome::Skipped(held)) => {
                    let acquired = held.into_acquired();
                    let client = session.client();
                    let _ = etcdlock::lock::release(client, &args.name, &acquired, None).await;
                    Ok(0)
                }
                Ok(Outcome::Ran { code, .. }) => Ok(code),
                Err(e) => Err(e),
            };
            if dead {
                revoke(session, matches!(code, Ok(exit::LOCK_LOST))).await;
            }
            code
        }
    };
    crate::emergency::lease_released();
    tree.finish();
    crate::emergency::tracking(None);
    code
}

/// Write the run's record and give up the lock. Bounded (3 s per request); a failure is one
/// warning, never the job's. Where the record must know whether we still held our key, it goes
/// in the release transaction and the lease is revoked afterwards (two round trips): after a
/// success under `--once-per` (the period's marker must exist before anyone else can take the
/// lock, and only if we held it to the end), and after etcdlock's guard saw the lock lost (the
/// key may be gone and a later holder running: the run then goes to `last-run` only, marked
/// lost, never over `last-success`). Otherwise the record goes beside the revoke, in one round
/// trip (see [`etcdlock::lock::release_with_records`]).
async fn record_and_release(
    session: Session,
    args: &RunArgs,
    plan: &Plan,
    held: Held,
    records: Retention,
    (started, took, code): (SystemTime, Duration, u8),
) {
    let client = session.client().clone();
    let (records_lease, no_lease) = match records.lease().await {
        Ok(lease) => (lease, None),
        Err(why) => (None, Some(why)),
    };
    let acquired = held.into_acquired();
    // What etcdlock saw: its guard latched a loss (the command was stopped, exit 70, or
    // --min-hold ended early). A command that exits 70 by itself has not lost the lock.
    let lost = session.guard().lost().is_some();
    let mut record = RunRecord::new(&plan.holder, started, took);
    record.exit_code = i32::from(code);
    record.fencing_token = acquired.fencing_token;
    record.lost = lost;
    record.once_per_s = args.once_per.map(|p| p.as_secs());
    let success = code == 0;
    let mut ending = Ending {
        record,
        success,
        records_lease,
        once_lease: None,
    };
    let marker_ttl = args
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
            etcdlock::lock::release(&client, &args.name, &acquired, Some(&ending)),
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
                output::warn(format!(
                    "could not write the --once-per marker of {} ({why}): the next firing will run the job again",
                    args.name
                ));
            }
        }
        if let (Ok(marker), false) = (marker, matches!(released, Ok(true))) {
            let _ = marker.revoke(&client).await;
        }
        revoke(session, lost).await;
        match released {
            // The marker's line said it all.
            Err(_) if marker_ttl.is_some() => Ok(()),
            other => other.map(|_| ()),
        }
    } else {
        let lease = *session.lease();
        let (recorded, revoked) =
            etcdlock::lock::release_with_records(session, &args.name, &ending).await;
        tell_if_unrevoked(&lease, revoked, false);
        recorded
    };
    if let (Err(_), Some(lease)) = (&recorded, records_lease) {
        etcdlock::record::revoke_if_unused(&client, lease).await;
    }
    match (recorded, no_lease) {
        (Err(why), _) | (Ok(()), Some(why)) if !lost => records_failed(&client, &args.name, &why),
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

/// The once-marker's TTL: what is left of the period counted from the start of the run (rounded
/// up to whole seconds, so the marker never ends early), or none if the run took the whole period.
/// Counting from the start makes `--once-per` a per-slot guarantee whatever the run takes: with
/// `*/5` in cron and `--once-per 4m`, a 3-minute run at :00 does not make the :05 firings skip,
/// as a marker of the full period written at the end would.
fn once_ttl(period: Duration, took: Duration) -> Option<Duration> {
    let left = period.checked_sub(took).filter(|d| !d.is_zero())?;
    Some(Duration::from_secs(
        left.as_secs() + u64::from(left.subsec_nanos() > 0),
    ))
}

/// Revoke the session's lease (its queue key, if still there, goes with it).
async fn revoke(session: Session, lost: bool) {
    let lease = *session.lease();
    tell_if_unrevoked(&lease, session.close().await, lost);
}

/// One warning if the revoke failed. After a lost lock the lease is gone or about to be, and etcd
/// is often unreachable: a failed revoke is then no news (the lost-lock line said it all).
fn tell_if_unrevoked<T>(lease: &Lease, revoked: Result<T, String>, lost: bool) {
    if let (Err(why), false) = (revoked, lost) {
        output::warn(format!(
            "could not revoke lease {:x} ({why}); the lock frees when it expires within {}",
            lease.id,
            humantime::format_duration(lease.ttl)
        ));
    }
}

/// How a hold ended, for the release.
enum Outcome {
    /// We never held the lock (gave up, cancelled): end with this code.
    NotHeld(u8),
    /// We held it but a run succeeded within --once-per: skipped, exit 0.
    Skipped(Held),
    /// The command ran (or was stopped) under the lock.
    Ran {
        held: Held,
        code: u8,
        started: SystemTime,
        took: Duration,
    },
}

/// Everything between the grant and the release.
async fn hold(
    session: &Session,
    signals: &mut Signals,
    args: &RunArgs,
    plan: &Plan,
    command: &Command<'_>,
    metrics: &mut Metrics,
) -> Result<Outcome> {
    let waiting = Waiting {
        name: &args.name,
        wait: &args.wait,
        name_noted: args.wait.no_wait || args.once_per.is_some(),
        // --once-per must be able to write its marker: refused now, not after the command ran.
        checks: match args.once_per {
            Some(_) => vec![etcdlock::record::write_probe(session.client(), &args.name)],
            None => Vec::new(),
        },
    };
    let (client, guard) = (session.client(), session.guard());
    let mut held = match wait::acquire_quietly(
        client,
        session.lease(),
        &plan.holder,
        guard,
        signals,
        &waiting,
    )
    .await?
    {
        Waited::Held(held) => held,
        Waited::Ended(code) => {
            // A give-up ends with the conflict code; anything else is a signal while waiting.
            if code == args.wait.conflict_exit_code {
                metrics.skipped(Skip::Held);
            }
            return Ok(Outcome::NotHeld(code));
        }
    };
    if args.once_per.is_some()
        && etcdlock::lock::peek(client, &args.name, args.limit, mode(args), true)
            .await?
            .once_marker
    {
        tracing::info!(
            name = args.name,
            "a run succeeded within --once-per; skipping"
        );
        // Silent, as a skip without waiting is; but a wait that said so gets its ending.
        if held.news.is_some() {
            output::info(format!(
                "{}: a run succeeded while this one waited; skipping (--once-per)",
                args.name
            ));
        }
        metrics.skipped(Skip::OncePer);
        return Ok(Outcome::Skipped(held));
    }
    held.announce();
    let (acquired_at, started) = (Instant::now(), SystemTime::now());
    metrics.started(held.acquired.fencing_token);
    let code = command::run(session, signals, args, command, &held.acquired).await?;
    let took = acquired_at.elapsed();
    if let Some(min_hold) = args.min_hold {
        hold_on(signals, session, acquired_at + min_hold).await;
    }
    Ok(Outcome::Ran {
        held,
        code,
        started,
        took,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
