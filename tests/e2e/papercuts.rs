//! What a new user hit (issue 23): messages that say what is true, names that are missing or
//! mistyped, outputs that stay readable, and a nested run that would wait for ever.

use std::fs;
use std::process::Stdio;

use etcdlock_testkit::*;

use crate::common::*;

/// `etcdlock ARGS` against an endpoint where nothing listens: (exit code, stdout, stderr).
fn offline(args: &[&str]) -> (Option<i32>, String, String) {
    etcdlock_out(
        "http://127.0.0.1:9",
        &[&["--dial-timeout", "1s"], args].concat(),
    )
}

#[test]
fn usage_messages_name_what_is_wrong() {
    // The first word after -- is the command: NAME is what is missing.
    for args in [
        &["run", "--", "ls"][..],
        &["run", "--", "ls", "-la"][..],
        &["run", "-w", "5", "--", "ls"][..],
    ] {
        let (code, _, err) = offline(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("etcdlock: error: the lock NAME is missing"),
            "{args:?}: {err}"
        );
    }
    // --once-per's limits are about the period, not a TTL the user never gave.
    let (code, _, err) = offline(&["run", "--once-per", "0", "/x", "--", "true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the period must be at least 2s"), "{err}");
    assert!(!err.contains("TTL must"), "{err}");
    // No `[env: NAME=]` with an empty value.
    let (code, help, _) = offline(&["run", "--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("[env: ETCDLOCK_RECORD_COMMAND]"), "{help}");
    assert!(!help.contains("=]"), "{help}");
    // Hidden subcommands stay out of every completion script.
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = offline(&["completions", shell]);
        assert_eq!(code, Some(0), "{err}");
        assert!(script.contains("forget"), "{shell}");
        assert!(
            !script.contains("internal-reap"),
            "{shell} offers internal-reap"
        );
    }
}

#[test]
fn a_shared_request_granted_at_once_says_nothing() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/sh", &["--shared"], dir.path(), "s");
    for _ in 0..3 {
        let (code, _, err) = etcdlock_out(
            &ep,
            &[
                "run",
                "--shared",
                "--progress-interval",
                "1s",
                "/sh",
                "--",
                "true",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(err, "", "a shared join granted at once printed progress");
    }
    assert!(let_go(&mut holder, &go).success());
    cluster.assert_clean_now();
}

#[test]
fn once_per_skippers_never_say_acquired_and_w0_names_its_flag() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/op", &["--once-per", "1h"], dir.path(), "op");
    // -w 0 gives up at once, naming the flag given.
    let (code, _, err) = etcdlock_out(&ep, &["run", "-w", "0", "/op", "--", "true"]);
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("giving up (--timeout 0s)"), "{err}");
    assert!(!err.contains("--no-wait"), "{err}");
    // A second host waits, then finds the first one's success: it skips, and says so.
    let log = dir.path().join("waiter.err");
    let ran = dir.path().join("ran");
    let mut waiter = spawn_etcdlock(
        &ep,
        &[
            "run",
            "--once-per",
            "1h",
            "/op",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ],
        Stdio::from(fs::File::create(&log).unwrap()),
    );
    wait_until("the waiter to say it waits", SOON, || {
        read(&log).contains("waiting for /op")
    });
    assert!(let_go(&mut holder, &go).success());
    assert!(wait_exit(&mut waiter, SOON).success());
    let err = read(&log);
    assert!(!ran.exists(), "the command ran within the period");
    assert!(!err.contains("acquired"), "{err}");
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.ends_with("skipping (--once-per)")),
        "{err}"
    );
    // The period's marker stays (on its own lease); no lock key does.
    assert!(
        cluster.keys("/op/").is_empty(),
        "{:?}",
        cluster.keys("/op/")
    );
}

