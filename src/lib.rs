//! Distributed locks in etcd whose holders stop *before* their lease can expire: the Rust
//! counterpart of Go's `client/v3/concurrency` (Session, Mutex), and the engine of the `etcdlock`
//! command.
//!
//! # The safety contract
//!
//! A [`Session`] holds one etcd lease and a [`Guard`] that knows the earliest moment the server
//! could expire it: the *send* time of the last acknowledged keep-alive plus the TTL the server
//! granted, on CLOCK_BOOTTIME. The guard declares the session lost — [`Session::lost`] resolves,
//! and an armed process tree gets its kill signal, then SIGKILL — a grace period plus half a second
//! *before* that moment. So while the holder's process runs normally, nothing it protects runs on
//! once someone else can hold the lock: not when etcd is partitioned away, frozen or restarted,
//! not when a leader is lost, not when someone revokes the lease or deletes the key.
//!
//! A command run through [`process`] is also covered when the holder's process alone is paused
//! (SIGSTOP, a debugger, a cgroup freezer, starvation): the guard publishes its kill times to the
//! reaper helper, a second process, which kills the command's tree at those times if no newer
//! ones come ([`process::reaper`]).
//!
//! What no lease lock can promise: if the whole host is paused (a VM freeze, suspend) — or the
//! holder's process and its helper both are, or a [`Session`] is used without [`process`] — the
//! command keeps running during the pause, and the lease can pass to someone else meanwhile. Pass
//! [`Held::fencing_token`] (with [`Held::cluster_id`]) to the resource you protect and let it
//! reject older tokens.
//!
//! # The invariants, and the one place each is enforced
//!
//! | invariant | where |
//! |---|---|
//! | the deadline is the send time of the last acknowledged keep-alive + the granted TTL, on CLOCK_BOOTTIME | [`session::keep_alive`] (the guard's crate-private `extend`), [`clock::BootTime`] |
//! | kill signal at deadline − grace − 0.5 s, SIGKILL at deadline − 0.5 s | [`SafetyParams::term_at`], [`SafetyParams::kill_at`] |
//! | the TTL is one etcd will not change; the grace is under half the TTL, before and after the grant | [`SafetyParams::new`], [`SafetyParams::with_granted_ttl`] |
//! | keep-alives are paced by the window before the kill signal (a renewal half a window after the last acknowledgement, a third for short TTLs), resent every 0.5 s, abandoned for another endpoint when silent | [`SafetyParams::renew_every`], [`SafetyParams::stale_after`], [`session::keep_alive`] |
//! | loss is a latch: a late acknowledgement never revives a lost lease; no caller outside the crate can extend, arm or stop a guard | [`Guard`] (its mutators are crate-private), [`Guard::lost`] |
//! | enforcement runs on its own OS thread, which re-reads the clock at least once a second, and stops when its session is closed, detached or dropped | [`Session`] |
//! | a revoked lease (TTL 0), a deleted lock key or one put over (detached from its lease, value changed) is loss | [`session::keep_alive`], [`lock::watch_own_key`] |
//! | a waiter re-reads its own key in the same read that finds it first (etcd #11456), or, with exactly one key ahead of it, sees its key unchanged in the same watch that sees that key go | [`lock::Queued::wait`] |
//! | unlock deletes only its own key revision (etcd #22082); a cancelled wait deletes its queue key, even when cancelled while the queue transaction is in flight | [`Held::unlock`], [`Mutex::lock`], [`wait::wait`] |
//! | the lease grant is idempotent: no orphan lease after a lost answer | [`session::Lease::grant`] |
//! | a lock's queue is exactly the keys `NAME/<lease hex>` attached to that lease | [`queue`] |
//! | a campaign never returns leadership without its key (it fails when the session is lost or the key goes: etcd #11007); a dropped or failed campaign deletes its key; leadership is the oldest queue key, as in Go's `Election` | [`election::Election::campaign`] |
//! | **the whole promise for a command, in one call**: wait (cancel-safely, the own key watched), spawn into its tree, arm the guard after spawn and disarm it once the tree is empty, forward signals, the tree dead before the lease is revoked, the records written with the release | [`runner::hold`] ([`runner::hold_handle`] in a lock held by a handle; its parts [`wait::wait`], [`runner::run_command`], [`runner::release`]) |
//! | a lock taken for a handle has the secret's hash in its key only once the key holds, and is freed at once (not at the end of its TTL) when nobody got the handle: every failure after the grant revokes, and an undelivered handle is delivered, abandoned or dropped (which revokes) | [`handle::acquire`], [`handle::Undelivered`] |
//! | a service kept up across leaderships (`elect --on-lost-signal`) is told by signal, not killed, when leadership ends — at the latest at the kill-signal point, the active file removed first — and killed before the lease can expire if it cannot be told in time | [`roles::Service::lead`] (the guard's crate-private `promote` / `demote`) |
//! | every process the command starts is tracked: a cgroup joined at clone time, else subreaper | [`process::tree::Tree`], [`process::spawn::spawn`] |
//! | the command dies with its supervisor: `PR_SET_PDEATHSIG` from a thread that lives as long as the process (the main one, else the library's spawner thread: callers may be on any thread), and a reaper helper for the rest of the tree | [`process::spawn::spawn`], [`process::reaper`] |
//! | only the command's processes are signalled, waited for or reaped, never an embedding program's own children | [`process::tree::Tree::members`], [`process::spawn::reap`] |
//! | a frozen supervisor does not keep the command alive: the guard publishes its kill times to the helper on every change, the helper kills at them; either one acting latches the loss | [`process::tree::Tree::publish_deadlines`], [`process::reaper::serve`] |
//! | the helper holds only its pipe, its page and `cgroup.kill`, is not named "etcdlock", and its death stops the command | [`process::reaper`] |
//!
//! # Where things are
//!
//! - [`client`]: [`Config`] (endpoints, TLS, credentials) and [`Client`] (fail-over, retries).
//! - [`session`]: [`Session`], the lease and its keep-alive; [`guard`]: the deadline.
//! - [`lock`]: [`Mutex`] (also a semaphore), [`Held`]; the queue algorithm.
//! - [`queue`]: what a lock is in etcd keys; [`holder`]: the metadata each key carries;
//!   [`record`]: the run records and the once-per-period marker, in a namespace of their own
//!   (never under a lock's prefix) and on leases that expire.
//! - [`election`]: [`Election`] (campaign, leadership, observe), Go's `concurrency.Election`
//!   and `etcdctl elect` compatible.
//! - [`roles`]: a command that stays up across leaderships and switches roles by signal
//!   (Choria's pattern, `etcdlock elect --on-won-signal/--on-lost-signal`).
//! - [`inspect`]: status, list and break as data; [`handle`]: a held lock as one line of text.
//! - [`runner`]: **the whole promise in one call**, [`runner::hold`] — wait for the lock, run a
//!   command under it and release it with its records, reporting typed events and outcomes (what
//!   `etcdlock run` and `run --handle` use; `examples/run.rs` is `etcdlock run` in about 30
//!   lines); [`runner::open_session`] grants the lease a run holds. [`wait`]: the waiting part on
//!   its own; [`handle::acquire`]: a lock taken for a handle (what `etcdlock acquire` uses).
//! - [`process`]: running a command under a session (tree tracking, spawn, reaper, supervision).
//!   It lives here rather than in the binary because its invariants and the guard's are one
//!   contract: see the module's documentation.
//!
//! The API follows the `etcdlock` binary's needs first; it carries no semver promise before 1.0.
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod election;
pub mod error;
pub mod guard;
pub mod handle;
pub mod herd;
pub mod holder;
pub mod inspect;
pub mod lock;
pub mod process;
pub mod queue;
pub mod random;
pub mod record;
pub mod roles;
pub mod runner;
pub mod safety;
pub mod session;
pub mod wait;

pub use client::{Client, Config};
pub use election::{Election, Leadership};
pub use error::{Error, Result};
pub use guard::Guard;
pub use holder::Holder;
pub use lock::{Held, Mutex};
pub use safety::SafetyParams;
pub use session::Session;
