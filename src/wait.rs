//! Waiting for a lock as a command's run waits for it: join the queue (cancel-safely), watch the
//! own key from that moment on, give up at once or after a timeout, report progress, leave on a
//! signal or a lost lease. What `etcdlock run` and `etcdlock acquire` do before they hold, and what
//! [`crate::runner::hold`] does first.
//!
//! The decisions are here; the words are the caller's: every step is reported as an [`Event`],
//! and the wait ends in a typed [`Waited`].

use std::sync::Arc;
use std::time::Duration;

use etcd_client::TxnOp;
use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::Result;
use crate::guard::Guard;
use crate::holder::Holder;
use crate::lock::{self, Acquired, Noticed, QueueInfo, Queued};
use crate::process::supervise::Signals;
use crate::session::{AbortOnDrop, Lease};

/// Which kind of lock is waited for. The holder metadata stored in the key carries it (its
/// `limit` and `shared`), so that every contender and `etcdlock status` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One holder at a time (`etcdctl lock`, Go's Mutex).
    Exclusive,
    /// Any number of shared holders together, an exclusive one alone (FIFO).
    Shared,
    /// Up to this many holders at once; every holder must use the same limit.
    Semaphore(u32),
}

impl Kind {
    /// The kind a holder's metadata describes.
    pub fn of(holder: &Holder) -> Kind {
        match (holder.shared, holder.limit) {
            (true, _) => Kind::Shared,
            (false, 0 | 1) => Kind::Exclusive,
            (false, n) => Kind::Semaphore(n),
        }
    }

    /// Set `holder`'s `limit` and `shared` to this kind.
    pub fn apply(self, holder: &mut Holder) {
        let (limit, shared) = match self {
            Kind::Exclusive => (1, false),
            Kind::Shared => (1, true),
            Kind::Semaphore(n) => (n.max(1), false),
        };
        holder.limit = limit;
        holder.shared = shared;
    }
}

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Until the lock is ours (or a signal, or the lease is lost).
    Forever,
    /// Give up if the lock is not free at once (`-n`).
    NoWait,
    /// Give up after this long (`-w`; zero is [`Patience::NoWait`]'s decision).
    For(Duration),
}

/// What a wait may do.
#[derive(Clone)]
pub struct Wait<'a> {
    /// The lock.
    pub name: &'a str,
    /// The metadata our queue key stores; its `limit` and `shared` are the [`Kind`].
    pub holder: &'a Holder,
    /// How long to wait.
    pub patience: Patience,
    /// Read the queue this often while waiting and report it ([`Event::Progress`]); `None`: never
    /// (each report costs a read).
    pub progress_every: Option<Duration>,
    /// On giving up, read who holds the lock for [`Waited::GaveUp`] (one read).
    pub describe_give_up: bool,
    /// Ops for the queue transaction that make etcd refuse it unless we may do what they do (see
    /// [`lock::enqueue_checking`]).
    pub checks: Vec<TxnOp>,
}

impl<'a> Wait<'a> {
    /// Wait for `name` as long as it takes, storing `holder` in our key; no progress reads, no
    /// extra checks.
    pub fn new(name: &'a str, holder: &'a Holder) -> Wait<'a> {
        Wait {
            name,
            holder,
            patience: Patience::Forever,
            progress_every: None,
            describe_give_up: false,
            checks: Vec::new(),
        }
    }
}

