//! The library (issue 12): examples/mutex.rs, the counterpart of etcd's Go Mutex example, excludes
//! and is excluded by `etcdlock run` and `etcdctl lock` on the same name, and stops its work when
//! the session says the lock is lost.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use etcdlock_testkit::*;

use crate::common::*;

/// target/<profile>/examples/mutex, built (once per test run) if missing or stale: `cargo test
/// --all-targets` builds examples only in test mode, and a binary left by an older build must not
/// stand in for the current source. scripts/test builds it before the tests start, so this is
/// a no-op there and no compile competes with the timed tests for the CPU.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    built_example("mutex", &BUILT)
}

/// target/<profile>/examples/`name`, built as [`example`] builds examples/mutex.rs.
fn built_example(name: &'static str, cell: &'static OnceLock<PathBuf>) -> PathBuf {
    cell.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap();
        // target/debug is the dev profile; target/<name> is profile <name>.
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        let built = dir.join("examples").join(name);
        if is_current(&built, name) {
            // scripts/test built it before the tests: asking cargo again is not free, as
            // cargo run from inside a test (its environment differs from the one the
            // example was built in) may decide to rebuild dependencies, taking 20-30 s of
            // CPU from the tests beside it.
            return built;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--profile", profile, "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
        dir.join("examples").join(name)
    })
    .clone()
}

/// `exe` exists and is newer than every source it is built from (the example, the library,
/// the manifest and the lock file).
fn is_current(exe: &Path, name: &str) -> bool {
    fn newest(path: &Path) -> Option<std::time::SystemTime> {
        let meta = fs::metadata(path).ok()?;
        if !meta.is_dir() {
            return meta.modified().ok();
        }
        fs::read_dir(path)
            .ok()?
            .filter_map(|e| newest(&e.ok()?.path()))
            .max()
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(built) = fs::metadata(exe).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let example = format!("examples/{name}.rs");
    [example.as_str(), "src", "Cargo.toml", "Cargo.lock"]
        .iter()
        .all(|source| newest(&root.join(source)).is_some_and(|t| t <= built))
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
    // etcdctl's command copies the example's output as it was when etcdctl got the lock: it
    // must already say the example's work was done, however fast or slow the machine.
    let ran = dir.path().join("ctl-ran");
    let mut ctl = etcdctl_plain()
        .args(["--endpoints", &ep, "lock", "/my-lock/", "--", "cp"])
        .arg(&out)
        .arg(&ran)
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut example, SOON).success(), "{}", read(&out));
    assert!(
        read(&out).contains("work done\nreleased lock\n"),
        "{}",
        read(&out)
    );
    assert!(wait_exit(&mut ctl, SOON).success());
    assert!(
        read(&ran).contains("work done\n"),
        "etcdctl lock ran while the example held the lock: the example had printed {:?}",
        read(&ran)
    );
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

/// Run `body` with a fresh single-member cluster and a client of it, on a current-thread
/// runtime (as the binary runs). The cluster lives until `body` is done.
fn on_a_cluster(body: impl AsyncFnOnce(&Cluster, etcdlock::Client)) {
    use etcdlock::client::Check;
    let cluster = Cluster::single();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = etcdlock::Config::new([cluster.endpoint(0)]).unwrap();
        let client = etcdlock::Client::connect(config, Check::Lazy)
            .await
            .unwrap();
        body(&cluster, client).await
    });
}

