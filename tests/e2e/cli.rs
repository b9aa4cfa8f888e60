//! Bad input: every mistake is one `etcdlock: error:` line (for usage errors followed by at most
//! three indented lines: clap's suggestions and which --help to read) and a documented exit
//! code, never a panic.

use std::time::Duration;

use etcdlock_testkit::{etcdlock_command, run_with_timeout};

fn etcdlock(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = etcdlock_command();
    // Nothing listens here: every case must fail before it would matter.
    cmd.args(["--endpoints", "http://127.0.0.1:9", "--dial-timeout", "1s"])
        .args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(20));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line(args: &[&str], code: i32, needle: &str) {
    let (got, stderr) = etcdlock(args);
    assert_eq!(got, Some(code), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        (1..=4).contains(&lines.len()) && lines[1..].iter().all(|l| l.starts_with("  ")),
        "{args:?}: expected one error line and at most three hints, got {stderr:?}"
    );
    assert!(
        stderr.starts_with("etcdlock: error: "),
        "{args:?}: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn usage_errors_keep_the_suggestions_and_name_the_right_help() {
    let (code, err) = etcdlock(&["rn", "x", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("tip: a similar subcommand exists: 'run'"),
        "{err}"
    );
    assert!(err.ends_with("(see etcdlock --help)\n"), "{err}");
    let (code, err) = etcdlock(&["run", "--endpoint", "http://a:1", "x", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("a similar argument exists: '--endpoints'"),
        "{err}"
    );
    assert!(err.ends_with("(see etcdlock run --help)\n"), "{err}");
    let (code, err) = etcdlock(&["-n", "run", "x", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("-n is an option of 'run'"), "{err}");
    assert!(err.lines().count() <= 4, "{err}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    assert_one_line(&["run", "", "--", "true"], 2, "must not be empty");
    assert_one_line(&["run", "a\nb", "--", "true"], 2, "control characters");
    assert_one_line(&["run", "--ttl", "abc", "x", "--", "true"], 2, "--ttl");
    assert_one_line(&["run", "--ttl", "0s", "x", "--", "true"], 2, "at least 2s");
    assert_one_line(&["run", "--ttl", "-5s", "x", "--", "true"], 2, "negative");
    assert_one_line(
        &["run", "--ttl", "1ns", "x", "--", "true"],
        2,
        "whole seconds",
    );
    assert_one_line(
        &["run", "--ttl", "100000000000000s", "x", "--", "true"],
        2,
        "--ttl",
    );
    assert_one_line(
        &[
            "run",
            "--ttl",
            "10s",
            "--kill-after",
            "5s",
            "x",
            "--",
            "true",
        ],
        2,
        "half the TTL",
    );
    assert_one_line(
        &["run", "--kill-signal", "NOPE", "x", "--", "true"],
        2,
        "unknown signal",
    );
    assert_one_line(&["run", "x"], 2, "<COMMAND>");
    assert_one_line(&["frobnicate"], 2, "unrecognized subcommand");
    assert_one_line(&["run", "--limit", "0", "x", "--", "true"], 2, "--limit");
    assert_one_line(&["run", "-E", "300", "x", "--", "true"], 2, "300");
    assert_one_line(&["run", "-w", "soon", "x", "--", "true"], 2, "--timeout");
    assert_one_line(
        &["run", "-n", "-w", "1s", "x", "--", "true"],
        2,
        "cannot be used with",
    );
    assert_one_line(
        &["run", "--meta", "novalue", "x", "--", "true"],
        2,
        "KEY=VALUE",
    );
    assert_one_line(
        &["run", "x", "-c", "true", "--", "true"],
        2,
        "cannot be used with",
    );
    assert_one_line(
        &[
            "--cacert",
            "/nonexistent.pem",
            "--endpoints",
            "https://127.0.0.1:9",
            "run",
            "x",
            "--",
            "true",
        ],
        2,
        "/nonexistent.pem",
    );
    assert_one_line(&["--cert", "/c.pem", "run", "x", "--", "true"], 2, "--key");
    assert_one_line(
        &["--user", "bob", "run", "x", "--", "true"],
        2,
        "no password",
    );
    assert_one_line(
        &["--dial-timeout", "soon", "run", "x", "--", "true"],
        2,
        "--dial-timeout",
    );
    assert_one_line(
        &["--endpoints", "ftp://x:1", "run", "x", "--", "true"],
        2,
        "invalid endpoint",
    );
    assert_one_line(
        &["--endpoints", "http://host", "run", "x", "--", "true"],
        2,
        "no port",
    );
}

#[test]
fn exec_problems_are_reported_before_touching_etcd() {
    // The endpoint is unreachable, so reaching etcd first would give 69 after the dial timeout.
    assert_one_line(
        &["run", "x", "--", "no-such-command-etcdlock"],
        127,
        "command not found",
    );
    assert_one_line(&["run", "x", "--", "/"], 126, "is a directory");
}

#[test]
fn unreachable_etcd_is_69() {
    assert_one_line(&["run", "x", "--", "true"], 69, "cannot reach etcd");
}

#[test]
fn help_documents_exit_codes_and_examples() {
    let out = run_with_timeout(
        {
            let mut c = etcdlock_command();
            c.args(["run", "--help"]);
            c
        },
        Duration::from_secs(20),
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "Exit codes:",
        "70",
        "69",
        "127",
        "crontab",
        "ETCDLOCK_FENCING_TOKEN",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}");
    }
}
