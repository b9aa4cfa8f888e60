//! No input, environment or broken pipe makes etcdlock abort or leave a lock behind (issue 11):
//! a property test over the CLI surface against a real etcd, the safety net for panics, and one
//! test per case that used to panic, abort or mislead.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};

use crate::common::*;

fn run(cmd: Command) -> (Option<i32>, String, String) {
    run_text(cmd, SOON)
}

/// One `etcdlock:` line, nothing else, and the documented code.
fn assert_usage(out: (Option<i32>, String, String), what: &str) {
    let (code, _, err) = out;
    assert_eq!(code, Some(2), "{what}: {err}");
    assert!(err.starts_with("etcdlock: error: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn durations_and_zeros_are_checked_at_parse_time() {
    let (cluster, ep) = etcd();
    for flags in [
        ["--progress-interval", "0s"],
        ["--max-runtime", "9223372036854775807s"],
        ["-w", "18446744073709551615s"],
        ["--min-hold", "18446744073709551615s"],
        ["--dial-timeout", "18446744073709551615s"],
        ["--kill-after", "18446744073709551615s"],
        ["--dial-timeout", "0"],
        ["--ttl", "1e400"],
    ] {
        let mut cmd = etcdlock_at(&ep);
        cmd.arg("run").args(flags).args(["/d", "--", "true"]);
        assert_usage(run(cmd), &flags.join(" "));
    }
    // flock and etcdctl habits: plain seconds.
    let mut cmd = etcdlock_at(&ep);
    cmd.args([
        "run",
        "-w",
        "5",
        "--ttl",
        "5",
        "--min-hold",
        "0.2",
        "/d",
        "--",
        "true",
    ]);
    let started = Instant::now();
    assert_eq!(run(cmd).0, Some(0));
    assert!(started.elapsed() >= Duration::from_millis(200));
    // --max-runtime 0 is "no limit", as in timeout(1).
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["run", "--max-runtime", "0", "/d", "--", "sleep", "1.2"]);
    assert_eq!(run(cmd).0, Some(0));
    cluster.assert_clean_now();
}

#[test]
fn bad_settings_are_usage_errors_before_any_etcd_call() {
    // Nothing listens at the endpoint: every case must fail before it would matter.
    let dead = "http://127.0.0.1:9";
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    fs::write(&not_pem, "hello\n").unwrap();
    let pw = dir.path().join("pw");
    fs::write(&pw, "secret\n").unwrap();
    let missing_dir = dir.path().join("no/such/dir/m.prom");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--metrics-file".into(), missing_dir.display().to_string()],
            "does not exist",
        ),
        (
            vec!["--password-file".into(), pw.display().to_string()],
            "needs a user",
        ),
        (
            vec!["--cacert".into(), not_pem.display().to_string()],
            "does not hold PEM",
        ),
        (
            vec![
                "--cert".into(),
                not_pem.display().to_string(),
                "--key".into(),
                not_pem.display().to_string(),
            ],
            "does not hold PEM",
        ),
    ];
    for (flags, expect) in cases {
        let mut cmd = etcdlock_at(dead);
        cmd.arg("run").args(&flags).args(["/x", "--", "true"]);
        let out = run(cmd);
        assert!(out.2.contains(expect), "{flags:?}: {}", out.2);
        assert_usage(out, &flags.join(" "));
    }
    let mut cmd = etcdlock_at("http://user:pw@127.0.0.1:9");
    cmd.args(["run", "/x", "--", "true"]);
    let out = run(cmd);
    assert!(out.2.contains("credentials in endpoint URLs"), "{}", out.2);
    assert_usage(out, "userinfo");
    let mut cmd = etcdlock_command();
    cmd.env("ETCDLOCK_ENDPOINTS", "")
        .args(["run", "/x", "--", "true"]);
    let out = run(cmd);
    assert!(
        out.2.contains("ETCDLOCK_ENDPOINTS is set but empty"),
        "{}",
        out.2
    );
    assert_usage(out, "empty ETCDLOCK_ENDPOINTS");
    let mut cmd = etcdlock_at(dead);
    cmd.args(["run", "a\n\nb", "--", "true"]);
    let out = run(cmd);
    assert!(out.2.contains("'a\\n\\nb'"), "{}", out.2);
    assert_eq!(out.2.lines().count(), 2, "{}", out.2);
    assert_usage(out, "newline in the name");
}

