//! Leader election on etcd, compatible with Go's `concurrency.Election` and `etcdctl elect`: the
//! campaign, the leadership, the leader and its changes as data. (`etcdlock elect` runs a command
//! as the leader on top of this and [`crate::runner`].)
//!
//! # Keys
//!
//! A candidate puts `NAME/<lease id in hex>` attached to its lease, with its *proposal* as the
//! value; the key with the lowest create revision leads. This is exactly the layout of Go's
//! `Election` and `etcdctl elect`, and of [`crate::Mutex`] (and `etcdctl lock`): an etcdlock
//! candidate and a Go or `etcdctl elect` candidate on the same name exclude each other, and
//! `etcdctl elect -l NAME` sees etcdlock's leader (and its proposal).
//!
//! # Against Go's API
//!
//! | Go (`concurrency.Election`) | here | difference |
//! |---|---|---|
//! | `Campaign(ctx, val)` | [`Election::campaign`] | aborts with [`Error::Lost`] when the session is lost or the candidate's key goes while it waits (Go's returns leadership without a key, or waits for ever: etcd #11007); cancel-safe: a dropped campaign deletes its key (Go's leaves it on ctx cancel until the lease ends in older versions) |
//! | `Proclaim(ctx, val)` | [`Leadership::proclaim`] | only while the key is ours (same compare) |
//! | `Resign(ctx)` | [`Leadership::resign`] | deletes only our key revision |
//! | `Leader(ctx)` | [`Election::leader`] | `Ok(None)` rather than `ErrElectionNoLeader` |
//! | `Observe(ctx)` | [`Election::observe`] | reports `None` when the leader goes and nobody follows (Go's `Observe` skips it) |
//! | `Key()`, `Rev()` | [`Leadership::key`], [`Leadership::fencing_token`] | |
//! | — | [`Leadership::is_owner`], [`Leadership::lost`] | a `Compare` for transactions; loss known before the lease can expire (see [`crate::Session`]) |

use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use tracing::debug;

use crate::client::{CallError, Client};
use crate::error::{Error, Result};
use crate::holder::Holder;
use crate::lock::{self, Acquired, OwnKey};
use crate::queue::{self, Slot};
use crate::session::{AbortOnDrop, Session};

/// An election: the name whose keys `NAME/<lease hex>` the candidates put.
#[derive(Debug, Clone)]
pub struct Election {
    name: String,
    prefix: String,
}

/// A candidate as etcd stores it: the leader, or a standby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its key, `NAME/<lease hex>`.
    pub key: String,
    /// Its proposal (the key's value).
    pub proposal: Vec<u8>,
    /// Its lease.
    pub lease: i64,
    /// Its key's create revision: the lowest leads (the leader's fencing token).
    pub create_revision: i64,
}

impl Candidate {
    /// The proposal as text (lossy).
    pub fn proposal_text(&self) -> String {
        String::from_utf8_lossy(&self.proposal).into_owned()
    }

    /// The holder metadata, when the proposal is an etcdlock holder's (the default proposal of
    /// `etcdlock elect`).
    pub fn holder(&self) -> Option<Holder> {
        Holder::parse(&self.proposal)
    }
}

