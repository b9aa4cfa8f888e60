//! The library (issue 12): examples/mutex.rs, the counterpart of etcd's Go Mutex example, excludes
//! and is excluded by `etcdlock run` and `etcdctl lock` on the same name, and stops its work when
//! the session says the lock is lost.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcdlock_testkit::*;

use crate::common::*;

/// target/<profile>/examples/mutex, built if `cargo test` did not build examples.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("examples").join("mutex");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "mutex"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example mutex");
        assert!(status.success());
    }
    bin
}

/// The example holding /my-lock/ for `hold`, its stdout into `out` and its stderr beside it
/// (`out.err`); returns once it says it has the lock.
fn start_example(ep: &str, hold: &str, out: &Path) -> Child {
    let mut cmd = Command::new(example());
    clean_env(&mut cmd);
    let example = cmd
        .args(["--endpoints", ep, "--hold", hold])
        .stdout(fs::File::create(out).unwrap())
        .stderr(fs::File::create(out.with_extension("err")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the example to hold /my-lock/", SOON, || {
        read(out).contains("acquired lock /my-lock//")
    });
    example
}

#[test]
fn the_mutex_example_excludes_etcdlock_and_etcdctl() {
    let (cluster, ep, dir) = etcd_with_dir();
    let out = dir.path().join("out");
    let mut example = start_example(&ep, "3s", &out);
    assert!(read(&out).contains("with fencing token "), "{}", read(&out));
    let no_wait = etcdlock_out(&ep, &["run", "-n", "/my-lock/", "--", "true"]);
    assert_eq!(no_wait.0, Some(75));
    let ran = dir.path().join("ctl-ran");
    let mut ctl = etcdctl_plain()
        .args(["--endpoints", &ep, "lock", "/my-lock/", "--", "touch"])
        .arg(&ran)
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !ran.exists(),
        "etcdctl lock ran while the example held the lock"
    );
    assert!(wait_exit(&mut example, SOON).success(), "{}", read(&out));
    assert!(
        read(&out).contains("work done\nreleased lock\n"),
        "{}",
        read(&out)
    );
    assert!(wait_exit(&mut ctl, SOON).success());
    assert!(ran.exists());
    cluster.assert_clean();
}

#[test]
fn the_mutex_example_stops_its_work_when_the_lock_is_lost() {
    let (cluster, ep, dir) = etcd_with_dir();
    let out = dir.path().join("out");
    let mut example = start_example(&ep, "60s", &out);
    let keys = cluster.keys("/my-lock//");
    let lease = keys[0].rsplit('/').next().unwrap().to_owned();
    cluster.etcdctl_ok(&["lease", "revoke", &lease]);
    let status = wait_exit(&mut example, SOON);
    assert_eq!(status.code(), Some(1));
    let err = read(&out.with_extension("err"));
    assert!(err.contains("lock lost, work stopped"), "{err}");
    cluster.assert_clean();
}