#[test]
fn an_etcdctl_setup_for_another_cluster_does_not_get_in_the_way() {
    let (cluster, ep) = etcd();
    // Credentials against an etcd without authentication: a warning, then on (as etcdctl).
    let mut cmd = etcdlock_at(&ep);
    cmd.env("ETCDCTL_USER", "root:x")
        .args(["run", "/u", "--", "echo", "ran"]);
    let (code, out, err) = run(cmd);
    assert_eq!((code, out.as_str()), (Some(0), "ran\n"), "{err}");
    assert!(err.contains("authentication disabled"), "{err}");
    // Spaces after commas in an endpoint list.
    let mut cmd = etcdlock_at(&format!("{ep}, {ep}"));
    cmd.args(["run", "/u", "--", "true"]);
    assert_eq!(run(cmd).0, Some(0));
    let mut cmd = etcdlock_command();
    cmd.env("ETCDLOCK_ENDPOINTS", format!("{ep} , {ep}"))
        .args(["run", "/u", "--", "true"]);
    assert_eq!(run(cmd).0, Some(0));
    cluster.assert_clean_now();
}

#[test]
fn logs_are_plain_off_a_terminal_and_a_lost_lock_is_one_line() {
    let (cluster, ep) = etcd();
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["-vv", "run", "/log", "--", "true"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, Some(0));
    assert!(err.contains("lock acquired"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "colour codes off a terminal: {err:?}"
    );
    // A lost lock without -v: exactly one line, from etcdlock, no tracing WARN.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let errfile = dir.path().join("err");
    let mut holder = etcdlock_sh(
        &ep,
        &["--ttl", "3s"],
        "/log",
        &format!("echo $$ > {}; exec sleep 60", pidfile.display()),
    )
    .stderr(fs::File::create(&errfile).unwrap())
    .spawn()
    .unwrap();
    read_pid_file(&pidfile, SOON);
    cluster.stop(0);
    let status = wait_exit(&mut holder, SOON);
    cluster.cont(0);
    assert_eq!(status.code(), Some(70));
    let text = fs::read_to_string(&errfile).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("etcdlock: lock /log lost: "), "{text}");
    cluster.assert_clean_within(Duration::from_secs(8));
}

#[test]
fn a_waiter_with_a_closed_stderr_leaves_nothing_behind() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    let mut holder = Hold::run(&ep, &[], "/pipe", &release).queued(&cluster);
    // stderr is a pipe whose reader is gone: every progress line hits EPIPE.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let mut waiter = etcdlock_at(&ep)
        .args([
            "run",
            "--progress-interval",
            "100ms",
            "-v",
            "/pipe",
            "--",
            "true",
        ])
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    cluster.wait_keys("/pipe/", 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(let_go(&mut holder, &release).code(), Some(0));
    assert_eq!(wait_exit(&mut waiter, SOON).code(), Some(0));
    cluster.assert_clean_now();
    // And stdout: a reader that stops early is not an error.
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["list"]);
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let status = cmd.stdout(Stdio::from(writer)).status().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Started with descriptors 0 and 1 closed (as some daemons and job runners start their
/// children), etcdlock opens `/dev/null` on them before anything else (`main`'s `standard_fds`,
/// which Rust's start-up did before `no_main`): none of its own files or sockets lands on them,
/// and the command gets `/dev/null` as its standard input and output.
#[test]
fn closed_standard_descriptors_become_dev_null_for_the_command() {
    use std::os::unix::process::CommandExt;
    let (cluster, ep, dir) = etcd_with_dir();
    let seen = dir.path().join("fds");
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["run", "/fds", "--", "sh", "-c"])
        // Through a pipe: dash makes a simple command's redirections in the shell itself, which
        // would change the very descriptor read; a pipeline's are made in its children.
        .arg("readlink /proc/$$/fd/0 /proc/$$/fd/1 2>&1 | cat > \"$0\"")
        .arg(&seen)
        .stderr(Stdio::null());
    // SAFETY: close is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::close(0);
            nix::libc::close(1);
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(0));
    let text = fs::read_to_string(&seen).unwrap();
    assert_eq!(
        text, "/dev/null\n/dev/null\n",
        "the command's stdin and stdout"
    );
    cluster.assert_clean_now();
}

