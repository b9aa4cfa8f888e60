//! The lock algorithm, compatible with `etcdctl lock` and Go's `concurrency.Mutex`, extended to a
//! counting semaphore (`--limit N`).
//!
//! Each contender puts `NAME/<lease id in hex>` attached to its lease. The N keys with the lowest
//! create revisions hold the lock (N = 1 for a mutex). A mutex waiter watches only the deletion of its
//! immediate predecessor (the newest key created before its own), so a release wakes exactly one
//! waiter (FIFO, no thundering herd). A semaphore waiter watches deletions under the prefix and
//! recounts, since any of the holders ahead may leave first. After waiting we re-read our own key: if
//! it is gone our lease expired while we waited (etcd bug #11456 was a Mutex that skipped this check).
//! A waiter whose look saw exactly one key older than its own watches both keys in one watch
//! instead, so the predecessor's deletion, with no change to our key before it, is that check
//! already (see `wait_turn`): the hand-off then costs no read.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};
use tokio::time::sleep;
use tracing::{debug, trace};

use crate::client::{CallError, Client};
use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::holder::{Holder, Mode};
use crate::queue::{self, Slot};
use crate::session::{AbortOnDrop, Lease, Revoked, Session};

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

impl Acquired {
    /// A comparison that holds only while our key is still ours, at its create revision (Go's
    /// `Mutex.IsOwner()`): in a transaction's `when`, etcd itself refuses the write otherwise.
    pub fn is_owner(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.fencing_token)
    }
}

/// Our place in the queue.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The lock.
    pub name: String,
    /// Our key.
    pub key: String,
    prefix: String,
    /// Our key's create revision (our place in the queue; the fencing token once we hold).
    pub my_rev: i64,
    /// The store revision the queue transaction was served at: watching our key from just
    /// after it misses nothing.
    pub enqueued_at: i64,
    limit: u32,
    mode: Mode,
    lease_id: i64,
    /// The keys ahead of ours as the queue transaction saw them, when it saw the whole queue
    /// (then the first wait round needs no read): (slots, store revision).
    known_ahead: Option<(Vec<Slot>, i64)>,
    /// Whether the last look at the queue saw every key created before ours, and they were one
    /// queue key and nothing else: then that key's deletion alone, seen with no change to ours
    /// before it, proves we hold the lock (see [`wait_turn`]).
    sole_ahead: bool,
}

/// What joining the queue learnt besides our place.
#[derive(Debug, Default)]
pub struct Noticed {
    /// A live lock nested under ours (`/jobs/backup` held while `/jobs` is taken): likely a
    /// typo. Locks whose names are a prefix of ours are not looked for (see `nested_lock`).
    pub related_lock: Option<String>,
}

/// Keys only, sorted by create revision: a lock's queue in order, never its values.
fn queue_order(order: SortOrder) -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_keys_only()
        .with_sort(SortTarget::Create, order)
}

