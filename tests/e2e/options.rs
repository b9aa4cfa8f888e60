//! `run` options for cron and CI: try (-n), timeout (-w), conflict exit code (-E), shell (-c),
//! semaphores (--limit), metadata (--meta), --max-runtime, --min-hold, waiting progress,
//! environment precedence, and surviving an etcd restart while waiting.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;

const SOON: Duration = Duration::from_secs(20);

fn etcdlock(endpoints: &str) -> Command {
    let mut cmd = etcdlock_command();
    cmd.arg("--endpoints").arg(endpoints).stdin(Stdio::null());
    for var in [
        "ETCDLOCK_ENDPOINTS",
        "ETCDCTL_ENDPOINTS",
        "ETCDLOCK_DIAL_TIMEOUT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run_out(mut cmd: Command) -> (Option<i32>, String) {
    let out = run_with_timeout(
        {
            cmd.stdout(Stdio::null());
            cmd
        },
        Duration::from_secs(60),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A holder that runs until `go` appears; returns once its child runs.
fn hold(ep: &str, name: &str, dir: &Path, extra: &[&str]) -> (Child, std::path::PathBuf) {
    let ready = dir.join(format!("ready-{}", name.replace('/', "_")));
    let go = dir.join(format!("go-{}", name.replace('/', "_")));
    let _ = fs::remove_file(&ready);
    let _ = fs::remove_file(&go);
    let child = etcdlock(ep)
        .arg("run")
        .args(extra)
        .arg(name)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            ready.display(),
            go.display()
        ))
        .spawn()
        .unwrap();
    wait_until("holder to start", SOON, || ready.exists());
    (child, go)
}

#[test]
fn no_wait_gives_up_at_once_and_leaves_no_waiter_key() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, go) = hold(&ep, "/nw", dir.path(), &["--meta", "job=https://ci/42"]);

    let started = Instant::now();
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "-n", "/nw", "--", "touch"])
        .arg(dir.path().join("ran"));
    let (code, stderr) = run_out(cmd);
    let took = started.elapsed();
    eprintln!("-n gave up in {took:?}");
    assert_eq!(code, Some(75), "{stderr}");
    assert!(took < Duration::from_secs(3), "-n took {took:?}");
    assert!(!dir.path().join("ran").exists());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("held by") && stderr.contains(&format!("pid {}", holder.id())),
        "{stderr}"
    );
    assert!(stderr.contains("giving up (--no-wait)"), "{stderr}");
    assert_eq!(
        cluster.keys("/nw/").len(),
        1,
        "the waiter's key must be gone"
    );
    assert_eq!(
        cluster.leases().len(),
        1,
        "the waiter's lease must be revoked"
    );

    // -E replaces 75; -E 0 with -q is silent.
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "-n", "-E", "3", "/nw", "--", "true"]);
    assert_eq!(run_out(cmd).0, Some(3));
    let mut cmd = etcdlock(&ep);
    cmd.args(["-q", "run", "-n", "-E", "0", "/nw", "--", "true"]);
    assert_eq!(run_out(cmd), (Some(0), String::new()));

    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn timeout_gives_up_after_about_the_duration() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, go) = hold(&ep, "/tw", dir.path(), &[]);
    let started = Instant::now();
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "-w", "1s", "/tw", "--", "true"]);
    let (code, stderr) = run_out(cmd);
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
    let mut waiter = etcdlock(&ep)
        .args(["run", "-w", "60s", "/tw", "--", "true"])
        .spawn()
        .unwrap();
    wait_until("waiter to queue", SOON, || cluster.keys("/tw/").len() == 2);
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    assert!(wait_exit(&mut waiter, SOON).success());
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn shell_option_runs_through_sh() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "/sh", "-c"])
        .arg(format!("echo $((40 + 2)) > {}; exit 5", out.display()));
    assert_eq!(run_out(cmd).0, Some(5));
    assert_eq!(fs::read_to_string(&out).unwrap(), "42\n");
    // Exactly one of -c and COMMAND.
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "/sh", "-c", "true", "--", "true"]);
    assert_eq!(run_out(cmd).0, Some(2));
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn limit_two_never_runs_more_than_two_at_once() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let script = format!(
        "echo \"$(date +%s%N) 1\" >> {log}; sleep 0.3; echo \"$(date +%s%N) -1\" >> {log}",
        log = log.display()
    );
    let mut runs: Vec<Child> = (0..6)
        .map(|_| {
            etcdlock(&ep)
                .args(["run", "--limit", "2", "/sem", "-c", &script])
                .spawn()
                .unwrap()
        })
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
    let (mut holder, go) = hold(&ep, "/sem", dir.path(), &["--limit", "2"]);
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "--limit", "3", "/sem", "--", "true"]);
    let (code, stderr) = run_out(cmd);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--limit 2") && stderr.contains("--limit 3"),
        "{stderr}"
    );
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn metadata_is_stored_in_the_key() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, go) = hold(
        &ep,
        "/meta",
        dir.path(),
        &["--meta", "job=https://ci/7", "--meta", "by=alice"],
    );
    let key = cluster.keys("/meta/").pop().unwrap();
    let value: serde_json::Value = serde_json::from_str(&cluster.get(&key).unwrap()).unwrap();
    assert_eq!(value["meta"]["job"], "https://ci/7");
    assert_eq!(value["meta"]["by"], "alice");
    assert_eq!(value["limit"], 1);
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn max_runtime_stops_the_command_with_124() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    for (script, grace) in [
        ("exec sleep 60", "2s"),
        ("trap '' TERM; while :; do sleep 0.05; done", "1s"),
    ] {
        let started = Instant::now();
        let mut cmd = etcdlock(&ep);
        cmd.args([
            "run",
            "--max-runtime",
            "1s",
            "--kill-after",
            grace,
            "/mr",
            "-c",
            script,
        ]);
        let (code, stderr) = run_out(cmd);
        let took = started.elapsed();
        assert_eq!(code, Some(124), "{stderr}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(8),
            "took {took:?}"
        );
        assert!(stderr.contains("--max-runtime"), "{stderr}");
    }
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn min_hold_keeps_the_lock_after_a_short_command() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let started = Instant::now();
    let mut holder = etcdlock(&ep)
        .args(["run", "--min-hold", "3s", "/mh", "--", "true"])
        .spawn()
        .unwrap();
    wait_until("holder to queue", SOON, || !cluster.keys("/mh/").is_empty());
    // While the minimum hold lasts, the lock is still taken.
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "-n", "/mh", "--", "true"]);
    let (code, _) = run_out(cmd);
    if started.elapsed() < Duration::from_secs(3) {
        assert_eq!(code, Some(75), "the lock was free during --min-hold");
    }
    assert!(wait_exit(&mut holder, SOON).success());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "released after {:?}",
        started.elapsed()
    );
    cluster.assert_clean_within(Duration::from_millis(1500));
}