/// A waiter watches its predecessor from the current revision (a watch from its older read
/// revision would wait for etcd's 100 ms catch-up of past-revision watches). So when the
/// predecessor leaves after the waiter's read but before its watch exists, and the store moves on,
/// the watch never sees the deletion: the waiter must find it by looking, and take the lock at
/// once instead of waiting for ever.
#[test]
fn a_waiter_whose_predecessor_left_before_its_watch_began_takes_the_lock() {
    use etcdlock::{Mutex, SafetyParams, Session};
    on_a_cluster(async |cluster, client| {
        let first = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let second = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let held = Mutex::new("/gone").unwrap().lock(&first).await.unwrap();
        let (mut queued, acquired) = Mutex::new("/gone").unwrap().enqueue(&second).await.unwrap();
        assert!(acquired.is_none(), "the second contender must queue");
        held.unlock().await.unwrap();
        cluster.etcdctl_ok(&["put", "/elsewhere", "the store moves on"]);
        let got = tokio::time::timeout(Duration::from_secs(15), queued.wait(&client)).await;
        let got = got.expect("the waiter did not notice that its predecessor had left");
        assert!(got.is_ok(), "{got:?}");
        first.close().await.unwrap();
        second.close().await.unwrap();
    });
}

/// `lock::release_with_records` sends the record together with the revoke that frees the lock,
/// and retries a failed record only over records written no later than that revoke
/// (`Ending::records_txn` with `up_to`): a later holder's record, which can only come after our
/// key is gone, is never
/// overwritten by our late retry, key by key (a later failure leaves our success in
/// `last-success`).
#[test]
fn a_retried_record_never_overwrites_a_later_holders() {
    use etcdlock::record::{self, Ending, RunRecord};
    use etcdlock::Holder;
    on_a_cluster(async |_cluster, client| {
        let lease = record::grant_retention(&client, "/rec", Duration::from_secs(600))
            .await
            .unwrap();
        let keys = record::Keys::of(&client, "/rec");
        let ending = |token: i64, exit_code: i32| {
            let holder = Holder::current(&[], 1, Default::default());
            let mut record = RunRecord::new(&holder, std::time::SystemTime::now(), Duration::ZERO);
            record.fencing_token = token;
            record.exit_code = exit_code;
            Ending {
                record,
                success: exit_code == 0,
                records_lease: Some(lease),
                once_lease: None,
            }
        };
        let write = |e: Ending, up_to: Option<i64>| {
            let (client, keys) = (client.clone(), keys.clone());
            async move {
                let resp = client
                    .txn("record", e.records_txn(&keys, up_to))
                    .await
                    .unwrap();
                resp.header().unwrap().revision()
            }
        };
        let tokens = || async {
            let r = record::read(&client, "/rec").await.unwrap();
            let token = |r: Option<RunRecord>| r.map(|r| r.fencing_token);
            (token(r.last_run), token(r.last_success))
        };
        // A key never written counts as written at revision 0: a retry writes it.
        let ours = write(ending(1, 0), Some(1)).await;
        assert_eq!(tokens().await, (Some(1), Some(1)));
        // That was an earlier run; "our revoke" at `ours`, then a later holder's failed run.
        let later = write(ending(3, 7), None).await;
        assert!(later > ours);
        // Our retried success: last-run stays the later run's, last-success becomes ours.
        write(ending(2, 0), Some(ours)).await;
        assert_eq!(tokens().await, (Some(3), Some(2)));
        // With nothing written after the revoke, the retry writes both.
        let now = write(ending(4, 1), None).await;
        write(ending(5, 0), Some(now)).await;
        assert_eq!(tokens().await, (Some(5), Some(5)));
    });
}