/// The store revision a response was served at.
fn rev(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

fn get_of(op: Option<&TxnOpResponse>) -> Option<&etcd_client::GetResponse> {
    match op {
        Some(TxnOpResponse::Get(g)) => Some(g),
        _ => None,
    }
}

/// A live lock nested under `name` (its keys are in our prefix, so our queue read shows them
/// for free), from a page of our prefix: likely a typo. Locks whose names are a prefix of ours
/// are not looked for: that read ranges over every sibling lock's keys, and, until etcd compacts,
/// over the keys of all their past runs (+7 to +8.5 ms per run beside a sibling with 20 000 past
/// runs, on etcd 3.4 and 3.5, before 479b29f removed that read; `scripts/bench` row 13d watches
/// for its return), a price no notice is worth on every run.
fn nested_lock(name: &str, own_page: &[KeyValue]) -> Option<String> {
    own_page.iter().find_map(|kv| {
        let n = queue::lock_name_of(kv)?;
        (n != name.as_bytes()).then(|| String::from_utf8_lossy(n).into_owned())
    })
}

/// Our key's create revision from the queue transaction's answer: the transaction's own revision
/// if it put the key, else what the retry found.
fn my_revision(resp: &etcd_client::TxnResponse) -> Result<i64> {
    if resp.succeeded() {
        return Ok(rev(resp.header()));
    }
    get_of(resp.op_responses().first())
        .and_then(|g| g.kvs().first())
        .map(KeyValue::create_revision)
        .ok_or_else(|| Error::Protocol("unexpected answer to the lock transaction".into()))
}

/// One transaction: put our key unless it exists (a retry after a lost answer finds it instead),
/// and read the oldest keys of the queue, keys only; `checks` go last in both branches. It reads
/// nothing outside the lock's own prefix: etcd refuses a whole transaction for one range the user
/// may not read, and the documented grant is read-write on that prefix.
fn queue_txn(name: &str, key: &str, lease: &Lease, holder: &Holder, checks: &[TxnOp]) -> Txn {
    let prefix = queue::prefix_of(name);
    let oldest = queue_order(SortOrder::Ascend).with_limit(i64::from(holder.limit) + queue::SLACK);
    let mut then = vec![
        TxnOp::put(
            key,
            holder.to_json(),
            Some(PutOptions::new().with_lease(lease.id)),
        ),
        TxnOp::get(prefix.clone(), Some(oldest.clone())),
    ];
    then.extend(checks.iter().cloned());
    let mut otherwise = vec![
        TxnOp::get(key, Some(GetOptions::new().with_keys_only())),
        TxnOp::get(prefix, Some(oldest)),
    ];
    otherwise.extend(checks.iter().cloned());
    Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then(then)
        .or_else(otherwise)
}

/// Join the queue for `name` (idempotently: a retry after a lost answer finds our key instead of
/// creating a second one). Returns our place and, if we already hold the lock, the acquisition.
pub async fn enqueue(
    etcd: &Client,
    name: &str,
    lease: &Lease,
    holder: &Holder,
) -> Result<(Queued, Option<Acquired>, Noticed)> {
    enqueue_checking(etcd, name, lease, holder, &[]).await
}

/// [`enqueue`], with `checks` in the queue transaction: ops that change nothing but make etcd
/// refuse the whole transaction, before we queue, unless we may do what they do (e.g.
/// [`crate::record::write_probe`]: `--once-per` must be able to write its marker). They go
/// last in both branches, so the answers' positions stay as [`enqueue`] reads them.
pub async fn enqueue_checking(
    etcd: &Client,
    name: &str,
    lease: &Lease,
    holder: &Holder,
    checks: &[TxnOp],
) -> Result<(Queued, Option<Acquired>, Noticed)> {
    let prefix = queue::prefix_of(name);
    let key = queue::key_for(name, lease.id);
    let limit = holder.limit;
    let txn = queue_txn(name, &key, lease, holder, checks);
    let resp = etcd.txn("cannot queue for the lock", txn).await?;
    let revision = rev(resp.header());
    let ops = resp.op_responses();
    let my_rev = my_revision(&resp)?;
    let page = get_of(ops.get(1))
        .ok_or_else(|| Error::Protocol("unexpected answer to the lock transaction".into()))?;
    let noticed = Noticed {
        related_lock: nested_lock(name, page.kvs()),
    };
    let mut slots = queue::slots(prefix.as_bytes(), page.kvs());
    let whole_queue = !page.more();
    if !whole_queue && slots.len() < limit as usize {
        // Keys of nested locks filled the page: read on, still keys only.
        slots.extend(oldest_after(etcd, &prefix, &slots, page.kvs(), limit).await?);
    }
    let holders: Vec<Slot> = slots.iter().take(limit as usize).cloned().collect();
    check_limits(etcd, name, limit, &holders, &key).await?;
    let mode = holder.mode();
    let holding = holds_at_once(mode, &holders, my_rev);
    let known_ahead = (whole_queue && mode == Mode::Exclusive).then(|| {
        let ahead = slots.iter().filter(|s| s.create_revision < my_rev);
        (ahead.cloned().collect::<Vec<_>>(), revision)
    });
    let older = |kvs: &[KeyValue]| {
        kvs.iter()
            .filter(|kv| kv.create_revision() < my_rev)
            .count()
    };
    let sole_ahead = known_ahead
        .as_ref()
        .is_some_and(|(ahead, _)| ahead.len() == 1 && older(page.kvs()) == 1);
    let queued = Queued {
        name: name.to_owned(),
        key,
        prefix,
        my_rev,
        enqueued_at: revision,
        limit,
        mode,
        lease_id: lease.id,
        known_ahead,
        sole_ahead,
    };
    debug!(key = queued.key, my_rev, "queued");
    let acquired = holding.then(|| Acquired {
        key: queued.key.clone(),
        fencing_token: my_rev,
        revision,
    });
    Ok((queued, acquired, noticed))
}

/// Whether the queue transaction's keys-only look already shows us holding: an exclusive
/// contender among the `limit` oldest keys; a shared one only when nobody is ahead at all
/// (otherwise the modes of the keys ahead decide, and `wait` reads them).
fn holds_at_once(mode: Mode, holders: &[Slot], my_rev: i64) -> bool {
    match mode {
        Mode::Exclusive => holders.iter().any(|s| s.create_revision == my_rev),
        Mode::Shared => holders.first().map(|s| s.create_revision) == Some(my_rev),
    }
}

/// More of the oldest queue keys after a first page that held too few (keys of nested locks in
/// the way), until `limit` are found or the range ends.
async fn oldest_after(
    etcd: &Client,
    prefix: &str,
    found: &[Slot],
    page: &[KeyValue],
    limit: u32,
) -> Result<Vec<Slot>> {
    let mut more = Vec::new();
    let mut after = page.last().map_or(0, KeyValue::create_revision);
    while found.len() + more.len() < limit as usize {
        let opts = queue_order(SortOrder::Ascend)
            .with_min_create_revision(after + 1)
            .with_limit(i64::from(limit) + queue::SLACK);
        let resp = etcd
            .retrying("cannot read the lock queue", || {
                let (prefix, opts) = (prefix.to_owned(), opts.clone());
                etcd.call(|mut c| async move { c.get(prefix, Some(opts)).await })
            })
            .await?;
        more.extend(queue::slots(prefix.as_bytes(), resp.kvs()));
        match resp.kvs().last() {
            Some(last) if resp.more() => after = last.create_revision(),
            _ => break,
        }
    }
    Ok(more)
}

/// All holders of one lock must agree on its limit, or the semaphore means nothing. Reads the
/// values of the other holders (only when there are any).
async fn check_limits(
    etcd: &Client,
    name: &str,
    limit: u32,
    holders: &[Slot],
    own_key: &str,
) -> Result<()> {
    let others: Vec<TxnOp> = holders
        .iter()
        .filter(|s| s.key != own_key)
        .map(|s| TxnOp::get(s.key.clone(), None))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let txn = Txn::new().and_then(others);
    let resp = etcd.txn("cannot read the lock's holders", txn).await?;
    for kv in resp
        .op_responses()
        .iter()
        .filter_map(|op| get_of(Some(op)))
        .flat_map(|g| g.kvs())
    {
        if let Some(other) = Holder::parse(kv.value()) {
            if other.limit != limit {
                return Err(Error::LimitMismatch {
                    name: name.to_owned(),
                    theirs: other.limit,
                    ours: limit,
                    holder: format!("{} pid {}", other.host, other.pid),
                });
            }
        }
    }
    Ok(())
}

impl Queued {
    /// Wait until we hold the lock. Cancel by dropping the future, then revoke the lease.
    ///
    /// Each round is one read-only transaction: the queue keys ahead of ours (for a mutex only
    /// the newest, whose deletion we then watch) and our own key, which must still be ours — if
    /// our lease expired while we waited, we hold nothing. A handoff therefore costs the waiter
    /// one watch event and one read, no write. The first round reuses what the queue transaction
    /// saw when that was the whole queue.
    pub async fn wait(&mut self, etcd: &Client) -> Result<Acquired> {
        // The revision of the deletion that woke us: a member that has applied it may answer
        // the next read from its own state (see `read_ahead`).
        let mut woken_at = None;
        loop {
            let (ahead, revision) = match self.round(etcd, woken_at).await? {
                Ok(acquired) => return Ok(acquired),
                Err(blocked) => blocked,
            };
            // Any outcome but a confirmed deletion sends us round again: re-reading the queue is
            // always correct, and it is how compaction or a broken stream is survived.
            woken_at = if self.limit == 1 {
                // The newest key ahead of ours that blocks us: its deletion is our turn (or a
                // reason to look).
                // (Blocked means at least one key ahead; without one, look again.)
                let Some(pred) = ahead.iter().max_by_key(|s| s.create_revision) else {
                    continue;
                };
                debug!(predecessor = %pred.key, "waiting for predecessor");
                if std::mem::take(&mut self.sole_ahead) && self.mode == Mode::Exclusive {
                    match wait_turn(etcd, pred, &self.key, revision).await {
                        Ok(Turn::Ours(at)) => {
                            // Nothing ahead any more, and our key was there: round two needs
                            // no read.
                            self.known_ahead = Some((Vec::new(), at));
                            continue;
                        }
                        Ok(Turn::Look(at)) => Some(at),
                        Ok(Turn::Gap) => wait_gone(etcd, pred, revision).await.ok(),
                        Err(_) => None,
                    }
                } else {
                    wait_gone(etcd, pred, revision).await.ok()
                }
            } else {
                // Any of the holders ahead may leave first: recount on every deletion.
                let watch = WatchOptions::new()
                    .with_prefix()
                    .with_filters([WatchFilterType::NoPut])
                    .with_start_revision(revision + 1);
                let prefix = self.prefix.clone().into_bytes();
                wait_deleted(etcd, prefix, watch, None).await.ok()
            };
        }
    }

    /// Whether we hold the lock now, by one look at the keys ahead (no waiting): what `--no-wait`
    /// and [`Mutex::try_lock`] need when the queue transaction alone could not tell (a shared
    /// contender behind shared holders, or a page filled by nested locks' keys).
    pub async fn check(&mut self, etcd: &Client) -> Result<Option<Acquired>> {
        Ok(self.round(etcd, None).await?.ok())
    }

    /// One look: `Ok` if we hold, else the keys that block us and the revision of the read.
    async fn round(
        &mut self,
        etcd: &Client,
        woken_at: Option<i64>,
    ) -> Result<std::result::Result<Acquired, (Vec<Slot>, i64)>> {
        let (ahead, revision) = match self.known_ahead.take() {
            Some(known) => known,
            None => self.read_ahead(etcd, woken_at).await?,
        };
        let ahead = queue::blockers(self.mode, &ahead);
        if ahead.len() < self.limit as usize {
            return Ok(Ok(Acquired {
                key: self.key.clone(),
                fencing_token: self.my_rev,
                revision,
            }));
        }
        Ok(Err((ahead, revision)))
    }

    /// Our key and the queue keys ahead of it, in one range (create revision at most ours,
    /// newest first, keys only): we hold the lock when our key is there and fewer than `limit`
    /// are ahead. Our key missing means our lease ended: we hold nothing (etcd bug #11456 was a
    /// Mutex that skipped this check).
    ///
    /// After a deletion at revision `woken_at`, the read is served serializable, from the state
    /// of the member that reported the deletion: safe, because no key older than ours can appear
    /// later (older keys were all created before ours), so a state at or after the deletion that
    /// shows none ahead is final. It also keeps the read off the raft loop, where it would queue
    /// behind the releasing holder's lease revoke. A state older than `woken_at` (another member
    /// after a fail-over) is not used: the read is repeated linearizable.
    async fn read_ahead(
        &mut self,
        etcd: &Client,
        woken_at: Option<i64>,
    ) -> Result<(Vec<Slot>, i64)> {
        let need = i64::from(self.limit);
        let shared = self.mode == Mode::Shared;
        let order = |rev: i64, limit: i64| {
            let o = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_max_create_revision(rev)
                .with_limit(limit);
            // A shared contender needs the modes of the keys ahead (values are capped at 16 KiB).
            if shared {
                o
            } else {
                o.with_keys_only()
            }
        };
        let opts = order(self.my_rev, need + queue::SLACK + 1);
        let serializable = woken_at.is_some_and(|r| r >= self.my_rev);
        let fetch = |opts: GetOptions| {
            let prefix = self.prefix.clone();
            etcd.retrying("cannot read the lock queue", move || {
                let (prefix, opts) = (prefix.clone(), opts.clone());
                etcd.call(|mut c| async move { c.get(prefix, Some(opts)).await })
            })
        };
        let mut resp = fetch(if serializable {
            opts.clone().with_serializable()
        } else {
            opts.clone()
        })
        .await?;
        if serializable && rev(resp.header()) < woken_at.unwrap_or_default() {
            resp = fetch(opts).await?;
        }
        let revision = rev(resp.header());
        let read = |kvs: &[KeyValue]| queue::slots_with_modes(self.prefix.as_bytes(), kvs);
        let mut slots = read(resp.kvs());
        if slots.first().map(|s| s.create_revision) != Some(self.my_rev) {
            return Err(Error::ExpiredWhileWaiting {
                name: self.name.clone(),
            });
        }
        slots.remove(0);
        // Our key and exactly one other, and nothing older beyond the page.
        self.sole_ahead = !resp.more() && resp.kvs().len() == 2 && slots.len() == 1;
        let mut last = resp.kvs().last().map(KeyValue::create_revision);
        let mut more = resp.more();
        // The page held too few keys that block us (nested locks' keys, shared holders): read
        // further back.
        while more && queue::blockers(self.mode, &slots).len() < self.limit as usize {
            let Some(before) = last else { break };
            let page = fetch(order(before - 1, need + queue::SLACK)).await?;
            slots.extend(read(page.kvs()));
            last = page.kvs().last().map(KeyValue::create_revision);
            more = page.more();
        }
        Ok((slots, revision))
    }

    fn older_keys(&self, order: SortOrder) -> GetOptions {
        queue_order(order).with_max_create_revision(self.my_rev - 1)
    }

    /// Record in our key when we got the lock (`holder.acquired_at`, else now), for `status`.
    /// Informational, so it runs beside the command instead of delaying it; only if the key is
    /// still ours (a plain put would resurrect a deleted key).
    pub async fn mark_acquired(self, etcd: Client, holder: Holder) {
        let acquired = Acquired {
            key: self.key.clone(),
            fencing_token: self.my_rev,
            revision: 0,
        };
        mark(&etcd, &acquired, self.lease_id, &holder).await;
    }
}

/// Store `holder` (with its `acquired_at`, else now) in our key, only if the key is still ours (a
/// plain put would resurrect a deleted key). Informational: a failure is only logged.
pub async fn mark(etcd: &Client, acquired: &Acquired, lease_id: i64, holder: &Holder) {
    if let Err(e) = mark_held(etcd, acquired, lease_id, holder).await {
        debug!(error = %e, "cannot record the acquisition time");
    }
}

/// Store `holder` (with its `acquired_at`, else now) in our key if the key is still ours: created
/// at our fencing token, on our lease. True if written.
pub async fn mark_held(
    etcd: &Client,
    acquired: &Acquired,
    lease_id: i64,
    holder: &Holder,
) -> Result<bool> {
    let mut holder = holder.clone();
    if holder.acquired_at.is_none() {
        holder.acquired_at = Some(crate::holder::now_rfc3339());
    }
    let key = acquired.key.clone();
    let txn = Txn::new()
        .when([
            Compare::create_revision(key.clone(), CompareOp::Equal, acquired.fencing_token),
            Compare::lease(key.clone(), CompareOp::Equal, lease_id),
        ])
        .and_then([TxnOp::put(
            key,
            holder.to_json(),
            Some(PutOptions::new().with_lease(lease_id)),
        )]);
    Ok(etcd.txn("cannot mark the lock key", txn).await?.succeeded())
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

/// Read who holds the lock and how many are ahead of `my_rev` (keys only, then the one value).
pub async fn queue_info(etcd: &Client, q: &Queued) -> Result<Option<QueueInfo>, CallError> {
    let prefix = q.prefix.clone();
    let opts = q.older_keys(SortOrder::Ascend);
    let resp = etcd
        .call(|mut c| async move { c.get(prefix, Some(opts)).await })
        .await?;
    let ahead = queue::slots(q.prefix.as_bytes(), resp.kvs());
    let Some(first) = ahead.first() else {
        return Ok(None);
    };
    let key = first.key.clone();
    let value = etcd
        .call(|mut c| async move { c.get(key, None).await })
        .await?;
    Ok(Some(QueueInfo {
        holder: value.kvs().first().and_then(|kv| Holder::parse(kv.value())),
        holder_key: first.key.clone(),
        ahead: ahead.len() as i64,
    }))
}

/// Wait until `pred`, seen in a read at `read_at`, is deleted. `Ok(revision)` as
/// [`wait_deleted`].
///
/// The watch starts at the current revision, not at `read_at + 1`: etcd serves a watch that
/// starts in the past from its "unsynced" group, which it catches up only every 100 ms, and in a
/// busy queue the store has always moved on since our read, so a hand-off would wait up to
/// 100 ms for its event (measured: 60-90 ms stalls in about half the rounds of 20 contenders). A
/// watch from now is delivered at once; what it cannot see, a deletion between our read and its
/// creation, one read of the key then shows — needed only when the revision at creation is past
/// `read_at`.
async fn wait_gone(etcd: &Client, pred: &Slot, read_at: i64) -> Result<i64, CallError> {
    let key = pred.key.clone().into_bytes();
    let check = GoneCheck {
        key: key.clone(),
        create_revision: pred.create_revision,
        read_at,
    };
    wait_deleted(etcd, key, WatchOptions::new(), Some(check)).await
}

/// How a [`wait_turn`] ended.
enum Turn {
    /// The predecessor was deleted at this revision, our key unchanged until then: we hold.
    Ours(i64),
    /// Something changed at this revision (our key, or the predecessor's put over): read again.
    Look(i64),
    /// The store moved between our read and the watch: wait as [`wait_gone`] does.
    Gap,
}

/// Wait for our turn when the look at `read_at` saw exactly one key created before ours, `pred`,
/// and nothing else: one watch over the range from the lower to the higher of the two keys (the
/// keys between them are newer than ours and ignored), from now. Its events come in revision
/// order, so `pred`'s deletion, with no event on our key before it, shows our key present and
/// none older at that revision — what the read after waking would show, one round trip earlier.
/// No key older than ours can appear later. If the store moved between the read and the watch
/// (events the watch cannot see), [`Turn::Gap`]: the caller waits as before.
async fn wait_turn(etcd: &Client, pred: &Slot, own: &str, read_at: i64) -> Result<Turn, CallError> {
    let (low, high) = match pred.key.as_str() < own {
        true => (pred.key.as_str(), own),
        false => (own, pred.key.as_str()),
    };
    let mut end = high.as_bytes().to_vec();
    end.push(0);
    let opts = WatchOptions::new().with_range(end);
    let mut watch = etcd.watch(low.as_bytes(), Some(opts)).await?;
    loop {
        let resp = watch.next(etcd).await?;
        if resp.created() {
            let from = rev(resp.header());
            if from == 0 || from > read_at {
                return Ok(Turn::Gap);
            }
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            if kv.key() == own.as_bytes() {
                return Ok(Turn::Look(kv.mod_revision()));
            }
            if kv.key() == pred.key.as_bytes() {
                return Ok(match event.event_type() {
                    EventType::Delete => Turn::Ours(kv.mod_revision()),
                    EventType::Put => Turn::Look(kv.mod_revision()),
                });
            }
        }
    }
}

/// What to look at once a watch from now exists: whether `key` (created at `create_revision`)
/// went away after the read at `read_at` and before the watch began.
struct GoneCheck {
    key: Vec<u8>,
    create_revision: i64,
    read_at: i64,
}

impl GoneCheck {
    /// `Some(revision)` if the key is gone (or is another key by now), read linearizable so that
    /// the answer includes everything up to the watch's start on any member.
    async fn gone(&self, etcd: &Client, watch_from: i64) -> Result<Option<i64>, CallError> {
        // (0: no header to tell, so look.)
        if watch_from != 0 && watch_from <= self.read_at {
            return Ok(None);
        }
        let key = self.key.clone();
        let opts = GetOptions::new().with_keys_only();
        let resp = etcd
            .call(|mut c| async move { c.get(key, Some(opts)).await })
            .await?;
        let same = resp
            .kvs()
            .first()
            .is_some_and(|kv| kv.create_revision() == self.create_revision);
        Ok((!same).then(|| rev(resp.header())))
    }
}

/// Watch with `opts` on `key` until a deletion is seen. `Ok(revision)` on deletion (the member
/// that sent it has applied at least that revision); `Err` if the watch broke or the endpoint
/// changed (the caller re-checks). With `check`, the watch starts now and the key is looked at
/// once the watch exists (see [`wait_gone`]).
async fn wait_deleted(
    etcd: &Client,
    key: Vec<u8>,
    opts: WatchOptions,
    mut check: Option<GoneCheck>,
) -> Result<i64, CallError> {
    let mut watch = etcd.watch(key, Some(opts)).await?;
    loop {
        let resp = watch.next(etcd).await?;
        trace!(events = resp.events().len(), "watch response");
        if resp.created() {
            if let Some(check) = check.take() {
                if let Some(gone_at) = check.gone(etcd, rev(resp.header())).await? {
                    return Ok(gone_at);
                }
            }
        }
        if resp
            .events()
            .iter()
            .any(|e| e.event_type() == EventType::Delete)
        {
            return Ok(rev(resp.header()));
        }
    }
}

/// What our own key must look like while it is ours: created at `create_revision`, attached to
/// `lease`, holding one of the values we wrote ourselves (the queue transaction's, the
/// acquisition mark's). Anything else is someone else's write: an `etcdctl put` over the key
/// detaches it from our lease (etcdlock contenders then no longer see it, so another takes the
/// lock) or changes how it holds (a value turned shared lets readers in).
#[derive(Debug, Clone)]
pub struct OwnKey {
    /// The key.
    pub key: String,
    /// Its create revision (the fencing token once it holds).
    pub create_revision: i64,
    /// Our lease.
    pub lease: i64,
    values: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl OwnKey {
    /// Our key as we put it: with `value`.
    pub fn new(key: String, create_revision: i64, lease: i64, value: Vec<u8>) -> OwnKey {
        OwnKey {
            key,
            create_revision,
            lease,
            values: Arc::new(std::sync::Mutex::new(vec![value])),
        }
    }

    /// We are about to write `value` into our key ourselves: not a change by someone else.
    pub fn allow(&self, value: Vec<u8>) {
        if let Ok(mut values) = self.values.lock() {
            values.push(value);
        }
    }

    /// Why `kv` (our key as a put left it) is no longer ours, if it is not.
    fn changed(&self, kv: &KeyValue) -> Option<String> {
        let key = &self.key;
        if kv.create_revision() != self.create_revision {
            return Some(format!(
                "lock key {key} was deleted and created anew by someone else"
            ));
        }
        if kv.lease() != self.lease {
            let now = match kv.lease() {
                0 => "no lease".to_owned(),
                other => format!("lease {other:x}"),
            };
            return Some(format!(
                "lock key {key} was overwritten by someone else and detached from our lease (it has {now} now)"
            ));
        }
        let ours = self
            .values
            .lock()
            .map(|v| v.iter().any(|v| v.as_slice() == kv.value()))
            .unwrap_or(true);
        (!ours)
            .then(|| format!("lock key {key} was overwritten by someone else (its value changed)"))
    }
}

/// While we hold the lock (or wait for it), watch our own key for any change: if anyone deletes
/// it (or revokes our lease, which deletes it), or puts over it (see [`OwnKey`]), the lock is
/// lost now and the guard must stop the child. `acquired_at` is a store revision at which the key
/// was as `own` says: watching from just after it misses nothing.
pub async fn watch_own_key(etcd: Client, own: OwnKey, acquired_at: i64, guard: Arc<Guard>) {
    let key = own.key.clone();
    let mut from = acquired_at + 1;
    loop {
        match watch_changes(&etcd, &own, from).await {
            Ok(reason) => return guard.lose(reason),
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
                    let reason = match r.kvs().first() {
                        Some(kv) => own.changed(kv),
                        None => Some(deleted(&key)),
                    };
                    if let Some(reason) = reason {
                        return guard.lose(reason);
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

fn deleted(key: &str) -> String {
    format!("lock key {key} was deleted (lease revoked or key removed by someone else)")
}

/// Watch `own`'s key from revision `from` until it changes: `Ok(why)`; `Err` if the watch broke
/// or the endpoint changed (the caller re-checks).
async fn watch_changes(etcd: &Client, own: &OwnKey, from: i64) -> Result<String, CallError> {
    let opts = WatchOptions::new().with_start_revision(from);
    let mut watch = etcd.watch(own.key.as_bytes(), Some(opts)).await?;
    loop {
        let resp = watch.next(etcd).await?;
        for event in resp.events() {
            let reason = match (event.event_type(), event.kv()) {
                (EventType::Delete, _) => Some(deleted(&own.key)),
                (EventType::Put, Some(kv)) => own.changed(kv),
                (EventType::Put, None) => None,
            };
            if let Some(reason) = reason {
                return Ok(reason);
            }
        }
    }
}

/// Delete `key` if it is still the key created at `create_revision` but no longer attached to
/// `lease` (someone put over it): nothing else would ever delete it, and a key without a lease
/// blocks `etcdctl lock` and Go's Mutex for ever. True if deleted. A key still on our lease is left
/// alone (the lease's revoke removes it).
pub async fn remove_detached(
    client: &Client,
    key: &str,
    create_revision: i64,
    lease: i64,
) -> Result<bool> {
    let txn = Txn::new()
        .when([
            Compare::create_revision(key.to_owned(), CompareOp::Equal, create_revision),
            Compare::lease(key.to_owned(), CompareOp::NotEqual, lease),
        ])
        .and_then([TxnOp::delete(key.to_owned(), None)]);
    Ok(client
        .txn("cannot remove the detached lock key", txn)
        .await?
        .succeeded())
}

/// What a look at a lock, before joining its queue, found (reads only: a contender that would
/// give up at once costs etcd no write).
#[derive(Debug, Clone, Default)]
pub struct Peek {
    /// The oldest queue keys, up to the limit: the holders.
    pub holders: Vec<Slot>,
    /// Whether the read saw the whole front of the queue (false: keys of nested locks filled the
    /// page, and the lock may or may not be full).
    pub complete: bool,
    /// Whether a once-per-period marker is in force (when asked).
    pub once_marker: bool,
    /// A live lock nested under ours (see [`Noticed::related_lock`]).
    pub related_lock: Option<String>,
}

impl Peek {
    /// The lock is certainly held by `limit` holders.
    pub fn full(&self, limit: u32) -> bool {
        self.holders.len() >= limit as usize
    }
}

/// Look at lock `name` without a lease or a write: whether a contender in `mode` would have to
/// wait (for an exclusive one: keys only; a shared one needs the keys' modes) and, with
/// `once_marker`, whether its once-per-period marker is there. One linearizable read.
pub async fn peek(
    client: &Client,
    name: &str,
    limit: u32,
    mode: Mode,
    once_marker: bool,
) -> Result<Peek> {
    let prefix = queue::prefix_of(name);
    let oldest = match mode {
        Mode::Exclusive => {
            queue_order(SortOrder::Ascend).with_limit(i64::from(limit) + queue::SLACK)
        }
        Mode::Shared => GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend)
            .with_limit(4 * queue::SLACK),
    };
    let mut ops = vec![TxnOp::get(prefix.clone(), Some(oldest))];
    // Only when asked: `-n` alone needs no read of the records (nor the permission for it).
    if once_marker {
        ops.push(crate::record::once_probe(client, name));
    }
    let txn = Txn::new().and_then(ops);
    let resp = client.txn("cannot read the lock", txn).await?;
    let ops = resp.op_responses();
    let page = get_of(ops.first()).ok_or_else(|| Error::Protocol("unexpected answer".into()))?;
    let queue = queue::slots_with_modes(prefix.as_bytes(), page.kvs());
    let mut holders = match mode {
        // Anything ahead that blocks a shared contender: an exclusive holder or waiter.
        Mode::Shared => queue::blockers(Mode::Shared, &queue),
        Mode::Exclusive => queue,
    };
    holders.truncate(limit as usize);
    Ok(Peek {
        complete: !page.more() || holders.len() >= limit as usize,
        holders,
        once_marker: once_marker && get_of(ops.get(1)).is_some_and(|g| !g.kvs().is_empty()),
        related_lock: nested_lock(name, page.kvs()),
    })
}

/// Write a run's record (no once-marker) while keeping the lock: for a run inside a lock held by
/// a handle, which stays held afterwards. True if we still held the key.
pub async fn record_only(
    client: &Client,
    name: &str,
    acquired: &Acquired,
    ending: &crate::record::Ending,
) -> Result<bool> {
    let keys = crate::record::Keys::of(client, name);
    let mut ending = ending.clone();
    ending.once_lease = None;
    let txn = Txn::new()
        .when([Compare::create_revision(
            acquired.key.clone(),
            CompareOp::Equal,
            acquired.fencing_token,
        )])
        .and_then(ending.held_ops(&keys))
        .or_else(ending.lost_ops(&keys));
    Ok(client.txn("cannot record the run", txn).await?.succeeded())
}

/// Release a held lock: delete our key (only our key revision), and in the same transaction write
/// what `ending` says (the run record, the once-marker) — the marker only if we still held the
/// key. True if we still held it. The lease is the caller's to revoke afterwards.
pub async fn release(
    client: &Client,
    name: &str,
    acquired: &Acquired,
    ending: Option<&crate::record::Ending>,
) -> Result<bool> {
    let keys = crate::record::Keys::of(client, name);
    let mut held = ending.map(|e| e.held_ops(&keys)).unwrap_or_default();
    held.push(TxnOp::delete(acquired.key.clone(), None));
    let txn = Txn::new()
        .when([Compare::create_revision(
            acquired.key.clone(),
            CompareOp::Equal,
            acquired.fencing_token,
        )])
        .and_then(held)
        .or_else(ending.map(|e| e.lost_ops(&keys)).unwrap_or_default());
    let resp = client.txn("cannot release the lock", txn).await?;
    Ok(resp.succeeded())
}

/// Release a lock still held at the end of a run by revoking `session`'s lease (which deletes our
/// key), and write `ending`'s records beside the revoke: one round trip instead of [`release`]'s
/// two. How the records write ended (`Err`: why it failed; `Ok` too when there was nothing to
/// write), and how the revoke ended. Each request is bounded to 3 s.
///
/// For a run whose key was ours when its command ended and that writes no once-marker: a marker,
/// or a record that must know whether the key is still ours (a lost run), needs [`release`],
/// whose transaction compares the key. Here the order of the two requests at the server does not
/// matter (the revoke is sent first, since it is what the next holder waits for): no later holder of an exclusive
/// lock can write its record before it has seen our key go, and ours was sent by then. Only a
/// retry, after a failed first attempt, comes later, so it writes only over records last written
/// no later than the revoke ([`crate::record::Ending::records_txn`] with `up_to`). Left open: a
/// first attempt that timed out may still be applied by etcd later, as a timed-out [`release`]
/// can.
pub async fn release_with_records(
    session: Session,
    name: &str,
    ending: &crate::record::Ending,
) -> (
    std::result::Result<(), String>,
    std::result::Result<Revoked, String>,
) {
    const BOUND: Duration = Duration::from_secs(3);
    if !ending.has_records() {
        return (Ok(()), session.end().await);
    }
    let client = session.client().clone();
    let keys = crate::record::Keys::of(&client, name);
    let first = ending.records_txn(&keys, None);
    // The revoke goes first: it is what the next holder waits for. Sent second, it landed in etcd's
    // next raft batch, one WAL fsync behind the records (issue 25: about 0.5 ms of every
    // hand-off). The records need nothing of our lease: they follow it at once, not a round trip
    // later (the order between two requests in flight is etcd's either way).
    let (revoked, first) = tokio::join!(
        session.end(),
        tokio::time::timeout(
            BOUND,
            client.call(|mut c| async move { c.txn(first).await })
        )
    );
    let why = match first {
        Ok(Ok(_)) => return (Ok(()), revoked),
        Ok(Err(e)) if !e.is_transient() => return (Err(e.to_string()), revoked),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}", humantime::format_duration(BOUND)),
    };
    let recorded = match &revoked {
        Ok(Revoked::At(revision)) => {
            let again = ending.records_txn(&keys, Some(*revision));
            match tokio::time::timeout(BOUND, client.txn("cannot record the run", again)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(why),
            }
        }
        _ => Err(why),
    };
    (recorded, revoked)
}

/// Check a lock name: not empty, no control characters (it ends up in keys, messages, logs).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Config("the lock name must not be empty".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Config(
            "the lock name must not contain control characters (newline, NUL, ...)".into(),
        ));
    }
    Ok(())
}

/// A distributed mutex (or, with [`Mutex::semaphore`], a counting semaphore) named `NAME`,
/// compatible with `etcdctl lock NAME` and Go's `concurrency.NewMutex(session, NAME)`.
///
/// ```no_run
/// # async fn demo() -> etcdlock::Result<()> {
/// use etcdlock::{Client, Config, Mutex, SafetyParams, Session};
/// use etcdlock::client::Check;
///
/// let client = Client::connect(Config::new(["http://127.0.0.1:2379"])?, Check::Lazy).await?;
/// let session = Session::new(&client, SafetyParams::default()).await?;
/// let held = Mutex::new("/jobs/backup")?.lock(&session).await?;
/// println!("holding {} with fencing token {}", held.key(), held.fencing_token());
/// held.unlock().await?;
/// session.close().await.ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mutex {
    name: String,
    holder: Holder,
}

