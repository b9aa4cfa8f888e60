//! The `run` subcommand: the life cycle of one locked command.
//!
//! connect → grant lease → start keep-alive and guard → queue and wait → spawn → supervise →
//! release. Every path after the grant goes through the same release (stop keep-alive, revoke), so
//! no key or lease is left behind and the next waiter starts at once.

use std::time::Duration;

use anyhow::Result;
use tokio::runtime::Builder;

use crate::child::{self, Signals};
use crate::cli::{Cli, Command, RunArgs};
use crate::etcd::{self, Etcd};
use crate::exit::{self, fail};
use crate::guard::Guard;
use crate::lease::{self, Lease};
use crate::lock;
use crate::meta::Holder;
use crate::output;

/// Dispatch a parsed command line; returns the exit code.
pub fn main(cli: Cli) -> Result<u8> {
    let config = etcd::Config::resolve(&cli.global)?;
    // One thread: the keep-alive, watches and supervision are all I/O-bound, and spawning from the
    // main thread is what makes PR_SET_PDEATHSIG reliable (see child.rs).
    let runtime = Builder::new_current_thread().enable_all().build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run(config, args)),
    }
}

async fn run(config: etcd::Config, args: RunArgs) -> Result<u8> {
    child::check_command(&args.command[0])?;
    check_kill_after(&args, args.ttl)?;
    let mut signals = Signals::install()?;

    let etcd = tokio::select! {
        etcd = Etcd::connect(config) => etcd?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    // Not cancellable: bounded by the dial timeout, and cancelling could orphan a lease.
    let lease = Lease::grant(&etcd, args.ttl).await?;
    let result = hold(&etcd, &lease, &mut signals, &args).await;
    lease.revoke(&etcd).await;
    result
}

/// --kill-after must leave the child at least half the TTL between renewals going quiet and the kill.
fn check_kill_after(args: &RunArgs, ttl: Duration) -> Result<()> {
    let kill_after = args.kill_after_for(ttl);
    if kill_after * 2 >= ttl {
        return Err(fail(
            exit::USAGE,
            format!(
                "--kill-after {} must be less than half the TTL ({})",
                humantime::format_duration(kill_after),
                humantime::format_duration(ttl)
            ),
        ));
    }
    Ok(())
}

/// Everything between the grant and the revoke.
async fn hold(etcd: &Etcd, lease: &Lease, signals: &mut Signals, args: &RunArgs) -> Result<u8> {
    // The server may grant more than we asked for, never less; re-check against what it granted.
    check_kill_after(args, lease.ttl)?;
    let kill_after = args.kill_after_for(lease.ttl);
    let guard = Guard::start(lease.granted_at + lease.ttl, kill_after, args.kill_signal);
    let keeper = AbortOnDrop(tokio::spawn(lease::keep_alive(
        etcd.clone(),
        *lease,
        guard.clone(),
    )));
    let result = hold_with_guard(etcd, lease, signals, args, &guard, kill_after).await;
    drop(keeper);
    guard.stop();
    result
}

async fn hold_with_guard(
    etcd: &Etcd,
    lease: &Lease,
    signals: &mut Signals,
    args: &RunArgs,
    guard: &std::sync::Arc<Guard>,
    kill_after: Duration,
) -> Result<u8> {
    let holder = Holder::current(&args.command);
    let acquired = tokio::select! {
        acquired = lock::acquire(etcd, &args.name, lease, holder.to_json()) => acquired?,
        reason = guard.wait_lost() => {
            return Err(fail(exit::UNAVAILABLE, format!("lost the lease while waiting for the lock: {reason}")));
        }
        sig = signals.recv_cancel() => {
            output::info(format!("{sig} received while waiting for {}; leaving the queue", args.name));
            return Ok(exit::signal(sig as i32));
        }
    };
    tracing::info!(
        key = acquired.key,
        fencing_token = acquired.fencing_token,
        "lock acquired"
    );
    let _watcher = AbortOnDrop(tokio::spawn(lock::watch_own_key(
        etcd.clone(),
        acquired.key.clone(),
        acquired.fencing_token,
        guard.clone(),
    )));
    if let Some(reason) = guard.lost() {
        return Err(fail(
            exit::LOCK_LOST,
            format!(
                "lock {} lost before the command started: {reason}",
                args.name
            ),
        ));
    }
    let env = [
        ("ETCDLOCK_NAME", args.name.clone()),
        ("ETCDLOCK_KEY", acquired.key.clone()),
        ("ETCDLOCK_LEASE_ID", format!("{:x}", lease.id)),
        ("ETCDLOCK_FENCING_TOKEN", acquired.fencing_token.to_string()),
        ("ETCDLOCK_CLUSTER_ID", format!("{:x}", etcd.cluster_id)),
        ("ETCD_LOCK_KEY", acquired.key.clone()),
        ("ETCD_LOCK_REV", acquired.revision.to_string()),
    ];
    let child = child::spawn(&args.command, &env)?;
    guard.arm(child.pgid);
    let name = &args.name;
    let status = child::supervise(child, signals, guard, kill_after, |reason| {
        output::warn(format!(
            "lock {name} lost: {reason}; stopping the command ({}, SIGKILL after {})",
            args.kill_signal,
            humantime::format_duration(kill_after)
        ));
    })
    .await?;
    if guard.lost().is_some() {
        return Ok(exit::LOCK_LOST);
    }
    Ok(child::exit_code(status))
}

/// Aborts a background task when the owning scope ends, on every path.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