/// `Lease::end` says at which revision its revoke deleted the lease's keys (`run` bounds a
/// retried record by it), or that the lease was gone already.
#[test]
fn a_revoke_reports_its_revision_or_that_the_lease_was_gone() {
    use etcdlock::session::{Lease, Revoked};
    on_a_cluster(async |cluster, client| {
        let lease = Lease::grant(&client, Duration::from_secs(30))
            .await
            .unwrap();
        let id = format!("{:x}", lease.id);
        cluster.etcdctl_ok(&["put", "--lease", &id, "/leased", "v"]);
        let Ok(Revoked::At(revision)) = lease.end(&client).await else {
            panic!("the lease was not revoked");
        };
        let value_at = |rev: i64| {
            let rev = format!("--rev={rev}");
            let out = cluster.etcdctl(&["get", "/leased", &rev, "--print-value-only"]);
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(value_at(revision - 1), "v");
        assert_eq!(value_at(revision), "");
        assert_eq!(lease.end(&client).await, Ok(Revoked::AlreadyGone));
    });
}

/// `lock::release_with_records` (what `run` ends with): the lease is revoked, so the key is gone
/// and the next contender takes the lock; both records are written; and it says at which
/// revision the key went.
#[test]
fn a_release_with_records_frees_the_lock_and_records_the_run() {
    use etcdlock::record::{self, Ending, RunRecord};
    use etcdlock::session::Revoked;
    use etcdlock::{Holder, Mutex, SafetyParams, Session};
    on_a_cluster(async |cluster, client| {
        let session = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let held = Mutex::new("/rwr").unwrap().lock(&session).await.unwrap();
        // A held lock borrows its session: give it up (released with the lease below).
        let token = held.into_acquired().fencing_token;
        let holder = Holder::current(&[], 1, Default::default());
        let mut record = RunRecord::new(&holder, std::time::SystemTime::now(), Duration::ZERO);
        record.fencing_token = token;
        let records_lease = record::grant_retention(&client, "/rwr", Duration::from_secs(600))
            .await
            .unwrap();
        let ending = Ending {
            record,
            success: true,
            records_lease: Some(records_lease),
            once_lease: None,
        };
        let (recorded, revoked) =
            etcdlock::lock::release_with_records(session, "/rwr", &ending).await;
        assert_eq!(recorded, Ok(()));
        let Ok(Revoked::At(revision)) = revoked else {
            panic!("not revoked: {revoked:?}");
        };
        assert!(revision > token);
        assert!(cluster.lock_keys("/rwr").is_empty(), "the key is gone");
        assert!(cluster.leases().is_empty(), "the lease is gone");
        let r = record::read(&client, "/rwr").await.unwrap();
        let token_of = |r: Option<RunRecord>| r.map(|r| r.fencing_token);
        let expected = Some(token);
        assert_eq!(
            (token_of(r.last_run), token_of(r.last_success)),
            (expected, expected)
        );
        let next = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let got = Mutex::new("/rwr").unwrap().try_lock(&next).await.unwrap();
        assert!(got.is_some(), "the lock is free");
        next.close().await.unwrap();
    });
}

/// `Mutex::lock` is cancel-safe (issue 24): a wait dropped by `tokio::time::timeout` deletes its
/// queue key at once, as Go's `Lock(ctx)` does, instead of leaving it to block everyone behind it
/// until the session's lease ends. The waiter's session stays open throughout, so only the
/// cancellation can have removed the key.
#[test]
fn a_cancelled_lock_wait_deletes_its_queue_key() {
    use etcdlock::{Mutex, SafetyParams, Session};
    on_a_cluster(async |cluster, client| {
        let first = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let second = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let held = Mutex::new("/cancel").unwrap().lock(&first).await.unwrap();
        let mutex = Mutex::new("/cancel").unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), mutex.lock(&second)).await;
        assert!(waited.is_err(), "the second contender must still wait");
        let keys = || {
            cluster
                .etcdctl_ok(&["get", "--prefix", "--keys-only", "/cancel/"])
                .lines()
                .filter(|l| !l.is_empty())
                .count()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while keys() > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(keys(), 1, "the cancelled wait left its queue key behind");
        assert!(
            second.is_lost().is_none(),
            "the waiter's own session was not lost"
        );
        // The holder is still the owner, as etcd itself checks it.
        let txn = etcd_client::Txn::new().when([held.is_owner()]);
        let resp = client.txn("is_owner", txn).await.unwrap();
        assert!(resp.succeeded(), "is_owner must hold for the holder");
        held.unlock().await.unwrap();
        first.close().await.unwrap();
        second.close().await.unwrap();
    });
}

