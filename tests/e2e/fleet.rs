//! Cron across a fleet (issue 13): `--once-per` runs a job once per period whichever host fires
//! first, every run leaves a record beside the lock, and losers cost etcd no write.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;

use crate::common::*;

/// A "host" firing the job: append a line to `ran` (so runs can be counted), then `script`.
fn fire(ep: &str, opts: &[&str], name: &str, ran: &Path, script: &str) -> Child {
    let script = format!("echo run >> {}; {script}", ran.display());
    etcdlock_sh(ep, opts, name, &script)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// [`fire`] and wait for the host to finish: its exit code.
fn fire_and_wait(ep: &str, opts: &[&str], name: &str, ran: &Path, script: &str) -> Option<i32> {
    wait_exit(&mut fire(ep, opts, name, ran, script), SOON).code()
}

fn runs(ran: &Path) -> usize {
    read(ran).lines().count()
}

#[test]
fn once_per_runs_the_job_once_whichever_hosts_fire() {
    let (cluster, ep, dir) = etcd_with_dir();
    for (mode, opts) in [
        ("waiting", &["--once-per", "1h"][..]),
        ("-n", &["--once-per", "1h", "-n", "-E", "0"][..]),
    ] {
        let ran = dir
            .path()
            .join(format!("ran-{}", mode.trim_start_matches('-')));
        let name = format!("/fleet/{}", mode.trim_start_matches('-'));
        let mut hosts: Vec<Child> = (0..8)
            .map(|_| fire(&ep, opts, &name, &ran, "sleep 0.3"))
            .collect();
        for h in &mut hosts {
            assert_eq!(wait_exit(h, SOON).code(), Some(0), "{mode}");
        }
        assert_eq!(runs(&ran), 1, "{mode}: the job ran {} times", runs(&ran));
        // A host firing later in the same period skips too, silently.
        let (code, out, err) = etcdlock_out(
            &ep,
            &["run", "--once-per", "1h", &name, "--", "echo", "ran"],
        );
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (Some(0), "", ""),
            "{mode}"
        );
        // etcdctl lock on the same name is not affected by the marker.
        let out = cluster.etcdctl(&["lock", &name, "--", "echo", "ctl"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ctl\n");
    }
}

#[test]
fn a_failed_run_is_retried_and_the_period_ends_by_etcds_clock() {
    let (mut cluster, ep, dir) = etcd_with_dir();
    let ran = dir.path().join("ran");
    let opts = ["--once-per", "3s"];
    assert_eq!(fire_and_wait(&ep, &opts, "/retry", &ran, "exit 4"), Some(4));
    assert_eq!(fire_and_wait(&ep, &opts, "/retry", &ran, "true"), Some(0));
    assert_eq!(runs(&ran), 2, "a failed run must not count");
    assert_eq!(fire_and_wait(&ep, &opts, "/retry", &ran, "true"), Some(0));
    assert_eq!(runs(&ran), 2, "ran twice in one period");
    // The marker survives an etcd restart.
    cluster.kill(0);
    cluster.restart(0);
    cluster.wait_healthy();
    assert_eq!(fire_and_wait(&ep, &opts, "/retry", &ran, "true"), Some(0));
    assert_eq!(runs(&ran), 2, "the marker was lost in the restart");
    let status = status_json(&ep, "/retry");
    assert!(
        status["next_run_allowed_in_s"].as_i64().is_some(),
        "{status}"
    );
    // After the period (etcd's lease timer) a new run happens.
    wait_until("the period to end", SOON, || {
        fire_and_wait(&ep, &opts, "/retry", &ran, "true");
        runs(&ran) == 3
    });
    // forget clears the marker and the records.
    let (code, out, _) = etcdlock_out(&ep, &["forget", "/retry"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _, err) = etcdlock_out(&ep, &["forget", "/retry"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(fire_and_wait(&ep, &opts, "/retry", &ran, "true"), Some(0));
    assert_eq!(runs(&ran), 4, "forget did not clear the marker");
}

/// The period counts from the start of the successful run, not its end: with `*/5` in cron and
/// `--once-per 4m`, a long run must not make the next slot's firings skip.
#[test]
fn the_period_counts_from_the_start_of_the_run() {
    let (_cluster, ep, dir) = etcd_with_dir();
    let ran = dir.path().join("ran");
    let opts = ["--once-per", "4s"];
    let fired = Instant::now();
    assert_eq!(
        fire_and_wait(&ep, &opts, "/slot", &ran, "sleep 2.5"),
        Some(0)
    );
    // The marker lives for what is left of the period after the 2.5 s run: at most 2 s (whole
    // seconds, rounded up), where a period counted from the end would leave 4 s. etcd's own
    // count, read after the run: no wall-clock bound that a slow machine could break.
    let left = status_json(&ep, "/slot")["next_run_allowed_in_s"].clone();
    assert!(
        left.as_i64().is_some_and(|s| (0..=2).contains(&s)),
        "the period counted from the end of the run: next run allowed in {left}s"
    );
    assert_eq!(fire_and_wait(&ep, &opts, "/slot", &ran, "true"), Some(0));
    assert_eq!(runs(&ran), 1, "ran again within the period");
    wait_until("the next run", SOON, || {
        fire_and_wait(&ep, &opts, "/slot", &ran, "true");
        runs(&ran) == 2
    });
    let from_start = fired.elapsed();
    assert!(
        from_start >= Duration::from_secs(4),
        "early: {from_start:?}"
    );
}

#[test]
fn every_run_leaves_a_record_beside_the_lock() {
    let (cluster, ep) = etcd();
    let (code, _, _) = etcdlock_out(&ep, &["run", "/rec", "--", "true"]);
    assert_eq!(code, Some(0));
    let first = status_json(&ep, "/rec");
    let success = first["last_success"].clone();
    for field in [
        "host",
        "pid",
        "user",
        "command",
        "started_at",
        "ended_at",
        "duration",
        "exit_code",
        "fencing_token",
        "lost",
    ] {
        assert!(!success[field].is_null(), "{field} missing: {first}");
    }
    assert_eq!(first["last_run"], success);
    // A failure, a timeout and a lost lock: last run changes, last success does not.
    let (code, _, _) = etcdlock_out(&ep, &["run", "/rec", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code, Some(5));
    assert_eq!(status_json(&ep, "/rec")["last_run"]["exit_code"], 5);
    let (code, _, _) = etcdlock_out(
        &ep,
        &["run", "--max-runtime", "200ms", "/rec", "--", "sleep", "5"],
    );
    assert_eq!(code, Some(124));
    assert_eq!(status_json(&ep, "/rec")["last_run"]["exit_code"], 124);
    let mut holder = etcdlock_at(&ep)
        .args(["run", "/rec", "--", "sleep", "30"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cluster.wait_keys("/rec/", 1);
    let (code, _, _) = etcdlock_out(&ep, &["break", "--yes", "/rec"]);
    assert_eq!(code, Some(0));
    assert_eq!(wait_exit(&mut holder, SOON).code(), Some(70));
    let status = status_json(&ep, "/rec");
    assert_eq!(status["last_run"]["lost"], true, "{status}");
    assert_eq!(status["last_run"]["exit_code"], 70);
    assert_eq!(status["last_success"], success);
    // Text forms: status says when and where; list has a last-run column.
    let (_, out, _) = etcdlock_out(&ep, &["status", "/rec"]);
    assert!(
        out.contains("last run: ") && out.contains(", exit 70, lock lost, "),
        "{out}"
    );
    assert!(
        out.contains("last success: ") && out.contains(", exit 0, "),
        "{out}"
    );
    let (_, out, _) = etcdlock_out(&ep, &["list"]);
    assert!(out.contains("LAST RUN") && out.contains("exit 70"), "{out}");
    // Nothing is left in etcd but the records themselves, and none under the lock's prefix.
    wait_until("the lease to go", SOON, || cluster.leases().is_empty());
    let mut keys = cluster.keys("");
    keys.sort();
    assert_eq!(
        keys,
        [
            ".etcdlock/v1//rec/last-run",
            ".etcdlock/v1//rec/last-success"
        ]
    );
}

/// A lock lost during `--min-hold`, after the command ended, is a lost run like one lost while
/// the command runs: `last-run` says lost, `last-success` keeps the previous success (the key was
/// gone, so a later holder may already have written its own records). The exit code stays the
/// command's.
#[test]
fn a_lock_lost_during_min_hold_is_recorded_as_lost() {
    let (cluster, ep) = etcd();
    let (code, _, _) = etcdlock_out(&ep, &["run", "/recmh", "--", "true"]);
    assert_eq!(code, Some(0));
    let success = status_json(&ep, "/recmh")["last_success"].clone();
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err");
    let mut holder = etcdlock_at(&ep)
        .args(["-v", "run", "--min-hold", "60s", "/recmh", "--", "true"])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    wait_until("the command to end and --min-hold to begin", SOON, || {
        read(&err).contains("holding the lock for min_hold")
    });
    cluster.wait_keys("/recmh/", 1);
    let (code, _, _) = etcdlock_out(&ep, &["break", "--yes", "/recmh"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        wait_exit(&mut holder, SOON).code(),
        Some(0),
        "{}",
        read(&err)
    );
    let status = status_json(&ep, "/recmh");
    assert_eq!(status["last_run"]["lost"], true, "{status}");
    assert_eq!(status["last_run"]["exit_code"], 0, "{status}");
    assert_eq!(status["last_success"], success, "{status}");
}

/// etcd's count of committed raft proposals (every write is one).
fn proposals(ep: &str) -> u64 {
    etcd_metrics(ep.trim_start_matches("http://"))
        .lines()
        .find(|l| l.starts_with("etcd_server_proposals_committed_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn losers_make_no_writes() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    let mut holder = Hold::run(&ep, &["--once-per", "1h"], "/busy", &release)
        .stderr(Stdio::null())
        .queued(&cluster);
    let before = proposals(&ep);
    for _ in 0..20 {
        let (code, _, _) = etcdlock_out(&ep, &["run", "-n", "/busy", "--", "true"]);
        assert_eq!(code, Some(75));
    }
    let held = proposals(&ep) - before;
    assert!(held <= 2, "20 -n losers committed {held} proposals");
    assert_eq!(let_go(&mut holder, &release).code(), Some(0));
    // With the period's marker in place, --once-per losers make no write either.
    let before = proposals(&ep);
    for _ in 0..20 {
        let (code, _, _) = etcdlock_out(&ep, &["run", "--once-per", "1h", "/busy", "--", "true"]);
        assert_eq!(code, Some(0));
    }
    let marked = proposals(&ep) - before;
    assert!(
        marked <= 2,
        "20 --once-per losers committed {marked} proposals"
    );
}

/// A gauge or counter from etcd's /metrics (0 when absent).
fn metric(ep: &str, name: &str) -> u64 {
    let addr = ep.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Issue 25: 200 hosts firing one `--once-per` job while it runs cost etcd no write: each waits
/// as a herd (a watch on the holder's key and the marker, no lease, no queue key) and skips when
/// the marker appears.
#[test]
fn a_herd_waiting_for_a_running_job_makes_no_writes() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (ran, release) = (dir.path().join("ran"), dir.path().join("release"));
    let opts = ["--once-per", "1h"];
    let mut holder = Hold::run(&ep, &opts, "/herd", &release)
        .stderr(Stdio::null())
        .queued(&cluster);
    let watchers = metric(&ep, "etcd_debugging_mvcc_watcher_total");
    let before = proposals(&ep);
    let mut hosts: Vec<Child> = (0..200)
        .map(|_| fire(&ep, &opts, "/herd", &ran, "true"))
        .collect();
    // Every host waits when it watches two keys (the holder's and the marker).
    wait_until("200 hosts watching", Duration::from_secs(120), || {
        metric(&ep, "etcd_debugging_mvcc_watcher_total") >= watchers + 400
    });
    let waiting = proposals(&ep) - before;
    assert_eq!(let_go(&mut holder, &release).code(), Some(0));
    for h in &mut hosts {
        assert_eq!(wait_exit(h, Duration::from_secs(120)).code(), Some(0));
    }
    let spent = proposals(&ep) - before;
    eprintln!("200 --once-per hosts behind a holder: {waiting} proposals waiting, {spent} in all");
    assert_eq!(waiting, 0, "waiting hosts committed {waiting} proposals");
    // The holder's release: its records and marker, the marker's lease, its revoke.
    assert!(
        spent <= 4,
        "200 waiting hosts and the release committed {spent} proposals"
    );
    assert!(!ran.exists(), "a waiting host ran the job");
}

/// Issue 25: 200 hosts firing one `--once-per` job at once: the job runs once, and etcd commits a
/// handful of writes, not three per host (hosts that find the lock free draw a moment to queue
/// and watch meanwhile; those drawn within one queue write of the first still race).
#[test]
fn a_herd_firing_at_once_costs_a_handful_of_proposals() {
    let (_cluster, ep, dir) = etcd_with_dir();
    let ran = dir.path().join("ran");
    let opts = ["--once-per", "1h"];
    let before = proposals(&ep);
    let started = Instant::now();
    let mut hosts: Vec<Child> = (0..200)
        .map(|_| fire(&ep, &opts, "/herd", &ran, "sleep 0.2"))
        .collect();
    for h in &mut hosts {
        assert_eq!(wait_exit(h, Duration::from_secs(120)).code(), Some(0));
    }
    let took = started.elapsed();
    let spent = proposals(&ep) - before;
    eprintln!("200 --once-per hosts at once: {spent} proposals, {took:?}");
    assert_eq!(runs(&ran), 1, "the job ran {} times", runs(&ran));
    // The winner costs 6 (records lease, grant, queue key, marker lease, release, revoke), each
    // racer whose look at the claimed lease came before the winner's grant was applied one
    // refused grant. Measured here: 6 in 7 rounds of 9 and 10 in 2 alone (before the look);
    // 9–31 beside another 200-process test and a bench (CI runs tests in parallel);
    // before the herd 21–801 (three per host that queued). The bound leaves room for that load.
    assert!(
        spent <= 60,
        "200 --once-per hosts committed {spent} proposals"
    );
}

/// A contender that claims the run's lease after another did finds it with a read: no refused
/// grant, which would still be a raft proposal.
#[test]
fn a_claim_made_by_another_contender_costs_no_proposal() {
    let (_cluster, ep, _dir) = etcd_with_dir();
    with_client(&ep, async |client| {
        let look = etcdlock::herd::look(&client, "/claimed").await.unwrap();
        let ttl = Duration::from_secs(30);
        let first = etcdlock::herd::claim(&client, look.claim_id, ttl)
            .await
            .unwrap();
        assert!(first.is_some(), "the first claim is granted");
        let before = proposals(&ep);
        let second = etcdlock::herd::claim(&client, look.claim_id, ttl)
            .await
            .unwrap();
        let spent = proposals(&ep) - before;
        assert!(second.is_none(), "a second claim of the same id is refused");
        assert_eq!(spent, 0, "the refused claim committed {spent} proposals");
    });
}

/// A free lock is never given up on: a `-w` shorter than the herd's settle still runs the job.
#[test]
fn a_short_timeout_on_a_free_lock_still_runs_the_job() {
    let (_cluster, ep, _dir) = etcd_with_dir();
    for w in ["100ms", "0s"] {
        let name = format!("/free-{w}");
        let (code, out, err) = etcdlock_out(
            &ep,
            &[
                "run",
                "--once-per",
                "1h",
                "-w",
                w,
                &name,
                "--",
                "echo",
                "ran",
            ],
        );
        assert_eq!((code, out.as_str()), (Some(0), "ran\n"), "-w {w}: {err}");
    }
}
