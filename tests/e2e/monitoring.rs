//! Knowing when a job stopped succeeding (issue 26): `check`, the `--metrics-file` textfile and
//! its alert rules (promtool), `list --json` / `list --watch`, run hooks, the exporter — against
//! real etcd (and the textfile's rules against promtool, the exporter against Prometheus).

use std::fs;
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

/// The value of `series` (name and labels, as written) in a textfile.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The textfile against real runs: a success moves `last_success`, a failure only the run gauges,
/// a give-up (`-n` on a held lock) and a `--once-per` skip only the outcome; written by rename
/// (no temporary file left, and an inode change per write).
#[test]
fn metrics_file_moves_last_success_only_on_success() {
    use std::os::unix::fs::MetadataExt;
    let (cluster, ep, dir) = etcd_with_dir();
    let file = dir.path().join("job.prom");
    let f = file.to_str().unwrap();
    let success = "etcdlock_last_success_timestamp_seconds{lock=\"/tf\"}";
    let end = "etcdlock_last_end_time_seconds{lock=\"/tf\"}";
    let state = |s: &str| format!("etcdlock_last_outcome{{lock=\"/tf\",outcome=\"{s}\"}}");
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--metrics-file", f];
        all.extend_from_slice(args);
        etcdlock_out(&ep, &all).0
    };
    assert_eq!(run(&["--once-per", "1h", "/tf", "--", "true"]), Some(0));
    let text = read(&file);
    let succeeded = sample(&text, success).expect(&text);
    assert_eq!(sample(&text, &state("success")), Some(1.0), "{text}");
    let inode = fs::metadata(&file).unwrap().ino();
    // A --once-per skip: exit 0, but not a success.
    assert_eq!(run(&["--once-per", "1h", "/tf", "--", "true"]), Some(0));
    let text = read(&file);
    assert_eq!(sample(&text, success), Some(succeeded), "{text}");
    assert_eq!(
        sample(&text, &state("skipped_once_per")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, &state("success")), Some(0.0), "{text}");
    assert_ne!(
        fs::metadata(&file).unwrap().ino(),
        inode,
        "rewritten by rename"
    );
    // A failure moves the run gauges, not the success.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(run(&["/tf", "--", "sh", "-c", "exit 4"]), Some(4));
    let text = read(&file);
    assert_eq!(sample(&text, success), Some(succeeded), "{text}");
    assert_eq!(sample(&text, &state("failure")), Some(1.0), "{text}");
    assert_eq!(sample(&text, "etcdlock_exit_code{lock=\"/tf\"}"), Some(4.0));
    let ended = sample(&text, end).unwrap();
    assert!(ended > succeeded, "{text}");
    // A give-up on a held lock moves no run gauge.
    let release = dir.path().join("release");
    let mut holder = etcdlock_sh(
        &ep,
        &[],
        "/tf",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()),
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    cluster.wait_keys("/tf/", 1);
    assert_eq!(run(&["-n", "/tf", "--", "true"]), Some(75));
    let text = read(&file);
    assert_eq!(sample(&text, &state("skipped_held")), Some(1.0), "{text}");
    assert_eq!(sample(&text, end), Some(ended), "{text}");
    assert_eq!(sample(&text, "etcdlock_exit_code{lock=\"/tf\"}"), Some(4.0));
    assert_eq!(sample(&text, success), Some(succeeded));
    fs::write(&release, "").unwrap();
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(0));
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

