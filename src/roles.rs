//! A command that stays up across leaderships and switches roles when told (Choria's pattern,
//! `etcdlock elect --on-won-signal/--on-lost-signal`): [`Service`] owns such a command — started
//! once, as a standby, in a tree of its own that outlives the terms (leases) of the campaign —
//! and the role changes: [`Service::lead`] promotes it for one leadership and returns when that
//! ends.
//!
//! # The promise, for a service that is told rather than killed
//!
//! - **While standby the command has no promise**: it runs beside the leader's and must not act
//!   as leader until it is told.
//! - **Promotion**: the active file is written (by the caller) and then the won signal is sent
//!   to the command's main process, only while the lease does not count as lost.
//! - **Demotion comes before anyone else can lead**: when the lease is lost (revoked, the key
//!   deleted, or no keep-alive acknowledged in time) the guard removes the active file and sends
//!   the lost signal to the main process — at the latest at its kill-signal point, the grace plus
//!   half a second before the lease can expire on the server, so the service has the grace
//!   (`kill_after`) to stop acting as leader. A graceful step-down (a resign request) sends the
//!   lost signal and waits the grace before the key is deleted. If the lost signal cannot be
//!   delivered in time — etcdlock frozen or starved, or its main process gone — the whole tree
//!   is killed before the lease can expire (the reaper helper, or the guard), as without
//!   signals. etcdlock cannot see whether the service obeyed the signal: that part is the
//!   service's, which is why the fencing token goes with every leadership (the active file).
//!
//! [`Service::stop`] stops the whole tree (signal, grace, SIGKILL) for a signal to etcdlock;
//! [`Service::step_down`] ends a term's session while the command runs on, [`Service::release`]
//! after it ended (the tree dead first, then the revoke).

use std::future::Future;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::process::reaper;
use crate::process::supervise::{self, Signals};
use crate::process::tree::Tree;
use crate::runner::Command;
use crate::session::Session;

/// How a promoted service is told about its role.
#[derive(Debug, Clone)]
pub struct Roles {
    /// Sent to the main process when it becomes leader (`None`: not told; the active file says).
    pub won: Option<Signal>,
    /// Sent to the main process when leadership ends while it runs on.
    pub lost: Signal,
    /// Exists exactly while the command leads (written by the caller before [`Service::lead`],
    /// removed before the lost signal is sent).
    pub active_file: Option<std::path::PathBuf>,
}

/// A long-running command that switches roles (see the module documentation).
pub struct Service {
    pid: i32,
    tree: Arc<Tree>,
    status: Option<ExitStatus>,
}

/// How a leadership ([`Service::lead`]) ended.
#[derive(Debug)]
pub enum Led {
    /// The command exited (its status); its main process is reaped.
    Exited(ExitStatus),
    /// Leadership was lost. `told`: the lost signal was delivered and the command runs on as
    /// standby; otherwise its tree is being killed (the guard's or the helper's doing).
    Lost {
        /// Why.
        reason: String,
        /// Whether the command was told (and left running).
        told: bool,
    },
    /// A step-down was asked for (the `resign` future resolved): the command was told and had the
    /// grace to stop acting as leader; it runs on as standby. `told` false: it could not be told.
    SteppedDown {
        /// Whether the command was told.
        told: bool,
    },
    /// etcdlock got this signal (INT, TERM, HUP, QUIT): stop the command ([`Service::stop`]).
    Stop(Signal),
}

/// How a wait while standby ([`Service::standby`]) ended.
#[derive(Debug)]
pub enum Standby<T> {
    /// The awaited future resolved.
    Done(T),
    /// The command exited (its status).
    Exited(ExitStatus),
    /// etcdlock got this signal (INT, TERM, HUP, QUIT): stop the command ([`Service::stop`]).
    Stop(Signal),
}

/// How often the service's main process is looked at (besides SIGCHLD-free wake-ups).
const POLL: Duration = Duration::from_millis(100);

impl Service {
    /// Start `command` at once, as standby (not armed: no lease guards it), with `ETCDLOCK_NAME`
    /// and the run id added to its environment.
    pub fn start(command: &Command, name: &str) -> Result<Service> {
        let mut env = command.env.clone();
        env.extend([
            ("ETCDLOCK_NAME", name.to_owned()),
            (reaper::RUN_ID_ENV, command.run_id.clone()),
        ]);
        let _child = supervise::spawn(&command.program, &command.argv, &env, &command.tree)?;
        let pid = command
            .tree
            .leader_pid()
            .ok_or_else(|| Error::Config("the command did not start".into()))?;
        Ok(Service {
            pid,
            tree: command.tree.clone(),
            status: None,
        })
    }

