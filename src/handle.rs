//! Handles: a held lock as one line of text, so that one process can take a lock, another run
//! commands under it and a third release it — CI jobs, `ExecStartPre`/`ExecStartPost`.
//!
//! ```text
//! etl2.<cluster id hex>.<lease id hex>.<fencing token>.<lock name, base64url>.<secret, base64url>.<check>
//! ```
//!
//! Only `[A-Za-z0-9._-]`: safe unquoted in shell variables, CI outputs and dotenv files.
//!
//! The life of one: [`acquire`] takes the lock and makes the handle, which the caller must hand
//! over ([`Undelivered::delivered`]) or give up ([`Undelivered::abandon`], or by dropping it:
//! either frees the lock at once); then, in any process, [`Handle::verify`] / [`Handle::attach`]
//! (a command runs in the lock: [`crate::runner::hold_handle`]), [`Handle::renew`] and
//! [`Handle::release`].
//!
//! A handle is a bearer secret: whoever has the line can run under the lock, renew it and release
//! it. The secret is 32 random bytes from the operating system's generator, made by `acquire` and
//! printed nowhere else; the lock key stores only `SHA-256("etcdlock-handle-v2\0" KEY "\0"
//! SECRET)` (in [`Holder::handle_secret_sha256`]), written once the key holds the lock. So
//! everything `status` shows (cluster, lease, token, name, the hash) is not enough to make a
//! handle, a waiter's key or a plain `run`'s key has no hash to match, and `run --handle`, `renew`
//! and `release` check the secret against the key before they write anything ([`Handle::verify`]).
//!
//! Why a plain hash and not a keyed one (HMAC): the secret is 256 uniformly random bits, so its
//! hash cannot be inverted or guessed, and there is no salt or dictionary to defend against; a
//! key would have to be readable by every etcdlock that verifies, i.e. stored in etcd beside the
//! hash, and would add nothing. The key name in the hashed text ties a hash to its key, so a
//! value copied to another key does not verify there.
//!
//! The cluster id makes a handle from another cluster refusable before anything is written; the
//! check (the first 4 bytes of SHA-256 of the rest, not a secret) tells a handle cut or mangled on
//! its way from a wrong one. `etl1` handles (etcdlock before handles had secrets) are refused with
//! a message saying so.

use base64::Engine;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::holder::Holder;
use crate::lock::{Acquired, QueueInfo};
use crate::process::supervise::Signals;
use crate::record::RunRecord;
use crate::safety::SafetyParams;
use crate::session::{Lease, Session};
use crate::wait::{self, Wait};

/// The handle's version prefix.
const PREFIX: &str = "etl2";
/// The previous version: no secret, refused.
const OLD_PREFIX: &str = "etl1";
/// Bytes of secret.
const SECRET_LEN: usize = 32;
/// Domain separation for the stored hash.
const HASH_CONTEXT: &[u8] = b"etcdlock-handle-v2\0";

/// A lock held by a lease that no process keeps alive (see `etcdlock acquire`).
#[derive(Clone, PartialEq, Eq)]
pub struct Handle {
    /// The cluster the lock was taken in.
    pub cluster_id: u64,
    /// The lease holding it.
    pub lease_id: i64,
    /// The holder key's create revision.
    pub fencing_token: i64,
    /// The lock's name.
    pub name: String,
    /// The bearer secret (never shown in `Debug`).
    secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("cluster_id", &self.cluster_id)
            .field("lease_id", &self.lease_id)
            .field("fencing_token", &self.fencing_token)
            .field("name", &self.name)
            .field("secret", &"<hidden>")
            .finish()
    }
}

fn check(text: &str) -> String {
    let sum = digest(&SHA256, text.as_bytes());
    sum.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new secret from the operating system's random generator.
fn new_secret() -> Result<[u8; SECRET_LEN]> {
    let mut secret = [0u8; SECRET_LEN];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| Error::Protocol("the operating system gave no random bytes".into()))?;
    Ok(secret)
}

impl Handle {
    /// A new handle (with a fresh secret) for the lock `name` held by `lease_id` with
    /// `fencing_token`; its hash goes into the key with [`Handle::secret_sha256`].
    pub fn new(cluster_id: u64, lease_id: i64, fencing_token: i64, name: String) -> Result<Handle> {
        Ok(Handle {
            cluster_id,
            lease_id,
            fencing_token,
            name,
            secret: new_secret()?,
        })
    }

