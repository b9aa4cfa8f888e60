//! Exit codes: the documented contract between etcdlock and whatever runs it (cron, CI, shells).
//!
//! The numbers follow the conventions callers already know: the child's own code is passed through,
//! 128+N for a child killed by signal N (as shells report it), sysexits(3) for etcdlock's own outcomes
//! (69 unavailable, 70 lock lost, 75 conflict), 124 as timeout(1) uses it, and 126/127 as shells
//! use them for exec failures.

use std::fmt;

/// etcdlock failed for a reason not covered below (a bug, or an unexpected OS error).
pub const INTERNAL: u8 = 1;
/// The command line was invalid (clap exits with this code too).
pub const USAGE: u8 = 2;
/// etcd could not be reached, or refused us, before the lock was acquired. The child never ran.
pub const UNAVAILABLE: u8 = 69;
/// The lease was lost while the child ran; the child was stopped before the lease could expire.
pub const LOCK_LOST: u8 = 70;
/// The lock was held and `--no-wait` or `--timeout` gave up (replaced by `--conflict-exit-code`).
pub const CONFLICT: u8 = 75;
/// `--max-runtime` was reached and the command was stopped (as timeout(1) reports it).
pub const TIMED_OUT: u8 = 124;
/// The command exists but could not be executed (permission denied, not a regular executable).
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// The code a shell reports for a process killed by signal `n`.
pub fn signal(n: i32) -> u8 {
    u8::try_from(128 + n).unwrap_or(255)
}

/// An error that carries the exit code etcdlock must end with.
///
/// Any other `anyhow::Error` maps to [`INTERNAL`]; code that knows a more precise outcome wraps its
/// error in a `Failure` (see [`fail`]).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
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

/// The exit code for an error: the code of the outermost [`Failure`] in its chain, else [`INTERNAL`].
pub fn code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(INTERNAL, |f| f.code)
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
    fn code_of_finds_the_failure_in_a_chain() {
        let err = fail(LOCK_LOST, "lost").context("while running");
        assert_eq!(code_of(&err), LOCK_LOST);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), INTERNAL);
    }
}
