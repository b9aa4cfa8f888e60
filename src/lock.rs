//! The lock algorithm, compatible with `etcdctl lock` and Go's `concurrency.Mutex`, extended to a
//! counting semaphore (`--limit N`).
//!
//! Each contender puts `NAME/<lease id in hex>` attached to its lease. The N keys with the lowest
//! create revisions hold the lock (N = 1 for a mutex). A mutex waiter watches only the deletion of its
//! immediate predecessor (the newest key created before its own), so a release wakes exactly one
//! waiter (FIFO, no thundering herd). A semaphore waiter watches deletions under the prefix and
//! recounts, since any of the holders ahead may leave first. After waiting we re-read our own key: if
//! it is gone our lease expired while we waited (etcd bug #11456 was a Mutex that skipped this check).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};
use tokio::time::sleep;
use tracing::{debug, trace};

use crate::etcd::{CallError, Etcd};
use crate::exit::{self, fail};
use crate::guard::Guard;
use crate::lease::Lease;
use crate::meta::Holder;

/// What the holder learns when it gets the lock.
#[derive(Debug, Clone)]
pub struct Acquired {
    /// Our key, `NAME/<lease hex>`.
    pub key: String,
    /// Create revision of our key: strictly increasing from holder to holder (the fencing token).
    pub fencing_token: i64,
    /// Store revision at acquisition (what etcdctl exports as ETCD_LOCK_REV).
    pub revision: i64,
}

/// Our place in the queue.
#[derive(Debug, Clone)]
pub struct Queued {
    pub name: String,
    pub key: String,
    prefix: String,
    pub my_rev: i64,
    limit: u32,
    lease_id: i64,
}

/// The prefix under which a lock's keys live.
pub fn prefix_of(name: &str) -> String {
    format!("{name}/")
}

pub fn key_for(name: &str, lease_id: i64) -> String {
    format!("{}{lease_id:x}", prefix_of(name))
}

/// Retry `op` while it fails transiently (the caller bounds the whole wait by the lease's life);
/// permanent errors (permission denied, lease not found) end the attempt with exit code 69.
pub async fn retrying<T, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => {
                debug!(error = %e, "{what} failed; retrying");
                sleep(crate::etcd::jitter(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                let text = e.to_string();
                let hint = if text.contains("permission denied") {
                    "; the etcd user lacks permission on these keys (run and break need read-write on the lock's prefix, status and list need read)"
                } else if text.contains("user name is empty") {
                    "; etcd has authentication enabled: pass --user NAME, with the password in --password-file or ETCDLOCK_PASSWORD"
                } else {
                    ""
                };
                return Err(fail(exit::UNAVAILABLE, format!("{what}: {e}{hint}")));
            }
        }
    }
}

fn oldest(limit: u32) -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(i64::from(limit))
}

/// The store revision a response was served at.
fn rev(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

/// Join the queue for `name` (idempotently: a retry after a lost answer finds our key instead of
/// creating a second one). Returns our place and, if we already hold the lock, the acquisition.
pub async fn enqueue(
    etcd: &Etcd,
    name: &str,
    lease: &Lease,
    holder: &Holder,
) -> Result<(Queued, Option<Acquired>)> {
    let prefix = prefix_of(name);
    let key = key_for(name, lease.id);
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(
                key.clone(),
                holder.to_json(),
                Some(PutOptions::new().with_lease(lease.id)),
            ),
            TxnOp::get(prefix.clone(), Some(oldest(holder.limit))),
        ])
        .or_else([
            TxnOp::get(key.clone(), None),
            TxnOp::get(prefix.clone(), Some(oldest(holder.limit))),
        ]);
    let resp = retrying("cannot queue for the lock", || {
        let txn = txn.clone();
        etcd.call(|mut c| async move { c.txn(txn).await })
    })
    .await?;
    let revision = rev(resp.header());
    let ops = resp.op_responses();
    let my_rev = if resp.succeeded() {
        revision
    } else {
        match ops.first() {
            Some(TxnOpResponse::Get(g)) if !g.kvs().is_empty() => g.kvs()[0].create_revision(),
            _ => {
                return Err(fail(
                    exit::INTERNAL,
                    "unexpected answer to the lock transaction",
                ))
            }
        }
    };
    let holders = match ops.get(1) {
        Some(TxnOpResponse::Get(g)) => g.kvs().to_vec(),
        _ => Vec::new(),
    };
    check_limits(name, holder.limit, &holders)?;
    let queued = Queued {
        name: name.to_owned(),
        key: key.clone(),
        prefix,
        my_rev,
        limit: holder.limit,
        lease_id: lease.id,
    };
    debug!(key, my_rev, "queued");
    let holding = holders.iter().any(|kv| kv.create_revision() == my_rev);
    Ok((
        queued,
        holding.then_some(Acquired {
            key,
            fencing_token: my_rev,
            revision,
        }),
    ))
}