/// Hooks: the right one runs after the lock is free, with the outcome in its environment;
/// a failing or hanging hook changes no exit code and is stopped at --hook-timeout.
#[test]
fn hooks_run_after_release_with_the_outcome() {
    let (cluster, ep, dir) = etcd_with_dir();
    let log = dir.path().join("hook.log");
    let hook = format!(
        "echo \"$ETCDLOCK_OUTCOME $ETCDLOCK_EXIT_CODE $ETCDLOCK_NAME $ETCDLOCK_FENCING_TOKEN $ETCDLOCK_DURATION_S\" >> {0}; ETCDCTL_API=3 {2} --endpoints={1} get --prefix /hk/ --keys-only | grep -c . >> {0} || true",
        log.display(),
        ep,
        etcdctl_bin().display()
    );
    // A key of no lock's: a hook that cannot read etcd counts 0, not 1.
    cluster.etcdctl_ok(&["put", "/hk/sentinel", "x"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--on-success", &hook, "--on-failure", &hook];
        all.extend_from_slice(args);
        let mut cmd = etcdlock_at(&ep);
        cmd.args(&all).env("PATH", std::env::var("PATH").unwrap());
        run_text(cmd, Duration::from_secs(60))
    };
    let (code, _, err) = run(&["/hk/a", "--", "sleep", "0.2"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = run(&["/hk/a", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3));
    let (code, _, _) = run(&["--max-runtime", "0.3", "/hk/a", "--", "sleep", "30"]);
    assert_eq!(code, Some(124));
    // No hook for a give-up.
    let release = dir.path().join("release");
    let mut holder = etcdlock_sh(
        &ep,
        &[],
        "/hk/a",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()),
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    cluster.wait_keys("/hk/a/", 1);
    let (code, _, _) = run(&["-n", "/hk/a", "--", "true"]);
    assert_eq!(code, Some(75));
    fs::write(&release, "").unwrap();
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(0));
    let text = read(&log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "three hooks, two lines each:\n{text}");
    let fields: Vec<Vec<&str>> = lines
        .iter()
        .step_by(2)
        .map(|l| l.split(' ').collect())
        .collect();
    assert_eq!(&fields[0][..3], ["success", "0", "/hk/a"], "{text}");
    assert_eq!(&fields[1][..3], ["failure", "3", "/hk/a"], "{text}");
    assert_eq!(&fields[2][..3], ["timeout", "124", "/hk/a"], "{text}");
    assert!(fields[0][3].parse::<i64>().unwrap() > 0, "{text}");
    assert!(fields[0][4].parse::<f64>().unwrap() >= 0.2, "{text}");
    // The lock was free when each hook ran: no key under /hk/ but the sentinel.
    for count in lines.iter().skip(1).step_by(2) {
        assert_eq!(
            *count, "1",
            "the lock is released before the hook runs:\n{text}"
        );
    }
    // A failing hook and a hanging one: the exit code stays the command's; the hanging one is
    // killed at --hook-timeout, its child too.
    let (code, _, err) = etcdlock_out(
        &ep,
        &["run", "--on-success", "exit 9", "/hk/b", "--", "true"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        err,
        "etcdlock: --on-success hook exited 9 (etcdlock's exit code is the command's)\n"
    );
    let pid_file = dir.path().join("hook.pid");
    let started = std::time::Instant::now();
    let hang = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let (code, _, err) = etcdlock_out(
        &ep,
        &[
            "run",
            "--hook-timeout",
            "1s",
            "--on-failure",
            &hang,
            "/hk/b",
            "--",
            "false",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        err,
        "etcdlock: --on-failure hook did not finish within --hook-timeout 1s; stopped it\n"
    );
    let sleeper: i32 = read(&pid_file).trim().parse().unwrap();
    assert!(
        poll_until(SOON, || !pid_alive(sleeper)),
        "the hook's child is killed too"
    );
}

/// `list --json` has the last success and the once-marker's remaining time.
#[test]
fn list_json_has_last_success_and_next_run() {
    let (_cluster, ep) = etcd();
    let (code, _, _) = etcdlock_out(&ep, &["run", "--once-per", "1h", "/lj/a", "--", "true"]);
    assert_eq!(code, Some(0));
    let (code, _, _) = etcdlock_out(&ep, &["run", "/lj/a", "--", "false"]);
    assert_eq!(code, Some(1));
    let (code, out, _) = etcdlock_out(&ep, &["list", "--json", "/lj/"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 3);
    let lock = &v["locks"][0];
    assert_eq!(lock["last_run"]["exit_code"], 1, "{lock}");
    assert_eq!(lock["last_success"]["exit_code"], 0, "{lock}");
    assert_eq!(lock["last_success"]["once_per_s"], 3600, "{lock}");
    let next = lock["next_run_allowed_in_s"].as_i64().unwrap();
    assert!((3500..=3600).contains(&next), "{lock}");
}

/// Reads lines from `child`'s stdout on a thread; `next` waits for the next one.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        use std::io::BufRead;
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line that `wanted` accepts (others are skipped), parsed.
    fn next(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + SOON;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.0.recv_timeout(left).expect("a JSON line in time");
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if wanted(&v) {
                return v;
            }
        }
    }
}

/// Not on a terminal, `list --watch` prints one JSON line per lock that changed: a holder
/// arriving and leaving, a run's record; nothing while nothing changes.
#[test]
fn list_watch_prints_json_lines_per_change() {
    let (cluster, ep, dir) = etcd_with_dir();
    etcdlock_out(&ep, &["run", "/lw/old", "--", "true"]);
    let mut watch = etcdlock_at(&ep)
        .args(["list", "--watch", "/lw/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut watch);
    // The initial state: one line per lock.
    let first = lines.next(|_| true);
    assert_eq!(first["name"], "/lw/old", "{first}");
    assert_eq!(first["schema_version"], 3);
    assert_eq!(first["lock"]["last_run"]["exit_code"], 0);
    let release = dir.path().join("release");
    let mut holder = etcdlock_sh(
        &ep,
        &[],
        "/lw/job",
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; exit 5",
            release.display()
        ),
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let held = lines.next(|v| v["name"] == "/lw/job");
    assert_eq!(held["lock"]["held"], true, "{held}");
    assert_eq!(held["lock"]["holder_count"], 1, "{held}");
    fs::write(&release, "").unwrap();
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(5));
    let done = lines.next(|v| v["name"] == "/lw/job" && v["lock"]["held"] == false);
    assert_eq!(done["lock"]["last_run"]["exit_code"], 5, "{done}");
    // Forgetting the records of a free lock removes it from the list: a null line.
    cluster.etcdctl_ok(&["put", "/unrelated", "x"]);
    etcdlock_out(&ep, &["forget", "/lw/old"]);
    let gone = lines.next(|v| v["name"] == "/lw/old");
    assert_eq!(gone["lock"], Value::Null, "{gone}");
    // Nothing changes: no line within a few seconds (ages are not changes).
    assert!(lines.0.recv_timeout(Duration::from_secs(3)).is_err());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(wait_exit(&mut watch, SOON).code(), Some(0));
}

/// On a terminal (a tmux pane), `list --watch` redraws its table as the lock changes, and
/// Ctrl-C leaves.
#[test]
fn list_watch_redraws_a_table_on_a_terminal() {
    let (_cluster, ep, dir) = etcd_with_dir();
    let socket = format!("etcdlock-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        // The tmux server passes its own environment to the command it runs: clean it, or an
        // operator's RUST_LOG or NO_COLOR would change what is drawn.
        let out = clean_env(&mut std::process::Command::new("tmux"))
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let screen = || tmux(&["capture-pane", "-p", "-t", "w"]);
    let shown = |what: &dyn Fn(&str) -> bool| poll_until(SOON, || what(&screen()));
    let command = format!(
        "{} --endpoints {ep} list --watch /tw/; echo EXITED $?; sleep 30",
        etcdlock_bin().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "w",
        "-x",
        "100",
        "-y",
        "20",
        &command,
    ]);
    assert!(
        shown(&|s| s.contains("etcdlock list --watch · /tw/") && s.contains("no locks")),
        "{}",
        screen()
    );
    let release = dir.path().join("release");
    let mut holder = etcdlock_sh(
        &ep,
        &[],
        "/tw/job",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()),
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    assert!(
        shown(&|s| s
            .lines()
            .any(|l| l.starts_with("/tw/job") && l.contains("1/1"))),
        "{}",
        screen()
    );
    fs::write(&release, "").unwrap();
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(0));
    assert!(
        shown(&|s| s
            .lines()
            .any(|l| l.starts_with("/tw/job") && l.contains("0/1") && l.contains("exit 0"))),
        "{}",
        screen()
    );
    tmux(&["send-keys", "-t", "w", "C-c"]);
    let left = shown(&|s| s.contains("EXITED 0"));
    let last = screen();
    tmux(&["kill-server"]);
    assert!(left, "{last}");
}

/// The README's alert rules, as written there, pass `promtool check rules` and a `promtool test
/// rules` unit test: a lock whose runs keep failing fires "not succeeding" and "run failed", one
/// that succeeds every 10 minutes stays quiet, one that never succeeded fires "never succeeded".
#[test]
fn readme_alert_rules_pass_promtool() {
    // Times in promtool start at 0: a success at t is the value t. Samples every minute, as a
    // scrape would take them (sparser ones go stale after 5 minutes, which resets `for`).
    let test = r#"
    input_series:
      - series: 'etcdlock_last_success_timestamp_seconds{lock="/ok",instance="a"}'
        values: '0+60x1700'
      - series: 'etcdlock_last_outcome{lock="/ok",instance="a",outcome="success"}'
        values: '1x1700'
      - series: 'etcdlock_lock_lost_total{lock="/ok",instance="a"}'
        values: '0x1700'
      - series: 'etcdlock_last_outcome{lock="/cron/backup",instance="a",outcome="success"}'
        values: '1x1700'
      - series: 'etcdlock_last_success_timestamp_seconds{lock="/bad",instance="b"}'
        values: '0x1700'
      - series: 'etcdlock_last_outcome{lock="/bad",instance="b",outcome="failure"}'
        values: '1x1700'
      - series: 'etcdlock_lock_lost_total{lock="/bad",instance="b"}'
        values: '0x1700'
      - series: 'etcdlock_lock_lost_total{lock="/new",instance="c"}'
        values: '0x1700'
    alert_rule_test:
      - eval_time: 25h
        alertname: EtcdlockJobNotSucceeding
        exp_alerts: []
      - eval_time: 27h
        alertname: EtcdlockJobNotSucceeding
        exp_alerts:
          - exp_labels: {lock: /bad, severity: critical}
            exp_annotations:
              summary: "/bad has not succeeded for 1d 3h 0m 0s"
      - eval_time: 2h
        alertname: EtcdlockRunFailed
        exp_alerts:
          - exp_labels: {lock: /bad, instance: b, severity: warning}
      - eval_time: 2h
        alertname: EtcdlockJobNeverSucceeded
        exp_alerts:
          - exp_labels: {lock: /new, severity: critical}
      - eval_time: 3h
        alertname: EtcdlockJobAbsent
        exp_alerts: []
"#;
    promtool_rules_pass(&readme_yaml("alert-rules"), test);
}

/// The README's rules on etcd's own metrics ("Running etcd for etcdlock") pass `promtool check
/// rules` and a unit test — an etcd never compacted, past a million revisions, fires; one
/// compacted a moment ago does not; a database at 85 % of its quota fires, one at 5 % does not —
/// and etcd 3.4 and 3.5 both export every metric the rules name (a renamed metric would make
/// them silently never fire).
#[test]
fn readme_etcd_alert_rules_pass_promtool_and_name_etcds_metrics() {
    let rules = readme_yaml("etcd-alert-rules");
    let test = r#"
    input_series:
      - series: 'etcd_debugging_mvcc_current_revision{instance="old"}'
        values: '2000000+10x180'
      - series: 'etcd_debugging_mvcc_compact_revision{instance="old"}'
        values: '-1x180'
      - series: 'etcd_debugging_mvcc_current_revision{instance="kept"}'
        values: '2000000+10x180'
      - series: 'etcd_debugging_mvcc_compact_revision{instance="kept"}'
        values: '1990000+10x180'
      - series: 'etcd_mvcc_db_total_size_in_bytes{instance="old"}'
        values: '1825361101x180'
      - series: 'etcd_server_quota_backend_bytes{instance="old"}'
        values: '2147483648x180'
      - series: 'etcd_mvcc_db_total_size_in_bytes{instance="kept"}'
        values: '107374182x180'
      - series: 'etcd_server_quota_backend_bytes{instance="kept"}'
        values: '2147483648x180'
    alert_rule_test:
      - eval_time: 30m
        alertname: EtcdNotCompacting
        exp_alerts: []
      - eval_time: 90m
        alertname: EtcdNotCompacting
        exp_alerts:
          - exp_labels: {instance: old, severity: warning}
            exp_annotations:
              summary: "etcd old: 2.001M revisions since its last compaction"
      - eval_time: 5m
        alertname: EtcdDatabaseNearQuota
        exp_alerts: []
      - eval_time: 20m
        alertname: EtcdDatabaseNearQuota
        exp_alerts:
          - exp_labels: {instance: old, severity: critical}
            exp_annotations:
              summary: "etcd old: database at 85% of its quota"
"#;
    promtool_rules_pass(&rules, test);

    let named: std::collections::BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .flat_map(|expr| expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("etcd_"))
        .collect();
    assert!(named.len() >= 4, "metrics named by the rules: {named:?}");
    for bin in [etcd_bin(), etcd35_bin()] {
        let cluster = Cluster::single_with_bin(&bin);
        let (status, body, _) =
            http_get(&cluster.members[0].client_addr(), "/metrics").expect("etcd's /metrics");
        assert!(status.contains("200"), "{status}");
        for metric in &named {
            assert!(
                body.lines().any(|l| l.starts_with(&format!("{metric} "))),
                "{} does not export {metric}, which the README's etcd alert rules use",
                bin.display()
            );
        }
    }
}

/// The YAML block that follows `<!-- tests: MARK -->` in the README.
fn readme_yaml(mark: &str) -> String {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .split(&format!("<!-- tests: {mark} -->\n```yaml\n"))
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("the README's {mark} block"))
        .to_owned()
}

/// `rules` pass `promtool check rules` and `promtool test rules` with `tests`: the input series
/// and alert tests of one test group that samples every minute (one evaluation a minute too).
fn promtool_rules_pass(rules: &str, tests: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let test = format!(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n{}",
        tests.trim_start_matches('\n')
    );
    fs::write(dir.path().join("test.yml"), test).unwrap();
    let promtool = |args: &[&str]| {
        let mut cmd = std::process::Command::new("promtool");
        cmd.args(args).current_dir(dir.path());
        let out = run_with_timeout(cmd, Duration::from_secs(60));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "promtool {args:?} (scripts/setup --test installs it):\n{text}"
        );
        text
    };
    promtool(&["check", "rules", "rules.yml"]);
    let text = promtool(&["test", "rules", "test.yml"]);
    assert!(text.contains("SUCCESS"), "{text}");
}

/// `GET path` on `addr`: (status line, body, how long it took).
fn http_get(addr: &str, path: &str) -> Option<(String, String, Duration)> {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let took = started.elapsed();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned(), took))
}

