//! The lock algorithm, compatible with `etcdctl lock` and Go's `concurrency.Mutex`.
//!
//! Each contender puts `NAME/<lease id in hex>` attached to its lease. The key with the lowest create
//! revision holds the lock; every other contender watches only the deletion of its immediate
//! predecessor (the newest key created before its own), so a release wakes exactly one waiter (FIFO,
//! no thundering herd). After waiting we re-read our own key: if it is gone our lease expired while we
//! waited (etcd bug #11456 was a Mutex that skipped this check).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tokio::time::sleep;
use tracing::{debug, trace};

use crate::etcd::{CallError, Etcd};
use crate::exit::{self, fail};
use crate::guard::Guard;
use crate::lease::Lease;

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

pub fn key_for(name: &str, lease_id: i64) -> String {
    format!("{name}/{lease_id:x}")
}

/// Retry `op` while it fails transiently (the caller bounds the whole wait by the lease's life);
/// permanent errors (permission denied, lease not found) end the attempt.
async fn retrying<T, F, Fut>(what: &str, mut op: F) -> Result<T>
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
            Err(e) => return Err(fail(exit::UNAVAILABLE, format!("{what}: {e}"))),
        }
    }
}

/// Join the queue for `name` and wait until we hold the lock.
///
/// Never returns while we are queued but not holding: cancel by dropping the future, then revoke
/// the lease to leave the queue.
pub async fn acquire(etcd: &Etcd, name: &str, lease: &Lease, value: Vec<u8>) -> Result<Acquired> {
    let prefix = format!("{name}/");
    let key = key_for(name, lease.id);
    let oldest = || {
        GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(1)
    };
    // Idempotent: a retry after a lost answer finds our key instead of creating a second one.
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(
                key.clone(),
                value,
                Some(PutOptions::new().with_lease(lease.id)),
            ),
            TxnOp::get(prefix.clone(), Some(oldest())),
        ])
        .or_else([
            TxnOp::get(key.clone(), None),
            TxnOp::get(prefix.clone(), Some(oldest())),
        ]);
    let resp = retrying("cannot queue for the lock", || {
        let txn = txn.clone();
        etcd.call(|mut c| async move { c.txn(txn).await })
    })
    .await?;
    let header_rev = resp.header().map_or(0, |h| h.revision());
    let ops = resp.op_responses();
    let my_rev = if resp.succeeded() {
        header_rev
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
    let owner_rev = match ops.get(1) {
        Some(TxnOpResponse::Get(g)) => g.kvs().first().map_or(0, |kv| kv.create_revision()),
        _ => 0,
    };
    debug!(key, my_rev, owner_rev, "queued");
    if owner_rev == my_rev {
        return Ok(Acquired {
            key,
            fencing_token: my_rev,
            revision: header_rev,
        });
    }

    wait_for_predecessors(etcd, &prefix, my_rev).await?;

    // Our key must still be there: if our lease expired while we waited, we do not hold anything.
    let resp = retrying("cannot confirm the lock", || {
        let key = key.clone();
        etcd.call(|mut c| async move { c.get(key, None).await })
    })
    .await?;
    match resp.kvs().first() {
        Some(kv) if kv.create_revision() == my_rev => Ok(Acquired {
            key,
            fencing_token: my_rev,
            revision: resp.header().map_or(0, |h| h.revision()),
        }),
        _ => Err(fail(
            exit::UNAVAILABLE,
            "our lease expired while waiting for the lock; try again",
        )),
    }
}

/// Wait until no key under `prefix` was created before `my_rev`.
async fn wait_for_predecessors(etcd: &Etcd, prefix: &str, my_rev: i64) -> Result<()> {
    loop {
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Descend)
            .with_max_create_revision(my_rev - 1)
            .with_limit(1);
        let resp = retrying("cannot read the lock queue", || {
            let (prefix, opts) = (prefix.to_owned(), opts.clone());
            etcd.call(|mut c| async move { c.get(prefix, Some(opts)).await })
        })
        .await?;
        let Some(pred) = resp.kvs().first() else {
            return Ok(());
        };
        let pred_key = pred.key().to_vec();
        let from = resp.header().map_or(0, |h| h.revision()) + 1;
        debug!(predecessor = %String::from_utf8_lossy(&pred_key), "waiting for predecessor");
        // Any outcome but a confirmed deletion sends us round again: re-reading the queue is
        // always correct, and it is how compaction or a broken stream is survived.
        let _ = wait_deleted(etcd, pred_key, from).await;
    }
}

/// Watch `key` from revision `from` until it is deleted. `Ok(())` on deletion; `Err` if the watch
/// broke or the endpoint changed (the caller re-checks).
async fn wait_deleted(etcd: &Etcd, key: Vec<u8>, from: i64) -> Result<(), CallError> {
    let mut endpoint_changed = etcd.subscribe();
    let opts = WatchOptions::new().with_start_revision(from);
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
/// deletes it), the lock is lost now and the guard must stop the child.
pub async fn watch_own_key(etcd: Etcd, key: String, my_rev: i64, guard: Arc<Guard>) {
    loop {
        let resp = {
            let key = key.clone();
            etcd.call(|mut c| async move { c.get(key, None).await })
                .await
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "cannot read our lock key; retrying");
                sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        match resp.kvs().first() {
            Some(kv) if kv.create_revision() == my_rev => {}
            _ => {
                guard.lose(format!(
                    "lock key {key} was deleted (lease revoked or key removed by someone else)"
                ));
                return;
            }
        }
        let from = resp.header().map_or(0, |h| h.revision()) + 1;
        if wait_deleted(&etcd, key.clone().into_bytes(), from)
            .await
            .is_ok()
        {
            guard.lose(format!(
                "lock key {key} was deleted (lease revoked or key removed by someone else)"
            ));
            return;
        }
        sleep(Duration::from_millis(200)).await;
    }
}
