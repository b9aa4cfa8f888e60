//! The etcd lease behind the lock: grant, keep-alive, revoke.
//!
//! The keep-alive loop renews about every TTL/3 and feeds each acknowledgement to the [`Guard`] as
//! (send time, granted TTL). When no answer comes it resends every 500 ms, reopens the stream and
//! moves to another endpoint; it never decides on its own that the lease is safe, it only reports
//! evidence. A TTL of 0 in a response means the lease is gone (revoked or expired) right now.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcd_client::LeaseGrantOptions;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, info, trace, warn};

use crate::etcd::{CallError, Etcd};
use crate::exit::{self, fail};
use crate::guard::{BootTime, Guard};

/// How often to resend while a keep-alive goes unanswered (as the Go client does).
const RETRY: Duration = Duration::from_millis(500);

/// A granted lease.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub id: i64,
    /// The TTL the server granted (it may raise what we asked for).
    pub ttl: Duration,
    /// Send time of the grant request: the server's countdown started no earlier.
    pub granted_at: BootTime,
}

/// A random positive lease id. Choosing it ourselves makes the grant idempotent: if an answer is
/// lost and we retry, "lease already exists" tells us the first attempt succeeded, and no orphan
/// lease is left behind (fault scenario 13).
fn random_id() -> i64 {
    (random_u64() & i64::MAX as u64).max(1) as i64
}

