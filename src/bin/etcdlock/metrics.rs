//! `run --metrics-file`: a Prometheus textfile for node_exporter's textfile collector, so cron and
//! CI jobs can be alerted on (not run for a day, failing, losing their lock, waiting too long).
//!
//! The file is rewritten whole (temporary file, then rename) so the collector never reads half of
//! it; it is written when the command starts and when the run ends. `lock_lost_total` is carried
//! over from the previous file, so use one file per lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::output;

const LOST_TOTAL: &str = "etcdlock_lock_lost_total";
const OUTCOME: &str = "etcdlock_last_outcome";

/// How the last firing of a job ended: the state set `etcdlock_last_outcome{outcome="..."}` of the
/// textfile, `ETCDLOCK_OUTCOME` of the hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited 0.
    Success,
    /// The command ran and failed (exit code not 0, killed by a signal).
    Failure,
    /// The lock was lost while the command ran; it was stopped (exit 70).
    LockLost,
    /// `--max-runtime` stopped the command (exit 124).
    Timeout,
    /// The lock was held: `-n`/`-w` gave up; the command did not run.
    SkippedHeld,
    /// A run succeeded within `--once-per`: the command did not run (exit 0).
    SkippedOncePer,
    /// The command never started for another reason: etcd unavailable or refusing, the command
    /// not found or not executable (126, 127), a signal while waiting, a usage error found late.
    Error,
}

impl Outcome {
    /// Every state, in the order the textfile lists them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::LockLost,
        Outcome::Timeout,
        Outcome::SkippedHeld,
        Outcome::SkippedOncePer,
        Outcome::Error,
    ];

    /// The label value and `ETCDLOCK_OUTCOME`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::LockLost => "lock_lost",
            Outcome::Timeout => "timeout",
            Outcome::SkippedHeld => "skipped_held",
            Outcome::SkippedOncePer => "skipped_once_per",
            Outcome::Error => "error",
        }
    }

    /// Whether the command ran (the hooks run, the run gauges move).
    pub fn ran(self) -> bool {
        matches!(
            self,
            Outcome::Success | Outcome::Failure | Outcome::LockLost | Outcome::Timeout
        )
    }
}

/// Why a firing did not run its command although etcdlock worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `-n` or `-w` gave up on a held lock.
    Held,
    /// `--once-per`: a run succeeded within the period.
    OncePer,
}

/// How a run ended, for the textfile and the hooks.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    pub outcome: Outcome,
    pub code: u8,
    /// From the command's start to its end (zero if it never started).
    pub duration: Duration,
    /// The fencing token the command ran with.
    pub fencing_token: Option<i64>,
}

/// What one run knows about itself (with or without a file to write it to): when it was queued
/// and started, whether it skipped, its fencing token.
pub struct Metrics {
    path: Option<PathBuf>,
    lock: String,
    queued: Instant,
    started: Option<(Instant, f64)>,
    skipped: Option<Skip>,
    fencing_token: Option<i64>,
    max_runtime: bool,
    /// The previous file's values (by metric name; the state set under [`OUTCOME`] by state):
    /// what a firing that runs nothing carries over unchanged.
    previous: HashMap<String, f64>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Prometheus label value escaping: backslash, double quote and newline.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The samples of a previous file: metric name (`etcdlock_last_outcome:STATE` for the state set)
/// to value. One file per lock, so the lock label is not looked at.
fn previous_values(path: &Path) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value = value.parse::<f64>().ok()?;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let name = match labels.split_once("outcome=\"") {
                Some((_, rest)) => format!("{name}:{}", rest.split('"').next()?),
                None => name.to_owned(),
            };
            Some((name, value))
        })
        .collect()
}

impl Metrics {
    /// Metrics for a run of `lock`; `path` None: nothing is written (the run's facts are still
    /// kept, for the hooks). `max_runtime`: exit 124 means `--max-runtime` stopped the command.
    pub fn new(path: Option<PathBuf>, lock: &str, max_runtime: bool) -> Metrics {
        let previous = path.as_deref().map(previous_values).unwrap_or_default();
        Metrics {
            path,
            lock: lock.to_owned(),
            queued: Instant::now(),
            started: None,
            skipped: None,
            fencing_token: None,
            max_runtime,
            previous,
        }
    }

