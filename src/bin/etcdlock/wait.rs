//! Getting the lock: join the queue, give up at once (`-n`) or after `-w`, show progress while
//! waiting, leave on a signal. The lease itself goes with the caller's revoke.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcdlock::lock::{self, Acquired, QueueInfo, Queued};
use etcdlock::queue::Slot;
use etcdlock::session::AbortOnDrop;
use etcdlock::{Client, Guard, Holder};
use tokio::time::Instant;

use crate::exit::{self, fail};
use crate::output::{self, short_duration};
use crate::progress::{self, Progress};
use etcdlock::process::supervise::Signals;

/// How the wait for a lock ended.
pub enum Waited {
    /// We hold it; our key is watched (its deletion is loss) for as long as `Held` lives.
    Held(Held),
    /// We gave up or were told to stop: end with this code.
    Ended(u8),
}

/// A lock we hold, and the tasks that live as long as we do.
pub struct Held {
    /// The acquisition.
    pub acquired: Acquired,
    /// "acquired NAME after 41s", when waiting said anything (see [`acquire_quietly`]).
    pub news: Option<String>,
    /// The watch on our own key, started when we joined the queue: no new watch at hand-off.
    _watch: AbortOnDrop<()>,
    /// Records the acquisition time in our key after a second of holding (see [`lazy_mark`]).
    _mark: Option<AbortOnDrop<()>>,
}

impl Held {
    fn new(acquired: Acquired, watch: AbortOnDrop<()>, mark: Option<AbortOnDrop<()>>) -> Held {
        Held {
            acquired,
            news: None,
            _watch: watch,
            _mark: mark,
        }
    }

    /// Say that we got the lock, if waiting said anything (once).
    pub fn announce(&mut self) {
        if let Some(news) = self.news.take() {
            output::info(news);
        }
    }

    /// Stop watching our key (and marking it): we are about to delete it ourselves.
    pub fn into_acquired(self) -> Acquired {
        self.acquired
    }
}

/// What waiting may do: the options of `run` (and `acquire`) that concern the queue.
pub struct Waiting<'a> {
    /// The lock.
    pub name: &'a str,
    /// `-n`, `-w`, `-E`, `--progress-interval`.
    pub wait: &'a crate::cli::WaitArgs,
    /// The notes about the name were given already (by the look before the queue).
    pub name_noted: bool,
    /// Checks for the queue transaction (see `etcdlock::lock::enqueue_checking`).
    pub checks: Vec<etcd_client::TxnOp>,
}

/// Queue and wait for the lock; says "acquired NAME after 41s" when waiting said anything.
pub async fn acquire(
    client: &Client,
    lease: &etcdlock::session::Lease,
    holder: &Holder,
    guard: &Arc<Guard>,
    signals: &mut Signals,
    how: &Waiting<'_>,
) -> Result<Waited> {
    let mut waited = acquire_quietly(client, lease, holder, guard, signals, how).await?;
    if let Waited::Held(held) = &mut waited {
        held.announce();
    }
    Ok(waited)
}

/// [`acquire`], leaving the "acquired" line to the caller ([`Held::announce`]): `run --once-per`
/// says it only if it goes on to run the command, not when it then skips.
pub async fn acquire_quietly(
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
    let (mut queued, acquired, noticed) = tokio::select! {
        r = lock::enqueue_checking(client, how.name, lease, holder, &how.checks) => r?,
        reason = guard.wait_lost() => return Err(lost_while_waiting(reason)),
    };
    if !how.name_noted {
        warn_about_name(how.name, noticed.related_lock.as_deref());
    }
    // Our key is ours from now on: its deletion (a revoke, `etcdctl del`) is loss, noticed while
    // waiting too (Go's Mutex does not: etcd issue 19597), by the one watch we keep throughout.
    // A put over it (detaching it from our lease, changing its value) is loss too.
    let own = lock::OwnKey::new(
        queued.key.clone(),
        queued.my_rev,
        lease.id,
        holder.to_json(),
    );
    let watch = AbortOnDrop(tokio::spawn(lock::watch_own_key(
        client.clone(),
        own.clone(),
        queued.enqueued_at,
        guard.clone(),
    )));
    if let Some(acquired) = acquired {
        return Ok(Waited::Held(Held::new(acquired, watch, None)));
    }
    crate::emergency::test_point("waiting");
    let give_up_now = how.wait.no_wait || how.wait.timeout.is_some_and(|t| t.is_zero());
    // The queue transaction's keys-only look cannot see that shared holders ahead let a shared
    // contender in: one read of the keys ahead decides, before anything says "waiting".
    if give_up_now || holder.shared {
        if let Some(acquired) = queued.check(client).await? {
            return Ok(Waited::Held(Held::new(acquired, watch, None)));
        }
    }
    if give_up_now {
        // The flag actually given: -n, or -w 0.
        let why = if how.wait.no_wait {
            "--no-wait".to_owned()
        } else {
            "--timeout 0s".to_owned()
        };
        let code = give_up(client, &queued, how, &why).await;
        return Ok(Waited::Ended(code));
    }
    Ok(match wait(client, &queued, guard, signals, how).await? {
        Wake::Got(acquired, news) => {
            let mark = lazy_mark(client, &queued, holder, &own);
            let mut held = Held::new(acquired, watch, Some(mark));
            held.news = news;
            Waited::Held(held)
        }
        Wake::Stop(code) => Waited::Ended(code),
    })
}

