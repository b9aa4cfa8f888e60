//! Waiting progress on stderr: a live spinner line on a terminal, sparse plain lines otherwise
//! (CI logs, cron mail), nothing with `-q` and nothing at all when the lock is free at once.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use etcdlock::lock::QueueInfo;

use crate::output;
use crate::output::short_duration;

pub struct Progress {
    name: String,
    started: Instant,
    spinner: Option<ProgressBar>,
    quiet: bool,
    printed: bool,
}

/// "held by web-3 pid 4121 (./backup.sh) for 3m12s · 2 ahead of you"
pub fn describe_queue(info: &QueueInfo) -> String {
    let holder = match &info.holder {
        Some(h) => {
            let held = h
                .held_for()
                .map(|d| format!(" for {}", short_duration(d)))
                .unwrap_or_default();
            format!("held by {}{held}", h.describe())
        }
        None => format!(
            "held by {} (not etcdlock, e.g. etcdctl lock)",
            info.holder_key
        ),
    };
    let ahead = match info.ahead {
        0 | 1 => String::new(),
        n => format!(" · {n} ahead of you"),
    };
    format!("{holder}{ahead}")
}

/// How often a wait should read the queue for [`Progress::update`]: every second for a live
/// terminal line, every `interval` for plain lines, never when quiet (nothing to show).
pub fn interval(interval: Duration, quiet: bool) -> Option<Duration> {
    if quiet {
        None
    } else if std::io::stderr().is_terminal() {
        Some(Duration::from_secs(1))
    } else {
        Some(interval)
    }
}

impl Progress {
    pub fn new(name: &str, quiet: bool) -> Progress {
        let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            name: name.to_owned(),
            started: Instant::now(),
            spinner,
            quiet,
            printed: false,
        }
    }

    /// Show the current state of the queue.
    pub fn update(&mut self, info: Option<&QueueInfo>) {
        if self.quiet {
            return;
        }
        let state = info.map(describe_queue).unwrap_or_default();
        let waited = short_duration(self.started.elapsed());
        match &self.spinner {
            Some(bar) => bar.set_message(format!("waiting for {} · {state} · {waited}", self.name)),
            None if !self.printed => output::info(format!("waiting for {}: {state}", self.name)),
            None => output::info(format!(
                "still waiting for {} after {waited}: {state}",
                self.name
            )),
        }
        self.printed = true;
    }

    /// The wait ended (acquired, gave up or cancelled); `message` is printed if we said anything.
    /// Whether we did.
    pub fn finish(&mut self, message: Option<String>) -> bool {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        if let (true, Some(m)) = (self.printed, message) {
            output::info(m);
        }
        self.printed
    }

    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}