    /// The command is about to start, holding the lock with `fencing_token`.
    pub fn started(&mut self, fencing_token: i64) {
        self.started = Some((Instant::now(), unix_now()));
        self.fencing_token = Some(fencing_token);
        self.write(None);
    }

    /// The command will not run, for this reason.
    pub fn skipped(&mut self, why: Skip) {
        self.skipped = Some(why);
    }

    /// The run ended with `code`: how, written to the file.
    pub fn ended(&mut self, code: u8) -> Ended {
        let outcome = match (self.started, self.skipped) {
            (Some(_), _) if code == 0 => Outcome::Success,
            (Some(_), _) if code == crate::exit::LOCK_LOST => Outcome::LockLost,
            (Some(_), _) if code == crate::exit::TIMED_OUT && self.max_runtime => Outcome::Timeout,
            (Some(_), _) => Outcome::Failure,
            (None, Some(Skip::Held)) => Outcome::SkippedHeld,
            (None, Some(Skip::OncePer)) => Outcome::SkippedOncePer,
            (None, None) => Outcome::Error,
        };
        let ended = Ended {
            outcome,
            code,
            duration: self.started.map_or(Duration::ZERO, |(t, _)| t.elapsed()),
            fencing_token: self.fencing_token,
        };
        self.write(Some(ended));
        ended
    }

    /// The whole file: while the command runs (`end` None), after it, or after a firing that ran
    /// nothing (then only the outcome changes; every run gauge is the previous file's).
    fn write(&self, end: Option<Ended>) {
        let Some(path) = &self.path else { return };
        let label = escape(&self.lock);
        let ran = end.is_none_or(|e| e.outcome.ran());
        let old = |name: &str| self.previous.get(name).copied();
        let now = unix_now();
        let mut text = String::new();
        let gauge = |text: &mut String, name: &str, help: &str, fresh: Option<f64>| {
            let value = if ran { fresh } else { old(name) };
            let values = value.map(|v| vec![("", v)]).unwrap_or_default();
            push_series(text, &label, name, help, "gauge", &values);
        };
        let waited = match self.started {
            Some((t, _)) => t.duration_since(self.queued),
            None => self.queued.elapsed(),
        };
        let finished = end.filter(|e| e.outcome.ran());
        gauge(
            &mut text,
            "etcdlock_last_start_time_seconds",
            "Unix time the command last started under the lock.",
            self.started.map(|(_, unix)| unix),
        );
        gauge(
            &mut text,
            "etcdlock_last_end_time_seconds",
            "Unix time the last run ended (whatever its outcome).",
            finished.map(|_| now),
        );
        let success = match finished {
            Some(e) if e.outcome == Outcome::Success => Some(now),
            _ => old("etcdlock_last_success_timestamp_seconds"),
        };
        push_series(
            &mut text,
            &label,
            "etcdlock_last_success_timestamp_seconds",
            "Unix time the last run that exited 0 ended (moved by nothing else).",
            "gauge",
            &success.map(|v| vec![("", v)]).unwrap_or_default(),
        );
        gauge(
            &mut text,
            "etcdlock_wait_seconds",
            "Seconds the last run waited for the lock.",
            Some(waited.as_secs_f64()),
        );
        gauge(
            &mut text,
            "etcdlock_run_seconds",
            "Seconds the last command ran under the lock.",
            finished.map(|e| e.duration.as_secs_f64()),
        );
        gauge(
            &mut text,
            "etcdlock_exit_code",
            "Exit code of the last run (etcdlock's own codes included: 70 lock lost, 124 --max-runtime).",
            finished.map(|e| f64::from(e.code)),
        );
        // The state set: the last firing's outcome, skips included; carried while a command runs.
        let state = match end {
            Some(e) => Some(e.outcome.as_str()),
            None => Outcome::ALL
                .iter()
                .map(|o| o.as_str())
                .find(|o| old(&format!("{OUTCOME}:{o}")) == Some(1.0)),
        };
        let states: Vec<(String, f64)> = match state {
            Some(state) => Outcome::ALL
                .iter()
                .map(|o| {
                    let v = if o.as_str() == state { 1.0 } else { 0.0 };
                    (format!(",outcome=\"{}\"", o.as_str()), v)
                })
                .collect(),
            None => Vec::new(),
        };
        push_series(
            &mut text,
            &label,
            OUTCOME,
            "How the last firing ended: success, failure, lock_lost, timeout, skipped_held, skipped_once_per or error (1 for the one that happened).",
            "gauge",
            &states.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
        );
        let lost = old(LOST_TOTAL).unwrap_or(0.0)
            + f64::from(u8::from(
                finished.is_some_and(|e| e.outcome == Outcome::LockLost),
            ));
        push_series(
            &mut text,
            &label,
            LOST_TOTAL,
            "Runs whose lock was lost while the command ran.",
            "counter",
            &[("", lost)],
        );
        if let Err(e) = write_atomically(path, text.as_bytes()) {
            output::warn(format!(
                "cannot write --metrics-file {}: {e}",
                path.display()
            ));
        }
    }
}