    /// The holder key, `NAME/<lease hex>`.
    pub fn key(&self) -> String {
        crate::queue::key_for(&self.name, self.lease_id)
    }

    /// What the key stores of the secret (lowercase hex SHA-256, see the module doc).
    pub fn secret_sha256(&self) -> String {
        let mut text = HASH_CONTEXT.to_vec();
        text.extend_from_slice(self.key().as_bytes());
        text.push(0);
        text.extend_from_slice(&self.secret);
        hex(digest(&SHA256, &text).as_ref())
    }

    /// The handle as text.
    pub fn encode(&self) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = format!(
            "{PREFIX}.{:x}.{:x}.{}.{}.{}",
            self.cluster_id,
            self.lease_id,
            self.fencing_token,
            b64.encode(self.name.as_bytes()),
            b64.encode(self.secret)
        );
        format!("{body}.{}", check(&body))
    }

    /// Parse a handle; a malformed, truncated or altered one is an error that says so.
    pub fn parse(text: &str) -> Result<Handle> {
        let bad = |why: &str| {
            Error::Config(format!(
                "not an etcdlock handle ({why}); pass the line `etcdlock acquire` printed, whole"
            ))
        };
        let text = text.trim();
        if text.starts_with(&format!("{OLD_PREFIX}.")) {
            return Err(Error::Config(
                "this handle comes from an older etcdlock (etl1, without a secret), which this \
                 version no longer accepts: release it with that version or let it expire, and \
                 take the lock again with this version's `etcdlock acquire`"
                    .into(),
            ));
        }
        let (body, sum) = text.rsplit_once('.').ok_or_else(|| bad("no check"))?;
        if sum != check(body) {
            return Err(bad("it was cut or changed"));
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [prefix, cluster, lease, token, name, secret] = parts[..] else {
            return Err(bad("wrong number of fields"));
        };
        if prefix != PREFIX {
            return Err(bad("unknown version"));
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let name = b64
            .decode(name)
            .ok()
            .and_then(|n| String::from_utf8(n).ok())
            .ok_or_else(|| bad("bad lock name"))?;
        let secret: [u8; SECRET_LEN] = b64
            .decode(secret)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("bad secret"))?;
        let handle = Handle {
            cluster_id: u64::from_str_radix(cluster, 16).map_err(|_| bad("bad cluster id"))?,
            lease_id: i64::from_str_radix(lease, 16).map_err(|_| bad("bad lease id"))?,
            fencing_token: token.parse().map_err(|_| bad("bad fencing token"))?,
            name,
            secret,
        };
        crate::lock::check_name(&handle.name)?;
        Ok(handle)
    }
}

/// What a handle's lock is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Held: the key is there with the handle's fencing token, its lease, and the hash of the
    /// handle's secret.
    Held,
    /// Lost: the key is gone (the lease expired, was revoked, or the key deleted) or is another
    /// key by now.
    Lost,
    /// Lost: the key is still the handle's (its hash matches) but was put over and detached from
    /// the handle's lease (it then holds nothing for etcdlock, and blocks `etcdctl lock`).
    Detached,
}

/// A handle checked against its key.
#[derive(Debug, Clone)]
pub struct Verified {
    /// What the key says.
    pub state: State,
    /// The store revision of the read.
    pub revision: i64,
    /// The key's value (when held: what a watch on the key must keep seeing).
    pub value: Vec<u8>,
    /// The key's mod revision (when there is a key).
    pub mod_revision: i64,
}

impl Handle {
    /// Refuse a handle from another cluster (the client must have seen a response header, e.g.
    /// after `Client::connect(.., Check::Leader)`).
    pub fn check_cluster(&self, client: &Client) -> Result<()> {
        let here = client.cluster_id();
        if here != 0 && here != self.cluster_id {
            return Err(Error::Config(format!(
                "this handle comes from another etcd cluster ({:x}; the endpoints lead to {here:x}): \
                 pass the --endpoints that `etcdlock acquire` used",
                self.cluster_id
            )));
        }
        Ok(())
    }

