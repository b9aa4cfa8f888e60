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
//! The hook reads what to clean from a registry that `run` fills as it goes ([`lease_granted`],
//! [`tracking`]). `ETCDLOCK_TEST_PANIC=<point>` makes etcdlock panic at a named point
//! ([`test_point`]); the tests use it to prove all of the above.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use etcdlock::process::tree::Tree;
use etcdlock::Config;

#[derive(Default)]
struct Registry {
    lease: Option<(Config, i64)>,
    tree: Option<Arc<Tree>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn update(f: impl FnOnce(&mut Registry)) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut r);
}

/// A lease is held from now on: a panic revokes it.
pub fn lease_granted(config: &Config, id: i64) {
    update(|r| r.lease = Some((config.clone(), id)));
}

/// The lease was revoked (or is about to be): nothing left to revoke.
pub fn lease_released() {
    update(|r| r.lease = None);
}

/// The command runs as `tree` (`None` once it is gone).
pub fn tracking(tree: Option<Arc<Tree>>) {
    update(|r| r.tree = tree);
}

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
        // try_lock: the panic may have happened while the registry was being updated.
        let (lease, tree) = match registry().try_lock() {
            Ok(mut r) => (r.lease.take(), r.tree.take()),
            Err(_) => (None, None),
        };
        let dead = tree.as_deref().is_none_or(|t| {
            let dead = t.stop_all(Duration::from_secs(3));
            t.finish();
            dead
        });
        if let (true, Some((config, id))) = (dead, lease) {
            revoke(config, id);
        }
        std::process::exit(i32::from(crate::exit::INTERNAL));
    }));
}

/// Revoke lease `id` on a thread of its own, waiting at most 5 s.
fn revoke(config: Config, id: i64) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("etcdlock-emergency".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let revoked = rt.block_on(async {
                let etcd = etcdlock::Client::connect(config, etcdlock::client::Check::Lazy)
                    .await
                    .ok()?;
                etcd.call(|mut c| async move { c.lease_revoke(id).await })
                    .await
                    .ok()
            });
            let _ = done_tx.send(revoked.is_some());
        });
    if spawned.is_ok() && done_rx.recv_timeout(Duration::from_secs(5)) == Ok(true) {
        return;
    }
    crate::output::warn(format!(
        "could not revoke lease {id:x}; the lock frees when it expires"
    ));
}
