//! The safety guard: owns the lease deadline and stops the child before the lease can expire.
//!
//! This is the one promise etcdlock makes that `etcdctl lock` does not. The deadline is the *send*
//! time of the last acknowledged keep-alive plus the TTL the server granted: the server restarted its
//! countdown no earlier than that send, so the lease cannot expire before it. The clock is
//! CLOCK_BOOTTIME, which keeps counting through system suspend (CLOCK_MONOTONIC does not).
//!
//! Enforcement runs on a dedicated OS thread, not in the async runtime: nothing that happens to the
//! runtime (a stuck future, a slow DNS lookup, a flood of child output) can delay the kill. The
//! thread re-reads CLOCK_BOOTTIME at least once a second, so when the process was frozen (SIGSTOP)
//! or the machine suspended past the deadline, it sees the deadline in the past within a second of
//! resuming and kills at once; an acknowledgement that arrives later can never revive the lock,
//! because loss is a latch.
//!
//! The guard cannot act while its own process is stopped (SIGSTOP, a freezer, starvation). So it
//! publishes its kill times to the reaper helper ([`crate::process::reaper`]) whenever it
//! extends or moves them, and the helper kills the tree at those times if no newer ones come;
//! when that happened (or the helper died), the guard latches the lock as lost too.
//!
//! A service that stays up across leaderships ([`crate::roles`]) is armed with `promote` instead:
//! at a loss the guard *tells* it (removes its active file, sends its lost signal to the main
//! process) and disarms, rather than killing the tree; the kill times are still published to the
//! helper while it is armed, so a guard that cannot run in time still has the tree killed.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::Notify;
use tracing::debug;

pub use crate::clock::BootTime;
use crate::process::tree::Tree;
use crate::safety::SafetyParams;

/// After the first SIGKILL pass, repeat this often until the tree is disarmed.
const KILL_REPEAT: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct State {
    deadline: BootTime,
    lost: Option<String>,
    /// The command's process tree while it may be signalled (set after spawn, cleared once the
    /// whole tree is gone).
    tree: Option<Arc<Tree>>,
    term_sent: bool,
    /// When the last SIGKILL pass went out (repeated until the tree is disarmed: without
    /// cgroup.kill a fork can race with one pass).
    kill_sent: Option<BootTime>,
    stopped: bool,
    /// Armed to tell rather than kill (a service that switches roles, see [`crate::roles`]).
    demote: Option<Demote>,
    /// The armed service was told (its lost signal sent) and disarmed.
    told: bool,
}

/// How a service armed with [`Guard::promote`] is told that leadership is gone.
#[derive(Debug)]
struct Demote {
    /// Sent to the tree's main process.
    signal: Signal,
    /// Removed before the signal goes out.
    active_file: Option<std::path::PathBuf>,
}

