//! Handles: a held lock as one line of text, so that one process can take a lock, another run
//! commands under it and a third release it — CI jobs, `ExecStartPre`/`ExecStartPost`.
//!
//! ```text
//! etl1.<cluster id hex>.<lease id hex>.<fencing token>.<lock name, base64url>.<check>
//! ```
//!
//! Only `[A-Za-z0-9._-]`: safe unquoted in shell variables, CI outputs and dotenv files. The
//! cluster id makes a handle from another cluster refusable before anything is written; the
//! check (FNV-1a of the rest) catches a handle cut or mangled on its way.

use base64::Engine;

use crate::client::Client;
use crate::error::{Error, Result};

/// The handle's version prefix.
const PREFIX: &str = "etl1";

/// A lock held by a lease that no process keeps alive (see `etcdlock acquire`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// The cluster the lock was taken in.
    pub cluster_id: u64,
    /// The lease holding it.
    pub lease_id: i64,
    /// The holder key's create revision.
    pub fencing_token: i64,
    /// The lock's name.
    pub name: String,
}

fn check(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Handle {
    /// The holder key, `NAME/<lease hex>`.
    pub fn key(&self) -> String {
        crate::queue::key_for(&self.name, self.lease_id)
    }

    /// The handle as text.
    pub fn encode(&self) -> String {
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.name.as_bytes());
        let body = format!(
            "{PREFIX}.{:x}.{:x}.{}.{name}",
            self.cluster_id, self.lease_id, self.fencing_token
        );
        format!("{body}.{:08x}", check(&body))
    }

    /// Parse a handle; a malformed, truncated or altered one is an error that says so.
    pub fn parse(text: &str) -> Result<Handle> {
        let bad = |why: &str| {
            Error::Config(format!(
                "not an etcdlock handle ({why}); pass the line `etcdlock acquire` printed, whole"
            ))
        };
        let text = text.trim();
        let (body, sum) = text.rsplit_once('.').ok_or_else(|| bad("no check"))?;
        if u32::from_str_radix(sum, 16).ok() != Some(check(body)) || sum.len() != 8 {
            return Err(bad("it was cut or changed"));
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [prefix, cluster, lease, token, name] = parts[..] else {
            return Err(bad("wrong number of fields"));
        };
        if prefix != PREFIX {
            return Err(bad("unknown version"));
        }
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(name)
            .ok()
            .and_then(|n| String::from_utf8(n).ok())
            .ok_or_else(|| bad("bad lock name"))?;
        let handle = Handle {
            cluster_id: u64::from_str_radix(cluster, 16).map_err(|_| bad("bad cluster id"))?,
            lease_id: i64::from_str_radix(lease, 16).map_err(|_| bad("bad lease id"))?,
            fencing_token: token.parse().map_err(|_| bad("bad fencing token"))?,
            name,
        };
        crate::lock::check_name(&handle.name)?;
        Ok(handle)
    }
}

/// What a handle's lock is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Held: the key is there with the handle's fencing token, the lease alive.
    Held,
    /// Lost: the key is gone (the lease expired, was revoked, or the key deleted).
    Lost,
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

    /// Whether the lock is still held by this handle (one read).
    pub async fn state(&self, client: &Client) -> Result<State> {
        Ok(self.state_at(client).await?.0)
    }

    /// [`Handle::state`], and the store revision it was read at.
    pub async fn state_at(&self, client: &Client) -> Result<(State, i64)> {
        let key = self.key();
        let resp = client
            .retrying("cannot read the lock", || {
                let key = key.clone();
                client.call(|mut c| async move { c.get(key, None).await })
            })
            .await?;
        client.note_cluster(resp.header());
        let state = match resp.kvs().first() {
            Some(kv) if kv.create_revision() == self.fencing_token => State::Held,
            _ => State::Lost,
        };
        Ok((state, resp.header().map_or(0, |h| h.revision())))
    }

    /// Reset the lease to its TTL (one keep-alive); the TTL granted. [`Error::Lost`] if the lock
    /// is gone (its lease is then revoked: it holds nothing).
    pub async fn renew(&self, client: &Client) -> Result<std::time::Duration> {
        if self.state(client).await? == State::Lost {
            let _ = self.lease().revoke(client).await;
            return Err(self.lost());
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

    /// Release the lock now: delete the key (only this handle's revision) and revoke the lease.
    /// [`Error::Lost`] if it had been lost meanwhile (someone else may have held the lock).
    pub async fn release(&self, client: &Client) -> Result<()> {
        let acquired = crate::lock::Acquired {
            key: self.key(),
            fencing_token: self.fencing_token,
            revision: 0,
        };
        let held = crate::lock::release(client, &self.name, &acquired, None).await?;
        let _ = self.lease().revoke(client).await;
        if held {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    fn lease(&self) -> crate::session::Lease {
        crate::session::Lease {
            id: self.lease_id,
            ttl: std::time::Duration::ZERO,
            granted_at: crate::clock::BootTime::now(),
        }
    }

    /// The error for a lock this handle no longer holds.
    pub fn lost(&self) -> Error {
        Error::Lost(format!(
            "the lock {} of this handle was lost: its lease expired (the TTL ran out after the last acquire, renew or run --handle), was revoked, or its key was deleted",
            self.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_refuse_damage() {
        let h = Handle {
            cluster_id: 0xdead_beef_0123,
            lease_id: 0x694d_7e3c_0a9b_1f02,
            fencing_token: 4242,
            name: "/ci/deploy-prod/".into(),
        };
        let text = h.encode();
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
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
}
