//! What etcdlock says on stderr: user-facing lines and the `-v` diagnostics.
//!
//! stdout belongs to the child, so etcdlock never writes there while running a command. Every line
//! starts with `etcdlock:` so it can be told apart from the child's own output in a cron mail or CI log.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set up diagnostics: `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` overrides.
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    QUIET.store(quiet, Ordering::Relaxed);
    let level = match verbose {
        0 => "warn",
        1 => "etcdlock=info",
        2 => "etcdlock=debug",
        _ => "etcdlock=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error that ends etcdlock: always shown, one line, with the cause chain.
pub fn error(err: &anyhow::Error) {
    eprintln!("etcdlock: error: {err:#}");
}

/// Something the user should know even when all went to plan (a lost lock, a lease left behind).
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("etcdlock: {msg}");
}

/// Progress a user may want to see (suppressed by `-q`).
pub fn info(msg: impl std::fmt::Display) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("etcdlock: {msg}");
    }
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}