/// All holders of one lock must agree on its limit, or the semaphore means nothing.
fn check_limits(name: &str, limit: u32, holders: &[KeyValue]) -> Result<()> {
    for kv in holders {
        if let Some(other) = Holder::parse(kv.value()) {
            if other.limit != limit {
                return Err(fail(
                    exit::USAGE,
                    format!(
                        "{name} is held with --limit {} by {} pid {}; this run asked for --limit {limit}; use the same limit everywhere",
                        other.limit, other.host, other.pid
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Queued {
    /// Wait until we hold the lock. Cancel by dropping the future, then revoke the lease.
    ///
    /// Each round is one read-only transaction: the keys ahead of ours (for a mutex only the
    /// newest, whose deletion we then watch) and our own key, which must still be ours — if our
    /// lease expired while we waited, we hold nothing. A handoff therefore costs the waiter one
    /// watch event and one read, no write.
    pub async fn wait(&self, etcd: &Etcd) -> Result<Acquired> {
        let ahead = if self.limit == 1 {
            self.older_keys()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_limit(1)
                .with_keys_only()
        } else {
            // Not count_only: etcd counts the range before applying the create-revision filter.
            self.older_keys()
                .with_keys_only()
                .with_limit(i64::from(self.limit))
        };
        let txn = Txn::new().and_then([
            TxnOp::get(self.prefix.clone(), Some(ahead)),
            TxnOp::get(self.key.clone(), Some(GetOptions::new().with_keys_only())),
        ]);
        loop {
            let resp = retrying("cannot read the lock queue", || {
                let txn = txn.clone();
                etcd.call(|mut c| async move { c.txn(txn).await })
            })
            .await?;
            let revision = rev(resp.header());
            let ops = resp.op_responses();
            let (Some(TxnOpResponse::Get(ahead)), Some(TxnOpResponse::Get(own))) =
                (ops.first(), ops.get(1))
            else {
                return Err(fail(exit::INTERNAL, "unexpected answer to the queue read"));
            };
            if own.kvs().first().map(KeyValue::create_revision) != Some(self.my_rev) {
                return Err(fail(
                    exit::UNAVAILABLE,
                    format!(
                        "our lease expired while waiting for {}; try again",
                        self.name
                    ),
                ));
            }
            if ahead.kvs().len() < self.limit as usize {
                return Ok(Acquired {
                    key: self.key.clone(),
                    fencing_token: self.my_rev,
                    revision,
                });
            }
            let (key, watch) = if self.limit == 1 {
                let pred = ahead.kvs()[0].key().to_vec();
                debug!(predecessor = %String::from_utf8_lossy(&pred), "waiting for predecessor");
                (pred, WatchOptions::new())
            } else {
                // Any of the holders ahead may leave first: recount on every deletion.
                let watch = WatchOptions::new()
                    .with_prefix()
                    .with_filters([WatchFilterType::NoPut]);
                (self.prefix.clone().into_bytes(), watch)
            };
            // Any outcome but a confirmed deletion sends us round again: re-reading the queue is
            // always correct, and it is how compaction or a broken stream is survived.
            let _ = wait_deleted(etcd, key, watch.with_start_revision(revision + 1)).await;
        }
    }

    fn older_keys(&self) -> GetOptions {
        GetOptions::new()
            .with_prefix()
            .with_max_create_revision(self.my_rev - 1)
    }

    /// Record in our key when we got the lock, for `status`. Informational, so it runs beside the
    /// command instead of delaying it; only if the key is still ours (a plain put would resurrect
    /// a deleted key).
    pub async fn mark_acquired(self, etcd: Etcd, holder: Holder) {
        let mut acquired = holder;
        acquired.acquired_at = Some(crate::meta::now_rfc3339());
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                self.my_rev,
            )])
            .and_then([TxnOp::put(
                self.key.clone(),
                acquired.to_json(),
                Some(PutOptions::new().with_lease(self.lease_id)),
            )]);
        if let Err(e) = etcd.call(|mut c| async move { c.txn(txn).await }).await {
            debug!(error = %e, "cannot record the acquisition time");
        }
    }
}

/// Who is ahead of a queued contender.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    /// The oldest holder's metadata (None for a holder that is not etcdlock, e.g. etcdctl).
    pub holder: Option<Holder>,
    /// The oldest holder's key.
    pub holder_key: String,
    /// How many keys are ahead of ours.
    pub ahead: i64,
}

/// Read who holds the lock and how many are ahead of `my_rev`.
pub async fn queue_info(etcd: &Etcd, q: &Queued) -> Result<Option<QueueInfo>, CallError> {
    let txn = Txn::new().and_then([
        TxnOp::get(q.prefix.clone(), Some(oldest(1))),
        // Not count_only: etcd counts the range before applying the create-revision filter.
        TxnOp::get(q.prefix.clone(), Some(q.older_keys().with_keys_only())),
    ]);
    let resp = etcd.call(|mut c| async move { c.txn(txn).await }).await?;
    let ops = resp.op_responses();
    let (Some(TxnOpResponse::Get(first)), Some(TxnOpResponse::Get(count))) =
        (ops.first(), ops.get(1))
    else {
        return Ok(None);
    };
    Ok(first.kvs().first().map(|kv| QueueInfo {
        holder: Holder::parse(kv.value()),
        holder_key: String::from_utf8_lossy(kv.key()).into_owned(),
        ahead: count.kvs().len() as i64,
    }))
}

/// Watch with `opts` on `key` until a deletion is seen. `Ok(())` on deletion; `Err` if the watch
/// broke or the endpoint changed (the caller re-checks).
async fn wait_deleted(etcd: &Etcd, key: Vec<u8>, opts: WatchOptions) -> Result<(), CallError> {
    let mut endpoint_changed = etcd.subscribe();
    let mut stream = etcd
        .call(|mut c| async move { c.watch(key, Some(opts)).await })
        .await?;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = endpoint_changed.changed() => {
                return Err(CallError::Etcd(etcd_client::Error::WatchError("endpoint changed".into())));
            }
        };
        match msg {
            Ok(Some(resp)) => {
                if resp.canceled() {
                    return Err(CallError::Etcd(etcd_client::Error::WatchError(
                        resp.cancel_reason().to_owned(),
                    )));
                }
                trace!(events = resp.events().len(), "watch response");
                if resp
                    .events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
                {
                    return Ok(());
                }
            }
            Ok(None) => {
                return Err(CallError::Etcd(etcd_client::Error::WatchError(
                    "watch stream ended".into(),
                )))
            }
            Err(e) => {
                let (_, generation) = etcd.client();
                etcd.failover(generation).await;
                return Err(CallError::Etcd(e));
            }
        }
    }
}

/// While we hold the lock, watch our own key: if anyone deletes it (or revokes our lease, which
/// deletes it), the lock is lost now and the guard must stop the child. `acquired_at` is the store
/// revision at which we held the lock: watching from just after it misses nothing.
pub async fn watch_own_key(
    etcd: Etcd,
    key: String,
    my_rev: i64,
    acquired_at: i64,
    guard: Arc<Guard>,
) {
    let lost = |guard: &Guard| {
        guard.lose(format!(
            "lock key {key} was deleted (lease revoked or key removed by someone else)"
        ))
    };
    let mut from = acquired_at + 1;
    loop {
        let watch = WatchOptions::new().with_start_revision(from);
        match wait_deleted(&etcd, key.clone().into_bytes(), watch).await {
            Ok(()) => return lost(&guard),
            Err(e) => debug!(error = %e, "watch on our lock key broke; re-checking the key"),
        }
        // The watch broke (endpoint switch, compaction): look at the key itself, then watch
        // again from the revision of that read.
        loop {
            let resp = {
                let key = key.clone();
                etcd.call(|mut c| async move { c.get(key, None).await })
                    .await
            };
            match resp {
                Ok(r) => {
                    match r.kvs().first() {
                        Some(kv) if kv.create_revision() == my_rev => {}
                        _ => return lost(&guard),
                    }
                    from = rev(r.header()) + 1;
                    break;
                }
                Err(e) => {
                    debug!(error = %e, "cannot read our lock key; retrying");
                    sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