/// A running `etcdlock exporter`, stopped (SIGTERM, exit 0 checked) when dropped.
struct Exporter {
    child: std::process::Child,
    addr: String,
}

impl Exporter {
    fn start(ep: &str, prefixes: &[&str]) -> Exporter {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["exporter", "--listen", &addr];
        args.extend_from_slice(prefixes);
        let child = etcdlock_at(ep)
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let exporter = Exporter { child, addr };
        assert!(
            poll_until(SOON, || exporter.metrics().is_some()),
            "the exporter serves /metrics"
        );
        exporter
    }

    fn metrics(&self) -> Option<String> {
        http_get(&self.addr, "/metrics").map(|(_, body, _)| body)
    }

    /// Wait until the metrics satisfy `ok`; the last text either way.
    fn until(&self, ok: impl Fn(&str) -> bool) -> (bool, String) {
        let mut last = String::new();
        let done = poll_until(SOON, || {
            last = self.metrics().unwrap_or_default();
            ok(&last)
        });
        (done, last)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// (VmRSS in KiB, user + system CPU seconds) from /proc.
    fn usage(&self) -> (u64, f64) {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        (rss, ticks / 100.0)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let code = wait_exit(&mut self.child, SOON).code();
        if !std::thread::panicking() {
            assert_eq!(code, Some(0), "the exporter exits 0 on SIGTERM");
        }
    }
}

/// The exporter's view against real locks and runs: holders, waiters, the last run and success,
/// a `--once-per` period and the next run allowed; only the prefixes asked for; updated by the
/// watch; loaded again after etcd restarts (a broken watch), with what changed meanwhile.
#[test]
fn exporter_serves_every_lock_under_its_prefixes() {
    let (mut cluster, ep, dir) = etcd_with_dir();
    let ok = |args: &[&str]| assert_eq!(etcdlock_out(&ep, args).0, Some(0), "{args:?}");
    ok(&["run", "--once-per", "1h", "/ex/ok", "--", "true"]);
    assert_eq!(
        etcdlock_out(&ep, &["run", "/ex/bad", "--", "sh", "-c", "exit 3"]).0,
        Some(3)
    );
    ok(&["run", "/other/x", "--", "true"]);
    let exporter = Exporter::start(&ep, &["/ex/"]);
    let has = |text: &str, line: &str| text.lines().any(|l| l == line);
    let (done, text) = exporter.until(|t| has(t, "etcdlock_exporter_synced 1"));
    assert!(done, "{text}");
    assert!(
        has(&text, "etcdlock_last_exit_code{lock=\"/ex/bad\"} 3"),
        "{text}"
    );
    assert!(
        has(&text, "etcdlock_last_exit_code{lock=\"/ex/ok\"} 0"),
        "{text}"
    );
    assert!(
        has(&text, "etcdlock_once_per_seconds{lock=\"/ex/ok\"} 3600"),
        "{text}"
    );
    assert!(
        text.contains("etcdlock_next_run_allowed_timestamp_seconds{lock=\"/ex/ok\"} "),
        "{text}"
    );
    assert!(
        text.contains("etcdlock_last_success_timestamp_seconds{lock=\"/ex/ok\"} "),
        "{text}"
    );
    assert!(
        !text.contains("etcdlock_last_success_timestamp_seconds{lock=\"/ex/bad\"}"),
        "{text}"
    );
    assert!(
        !text.contains("/other/x"),
        "only the prefixes asked for:\n{text}"
    );
    assert!(has(&text, "etcdlock_exporter_locks 2"), "{text}");
    // A holder and a waiter arrive: the watch brings them.
    let release = dir.path().join("release");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    let mut holder = etcdlock_sh(&ep, &[], "/ex/held", &script)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cluster.wait_keys("/ex/held/", 1);
    let mut waiter = etcdlock_sh(&ep, &[], "/ex/held", "true")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cluster.wait_keys("/ex/held/", 2);
    let (done, text) = exporter.until(|t| {
        has(t, "etcdlock_lock_holders{lock=\"/ex/held\"} 1")
            && has(t, "etcdlock_lock_waiters{lock=\"/ex/held\"} 1")
            && has(t, "etcdlock_lock_limit{lock=\"/ex/held\"} 1")
    });
    assert!(done, "{text}");
    assert!(
        text.contains("etcdlock_lock_held_seconds{lock=\"/ex/held\"} "),
        "{text}"
    );
    // etcd restarts: the watch breaks, the view is loaded again, and what changed while the
    // exporter was cut off is there.
    fs::write(&release, "").unwrap();
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(0));
    assert_eq!(wait_exit(&mut waiter, SOON).code(), Some(0));
    cluster.kill(0);
    let (done, text) = exporter.until(|t| has(t, "etcdlock_exporter_synced 0"));
    assert!(done, "the exporter notices that etcd is gone:\n{text}");
    cluster.restart(0);
    ok(&["forget", "/ex/bad"]);
    let (done, text) = exporter.until(|t| {
        has(t, "etcdlock_exporter_synced 1")
            && has(t, "etcdlock_lock_holders{lock=\"/ex/held\"} 0")
            && !t.contains("/ex/bad")
    });
    assert!(done, "{text}");
    assert!(!has(&text, "etcdlock_exporter_resyncs_total 0"), "{text}");
    // Anything but GET /metrics: 404.
    let (status, _, _) = http_get(&exporter.addr, "/nope").unwrap();
    assert!(status.contains("404"), "{status}");
}