#[test]
fn what_the_lock_key_records_of_the_command_is_chosen_by_the_user() {
    let (cluster, ep) = etcd();
    for (mode, expect) in [
        (
            "full",
            serde_json::json!(["sh", "-c", "cat \"$0\"; sleep 0.3", "SECRET"]),
        ),
        ("program", serde_json::json!(["sh"])),
        ("none", serde_json::json!([])),
    ] {
        let mut holder = etcdlock_at(&ep)
            .args(["run", "--record-command", mode, "/rec", "--"])
            .args(["sh", "-c", "cat \"$0\"; sleep 0.3", "SECRET"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut value = None;
        wait_until("the holder's key", SOON, || {
            value = cluster.keys("/rec/").first().and_then(|k| cluster.get(k));
            value.is_some()
        });
        let v: serde_json::Value = serde_json::from_str(&value.unwrap()).unwrap();
        assert_eq!(v["command"], expect, "{mode}");
        assert_eq!(wait_exit(&mut holder, SOON).code(), Some(0));
    }
}

#[test]
fn a_panic_kills_the_tree_and_revokes_the_lease() {
    let (cluster, ep, dir) = etcd_with_dir();
    let pidfile = dir.path().join("pid");
    // While running: the command and a setsid descendant die, the lease is revoked at once
    // (TTL 10 s: an expiry could not pass the 1.5 s bound below).
    let mut cmd = etcdlock_sh(
        &ep,
        &[],
        "/panic",
        &format!(
            "setsid -f sh -c 'echo $$ > {}; exec sleep 60'; sleep 60",
            pidfile.display()
        ),
    );
    cmd.env("ETCDLOCK_TEST_PANIC", "running");
    let (code, _, err) = run(cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("etcdlock: internal error"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let descendant = read_pid_file(&pidfile, SOON);
    assert!(
        !pid_alive(descendant),
        "the command's descendant survived the panic"
    );
    cluster.assert_clean_now();

    // While waiting: the waiter's key and lease go, the holder is untouched.
    let release = dir.path().join("release");
    let mut holder = Hold::run(&ep, &[], "/panic", &release).queued(&cluster);
    let mut cmd = etcdlock_at(&ep);
    cmd.env("ETCDLOCK_TEST_PANIC", "waiting")
        .args(["run", "/panic", "--", "true"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, Some(1), "{err}");
    wait_until(
        "the waiter's key to go",
        Duration::from_millis(1500),
        || cluster.keys("/panic/").len() == 1,
    );
    assert_eq!(let_go(&mut holder, &release).code(), Some(0));
    cluster.assert_clean_now();
}

/// Values worth trying for each kind of option: valid, boundary and nonsense.
fn duration() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "0s",
        "1",
        "0.5",
        "2s",
        "1ns",
        "-1s",
        "abc",
        "",
        "1e400",
        "100years",
        "101years",
        "18446744073709551615s",
        "9223372036854775807s",
        "3000000000s",
    ])
    .prop_map(str::to_owned)
}

/// Short durations only, for options that would make a valid run wait that long.
fn short_duration() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "0s",
        "300ms",
        "1",
        "-1s",
        "x",
        "18446744073709551615s",
    ])
    .prop_map(str::to_owned)
}