/// examples/run.rs (issue 24): `etcdlock run` through the library alone. While it runs a command
/// under a name, `etcdlock run -n` on that name finds it held (exit 75); revoking its lease stops
/// the command well before the 10 s TTL could run out, and the example exits 70.
#[test]
fn the_run_example_excludes_etcdlock_and_stops_its_command_when_the_lease_is_revoked() {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let (cluster, ep, dir) = etcd_with_dir();
    let started = dir.path().join("started");
    let mut cmd = Command::new(built_example("run", &BUILT));
    clean_env(&mut cmd);
    let script = format!("echo $$ > {}; exec sleep 60", started.display());
    let err = dir.path().join("err");
    let mut example = cmd
        .args([
            "--endpoints",
            &ep,
            "/run-example",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the example's command to start", SOON, || {
        !read(&started).trim().is_empty()
    });
    let pid: i32 = read(&started).trim().parse().unwrap();
    let no_wait = etcdlock_out(&ep, &["run", "-n", "/run-example", "--", "true"]);
    assert_eq!(
        no_wait.0,
        Some(75),
        "etcdlock ran beside the example: {no_wait:?}"
    );
    let keys = cluster.keys("/run-example/");
    let lease = keys[0].rsplit('/').next().unwrap().to_owned();
    let revoked = std::time::Instant::now();
    cluster.etcdctl_ok(&["lease", "revoke", &lease]);
    let status = wait_exit(&mut example, SOON);
    assert_eq!(status.code(), Some(70), "{}", read(&err));
    assert!(
        revoked.elapsed() < Duration::from_secs(8),
        "the command was stopped only after {:?}",
        revoked.elapsed()
    );
    // The command itself is gone (not only the example).
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "the command (pid {pid}) outlived the example"
    );
    assert!(
        read(&err).contains("lock /run-example lost"),
        "{}",
        read(&err)
    );
    cluster.assert_clean();
}

/// A `Session` dropped without `close()` stops its guard's thread and its keep-alive (issue 24):
/// nothing is left holding the guard. Before, the thread ran for ever. (Its lease is left to
/// expire by its TTL, as documented.)
#[test]
fn a_dropped_session_stops_its_guard_thread() {
    use etcdlock::{SafetyParams, Session};
    on_a_cluster(async |cluster, client| {
        let session = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let guard = std::sync::Arc::downgrade(session.guard());
        drop(session);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while guard.upgrade().is_some() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            guard.upgrade().is_none(),
            "the guard is still held (its thread or the keep-alive runs on)"
        );
        assert_eq!(cluster.leases().len(), 1, "the lease is left to its TTL");
    });
}

