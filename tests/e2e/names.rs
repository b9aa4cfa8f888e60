//! A lock is exactly its name (issue 10): `run`, `status`, `list` and `break` agree that the queue
//! of NAME is the keys `NAME/<lease hex>` attached to that lease; nested names, trailing slashes,
//! lease-less keys and large unrelated data do not confuse them, and interop with `etcdctl lock`
//! stays exact.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};

use etcdlock_testkit::*;

use crate::common::*;

/// A holder of `name` that runs until `release` exists; returns once it holds or waits (its key
/// exists).
fn holder(cluster: &Cluster, name: &str, extra: &[&str], release: &Path) -> Child {
    Hold::run(&cluster.endpoints(), extra, name, release)
        .stderr(Stdio::null())
        .queued(cluster)
}

#[test]
fn nested_names_are_different_locks_for_run_status_list_and_break() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    let mut backup = holder(&cluster, "/jobs/backup", &[], &release);

    // Breaking /jobs must not touch /jobs/backup's holder.
    let (code, _, err) = etcdlock_out(&ep, &["break", "--yes", "/jobs"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/jobs is not held"), "{err}");
    assert!(
        backup.try_wait().unwrap().is_none(),
        "break /jobs killed /jobs/backup"
    );

    // /jobs is free for run, status and list alike.
    let (code, out, err) = etcdlock_out(&ep, &["run", "-n", "/jobs", "--", "echo", "ran"]);
    assert_eq!((code, out.as_str()), (Some(0), "ran\n"), "{err}");
    assert!(
        err.contains("a lock named /jobs/backup is held too"),
        "{err}"
    );
    let (code, out, _) = etcdlock_out(&ep, &["status", "/jobs"]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("/jobs: free\n"), "{out}");
    assert!(out.contains("1 other key under /jobs/ skipped"), "{out}");
    let (code, out, _) = etcdlock_out(&ep, &["run", "--limit", "2", "-n", "/jobs", "--", "true"]);
    assert_eq!(code, Some(0), "{out}");

    // /jobs held too: both show in list, once each.
    let mut jobs = holder(&cluster, "/jobs", &[], &release);
    let (code, out, _) = etcdlock_out(&ep, &["list", "--json"]);
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/jobs", "/jobs/backup"]);
    let status = status_json(&ep, "/jobs/backup");
    assert_eq!(status["holder_count"], 1);
    assert_eq!(status["waiter_count"], 0);

    // Breaking /jobs/backup leaves /jobs alone.
    let (code, out, err) = etcdlock_out(&ep, &["break", "--yes", "/jobs/backup"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(wait_exit(&mut backup, SOON).code(), Some(70));
    assert!(jobs.try_wait().unwrap().is_none());
    assert_eq!(let_go(&mut jobs, &release).code(), Some(0));
    cluster.assert_clean();
}

#[test]
fn trailing_slashes_and_etcdctl_interop() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    // etcdctl lock /my-lock/ is Go's NewMutex(s, "/my-lock/"): keys /my-lock//<hex>.
    let mut ctl = Hold::etcdctl(&ep, "/my-lock/", &release).queued(&cluster);
    let (code, _, err) = etcdlock_out(&ep, &["run", "-n", "/my-lock/", "--", "true"]);
    assert_eq!(code, Some(75), "same name must conflict: {err}");
    assert!(err.contains("ends in '/'"), "{err}");
    let (code, _, err) = etcdlock_out(&ep, &["run", "-n", "/my-lock", "--", "true"]);
    assert_eq!(code, Some(0), "/my-lock is another lock: {err}");
    let (code, out, _) = etcdlock_out(&ep, &["status", "/my-lock/"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("(etcdctl?)"), "{out}");

    // And the other way round: etcdlock holds /jobs/backup, etcdctl lock /jobs/backup waits,
    // etcdctl lock /jobs/other does not.
    let release2 = release.with_extension("2");
    let mut holder = holder(&cluster, "/jobs/backup", &[], &release2);
    let out = cluster.etcdctl(&["lock", "/jobs/other", "--", "echo", "other"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "other\n");
    assert!(let_go(&mut ctl, &release).success());
    assert_eq!(let_go(&mut holder, &release2).code(), Some(0));
    cluster.assert_clean();
}

#[test]
fn keys_without_a_lease_are_not_holders() {
    let (cluster, ep) = etcd();
    cluster.etcdctl_ok(&["put", "/data/cfg/settings", "v1"]);
    let (code, out, err) =
        etcdlock_out(&ep, &["run", "-w", "5s", "/data/cfg", "--", "echo", "ran"]);
    assert_eq!((code, out.as_str()), (Some(0), "ran\n"), "{err}");
    let (code, out, _) = etcdlock_out(&ep, &["status", "/data/cfg"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("free"), "{out}");
    let (code, _, err) = etcdlock_out(&ep, &["break", "--yes", "/data/cfg"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(cluster.get("/data/cfg/settings").as_deref(), Some("v1"));
    cluster.etcdctl_ok(&["del", "/data/cfg/settings"]);
    cluster.assert_clean();
}

#[test]
fn inspection_works_on_an_etcd_shared_with_large_data() {
    let (cluster, ep) = etcd();
    // 2 100 keys of 2.5 KB (over 5 MB, more than a 4 MiB response) plus nested data under the
    // lock's own prefix.
    let value = "v".repeat(2500);
    for batch in 0..21 {
        let ops: String = (0..100)
            .map(|i| format!("put /data/{batch:02}/{i:03} {value}\n"))
            .collect();
        let mut txn = etcdctl_plain();
        txn.args(["--endpoints", &ep, "txn"]);
        let input = format!("\n{ops}\n\n");
        let out = run_with_stdin(txn, &input);
        assert!(out.status.success(), "{}", describe_output("txn", &out));
    }
    cluster.etcdctl_ok(&["put", "/big/lock/nested/blob", &"x".repeat(100_000)]);
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let meta = format!("note={}", "m".repeat(15_000));
    let mut holders: Vec<Child> = (0..6)
        .map(|_| holder(&cluster, "/big/lock", &["--meta", &meta], &release))
        .collect();
    let (code, out, err) = etcdlock_out(&ep, &["list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"/big/lock\""), "{out}");
    let (code, out, err) = etcdlock_out(&ep, &["status", "/big/lock", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["waiter_count"], 5);
    assert_eq!(status["other_keys"], 1);
    // Oversize --meta is refused before anything is written.
    let big = format!("note={}", "m".repeat(17_000));
    let keys_before = cluster.keys("/big/lock/").len();
    let (code, _, err) = etcdlock_out(&ep, &["run", "--meta", &big, "/big/lock", "--", "true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("etcdlock: ") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(cluster.keys("/big/lock/").len(), keys_before);
    let (code, out, err) = etcdlock_out(&ep, &["break", "--yes", "/big/lock"]);
    assert_eq!(code, Some(0), "{out}{err}");
    std::fs::write(&release, "").unwrap();
    let codes: Vec<Option<i32>> = holders
        .iter_mut()
        .map(|h| wait_exit(h, SOON).code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(70)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        5,
        "{codes:?}"
    );
}

#[test]
fn break_one_holder_of_a_semaphore_by_lease() {
    let (cluster, ep, dir) = etcd_with_dir();
    let release = dir.path().join("release");
    let mut a = holder(&cluster, "/sem", &["--limit", "2"], &release);
    let mut b = holder(&cluster, "/sem", &["--limit", "2"], &release);
    let status = status_json(&ep, "/sem");
    let first = status["holders"][0]["lease_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, err) = etcdlock_out(&ep, &["break", "--yes", "--lease", &first, "/sem"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("revoked lease {first}")), "{out}");
    assert_eq!(wait_exit(&mut a, SOON).code(), Some(70));
    assert!(
        b.try_wait().unwrap().is_none(),
        "the other holder was broken too"
    );
    let (code, _, err) = etcdlock_out(&ep, &["break", "--yes", "--lease", "123abc", "/sem"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no holder or waiter with lease 123abc"),
        "{err}"
    );
    assert_eq!(let_go(&mut b, &release).code(), Some(0));

    // A holder that is not etcdlock: the break says its command keeps running.
    // In a group of its own, so that its `sleep`, which outlives a killed etcdctl (the point of
    // the message), goes with it and does not hold the test's output open.
    let mut ctl = etcdctl_plain()
        .args(["--endpoints", &ep, "lock", "/ctl", "--", "sleep", "30"])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    cluster.wait_keys("/ctl/", 1);
    let (code, _, err) = etcdlock_out(&ep, &["break", "--yes", "/ctl"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("its command keeps running"), "{err}");
    let group = nix::unistd::Pid::from_raw(ctl.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = ctl.wait();
    cluster.assert_clean();
}

/// A run reads nothing outside its own lock's prefix and its records (issue 25): with `/jobs`
/// held, an uncontended run of `/jobs/backup` makes two transactions, its queue's and the
/// records' beside the revoke, and says nothing about `/jobs`. Until 479b29f it also read the
/// parent's range for that note, which walks every sibling lock's past runs until etcd compacts.
#[test]
fn a_run_reads_nothing_outside_its_own_prefix() {
    let (cluster, ep, dir) = etcd_with_dir();
    let addr = cluster.members[0].client_addr();
    let release = dir.path().join("release");
    let mut jobs = holder(&cluster, "/jobs", &[], &release);
    let before = grpc_started(&addr, "Txn");
    let (code, _, err) = etcdlock_out(&ep, &["run", "/jobs/backup", "--", "true"]);
    let txns = grpc_started(&addr, "Txn") - before;
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("held too"), "{err}");
    assert_eq!(txns, 2.0, "transactions of one uncontended run");
    assert_eq!(let_go(&mut jobs, &release).code(), Some(0));
    cluster.assert_clean();
}
