//! A session: one etcd lease, kept alive, and the [`Guard`] that knows when it may expire.
//!
//! The keep-alive loop renews every [`SafetyParams::renew_every`] and feeds each acknowledgement to
//! the guard as (send time, granted TTL). When no answer comes it resends every
//! [`SafetyParams::RESEND`], reopens the stream and moves to another endpoint; it never decides on
//! its own that the lease is safe, it only reports evidence. A TTL of 0 in a response means the
//! lease is gone (revoked or expired) right now.
//!
//! Unlike Go's `concurrency.Session`, whose `Done()` fires when its keep-alive channel closes (at
//! best when the server already expired the lease), [`Session::lost`] fires at the guard's kill
//! point: [`SafetyParams::kill_after`] plus half a second *before* the server can expire the lease.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{LeaseGrantOptions, LeaseKeepAliveStream, LeaseKeeper};
use nix::sys::signal::Signal;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, info, trace};

use crate::client::{describe, is_fatal, jitter, keep_telling, CallError, Client};
use crate::error::{Error, Result};
use crate::guard::{BootTime, Guard};
use crate::safety::SafetyParams;

/// A granted lease.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// The lease id (chosen by us, see [`Lease::grant`]).
    pub id: i64,
    /// The TTL the server granted (it may raise what we asked for).
    pub ttl: Duration,
    /// Send time of the grant request: the server's countdown started no earlier.
    pub granted_at: BootTime,
}

/// How [`Lease::end`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// We revoked it; etcd's revision right after the revoke. The keys attached to the lease
    /// were deleted at that revision (if any were left), so every write of a later holder of the
    /// lock comes after it.
    At(i64),
    /// It was gone already: it expired, or someone else revoked it.
    AlreadyGone,
}

/// A random positive lease id. Choosing it ourselves makes the grant idempotent: if an answer is
/// lost and we retry, "lease already exists" tells us the first attempt succeeded, and no orphan
/// lease is left behind (fault scenario 13).
fn random_id() -> i64 {
    (crate::random::u64() & i64::MAX as u64).max(1) as i64
}