/// Shared between the keep-alive task (extends), the key watcher (loses), the supervisor (arms and
/// disarms) and the enforcement thread.
pub struct Guard {
    state: Mutex<State>,
    wake: Condvar,
    lost_notify: Notify,
    params: SafetyParams,
    kill_signal: Signal,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("params", &self.params)
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Start guarding a lease whose first deadline is `deadline`, with the kill grace of `params`;
    /// an armed process tree gets `kill_signal` first. Fails only if no thread can be started.
    pub(crate) fn start(
        deadline: BootTime,
        params: SafetyParams,
        kill_signal: Signal,
    ) -> std::io::Result<Arc<Guard>> {
        let guard = Arc::new(Guard {
            state: Mutex::new(State {
                deadline,
                lost: None,
                tree: None,
                term_sent: false,
                kill_sent: None,
                stopped: false,
                demote: None,
                told: false,
            }),
            wake: Condvar::new(),
            lost_notify: Notify::new(),
            params,
            kill_signal,
        });
        let g = guard.clone();
        std::thread::Builder::new()
            .name("etcdlock-guard".into())
            .spawn(move || g.enforce_loop())?;
        Ok(guard)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parameters this guard enforces.
    pub fn params(&self) -> &SafetyParams {
        &self.params
    }

    /// The current deadline: the lease cannot expire on the server before it.
    pub fn deadline(&self) -> BootTime {
        self.lock().deadline
    }

    /// A keep-alive sent at `sent` was acknowledged with `ttl`. Returns false if the lease already
    /// counts as lost: then nothing is extended, ever again.
    pub(crate) fn extend(&self, sent: BootTime, ttl: Duration) -> bool {
        let mut st = self.lock();
        let now = BootTime::now();
        self.enforce(&mut st, now);
        if st.lost.is_some() {
            return false;
        }
        let deadline = sent + ttl;
        if deadline > st.deadline {
            st.deadline = deadline;
        }
        true
    }

    /// The lease is gone (revoked, expired, our key deleted): stop the child now, SIGKILL after the
    /// grace period. Never moves the deadline later.
    pub(crate) fn lose(&self, reason: impl Into<String>) {
        let mut st = self.lock();
        if st.lost.is_none() {
            st.lost = Some(reason.into());
            self.lost_notify.notify_waiters();
        }
        let now = BootTime::now();
        let deadline = now + self.params.kill_after() + SafetyParams::MARGIN;
        if deadline < st.deadline {
            st.deadline = deadline;
        }
        self.enforce(&mut st, now);
        self.wake.notify_all();
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        let mut st = self.lock();
        self.enforce(&mut st, BootTime::now());
        st.lost.clone()
    }

    /// Resolves once the lease counts as lost.
    pub async fn wait_lost(&self) -> String {
        loop {
            let notified = self.lost_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.lost() {
                return reason;
            }
            notified.await;
        }
    }

    /// The command runs as `tree`: from now on all of it is signalled when the lease is lost.
    pub(crate) fn arm(&self, tree: Arc<Tree>) {
        let mut st = self.lock();
        st.tree = Some(tree);
        self.enforce(&mut st, BootTime::now());
        self.wake.notify_all();
    }

    /// The whole tree is gone: nothing to signal any more.
    pub(crate) fn disarm(&self) {
        let mut st = self.lock();
        st.demote = None;
        if let Some(tree) = st.tree.take() {
            tree.clear_deadlines();
        }
    }

    /// A service that stays up across leaderships becomes leader (see [`crate::roles`]): unless
    /// the lease already counts as lost, send `won` (if any) to the main process of `tree` and
    /// arm it to be *told* rather than killed: when the lease is lost (or its kill signal would
    /// be due), `active_file` is removed and `lost` is sent to the main process, and the tree is
    /// disarmed. The kill times are still published to the reaper helper while armed, so if the
    /// guard cannot run in time (etcdlock frozen or starved) the helper kills the whole tree
    /// before the lease can expire. `Err(reason)` if the lease was lost (nothing was sent) or the
    /// main process could not be signalled.
    pub(crate) fn promote(
        &self,
        tree: Arc<Tree>,
        won: Option<Signal>,
        lost: Signal,
        active_file: Option<std::path::PathBuf>,
    ) -> Result<(), String> {
        let mut st = self.lock();
        self.enforce(&mut st, BootTime::now());
        if let Some(reason) = &st.lost {
            return Err(reason.clone());
        }
        if let Some(sig) = won {
            tree.signal_leader(sig)
                .map_err(|e| format!("cannot send {sig} to the command: {e}"))?;
        }
        st.tree = Some(tree);
        st.demote = Some(Demote {
            signal: lost,
            active_file,
        });
        st.told = false;
        self.enforce(&mut st, BootTime::now());
        self.wake.notify_all();
        Ok(())
    }

    /// Tell a promoted service now that it no longer leads (a graceful step-down): remove its
    /// active file, send its lost signal, disarm. True if it was told (false: it was not
    /// promoted, was told already, or its main process is gone).
    pub(crate) fn demote(&self) -> bool {
        let mut st = self.lock();
        match (st.demote.take(), st.tree.take()) {
            (Some(d), Some(tree)) => {
                let told = tell(&tree, &d);
                st.told |= told;
                told
            }
            (_, tree) => {
                st.tree = tree;
                false
            }
        }
    }

    /// Whether a promoted service was sent its lost signal (and then left running).
    pub fn told(&self) -> bool {
        self.lock().told
    }

    /// Stop the enforcement thread (we are releasing the lease).
    pub(crate) fn stop(&self) {
        let mut st = self.lock();
        st.stopped = true;
        st.demote = None;
        if let Some(tree) = st.tree.take() {
            tree.clear_deadlines();
        }
        self.wake.notify_all();
    }

    /// Time left before the child would get the kill signal (zero if lost).
    pub fn time_left(&self) -> Duration {
        let st = self.lock();
        BootTime::now().until(self.params.term_at(st.deadline))
    }

    /// Time left before the command's processes get SIGKILL (zero if that point has passed).
    pub fn kill_in(&self) -> Duration {
        let st = self.lock();
        BootTime::now().until(self.params.kill_at(st.deadline))
    }

    /// Apply the rules for `now`: mark the lease lost once the kill point passed, and signal the
    /// child's group. Called with the state locked, from every entry point and the thread.
    fn enforce(&self, st: &mut State, now: BootTime) {
        if st.lost.is_none() {
            // The reaper helper stopped the command while we were not running, or died: either
            // way the lock counts as lost from now on (and the tree is stopped as for any loss).
            if let Some(why) = st.tree.as_ref().and_then(|t| t.watchdog_verdict()) {
                st.lost = Some(why);
                self.lost_notify.notify_waiters();
                let deadline = now + self.params.kill_after() + SafetyParams::MARGIN;
                if deadline < st.deadline {
                    st.deadline = deadline;
                }
            }
        }
        let term_at = self.params.term_at(st.deadline);
        let kill_at = self.params.kill_at(st.deadline);
        if now >= term_at && st.lost.is_none() {
            // Said from the clock: after a freeze (SIGSTOP, a suspended VM) the deadline may be
            // long past, and "would expire in 0s" would hide how long.
            st.lost = Some(if now < st.deadline {
                format!(
                    "no keep-alive was acknowledged in time; the lease would expire in {}",
                    humantime::format_duration(round_ms(now.until(st.deadline)))
                )
            } else {
                format!(
                    "no keep-alive was acknowledged in time; the lease may have expired on the server {} ago (etcdlock was not running, e.g. stopped or suspended)",
                    humantime::format_duration(round_ms(st.deadline.until(now)))
                )
            });
            self.lost_notify.notify_waiters();
        }
        let Some(tree) = st.tree.clone() else { return };
        if st.lost.is_some() && st.demote.is_some() {
            // A promoted service is told, not killed — unless the helper already acted (we did
            // not run in time: it is killing the tree) or is gone (nothing would kill the tree
            // if we were then frozen). The tree is then stopped as for any loss.
            let d = st.demote.take();
            if let (Some(d), None) = (d, tree.watchdog_verdict()) {
                if tell(&tree, &d) {
                    st.tree = None;
                    st.told = true;
                    return;
                }
            }
        }
        // The helper kills the tree by these same times if we do not run at them.
        tree.publish_deadlines(term_at, kill_at, self.kill_signal);
        if now >= kill_at {
            if st.kill_sent.is_none_or(|last| now >= last + KILL_REPEAT) {
                debug!("sending SIGKILL to the command's processes");
                tree.kill_pass();
                st.kill_sent = Some(now);
            }
        } else if now >= term_at && !st.term_sent {
            st.term_sent = true;
            debug!(signal = %self.kill_signal, "stopping the command");
            tree.note_term_sent();
            tree.signal(self.kill_signal);
        }
    }

    fn enforce_loop(&self) {
        let mut st = self.lock();
        loop {
            if st.stopped {
                return;
            }
            let now = BootTime::now();
            self.enforce(&mut st, now);
            let next = if !st.term_sent && st.lost.is_none() {
                self.params.term_at(st.deadline)
            } else if let Some(last) = st.kill_sent {
                last + KILL_REPEAT
            } else {
                self.params.kill_at(st.deadline)
            };
            if st.tree.is_none() && st.lost.is_some() {
                // Nothing to kill yet; wait until a child is armed or we stop.
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // The condvar's timeout runs on CLOCK_MONOTONIC, which stops during system suspend:
            // never sleep more than a second, so a resumed machine is noticed within one. A lost
            // lease (which moves the kill earlier) and arm/stop notify us at once. While holding
            // with TTL 10s that is about one wake-up a second.
            let wait = now.until(next).min(Duration::from_secs(1));
            st = self
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Remove the active file, send the lost signal to the main process and stop the helper's
/// timing of the tree; whether the signal was delivered.
fn tell(tree: &Tree, d: &Demote) -> bool {
    if let Some(path) = &d.active_file {
        let _ = std::fs::remove_file(path);
    }
    match tree.signal_leader(d.signal) {
        Ok(()) => {
            debug!(signal = %d.signal, "told the command that leadership is lost");
            tree.clear_deadlines();
            true
        }
        Err(e) => {
            debug!(error = %e, "cannot tell the command; stopping it instead");
            false
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kill_after_ms: u64) -> SafetyParams {
        SafetyParams::new(
            Duration::from_secs(10),
            Some(Duration::from_millis(kill_after_ms)),
        )
        .unwrap()
    }

    fn start(deadline: BootTime, kill_after_ms: u64) -> Arc<Guard> {
        Guard::start(deadline, params(kill_after_ms), Signal::SIGTERM).unwrap()
    }

    #[test]
    fn extension_moves_the_deadline_forward_only() {
        let now = BootTime::now();
        let g = start(now + Duration::from_secs(10), 2000);
        assert!(g.extend(now, Duration::from_secs(20)));
        assert!(g.time_left() > Duration::from_secs(15));
        assert!(g.extend(now, Duration::from_secs(5)));
        assert!(g.time_left() > Duration::from_secs(15));
        g.stop();
    }

    #[test]
    fn loss_is_a_latch() {
        let now = BootTime::now();
        let g = start(now + Duration::from_secs(10), 2000);
        g.lose("revoked");
        assert_eq!(g.lost().as_deref(), Some("revoked"));
        assert!(!g.extend(BootTime::now(), Duration::from_secs(10)));
        assert_eq!(g.time_left(), Duration::ZERO);
        g.stop();
    }

    #[test]
    fn an_overdue_deadline_is_lost_even_if_an_ack_arrives() {
        // Deadline already inside the kill window: the lease must count as lost and a late
        // acknowledgement (e.g. after SIGCONT) must not resurrect it.
        let now = BootTime::now();
        let g = start(now + Duration::from_millis(100), 1000);
        assert!(!g.extend(now, Duration::from_secs(60)));
        assert!(g.lost().is_some());
        g.stop();
    }

    /// A command in a tree of its own (`sleep 30`), and its pid.
    fn sleeper() -> (Arc<Tree>, i32) {
        let tree = Arc::new(Tree::prepare());
        crate::process::supervise::spawn(
            std::path::Path::new("/bin/sleep"),
            &["sleep".into(), "30".into()],
            &[],
            &tree,
        )
        .unwrap();
        let pid = tree.leader_pid().unwrap();
        (tree, pid)
    }

    fn end(tree: &Tree, pid: i32) {
        tree.stop_all(Duration::from_secs(3));
        crate::process::spawn::reap(pid);
        tree.finish();
    }

    #[test]
    fn a_lost_lease_promotes_nothing() {
        let (tree, pid) = sleeper();
        let g = start(BootTime::now() + Duration::from_secs(10), 100);
        g.lose("revoked");
        assert!(g
            .promote(tree.clone(), Some(Signal::SIGCONT), Signal::SIGCONT, None)
            .is_err());
        assert!(!g.told() && !g.demote());
        g.stop();
        end(&tree, pid);
    }

    #[test]
    fn the_thread_declares_loss_when_time_runs_out() {
        let now = BootTime::now();
        let g = start(now + SafetyParams::MARGIN + Duration::from_millis(300), 100);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reason = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), g.wait_lost()).await });
        assert!(reason.unwrap().contains("no keep-alive"));
        g.stop();
    }
}