fn rev(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

fn first_kvs(op: Option<&TxnOpResponse>) -> Option<&[KeyValue]> {
    match op {
        Some(TxnOpResponse::Get(g)) => Some(g.kvs()),
        _ => None,
    }
}

fn candidate(kv: &KeyValue) -> Candidate {
    Candidate {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        proposal: kv.value().to_vec(),
        lease: kv.lease(),
        create_revision: kv.create_revision(),
    }
}

impl Election {
    /// The election `name` (a lock name: see [`crate::lock::check_name`]).
    pub fn new(name: impl Into<String>) -> Result<Election> {
        let name = name.into();
        lock::check_name(&name)?;
        let prefix = queue::prefix_of(&name);
        Ok(Election { name, prefix })
    }

    /// The election's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Campaign with `proposal` until elected (Go's `Campaign`): put our key (once: a retry, or a
    /// key of this lease left from before, is found and its value proclaimed), then wait until
    /// every candidate's key created before ours is gone, re-reading our own key with them.
    ///
    /// Guarantees: on `Ok`, our key existed with the lowest create revision among the queue keys at
    /// the revision of the last read ([`Leadership::revision`]), and the session was not lost.
    /// The campaign fails with [`Error::Lost`] as soon as the session counts as lost or our key
    /// is deleted or put over while we wait — it never returns leadership without a key (Go's
    /// etcd #11007). Cancel-safe: if the future is dropped before it resolves, our key is deleted
    /// (by a task on the current runtime), so no one waits behind a candidate that gave up. On an
    /// error our key is deleted too; the session (and its lease) stays the caller's.
    pub async fn campaign<'s>(
        &self,
        session: &'s Session,
        proposal: impl Into<Vec<u8>>,
    ) -> Result<Leadership<'s>> {
        let proposal = proposal.into();
        if let Some(reason) = session.is_lost() {
            return Err(Error::Lost(reason));
        }
        let client = session.client();
        let lease = session.lease().id;
        let key = queue::key_for(&self.name, lease);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                proposal.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = client.txn("cannot campaign", txn).await?;
        let mut at = rev(resp.header());
        let my_rev = if resp.succeeded() {
            at
        } else {
            let kv = first_kvs(resp.op_responses().first())
                .and_then(|k| k.first())
                .cloned()
                .ok_or_else(|| Error::Protocol("unexpected answer to the campaign".into()))?;
            if kv.value() != proposal.as_slice() {
                at = put_if_ours(client, &key, kv.create_revision(), lease, &proposal).await?;
            }
            kv.create_revision()
        };
        let mut cleanup = DeleteOnDrop {
            client: client.clone(),
            key: key.clone(),
            create_revision: my_rev,
            armed: true,
        };
        let own = OwnKey::new(key.clone(), my_rev, lease, proposal.clone());
        let watch = AbortOnDrop(tokio::spawn(lock::watch_own_key(
            client.clone(),
            own.clone(),
            at,
            session.guard().clone(),
        )));
        let won = tokio::select! {
            won = self.wait_turn(client, &key, my_rev) => won,
            reason = session.lost() => Err(Error::Lost(reason)),
        };
        let revision = won?;
        cleanup.armed = false;
        Ok(Leadership {
            session,
            election: self.clone(),
            acquired: Acquired {
                key,
                fencing_token: my_rev,
                revision,
            },
            own,
            _watch: watch,
        })
    }

    /// Wait until no queue key created before ours is left; the revision of the read that showed
    /// it. Our key missing from a read is [`Error::Lost`].
    async fn wait_turn(&self, client: &Client, key: &str, my_rev: i64) -> Result<i64> {
        loop {
            let (ahead, read_at) = self.ahead_of(client, key, my_rev).await?;
            let Some(pred) = ahead else {
                return Ok(read_at);
            };
            debug!(predecessor = %pred.key, "campaign: waiting for the candidate ahead");
            // Any outcome sends us round again: a fresh read is always right.
            if let Err(e) = wait_gone(client, &pred, read_at).await {
                debug!(error = %e, "campaign: watch broke; reading again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The newest queue key created before ours (the one to wait for), and the read's revision;
    /// our own key must be in the same read.
    async fn ahead_of(
        &self,
        client: &Client,
        key: &str,
        my_rev: i64,
    ) -> Result<(Option<Slot>, i64)> {
        let mut before = my_rev;
        let mut read_at = None;
        loop {
            let opts = GetOptions::new()
                .with_prefix()
                .with_keys_only()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_max_create_revision(before)
                .with_limit(queue::SLACK + 2);
            let prefix = self.prefix.clone();
            let resp = client
                .retrying("cannot read the election", || {
                    let (prefix, opts) = (prefix.clone(), opts.clone());
                    client.call(|mut c| async move { c.get(prefix, Some(opts)).await })
                })
                .await?;
            let at = *read_at.get_or_insert(rev(resp.header()));
            let mut slots = queue::slots(self.prefix.as_bytes(), resp.kvs());
            if before == my_rev {
                match slots.first() {
                    Some(s) if s.create_revision == my_rev && s.key == key => {
                        slots.remove(0);
                    }
                    _ => {
                        return Err(Error::Lost(format!(
                            "our campaign key {key} is gone (lease ended or key deleted)"
                        )))
                    }
                }
            }
            if let Some(first) = slots.into_iter().next() {
                return Ok((Some(first), at));
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => before = last.create_revision() - 1,
                _ => return Ok((None, at)),
            }
        }
    }

    /// The leader now (Go's `Leader`), `None` if there is none; linearizable.
    pub async fn leader(&self, client: &Client) -> Result<Option<Candidate>> {
        Ok(self.candidates(client).await?.0.into_iter().next())
    }

    /// Every candidate in order (the leader first, then the standbys in the order they would
    /// take over), and the revision of the read.
    pub async fn candidates(&self, client: &Client) -> Result<(Vec<Candidate>, i64)> {
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend);
        let prefix = self.prefix.clone();
        let resp = client
            .retrying("cannot read the election", || {
                let (prefix, opts) = (prefix.clone(), opts.clone());
                client.call(|mut c| async move { c.get(prefix, Some(opts)).await })
            })
            .await?;
        let candidates = resp
            .kvs()
            .iter()
            .filter(|kv| queue::is_queue_key(self.prefix.as_bytes(), kv))
            .map(candidate)
            .collect();
        Ok((candidates, rev(resp.header())))
    }

    /// Follow the leader (Go's `Observe`): [`Observer::next`] yields the leader whenever it
    /// changes (another key, or a proclaimed value), **and `None` when the leader's key goes
    /// with no candidate behind it**, which Go's `Observe` never reports.
    pub fn observe(&self, client: &Client) -> Observer {
        Observer {
            election: self.clone(),
            client: client.clone(),
            last: None,
            read_at: None,
        }
    }
}

/// The changes of an election's leader (see [`Election::observe`]).
pub struct Observer {
    election: Election,
    client: Client,
    last: Option<Option<Candidate>>,
    read_at: Option<i64>,
}

impl Observer {
    /// The first call: the leader now (or `None`). Then: the next change. Survives broken watches
    /// and compaction by reading again (a change in between is then reported as the state it left,
    /// never missed as a state that lasts).
    pub async fn next(&mut self) -> Result<Option<Candidate>> {
        loop {
            if let Some(at) = self.read_at {
                if let Err(e) = self.wait_change(at).await {
                    debug!(error = %e, "observe: watch broke; reading again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let (candidates, at) = self.election.candidates(&self.client).await?;
            self.read_at = Some(at);
            let leader = candidates.into_iter().next();
            if self.last.as_ref() != Some(&leader) {
                self.last = Some(leader.clone());
                return Ok(leader);
            }
        }
    }

    /// Wait for any change under the prefix after revision `at`.
    async fn wait_change(&self, at: i64) -> Result<(), CallError> {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(at + 1);
        let key = self.election.prefix.clone();
        let mut watch = self.client.watch(key, Some(opts)).await?;
        loop {
            if !watch.next(&self.client).await?.events().is_empty() {
                return Ok(());
            }
        }
    }
}

/// Put `value` into `key` only while it is still ours (created at `create_revision`, on
/// `lease`); the revision of the put.
async fn put_if_ours(
    client: &Client,
    key: &str,
    create_revision: i64,
    lease: i64,
    value: &[u8],
) -> Result<i64> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            key.to_owned(),
            CompareOp::Equal,
            create_revision,
        )])
        .and_then([TxnOp::put(
            key.to_owned(),
            value.to_vec(),
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let resp = client.txn("cannot proclaim", txn).await?;
    if !resp.succeeded() {
        return Err(Error::Lost(format!("our election key {key} is gone")));
    }
    Ok(rev(resp.header()))
}

/// Wait until `pred` (read at `read_at`) is deleted: a watch from now (served at once, unlike
/// one from the past: see the Mutex's wait), then one look at the key in case it went between
/// the read and the watch.
async fn wait_gone(client: &Client, pred: &Slot, read_at: i64) -> Result<(), CallError> {
    let key = pred.key.clone();
    let mut watch = client.watch(key.clone(), None).await?;
    loop {
        let resp = watch.next(client).await?;
        if resp.created() && rev(resp.header()) > read_at {
            let k = key.clone();
            let opts = GetOptions::new().with_keys_only();
            let now = client
                .call(|mut c| async move { c.get(k, Some(opts)).await })
                .await?;
            let same = now
                .kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == pred.create_revision);
            if !same {
                return Ok(());
            }
        }
        if resp
            .events()
            .iter()
            .any(|e| e.event_type() == EventType::Delete)
        {
            return Ok(());
        }
    }
}

/// Deletes a campaign's key when the campaign is dropped or fails (see [`Election::campaign`]).
struct DeleteOnDrop {
    client: Client,
    key: String,
    create_revision: i64,
    armed: bool,
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

/// Delete `key` only if it is still the revision created at `create_revision` (never a newer
/// candidate's key: etcd #22082 in Go's Mutex).
async fn delete_own(client: &Client, key: &str, create_revision: i64) -> Result<()> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            key.to_owned(),
            CompareOp::Equal,
            create_revision,
        )])
        .and_then([TxnOp::delete(key.to_owned(), None)]);
    client.txn("cannot resign", txn).await?;
    Ok(())
}