impl Lease {
    /// Grant a lease of `ttl`, retrying transient failures on other endpoints for up to the dial
    /// timeout.
    pub async fn grant(client: &Client, ttl: Duration) -> Result<Lease> {
        let id = random_id();
        let config = client.config();
        let budget = Instant::now() + config.dial_timeout();
        let granted_at = BootTime::now();
        let mut backoff = Duration::from_millis(50);
        let mut telling = String::new();
        loop {
            // Leave time to try every endpoint within the dial timeout.
            let per_try = (config.dial_timeout() / config.endpoints().len() as u32)
                .max(Duration::from_millis(500))
                .min(budget.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let ttl_secs = ttl.as_secs() as i64;
            let res = client
                .call_within(per_try, |mut c| async move {
                    c.lease_grant(ttl_secs, Some(LeaseGrantOptions::new().with_id(id)))
                        .await
                })
                .await;
            let granted = |ttl: i64| Lease {
                id,
                ttl: Duration::from_secs(ttl.max(0) as u64),
                granted_at,
            };
            match res {
                Ok(resp) => {
                    client.note_cluster(resp.header());
                    debug!(lease = format!("{id:x}"), ttl = resp.ttl(), "lease granted");
                    return Ok(granted(resp.ttl()));
                }
                Err(CallError::Etcd(e)) if describe(&e).contains("lease already exists") => {
                    // Our own earlier attempt went through; ask what it was granted.
                    return Ok(granted(Self::granted_ttl(client, id).await?));
                }
                Err(e) if is_fatal(&e) => {
                    return Err(Error::Refused {
                        context: format!("etcd at {} refused us", config.endpoints().join(",")),
                        reason: e.to_string(),
                    });
                }
                Err(e) if Instant::now() < budget => {
                    debug!(error = %e, "lease grant failed, retrying");
                    keep_telling(&mut telling, "", &e);
                    let left = budget.saturating_duration_since(Instant::now());
                    sleep(jitter(backoff).min(left)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    keep_telling(&mut telling, "", &e);
                    return Err(unreachable(client, telling));
                }
            }
        }
    }

    /// An existing lease (a handle's, kept by no process): its granted TTL, and `granted_at` set
    /// so that `granted_at + ttl` is the earliest moment it can expire by what the server says
    /// now (the TTL left, counted from before the question). [`Error::Lost`] if it is gone.
    pub async fn attach(client: &Client, id: i64) -> Result<Lease> {
        let sent = BootTime::now();
        let resp = client
            .call(|mut c| async move { c.lease_time_to_live(id, None).await })
            .await
            .map_err(|e| unreachable(client, failure(&e)))?;
        client.note_cluster(resp.header());
        if resp.ttl() <= 0 {
            return Err(Error::Lost(format!("lease {id:x} expired or was revoked")));
        }
        let ttl = Duration::from_secs(resp.granted_ttl().max(0) as u64);
        let left = Duration::from_secs(resp.ttl() as u64);
        Ok(Lease {
            id,
            ttl,
            granted_at: sent.saturating_sub(ttl.saturating_sub(left)),
        })
    }

    /// The TTL granted to lease `id` (after a grant whose answer was lost).
    async fn granted_ttl(client: &Client, id: i64) -> Result<i64> {
        let resp = client
            .call(|mut c| async move { c.lease_time_to_live(id, None).await })
            .await
            .map_err(|e| unreachable(client, failure(&e)))?;
        client.note_cluster(resp.header());
        Ok(resp.granted_ttl())
    }

    /// Revoke the lease, deleting our key with it, so the next waiter starts at once. Bounded to 3
    /// s: if etcd does not answer, the lease simply expires after its TTL; the error says why.
    pub async fn revoke(&self, client: &Client) -> Result<(), String> {
        self.end(client).await.map(|_| ())
    }

    /// [`Lease::revoke`], saying how it ended: revoked by us at a revision, or gone already.
    pub async fn end(&self, client: &Client) -> Result<Revoked, String> {
        let id = self.id;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let res = timeout(
                left,
                client.call(|mut c| async move { c.lease_revoke(id).await }),
            )
            .await;
            match res {
                Ok(Ok(resp)) => {
                    debug!(lease = format!("{id:x}"), "lease revoked");
                    let revision = resp.header().map_or(0, |h| h.revision());
                    return Ok(Revoked::At(revision));
                }
                Ok(Err(CallError::Etcd(e))) if describe(&e).contains("not found") => {
                    return Ok(Revoked::AlreadyGone)
                }
                Ok(Err(e)) if e.is_transient() && Instant::now() < deadline => {
                    debug!(error = %e, "lease revoke failed, retrying");
                    sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("no answer within 3s".into()),
            }
        }
    }
}

fn unreachable(client: &Client, last_error: String) -> Error {
    let config = client.config();
    Error::Unreachable {
        endpoints: config.endpoints().join(","),
        within: humantime::format_duration(config.dial_timeout()).to_string(),
        last_error,
    }
}

/// A failed call in words, naming the member; a timeout without its duration, which is only
/// what was left of the budget.
fn failure(e: &CallError) -> String {
    match e {
        CallError::Timeout(_) => "no answer".to_owned(),
        e => e.to_string(),
    }
}

/// Revoke lease `id` from a thread of its own, with its own runtime and connection (the caller
/// may be a panic hook or a `Drop` on the runtime's only thread, which cannot wait for a request
/// of its own runtime), waiting at most `within`; whether it was revoked. A lease that is gone
/// already counts as revoked.
pub(crate) fn revoke_on_own_thread(
    config: crate::client::Config,
    id: i64,
    within: Duration,
) -> bool {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("etcdlock-revoke".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let revoked = rt.block_on(async {
                let etcd = Client::connect(config, crate::client::Check::Lazy)
                    .await
                    .ok()?;
                let lease = Lease {
                    id,
                    ttl: Duration::ZERO,
                    granted_at: BootTime::now(),
                };
                lease.end(&etcd).await.ok()
            });
            let _ = done_tx.send(revoked.is_some());
        });
    spawned.is_ok() && done_rx.recv_timeout(within) == Ok(true)
}

/// Keep the lease alive until the task is aborted or the lease is lost. Runs as its own task.
pub async fn keep_alive(client: Client, lease: Lease, guard: Arc<Guard>) {
    // The grant itself started the countdown: nothing to renew before the first period is up, and
    // not opening the stream at once keeps it off the path of the lock transaction. A lease taken
    // over (a handle's) may have less left: renew within half of that.
    sleep(guard.params().renew_every().min(guard.time_left() / 2)).await;
    while guard.lost().is_none() {
        let (_, generation) = client.client();
        let Some((keeper, stream)) = open_stream(&client, &lease, &guard).await else {
            continue;
        };
        if !renew_on(keeper, stream, &lease, &guard).await {
            return;
        }
        client.failover(generation).await;
    }
}

/// How long to wait for a keep-alive answer: a slow answer is still worth waiting for while it
/// can arrive in time, so half of what is left before the kill signal (at least
/// [`SafetyParams::stale_after`]); a member that is merely far away keeps the lock, and a dead
/// one still leaves time to fail over.
fn patience(guard: &Guard) -> Duration {
    guard.params().stale_after().max(guard.time_left() / 2)
}

/// Open a keep-alive stream on the current endpoint. Opening sends one keep-alive and waits for
/// its answer, so success is an acknowledgement of a request sent no earlier than the call.
async fn open_stream(
    client: &Client,
    lease: &Lease,
    guard: &Guard,
) -> Option<(LeaseKeeper, LeaseKeepAliveStream)> {
    let (mut c, generation) = client.client();
    let sent = BootTime::now();
    match timeout(patience(guard), c.lease_keep_alive(lease.id)).await {
        Ok(Ok(pair)) => guard.extend(sent, lease.ttl).then_some(pair),
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) if msg.contains("not found") => {
            lose_gone(guard, lease);
            None
        }
        Ok(Err(e)) => {
            debug!(error = %describe(&e), "cannot open keep-alive stream");
            client.failover(generation).await;
            sleep(SafetyParams::RESEND).await;
            None
        }
        Err(_) => {
            debug!("opening the keep-alive stream timed out");
            client.failover(generation).await;
            None
        }
    }
}

