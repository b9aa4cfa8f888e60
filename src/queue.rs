//! What a lock is, in etcd keys: the one definition that `run`, `status`, `list` and `break`
//! share.
//!
//! The queue of lock NAME is the keys `NAME/<lease id in lowercase hex>` directly under `NAME/`
//! (no further `/`) that are attached to that lease. Keys deeper down belong to other locks
//! (`/jobs` and `/jobs/backup` are two locks), and a key without a lease is data, not a holder
//! (etcd deletes lease-attached keys when the lease ends; nothing would ever delete the other).
//! `etcdctl lock` and Go's `concurrency.Mutex` always write such keys, so exclusion with them is
//! exact: same NAME string, same queue, FIFO by create revision.
//!
//! A trailing slash is part of the name: `/x/` is a different lock from `/x` (its keys are
//! `/x//<hex>`), exactly as Go's `NewMutex(s, "/x/")` sees it.

use etcd_client::KeyValue;

/// Extra keys read beyond what is needed, so that a few keys of nested locks or other data in the
/// range rarely cost a second page.
pub const SLACK: i64 = 16;

/// One key of a lock's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The key, `NAME/<lease hex>`.
    pub key: String,
    /// Its create revision: its place in the queue, and the holder's fencing token.
    pub create_revision: i64,
    /// The lease it is attached to.
    pub lease: i64,
}

/// The prefix under which a lock's keys live.
pub fn prefix_of(name: &str) -> String {
    format!("{name}/")
}

/// The key a holder with lease `lease_id` puts for lock `name`.
pub fn key_for(name: &str, lease_id: i64) -> String {
    format!("{}{lease_id:x}", prefix_of(name))
}

/// If `kv` has the shape of a lock key (`<anything>/<hex of its own lease>`, lease attached),
/// the lock name it belongs to.
pub fn lock_name_of(kv: &KeyValue) -> Option<&[u8]> {
    lock_name(kv.key(), kv.lease())
}

fn lock_name(key: &[u8], lease: i64) -> Option<&[u8]> {
    let slash = key.iter().rposition(|&b| b == b'/')?;
    let suffix = &key[slash + 1..];
    (lease != 0 && suffix == format!("{lease:x}").as_bytes()).then(|| &key[..slash])
}

/// Whether `kv` is in the queue of the lock whose prefix is `prefix` (`NAME/`).
pub fn is_queue_key(prefix: &[u8], kv: &KeyValue) -> bool {
    in_queue(prefix, kv.key(), kv.lease())
}

fn in_queue(prefix: &[u8], key: &[u8], lease: i64) -> bool {
    lock_name(key, lease)
        .is_some_and(|name| name.len() + 1 == prefix.len() && prefix.starts_with(name))
}

/// The queue keys among `kvs` (in their order).
pub fn slots(prefix: &[u8], kvs: &[KeyValue]) -> Vec<Slot> {
    kvs.iter()
        .filter(|kv| is_queue_key(prefix, kv))
        .map(|kv| Slot {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            create_revision: kv.create_revision(),
            lease: kv.lease(),
        })
        .collect()
}

/// Lock names that a run of `name` could be confused with: every proper prefix of `name` that
/// ends just before a `/` (the nearest four), e.g. `/jobs` for `/jobs/backup`.
pub fn ancestors(name: &str) -> Vec<&str> {
    name.match_indices('/')
        .map(|(i, _)| &name[..i])
        .filter(|a| !a.is_empty())
        .rev()
        .take(4)
        .collect()
}

/// The key range that holds every possible `ANCESTOR/<hex>` key (hex digits sort between `0`
/// and `f`), so looking for a live ancestor lock does not read unrelated data after it.
pub fn hex_range(prefix: &str) -> (String, String) {
    (format!("{prefix}0"), format!("{prefix}g"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_direct_lease_keys_only() {
        let p = b"/jobs/";
        assert!(in_queue(p, b"/jobs/1f", 0x1f));
        // A nested lock's key, a lease-less key, a key whose suffix is not its lease.
        assert!(!in_queue(p, b"/jobs/backup/1f", 0x1f));
        assert!(!in_queue(p, b"/jobs/1f", 0));
        assert!(!in_queue(p, b"/jobs/settings", 0));
        assert!(!in_queue(p, b"/jobs/20", 0x1f));
        // Trailing slashes: /x/ and /x are different locks.
        assert!(in_queue(b"/x//", b"/x//a", 0xa));
        assert!(!in_queue(b"/x/", b"/x//a", 0xa));
        assert_eq!(
            lock_name(b"/jobs/backup/1f", 0x1f),
            Some(&b"/jobs/backup"[..])
        );
        assert_eq!(lock_name(b"/jobs/backup", 0), None);
    }

    #[test]
    fn ancestors_are_the_slash_prefixes() {
        assert_eq!(ancestors("/jobs/backup/db"), vec!["/jobs/backup", "/jobs"]);
        assert_eq!(ancestors("/x/"), vec!["/x"]);
        assert!(ancestors("plain").is_empty());
        assert!(ancestors("/top").is_empty());
    }

    #[test]
    fn keys_and_prefixes() {
        assert_eq!(key_for("/my-lock/", 0x1f), "/my-lock//1f");
        assert_eq!(hex_range("/jobs/"), ("/jobs/0".into(), "/jobs/g".into()));
    }
}