/// Leadership of an election, tied to the session whose lease carries its key. The key is
/// watched: deleting it, putting over it (someone else's write) or revoking the lease marks the
/// session lost ([`Leadership::lost`]), always before the lease could expire on the server.
#[derive(Debug)]
pub struct Leadership<'s> {
    session: &'s Session,
    election: Election,
    acquired: Acquired,
    own: OwnKey,
    _watch: AbortOnDrop<()>,
}

impl Leadership<'_> {
    /// Our key, `NAME/<lease hex>` (Go's `Election.Key()`).
    pub fn key(&self) -> &str {
        &self.acquired.key
    }

    /// Our key's create revision (Go's `Election.Rev()`): strictly increasing from leader to
    /// leader; pass it with the cluster id as a fencing token.
    pub fn fencing_token(&self) -> i64 {
        self.acquired.fencing_token
    }

    /// The store revision at which we were the leader.
    pub fn revision(&self) -> i64 {
        self.acquired.revision
    }

    /// The election.
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// What was won, in the lock's terms, for [`crate::runner::run_command`].
    pub fn acquired(&self) -> &Acquired {
        &self.acquired
    }

    /// The session leadership is held with.
    pub fn session(&self) -> &Session {
        self.session
    }

    /// Resolves, with the reason, once leadership counts as lost (see [`Session::lost`]).
    pub async fn lost(&self) -> String {
        self.session.lost().await
    }

    /// Why leadership was lost, if it was.
    pub fn is_lost(&self) -> Option<String> {
        self.session.is_lost()
    }

    /// A comparison that holds only while our key is still ours (as Go's `Mutex.IsOwner()`): put
    /// it in a transaction's `when` so that a write happens only under our leadership.
    pub fn is_owner(&self) -> Compare {
        self.acquired.is_owner()
    }

    /// Check, with one linearizable read, that we still lead: our key, at our create revision,
    /// is the oldest candidate. [`Error::Lost`] if not.
    pub async fn confirm(&self) -> Result<i64> {
        let (candidates, at) = self.election.candidates(self.session.client()).await?;
        match candidates.first() {
            Some(c) if c.key == self.acquired.key && c.create_revision == self.fencing_token() => {
                Ok(at)
            }
            _ => Err(Error::Lost(format!(
                "{} is no longer the leader of {}",
                self.acquired.key, self.election.name
            ))),
        }
    }

    /// Change our proposal while we lead (Go's `Proclaim`); [`Error::Lost`] if our key is gone.
    pub async fn proclaim(&self, proposal: impl Into<Vec<u8>>) -> Result<()> {
        let value = proposal.into();
        self.own.allow(value.clone());
        put_if_ours(
            self.session.client(),
            &self.acquired.key,
            self.acquired.fencing_token,
            self.session.lease().id,
            &value,
        )
        .await
        .map(|_| ())
    }

    /// Step down (Go's `Resign`): delete our key, only our key revision; the next candidate takes
    /// over. The session stays usable (campaign again with it, or close it).
    pub async fn resign(self) -> Result<()> {
        let Leadership {
            session,
            acquired,
            _watch,
            ..
        } = self;
        drop(_watch);
        delete_own(session.client(), &acquired.key, acquired.fencing_token).await
    }

    /// Keep leadership but stop watching the key: for [`crate::runner::release`], which gives it
    /// up with the lease (after the command's tree is gone).
    pub fn into_acquired(self) -> Acquired {
        self.acquired
    }
}

