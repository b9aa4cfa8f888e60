//! The library's errors: what went wrong, in words that name no command-line flag.
//!
//! Each variant is one kind of outcome a caller may want to act on differently; the `etcdlock`
//! binary maps them to its exit codes in one place (`src/bin/etcdlock/exit.rs`) and adds the
//! hints that name its flags.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid: an endpoint, a TLS file, a duration, a lock name.
    #[error("{0}")]
    Config(String),

    /// No etcd member answered in time.
    #[error("cannot reach etcd at {endpoints} within {within} ({last_error})")]
    Unreachable {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// How long we tried, for humans ("5s").
        within: String,
        /// The last failure seen.
        last_error: String,
    },

    /// etcd refused a request that no retry can fix: credentials, permissions, TLS trust.
    #[error("{context}: {reason}")]
    Refused {
        /// What we were doing.
        context: String,
        /// What etcd (or TLS) said.
        reason: String,
    },

    /// The holders of a lock disagree on how many may hold it at once.
    #[error("{name} is held with limit {theirs} by {holder}; this holder asked for limit {ours}")]
    LimitMismatch {
        /// The lock.
        name: String,
        /// The limit the current holder uses.
        theirs: u32,
        /// The limit we asked for.
        ours: u32,
        /// "host pid N" of that holder.
        holder: String,
    },

    /// Shared and exclusive holders, or limits, that cannot go together.
    #[error("{0}")]
    Conflict(String),

    /// Our lease ended while we were still waiting for the lock: we hold nothing.
    #[error("our lease expired while waiting for {name}")]
    ExpiredWhileWaiting {
        /// The lock.
        name: String,
    },

    /// The lease behind a held lock is gone, or is about to be (see [`crate::Session::lost`]).
    #[error("{0}")]
    Lost(String),

    /// The command to run does not exist.
    #[error("command not found: {0}")]
    CommandNotFound(String),

    /// The command exists but cannot be executed.
    #[error("cannot execute {command}: {reason}")]
    NotExecutable {
        /// The command as given.
        command: String,
        /// Why not.
        reason: String,
    },

    /// etcd answered something it never should; a bug here or there.
    #[error("{0}")]
    Protocol(String),

    /// An operating-system call failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// This crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
