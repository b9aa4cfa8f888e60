//! A herd that makes no writes: how `run --once-per` contenders wait for a job another host runs
//! without joining the queue.
//!
//! Under `--once-per` any host may run the job and fairness between hosts is worth nothing, so a
//! contender that finds the lock held needs no place in the queue: it watches the holder's key and
//! the period's marker (both from the revision of the read that found them), and when the holder
//! goes it reads once more. The marker there means the job ran: skip. No holder and no marker (the
//! run failed, or never began): queue as usual.
//!
//! Hosts that fire at the same moment all find the lock free. Each then waits a random moment
//! ([`SETTLE`] at most) watching the lock's keys and the marker before it joins the queue: the
//! first whose moment ends queues, the others see its key appear and wait as a herd. Only those
//! whose moments end within one queue write of the first still race.
//!
//! Those that still race meet at the lease grant: [`claim`] grants the lease with an id every
//! contender derives from the same state of the lock ([`Look::claim_id`]), so etcd grants it to
//! one of them and refuses the others ("lease already exists"), which then wait as a herd again:
//! one refused grant each instead of a grant, a queue key and a revoke. A contender looks the
//! lease up before it grants (a read), so only those whose look comes before the first grant
//! is applied pay even that.
//!
//! Apart from that grant, reads and watches only. Which holder runs is decided by the queue as
//! always; this only keeps contenders out of it while their joining could only cost etcd writes.

use std::time::Duration;

use etcd_client::{
    EventType, GetOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tracing::{debug, trace};

use crate::client::{CallError, Client};
use crate::error::{Error, Result};
use crate::queue::{self, Slot};

/// The longest a contender that finds the lock free waits, watching, before it queues: the
/// spread over which simultaneous firings are drawn apart (0.38 s on average, see
/// [`wait_out`]). Short next to a job's period, long next to one queue write on a loaded etcd.
pub const SETTLE: Duration = Duration::from_millis(500);

/// One look at a lock for the herd: one linearizable read.
#[derive(Debug, Clone)]
pub struct Look {
    /// The revision the read was served at: the watches start after it.
    pub revision: i64,
    /// The oldest queue key: the holder (none: the lock is free).
    pub holder: Option<Slot>,
    /// Whether the period's marker is in force.
    pub marker: bool,
    /// The lease id contenders that saw the lock in this state claim it with (see [`claim`]):
    /// from the name and the last run record's revision, which only a run changes.
    pub claim_id: i64,
}

/// Read lock `name`'s holder (its oldest queue key) and whether its once-marker is there, in one
/// read-only transaction (no proposal).
pub async fn look(client: &Client, name: &str) -> Result<Look> {
    let prefix = queue::prefix_of(name);
    let oldest = GetOptions::new()
        .with_prefix()
        .with_keys_only()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1 + queue::SLACK);
    let keys_of = crate::record::Keys::of(client, name);
    let txn = Txn::new().and_then([
        TxnOp::get(prefix.clone(), Some(oldest)),
        crate::record::once_probe(client, name),
        TxnOp::get(keys_of.last_run(), Some(GetOptions::new().with_keys_only())),
    ]);
    // Bounded as a grant is: a herd must not outlive an etcd that went away for good.
    let bound = client.config().dial_timeout().max(Duration::from_secs(5));
    let resp = tokio::time::timeout(bound, client.txn("cannot read the lock", txn))
        .await
        .map_err(|_| Error::Unreachable {
            endpoints: client.config().endpoints().join(","),
            within: humantime::format_duration(bound).to_string(),
            last_error: "no answer".into(),
        })??;
    let ops = resp.op_responses();
    let get = |i: usize| match ops.get(i) {
        Some(TxnOpResponse::Get(g)) => Ok(g),
        _ => Err(Error::Protocol("unexpected answer".into())),
    };
    let keys = get(0)?;
    let mut holder = queue::slots(prefix.as_bytes(), keys.kvs())
        .into_iter()
        .next();
    if holder.is_none() && keys.more() {
        // A page full of nested locks' keys: a rare shape; let the queue sort it out.
        holder = Some(Slot {
            key: String::new(),
            create_revision: 0,
            lease: 0,
            mode: None,
        });
    }
    let last_run = get(2)?.kvs().first().map_or(0, |kv| kv.mod_revision());
    Ok(Look {
        revision: resp.header().map_or(0, |h| h.revision()),
        holder,
        marker: !get(1)?.kvs().is_empty(),
        claim_id: claim_id(&keys_of.last_run(), last_run),
    })
}

/// A positive lease id from `key` and `revision` (FNV-1a, 63 bits): the same for every contender
/// that read the same state, different after every run.
fn claim_id(key: &str, revision: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(revision.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h & i64::MAX as u64).max(1)) as i64
}

