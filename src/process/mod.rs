//! Process supervision: running the command so that the promise holds for all of it.
//!
//! This lives in the library, beside the [`Guard`](crate::Guard) that kills through it, because
//! the invariants the promise depends on span both: the guard may only signal a tree it has been
//! armed with ([`tree::Tree`], armed after spawn, disarmed once the tree is empty), the command is
//! spawned from a thread that lives as long as the process (`PR_SET_PDEATHSIG` fires when the
//! *forking thread* exits: [`spawn::spawn`] forks on the main thread or the library's spawner
//! thread), and the reaper helper is forked before the command exists. A program
//! that embeds etcdlock to run commands under a lock gets all of it; one that only needs a mutex
//! never touches this module.
//!
//! - [`tree`]: which processes are the command's (cgroup v2 or subreaper), signalling and killing
//!   them, knowing when they are gone;
//! - [`spawn`]: `clone3` straight into the cgroup (sharing our memory until the exec, on a stack
//!   of the child's own), exec errors reported exactly, reaping;
//! - [`reaper`]: the helper that kills the tree when etcdlock itself dies;
//! - [`supervise`]: signals, `--max-runtime`-style limits, leftovers, and the command's end.

pub mod reaper;
pub mod spawn;
pub mod supervise;
pub mod tree;
pub(crate) mod watchdog_abi;