fn lose_gone(guard: &Guard, lease: &Lease) {
    guard.lose(format!(
        "lease {:x} expired or was revoked on the server",
        lease.id
    ));
}

/// Renew on one stream until it breaks (true: try another) or the lease is lost (false).
async fn renew_on(
    mut keeper: LeaseKeeper,
    mut stream: LeaseKeepAliveStream,
    lease: &Lease,
    guard: &Guard,
) -> bool {
    let renew_every = guard.params().renew_every();
    // Send times of the unanswered keep-alives, oldest first (etcd answers in order): the boot
    // clock for the deadline, the runtime's clock for "unanswered too long".
    let mut pending: VecDeque<(BootTime, Instant)> = VecDeque::new();
    let mut next_send = Instant::now() + renew_every;
    loop {
        tokio::select! {
            biased;
            msg = stream.message() => match msg {
                Ok(Some(resp)) => {
                    let Some((sent, _)) = pending.pop_front() else { continue };
                    if resp.ttl() <= 0 {
                        lose_gone(guard, lease);
                        return false;
                    }
                    trace!(ttl = resp.ttl(), "keep-alive acknowledged");
                    if !guard.extend(sent, Duration::from_secs(resp.ttl() as u64)) {
                        return false;
                    }
                    if pending.is_empty() {
                        next_send = Instant::now() + renew_every;
                    }
                }
                Ok(None) => { debug!("keep-alive stream ended"); return true; }
                Err(e) => { debug!(error = %describe(&e), "keep-alive stream failed"); return true; }
            },
            _ = tokio::time::sleep_until(next_send) => {
                if let Some((_, since)) = pending.front().filter(|(_, s)| s.elapsed() > patience(guard)) {
                    info!("keep-alive unanswered for {:?}; reconnecting", since.elapsed());
                    return true;
                }
                pending.push_back((BootTime::now(), Instant::now()));
                if let Err(e) = keeper.keep_alive().await {
                    debug!(error = %describe(&e), "keep-alive send failed");
                    return true;
                }
                next_send = Instant::now() + SafetyParams::RESEND;
            }
            reason = guard.wait_lost() => {
                debug!(reason, "keep-alive stops: lease lost");
                return false;
            }
        }
    }
}