impl Mutex {
    /// A mutex; holders store [`Holder::current`] metadata (no command).
    pub fn new(name: impl Into<String>) -> Result<Mutex> {
        Self::semaphore(name, 1)
    }

    /// A shared (reader) lock: any number of shared holders hold together, an exclusive one
    /// (a plain [`Mutex`], `etcdctl lock`, Go's Mutex) alone; FIFO, so a shared request behind a
    /// waiting exclusive one waits for it.
    pub fn shared(name: impl Into<String>) -> Result<Mutex> {
        let mut m = Self::semaphore(name, 1)?;
        m.holder.shared = true;
        Ok(m)
    }

    /// Up to `limit` holders at once (the `limit` oldest keys hold); every holder must use the
    /// same limit.
    pub fn semaphore(name: impl Into<String>, limit: u32) -> Result<Mutex> {
        let name = name.into();
        check_name(&name)?;
        if limit == 0 {
            return Err(Error::Config("the limit must be at least 1".into()));
        }
        Ok(Mutex {
            name,
            holder: Holder::current(&[], limit, Default::default()),
        })
    }

    /// Store `holder` as this contender's metadata (its `limit` and mode are kept from the
    /// mutex).
    pub fn with_holder(mut self, mut holder: Holder) -> Mutex {
        holder.limit = self.holder.limit;
        holder.shared = self.holder.shared;
        self.holder = holder;
        self
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Join the queue; the result says whether we already hold the lock.
    pub async fn enqueue(&self, session: &Session) -> Result<(Queued, Option<Acquired>)> {
        let (queued, acquired, _) =
            enqueue(session.client(), &self.name, session.lease(), &self.holder).await?;
        Ok((queued, acquired))
    }

    /// Wait for the lock (FIFO). Fails with [`Error::Lost`] if the session is lost meanwhile.
    ///
    /// From the moment its key is in the queue, the key is watched as the `etcdlock` binary's wait
    /// watches it: deleting it or putting over it (or revoking the lease) marks the session lost,
    /// while waiting too. Cancel-safe: if the returned future is dropped before it resolves (a
    /// `tokio::time::timeout`, a `select!`), the queue key is deleted (by a task spawned on the
    /// current runtime), so nobody waits behind it until the lease ends, as Go's `Lock(ctx)` does.
    pub async fn lock<'s>(&self, session: &'s Session) -> Result<Held<'s>> {
        self.lock_within(session, None)
            .await
            .map(|held| held.expect("no timeout"))
    }

    /// Take the lock if it is free now; `None` (and our queue key removed) if it is held.
    pub async fn try_lock<'s>(&self, session: &'s Session) -> Result<Option<Held<'s>>> {
        self.lock_within(session, Some(Duration::ZERO)).await
    }

    /// Wait at most `timeout` for the lock; `None` (and our queue key removed) if it is still
    /// held then. Cancel-safe as [`Mutex::lock`].
    pub async fn lock_timeout<'s>(
        &self,
        session: &'s Session,
        timeout: Duration,
    ) -> Result<Option<Held<'s>>> {
        self.lock_within(session, Some(timeout)).await
    }

    async fn lock_within<'s>(
        &self,
        session: &'s Session,
        timeout: Option<Duration>,
    ) -> Result<Option<Held<'s>>> {
        // From the moment the queue transaction is sent, a cancelled or failed wait deletes its
        // key (the transaction in flight included).
        let (mut queued, acquired, _, cleanup) = enqueue_guarded(
            session.client(),
            &self.name,
            session.lease(),
            &self.holder,
            &[],
        )
        .await?;
        let own = OwnKey::new(
            queued.key.clone(),
            queued.my_rev,
            session.lease().id,
            self.holder.to_json(),
        );
        let watch = AbortOnDrop(tokio::spawn(watch_own_key(
            session.client().clone(),
            own,
            queued.enqueued_at,
            session.guard().clone(),
        )));
        let acquired = match acquired {
            Some(a) => Some(a),
            None if timeout.is_some() => queued.check(session.client()).await?,
            None => None,
        };
        let acquired = match acquired {
            Some(a) => Some(a),
            None => tokio::select! {
                a = queued.wait(session.client()) => Some(a?),
                reason = session.lost() => return Err(Error::Lost(reason)),
                () = sleep(timeout.unwrap_or(Duration::MAX)), if timeout.is_some() => None,
            },
        };
        match acquired {
            Some(a) => {
                cleanup.disarm();
                Ok(Some(Held {
                    cluster_id: session.client().cluster_id(),
                    session,
                    acquired: a,
                    _watch: watch,
                }))
            }
            None => {
                cleanup.disarm();
                delete_own(session.client(), &queued.key, queued.my_rev).await?;
                Ok(None)
            }
        }
    }
}