    /// Check the handle against its key with one read, writing nothing: [`State::Held`] if the
    /// key is there with the handle's fencing token and lease and the hash of its secret;
    /// [`State::Lost`] if the key is gone or is another key; [`Error::Config`] (a usage error)
    /// if the key is there but the secret does not match — a forged or altered handle, a
    /// waiter's key or a plain `run`'s (a key gets its hash only once `acquire` holds it, and
    /// keys ahead of a holder never come back, so a key with the hash holds the lock).
    pub async fn verify(&self, client: &Client) -> Result<Verified> {
        let key = self.key();
        let resp = client
            .retrying("cannot read the lock", || {
                let key = key.clone();
                client.call(|mut c| async move { c.get(key, None).await })
            })
            .await?;
        client.note_cluster(resp.header());
        let revision = resp.header().map_or(0, |h| h.revision());
        let lost = |state| Verified {
            state,
            revision,
            value: Vec::new(),
            mod_revision: 0,
        };
        let Some(kv) = resp.kvs().first() else {
            return Ok(lost(State::Lost));
        };
        if kv.create_revision() != self.fencing_token {
            return Ok(lost(State::Lost));
        }
        let hash = self.secret_sha256();
        let matches = Holder::parse(kv.value())
            .and_then(|h| h.handle_secret_sha256)
            .is_some_and(|stored| stored == hash);
        if kv.lease() != self.lease_id {
            // Put over by someone (detached from our lease): lost either way; ours to clean up
            // only if the secret still matches.
            return Ok(lost(if matches {
                State::Detached
            } else {
                State::Lost
            }));
        }
        if !matches {
            return Err(Error::Config(format!(
                "this handle does not fit the lock key {key}: that key was not taken with this \
                 handle by `etcdlock acquire` (a waiter's or a plain run's key, or a forged or \
                 altered handle); nothing was changed"
            )));
        }
        Ok(Verified {
            state: State::Held,
            revision,
            value: kv.value().to_vec(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Whether the lock is still held by this handle (one read; see [`Handle::verify`]).
    pub async fn state(&self, client: &Client) -> Result<State> {
        Ok(self.verify(client).await?.state)
    }

    /// Remove the handle's key if it was detached from the handle's lease (a put over it), so
    /// that nothing lease-less is left to block `etcdctl lock`: only while it is still the key
    /// created at the handle's fencing token and not attached to its lease. True if removed.
    pub async fn remove_detached(&self, client: &Client) -> Result<bool> {
        crate::lock::remove_detached(client, &self.key(), self.fencing_token, self.lease_id).await
    }

    /// Reset the lease to its TTL (one keep-alive); the TTL granted. [`Error::Lost`] if the lock
    /// is gone; [`Error::Config`] if the handle does not fit its key (nothing is done then).
    pub async fn renew(&self, client: &Client) -> Result<std::time::Duration> {
        match self.verify(client).await?.state {
            State::Held => {}
            State::Lost => return Err(self.lost()),
            State::Detached => {
                let _ = self.remove_detached(client).await;
                let _ = self.lease().revoke(client).await;
                return Err(self.lost());
            }
        }
        let id = self.lease_id;
        // Opening the stream sends one keep-alive and consumes its answer (an error if the lease
        // is gone); one more round trip on the same stream tells the TTL granted.
        let opened = client
            .call(|mut c| async move { c.lease_keep_alive(id).await })
            .await;
        let (mut keeper, mut stream) = match opened {
            Ok(pair) => pair,
            Err(e) if e.to_string().contains("not found") => return Err(self.lost()),
            Err(e) => {
                return Err(Error::Refused {
                    context: "cannot renew the lease".into(),
                    reason: e.to_string(),
                })
            }
        };
        let ttl = match keeper.keep_alive().await {
            Ok(()) => tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
                .await
                .ok()
                .and_then(|m| m.ok().flatten())
                .map_or(0, |r| r.ttl()),
            Err(_) => 0,
        };
        if ttl <= 0 {
            return Err(self.lost());
        }
        Ok(std::time::Duration::from_secs(ttl as u64))
    }

    /// Release the lock now: delete the key (only as this handle verified it: same create
    /// revision, lease and unchanged since), mark the lock's last run as this handle's release
    /// (so that a second release can tell "already released", see [`Handle::released`]), and
    /// revoke the lease. [`Error::Lost`] if it had been lost meanwhile (someone else may have held
    /// the lock); [`Error::Config`] if the handle does not fit its key (nothing is done then).
    pub async fn release(&self, client: &Client) -> Result<()> {
        let verified = self.verify(client).await?;
        match verified.state {
            State::Held => {}
            State::Lost => return Err(self.lost()),
            State::Detached => {
                let _ = self.remove_detached(client).await;
                let _ = self.lease().revoke(client).await;
                return Err(self.lost());
            }
        }
        let record = self.release_record(client, &verified.value).await;
        // The record goes on the name's retention lease, as every run record (none: no record).
        let retention = crate::record::DEFAULT_RETENTION;
        let records_lease = match record {
            Some(_) => crate::record::Retention::start(client, &self.name, Some(retention))
                .lease()
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let record = record.filter(|_| records_lease.is_some());
        let key = self.key();
        let txn = |record: Option<&RunRecord>| {
            let mut ops: Vec<TxnOp> = record
                .zip(records_lease)
                .map(|(r, lease)| {
                    let key = crate::record::Keys::of(client, &self.name).last_run();
                    let opts = etcd_client::PutOptions::new().with_lease(lease);
                    vec![TxnOp::put(key, r.to_json(), Some(opts))]
                })
                .unwrap_or_default();
            ops.push(TxnOp::delete(key.clone(), None));
            Txn::new()
                .when([
                    Compare::create_revision(key.clone(), CompareOp::Equal, self.fencing_token),
                    Compare::mod_revision(key.clone(), CompareOp::Equal, verified.mod_revision),
                    Compare::lease(key.clone(), CompareOp::Equal, self.lease_id),
                ])
                .and_then(ops)
        };
        let resp = match client
            .txn("cannot release the lock", txn(record.as_ref()))
            .await
        {
            // A user who may write the lock but not its records still releases it.
            Err(e) if record.is_some() && e.to_string().contains("permission denied") => {
                client.txn("cannot release the lock", txn(None)).await?
            }
            other => other?,
        };
        let _ = self.lease().revoke(client).await;
        if resp.succeeded() {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    /// The last-run record a release leaves: the last `run --handle` step's record, when it is
    /// this handle's, marked released; else one for the hold itself (from `acquire` until now).
    async fn release_record(&self, client: &Client, value: &[u8]) -> Option<RunRecord> {
        let last = crate::record::read(client, &self.name)
            .await
            .ok()
            .and_then(|r| r.last_run);
        let mut record = match last {
            Some(r) if r.fencing_token == self.fencing_token => r,
            _ => {
                let holder = Holder::parse(value)?;
                let since = holder.acquired_at.as_deref().unwrap_or(&holder.started_at);
                let since = humantime::parse_rfc3339(since).ok()?;
                let took = std::time::SystemTime::now()
                    .duration_since(since)
                    .unwrap_or_default();
                let mut r = RunRecord::new(&holder, since, took);
                r.fencing_token = self.fencing_token;
                r
            }
        };
        record.handle_released = true;
        Some(record)
    }

    /// Whether the lock's last run says this handle was released (a second `release`, e.g. a
    /// retried cleanup job, is then no loss). Only while no later holder's run has replaced that
    /// record.
    pub async fn released(&self, client: &Client) -> bool {
        crate::record::read(client, &self.name)
            .await
            .ok()
            .and_then(|r| r.last_run)
            .is_some_and(|r| r.handle_released && r.fencing_token == self.fencing_token)
    }

    fn lease(&self) -> Lease {
        Lease {
            id: self.lease_id,
            ttl: std::time::Duration::ZERO,
            granted_at: crate::clock::BootTime::now(),
        }
    }

    /// The error for a lock this handle no longer holds.
    pub fn lost(&self) -> Error {
        Error::Lost(format!(
            "the lock {} of this handle was lost: its lease expired (the TTL ran out after the last acquire, renew or run --handle), was revoked, or its key was deleted or overwritten",
            self.name
        ))
    }
}

/// How [`acquire`] ended.
#[derive(Debug)]
pub enum Acquisition {
    /// We hold the lock and the handle is made: hand it over ([`Undelivered::delivered`]) or
    /// free the lock ([`Undelivered::abandon`]).
    Held(Undelivered),
    /// The patience ran out: who held the lock then, when asked ([`Wait::describe_give_up`]).
    /// The lease is revoked: no key of ours is left.
    GaveUp(Option<QueueInfo>),
    /// A signal came while waiting; the lease is revoked.
    Cancelled(Signal),
    /// The lease was lost while waiting (revoked, expired, the key deleted).
    Lost(String),
}

/// Take the lock `how.name` for a handle (what `etcdlock acquire` does): grant a lease of
/// `params.ttl()`, kept alive and guarded while waiting; wait as [`wait::wait`] waits (its events
/// go to `report`; the key says it is a handle's); then make the [`Handle`] — its secret exists
/// from here on, in the returned [`Undelivered`] only — and write the secret's hash into the key,
/// only now that the key holds the lock (a waiter's key never carries one) and only if the key is
/// still ours; then stop keeping the lease alive and renew it once, so that its TTL counts from
/// now: the lock frees itself a TTL after the last acquire, renew or `run --handle`.
///
/// Guarantees: every path that does not end in [`Acquisition::Held`] — gave up, cancelled, lost,
/// errors included — revokes the lease, which deletes our key; a failure after the lock was taken
/// (the hash not written, the renewal) frees the lock again before the error returns. The one
/// lease is granted here and ends here, or in [`Undelivered`].
pub async fn acquire(
    client: &Client,
    params: SafetyParams,
    signals: &mut Signals,
    how: &Wait<'_>,
    report: &dyn Fn(wait::Event<'_>),
) -> Result<Acquisition> {
    let mut holder = how.holder.clone();
    holder.handle = true;
    let lease = Lease::grant(client, params.ttl()).await?;
    let session = Session::from_lease(client, lease, params, Signal::SIGTERM).await?;
    let mine = Wait {
        holder: &holder,
        ..how.clone()
    };
    let waited = wait::wait(
        client,
        session.lease(),
        session.guard(),
        signals,
        &mine,
        report,
    )
    .await;
    let ended = match waited {
        Ok(wait::Waited::Acquired(holding)) => Ok(holding.into_acquired()),
        Ok(wait::Waited::GaveUp(info)) => Err(Ok(Acquisition::GaveUp(info))),
        Ok(wait::Waited::Cancelled(sig)) => Err(Ok(Acquisition::Cancelled(sig))),
        Ok(wait::Waited::Lost(reason)) => Err(Ok(Acquisition::Lost(reason))),
        Err(e) => Err(Err(e)),
    };
    let acquired = match ended {
        Ok(acquired) => acquired,
        Err(result) => {
            // Gave up, interrupted or failed: leave the queue (the revoke deletes our key).
            let _ = session.close().await;
            return result;
        }
    };
    let lease_id = session.lease().id;
    let handle = match Handle::new(
        client.cluster_id(),
        lease_id,
        acquired.fencing_token,
        how.name.to_owned(),
    ) {
        Ok(handle) => handle,
        Err(e) => {
            let _ = session.close().await;
            return Err(e);
        }
    };
    holder.acquired_at = Some(crate::holder::now_rfc3339());
    holder.handle_secret_sha256 = Some(handle.secret_sha256());
    match crate::lock::mark_held(client, &acquired, lease_id, &holder).await {
        Ok(true) => {}
        other => {
            let _ = session.close().await;
            return Err(match other {
                Err(e) => e,
                _ => handle.lost(),
            });
        }
    }
    session.detach();
    let mut taken = Undelivered {
        client: client.clone(),
        handle,
        acquired,
        ttl: Duration::ZERO,
        settled: false,
    };
    match taken.handle.renew(client).await {
        Ok(ttl) => {
            taken.ttl = ttl;
            Ok(Acquisition::Held(taken))
        }
        Err(e) => {
            let _ = taken.abandon().await;
            Err(e)
        }
    }
}

/// A lock just taken for a handle by [`acquire`], whose handle nobody has yet. Hand the handle
/// over ([`Undelivered::handle`]: print it, write it to a file) and say so
/// ([`Undelivered::delivered`]), or free the lock ([`Undelivered::abandon`]) when it could not
/// be delivered.
///
/// Dropped without either, it frees the lock too: the lease is revoked from a thread of its own,
/// with its own connection, waiting at most 5 s (a lock whose handle nobody has would otherwise
/// stay held, by nobody, for its whole TTL; if etcd does not answer in time, it does).
#[must_use = "hand the handle over (delivered) or free the lock (abandon); dropping it frees the lock"]
pub struct Undelivered {
    client: Client,
    handle: Handle,
    acquired: Acquired,
    ttl: Duration,
    settled: bool,
}

impl std::fmt::Debug for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Undelivered")
            .field("handle", &self.handle)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Undelivered {
    /// The handle to hand over (a bearer secret: see the module's documentation).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The TTL etcd granted at the renewal: the lock frees itself this long from now unless the
    /// handle renews it, runs under it or releases it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The handle was handed over: the lock is its holder's from now on (it frees itself at the
    /// end of the TTL unless renewed). The handle, for a caller that keeps it.
    pub fn delivered(mut self) -> Handle {
        self.settled = true;
        self.handle.clone()
    }

    /// Nobody can use a handle that was not delivered: free the lock now rather than at the end
    /// of the TTL — delete the key (only while it is still the one taken), then revoke the lease.
    /// An error says why the revoke failed (the lock then frees when the lease expires).
    pub async fn abandon(mut self) -> std::result::Result<(), String> {
        self.settled = true;
        let _ = crate::lock::release(&self.client, &self.handle.name, &self.acquired, None).await;
        self.handle.lease().revoke(&self.client).await
    }
}

impl Drop for Undelivered {
    fn drop(&mut self) {
        if !self.settled {
            tracing::debug!(
                lease = format!("{:x}", self.handle.lease_id),
                "a handle dropped undelivered; revoking its lease"
            );
            crate::session::revoke_on_own_thread(
                self.client.config().clone(),
                self.handle.lease_id,
                Duration::from_secs(5),
            );
        }
    }
}

/// A handle's lease, found alive by [`Handle::attach`]: to keep alive while a command runs in the
/// handle's lock ([`crate::runner::hold_handle`]).
#[derive(Debug)]
pub struct Attached {
    client: Client,
    lease: Lease,
}

impl Attached {
    /// The TTL the lease was granted: the safety parameters of a run in the lock must fit it.
    pub fn ttl(&self) -> Duration {
        self.lease.ttl
    }

    /// Keep the lease alive and guard it, as a [`Session`] whose deadline counts from what etcd
    /// said was left (`params` are checked against the lease's TTL; an armed tree gets
    /// `kill_signal` first). Hand the session to [`crate::runner::hold_handle`], which leaves the
    /// lease to its TTL afterwards (revoking it only if the lock was lost).
    pub async fn keep_alive(self, params: SafetyParams, kill_signal: Signal) -> Result<Session> {
        Session::from_lease(&self.client, self.lease, params, kill_signal).await
    }
}

impl Handle {
    /// The handle's lease, if it is still alive (one read; [`Error::Lost`] if it expired or was
    /// revoked), to run a command in the lock ([`Attached::keep_alive`]). Check the handle
    /// against its key first ([`Handle::verify`]): this reads only the lease.
    pub async fn attach(&self, client: &Client) -> Result<Attached> {
        let lease = Lease::attach(client, self.lease_id).await?;
        Ok(Attached {
            client: client.clone(),
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handle {
        Handle::new(
            0xdead_beef_0123,
            0x694d_7e3c_0a9b_1f02,
            4242,
            "/ci/deploy-prod/".into(),
        )
        .unwrap()
    }

    #[test]
    fn handles_round_trip_and_refuse_damage() {
        let h = sample();
        let text = h.encode();
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        assert!(text.starts_with("etl2."));
        assert_eq!(Handle::parse(&text).unwrap(), h);
        assert_eq!(Handle::parse(&format!("  {text}\n")).unwrap(), h);
        assert_eq!(h.key(), "/ci/deploy-prod//694d7e3c0a9b1f02");
        for bad in [
            &text[..text.len() - 1],
            &text[..20],
            "",
            "hello",
            &text.replace("4242", "4243"),
        ] {
            assert!(matches!(Handle::parse(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn secrets_are_random_hidden_and_only_hashed() {
        let (a, b) = (sample(), sample());
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.encode(), b.encode());
        assert_ne!(a.secret_sha256(), b.secret_sha256());
        assert_eq!(a.secret_sha256().len(), 64);
        let shown = format!("{a:?}");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(a.secret);
        assert!(
            !shown.contains(&b64) && shown.contains("<hidden>"),
            "{shown}"
        );
        // The hash is tied to the key: the same secret under another lease does not verify.
        let mut moved = a.clone();
        moved.lease_id += 1;
        assert_ne!(moved.secret_sha256(), a.secret_sha256());
    }

    #[test]
    fn old_handles_get_a_clear_error() {
        let old = "etl1.dead.694d7e3c0a9b1f02.4242.L2NpL2RlcGxveS1wcm9kLw.0a1b2c3d";
        let Err(Error::Config(msg)) = Handle::parse(old) else {
            panic!("an etl1 handle must be refused");
        };
        assert!(msg.contains("older etcdlock"), "{msg}");
    }
}
