//! `run --once-per` in a waiting mode: wait for the host that runs the job without joining the
//! queue (see [`etcdlock::herd`]), with the queue's progress lines, `-w` and signals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use etcdlock::herd::{self, Outcome};
use etcdlock::lock::QueueInfo;
use etcdlock::process::supervise::Signals;
use etcdlock::queue::Slot;
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
    /// Free with no marker: queue as usual, with what is left of `-w` (if given).
    Queue(Option<Duration>),
    /// Gave up (`-w`) or told to stop: end with this code.
    Ended(u8),
}

/// Wait as a herd for lock `name` (no write), honouring `wait`'s timeout and progress options.
pub async fn wait(
    client: &Client,
    name: &str,
    wait: &WaitArgs,
    signals: &mut Signals,
) -> Result<Herded> {
    let started = Instant::now();
    let holder: Arc<Mutex<Option<Slot>>> = Arc::default();
    let seen = holder.clone();
    let herd = herd::wait_out(client, name, None, move |h| {
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(h.clone());
    });
    tokio::pin!(herd);
    let mut progress = Progress::new(name, output::is_quiet());
    let give_up_at = wait.timeout.map(|t| started + t);
    let mut ticks = tokio::time::interval(progress.tick(wait.progress_interval));
    let show_progress = !output::is_quiet();
    loop {
        tokio::select! {
            outcome = &mut herd => {
                return Ok(match outcome? {
                    Outcome::Skip => {
                        tracing::info!(name, "a run succeeded while this one waited (--once-per); skipping");
                        progress.finish(Some(format!(
                            "{name}: a run succeeded while this one waited; skipping (--once-per)"
                        )));
                        Herded::Skip
                    }
                    Outcome::Queue => {
                        progress.finish(None);
                        Herded::Queue(wait.timeout.map(|t| t.saturating_sub(started.elapsed())))
                    }
                });
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                progress.finish(None);
                if wait.conflict_exit_code == 0 {
                    return Ok(Herded::Ended(0));
                }
                let state = describe(client, &current(&holder)).await;
                let why = humantime::format_duration(wait.timeout.unwrap_or_default());
                output::info(format!("{name} is {state}; giving up (--timeout {why})"));
                return Ok(Herded::Ended(wait.conflict_exit_code));
            }
            _ = ticks.tick(), if show_progress => {
                if let Some(slot) = current(&holder) {
                    progress.update(Some(&info(client, &slot).await));
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
