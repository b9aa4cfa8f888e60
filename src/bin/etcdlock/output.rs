//! What etcdlock says on stderr and prints on stdout: user-facing lines and the `-v` diagnostics.
//!
//! stdout belongs to the child, so etcdlock never writes there while running a command. Every
//! stderr line starts with `etcdlock:` so it can be told apart from the child's own output in a
//! cron mail or CI log. No write here can panic or abort: a closed stderr (`2>&1 | head -c0`) or a
//! reader that went away (`etcdlock list | head -1`) is ignored, so such a caller can never make
//! etcdlock leave its lease behind.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set up diagnostics: nothing by default, `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG`
/// overrides. Colour only on a terminal, and never with `NO_COLOR` set.
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    QUIET.store(quiet, Ordering::Relaxed);
    let level = match verbose {
        0 => "off",
        1 => "etcdlock=info",
        2 => "etcdlock=debug",
        _ => "etcdlock=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .with_ansi(color)
        .log_internal_errors(false)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// stderr for tracing, whose own writer would report (and, through eprintln!, panic on) errors.
struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = IgnoreErrors;
    fn make_writer(&'a self) -> Self::Writer {
        IgnoreErrors
    }
}

/// A stderr handle whose writes always "succeed".
struct IgnoreErrors;

impl Write for IgnoreErrors {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Write `text` to stderr as is; errors (a closed pipe) are ignored.
pub fn stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// An error that ends etcdlock (as `exit::explain` words it, with its cause chain): always
/// shown, on one line.
pub fn error(explained: &str) {
    stderr(&format!("etcdlock: error: {}\n", one_line(explained)));
}

/// `--log-format`: how the log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Something the user should know even when all went to plan (a lost lock, a lease left behind).
pub fn warn(msg: impl std::fmt::Display) {
    stderr(&format!("etcdlock: {}\n", one_line(&msg.to_string())));
}

/// Progress a user may want to see (suppressed by `-q`).
pub fn info(msg: impl std::fmt::Display) {
    if !is_quiet() {
        warn(msg);
    }
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Print `text` on stdout. A reader that went away (EPIPE) is not an error: the output was not
/// wanted any more. Any other failure (a full disk) is.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// Control characters (a newline in a lock name) would break the one-line promise: show them
/// escaped.
pub fn one_line(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_owned()
    }
}

/// A duration for humans, to the nearest second: "3m12s".
pub fn short_duration(d: std::time::Duration) -> String {
    let secs = (d.as_millis() + 500) / 1000;
    humantime::format_duration(std::time::Duration::from_secs(secs as u64))
        .to_string()
        .replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(
            short_duration(std::time::Duration::from_millis(192_400)),
            "3m12s"
        );
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(one_line("plain"), "plain");
    }
}