/// The number of keys under `prefix`, as etcdctl sees them.
fn keys_under(cluster: &Cluster, prefix: &str) -> usize {
    cluster
        .etcdctl_ok(&["get", "--prefix", "--keys-only", prefix])
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

/// The queue transaction itself is cancel-safe (issue 24): waits dropped by
/// `tokio::time::timeout` after 0 to 20 ms — before, during and after the transaction — leave no
/// queue key behind, through `Mutex::lock` and through `etcdlock::wait::wait` alike. The waiter's
/// session stays open, so only the cancellations can have removed the keys.
#[test]
fn waits_cancelled_at_any_point_leave_no_queue_key() {
    use etcdlock::process::supervise::Signals;
    use etcdlock::wait::{self, Patience, Wait, Waited};
    use etcdlock::{Holder, Mutex, SafetyParams, Session};
    on_a_cluster(async |cluster, client| {
        let first = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let held = Mutex::new("/cancel-any")
            .unwrap()
            .lock(&first)
            .await
            .unwrap();
        let mut signals = Signals::install().unwrap();
        let holder = Holder::current(&[], 1, Default::default());
        let mut sessions = Vec::new();
        for ms in 0..=20 {
            // A fresh lease each time: one lease has one key per lock.
            let session = Session::new(&client, SafetyParams::default())
                .await
                .unwrap();
            let limit = Duration::from_millis(ms);
            let mutex = Mutex::new("/cancel-any").unwrap();
            let locked = tokio::time::timeout(limit, mutex.lock(&session)).await;
            assert!(locked.is_err(), "the lock is held: the wait cannot succeed");
            let session2 = Session::new(&client, SafetyParams::default())
                .await
                .unwrap();
            let how = Wait {
                name: "/cancel-any",
                holder: &holder,
                patience: Patience::Forever,
                progress_every: None,
                describe_give_up: false,
                checks: Vec::new(),
            };
            let waited = tokio::time::timeout(
                limit,
                wait::wait(
                    session2.client(),
                    session2.lease(),
                    session2.guard(),
                    &mut signals,
                    &how,
                    &|_| {},
                ),
            )
            .await;
            assert!(
                !matches!(waited, Ok(Ok(Waited::Acquired(_)))),
                "the lock is held: the wait cannot succeed"
            );
            sessions.extend([session, session2]);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while keys_under(cluster, "/cancel-any/") > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            keys_under(cluster, "/cancel-any/"),
            1,
            "a cancelled wait left its queue key behind"
        );
        for session in &sessions {
            assert!(session.is_lost().is_none(), "a waiter's session was lost");
        }
        held.unlock().await.unwrap();
        for session in sessions {
            session.close().await.unwrap();
        }
        first.close().await.unwrap();
    });
}

/// The whole run in one call, off the main thread (issue 24): `runner::hold` on a runtime worker
/// waits, runs the command to its end and releases; and a command spawned from a
/// `spawn_blocking` thread outlives that thread's retirement (before, `PR_SET_PDEATHSIG` killed it
/// with the thread) and is supervised to its own exit code. The test process embeds the library
/// and has children of its own (etcd, a `sleep`, a `true` that exits during the runs): the runs
/// neither wait for them as leftovers nor signal them, nor reap them (before, `waitpid(-1)` took
/// their statuses and the tree counted them as the command's).
#[test]
fn commands_spawned_off_the_main_thread_outlive_the_spawning_thread() {
    use etcdlock::process::supervise::{self, Signals, Supervision};
    use etcdlock::record::Retention;
    use etcdlock::runner::{self, Ended, Outcome};
    use etcdlock::wait::{Patience, Wait};
    use etcdlock::{Holder, SafetyParams, Session};
    use std::os::unix::process::ExitStatusExt;
    let cluster = Cluster::single();
    // Blocking threads retire 50 ms after their last task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .unwrap();
    let mut own_sleep = Command::new("sleep").arg("60").spawn().unwrap();
    let mut own_true = Command::new("true").spawn().unwrap();
    runtime.block_on(async {
        let config = etcdlock::Config::new([cluster.endpoint(0)]).unwrap();
        let client = etcdlock::Client::connect(config, etcdlock::client::Check::Lazy)
            .await
            .unwrap();
        let mut signals = Signals::install().unwrap();
        let session = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let tree = runner::prepare_tree(&etcdlock::process::reaper::new_run_id(), None).await;
        let program = supervise::check_command("sh".as_ref()).unwrap();
        let spawned = tree.clone();
        let child = tokio::task::spawn_blocking(move || {
            let argv = ["sh", "-c", "sleep 1; exit 3"].map(std::ffi::OsString::from);
            supervise::spawn(&program, &argv, &[], &spawned)
        })
        .await
        .unwrap()
        .unwrap();
        // Let the blocking thread retire while the command runs.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let how = Supervision {
            kill_signal: nix::sys::signal::Signal::SIGTERM,
            kill_after: Duration::from_secs(1),
            max_runtime: None,
            kill_leftovers: false,
        };
        let ended = supervise::supervise(child, &mut signals, session.guard(), &tree, &how, |_| {})
            .await
            .unwrap();
        assert_eq!(
            (ended.status.code(), ended.status.signal()),
            (Some(3), None),
            "the command died with the thread that spawned it"
        );
        tree.finish();
        session.close().await.unwrap();

        // The one call, on a runtime worker.
        let session = Session::new(&client, SafetyParams::default())
            .await
            .unwrap();
        let run_id = etcdlock::process::reaper::new_run_id();
        let tree = runner::prepare_tree(&run_id, None).await;
        let argv: Vec<std::ffi::OsString> =
            ["sh", "-c", "sleep 0.5; exit 4"].map(Into::into).to_vec();
        let holder = Holder::current(&argv, 1, Default::default());
        let command = runner::Command {
            program: supervise::check_command("sh".as_ref()).unwrap(),
            argv,
            env: Vec::new(),
            tree: tree.clone(),
            run_id,
        };
        let run = runner::Run {
            wait: Wait {
                name: "/off-main",
                holder: &holder,
                patience: Patience::Forever,
                progress_every: None,
                describe_give_up: false,
                checks: Vec::new(),
            },
            command: &command,
            options: runner::Options::default(),
            once_per: None,
            min_hold: None,
            retention: Retention::start(&client, "/off-main", None),
        };
        let outcome = runner::hold(session, &mut signals, run, &|_| {})
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Ran(Ended::Exited(s)) if s.code() == Some(4)),
            "{outcome:?}"
        );
    });
    // Our own children are still ours: alive and unreaped, or exited with their status kept.
    assert!(
        own_sleep.try_wait().unwrap().is_none(),
        "the embedding program's own child was signalled or reaped"
    );
    own_sleep.kill().unwrap();
    let status = own_sleep.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    let status = own_true
        .wait()
        .expect("the embedding program's exited child was reaped by the library");
    assert!(status.success(), "{status:?}");
    cluster.assert_clean();
}