    /// The command's main process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The command's tree.
    pub fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    /// Its exit status, once it exited (reaps it).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(status) = crate::process::spawn::reap(self.pid) {
                self.tree.leader_reaped();
                self.status = Some(status);
            }
        }
        self.status
    }

    /// One forwarded signal: USR1/USR2 go on to the command's main process, the others (INT,
    /// TERM, HUP, QUIT) mean stop.
    fn forward(&self, sig: Signal) -> Option<Signal> {
        if matches!(sig, Signal::SIGUSR1 | Signal::SIGUSR2) {
            let _ = self.tree.signal_leader(sig);
            None
        } else {
            Some(sig)
        }
    }

    /// Await `fut` while standing by: forward USR1/USR2, and end early if the command exits or a
    /// stop signal comes.
    pub async fn standby<T>(
        &mut self,
        signals: &mut Signals,
        fut: impl Future<Output = T>,
    ) -> Standby<T> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(POLL);
        loop {
            if let Some(status) = self.exit_status() {
                return Standby::Exited(status);
            }
            tokio::select! {
                out = &mut fut => return Standby::Done(out),
                sig = signals.recv() => {
                    if let Some(stop) = self.forward(sig) {
                        return Standby::Stop(stop);
                    }
                }
                _ = tick.tick() => {}
            }
        }
    }

    /// Lead with `session` (whose lease holds the leader key): promote (the won signal, see [`Roles`]),
    /// then wait until leadership ends — lost (the guard tells the command, or kills its tree if
    /// it cannot), a step-down asked for by `resign` (told now, then the grace before this
    /// returns), the command's exit, or a stop signal. The caller then gives up the session
    /// ([`Service::step_down`], or [`Service::release`] once the command is gone).
    pub async fn lead(
        &mut self,
        session: &Session,
        roles: &Roles,
        signals: &mut Signals,
        resign: impl Future<Output = ()>,
    ) -> Led {
        let guard = session.guard();
        if let Some(status) = self.exit_status() {
            return Led::Exited(status);
        }
        if let Err(reason) = guard.promote(
            self.tree.clone(),
            roles.won,
            roles.lost,
            roles.active_file.clone(),
        ) {
            if let Some(path) = &roles.active_file {
                let _ = std::fs::remove_file(path);
            }
            return Led::Lost { reason, told: true };
        }
        tokio::pin!(resign);
        let mut tick = tokio::time::interval(POLL);
        let led = loop {
            if let Some(status) = self.exit_status() {
                // Killed because it could not be told in time (the helper acted while we were
                // frozen): that is a loss, whatever the command's own status says.
                break match session.is_lost() {
                    Some(reason) if !guard.told() => Led::Lost {
                        reason,
                        told: false,
                    },
                    _ => Led::Exited(status),
                };
            }
            tokio::select! {
                reason = session.lost() => {
                    let told = guard.told();
                    break Led::Lost { reason, told };
                }
                () = &mut resign => {
                    let told = guard.demote();
                    if told {
                        // The grace the service would have had before the lease could expire.
                        tokio::select! {
                            _ = tokio::time::sleep(guard.params().kill_after()) => {}
                            _ = session.lost() => {}
                        }
                    }
                    break Led::SteppedDown { told };
                }
                sig = signals.recv() => {
                    if let Some(stop) = self.forward(sig) {
                        break Led::Stop(stop);
                    }
                }
                _ = tick.tick() => {}
            }
        };
        match &led {
            // Told (the guard disarmed), or being killed by the guard (armed until the caller's
            // release has seen the tree gone).
            Led::Lost { .. } | Led::SteppedDown { told: true } => {}
            // To be stopped by the caller: from now on a lost lease kills it, as without roles.
            Led::Exited(_) | Led::Stop(_) | Led::SteppedDown { told: false } => {
                guard.disarm();
                guard.arm(self.tree.clone());
            }
        }
        if let Some(path) = &roles.active_file {
            let _ = std::fs::remove_file(path);
        }
        led
    }

    /// Stop the whole tree: `sig` to every process of it, SIGKILL after `grace`, until it is gone;
    /// the command's exit status (SIGKILL's if it would not die).
    pub async fn stop(&mut self, sig: Signal, grace: Duration) -> ExitStatus {
        self.tree.signal(sig);
        let kill_at = tokio::time::Instant::now() + grace;
        loop {
            let status = self.exit_status();
            if status.is_some() && self.tree.is_empty() {
                return status.unwrap_or_else(killed);
            }
            if tokio::time::Instant::now() >= kill_at {
                let tree = self.tree.clone();
                let _ = tokio::task::spawn_blocking(move || tree.stop_all(Duration::from_secs(3)))
                    .await;
                return self.wait_exit().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The command's exit status, waiting (bounded, 3 s) for it to be reaped.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            if tokio::time::Instant::now() >= give_up {
                return killed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// End a term whose leadership ended while the command runs on (told, or never promoted):
    /// stop guarding and revoke the lease (its key goes with it). Never touches the tree.
    /// `Err` says why the revoke failed (the lease then expires by its TTL).
    pub async fn step_down(&self, session: Session) -> std::result::Result<(), String> {
        session.guard().disarm();
        session.close().await
    }

    /// End after the command exited or was stopped: the rest of its tree killed (bounded, 3 s;
    /// if it will not die the lease is left to expire and the reaper helper goes on killing),
    /// then the guard stopped and the lease revoked, and the tree's cgroup removed.
    pub async fn release(&self, session: Option<Session>) -> std::result::Result<(), String> {
        let tree = self.tree.clone();
        let dead = tokio::task::spawn_blocking(move || tree.stop_all(Duration::from_secs(3)))
            .await
            .unwrap_or(false);
        let revoked = match session {
            Some(session) if dead => session.close().await,
            Some(session) => {
                drop(session);
                Ok(())
            }
            None => Ok(()),
        };
        self.tree.finish();
        revoked
    }
}

/// The wait status of a process killed by SIGKILL.
fn killed() -> ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(Signal::SIGKILL as i32)
}
