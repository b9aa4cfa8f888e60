//! The safety net for bugs: even a panic must not strand a lease or leave the command running.
//!
//! The release profile aborts on panic (no unwinding: smaller, and no half-run destructors), and
//! an abort would skip the revoke: the dead process would "hold" the lock for its TTL and exit
//! 134, as if the command had died of SIGABRT. So a panic hook, installed first thing in `main`,
//! does what every exit path does, in the order the promise needs:
//!
//! 1. one `etcdlock: internal error` line naming the bug;
//! 2. SIGKILL the command's whole tree and wait (bounded) until it is gone — the command must be
//!    dead before anyone else can hold the lock;
//! 3. revoke the lease from a fresh thread with its own runtime and connection (the panicking
//!    thread may be the runtime's), bounded to a few seconds; skipped if the tree could not be
//!    confirmed dead, so the lease then expires by its TTL instead (the reaper helper keeps
//!    killing);
//! 4. exit with [`crate::exit::INTERNAL`] (1), never 134.
//!
//! The hook has the library clean up ([`etcdlock::runner::last_resort`]) what `run` registered as
//! it went (`last_resort::lease_granted`, `last_resort::tracking`). `ETCDLOCK_TEST_PANIC=<point>` makes etcdlock panic at a named point
//! ([`test_point`]); the tests use it to prove all of the above.

use etcdlock::runner::last_resort;

/// Panic here if `ETCDLOCK_TEST_PANIC` names this point (a test hook; the tests clear every
/// `ETCDLOCK_*` variable of the caller's environment, so it is never set by accident).
#[track_caller]
pub fn test_point(point: &str) {
    if std::env::var("ETCDLOCK_TEST_PANIC").is_ok_and(|p| p == point) {
        panic!("ETCDLOCK_TEST_PANIC={point}");
    }
}

/// Install the hook (first thing in `main`).
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        crate::output::warn(format!(
            "internal error (a bug, please report it): {message}{location}; stopping the command and releasing the lock"
        ));
        if let Some(id) = last_resort::clean_up() {
            crate::output::warn(format!(
                "could not revoke lease {id:x}; the lock frees when it expires"
            ));
        }
        std::process::exit(i32::from(crate::exit::INTERNAL));
    }));
}
