//! `run --metrics-file`: a Prometheus textfile for node_exporter's textfile collector, so cron and
//! CI jobs can be alerted on (not run for a day, failing, losing their lock, waiting too long).
//!
//! The file is rewritten whole (temporary file, then rename) so the collector never reads half of
//! it; it is written when the command starts and when the run ends. `lock_lost_total` is carried
//! over from the previous file, so use one file per lock.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::output;

const LOST_TOTAL: &str = "etcdlock_lock_lost_total";

pub struct Metrics {
    path: Option<PathBuf>,
    lock: String,
    queued: Instant,
    started: Option<(Instant, f64)>,
    lost_total: u64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Prometheus label value escaping: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The lost-lock counter of a previous file, if it had one.
fn previous_lost_total(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(LOST_TOTAL) && !l.starts_with('#'))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

impl Metrics {
    /// Metrics for a run of `lock`; `path` None disables everything.
    pub fn new(path: Option<PathBuf>, lock: &str) -> Metrics {
        let lost_total = path.as_deref().map_or(0, previous_lost_total);
        Metrics {
            path,
            lock: lock.to_owned(),
            queued: Instant::now(),
            started: None,
            lost_total,
        }
    }

    /// The command is about to start.
    pub fn started(&mut self) {
        self.started = Some((Instant::now(), unix_now()));
        self.write(None, None);
    }

    /// The run ended with `code`; `lost` if the lock was lost.
    pub fn ended(&mut self, code: u8, lost: bool) {
        if lost {
            self.lost_total += 1;
        }
        self.write(Some(code), Some(unix_now()));
    }

    fn write(&self, code: Option<u8>, end: Option<f64>) {
        let Some(path) = &self.path else { return };
        let label = format!("{{lock=\"{}\"}}", escape(&self.lock));
        let waited = match self.started {
            Some((t, _)) => t.duration_since(self.queued),
            None => self.queued.elapsed(),
        };
        let mut text = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: Option<f64>| {
            if let Some(v) = value {
                text.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{label} {v}\n"
                ));
            }
        };
        gauge(
            "etcdlock_last_start_time_seconds",
            "Unix time the command last started under the lock.",
            "gauge",
            self.started.map(|(_, unix)| unix),
        );
        gauge(
            "etcdlock_last_end_time_seconds",
            "Unix time the last run ended.",
            "gauge",
            end,
        );
        gauge(
            "etcdlock_wait_seconds",
            "Seconds the last run waited for the lock.",
            "gauge",
            Some(waited.as_secs_f64()),
        );
        gauge(
            "etcdlock_run_seconds",
            "Seconds the last command ran under the lock.",
            "gauge",
            end.and(self.started)
                .map(|(t, _)| t.elapsed().as_secs_f64()),
        );
        gauge(
            "etcdlock_exit_code",
            "Exit code of the last run (etcdlock's own codes included: 70 lock lost, 75 conflict).",
            "gauge",
            code.map(f64::from),
        );
        gauge(
            LOST_TOTAL,
            "Runs whose lock was lost while the command ran.",
            "counter",
            Some(self.lost_total as f64),
        );
        if let Err(e) = write_atomically(path, text.as_bytes()) {
            output::warn(format!(
                "cannot write --metrics-file {}: {e}",
                path.display()
            ));
        }
    }
}

/// Before anything runs: the file's directory must exist and be writable (exit 2 otherwise), so
/// a typo does not surface as a warning after the job.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let usage = |why: String| crate::exit::fail(crate::exit::USAGE, why);
    if !dir.is_dir() {
        return Err(usage(format!(
            "--metrics-file {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(usage(format!(
            "--metrics-file {}: directory {} is not writable",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Write to a temporary file beside `path`, then rename over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn lost_total_is_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let mut m = Metrics::new(Some(path.clone()), "/x");
        m.started();
        m.ended(70, true);
        let mut m = Metrics::new(Some(path.clone()), "/x");
        m.ended(0, false);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("etcdlock_lock_lost_total{lock=\"/x\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("etcdlock_exit_code{lock=\"/x\"} 0\n"),
            "{text}"
        );
    }
}