/// Deletes a queue key whose wait was cancelled (dropped) or failed: a task on the current
/// runtime, since `drop` cannot wait. Without a runtime, the key goes with the lease.
pub(crate) struct DeleteOnDrop {
    client: Client,
    key: String,
    create_revision: i64,
    armed: bool,
}

impl DeleteOnDrop {
    /// The key is ours to keep (we hold it) or the lease's to remove: do not delete it.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (client, key, rev) = (
            self.client.clone(),
            std::mem::take(&mut self.key),
            self.create_revision,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = delete_own(&client, &key, rev).await;
            });
        }
    }
}

type Enqueued = (Queued, Option<Acquired>, Noticed);

/// A queue transaction in flight, on a task of its own: if the future awaiting it is dropped,
/// the transaction still completes and the key it created is deleted then. Deleting at once
/// could reach etcd before the transaction and leave the key behind it.
struct Enqueuing {
    client: Client,
    task: Option<tokio::task::JoinHandle<Result<Enqueued>>>,
}

impl Drop for Enqueuing {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else { return };
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(Ok((queued, _, _))) = task.await {
                    let _ = delete_own(&client, &queued.key, queued.my_rev).await;
                }
            });
        }
    }
}

/// [`enqueue_checking`], cancel-safe: dropped at any point, the key it creates is deleted; the
/// returned [`DeleteOnDrop`] deletes it unless disarmed (a failed or cancelled wait after it).
pub(crate) async fn enqueue_guarded(
    etcd: &Client,
    name: &str,
    lease: &Lease,
    holder: &Holder,
    checks: &[TxnOp],
) -> Result<(Queued, Option<Acquired>, Noticed, DeleteOnDrop)> {
    let task = {
        let (etcd, name, lease, holder) = (etcd.clone(), name.to_owned(), *lease, holder.clone());
        let checks = checks.to_vec();
        tokio::spawn(async move { enqueue_checking(&etcd, &name, &lease, &holder, &checks).await })
    };
    let mut pending = Enqueuing {
        client: etcd.clone(),
        task: Some(task),
    };
    let joined = match pending.task.as_mut() {
        Some(task) => task.await,
        None => unreachable!("the task is set above"),
    };
    pending.task = None;
    let (queued, acquired, noticed) = joined
        .map_err(|e| Error::Protocol(format!("the queue transaction's task failed: {e}")))??;
    let cleanup = DeleteOnDrop {
        client: etcd.clone(),
        key: queued.key.clone(),
        create_revision: queued.my_rev,
        armed: true,
    };
    Ok((queued, acquired, noticed, cleanup))
}