/// Where a request that the leader of `name` step down is put: under etcdlock's records prefix
/// (`.etcdlock/` by default), beside the records' `v1/` layout and outside every lock's and
/// election's prefix. The value is the leader's key, so a request never reaches a later leader.
/// Only etcdlock's own leaders (`etcdlock elect`) watch it.
pub fn resign_request_key(client: &Client, name: &str) -> String {
    format!("{}resign/{name}", client.config().records_prefix())
}

/// Ask the leader `leader` of `name` to step down: put the request on a lease of `ttl` of its own
/// (so that it never outlives the asker by long). The request stands until it is withdrawn
/// ([`ResignRequest::withdraw`]: once answered, or given up on) or its lease expires.
pub async fn request_resign(
    client: &Client,
    name: &str,
    leader: &Candidate,
    ttl: Duration,
) -> Result<ResignRequest> {
    let lease = crate::session::Lease::grant(client, ttl).await?;
    let key = resign_request_key(client, name);
    let txn = Txn::new().and_then([TxnOp::put(
        key,
        leader.key.clone(),
        Some(PutOptions::new().with_lease(lease.id)),
    )]);
    if let Err(e) = client.txn("cannot ask the leader to resign", txn).await {
        let _ = lease.revoke(client).await;
        return Err(e);
    }
    Ok(ResignRequest {
        client: client.clone(),
        lease: Some(lease),
    })
}

