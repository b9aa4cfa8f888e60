//! `run` options for cron and CI: try (-n), timeout (-w), conflict exit code (-E), shell (-c),
//! semaphores (--limit), metadata (--meta), --max-runtime, --min-hold, waiting progress,
//! environment precedence, and surviving an etcd restart while waiting.

use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;
use nix::sys::signal::Signal;

use crate::common::*;

/// `etcdlock ARGS` in the background.
fn spawn(ep: &str, args: &[&str]) -> Child {
    spawn_etcdlock(ep, args, Stdio::inherit())
}

/// `etcdlock ARGS` to the end: (exit code, stderr).
fn run_err(ep: &str, args: &[&str]) -> (Option<i32>, String) {
    let (code, _, err) = etcdlock_out(ep, args);
    (code, err)
}

#[test]
fn no_wait_gives_up_at_once_and_leaves_no_waiter_key() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(
        &ep,
        "/nw",
        &["--meta", "job=https://ci/42"],
        dir.path(),
        "nw",
    );

    let started = Instant::now();
    let ran = dir.path().join("ran");
    let (code, stderr) = run_err(
        &ep,
        &["run", "-n", "/nw", "--", "touch", ran.to_str().unwrap()],
    );
    let took = started.elapsed();
    eprintln!("-n gave up in {took:?}");
    assert_eq!(code, Some(75), "{stderr}");
    assert!(took < Duration::from_secs(3), "-n took {took:?}");
    assert!(!ran.exists());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("held by") && stderr.contains(&format!("pid {}", holder.id())),
        "{stderr}"
    );
    assert!(stderr.contains("giving up (--no-wait)"), "{stderr}");
    assert_waiter_left_nothing(&cluster, "/nw/");

    // -E replaces 75; -E 0 with -q is silent.
    assert_eq!(
        run_err(&ep, &["run", "-n", "-E", "3", "/nw", "--", "true"]).0,
        Some(3)
    );
    assert_eq!(
        run_err(&ep, &["-q", "run", "-n", "-E", "0", "/nw", "--", "true"]),
        (Some(0), String::new())
    );

    assert!(let_go(&mut holder, &go).success());
    cluster.assert_clean_now();
}

#[test]
fn timeout_gives_up_after_about_the_duration() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/tw", &[], dir.path(), "tw");
    let started = Instant::now();
    let (code, stderr) = run_err(&ep, &["run", "-w", "1s", "/tw", "--", "true"]);
    let took = started.elapsed();
    eprintln!("-w 1s gave up after {took:?}");
    assert_eq!(code, Some(75), "{stderr}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(stderr.contains("giving up (--timeout 1s)"), "{stderr}");
    assert_eq!(cluster.keys("/tw/").len(), 1);
    // A timeout long enough succeeds once the holder leaves.
    let mut waiter = spawn(&ep, &["run", "-w", "60s", "/tw", "--", "true"]);
    cluster.wait_keys("/tw/", 2);
    assert!(let_go(&mut holder, &go).success());
    assert!(wait_exit(&mut waiter, SOON).success());
    cluster.assert_clean_now();
}

#[test]
fn shell_option_runs_through_sh() {
    let (cluster, ep, dir) = etcd_with_dir();
    let out = dir.path().join("out");
    let script = format!("echo $((40 + 2)) > {}; exit 5", out.display());
    assert_eq!(run_err(&ep, &["run", "/sh", "-c", &script]).0, Some(5));
    assert_eq!(fs::read_to_string(&out).unwrap(), "42\n");
    // Exactly one of -c and COMMAND.
    assert_eq!(
        run_err(&ep, &["run", "/sh", "-c", "true", "--", "true"]).0,
        Some(2)
    );
    cluster.assert_clean_now();
}

#[test]
fn limit_two_never_runs_more_than_two_at_once() {
    let (cluster, ep, dir) = etcd_with_dir();
    let log = dir.path().join("log");
    let script = format!(
        "echo \"$(date +%s%N) 1\" >> {log}; sleep 0.3; echo \"$(date +%s%N) -1\" >> {log}",
        log = log.display()
    );
    let mut runs: Vec<Child> = (0..6)
        .map(|_| spawn(&ep, &["run", "--limit", "2", "/sem", "-c", &script]))
        .collect();
    for r in &mut runs {
        assert!(wait_exit(r, Duration::from_secs(60)).success());
    }
    let mut events: Vec<(i128, i32)> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (t, d) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), d.parse().unwrap())
        })
        .collect();
    assert_eq!(events.len(), 12);
    // Ends sort before starts at the same instant.
    events.sort();
    let (mut now, mut max) = (0, 0);
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    assert_eq!(max, 2, "--limit 2 must allow exactly two at once");

    // Holders must agree on the limit.
    let (mut holder, go) = hold(&ep, "/sem", &["--limit", "2"], dir.path(), "sem");
    let (code, stderr) = run_err(&ep, &["run", "--limit", "3", "/sem", "--", "true"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--limit 2") && stderr.contains("--limit 3"),
        "{stderr}"
    );
    assert!(let_go(&mut holder, &go).success());
    cluster.assert_clean_now();
}