/// What a wait tells its caller while it goes on.
pub enum Event<'a> {
    /// Our key is in the queue (and watched from now on); what joining noticed about the name.
    Queued(&'a Noticed),
    /// The lock is held by others; we wait (reported once, before the first progress).
    Blocked,
    /// A progress read of the queue (`None`: it could not be read, or it is no longer held).
    Progress(Option<&'a QueueInfo>),
}

/// How a wait ended.
pub enum Waited {
    /// We hold the lock; its key is watched for as long as the [`Holding`] lives.
    Acquired(Holding),
    /// The patience ran out: who held the lock then, when asked ([`Wait::describe_give_up`]).
    /// Our queue key is left to the lease (revoke it: [`crate::runner::hold`] does).
    GaveUp(Option<QueueInfo>),
    /// A signal came while waiting (its key is left to the lease, as for [`Waited::GaveUp`]).
    Cancelled(Signal),
    /// The lease was lost while waiting (revoked, expired, the key deleted).
    Lost(String),
}

/// A lock we hold after waiting: the acquisition, and the tasks that live as long as it does —
/// the watch on our own key (its deletion or a put over it is loss, latched in the guard) and,
/// after a second of holding, the acquisition time written in our key for `status`.
pub struct Holding {
    /// The acquisition.
    pub acquired: Acquired,
    /// How long we waited (zero when the lock was free at once).
    pub waited: Duration,
    /// Whether we waited at all (the lock was held by others when we queued).
    pub blocked: bool,
    _watch: AbortOnDrop<()>,
    _mark: Option<AbortOnDrop<()>>,
}

impl Holding {
    /// Stop watching our key (and marking it): the caller is about to delete it itself.
    pub fn into_acquired(self) -> Acquired {
        self.acquired
    }
}

/// Queue for the lock and wait as `how` says, with `lease` (guarded by `guard`) carrying our key.
///
/// Guarantees: our key is watched from the moment it exists, so a loss while waiting is noticed
/// ([`Waited::Lost`]); cancel-safe — dropping the returned future (e.g. `tokio::time::timeout`)
/// at any point, the queue transaction in flight included, deletes our key once the transaction
/// is answered, so nobody waits behind it until the lease ends. Errors are etcd's (refused,
/// unreachable); the key is then deleted too.
pub async fn wait(
    client: &Client,
    lease: &Lease,
    guard: &Arc<Guard>,
    signals: &mut Signals,
    how: &Wait<'_>,
    report: &dyn Fn(Event<'_>),
) -> Result<Waited> {
    let started = Instant::now();
    let enqueued = tokio::select! {
        r = lock::enqueue_guarded(client, how.name, lease, how.holder, &how.checks) => r?,
        reason = guard.wait_lost() => return Ok(Waited::Lost(reason)),
    };
    let (mut queued, acquired, noticed, cleanup) = enqueued;
    report(Event::Queued(&noticed));
    let own = lock::OwnKey::new(
        queued.key.clone(),
        queued.my_rev,
        lease.id,
        how.holder.to_json(),
    );
    let watch = AbortOnDrop(tokio::spawn(lock::watch_own_key(
        client.clone(),
        own.clone(),
        queued.enqueued_at,
        guard.clone(),
    )));
    let holding = |acquired, blocked, mark| Holding {
        acquired,
        waited: started.elapsed(),
        blocked,
        _watch: watch,
        _mark: mark,
    };
    if let Some(acquired) = acquired {
        cleanup.disarm();
        return Ok(Waited::Acquired(holding(acquired, false, None)));
    }
    let give_up_now = match how.patience {
        Patience::NoWait => true,
        Patience::For(t) => t.is_zero(),
        Patience::Forever => false,
    };
    // The queue transaction's keys-only look cannot see that shared holders ahead let a shared
    // contender in: one read of the keys ahead decides, before anything says "blocked".
    if give_up_now || how.holder.shared {
        if let Some(acquired) = queued.check(client).await? {
            cleanup.disarm();
            return Ok(Waited::Acquired(holding(acquired, false, None)));
        }
    }
    if give_up_now {
        cleanup.disarm();
        return Ok(Waited::GaveUp(describe(client, &queued, how).await));
    }
    report(Event::Blocked);
    let give_up_at = match how.patience {
        Patience::For(t) => Some(Instant::now() + t),
        _ => None,
    };
    let mut ticks = tokio::time::interval(how.progress_every.unwrap_or(Duration::from_secs(3600)));
    let mut waiter = queued.clone();
    let waiting = waiter.wait(client);
    tokio::pin!(waiting);
    loop {
        tokio::select! {
            acquired = &mut waiting => {
                let acquired = acquired?;
                cleanup.disarm();
                let mark = lazy_mark(client, &queued, how.holder, &own);
                return Ok(Waited::Acquired(holding(acquired, true, Some(mark))));
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                cleanup.disarm();
                return Ok(Waited::GaveUp(describe(client, &queued, how).await));
            }
            _ = ticks.tick(), if how.progress_every.is_some() => {
                let info = lock::queue_info(client, &queued).await.ok().flatten();
                report(Event::Progress(info.as_ref()));
            }
            reason = guard.wait_lost() => {
                cleanup.disarm();
                return Ok(Waited::Lost(reason));
            }
            sig = signals.recv_cancel() => {
                cleanup.disarm();
                return Ok(Waited::Cancelled(sig));
            }
        }
    }
}

/// Who holds the lock, for a give-up, if asked.
async fn describe(client: &Client, queued: &Queued, how: &Wait<'_>) -> Option<QueueInfo> {
    if !how.describe_give_up {
        return None;
    }
    lock::queue_info(client, queued).await.ok().flatten()
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
    acquired.acquired_at = Some(crate::holder::now_rfc3339());
    // Our own write: the watch on our key must not take it for someone else's.
    own.allow(acquired.to_json());
    AbortOnDrop(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        queued.mark_acquired(client, acquired).await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_the_holder() {
        for kind in [Kind::Exclusive, Kind::Shared, Kind::Semaphore(3)] {
            let mut holder = Holder::current(&[], 1, Default::default());
            kind.apply(&mut holder);
            assert_eq!(Kind::of(&holder), kind);
        }
    }
}