/// `handle::acquire` (what `etcdlock acquire` does) leaves nobody holding a lock whose handle
/// nobody has: a delivered handle holds the lock (its key verifies with the secret) until it is
/// released; an abandoned one, or one dropped undelivered, frees the lock at once — key and lease
/// gone, long before the 60 s TTL — so the next contender takes it without waiting.
#[test]
fn a_handle_that_is_not_delivered_frees_its_lock() {
    use etcdlock::handle::{self, Acquisition, State};
    use etcdlock::process::supervise::Signals;
    use etcdlock::{Holder, SafetyParams};
    on_a_cluster(async |_cluster, client| {
        let mut signals = Signals::install().unwrap();
        let holder = Holder::current(&[], 1, Default::default());
        let how = etcdlock::wait::Wait::new("/undelivered", &holder);
        let params = SafetyParams::new(Duration::from_secs(60), None).unwrap();
        let mut take = async || {
            let acquired = handle::acquire(&client, params, &mut signals, &how, &|_| {});
            match acquired.await.unwrap() {
                Acquisition::Held(taken) => taken,
                other => panic!("not held: {other:?}"),
            }
        };
        let freed = async |h: &etcdlock::handle::Handle| {
            assert_eq!(h.state(&client).await.unwrap(), State::Lost);
            assert!(
                h.attach(&client).await.is_err(),
                "the lease outlived the lock"
            );
        };

        let taken = take().await;
        assert!(taken.ttl() > Duration::from_secs(50), "{:?}", taken.ttl());
        let delivered = taken.delivered();
        assert_eq!(delivered.state(&client).await.unwrap(), State::Held);
        delivered.release(&client).await.unwrap();

        let taken = take().await;
        let abandoned = taken.handle().clone();
        assert_eq!(abandoned.state(&client).await.unwrap(), State::Held);
        taken.abandon().await.unwrap();
        freed(&abandoned).await;

        let taken = take().await;
        let dropped = taken.handle().clone();
        assert_eq!(dropped.state(&client).await.unwrap(), State::Held);
        drop(taken);
        freed(&dropped).await;
        // Free for the next one at once (a held lock would make this give up).
        let how = etcdlock::wait::Wait {
            patience: etcdlock::wait::Patience::NoWait,
            ..how.clone()
        };
        let next = handle::acquire(&client, params, &mut signals, &how, &|_| {});
        let Acquisition::Held(next) = next.await.unwrap() else {
            panic!("the lock was still held after the undelivered handle was dropped");
        };
        next.abandon().await.unwrap();
    });
}