/// Aborts a background task when its owner is dropped, on every path.
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A lease kept alive, with a guard that declares it lost before the server can expire it.
///
/// ```no_run
/// # async fn demo() -> etcdlock::Result<()> {
/// use etcdlock::{Client, Config, SafetyParams, Session};
/// use etcdlock::client::Check;
///
/// let client = Client::connect(Config::new(["http://127.0.0.1:2379"])?, Check::Lazy).await?;
/// let session = Session::new(&client, SafetyParams::default()).await?;
/// tokio::select! {
///     reason = session.lost() => eprintln!("stop now: {reason}"),
///     _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
/// }
/// session.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session {
    client: Client,
    lease: Lease,
    guard: Arc<Guard>,
    _keeper: AbortOnDrop<()>,
}

impl Session {
    /// Grant a lease with `params` and start keeping it alive.
    pub async fn new(client: &Client, params: SafetyParams) -> Result<Session> {
        let lease = Lease::grant(client, params.ttl()).await?;
        Self::from_lease(client, lease, params, Signal::SIGTERM).await
    }

    /// A session on an already granted lease (the server may have raised the TTL: `params` are
    /// re-checked against what it granted). An armed process tree gets `kill_signal` first.
    pub async fn from_lease(
        client: &Client,
        lease: Lease,
        params: SafetyParams,
        kill_signal: Signal,
    ) -> Result<Session> {
        let params = match params.with_granted_ttl(lease.ttl) {
            Ok(p) => p,
            Err(e) => {
                let _ = lease.revoke(client).await;
                return Err(e.into());
            }
        };
        let guard = Guard::start(lease.granted_at + lease.ttl, params, kill_signal)?;
        let keeper = tokio::spawn(keep_alive(client.clone(), lease, guard.clone()));
        Ok(Session {
            client: client.clone(),
            lease,
            guard,
            _keeper: AbortOnDrop(keeper),
        })
    }

    /// The lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The client the session runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The guard enforcing the session's deadline: to observe it (loss, time left); its mutators
    /// are the library's own, so no caller can extend the deadline or disarm it.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// The earliest moment (CLOCK_BOOTTIME) the server could expire the lease if no further
    /// keep-alive is acknowledged.
    pub fn expires_no_earlier_than(&self) -> BootTime {
        self.guard.deadline()
    }

    /// Resolves, with the reason, once the lease counts as lost: revoked, expired, the lock key
    /// deleted, or no keep-alive acknowledged in time — always before the server can expire it.
    pub async fn lost(&self) -> String {
        self.guard.wait_lost().await
    }

    /// Why the lease was lost, if it was.
    pub fn is_lost(&self) -> Option<String> {
        self.guard.lost()
    }

    /// Stop keeping the lease alive and guarding it, but leave it granted: it lives on for its
    /// TTL (a lock taken for a handle).
    pub fn detach(self) -> Lease {
        self.guard.stop();
        self.lease
    }

    /// Stop keeping the lease alive and revoke it (deleting every key attached to it).
    pub async fn close(self) -> Result<(), String> {
        self.end().await.map(|_| ())
    }

    /// [`Session::close`], saying how the revoke ended (see [`Lease::end`]).
    pub async fn end(self) -> Result<Revoked, String> {
        self.guard.stop();
        self._keeper.0.abort();
        self.lease.end(&self.client).await
    }
}

/// A session dropped without [`Session::close`] or [`Session::detach`] stops keeping its lease
/// alive and stops its guard's thread (an armed tree is disarmed first: the guard never signals a
/// tree after its session is gone). The lease is **not** revoked (that needs a request, and
/// `drop` cannot wait for one): it, and every key on it, stays until etcd expires it, at most its
/// TTL after the last acknowledged keep-alive. Close the session to free the lock at once.
impl Drop for Session {
    fn drop(&mut self) {
        self.guard.stop();
    }
}
