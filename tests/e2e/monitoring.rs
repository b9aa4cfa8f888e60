//! Knowing when a job stopped succeeding (issue 26): `check`, the `--metrics-file` textfile and
//! its alert rules (promtool), `list --json` / `list --watch`, run hooks, the exporter — against
//! real etcd (and the textfile's rules against promtool, the exporter against Prometheus).

use std::process::Stdio;
use std::time::Duration;

use etcdlock_testkit::*;
use serde_json::Value;

use crate::common::*;

/// `check` against real records: never ran, succeeded, failed, too old, no period, the old layout,
/// etcd down; one line per problem, problems first; `--json`.
#[test]
fn check_says_ok_or_critical_per_name() {
    let (cluster, ep) = etcd();
    let check = |args: &[&str]| {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        etcdlock_out(&ep, &all)
    };
    // Never ran.
    let (code, out, _) = check(&["--max-age", "1h", "/m/never"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "CRITICAL: /m/never has no run record: it never ran (or not within the records' retention)\n"
    );
    // Succeeded under --once-per 1h: --max-age defaults to twice that.
    let (code, _, err) = etcdlock_out(&ep, &["run", "--once-per", "1h", "/m/ok", "--", "true"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = check(&["/m/ok"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("OK: /m/ok succeeded "), "{out}");
    assert!(out.ends_with("(max age 2h)\n"), "{out}");
    // Failed (and never succeeded): two problems, two lines, before the OK line.
    let (code, _, _) = etcdlock_out(&ep, &["run", "/m/bad", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3));
    let (code, out, _) = check(&["--max-age", "1h", "/m/ok", "/m/bad"]);
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("CRITICAL: /m/bad last run failed: exit 3 on "),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "CRITICAL: /m/bad has never succeeded (within the records' retention)"
    );
    assert!(lines[2].starts_with("OK: /m/ok "), "{out}");
    // A success that is too old: the job stopped running.
    std::thread::sleep(Duration::from_millis(2100));
    let (code, out, _) = check(&["--max-age", "1s", "/m/ok"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("CRITICAL: /m/ok last succeeded ")
            && out.contains("s ago on ")
            && out.ends_with(", more than 1s (--max-age)\n"),
        "{out}"
    );
    // A lost lock is a failure too.
    let mut lost = etcdlock_sh(&ep, &[], "/m/lost", "sleep 30")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cluster.wait_keys("/m/lost/", 1);
    let (code, _, _) = etcdlock_out(&ep, &["break", "--yes", "/m/lost"]);
    assert_eq!(code, Some(0));
    assert_eq!(wait_exit(&mut lost, SOON).code(), Some(70));
    let (code, out, _) = check(&["--max-age", "1h", "/m/lost"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("last run failed: lost its lock (exit 70) on "),
        "{out}"
    );
    // Ran without --once-per and no --max-age: a usage error, in one line.
    let (code, out, err) = check(&["/m/bad"]);
    assert_eq!((code, out.as_str()), (Some(2), ""), "{err}");
    assert!(
        err.starts_with("etcdlock: error: /m/bad: how old may its last success be?")
            && err.lines().count() == 1,
        "{err}"
    );
    // A record of the old layout (beside the lock) is not looked at.
    let record = status_json(&ep, "/m/ok")["last_run"].to_string();
    cluster.etcdctl_ok(&["put", "/m/old.etcdlock/last-run", &record]);
    cluster.etcdctl_ok(&["put", "/m/old.etcdlock/last-success", &record]);
    let (code, out, _) = check(&["--max-age", "1h", "/m/old"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("/m/old has no run record"), "{out}");
    // --json: the same verdicts, the same exit code.
    let (code, out, _) = check(&["--json", "--max-age", "1h", "/m/ok", "/m/bad"]);
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["schema_version"], 3);
    assert_eq!(v["checks"][0]["ok"], true);
    assert_eq!(v["checks"][0]["max_age_s"], 3600);
    assert_eq!(v["checks"][1]["problems"].as_array().unwrap().len(), 2);
    assert_eq!(v["checks"][1]["last_run"]["exit_code"], 3);
    // Usage errors and an etcd that cannot be read.
    let (code, _, _) = check(&[]);
    assert_eq!(code, Some(2));
    let (code, _, err) = check(&["--max-age", "0", "/m/ok"]);
    assert_eq!(code, Some(2), "{err}");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = etcdlock_out(
        &dead,
        &["--dial-timeout", "1s", "check", "--max-age", "1h", "/m/ok"],
    );
    assert_eq!(code, Some(69), "{err}");
}
