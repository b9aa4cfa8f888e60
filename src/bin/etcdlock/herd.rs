//! `run --once-per` in a waiting mode: wait for the host that runs the job without joining the
//! queue (see [`etcdlock::herd`]), with the queue's progress lines, `-w` and signals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use etcdlock::herd::{self, Outcome};
use etcdlock::lock::QueueInfo;
use etcdlock::process::supervise::Signals;
use etcdlock::queue::Slot;
use etcdlock::session::Lease;
use etcdlock::{Client, Holder};
use tokio::time::Instant;

use crate::cli::WaitArgs;
use crate::exit;
use crate::output;
use crate::progress::{self, Progress};

/// How the herd's wait ended.
pub enum Herded {
    /// The job ran meanwhile: exit 0, as a skip without waiting does.
    Skip,
    /// Free with no marker: queue as usual, with what is left of `-w` (if given), and the lease
    /// claimed for it (none: grant one as usual).
    Queue(Option<Duration>, Option<Lease>),
    /// Gave up (`-w`) or told to stop: end with this code.
    Ended(u8),
}

/// Wait as a herd for lock `name` (no write), honouring `wait`'s timeout and progress options;
/// when the lock is free, claim the run's lease of `ttl` (see [`herd::claim`]).
pub async fn wait(
    client: &Client,
    name: &str,
    ttl: Duration,
    wait: &WaitArgs,
    signals: &mut Signals,
) -> Result<Herded> {
    let started = Instant::now();
    let holder: Arc<Mutex<Option<Slot>>> = Arc::default();
    let herd = async {
        loop {
            let seen = holder.clone();
            let outcome = herd::wait_out(client, name, None, move |h| {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = h.cloned();
            })
            .await?;
            match outcome {
                Outcome::Skip => return Ok::<_, etcdlock::Error>(None),
                Outcome::Queue { claim_id } => {
                    if let Some(lease) = herd::claim(client, claim_id, ttl).await? {
                        return Ok(Some(lease));
                    }
                    // Another contender's lease: its key follows; wait for it as a herd.
                }
            }
        }
    };
    tokio::pin!(herd);
    let mut progress = Progress::new(name, output::is_quiet());
    let give_up_at = wait.timeout.map(|t| started + t);
    let mut ticks = tokio::time::interval(
        progress::interval(wait.progress_interval, false).unwrap_or(wait.progress_interval),
    );
    let show_progress = !output::is_quiet();
    loop {
        tokio::select! {
            outcome = &mut herd => {
                return Ok(match outcome? {
                    None => {
                        tracing::info!(name, "a run succeeded while this one waited (--once-per); skipping");
                        progress.finish(Some(format!(
                            "{name}: a run succeeded while this one waited; skipping (--once-per)"
                        )));
                        Herded::Skip
                    }
                    Some(lease) => {
                        progress.finish(None);
                        let left = wait.timeout.map(|t| t.saturating_sub(started.elapsed()));
                        Herded::Queue(left, Some(lease))
                    }
                });
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                progress.finish(None);
                let Some(slot) = current(&holder) else {
                    // Free when last seen (settling, or not looked at yet): the queue decides, at
                    // once, as `-w 0` does; a free lock is never given up on.
                    return Ok(Herded::Queue(Some(Duration::ZERO), None));
                };
                if wait.conflict_exit_code == 0 {
                    return Ok(Herded::Ended(0));
                }
                let state = describe(client, &Some(slot)).await;
                let why = humantime::format_duration(wait.timeout.unwrap_or_default());
                output::info(format!("{name} is {state}; giving up (--timeout {why})"));
                return Ok(Herded::Ended(wait.conflict_exit_code));
            }
            _ = ticks.tick(), if show_progress => {
                match current(&holder) {
                    Some(slot) => progress.update(Some(&info(client, &slot).await)),
                    // Not looked yet (or free): ask again soon, so that "waiting for" comes as
                    // early as the queue's does.
                    None => ticks.reset_after(Duration::from_millis(100)),
                }
            }
            sig = signals.recv_cancel() => {
                progress.finish(None);
                output::info(format!("{sig} received while waiting for {name}; not running the command"));
                return Ok(Herded::Ended(exit::signal(sig as i32)));
            }
        }
    }
}

fn current(holder: &Mutex<Option<Slot>>) -> Option<Slot> {
    holder.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The holder's key and its metadata (one read of its value).
async fn info(client: &Client, slot: &Slot) -> QueueInfo {
    let key = slot.key.clone();
    let value = client
        .call(|mut c| async move { c.get(key, None).await })
        .await
        .ok();
    QueueInfo {
        holder: value
            .as_ref()
            .and_then(|v| v.kvs().first())
            .and_then(|kv| Holder::parse(kv.value())),
        holder_key: slot.key.clone(),
        ahead: 1,
    }
}

async fn describe(client: &Client, holder: &Option<Slot>) -> String {
    match holder {
        Some(slot) => progress::describe_queue(&info(client, slot).await),
        None => "held by someone else".to_owned(),
    }
}
