//! Getting the lock: join the queue, give up at once (`-n`) or after `-w`, show progress while
//! waiting, leave on a signal. The lease itself goes with the caller's revoke.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcdlock::lock::{self, Acquired, Queued};
use etcdlock::{Client, Guard, Holder};
use tokio::time::Instant;

use crate::exit::{self, fail};
use crate::output::{self, short_duration};
use crate::progress::{self, Progress};
use etcdlock::process::supervise::Signals;

/// How the wait for a lock ended.
pub enum Waited {
    /// We hold it.
    Held(Acquired),
    /// We gave up or were told to stop: end with this code.
    Ended(u8),
}

/// What waiting may do: the options of `run` (and `acquire`) that concern the queue.
pub struct Waiting<'a> {
    /// The lock.
    pub name: &'a str,
    /// `-n`.
    pub no_wait: bool,
    /// `-w`.
    pub timeout: Option<Duration>,
    /// `-E`.
    pub conflict_exit_code: u8,
    /// `--progress-interval`.
    pub progress_interval: Duration,
}

/// Queue and wait for the lock.
pub async fn acquire(
    client: &Client,
    lease: &etcdlock::session::Lease,
    holder: &Holder,
    guard: &Arc<Guard>,
    signals: &mut Signals,
    how: &Waiting<'_>,
) -> Result<Waited> {
    let lost_while_waiting = |reason: String| {
        fail(
            exit::UNAVAILABLE,
            format!("lost the lease while waiting for {}: {reason}", how.name),
        )
    };
    let (queued, acquired, noticed) = tokio::select! {
        r = lock::enqueue(client, how.name, lease, holder) => r?,
        reason = guard.wait_lost() => return Err(lost_while_waiting(reason)),
    };
    warn_about_name(how.name, noticed.related_lock.as_deref());
    if let Some(acquired) = acquired {
        return Ok(Waited::Held(acquired));
    }
    crate::emergency::test_point("waiting");
    if how.no_wait || how.timeout.is_some_and(|t| t.is_zero()) {
        return Ok(Waited::Ended(
            give_up(client, &queued, how, "--no-wait").await,
        ));
    }
    let waited = wait(client, &queued, guard, signals, how).await?;
    if let Waited::Held(_) = waited {
        tokio::spawn(queued.mark_acquired(client.clone(), holder.clone()));
    }
    Ok(waited)
}

/// The waiting loop: the lock, the timeout, progress ticks, a lost lease, a signal.
async fn wait(
    client: &Client,
    queued: &Queued,
    guard: &Guard,
    signals: &mut Signals,
    how: &Waiting<'_>,
) -> Result<Waited> {
    let mut progress = Progress::new(how.name, output::is_quiet());
    let mut waiter = queued.clone();
    let wait = waiter.wait(client);
    tokio::pin!(wait);
    let give_up_at = how.timeout.map(|t| Instant::now() + t);
    let mut ticks = tokio::time::interval(progress.tick(how.progress_interval));
    // Progress costs a queue read per tick; with nothing to show, do not ask.
    let show_progress = !output::is_quiet();
    loop {
        tokio::select! {
            acquired = &mut wait => {
                let waited = short_duration(progress.waited());
                progress.finish(Some(format!("acquired {} after {waited}", how.name)));
                return Ok(Waited::Held(acquired?));
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                progress.finish(None);
                let why = format!("--timeout {}", humantime::format_duration(how.timeout.unwrap_or_default()));
                return Ok(Waited::Ended(give_up(client, queued, how, &why).await));
            }
            _ = ticks.tick(), if show_progress => {
                let info = lock::queue_info(client, queued).await.ok().flatten();
                progress.update(info.as_ref());
            }
            reason = guard.wait_lost() => {
                progress.finish(None);
                return Err(fail(
                    exit::UNAVAILABLE,
                    format!("lost the lease while waiting for {}: {reason}", how.name),
                ));
            }
            sig = signals.recv_cancel() => {
                progress.finish(None);
                output::info(format!("{sig} received while waiting for {}; leaving the queue", how.name));
                return Ok(Waited::Ended(exit::signal(sig as i32)));
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
async fn give_up(client: &Client, queued: &Queued, how: &Waiting<'_>, why: &str) -> u8 {
    if how.conflict_exit_code == 0 {
        return 0;
    }
    let state = match lock::queue_info(client, queued).await {
        Ok(Some(info)) => progress::describe_queue(&info),
        _ => "held by someone else".to_owned(),
    };
    output::info(format!("{} is {state}; giving up ({why})", how.name));
    how.conflict_exit_code
}