#[test]
fn progress_lines_when_stderr_is_not_a_terminal() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    // Nothing at all when the lock is free at once.
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "/pr", "--", "true"]);
    assert_eq!(run_out(cmd), (Some(0), String::new()));

    let (mut holder, go) = hold(&ep, "/pr", dir.path(), &[]);
    let mut waiter = etcdlock(&ep)
        .args(["run", "--progress-interval", "1s", "/pr", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("waiter to queue", SOON, || cluster.keys("/pr/").len() == 2);
    // At least one "still waiting" line at a 1 s interval.
    std::thread::sleep(Duration::from_millis(2500));
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    assert!(wait_exit(&mut waiter, SOON).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(waiter.stderr.as_mut().unwrap(), &mut stderr).unwrap();
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
    let (mut holder, go) = hold(&ep, "/pr", dir.path(), &[]);
    let mut quiet = etcdlock(&ep)
        .args([
            "-q",
            "run",
            "--progress-interval",
            "1s",
            "/pr",
            "--",
            "true",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("waiter to queue", SOON, || cluster.keys("/pr/").len() == 2);
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    assert!(wait_exit(&mut quiet, SOON).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(quiet.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(stderr, "");
    cluster.assert_clean_within(Duration::from_millis(1500));
}

/// `etcdlock ARGS` with stderr on a pseudo-terminal; what the terminal showed so far arrives on
/// the channel (all of it each time).
fn on_a_terminal(ep: &str, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::os::fd::OwnedFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave: OwnedFd = pty.slave;
    let child = etcdlock(ep)
        .args(args)
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    drop(slave);
    let master = std::fs::File::from(pty.master);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut master = master;
        let mut buf = [0u8; 4096];
        let mut seen = String::new();
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(seen.clone());
        }
    });
    (child, rx)
}

/// Waits until the terminal shows `needle`; all it showed.
fn shown(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + SOON;
    let mut seen = String::new();
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the terminal never showed {needle:?}: {seen:?}"
        );
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = s;
        }
    }
    seen
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
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, go) = hold(&ep, "/tty", dir.path(), &[]);
    // Given up after -w, and interrupted while waiting: the message replaces the spinner.
    let (mut timed_out, rx) = on_a_terminal(&ep, &["run", "-w", "2", "/tty", "--", "true"]);
    let seen = shown(&rx, "giving up");
    assert_eq!(wait_exit(&mut timed_out, SOON).code(), Some(75));
    assert_spinner_cleared(&seen);
    let (mut interrupted, rx) = on_a_terminal(&ep, &["run", "/tty", "--", "true"]);
    shown(&rx, "waiting for /tty · held by");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(interrupted.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let seen = shown(&rx, "leaving the queue");
    assert_eq!(wait_exit(&mut interrupted, SOON).code(), Some(143));
    assert_spinner_cleared(&seen);
    // Acquired: the spinner goes before the command runs.
    let (mut waiter, rx) = on_a_terminal(&ep, &["run", "/tty", "--", "sh", "-c", "echo ran >&2"]);
    shown(&rx, "waiting for /tty · held by");
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    let seen = shown(&rx, "ran");
    assert!(wait_exit(&mut waiter, SOON).success());
    let last_frame = seen.rfind("waiting for /tty ·").unwrap();
    let ran = seen.rfind("ran").unwrap();
    assert!(seen[last_frame..ran].contains("\x1b[2K"), "{seen:?}");
    cluster.assert_clean_within(Duration::from_millis(1500));
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
        run_out(cmd).0
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
    cluster.assert_clean_within(Duration::from_millis(1500));
}

/// A waiter keeps its place in the queue across an etcd restart (its lease outlives the restart).
#[test]
fn a_wait_survives_an_etcd_restart_and_keeps_its_place() {
    let mut cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, go) = hold(&ep, "/rs", dir.path(), &["--ttl", "10s"]);
    let mut waiter = etcdlock(&ep)
        .args(["run", "--ttl", "10s", "/rs", "--", "true"])
        .spawn()
        .unwrap();
    wait_until("waiter to queue", SOON, || cluster.keys("/rs/").len() == 2);
    let keys_before = cluster.keys("/rs/");
    cluster.kill(0);
    cluster.restart(0);
    cluster.wait_healthy();
    assert_eq!(cluster.keys("/rs/"), keys_before, "both keep their place");
    fs::write(&go, "").unwrap();
    assert_eq!(
        wait_exit(&mut holder, SOON).code(),
        Some(0),
        "the holder kept its lock"
    );
    assert_eq!(
        wait_exit(&mut waiter, SOON).code(),
        Some(0),
        "the waiter got the lock"
    );
    cluster.assert_clean_within(Duration::from_millis(1500));
}