/// One metric's HELP, TYPE and samples (nothing without samples); `extra` labels follow `lock`.
fn push_series(
    text: &mut String,
    lock: &str,
    name: &str,
    help: &str,
    kind: &str,
    values: &[(&str, f64)],
) {
    if values.is_empty() {
        return;
    }
    text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (extra, v) in values {
        text.push_str(&format!("{name}{{lock=\"{lock}\"{extra}}} {v}\n"));
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
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn lost_total_is_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let mut m = Metrics::new(Some(path.clone()), "/x", false);
        m.started(7);
        assert_eq!(m.ended(70).outcome, Outcome::LockLost);
        let mut m = Metrics::new(Some(path.clone()), "/x", false);
        m.started(8);
        m.ended(0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            value(&text, "etcdlock_lock_lost_total{lock=\"/x\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, "etcdlock_exit_code{lock=\"/x\"}"), Some(0.0));
    }

    /// Only exit 0 moves the last success; a firing that runs nothing moves no run gauge, only
    /// the outcome.
    #[test]
    fn last_success_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let ok = |text: &str| value(text, "etcdlock_last_success_timestamp_seconds{lock=\"/x\"}");
        let state = |text: &str, s: &str| {
            value(
                text,
                &format!("etcdlock_last_outcome{{lock=\"/x\",outcome=\"{s}\"}}"),
            )
        };
        let mut m = Metrics::new(Some(path.clone()), "/x", false);
        m.started(1);
        m.ended(0);
        let first = std::fs::read_to_string(&path).unwrap();
        let success = ok(&first).unwrap();
        assert_eq!(state(&first, "success"), Some(1.0));
        assert_eq!(state(&first, "failure"), Some(0.0));
        std::thread::sleep(Duration::from_millis(20));
        let mut m = Metrics::new(Some(path.clone()), "/x", true);
        m.started(2);
        assert_eq!(m.ended(124).outcome, Outcome::Timeout);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(ok(&text), Some(success), "a failure does not move it");
        assert_eq!(state(&text, "timeout"), Some(1.0));
        let end = value(&text, "etcdlock_last_end_time_seconds{lock=\"/x\"}");
        let mut m = Metrics::new(Some(path.clone()), "/x", false);
        m.skipped(Skip::Held);
        assert_eq!(m.ended(75).outcome, Outcome::SkippedHeld);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(state(&text, "skipped_held"), Some(1.0));
        assert_eq!(state(&text, "timeout"), Some(0.0));
        assert_eq!(
            value(&text, "etcdlock_last_end_time_seconds{lock=\"/x\"}"),
            end
        );
        assert_eq!(value(&text, "etcdlock_exit_code{lock=\"/x\"}"), Some(124.0));
        assert_eq!(ok(&text), Some(success));
        let mut m = Metrics::new(Some(path.clone()), "/x", false);
        m.skipped(Skip::OncePer);
        assert_eq!(m.ended(0).outcome, Outcome::SkippedOncePer);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(ok(&text), Some(success), "a skip is not a success");
        assert_eq!(
            Metrics::new(None, "/x", false).ended(69).outcome,
            Outcome::Error
        );
    }
}