/// How the waiting loop ended.
enum Wake {
    /// With the line to say about it, if waiting said anything.
    Got(Acquired, Option<String>),
    Stop(u8),
}

/// Record when we got the lock in our key, for `status` — after a second of holding, so that the
/// short holds of a busy queue cost no write per hand-off (`status` shows a holder without it as
/// acquired when it started waiting, which is within that second).
fn lazy_mark(
    client: &Client,
    queued: &Queued,
    holder: &Holder,
    own: &lock::OwnKey,
) -> AbortOnDrop<()> {
    let (client, queued) = (client.clone(), queued.clone());
    let mut acquired = holder.clone();
    acquired.acquired_at = Some(etcdlock::holder::now_rfc3339());
    // Our own write: the watch on our key must not take it for someone else's.
    own.allow(acquired.to_json());
    AbortOnDrop(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        queued.mark_acquired(client, acquired).await;
    }))
}

/// The waiting loop: the lock, the timeout, progress ticks, a lost lease, a signal.
async fn wait(
    client: &Client,
    queued: &Queued,
    guard: &Guard,
    signals: &mut Signals,
    how: &Waiting<'_>,
) -> Result<Wake> {
    let mut progress = Progress::new(how.name, output::is_quiet());
    let mut waiter = queued.clone();
    let wait = waiter.wait(client);
    tokio::pin!(wait);
    let give_up_at = how.wait.timeout.map(|t| Instant::now() + t);
    let mut ticks = tokio::time::interval(progress.tick(how.wait.progress_interval));
    // Progress costs a queue read per tick; with nothing to show, do not ask.
    let show_progress = !output::is_quiet();
    loop {
        tokio::select! {
            acquired = &mut wait => {
                let waited = short_duration(progress.waited());
                let said = progress.finish(None);
                let news = said.then(|| format!("acquired {} after {waited}", how.name));
                return Ok(Wake::Got(acquired?, news));
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                progress.finish(None);
                let why = format!("--timeout {}", humantime::format_duration(how.wait.timeout.unwrap_or_default()));
                return Ok(Wake::Stop(give_up(client, queued, how, &why).await));
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
                return Ok(Wake::Stop(exit::signal(sig as i32)));
            }
        }
    }
}

/// Names that are legal but likely typos: a trailing slash, or a live lock whose name is a prefix
/// of ours or the other way round (different locks, though `etcdctl lock` would queue one behind
/// the other's keys).
pub fn warn_about_name(name: &str, related: Option<&str>) {
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

/// `-n` found the lock full before joining the queue: the same line as [`give_up`], from the
/// holders' keys (one read of the oldest's value), and the conflict exit code.
pub async fn conflict(client: &Client, name: &str, holders: &[Slot], code: u8) -> u8 {
    if code == 0 {
        return 0;
    }
    let state = match holders.first() {
        Some(first) => {
            let key = first.key.clone();
            let value = client
                .call(|mut c| async move { c.get(key, None).await })
                .await
                .ok();
            let holder = value
                .as_ref()
                .and_then(|v| v.kvs().first())
                .and_then(|kv| Holder::parse(kv.value()));
            let info = QueueInfo {
                holder,
                holder_key: first.key.clone(),
                ahead: holders.len() as i64,
            };
            progress::describe_queue(&info)
        }
        None => "held by someone else".to_owned(),
    };
    output::info(format!("{name} is {state}; giving up (--no-wait)"));
    code
}

/// One line naming the holder (none with `-E 0`: skipping is then the expected, silent outcome),
/// then the conflict exit code. Leaving the queue is the caller's revoke.
async fn give_up(client: &Client, queued: &Queued, how: &Waiting<'_>, why: &str) -> u8 {
    if how.wait.conflict_exit_code == 0 {
        return 0;
    }
    let state = match lock::queue_info(client, queued).await {
        Ok(Some(info)) => progress::describe_queue(&info),
        _ => "held by someone else".to_owned(),
    };
    output::info(format!("{} is {state}; giving up ({why})", how.name));
    how.wait.conflict_exit_code
}
