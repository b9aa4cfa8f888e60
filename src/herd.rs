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
//! whose moments end within one queue write of the first still race (each then costs a grant, a
//! queue key and a revoke, as before).
//!
//! Reads and watches only: nothing here writes. Which holder runs is decided by the queue as
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
    let txn = Txn::new().and_then([
        TxnOp::get(prefix.clone(), Some(oldest)),
        crate::record::once_probe(client, name),
    ]);
    let resp = client.txn("cannot read the lock", txn).await?;
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
    Ok(Look {
        revision: resp.header().map_or(0, |h| h.revision()),
        holder,
        marker: !get(1)?.kvs().is_empty(),
    })
}

/// What the herd decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The period's marker is there: the job ran; nothing to do.
    Skip,
    /// No holder and no marker: join the queue as usual.
    Queue,
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
/// lock held); `on_wait` is told each holder waited for. The caller bounds the wait (timeout,
/// signals) by dropping this future. `Err` only when a read fails as a read at the start would.
pub async fn wait_out(
    client: &Client,
    name: &str,
    first: Option<Look>,
    mut on_wait: impl FnMut(&Slot),
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
                on_wait(h);
                None
            }
            Some(_) => return Ok(Outcome::Queue),
            None => Some(settle_time()),
        };
        match watch(client, name, &look, settle).await {
            Ok(Change::Quiet) => return Ok(Outcome::Queue),
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
    let mut endpoint_changed = client.subscribe();
    let (_, generation) = client.client();
    let mut stream = client
        .call(|mut c| async move { c.watch(key, Some(opts)).await })
        .await?;
    stream
        .watch(
            marker.clone(),
            Some(WatchOptions::new().with_start_revision(from)),
        )
        .await
        .map_err(CallError::Etcd)?;
    let quiet = tokio::time::sleep(settle.unwrap_or(Duration::MAX / 4));
    tokio::pin!(quiet);
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = &mut quiet, if settle.is_some() => return Ok(Change::Quiet),
            _ = endpoint_changed.changed() => {
                return Err(CallError::Etcd(etcd_client::Error::WatchError("endpoint changed".into())));
            }
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                return Err(CallError::Etcd(etcd_client::Error::WatchError(
                    "watch stream ended".into(),
                )))
            }
            Err(e) => {
                client.failover(generation).await;
                return Err(CallError::Etcd(e));
            }
        };
        if resp.canceled() {
            return Err(CallError::Etcd(etcd_client::Error::WatchError(
                resp.cancel_reason().to_owned(),
            )));
        }
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