/// 10 000 locks, each held (a key on one shared lease) and with two run records: the exporter's
/// memory, CPU to load them, scrape time and size; then 2 000 changes through the watch. Prints
/// the figures (`--nocapture`) and bounds them generously.
#[test]
fn exporter_at_ten_thousand_locks() {
    const LOCKS: usize = 10_000;
    let (_cluster, ep) = etcd();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let holder = etcdlock::Holder::current(&[], 1, Default::default());
    let record = |code: i32| {
        let mut r = etcdlock::record::RunRecord::new(
            &holder,
            std::time::SystemTime::now(),
            Duration::from_secs(3),
        );
        r.exit_code = code;
        r.once_per_s = Some(3600);
        r.to_json()
    };
    let config = etcdlock::Config::new([ep.as_str()]).unwrap();
    let put_all = |client: &etcdlock::Client, ops: Vec<etcd_client::TxnOp>| {
        let client = client.clone();
        async move {
            for chunk in ops.chunks(100) {
                let txn = etcd_client::Txn::new().and_then(chunk.to_vec());
                client.txn("load", txn).await.unwrap();
            }
        }
    };
    let client = runtime.block_on(async {
        let client = etcdlock::Client::connect(config, etcdlock::client::Check::Lazy)
            .await
            .unwrap();
        let lease = client
            .call(|mut c| async move { c.lease_grant(600, None).await })
            .await
            .unwrap()
            .id();
        let opts = etcd_client::PutOptions::new().with_lease(lease);
        let holder_value = holder.to_json();
        let mut ops = Vec::new();
        for i in 0..LOCKS {
            let name = format!("/load/job-{i:05}");
            let keys = etcdlock::record::Keys::new(etcdlock::record::DEFAULT_PREFIX, &name);
            ops.push(etcd_client::TxnOp::put(
                format!("{name}/{lease:x}"),
                holder_value.clone(),
                Some(opts.clone()),
            ));
            ops.push(etcd_client::TxnOp::put(
                keys.last_run(),
                record(i as i32 % 2),
                None,
            ));
            ops.push(etcd_client::TxnOp::put(
                keys.last_success(),
                record(0),
                None,
            ));
        }
        put_all(&client, ops).await;
        client
    });
    let exporter = Exporter::start(&ep, &[]);
    let (rss_idle, _) = exporter.usage();
    let started = std::time::Instant::now();
    let (done, _) = exporter.until(|t| {
        t.lines()
            .any(|l| l == format!("etcdlock_exporter_locks {LOCKS}"))
            && t.contains("etcdlock_exporter_synced 1")
    });
    assert!(done, "the exporter loads 10 000 locks");
    let loaded_in = started.elapsed();
    let (rss, cpu_load) = exporter.usage();
    let mut scrapes = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let (_, body, took) = http_get(&exporter.addr, "/metrics").unwrap();
        size = body.len();
        scrapes.push(took);
    }
    let (rss_scraped, cpu_scraped) = exporter.usage();
    // 2 000 changes through the watch: every other lock's last run is overwritten.
    let ops: Vec<etcd_client::TxnOp> = (0..LOCKS)
        .step_by(5)
        .map(|i| {
            let keys = etcdlock::record::Keys::new(
                etcdlock::record::DEFAULT_PREFIX,
                &format!("/load/job-{i:05}"),
            );
            etcd_client::TxnOp::put(keys.last_run(), record(7), None)
        })
        .collect();
    let changed = std::time::Instant::now();
    runtime.block_on(put_all(&client, ops));
    let (done, text) = exporter.until(|t| {
        t.lines()
            .any(|l| l == "etcdlock_last_exit_code{lock=\"/load/job-09995\"} 7")
    });
    assert!(done, "the watch brings the changes");
    let watched_in = changed.elapsed();
    let (rss_end, cpu_end) = exporter.usage();
    let median = {
        let mut s = scrapes.clone();
        s.sort();
        s[2]
    };
    eprintln!(
        "exporter at {LOCKS} locks: RSS {} KiB idle, {rss} KiB loaded, {rss_scraped} KiB after 5 scrapes, {rss_end} KiB after 2000 watched changes; \
         CPU {cpu_load:.2}s to connect and load ({loaded_in:?} wall), {:.2}s for 5 scrapes, {:.2}s for 2000 changes ({watched_in:?} wall); \
         scrape median {median:?} (all: {scrapes:?}), {size} bytes, {} lines",
        rss_idle,
        cpu_scraped - cpu_load,
        cpu_end - cpu_scraped,
        text.lines().count()
    );
    assert!(rss_end < 200 * 1024, "RSS {rss_end} KiB");
    assert!(median < Duration::from_secs(2), "scrape {median:?}");
}