/// Delete `key` only if it is still the one created at `create_revision` (a retried delete must
/// never remove a newer holder's key: etcd issue 22082 is this bug in Go's Mutex.Unlock).
async fn delete_own(client: &Client, key: &str, create_revision: i64) -> Result<()> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            key.to_owned(),
            CompareOp::Equal,
            create_revision,
        )])
        .and_then([TxnOp::delete(key.to_owned(), None)]);
    client.txn("cannot release the lock", txn).await?;
    Ok(())
}

/// A held lock, tied to the session whose lease carries its key. Its key is watched: deleting it,
/// putting over it (or revoking the lease) marks the session lost ([`Held::lost`]).
#[derive(Debug)]
pub struct Held<'s> {
    session: &'s Session,
    acquired: Acquired,
    cluster_id: u64,
    _watch: AbortOnDrop<()>,
}

impl Held<'_> {
    /// Our key, `NAME/<lease hex>`.
    pub fn key(&self) -> &str {
        &self.acquired.key
    }

    /// The create revision of our key: strictly increasing from holder to holder. Compare tokens
    /// only together with [`Held::cluster_id`] (revisions restart if etcd's data is wiped).
    pub fn fencing_token(&self) -> i64 {
        self.acquired.fencing_token
    }

    /// The store revision at which we held the lock (etcdctl's `ETCD_LOCK_REV`).
    pub fn revision(&self) -> i64 {
        self.acquired.revision
    }

    /// The id of the cluster the token comes from.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// What was acquired (the key, the fencing token, the revision), for
    /// [`crate::runner::run_command`].
    pub fn acquired(&self) -> &Acquired {
        &self.acquired
    }

    /// The session the lock is held with.
    pub fn session(&self) -> &Session {
        self.session
    }

    /// Resolves, with the reason, once the lock counts as lost (see [`Session::lost`]): always
    /// before the server can expire the lease.
    pub async fn lost(&self) -> String {
        self.session.lost().await
    }

    /// Why the lock was lost, if it was.
    pub fn is_lost(&self) -> Option<String> {
        self.session.is_lost()
    }

    /// A comparison that holds only while our key is still ours (Go's `Mutex.IsOwner()`): put it
    /// in a transaction's `when` so that a write happens only under the lock, checked by etcd
    /// itself.
    pub fn is_owner(&self) -> Compare {
        self.acquired.is_owner()
    }

    /// Keep the lock but stop watching its key, for [`crate::runner::release`], which releases it
    /// with the lease (and the run's records).
    pub fn into_acquired(self) -> Acquired {
        self.acquired
    }

    /// Release the lock: delete our key, and only our key revision (on the session's client).
    pub async fn unlock(self) -> Result<()> {
        let Held {
            session,
            acquired,
            _watch,
            ..
        } = self;
        drop(_watch);
        delete_own(session.client(), &acquired.key, acquired.fencing_token).await
    }
}
