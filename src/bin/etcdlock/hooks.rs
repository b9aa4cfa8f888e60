//! `run --on-success CMD` / `--on-failure CMD`: a shell command run after the run, told how it
//! went — a healthchecks.io ping, a mail on failure.
//!
//! A hook runs once the lock is released (with `--handle`: once the command's part is over), so
//! it never delays the next holder; only when the command ran (a skip or a give-up runs none);
//! through `/bin/sh -c`, in a process group of its own, with the outcome in its environment:
//! `ETCDLOCK_NAME`, `ETCDLOCK_OUTCOME` (success, failure, lock_lost, timeout),
//! `ETCDLOCK_EXIT_CODE`, `ETCDLOCK_DURATION_S`, `ETCDLOCK_FENCING_TOKEN`. It is bounded by
//! `--hook-timeout` (TERM to its group, SIGKILL 2 s later), and nothing it does changes
//! etcdlock's exit code: a failing or hanging hook is one `etcdlock:` line on stderr.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::RunArgs;
use crate::metrics::{Ended, Outcome};
use crate::output;

/// How long a hook has after TERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// Run the hook that fits `ended`, if there is one; bounded, never failing.
pub async fn run(args: &RunArgs, ended: &Ended) {
    if !ended.outcome.ran() {
        return;
    }
    let (flag, hook) = if ended.outcome == Outcome::Success {
        ("--on-success", &args.on_success)
    } else {
        ("--on-failure", &args.on_failure)
    };
    let Some(script) = hook else { return };
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .env("ETCDLOCK_NAME", &args.name)
        .env("ETCDLOCK_OUTCOME", ended.outcome.as_str())
        .env("ETCDLOCK_EXIT_CODE", ended.code.to_string())
        .env(
            "ETCDLOCK_DURATION_S",
            format!("{:.3}", ended.duration.as_secs_f64()),
        )
        .env(
            "ETCDLOCK_FENCING_TOKEN",
            ended.fencing_token.map_or(String::new(), |t| t.to_string()),
        )
        .stdin(Stdio::null())
        .process_group(0);
    let mut child = match tokio::process::Command::from(cmd).spawn() {
        Ok(child) => child,
        Err(e) => return output::warn(format!("{flag} hook could not start: {e}")),
    };
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let kill = |sig: Signal| {
        if let Some(group) = group {
            let _ = killpg(group, sig);
        }
    };
    // The hook has a group of its own (so that a timeout kills what it started, curl included),
    // which the terminal's Ctrl-C does not reach: pass INT and TERM on.
    let (mut int, mut term) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    let interrupted = async {
        match (&mut int, &mut term) {
            (Ok(i), Ok(t)) => tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} },
            _ => std::future::pending().await,
        }
    };
    let why = tokio::select! {
        status = child.wait() => {
            match status {
                Ok(s) if s.success() => return,
                Ok(s) => return output::warn(format!(
                    "{flag} hook exited {} (etcdlock's exit code is the command's)",
                    etcdlock::runner::status_code(s)
                )),
                Err(e) => return output::warn(format!("{flag} hook: {e}")),
            }
        }
        _ = tokio::time::sleep(args.hook_timeout) => format!(
            "did not finish within --hook-timeout {}",
            humantime::format_duration(args.hook_timeout)
        ),
        _ = interrupted => "interrupted".to_owned(),
    };
    kill(Signal::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        kill(Signal::SIGKILL);
        let _ = child.wait().await;
    }
    output::warn(format!("{flag} hook {why}; stopped it"));
}