/// A real Prometheus (Debian's package) scrapes the exporter every second, with the alert "no
/// success in the last 10 seconds": it fires for a job whose runs fail and stays quiet for one
/// whose runs succeed.
#[test]
fn prometheus_alerts_on_a_job_that_stopped_succeeding() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (_cluster, ep, dir) = etcd_with_dir();
    let ok = |args: &[&str]| assert_eq!(etcdlock_out(&ep, args).0, Some(0), "{args:?}");
    ok(&["run", "/pm/good", "--", "true"]);
    ok(&["run", "/pm/bad", "--", "true"]);
    let exporter = Exporter::start(&ep, &["/pm/"]);
    // Both jobs keep firing, every half second: one succeeds, the other fails from now on.
    let stop = Arc::new(AtomicBool::new(false));
    let jobs: Vec<_> = [("/pm/good", "true"), ("/pm/bad", "false")]
        .into_iter()
        .map(|(name, command)| {
            let (stop, ep) = (stop.clone(), ep.clone());
            std::thread::spawn(move || {
                let mut runs = 0;
                while !stop.load(Ordering::Relaxed) {
                    etcdlock_out(&ep, &["run", name, "--", command]);
                    runs += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                runs
            })
        })
        .collect();
    fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: etcdlock\n    rules:\n      - alert: EtcdlockNoRecentSuccess\n        expr: time() - max by (lock) (etcdlock_last_success_timestamp_seconds) > 10\n        labels:\n          severity: critical\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: etcdlock\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut prometheus = std::process::Command::new("prometheus")
        .current_dir(dir.path())
        .args([
            "--config.file=prometheus.yml",
            "--storage.tsdb.path=data",
            &format!("--web.listen-address={web}"),
        ])
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (scripts/setup --dev installs Debian's package)");
    let alerts = || {
        http_get(&web, "/api/v1/alerts")
            .and_then(|(_, body, _)| serde_json::from_str::<Value>(&body).ok())
            .map(|v| v["data"]["alerts"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let firing_for = |alerts: &[Value], lock: &str| {
        alerts
            .iter()
            .any(|a| a["labels"]["lock"] == lock && a["state"] == "firing")
    };
    let mut seen = Vec::new();
    let fired = poll_until(Duration::from_secs(60), || {
        seen = alerts();
        firing_for(&seen, "/pm/bad")
    });
    // Some more evaluations: the succeeding job never shows up, not even pending.
    let mut good_alerted = seen.iter().any(|a| a["labels"]["lock"] == "/pm/good");
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        good_alerted |= alerts().iter().any(|a| a["labels"]["lock"] == "/pm/good");
    }
    let scraped = http_get(&web, "/api/v1/query?query=up%7Bjob%3D%22etcdlock%22%7D")
        .map(|(_, body, _)| body)
        .unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let runs: Vec<i32> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(prometheus.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    wait_exit(&mut prometheus, SOON);
    eprintln!(
        "prometheus alerts: {}",
        serde_json::to_string(&seen).unwrap()
    );
    eprintln!("runs (good, bad): {runs:?}; up: {scraped}");
    assert!(
        fired,
        "EtcdlockNoRecentSuccess fires for /pm/bad: {seen:?}\n{}",
        read(&dir.path().join("prometheus.log"))
    );
    assert!(!good_alerted, "no alert for /pm/good: {seen:?}");
    assert!(
        scraped.contains("\"1\"]"),
        "Prometheus scraped the exporter: {scraped}"
    );
}

/// With etcd authentication, `check` and the exporter need read permission only: a user with
/// read on the locks' prefix and on their records sees the job's last success.
#[test]
fn check_and_exporter_need_read_permission_only() {
    let cluster = Cluster::single();
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["role", "add", "root"],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "monitor:monpw"],
        &["role", "add", "monitor"],
        &[
            "role",
            "grant-permission",
            "monitor",
            "--prefix=true",
            "read",
            "/jobs/",
        ],
        &[
            "role",
            "grant-permission",
            "monitor",
            "--prefix=true",
            "read",
            ".etcdlock/v1//jobs/",
        ],
        &["user", "grant-role", "monitor", "monitor"],
        &["auth", "enable"],
    ] {
        let out = cluster.etcdctl(args);
        if !out.status.success() && args[..2] != ["role", "add"] {
            panic!("{}", describe_output(&format!("etcdctl {args:?}"), &out));
        }
    }
    cluster.set_etcdctl_user(Some("root:rootpw"));
    let ep = cluster.endpoints();
    let (code, _, err) = etcdlock_out(
        &ep,
        &[
            "--user",
            "root:rootpw",
            "run",
            "--once-per",
            "1h",
            "/jobs/backup",
            "--",
            "true",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = etcdlock_out(&ep, &["--user", "monitor:monpw", "check", "/jobs/backup"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("OK: /jobs/backup succeeded "), "{out}");
    // Read only: the monitor could not have run the job itself.
    let (code, _, _) = etcdlock_out(
        &ep,
        &["--user", "monitor:monpw", "run", "/jobs/x", "--", "true"],
    );
    assert_eq!(code, Some(69));
    let addr = format!("127.0.0.1:{}", free_port());
    let child = etcdlock_at(&ep)
        .args([
            "--user",
            "monitor:monpw",
            "exporter",
            "--listen",
            &addr,
            "/jobs/",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exporter = Exporter { child, addr };
    let (done, text) = exporter.until(|t| {
        t.contains("etcdlock_exporter_synced 1")
            && t.contains("etcdlock_last_success_timestamp_seconds{lock=\"/jobs/backup\"} ")
    });
    assert!(done, "{text}");
    assert!(
        text.contains("etcdlock_exporter_resyncs_total 0\n"),
        "{text}"
    );
}

/// A compaction while the exporter's watch is behind (the exporter paused while 20 MB of writes
/// go by, then etcd compacted past them): whether etcd cancels the watch (the exporter then loads
/// again) or delivers what it had buffered, the view has what changed meanwhile.
#[test]
fn exporter_reloads_after_a_compaction_overtakes_its_watch() {
    let (cluster, ep) = etcd();
    let exporter = Exporter::start(&ep, &["/cx/"]);
    let (done, text) = exporter.until(|t| t.contains("etcdlock_exporter_synced 1"));
    assert!(done, "{text}");
    let pid = nix::unistd::Pid::from_raw(exporter.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let blob = "x".repeat(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let revision = runtime.block_on(async {
        let config = etcdlock::Config::new([ep.as_str()]).unwrap();
        let client = etcdlock::Client::connect(config, etcdlock::client::Check::Lazy)
            .await
            .unwrap();
        let mut revision = 0;
        for _ in 0..200 {
            let blob = blob.clone();
            let put = client
                .call(|mut c| async move { c.put("/cx/blob", blob, None).await })
                .await
                .unwrap();
            revision = put.header().unwrap().revision();
        }
        revision
    });
    assert_eq!(
        etcdlock_out(&ep, &["run", "/cx/job", "--", "sh", "-c", "exit 6"]).0,
        Some(6)
    );
    cluster.etcdctl_ok(&["compact", &revision.to_string()]);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let (done, text) = exporter.until(|t| {
        t.contains("etcdlock_last_exit_code{lock=\"/cx/job\"} 6")
            && t.contains("etcdlock_exporter_synced 1")
    });
    assert!(done, "{text}");
    // Whether etcd cancelled the watch (and the exporter loaded again) or had sent the events
    // before the compaction depends on how much the paused exporter's buffers took: 1 of 4 runs
    // on the 2-core machine had no reload. Either way the view must be right, which is what the
    // wait above checks; the reload path itself is checked by the etcd-restart test.
    let resyncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("etcdlock_exporter_resyncs_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    eprintln!("reloads after the compaction: {resyncs}");
}

/// `run --handle` runs its hook too, after the command's record, with the handle's fencing
/// token; the lock stays held.
#[test]
fn hooks_run_under_a_handle() {
    let (cluster, ep, dir) = etcd_with_dir();
    let log = dir.path().join("hook.log");
    let (code, handle, err) = etcdlock_out(&ep, &["acquire", "--json", "--ttl", "30s", "/hh"]);
    assert_eq!(code, Some(0), "{err}");
    let handle: Value = serde_json::from_str(&handle).unwrap();
    let hook = format!(
        "echo \"$ETCDLOCK_OUTCOME $ETCDLOCK_FENCING_TOKEN\" > {}",
        log.display()
    );
    let (code, _, err) = etcdlock_out(
        &ep,
        &[
            "run",
            "--handle",
            handle["handle"].as_str().unwrap(),
            "--on-failure",
            &hook,
            "--",
            "false",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        read(&log),
        format!("failure {}\n", handle["fencing_token"]),
        "{handle}"
    );
    assert_eq!(
        cluster.lock_keys("/hh/").len(),
        1,
        "the handle still holds the lock"
    );
}
