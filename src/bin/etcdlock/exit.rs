//! Exit codes: the documented contract between etcdlock and whatever runs it (cron, CI, shells),
//! and the one place where the library's errors become codes and user-facing messages.
//!
//! The numbers follow the conventions callers already know: the child's own code is passed through,
//! 128+N for a child killed by signal N (as shells report it), sysexits(3) for etcdlock's own outcomes
//! (69 unavailable, 70 lock lost, 75 conflict), 124 as timeout(1) uses it, and 126/127 as shells
//! use them for exec failures.

use std::fmt;

use etcdlock::client::{Check, Client};
use etcdlock::Error;

/// etcdlock failed for a reason not covered below (a bug, or an unexpected OS error).
pub const INTERNAL: u8 = etcdlock::runner::INTERNAL;
/// The command line was invalid (clap exits with this code too).
pub const USAGE: u8 = 2;
/// etcd could not be reached, or refused us, before the lock was acquired. The child never ran.
pub const UNAVAILABLE: u8 = 69;
/// The lease was lost while the child ran; the child was stopped before the lease could expire.
pub const LOCK_LOST: u8 = etcdlock::runner::LOCK_LOST;
/// A process of the command's tree had to be stopped (lease lost, `--max-runtime`, a signal's
/// grace ran out) but refused the signal (EPERM: another user's process): the promise could not be
/// kept for it, it may run on after the lock passes on (sysexits' EX_NOPERM).
#[allow(dead_code)] // the runner returns it (`Ended::code`); listed here with the others
pub const UNKILLABLE: u8 = etcdlock::runner::UNKILLABLE;
/// The lock was held and `--no-wait` or `--timeout` gave up (replaced by `--conflict-exit-code`).
pub const CONFLICT: u8 = 75;
/// `--max-runtime` was reached and the command was stopped (as timeout(1) reports it).
pub const TIMED_OUT: u8 = etcdlock::runner::TIMED_OUT;
/// The command exists but could not be executed (permission denied, not a regular executable).
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

pub use etcdlock::runner::signal_code as signal;

/// An error of the binary's own that carries the exit code etcdlock must end with.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message (without the `etcdlock: error:` prefix).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Build an error that ends etcdlock with `code`.
pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Failure {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code of a library error.
fn code_of_library(e: &Error) -> u8 {
    match e {
        Error::Config(_) | Error::LimitMismatch { .. } | Error::Conflict(_) => USAGE,
        Error::Unreachable { .. } | Error::Refused { .. } | Error::ExpiredWhileWaiting { .. } => {
            UNAVAILABLE
        }
        Error::Lost(_) => LOCK_LOST,
        Error::CommandNotFound(_) => NOT_FOUND,
        Error::NotExecutable { .. } => NOT_EXECUTABLE,
        _ => INTERNAL,
    }
}

/// The exit code for an error: the outermost [`Failure`] or library error in its chain, else
/// [`INTERNAL`].
pub fn code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| {
            e.downcast_ref::<Failure>()
                .map(|f| f.code)
                .or_else(|| e.downcast_ref::<Error>().map(code_of_library))
        })
        .unwrap_or(INTERNAL)
}

/// A library error as the user reads it: in the CLI's words (its flags), with what to do next.
pub fn explain(err: &anyhow::Error) -> String {
    let Some(e) = err.chain().find_map(|e| e.downcast_ref::<Error>()) else {
        return format!("{err:#}");
    };
    let text = e.to_string();
    match e {
        // A scheme that does not match the server: TLS to a plain-http etcd fails in the
        // handshake, plain http to a TLS etcd as a bare transport error.
        Error::Refused { reason, .. } if reason.contains("handshake") && text.contains("https://") => {
            format!("{text}; does etcd serve plain http there? then use http:// in --endpoints (etcd serves https only with --cert-file)")
        }
        Error::Unreachable {
            endpoints,
            last_error,
            ..
        } if endpoints.starts_with("http://")
            && (last_error.contains("transport error") || last_error.ends_with("no answer")) =>
        {
            format!("{text}; if etcd serves TLS there, use https:// in --endpoints (with --cacert for a private CA)")
        }
        Error::Unreachable { .. } => {
            format!("{text}; check --endpoints and that etcd is running")
        }
        Error::Refused { reason, .. } if reason.contains("permission denied") => format!(
            "{text}; the etcd user lacks permission on these keys (run and break need read-write on the lock's prefix, status and list need read)"
        ),
        // etcd's NOSPACE alarm: its database reached --quota-backend-bytes, so every write
        // fails until an operator acts. Usually history no compaction removed.
        Error::Refused { reason, .. } if reason.contains("database space exceeded") => format!(
            "{text}; etcd's database is full (its NOSPACE alarm): every lock is blocked until it is compacted, defragmented and the alarm disarmed (`etcdctl alarm disarm`); run etcd with --auto-compaction-retention (README: Running etcd for etcdlock)"
        ),
        Error::Refused { reason, .. } if reason.contains("user name is empty") => format!(
            "{text}; etcd has authentication enabled: pass --user NAME, with the password in --password-file or ETCDLOCK_PASSWORD"
        ),
        Error::LimitMismatch {
            name,
            theirs,
            ours,
            holder,
        } => format!(
            "{name} is held with --limit {theirs} by {holder}; this run asked for --limit {ours}; use the same limit everywhere"
        ),
        Error::ExpiredWhileWaiting { .. } => format!("{text}; try again"),
        _ => text,
    }
}

/// Connect as every subcommand does, passing the library's notices on to the user.
pub async fn connect(config: etcdlock::Config, check: Check) -> anyhow::Result<Client> {
    let client = Client::connect(config, check).await?;
    for notice in client.notices() {
        crate::output::warn(notice);
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_codes_follow_the_shell_convention() {
        assert_eq!(signal(9), 137);
        assert_eq!(signal(15), 143);
        assert_eq!(signal(200), 255);
    }

    #[test]
    fn codes_come_from_failures_and_library_errors() {
        let err = fail(LOCK_LOST, "lost").context("while running");
        assert_eq!(code_of(&err), LOCK_LOST);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), INTERNAL);
        let lib = anyhow::Error::from(Error::CommandNotFound("x".into()));
        assert_eq!(code_of(&lib), NOT_FOUND);
        let unreachable = anyhow::Error::from(Error::Unreachable {
            endpoints: "http://a:1".into(),
            within: "5s".into(),
            last_error: "refused".into(),
        });
        assert_eq!(code_of(&unreachable), UNAVAILABLE);
        assert!(explain(&unreachable).ends_with("check --endpoints and that etcd is running"));
    }
}