fn flag() -> impl Strategy<Value = Vec<String>> {
    let v = |name: &'static str, values: Vec<&'static str>| {
        prop::sample::select(values).prop_map(move |x| vec![name.to_owned(), x.to_owned()])
    };
    prop_oneof![
        Just(vec!["-n".to_owned()]),
        short_duration().prop_map(|d| vec!["-w".to_owned(), d]),
        duration().prop_map(|d| vec!["--ttl".to_owned(), d]),
        duration().prop_map(|d| vec!["--kill-after".to_owned(), d]),
        duration().prop_map(|d| vec!["--max-runtime".to_owned(), d]),
        short_duration().prop_map(|d| vec!["--min-hold".to_owned(), d]),
        duration().prop_map(|d| vec!["--progress-interval".to_owned(), d]),
        short_duration().prop_map(|d| vec!["--dial-timeout".to_owned(), d]),
        v("--limit", vec!["0", "1", "2", "4294967296", "-1", "x"]),
        v("-E", vec!["0", "9", "75", "256", "-1"]),
        v(
            "--kill-signal",
            vec!["TERM", "KILL", "0", "99", "foo", "sigint"]
        ),
        v("--meta", vec!["k=v", "=v", "k", "k=", "a=b=c"]),
        v("--record-command", vec!["full", "program", "none", "all"]),
        v("--log-format", vec!["text", "json", "xml"]),
        Just(vec!["-v".to_owned()]),
        Just(vec!["-q".to_owned()]),
        Just(vec!["--kill-leftovers".to_owned()]),
    ]
}

fn case() -> impl Strategy<Value = (Vec<Vec<String>>, &'static str, usize)> {
    (
        prop::collection::vec(flag(), 0..5),
        prop::sample::select(vec!["/p", "/held", "", "a\nb", "/x/", "a b", "/deep/er/"]),
        0..4usize,
    )
}

/// Run a case; its outcome must be a documented exit code without a panic, leaving no key or
/// lease of its own behind.
fn check_case(ep: &str, flags: &[Vec<String>], name: &str, command: usize) -> Result<(), String> {
    let commands: [&[&str]; 4] = [
        &["true"],
        &["sh", "-c", "exit 3"],
        &["no-such-command-xyz"],
        &["sh", "-c", "setsid -f sleep 0.3; exit 0"],
    ];
    let mut cmd = etcdlock_at(ep);
    cmd.arg("run");
    for f in flags {
        cmd.args(f);
    }
    if name == "/held" {
        // Never wait long for the lock the test holds.
        cmd.env("ETCDLOCK_DIAL_TIMEOUT", "2s");
    }
    cmd.arg(name).arg("--").args(commands[command]);
    let started = Instant::now();
    let (code, _, err) = run(cmd);
    let documented = [0, 2, 3, 9, 69, 70, 75, 124, 126, 127];
    let ok = code.is_some_and(|c| documented.contains(&c)) && !err.contains("panicked");
    if !ok {
        return Err(format!(
            "exit {code:?} after {:?}: {err}",
            started.elapsed()
        ));
    }
    Ok(())
}

#[test]
fn property_no_input_panics_or_leaves_a_lock_behind() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    let mut holder = Hold::run(&ep, &[], "/held", &release).queued(&cluster);
    let baseline = gateway_keys_and_leases(&ep);
    let cases = std::env::var("ETCDLOCK_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    let mut runner = TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let started = Instant::now();
    let result = runner.run(&case(), |(flags, name, command)| {
        // A case whose waits are bounded: -w on the held lock only with a short value.
        let waits_forever = name == "/held" && !flags.iter().any(|f| f[0] == "-n" || f[0] == "-w");
        let mut flags = flags;
        if waits_forever {
            flags.push(vec!["-w".into(), "300ms".into()]);
        }
        check_case(&ep, &flags, name, command).map_err(TestCaseError::fail)?;
        let left = poll_until(Duration::from_millis(1500), || {
            gateway_keys_and_leases(&ep) == baseline
        });
        prop_assert!(left, "keys or leases left behind by {flags:?} {name:?}");
        Ok(())
    });
    eprintln!("property test: {cases} cases in {:?}", started.elapsed());
    assert_eq!(let_go(&mut holder, &release).code(), Some(0));
    if let Err(e) = result {
        panic!("{e}");
    }
}