/// A standing request that a leader step down (see [`request_resign`]): on a lease of its own.
/// [`ResignRequest::withdraw`] takes it back at once. Dropped without that, its lease is revoked
/// by a task on the current tokio runtime if there is one (best effort: a runtime that ends first
/// cancels it); either way the request goes when its lease expires, `ttl` after it was made.
#[derive(Debug)]
#[must_use = "withdraw the request once answered (it otherwise stands until its lease expires)"]
pub struct ResignRequest {
    client: Client,
    lease: Option<crate::session::Lease>,
}

impl ResignRequest {
    /// Take the request back: revoke its lease, which deletes it. Bounded to 3 s; an error says
    /// why the revoke failed (the request then goes when its lease expires).
    pub async fn withdraw(mut self) -> std::result::Result<(), String> {
        match self.lease.take() {
            Some(lease) => lease.revoke(&self.client).await,
            None => Ok(()),
        }
    }
}

impl Drop for ResignRequest {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = lease.revoke(&client).await;
            });
        }
    }
}

/// Resolves once a request that `key` (our leader key in election `name`) step down is put (see
/// [`request_resign`]); an error only when etcd refuses the read for good.
pub async fn resign_requested(client: &Client, name: &str, key: &str) -> Result<()> {
    let request = resign_request_key(client, name);
    loop {
        let resp = {
            let request = request.clone();
            client
                .retrying("cannot read resign requests", || {
                    let request = request.clone();
                    client.call(|mut c| async move { c.get(request, None).await })
                })
                .await?
        };
        if resp.kvs().iter().any(|kv| kv.value() == key.as_bytes()) {
            return Ok(());
        }
        let from = rev(resp.header()) + 1;
        let opts = WatchOptions::new().with_start_revision(from);
        let Ok(mut watch) = client.watch(request.clone(), Some(opts)).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        // Until the watch is over (then read again).
        while let Ok(resp) = watch.next(client).await {
            let asked = resp.events().iter().any(|e| {
                e.event_type() == EventType::Put
                    && e.kv().is_some_and(|kv| kv.value() == key.as_bytes())
            });
            if asked {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
