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

use crate::holder::Mode;

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
    /// How it holds, when its value was read (keys-only reads do not know).
    pub mode: Option<Mode>,
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
    (lease != 0 && is_hex_of(suffix, lease as u64)).then(|| &key[..slash])
}

/// Whether `text` is `n` in lowercase hex, no leading zeros (as `format!("{n:x}")` writes it),
/// without allocating: `list` asks this of every key it reads.
fn is_hex_of(text: &[u8], mut n: u64) -> bool {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    text == &digits[i..]
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
            // Keys-only reads cannot tell; see `slots_with_modes`.
            mode: None,
        })
        .collect()
}

/// [`slots`] from a read that included values: each with its mode.
pub fn slots_with_modes(prefix: &[u8], kvs: &[KeyValue]) -> Vec<Slot> {
    let mut slots = slots(prefix, kvs);
    let values = kvs.iter().filter(|kv| is_queue_key(prefix, kv));
    for (slot, kv) in slots.iter_mut().zip(values) {
        slot.mode = Some(Mode::of_value(kv.value()));
    }
    slots
}

/// Which of the keys ahead of a contender in `mode` keep it from holding: every one for an
/// exclusive contender, the exclusive ones for a shared contender (one whose mode is unknown
/// counts as exclusive).
pub fn blockers(mode: Mode, ahead: &[Slot]) -> Vec<Slot> {
    ahead
        .iter()
        .filter(|s| mode == Mode::Exclusive || s.mode != Some(Mode::Shared))
        .cloned()
        .collect()
}

/// The holders of a queue (in order, values read): the first key if exclusive, else every shared
/// key before the first exclusive one — up to `limit` keys for a semaphore.
pub fn holders(queue: &[Slot], limit: u32) -> usize {
    match queue.first().and_then(|s| s.mode) {
        Some(Mode::Shared) => queue
            .iter()
            .take_while(|s| s.mode == Some(Mode::Shared))
            .count(),
        _ => queue.len().min(limit as usize),
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's convention).
pub fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_follows_etcd() {
        assert_eq!(range_end(b"/jobs/"), b"/jobs0".to_vec());
        assert_eq!(range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(range_end(b"\xff"), vec![0]);
    }

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
        for n in [1u64, 0xf, 0x10, 0x694d_8f3a_1c2b_0e07, u64::MAX >> 1] {
            assert!(is_hex_of(format!("{n:x}").as_bytes(), n));
            assert!(!is_hex_of(format!("0{n:x}").as_bytes(), n));
            assert!(!is_hex_of(format!("{n:X}1").as_bytes(), n));
        }
    }

    fn slot(rev: i64, mode: Option<Mode>) -> Slot {
        Slot {
            key: format!("/l/{rev:x}"),
            create_revision: rev,
            lease: rev,
            mode,
        }
    }

    #[test]
    fn shared_holders_hold_together_and_wait_behind_an_exclusive_one() {
        use Mode::*;
        let (s, x, unknown) = (Some(Shared), Some(Exclusive), None);
        // Shared behind shared: nothing blocks; behind an exclusive (or unknown) key: it blocks.
        assert!(blockers(Shared, &[slot(1, s), slot(2, s)]).is_empty());
        assert_eq!(
            blockers(Shared, &[slot(1, s), slot(2, x), slot(3, s)]).len(),
            1
        );
        assert_eq!(blockers(Shared, &[slot(1, unknown)]).len(), 1);
        assert_eq!(blockers(Exclusive, &[slot(1, s)]).len(), 1);
        // Holders: the leading shared keys, or the first exclusive alone.
        assert_eq!(
            holders(&[slot(1, s), slot(2, s), slot(3, x), slot(4, s)], 1),
            2
        );
        assert_eq!(holders(&[slot(1, x), slot(2, s)], 1), 1);
        assert_eq!(holders(&[slot(1, x), slot(2, x), slot(3, x)], 2), 2);
        assert_eq!(holders(&[], 1), 0);
    }

    /// Who holds, by each contender's own rule: no blocker among the keys ahead of it.
    fn holding(queue: &[Slot]) -> Vec<usize> {
        (0..queue.len())
            .filter(|&i| blockers(queue[i].mode.unwrap_or(Mode::Exclusive), &queue[..i]).is_empty())
            .collect()
    }

    fn any_mode() -> impl proptest::strategy::Strategy<Value = Option<Mode>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Some(Mode::Shared)),
            Just(Some(Mode::Exclusive)),
            Just(None)
        ]
    }

    proptest::proptest! {
        /// In any queue, and after any sequence of arrivals and releases: the contenders that hold
        /// are a prefix of the queue (FIFO: nobody overtakes a waiter, so a shared request behind a
        /// waiting exclusive one waits), they are one exclusive key or only shared keys, and
        /// `holders` (what status shows) agrees with each contender's own view.
        #[test]
        fn holders_are_a_compatible_prefix(
            steps in proptest::collection::vec((any_mode(), proptest::bool::ANY, 0usize..8), 1..60)
        ) {
            let mut queue: Vec<Slot> = Vec::new();
            for (rev, (mode, arrive, pick)) in steps.into_iter().enumerate() {
                let held = holding(&queue);
                if arrive || held.is_empty() {
                    queue.push(slot(rev as i64 + 1, mode));
                } else {
                    queue.remove(held[pick % held.len()]);
                }
                let held = holding(&queue);
                proptest::prop_assert_eq!(&held, &(0..held.len()).collect::<Vec<_>>());
                proptest::prop_assert_eq!(held.len(), holders(&queue, 1));
                let shared = held.iter().all(|&i| queue[i].mode == Some(Mode::Shared));
                proptest::prop_assert!(held.len() <= 1 || shared);
                proptest::prop_assert!(queue.is_empty() || !held.is_empty());
            }
        }
    }

    #[test]
    fn keys_and_prefixes() {
        assert_eq!(key_for("/my-lock/", 0x1f), "/my-lock//1f");
    }
}