#[test]
fn metadata_is_stored_in_the_key() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(
        &ep,
        "/meta",
        &["--meta", "job=https://ci/7", "--meta", "by=alice"],
        dir.path(),
        "meta",
    );
    let key = cluster.keys("/meta/").pop().unwrap();
    let value: serde_json::Value = serde_json::from_str(&cluster.get(&key).unwrap()).unwrap();
    assert_eq!(value["meta"]["job"], "https://ci/7");
    assert_eq!(value["meta"]["by"], "alice");
    assert_eq!(value["limit"], 1);
    assert!(let_go(&mut holder, &go).success());
    cluster.assert_clean_now();
}

#[test]
fn max_runtime_stops_the_command_with_124() {
    let (cluster, ep) = etcd();
    for (script, grace) in [
        ("exec sleep 60", "2s"),
        ("trap '' TERM; while :; do sleep 0.05; done", "1s"),
    ] {
        let started = Instant::now();
        let (code, stderr) = run_err(
            &ep,
            &[
                "run",
                "--max-runtime",
                "1s",
                "--kill-after",
                grace,
                "/mr",
                "-c",
                script,
            ],
        );
        let took = started.elapsed();
        assert_eq!(code, Some(124), "{stderr}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(8),
            "took {took:?}"
        );
        assert!(stderr.contains("--max-runtime"), "{stderr}");
    }
    cluster.assert_clean_now();
}

#[test]
fn min_hold_keeps_the_lock_after_a_short_command() {
    let (cluster, ep, dir) = etcd_with_dir();
    let ran = dir.path().join("ran");
    let started = Instant::now();
    let mut holder = spawn(
        &ep,
        &[
            "run",
            "--min-hold",
            "8s",
            "/mh",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ],
    );
    // The command has run (and ended at once): the lock must still be taken. The probe starts
    // well inside the 8 s even on a loaded machine, so this holds unconditionally.
    wait_until("the command to run", SOON, || ran.exists());
    let (code, err) = run_err(&ep, &["run", "-n", "/mh", "--", "true"]);
    assert_eq!(
        code,
        Some(75),
        "the lock was free during --min-hold, {:?} after the start: {err}",
        started.elapsed()
    );
    assert!(wait_exit(&mut holder, SOON).success());
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "released after {:?}",
        started.elapsed()
    );
    cluster.assert_clean_now();
}

#[test]
fn progress_lines_when_stderr_is_not_a_terminal() {
    let (cluster, ep, dir) = etcd_with_dir();
    // Nothing at all when the lock is free at once.
    assert_eq!(
        run_err(&ep, &["run", "/pr", "--", "true"]),
        (Some(0), String::new())
    );

    let (mut holder, go) = hold(&ep, "/pr", &[], dir.path(), "pr");
    let log = dir.path().join("waiter.err");
    let mut waiter = spawn_etcdlock(
        &ep,
        &["run", "--progress-interval", "1s", "/pr", "--", "true"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    // At least one "still waiting" line at a 1 s interval, however long the machine takes.
    wait_until("a still-waiting line", SOON, || {
        read(&log).contains("still waiting for /pr after")
    });
    assert!(let_go(&mut holder, &go).success());
    assert!(wait_exit(&mut waiter, SOON).success());
    let stderr = read(&log);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("etcdlock: waiting for /pr: held by"),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("still waiting for /pr after")),
        "{stderr}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("etcdlock: acquired /pr after"),
        "{stderr}"
    );

    // -q silences it.
    let (mut holder, go) = hold(&ep, "/pr", &[], dir.path(), "pr");
    let mut quiet = spawn_etcdlock(
        &ep,
        &[
            "-q",
            "run",
            "--progress-interval",
            "1s",
            "/pr",
            "--",
            "true",
        ],
        Stdio::piped(),
    );
    cluster.wait_keys("/pr/", 2);
    assert!(let_go(&mut holder, &go).success());
    assert!(wait_exit(&mut quiet, SOON).success());
    assert_eq!(stderr_text(&mut quiet), "");
    cluster.assert_clean_now();
}

/// `etcdlock ARGS` with stderr on a pseudo-terminal; what the terminal showed so far arrives on
/// the channel (all of it each time).
fn on_a_terminal(ep: &str, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::os::fd::OwnedFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave: OwnedFd = pty.slave;
    let child = etcdlock_at(ep)
        .args(args)
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    drop(slave);
    (child, terminal_output(std::fs::File::from(pty.master)))
}

