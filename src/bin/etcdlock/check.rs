//! `check NAME...`: did each job succeed recently, from its run records in etcd — a monitoring
//! plugin (Nagios, Icinga, Sensu: `OK: ...` / `CRITICAL: ...`, exit 0 or 1), a cron `&& curl`
//! ping, or `--json` for scripts.
//!
//! A job is fine when its last run succeeded and that success ended less than `--max-age` ago.
//! Everything else is a problem, said in one line each: no record at all (never ran, or not for
//! the records' retention), the last run failed (exit code, lost lock, `--max-runtime`), never
//! succeeded, or the last success is too old (the job stopped running: a broken crontab, a host
//! gone). Without `--max-age` the age allowed is twice the `--once-per` period recorded with the
//! last run (one missed slot is tolerated: `--once-per` is set a little shorter than the schedule,
//! so a once-per period alone would alarm before every regular run). Only the current layout's
//! records are looked at (see `etcdlock::record`).

use std::time::{Duration, SystemTime};

use anyhow::Result;
use etcdlock::client::Check;
use etcdlock::record::{Records, RunRecord};
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::exit::{self, fail};
use crate::output::{self, short_duration};

/// One name's verdict.
#[derive(Debug, Serialize)]
struct Verdict {
    name: String,
    ok: bool,
    /// One sentence per problem (empty when ok).
    problems: Vec<String>,
    /// The age allowed, in seconds, and where it came from (`--max-age` or `--once-per`).
    max_age_s: u64,
    max_age_from: &'static str,
    /// Seconds since the last success ended (by this host's clock).
    last_success_age_s: Option<u64>,
    last_run: Option<RunRecord>,
    last_success: Option<RunRecord>,
}

#[derive(Debug, Serialize)]
struct Report {
    schema_version: u32,
    ok: bool,
    checks: Vec<Verdict>,
}

/// Whole seconds since `rfc3339` (0 if it lies in the future: another host's clock). The
/// records keep whole seconds, so a fraction here would only be noise.
fn age_of(rfc3339: &str) -> Option<Duration> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    let age = SystemTime::now().duration_since(t).unwrap_or_default();
    Some(Duration::from_secs(age.as_secs()))
}

/// The age allowed for `name`: `--max-age`, else twice the recorded `--once-per` period.
fn max_age(name: &str, given: Option<Duration>, r: &Records) -> Result<(Duration, &'static str)> {
    if let Some(d) = given {
        return Ok((d, "--max-age"));
    }
    let period = r
        .last_run
        .as_ref()
        .and_then(|r| r.once_per_s)
        .or_else(|| r.last_success.as_ref().and_then(|r| r.once_per_s));
    match period {
        Some(p) => Ok((Duration::from_secs(p.saturating_mul(2)), "--once-per")),
        None => Err(fail(
            exit::USAGE,
            format!(
                "{name}: how old may its last success be? Its last run recorded no --once-per period: pass --max-age DUR (e.g. --max-age 25h for a daily job)"
            ),
        )),
    }
}

/// "exit 3 on web-3 12m ago", "lost its lock on web-3 12m ago", ...
fn how_it_ended(r: &RunRecord) -> String {
    let ago = age_of(&r.ended_at).map_or_else(|| "?".to_owned(), short_duration);
    let how = if r.lost {
        "lost its lock (exit 70)".to_owned()
    } else if r.exit_code == i32::from(exit::TIMED_OUT) {
        "timed out (exit 124)".to_owned()
    } else {
        format!("exit {}", r.exit_code)
    };
    format!("{how} on {} {ago} ago", r.host)
}

fn judge(name: &str, given: Option<Duration>, r: Records) -> Result<Verdict> {
    let mut problems = Vec::new();
    let never_ran = r.last_run.is_none() && r.last_success.is_none();
    // A name that never ran has no recorded period: that is the problem to report, not a usage
    // error.
    let (allowed, from) = match max_age(name, given, &r) {
        Ok(m) => m,
        Err(_) if never_ran => (Duration::ZERO, "none"),
        Err(e) => return Err(e),
    };
    let success_age = r.last_success.as_ref().and_then(|s| age_of(&s.ended_at));
    if never_ran {
        problems.push(format!(
            "{name} has no run record: it never ran (or not within the records' retention)"
        ));
    } else {
        if let Some(last) = r.last_run.as_ref().filter(|l| l.exit_code != 0 || l.lost) {
            problems.push(format!("{name} last run failed: {}", how_it_ended(last)));
        }
        match (&r.last_success, success_age) {
            (None, _) => problems.push(format!(
                "{name} has never succeeded (within the records' retention)"
            )),
            (Some(s), Some(age)) if age > allowed => problems.push(format!(
                "{name} last succeeded {} ago on {}, more than {} ({from})",
                short_duration(age),
                s.host,
                short_duration(allowed)
            )),
            _ => {}
        }
    }
    Ok(Verdict {
        name: name.to_owned(),
        ok: problems.is_empty(),
        problems,
        max_age_s: allowed.as_secs(),
        max_age_from: from,
        last_success_age_s: success_age.map(|a| a.as_secs()),
        last_run: r.last_run,
        last_success: r.last_success,
    })
}