#[test]
fn status_of_a_name_with_nothing_says_so_and_suggests_a_close_one() {
    let (cluster, ep) = etcd();
    let (code, _, _) = etcdlock_out(&ep, &["run", "/jobs/backup", "--", "true"]);
    assert_eq!(code, Some(0));
    let (code, out, err) = etcdlock_out(&ep, &["status", "/jobs/bakup"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "/jobs/bakup: free\n");
    assert!(
        err.contains("nothing in etcd is named /jobs/bakup")
            && err.contains("did you mean /jobs/backup?"),
        "{err}"
    );
    let (code, out, err) = etcdlock_out(&ep, &["status", "/something/else/entirely"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "/something/else/entirely: free\n");
    assert!(
        err.contains("nothing in etcd is named") && err.contains("etcdlock list"),
        "{err}"
    );
    // A name with a record is not "nothing", and --json stays a document only.
    let (_, _, err) = etcdlock_out(&ep, &["status", "/jobs/backup"]);
    assert_eq!(err, "");
    let (code, _, err) = etcdlock_out(&ep, &["status", "--json", "/jobs/bakup"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    cluster.assert_clean_now();
}

#[test]
fn list_cuts_long_names_to_keep_rows_readable() {
    let (cluster, ep) = etcd();
    let long = format!("/jobs/{}/end", "x".repeat(3000));
    for name in [long.as_str(), "/jobs/short"] {
        let (code, _, err) = etcdlock_out(&ep, &["run", name, "--", "true"]);
        assert_eq!(code, Some(0), "{err}");
    }
    let (code, out, err) = etcdlock_out(&ep, &["list"]);
    assert_eq!(code, Some(0), "{err}");
    for line in out.lines() {
        assert!(
            line.chars().count() <= 80,
            "a row of {}: {line}",
            line.len()
        );
    }
    assert!(out.contains("/jobs/xxx") && out.contains("…") && out.contains("x/end "));
    assert!(out.contains("/jobs/short "), "{out}");
    // --json keeps the whole name.
    let (_, json, _) = etcdlock_out(&ep, &["list", "--json"]);
    assert!(json.contains(&long));
    cluster.assert_clean_now();
}

#[test]
fn a_nested_run_on_the_parents_lock_fails_at_once() {
    let (cluster, ep) = etcd();
    let bin = etcdlock_bin();
    let bin = bin.to_str().unwrap();
    let nested = |outer: &[&str], inner: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(outer);
        args.extend(["--", bin, "--endpoints", &ep, "run"]);
        args.extend_from_slice(inner);
        args.extend(["--", "true"]);
        let mut cmd = etcdlock_at(&ep);
        cmd.args(&args);
        run_text(cmd, SOON)
    };
    // Same lock: exit 2 at once (SOON bounds it; before, it waited for ever), with the hint.
    let (code, _, err) = nested(&["/nest"], &["/nest"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("already runs under the lock /nest")
            && err.contains("run the command directly, or lock another name"),
        "{err}"
    );
    // Another lock, or a semaphore with room: fine.
    let (code, _, err) = nested(&["/nest"], &["/other"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = nested(&["--limit", "2", "/sem"], &["--limit", "2", "/sem"]);
    assert_eq!(code, Some(0), "{err}");
    cluster.assert_clean_now();
}

/// etcd's database full (its NOSPACE alarm; here a 4 MiB `--quota-backend-bytes`, filled through
/// the gateway): a run does not start its command, exits 69, and says what is wrong and what
/// to do about it, not only etcd's "database space exceeded".
#[test]
fn a_full_etcd_database_is_named_with_what_to_do() {
    let cluster = Cluster::single_with_args(&["--quota-backend-bytes", "4194304"]);
    let ep = cluster.endpoints();
    let value = base64_encode(&[b'x'; 256 * 1024]);
    let full = (0..64).find_map(|i| {
        let body = format!(
            r#"{{"key":"{}","value":"{value}"}}"#,
            base64_encode(format!("/fill/{i}").as_bytes())
        );
        gateway_post(&ep, "/v3/kv/put", &body)
            .err()
            .filter(|e| e.contains("database space exceeded"))
    });
    assert!(
        full.is_some(),
        "64 puts of 256 KiB did not fill a 4 MiB quota"
    );
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let (code, _, err) = etcdlock_out(
        &ep,
        &["run", "/jobs/full", "--", "touch", ran.to_str().unwrap()],
    );
    assert_eq!(code, Some(69), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("database space exceeded"), "{err}");
    assert!(err.contains("NOSPACE"), "{err}");
    assert!(err.contains("etcdctl alarm disarm"), "{err}");
    assert!(err.contains("--auto-compaction-retention"), "{err}");
    assert!(!ran.exists(), "the command ran");
}