/// 64 random bits from the kernel (getrandom(2)); the clock and pid if that fails.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let r = u64::from_le_bytes(buf);
    if n == buf.len() as isize && r != 0 {
        return r;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

impl Lease {
    /// Grant a lease of `ttl`, retrying transient failures on other endpoints for up to the dial
    /// timeout. Exit 69 if etcd cannot give us one.
    pub async fn grant(etcd: &Etcd, ttl: Duration) -> Result<Lease> {
        let id = random_id();
        let budget = Instant::now() + etcd.config().dial_timeout;
        let granted_at = BootTime::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let ttl_secs = ttl.as_secs() as i64;
            // Leave time to try every endpoint within the dial timeout.
            let config = etcd.config();
            let per_try = (config.dial_timeout / config.endpoints.len() as u32)
                .max(Duration::from_millis(500))
                .min(budget.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let res = etcd
                .call_within(per_try, |mut c| async move {
                    c.lease_grant(ttl_secs, Some(LeaseGrantOptions::new().with_id(id)))
                        .await
                })
                .await;
            match res {
                Ok(resp) => {
                    etcd.note_cluster(resp.header());
                    let granted = Duration::from_secs(resp.ttl().max(0) as u64);
                    debug!(lease = format!("{id:x}"), ttl = ?granted, "lease granted");
                    return Ok(Lease {
                        id,
                        ttl: granted,
                        granted_at,
                    });
                }
                Err(CallError::Etcd(e))
                    if crate::etcd::describe(&e).contains("lease already exists") =>
                {
                    // Our own earlier attempt went through; ask what it was granted.
                    let resp = etcd
                        .call(|mut c| async move { c.lease_time_to_live(id, None).await })
                        .await
                        .map_err(|e| {
                            fail(
                                exit::UNAVAILABLE,
                                format!("cannot read back lease {id:x}: {e}"),
                            )
                        })?;
                    etcd.note_cluster(resp.header());
                    return Ok(Lease {
                        id,
                        ttl: Duration::from_secs(resp.granted_ttl().max(0) as u64),
                        granted_at,
                    });
                }
                Err(e) if crate::etcd::is_fatal(&e) => {
                    return Err(fail(exit::UNAVAILABLE, format!("etcd refused us: {e}")));
                }
                Err(e) if Instant::now() < budget => {
                    debug!(error = %e, "lease grant failed, retrying");
                    let left = budget.saturating_duration_since(Instant::now());
                    sleep(crate::etcd::jitter(backoff).min(left)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    let config = etcd.config();
                    return Err(fail(
                        exit::UNAVAILABLE,
                        format!(
                            "cannot reach etcd at {} within {} ({e}); check --endpoints and that etcd is running",
                            config.endpoints.join(","),
                            humantime::format_duration(config.dial_timeout)
                        ),
                    ));
                }
            }
        }
    }

    /// Revoke the lease, deleting our key with it, so the next waiter starts at once. Bounded: if
    /// etcd does not answer, the lease simply expires after its TTL.
    /// `quiet`: a failure is not worth a line (the lease is known to be lost anyway).
    pub async fn revoke(&self, etcd: &Etcd, quiet: bool) {
        let id = self.id;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let res = timeout(
                deadline.saturating_duration_since(Instant::now()),
                etcd.call(|mut c| async move { c.lease_revoke(id).await }),
            )
            .await;
            match res {
                Ok(Ok(_)) => {
                    debug!(lease = format!("{id:x}"), "lease revoked");
                    return;
                }
                Ok(Err(CallError::Etcd(e))) if crate::etcd::describe(&e).contains("not found") => {
                    return;
                }
                Ok(Err(e)) if e.is_transient() && Instant::now() < deadline => {
                    debug!(error = %e, "lease revoke failed, retrying");
                    sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => {
                    if !quiet {
                        warn_left_behind(self, &e.to_string());
                    }
                    return;
                }
                Err(_) => {
                    if !quiet {
                        warn_left_behind(self, "no answer within 3s");
                    }
                    return;
                }
            }
        }
    }
}

fn warn_left_behind(lease: &Lease, why: &str) {
    crate::output::warn(format!(
        "could not revoke lease {:x} ({why}); the lock frees when it expires within {}",
        lease.id,
        humantime::format_duration(lease.ttl)
    ));
}

/// Keep the lease alive until the task is aborted or the lease is lost. Runs as its own task.
pub async fn keep_alive(etcd: Etcd, lease: Lease, guard: Arc<Guard>) {
    // Pace renewals by the time from an acknowledgement to the kill signal, not by the bare TTL:
    // three renewals fit in it, and a stream silent for a sixth of it, or for half of what is left
    // if that is more, is abandoned for another endpoint, so one dead member costs a fail-over, not
    // the lock, while a slow but working one is waited for (TTL 10s: renew every 2.5s).
    let window = guard.safe_window(lease.ttl);
    let renew_every = window / 3;
    let stale_stream = (window / 6).clamp(Duration::from_millis(250), Duration::from_secs(2));
    // The grant itself started the countdown: nothing to renew before the first period is up, and
    // not opening the stream at once keeps it off the path of the lock transaction.
    sleep(renew_every).await;
    loop {
        if guard.lost().is_some() {
            return;
        }
        let (mut client, generation) = etcd.client();
        // Opening the stream sends one keep-alive and waits for its answer, so a successful open
        // is an acknowledgement of a request sent no earlier than now.
        let sent = BootTime::now();
        // A slow answer is still worth waiting for while it can arrive in time: give the open
        // half of what is left before the kill signal (at least `stale_stream`), so a member
        // that is merely far away keeps the lock and a dead one still leaves time to fail over.
        let patience = stale_stream.max(guard.time_left() / 2);
        let opened = timeout(patience, client.lease_keep_alive(lease.id)).await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) if msg.contains("not found") => {
                guard.lose(format!(
                    "lease {:x} expired or was revoked on the server",
                    lease.id
                ));
                return;
            }
            Ok(Err(e)) => {
                debug!(error = %crate::etcd::describe(&e), "cannot open keep-alive stream");
                etcd.failover(generation).await;
                sleep(RETRY).await;
                continue;
            }
            Err(_) => {
                debug!("opening the keep-alive stream timed out");
                etcd.failover(generation).await;
                continue;
            }
        };
        if !guard.extend(sent, lease.ttl) {
            return;
        }
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
                            guard.lose(format!("lease {:x} expired or was revoked on the server", lease.id));
                            return;
                        }
                        let ttl = Duration::from_secs(resp.ttl() as u64);
                        trace!(ttl = ?ttl, "keep-alive acknowledged");
                        if !guard.extend(sent, ttl) {
                            return;
                        }
                        if pending.is_empty() {
                            next_send = Instant::now() + renew_every;
                        }
                    }
                    Ok(None) => { debug!("keep-alive stream ended"); break; }
                    Err(e) => { debug!(error = %crate::etcd::describe(&e), "keep-alive stream failed"); break; }
                },
                _ = sleep_until(next_send) => {
                    let patience = stale_stream.max(guard.time_left() / 2);
                    if let Some((_, since)) = pending.front().filter(|(_, s)| s.elapsed() > patience) {
                        info!("keep-alive unanswered for {:?}; reconnecting", since.elapsed());
                        break;
                    }
                    pending.push_back((BootTime::now(), Instant::now()));
                    if let Err(e) = keeper.keep_alive().await {
                        debug!(error = %crate::etcd::describe(&e), "keep-alive send failed");
                        break;
                    }
                    next_send = Instant::now() + RETRY;
                }
                reason = guard.wait_lost() => {
                    debug!(reason, "keep-alive stops: lease lost");
                    return;
                }
            }
        }
        etcd.failover(generation).await;
        if guard.lost().is_some() {
            warn!("lease lost");
            return;
        }
    }
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(t).await;
}
