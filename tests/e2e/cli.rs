//! Bad input: every mistake is one `etcdlock: error:` line (for usage errors followed by at most
//! three indented lines: clap's suggestions and which --help to read) and a documented exit
//! code, never a panic.

use std::time::Duration;

use etcdlock_testkit::{etcdlock_command, etcdlock_out, run_with_timeout};

/// `etcdlock ARGS` against an endpoint where nothing listens (every case must fail before it
/// would matter): (exit code, stderr).
fn etcdlock(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, err) = etcdlock_out(
        "http://127.0.0.1:9",
        &[&["--dial-timeout", "1s"], args].concat(),
    );
    (code, err)
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
    // Options of `run`, given as `run OPTS x -- true`.
    for (opts, needle) in [
        (&["--ttl", "abc"][..], "--ttl"),
        (&["--ttl", "0s"], "at least 2s"),
        (&["--ttl", "-5s"], "negative"),
        (&["--ttl", "1ns"], "whole seconds"),
        (&["--ttl", "100000000000000s"], "--ttl"),
        (&["--ttl", "10s", "--kill-after", "5s"], "half the TTL"),
        (&["--kill-signal", "NOPE"], "unknown signal"),
        (&["--limit", "0"], "--limit"),
        (&["-E", "300"], "300"),
        (&["-w", "soon"], "--timeout"),
        (&["-n", "-w", "1s"], "cannot be used with"),
        (&["--meta", "novalue"], "KEY=VALUE"),
    ] {
        let args = [&["run"], opts, &["x", "--", "true"]].concat();
        assert_one_line(&args, 2, needle);
    }
    // Global options, given as `OPTS run x -- true`.
    for (opts, needle) in [
        (
            &[
                "--cacert",
                "/nonexistent.pem",
                "--endpoints",
                "https://127.0.0.1:9",
            ][..],
            "/nonexistent.pem",
        ),
        (&["--cert", "/c.pem"], "--key"),
        (&["--user", "bob"], "no password"),
        (&["--dial-timeout", "soon"], "--dial-timeout"),
        (&["--endpoints", "ftp://x:1"], "invalid endpoint"),
        (&["--endpoints", "http://host"], "no port"),
    ] {
        let args = [opts, &["run", "x", "--", "true"]].concat();
        assert_one_line(&args, 2, needle);
    }
    // And the rest, as they are.
    for (args, needle) in [
        (&["run", "", "--", "true"][..], "must not be empty"),
        (&["run", "a\nb", "--", "true"], "control characters"),
        (&["run", "x"], "<COMMAND>"),
        (&["frobnicate"], "unrecognized subcommand"),
        (
            &["run", "x", "-c", "true", "--", "true"],
            "cannot be used with",
        ),
    ] {
        assert_one_line(args, 2, needle);
    }
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

/// The binary takes GCC's unwinder from `libgcc_eh.a` (build.rs), so that no start of etcdlock
/// loads `libgcc_s.so.1` (issue 25: 0.1 ms per start). Checked where the toolchain has the
/// archive, as build.rs does; the name of a needed library is stored in the binary's `.dynstr`.
#[test]
fn the_binary_does_not_load_libgcc_s() {
    let archive = std::process::Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert!(
        std::path::Path::new(&archive).is_absolute(),
        "cc has no libgcc_eh.a ({archive:?}): install gcc (Debian: build-essential)"
    );
    let binary = std::fs::read(etcdlock_testkit::etcdlock_bin()).unwrap();
    let needle = b"libgcc_s.so.1";
    assert!(
        !binary.windows(needle.len()).any(|w| w == needle),
        "the etcdlock binary names libgcc_s.so.1: build.rs did not put the unwinder in"
    );
}