/// The `OK:` line of a name that is fine.
fn ok_line(v: &Verdict) -> String {
    let ago = v.last_success_age_s.map_or_else(
        || "?".to_owned(),
        |s| short_duration(Duration::from_secs(s)),
    );
    let host = v.last_success.as_ref().map_or("?", |s| s.host.as_str());
    format!(
        "OK: {} succeeded {ago} ago on {host} (max age {})",
        v.name,
        short_duration(Duration::from_secs(v.max_age_s))
    )
}

pub async fn check(config: etcdlock::Config, args: CheckArgs) -> Result<u8> {
    let etcd = crate::exit::connect(config, Check::Leader).await?;
    let mut checks = Vec::new();
    for name in &args.names {
        let records = etcdlock::record::read(&etcd, name).await?;
        checks.push(judge(name, args.max_age, records)?);
    }
    let ok = checks.iter().all(|v| v.ok);
    if args.json {
        let report = Report {
            schema_version: etcdlock::inspect::SCHEMA_VERSION,
            ok,
            checks,
        };
        output::print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        // Problems first: a monitoring system shows the first line as the service's status.
        let mut text = String::new();
        for v in &checks {
            for p in &v.problems {
                text.push_str(&format!("CRITICAL: {}\n", output::one_line(p)));
            }
        }
        for v in checks.iter().filter(|v| v.ok) {
            text.push_str(&format!("{}\n", output::one_line(&ok_line(v))));
        }
        output::print(&text)?;
    }
    Ok(if ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exit_code: i32, ended_ago: u64, once_per_s: Option<u64>) -> RunRecord {
        let holder = etcdlock::Holder::current(&[], 1, Default::default());
        let mut r = RunRecord::new(&holder, SystemTime::now(), Duration::from_secs(1));
        r.ended_at =
            humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(ended_ago))
                .to_string();
        r.exit_code = exit_code;
        r.once_per_s = once_per_s;
        r
    }

    #[test]
    fn each_problem_is_one_line() {
        let hour = Some(Duration::from_secs(3600));
        let never = judge("/x", hour, Records::default()).unwrap();
        assert!(!never.ok && never.problems[0].contains("no run record"));
        let fine = Records {
            last_run: Some(run(0, 60, None)),
            last_success: Some(run(0, 60, None)),
            once_remaining_s: None,
        };
        assert!(judge("/x", hour, fine.clone()).unwrap().ok);
        let old = judge("/x", Some(Duration::from_secs(30)), fine).unwrap();
        assert_eq!(old.problems.len(), 1);
        // 1m, or 1m1s when a second boundary passed while the test ran.
        assert!(
            old.problems[0].starts_with("/x last succeeded 1m"),
            "{old:?}"
        );
        let failed = Records {
            last_run: Some(run(3, 60, None)),
            last_success: None,
            once_remaining_s: None,
        };
        let v = judge("/x", hour, failed).unwrap();
        assert_eq!(v.problems.len(), 2, "{v:?}");
        assert!(v.problems[0].contains("exit 3"));
        assert!(v.problems[1].contains("never succeeded"));
    }

    #[test]
    fn max_age_defaults_to_twice_the_recorded_period() {
        let r = Records {
            last_run: Some(run(0, 100, Some(60))),
            last_success: Some(run(0, 100, Some(60))),
            once_remaining_s: None,
        };
        let v = judge("/x", None, r.clone()).unwrap();
        assert_eq!(
            (v.max_age_s, v.max_age_from, v.ok),
            (120, "--once-per", true)
        );
        let mut stale = r;
        stale.last_success = Some(run(0, 200, Some(60)));
        assert!(!judge("/x", None, stale).unwrap().ok);
        let no_period = Records {
            last_run: Some(run(0, 1, None)),
            ..Records::default()
        };
        assert!(judge("/x", None, no_period).is_err());
    }
}