/// The last spinner frame was erased (`ESC[2K`) before anything else was printed.
fn assert_spinner_cleared(seen: &str) {
    let last_frame = seen.rfind("waiting for /tty ·").expect("a spinner frame");
    let rest = &seen[last_frame..];
    let cleared = rest
        .find("\x1b[2K")
        .unwrap_or_else(|| panic!("spinner left on screen: {rest:?}"));
    assert!(
        !rest[..cleared].contains("etcdlock:"),
        "a message was printed over the spinner: {rest:?}"
    );
}

#[test]
fn spinner_on_a_terminal_is_cleared_on_every_exit() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/tty", &[], dir.path(), "tty");
    // Given up after -w, and interrupted while waiting: the message replaces the spinner.
    let (mut timed_out, rx) = on_a_terminal(&ep, &["run", "-w", "2", "/tty", "--", "true"]);
    let seen = shown(&rx, "giving up");
    assert_eq!(wait_exit(&mut timed_out, SOON).code(), Some(75));
    assert_spinner_cleared(&seen);
    let (mut interrupted, rx) = on_a_terminal(&ep, &["run", "/tty", "--", "true"]);
    shown(&rx, "waiting for /tty · held by");
    signal(&interrupted, Signal::SIGTERM);
    let seen = shown(&rx, "leaving the queue");
    assert_eq!(wait_exit(&mut interrupted, SOON).code(), Some(143));
    assert_spinner_cleared(&seen);
    // Acquired: the spinner goes before the command runs.
    let (mut waiter, rx) = on_a_terminal(&ep, &["run", "/tty", "--", "sh", "-c", "echo ran >&2"]);
    shown(&rx, "waiting for /tty · held by");
    assert!(let_go(&mut holder, &go).success());
    let seen = shown(&rx, "ran");
    assert!(wait_exit(&mut waiter, SOON).success());
    let last_frame = seen.rfind("waiting for /tty ·").unwrap();
    let ran = seen.rfind("ran").unwrap();
    assert!(seen[last_frame..ran].contains("\x1b[2K"), "{seen:?}");
    cluster.assert_clean_now();
}

#[test]
fn environment_precedence() {
    let cluster = Cluster::single();
    let good = cluster.endpoints();
    let bad = format!("http://127.0.0.1:{}", free_port());
    let run = |flag: Option<&str>, lock_env: Option<&str>, ctl_env: Option<&str>| {
        let mut cmd = etcdlock_command();
        cmd.stdin(Stdio::null())
            .env_remove("ETCDLOCK_ENDPOINTS")
            .env_remove("ETCDCTL_ENDPOINTS");
        cmd.env("ETCDLOCK_DIAL_TIMEOUT", "1s");
        if let Some(v) = lock_env {
            cmd.env("ETCDLOCK_ENDPOINTS", v);
        }
        if let Some(v) = ctl_env {
            cmd.env("ETCDCTL_ENDPOINTS", v);
        }
        if let Some(f) = flag {
            cmd.args(["--endpoints", f]);
        }
        cmd.args(["run", "/env", "--", "true"]);
        run_text(cmd, Duration::from_secs(60)).0
    };
    assert_eq!(
        run(None, None, Some(&good)),
        Some(0),
        "ETCDCTL_ENDPOINTS is used"
    );
    assert_eq!(
        run(None, Some(&bad), Some(&good)),
        Some(69),
        "ETCDLOCK_ beats ETCDCTL_"
    );
    assert_eq!(run(None, Some(&good), Some(&bad)), Some(0));
    assert_eq!(
        run(Some(&good), Some(&bad), Some(&bad)),
        Some(0),
        "the flag beats both"
    );
    assert_eq!(run(Some(&bad), Some(&good), Some(&good)), Some(69));
    cluster.assert_clean_now();
}

/// A waiter keeps its place in the queue across an etcd restart (its lease outlives the restart).
#[test]
fn a_wait_survives_an_etcd_restart_and_keeps_its_place() {
    let (mut cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/rs", &["--ttl", "10s"], dir.path(), "rs");
    let mut waiter = spawn(&ep, &["run", "--ttl", "10s", "/rs", "--", "true"]);
    cluster.wait_keys("/rs/", 2);
    let keys_before = cluster.keys("/rs/");
    cluster.kill(0);
    cluster.restart(0);
    cluster.wait_healthy();
    assert_eq!(cluster.keys("/rs/"), keys_before, "both keep their place");
    assert_eq!(
        let_go(&mut holder, &go).code(),
        Some(0),
        "the holder kept its lock"
    );
    assert_eq!(
        wait_exit(&mut waiter, SOON).code(),
        Some(0),
        "the waiter got the lock"
    );
    cluster.assert_clean_now();
}