/// Grant the run's lease under `id` ([`Look::claim_id`]): `Some` if etcd granted it to this
/// request, `None` if the lease exists (another contender claimed first: wait as a herd). Only an
/// answered grant counts as ours: a retry after a lost answer that finds the lease existing
/// cannot tell whose it is and takes it for another's, so at worst a lease of ours is left with
/// no key, to expire after `ttl` (never a lease used by two).
///
/// The lease is looked up first (a read): a refused grant is still a raft proposal, and
/// contenders whose settle ends after another's grant was applied, but before its queue key
/// appeared, then cost etcd nothing. A look that fails (etcd unreachable, or no read permission
/// on the keys of another contender's lease) grants as before: the grant decides.
pub async fn claim(
    client: &Client,
    id: i64,
    ttl: Duration,
) -> Result<Option<crate::session::Lease>> {
    let exists = client
        .call(|mut c| async move { c.lease_time_to_live(id, None).await })
        .await
        .is_ok_and(|resp| resp.ttl() > 0);
    if exists {
        debug!(
            lease = format!("{id:x}"),
            "lease claimed by another contender (seen before granting)"
        );
        return Ok(None);
    }
    let granted_at = crate::clock::BootTime::now();
    let ttl_secs = ttl.as_secs() as i64;
    let resp = client
        .retrying("cannot grant the lease", || {
            client.call(|mut c| async move {
                c.lease_grant(
                    ttl_secs,
                    Some(etcd_client::LeaseGrantOptions::new().with_id(id)),
                )
                .await
            })
        })
        .await;
    match resp {
        Ok(resp) => {
            client.note_cluster(resp.header());
            debug!(lease = format!("{id:x}"), ttl = resp.ttl(), "lease claimed");
            Ok(Some(crate::session::Lease {
                id,
                ttl: Duration::from_secs(resp.ttl().max(0) as u64),
                granted_at,
            }))
        }
        Err(Error::Refused { reason, .. }) if reason.contains("lease already exists") => {
            debug!(
                lease = format!("{id:x}"),
                "lease claimed by another contender"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What the herd decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The period's marker is there: the job ran; nothing to do.
    Skip,
    /// No holder and no marker: join the queue as usual, with a lease from [`claim`] under
    /// `claim_id` (or any lease).
    Queue {
        /// [`Look::claim_id`] of the look that found the lock free.
        claim_id: i64,
    },
}

/// What ended one watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Something worth a new look: the holder's key went, a key appeared, the marker was written.
    Look,
    /// The watched moment ended with no change (only when the lock was free).
    Quiet,
}

/// Wait, without a write, until lock `name` is free with no once-marker ([`Outcome::Queue`]) or its
/// marker is there ([`Outcome::Skip`]). `first` is a look already made (e.g. the one that found the
/// lock held); `on_look` is told the holder each look found (`None`: free, settling). The caller
/// bounds the wait (timeout, signals) by dropping this future. `Err` only when a read fails as a
/// read at the start would.
pub async fn wait_out(
    client: &Client,
    name: &str,
    first: Option<Look>,
    mut on_look: impl FnMut(Option<&Slot>),
) -> Result<Outcome> {
    let mut look = match first {
        Some(l) => l,
        None => self::look(client, name).await?,
    };
    loop {
        if look.marker {
            return Ok(Outcome::Skip);
        }
        let settle = match &look.holder {
            Some(h) if !h.key.is_empty() => {
                on_look(Some(h));
                None
            }
            Some(_) => {
                return Ok(Outcome::Queue {
                    claim_id: look.claim_id,
                })
            }
            None => {
                on_look(None);
                Some(settle_time())
            }
        };
        match watch(client, name, &look, settle).await {
            Ok(Change::Quiet) => {
                return Ok(Outcome::Queue {
                    claim_id: look.claim_id,
                })
            }
            Ok(Change::Look) => {}
            Err(e) => {
                // A broken watch (endpoint switch, compaction): look again, not too eagerly.
                debug!(error = %e, "herd watch broke; looking again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        look = self::look(client, name).await?;
    }
}

/// A random moment in `[0, SETTLE)`, more likely late than early (density growing as
/// `e^(4t/SETTLE)`, after the Sift contention window): whatever the number of hosts firing, the
/// earliest moments are drawn by few of them, so the first to queue is rarely followed within one
/// queue write by another. A uniform draw over 200 ms let 2–11 hosts of 200 race (measured);
/// see BENCHMARKS.md row 10.
fn settle_time() -> Duration {
    let u = (crate::random::u64() >> 11) as f64 / (1u64 << 53) as f64;
    let beta = 4.0 / SETTLE.as_secs_f64();
    let t = (1.0 + u * (4.0f64.exp() - 1.0)).ln() / beta;
    Duration::from_secs_f64(t.clamp(0.0, SETTLE.as_secs_f64()))
}

/// Watch from just after `look`: with a holder, its key's deletion or the marker's write; without
/// (`settle` given), any queue key appearing or the marker's write, for at most `settle`.
async fn watch(
    client: &Client,
    name: &str,
    look: &Look,
    settle: Option<Duration>,
) -> Result<Change, CallError> {
    let from = look.revision + 1;
    let marker = crate::record::Keys::of(client, name).once().into_bytes();
    let prefix = queue::prefix_of(name);
    let (key, opts) = match &look.holder {
        Some(h) => (h.key.clone(), WatchOptions::new().with_start_revision(from)),
        None => (
            prefix.clone(),
            WatchOptions::new().with_prefix().with_start_revision(from),
        ),
    };
    let mut watch = client.watch(key, Some(opts)).await?;
    watch
        .stream
        .watch(
            marker.clone(),
            Some(WatchOptions::new().with_start_revision(from)),
        )
        .await
        .map_err(CallError::Etcd)?;
    let quiet = tokio::time::sleep(settle.unwrap_or(Duration::MAX / 4));
    tokio::pin!(quiet);
    loop {
        let resp = tokio::select! {
            // An event that came before the settle's end is seen first, even when both are
            // ready by the time this task runs (200 contenders on two cores run late): a coin
            // flip here sent a contender that should have seen another's queue key to claim.
            biased;
            r = watch.next(client) => r?,
            _ = &mut quiet, if settle.is_some() => return Ok(Change::Quiet),
        };
        trace!(events = resp.events().len(), "herd watch response");
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let put = event.event_type() == EventType::Put;
            let change = if kv.key() == marker.as_slice() {
                put
            } else if look.holder.is_some() {
                // The holder's key gone (its acquisition mark, a put, changes nothing here).
                !put
            } else {
                put && queue::is_queue_key(prefix.as_bytes(), kv)
            };
            if change {
                return Ok(Change::Look);
            }
        }
    }
}
