//! What a run leaves in etcd (src/record.rs): run records and once-markers in a namespace of
//! their own, on leases that expire; never under a prefix that `etcdctl lock` or Go's Mutex
//! would wait on (checked with etcdctl 3.4 and 3.5); `forget` deleting exactly one name's keys;
//! records that can be turned off; the etcd grants they need.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use etcdlock_testkit::*;

use crate::common::*;

/// `etcdctl lock NAME -- true` with the given etcdctl binary: whether it got the lock within a
/// few seconds (a lock blocked by a key left behind never does).
fn etcdctl_lock_goes_through(etcdctl: &Path, ep: &str, name: &str) -> bool {
    let mut cmd = Command::new(etcdctl);
    clean_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3")
        .args([&format!("--endpoints={ep}"), "lock", name, "true"]);
    let out = run_with_timeout(cmd, Duration::from_secs(8));
    out.status.success()
}

/// Every way etcdlock touches NAME (runs that succeed and fail, a `--once-per` run, a lost run,
/// a handle, break, forget) leaves nothing that blocks `etcdctl lock` on NAME's parent, on the
/// empty name, on a sibling, on NAME without its trailing slash, or on NAME plus the suffix the
/// records once had, with etcdctl 3.4 and 3.5. At 0e76354 `/jobs` and `` hung for ever after
/// the first run (`/jobs/backup.etcdlock/last-run` under `/jobs/`), and `/t/y` after a run of
/// `/t/y/` (its records went to `/t/y/.etcdlock/`).
#[test]
fn nothing_a_run_leaves_blocks_etcdctl_lock_on_related_names() {
    let (cluster, ep) = etcd();
    let ok = |args: &[&str]| {
        let (code, out, err) = etcdlock_out(&ep, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    ok(&["run", "/jobs/backup", "--", "true"]);
    let (code, _, err) = etcdlock_out(&ep, &["run", "/jobs/backup", "--", "false"]);
    assert_eq!(code, Some(1), "{err}");
    ok(&["run", "--once-per", "1h", "/jobs/backup", "--", "true"]);
    ok(&["run", "/t/y/", "--", "true"]);
    ok(&["run", "--shared", "/jobs/shared", "--", "true"]);
    let handle = ok(&["acquire", "--ttl", "30s", "/jobs/ci"]);
    ok(&["run", "--handle", handle.trim(), "--", "true"]);
    ok(&["release", handle.trim()]);
    // A lost run: its lease revoked from outside while the command runs.
    let mut lost = etcdlock_sh(&ep, &["--ttl", "10s"], "/jobs/lost", "sleep 30")
        .spawn()
        .unwrap();
    cluster.wait_keys("/jobs/lost/", 1);
    let lease = cluster.leases()[0].clone();
    cluster.etcdctl_ok(&["lease", "revoke", &lease]);
    assert_eq!(wait_exit(&mut lost, SOON).code(), Some(70));
    let (code, _, _) = etcdlock_out(&ep, &["break", "--yes", "/jobs/backup"]);
    assert_eq!(code, Some(1), "nothing to break");
    ok(&["forget", "/t/y/"]);

    // What stays is the records (and the once-marker), all in their own namespace.
    let keys = cluster.keys("");
    assert!(
        keys.iter().all(|k| k.starts_with(".etcdlock/v1/")),
        "{keys:?}"
    );
    assert!(keys.contains(&".etcdlock/v1//jobs/backup/once".to_owned()));
    assert!(keys.contains(&".etcdlock/v1//jobs/lost/last-run".to_owned()));
    let etcdctls = [etcdctl_bin(), etcdctl35_bin()];
    for etcdctl in &etcdctls {
        for name in [
            "/jobs",
            "",
            "/jobs/other",
            "/jobs/backup",
            "/t/y",
            "/t/y/",
            "/jobs/backup.etcdlock",
            "/jobs/lost",
        ] {
            let started = Instant::now();
            assert!(
                etcdctl_lock_goes_through(etcdctl, &ep, name),
                "{} lock {name:?} was blocked by {keys:?}",
                etcdctl.display()
            );
            eprintln!(
                "{} lock {name:?}: {:?}",
                etcdctl.display(),
                started.elapsed()
            );
        }
    }
}

/// `forget` deletes exactly NAME's records and marker, revokes the leases only they used, and
/// cleans the old layout's keys beside the lock; it never touches the live queue of a lock named
/// `NAME.etcdlock` (at 0e76354 it deleted the whole `NAME.etcdlock/` range: that lock's holder
/// was killed, exit 70), nor the records of a name that starts with NAME.
#[test]
fn forget_deletes_exactly_one_names_records() {
    let (cluster, ep, dir) = etcd_with_dir();
    for name in ["/c/x", "/c/xy", "/c/x/sub"] {
        let (code, _, err) = etcdlock_out(&ep, &["run", "--once-per", "1h", name, "--", "true"]);
        assert_eq!(code, Some(0), "{err}");
    }
    // The old layout's records beside /c/x, as 0e76354 wrote them.
    cluster.etcdctl_ok(&["put", "/c/x.etcdlock/last-run", "{}"]);
    cluster.etcdctl_ok(&["put", "/c/x.etcdlock/last-success", "{}"]);
    // A lock whose name ends in the old suffix, held by etcdlock while we forget.
    let release = dir.path().join("release");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    let mut holder = etcdlock_sh(&ep, &[], "/c/x.etcdlock", &script)
        .spawn()
        .unwrap();
    cluster.wait_keys("/c/x.etcdlock/", 3);
    let leases_before = cluster.all_leases().len();

    let (code, out, err) = etcdlock_out(&ep, &["forget", "/c/x"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("5 record(s) deleted"), "{out}");
    let keys = cluster.keys("");
    for gone in [
        ".etcdlock/v1//c/x/last-run",
        ".etcdlock/v1//c/x/once",
        "/c/x.etcdlock/last-run",
    ] {
        assert!(!keys.contains(&gone.to_owned()), "{gone} in {keys:?}");
    }
    for kept in [
        ".etcdlock/v1//c/xy/last-run",
        ".etcdlock/v1//c/x/sub/last-run",
        ".etcdlock/v1//c/x/sub/once",
    ] {
        assert!(keys.contains(&kept.to_owned()), "{kept} not in {keys:?}");
    }
    // /c/x's retention lease and marker lease are gone; nothing else.
    assert_eq!(cluster.all_leases().len(), leases_before - 2);
    assert_eq!(
        cluster.lock_keys("/c/x.etcdlock/").len(),
        1,
        "the holder of /c/x.etcdlock keeps its key"
    );
    std::fs::write(&release, "").unwrap();
    assert_eq!(
        wait_exit(&mut holder, SOON).code(),
        Some(0),
        "not disturbed"
    );
    let (code, _, _) = etcdlock_out(&ep, &["forget", "/c/x"]);
    assert_eq!(code, Some(1), "nothing left to forget");
}

/// Every record lives on a lease of the retention period, one per name, renewed by the name's
/// runs: a thousand names, each run once, leave nothing at all once the retention has passed,
/// while a name that ran again meanwhile keeps its records. The thousand runs go through the
/// library's record path (what `run` ends with) for speed, the others through the binary; every
/// run of a name finds the same lease.
#[test]
fn records_expire_after_the_retention_period() {
    use etcdlock::record::{self, Ending, Retention, RunRecord};
    let (cluster, ep) = etcd();
    let retention = Duration::from_secs(10);
    let first_run = Instant::now();
    for name in ["/bin/a", "/bin/b", "/bin/a"] {
        let (code, _, err) = etcdlock_out(
            &ep,
            &["run", "--record-retention", "10s", name, "--", "true"],
        );
        assert_eq!(code, Some(0), "{err}");
    }
    assert_eq!(
        cluster.record_leases().unwrap().len(),
        4,
        "one lease per name (two records each), the second run of /bin/a found its own"
    );
    with_client(&ep, async |client| {
        let holder = etcdlock::Holder::current(&[], 1, Default::default());
        let names: Vec<String> = (0..1000).map(|i| format!("/many/{i}")).collect();
        for chunk in names.chunks(50) {
            let writes = chunk.iter().map(|name| {
                let (client, holder, name) = (client.clone(), holder.clone(), name.clone());
                async move {
                    let lease = Retention::start(&client, &name, Some(retention))
                        .lease()
                        .await
                        .unwrap();
                    let ending = Ending {
                        record: RunRecord::new(
                            &holder,
                            std::time::SystemTime::now(),
                            Duration::ZERO,
                        ),
                        success: true,
                        records_lease: lease,
                        once_lease: None,
                    };
                    let keys = record::Keys::of(&client, &name);
                    client
                        .txn("record", ending.records_txn(&keys, None))
                        .await
                        .unwrap();
                }
            });
            futures_join_all(writes).await;
        }
    });
    assert_eq!(cluster.keys(".etcdlock/").len(), 2 * 1002);
    let written = Instant::now();
    // /bin/a runs again 6 s after its first run: its lease is renewed, /bin/b's is not.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(first_run.elapsed()));
    let (code, _, err) = etcdlock_out(
        &ep,
        &["run", "--record-retention", "10s", "/bin/a", "--", "true"],
    );
    assert_eq!(code, Some(0), "{err}");
    wait_until("/bin/b's records to expire", retention + SOON, || {
        cluster.keys(".etcdlock/v1//bin/b/").is_empty()
    });
    assert_eq!(
        cluster.keys(".etcdlock/v1//bin/a/").len(),
        2,
        "/bin/a ran again after {:?}: its records stay",
        first_run.elapsed()
    );
    wait_until(
        "every record and lease to expire",
        retention + Duration::from_secs(30),
        || cluster.keys("").is_empty() && cluster.all_leases().is_empty(),
    );
    assert!(written.elapsed() >= retention - Duration::from_secs(1));
    eprintln!(
        "2004 records and 1002 leases gone {:?} after the last write",
        written.elapsed()
    );
}

/// Runs the futures concurrently on this thread and waits for all of them.
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(
    futures: impl Iterator<Item = F>,
) {
    tokio::task::LocalSet::new()
        .run_until(async move {
            let handles: Vec<_> = futures.map(|f| tokio::task::spawn_local(f)).collect();
            for h in handles {
                h.await.unwrap();
            }
        })
        .await;
}

/// `--no-record` and `ETCDLOCK_NO_RECORD=1` leave nothing at all; `--once-per` cannot do without
/// its marker and refuses them with exit 2 before anything runs; a name that would cover the
/// records is refused with exit 2.
#[test]
fn records_can_be_turned_off() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (code, _, err) = etcdlock_out(&ep, &["run", "--no-record", "/off", "--", "true"]);
    assert_eq!(code, Some(0), "{err}");
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["run", "/off", "--", "false"])
        .env("ETCDLOCK_NO_RECORD", "1");
    assert_eq!(run_text(cmd, SOON).0, Some(1));
    cluster.assert_clean_now();
    assert!(cluster.keys("").is_empty(), "{:?}", cluster.keys(""));
    assert!(cluster.all_leases().is_empty());

    let marker = dir.path().join("ran");
    let touch = ["--", "touch", marker.to_str().unwrap()];
    let args: Vec<&str> = ["run", "--no-record", "--once-per", "1h", "/off"]
        .into_iter()
        .chain(touch)
        .collect();
    let (code, _, err) = etcdlock_out(&ep, &args);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--once-per") && err.contains("--no-record"),
        "{err}"
    );
    let mut cmd = etcdlock_at(&ep);
    cmd.args(["run", "--once-per", "1h", "/off"])
        .args(touch)
        .env("ETCDLOCK_NO_RECORD", "1");
    assert_eq!(run_text(cmd, SOON).0, Some(2));
    assert!(!marker.exists());

    for reserved in [".etcdlock", ".etcdlock/v1//off"] {
        let (code, _, err) = etcdlock_out(&ep, &["run", reserved, "--", "true"]);
        assert_eq!(code, Some(2), "{reserved}: {err}");
        assert!(err.contains("reserved"), "{err}");
    }
    // Records kept elsewhere: --records-prefix, and names under the default one are fine then.
    let (code, _, err) = etcdlock_out(
        &ep,
        &[
            "--records-prefix",
            "_records/",
            "run",
            ".etcdlock",
            "--",
            "true",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!cluster.keys("_records/v1/.etcdlock/").is_empty());
}

/// With etcd auth, a user with read-write on `/jobs/` only: `run` works and says once (not on
/// every run) that the records cannot be kept; `--once-per` refuses with exit 2 before running
/// the command (it would run at every firing). With the documented grant on the records too,
/// `--once-per` works; and when its marker cannot be written after a success (the grant taken
/// away meanwhile), the warning says the next firing will run the job again.
#[test]
fn the_records_need_their_own_grant_and_say_so_once() {
    let cluster = Cluster::single();
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["role", "add", "root"],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice:alicepw"],
        &["role", "add", "jobs"],
        &[
            "role",
            "grant-permission",
            "jobs",
            "--prefix=true",
            "readwrite",
            "/jobs/",
        ],
        &["user", "grant-role", "alice", "jobs"],
        &["auth", "enable"],
    ] {
        let out = cluster.etcdctl(args);
        assert!(
            out.status.success() || args[..2] == ["role", "add"],
            "{}",
            describe_output(&format!("etcdctl {args:?}"), &out)
        );
    }
    cluster.set_etcdctl_user(Some("root:rootpw"));
    let ep = cluster.endpoints();
    let state = tempfile::tempdir().unwrap();
    let alice = |args: &[&str]| {
        let mut cmd = etcdlock_at(&ep);
        cmd.args(["--user", "alice:alicepw"])
            .args(args)
            .env("XDG_STATE_HOME", state.path());
        run_text(cmd, Duration::from_secs(60))
    };
    let (code, _, err) = alice(&["run", "/jobs/a", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("etcdlock: note: run records are not kept")
            && err.contains(".etcdlock/v1//jobs/a/last-run")
            && err.contains("said once"),
        "{err}"
    );
    let (code, _, err) = alice(&["run", "/jobs/a", "--", "true"]);
    assert_eq!((code, err.as_str()), (Some(0), ""), "said only once");
    // Listing needs no permission on the records: the locks are listed without them.
    let (code, out, err) = alice(&["list", "/jobs/"]);
    assert_eq!(code, Some(0), "{out}{err}");

    let marker = state.path().join("ran");
    let m = marker.to_str().unwrap();
    let (code, _, err) = alice(&["run", "--once-per", "1h", "/jobs/o", "--", "touch", m]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--once-per") && err.contains(".etcdlock/v1//jobs/o/once"),
        "{err}"
    );
    assert!(!marker.exists(), "the command must not run");

    // The documented grant: read-write on the records of the names under /jobs/.
    cluster.etcdctl_ok(&[
        "role",
        "grant-permission",
        "jobs",
        "--prefix=true",
        "readwrite",
        ".etcdlock/v1//jobs/",
    ]);
    let (code, _, err) = alice(&["run", "--once-per", "1h", "/jobs/o", "--", "touch", m]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(marker.exists());
    let (code, _, _) = alice(&["run", "--once-per", "1h", "/jobs/o", "--", "false"]);
    assert_eq!(code, Some(0), "skipped: a run succeeded this period");

    // The grant goes while a --once-per job runs: its marker cannot be written.
    let go = state.path().join("go");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", go.display());
    let mut job = etcdlock_at(&ep);
    job.args([
        "--user",
        "alice:alicepw",
        "run",
        "--once-per",
        "1h",
        "/jobs/p",
    ])
    .args(["--", "sh", "-c", &script])
    .env("XDG_STATE_HOME", state.path())
    .stderr(std::process::Stdio::piped());
    let job = job.spawn().unwrap();
    cluster.wait_keys("/jobs/p/", 1);
    cluster.etcdctl_ok(&[
        "role",
        "revoke-permission",
        "jobs",
        "--prefix=true",
        ".etcdlock/v1//jobs/",
    ]);
    std::fs::write(&go, "").unwrap();
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("could not write the --once-per marker of /jobs/p")
            && err.contains("the next firing will run the job again"),
        "{err}"
    );
    assert!(
        cluster.lock_keys("/jobs/").is_empty(),
        "the lock was released"
    );
}

/// The test kit recognises a keyless retention lease by etcdlock's default retention: the two
/// must agree, or the fault suite's clean-up checks would flag (or miss) it.
#[test]
fn the_test_kit_knows_the_default_retention() {
    assert_eq!(
        etcdlock::record::DEFAULT_RETENTION.as_secs(),
        etcdlock_testkit::DEFAULT_RECORD_RETENTION_S
    );
}
