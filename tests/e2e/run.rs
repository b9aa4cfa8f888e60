//! End-to-end tests of `etcdlock run` against real etcd processes: mutual exclusion, FIFO order,
//! exit codes, environment, etcdctl interoperability, signals, and the lease-loss safety contract.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Generous bound for anything that should happen "soon" on a noisy 2-core machine.
const SOON: Duration = Duration::from_secs(20);

fn etcdlock(endpoints: &str) -> Command {
    let mut cmd = etcdlock_command();
    cmd.arg("--endpoints").arg(endpoints).stdin(Stdio::null());
    cmd
}

/// `etcdlock run [opts] NAME -- sh -c SCRIPT`, in the background.
fn spawn_run(endpoints: &str, opts: &[&str], name: &str, script: &str) -> Child {
    etcdlock(endpoints)
        .arg("run")
        .args(opts)
        .arg(name)
        .args(["--", "sh", "-c", script])
        .spawn()
        .expect("spawn etcdlock")
}

/// After etcdlock exits, its lease was revoked synchronously: nothing may be left, right away
/// (a short bound, so a lease merely expiring by TTL would not pass).
fn assert_clean_now(cluster: &Cluster) {
    cluster.assert_clean_within(Duration::from_millis(1500));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn wait_file(path: &Path, what: &str) {
    wait_until(what, SOON, || path.exists());
}

#[test]
fn exit_codes_of_the_child_are_passed_through() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let code = |args: &[&str]| {
        let out = run_with_timeout(
            {
                let mut c = etcdlock(&ep);
                c.args(args);
                c
            },
            SOON,
        );
        out.status.code()
    };
    assert_eq!(code(&["run", "/x", "--", "true"]), Some(0));
    assert_eq!(code(&["run", "/x", "--", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(
        code(&["run", "/x", "--", "sh", "-c", "kill -USR1 $$"]),
        Some(128 + 10)
    );
    assert_eq!(
        code(&["run", "/x", "--", "sh", "-c", "kill -9 $$"]),
        Some(137)
    );
    assert_eq!(code(&["run", "/x", "--", "no-such-command-xyz"]), Some(127));
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("script.sh");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    assert_eq!(
        code(&["run", "/x", "--", not_executable.to_str().unwrap()]),
        Some(126)
    );
    assert_clean_now(&cluster);
}

#[test]
fn unreachable_etcd_exits_69_within_the_dial_timeout() {
    let port = free_port();
    let started = Instant::now();
    let out = run_with_timeout(
        {
            let mut c = etcdlock(&format!("http://127.0.0.1:{port}"));
            c.args(["--dial-timeout", "1s", "run", "/x", "--", "true"]);
            c
        },
        SOON,
    );
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        describe_output("etcdlock", &out)
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.contains("cannot reach etcd"), "{stderr}");
}

#[test]
fn environment_and_increasing_fencing_tokens() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let mut tokens = Vec::new();
    for i in 0..3 {
        let env_file = dir.path().join(format!("env{i}"));
        let mut cmd = etcdlock(&ep);
        cmd.args(["run", "/jobs/env", "--", "sh", "-c"])
            .arg(format!("env > {}", env_file.display()))
            // Inherited values of these names must be overwritten.
            .env("ETCD_LOCK_KEY", "stale")
            .env("ETCDLOCK_FENCING_TOKEN", "999999");
        let out = run_with_timeout(cmd, SOON);
        assert!(
            out.status.success(),
            "{}",
            describe_output("etcdlock", &out)
        );
        let env: std::collections::HashMap<String, String> = read(&env_file)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let lease = &env["ETCDLOCK_LEASE_ID"];
        assert!(lease
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(env["ETCDLOCK_NAME"], "/jobs/env");
        assert_eq!(env["ETCDLOCK_KEY"], format!("/jobs/env/{lease}"));
        assert_eq!(env["ETCD_LOCK_KEY"], env["ETCDLOCK_KEY"]);
        assert!(env["ETCD_LOCK_REV"].parse::<i64>().unwrap() > 0);
        assert!(u64::from_str_radix(&env["ETCDLOCK_CLUSTER_ID"], 16).unwrap() != 0);
        tokens.push(env["ETCDLOCK_FENCING_TOKEN"].parse::<i64>().unwrap());
    }
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens must increase: {tokens:?}"
    );
    assert_clean_now(&cluster);
}

#[test]
fn holder_metadata_is_json_in_the_key() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let done = dir.path().join("done");
    let mut holder = spawn_run(
        &ep,
        &[],
        "/meta",
        &format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.05; done",
            ready.display(),
            done.display()
        ),
    );
    wait_file(&ready, "holder to start");
    let keys = cluster.keys("/meta/");
    assert_eq!(keys.len(), 1);
    let value: serde_json::Value = serde_json::from_str(&cluster.get(&keys[0]).unwrap()).unwrap();
    assert_eq!(value["pid"], holder.id());
    assert_eq!(value["command"][0], "sh");
    assert!(value["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(value["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(value["version"], env!("CARGO_PKG_VERSION"));
    fs::write(&done, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    assert_clean_now(&cluster);
}

/// The Jepsen lock-set workload: an unlocked read-sleep-write counter stays exact only if no two
/// children ever overlap. A mkdir-based probe also records any overlap directly.
#[test]
fn concurrent_contenders_never_overlap() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("counter");
    let inside = dir.path().join("inside");
    let overlaps = dir.path().join("overlaps");
    fs::write(&counter, "0").unwrap();
    let script = format!(
        "mkdir {inside} 2>/dev/null || echo overlap >> {overlaps}; \
         n=$(cat {counter}); sleep 0.05; echo $((n + 1)) > {counter}; \
         rmdir {inside} 2>/dev/null; true",
        inside = inside.display(),
        overlaps = overlaps.display(),
        counter = counter.display()
    );
    const CONTENDERS: usize = 10;
    const ROUNDS: usize = 3;
    let workers: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let (ep, script) = (ep.clone(), script.clone());
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let mut c = spawn_run(&ep, &[], "/lockset", &script);
                    assert!(wait_exit(&mut c, Duration::from_secs(120)).success());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(read(&overlaps), "", "children overlapped");
    assert_eq!(read(&counter).trim(), (CONTENDERS * ROUNDS).to_string());
    assert_clean_now(&cluster);
}

#[test]
fn waiters_are_served_in_fifo_order_and_handoff_is_immediate() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order");
    let release = dir.path().join("release");
    let ready = dir.path().join("ready");
    let mut holder = spawn_run(
        &ep,
        &[],
        "/fifo",
        &format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done; date +%s%N > {}/released",
            ready.display(),
            release.display(),
            dir.path().display()
        ),
    );
    wait_file(&ready, "holder to start");
    let mut waiters = Vec::new();
    for i in 0..4 {
        waiters.push(spawn_run(
            &ep,
            &[],
            "/fifo",
            &format!(
                "[ -e {d}/start{i} ] || date +%s%N > {d}/start{i}; echo {i} >> {}",
                order.display(),
                d = dir.path().display()
            ),
        ));
        // Queue strictly one after another.
        wait_until("waiter to queue", SOON, || {
            cluster.keys("/fifo/").len() == i + 2
        });
    }
    fs::write(&release, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    for w in &mut waiters {
        assert!(wait_exit(w, SOON).success());
    }
    assert_eq!(read(&order), "0\n1\n2\n3\n");
    // Handoff: holder's child finished -> first waiter's child started. The floor is three etcd
    // round trips on loopback; allow a lot for a loaded machine, the benchmark measures it properly.
    let ns = |f: &str| read(&dir.path().join(f)).trim().parse::<i128>().unwrap();
    let handoff_ms = (ns("start0") - ns("released")) / 1_000_000;
    assert!(handoff_ms < 1000, "handoff took {handoff_ms} ms");
    assert_clean_now(&cluster);
}

#[test]
fn interoperates_with_etcdctl_lock_both_ways() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let (ctl_in, ctl_go, ours_ran) = (
        dir.path().join("ctl_in"),
        dir.path().join("ctl_go"),
        dir.path().join("ours"),
    );

    // etcdctl holds; etcdlock must queue behind it.
    let mut ctl = etcdctl_plain()
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &ep, "lock", "/interop", "--", "sh", "-c"])
        .arg(format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            ctl_in.display(),
            ctl_go.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_file(&ctl_in, "etcdctl's child");
    let mut ours = spawn_run(
        &ep,
        &[],
        "/interop",
        &format!("touch {}", ours_ran.display()),
    );
    wait_until("etcdlock to queue", SOON, || {
        cluster.keys("/interop/").len() == 2
    });
    assert!(
        !ours_ran.exists(),
        "etcdlock ran while etcdctl held the lock"
    );
    fs::write(&ctl_go, "").unwrap();
    assert!(wait_exit(&mut ctl, SOON).success());
    assert!(wait_exit(&mut ours, SOON).success());
    assert!(ours_ran.exists());

    // etcdlock holds; etcdctl must queue behind it.
    let (our_in, our_go, ctl_ran) = (
        dir.path().join("our_in"),
        dir.path().join("our_go"),
        dir.path().join("ctl_ran"),
    );
    let mut ours = spawn_run(
        &ep,
        &[],
        "/interop",
        &format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            our_in.display(),
            our_go.display()
        ),
    );
    wait_file(&our_in, "etcdlock's child");
    let mut ctl = etcdctl_plain()
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &ep, "lock", "/interop", "--", "touch"])
        .arg(&ctl_ran)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("etcdctl to queue", SOON, || {
        cluster.keys("/interop/").len() == 2
    });
    assert!(
        !ctl_ran.exists(),
        "etcdctl ran while etcdlock held the lock"
    );
    fs::write(&our_go, "").unwrap();
    assert!(wait_exit(&mut ours, SOON).success());
    assert!(wait_exit(&mut ctl, SOON).success());
    assert!(ctl_ran.exists());
    // etcdctl lock does not revoke its session lease when it exits: its two leases linger until
    // their TTL runs out. Ours were revoked, and no key is left.
    assert!(cluster.lock_keys("").is_empty());
    assert_eq!(
        cluster.leases().len(),
        2,
        "only etcdctl's own two session leases may remain"
    );
}

#[test]
fn every_forwarded_signal_reaches_the_child() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let ready = dir.path().join("ready");
    let script = format!(
        "for s in HUP INT QUIT USR1 USR2; do trap \"echo $s >> {log}\" $s; done; \
         trap 'echo TERM >> {log}; exit 3' TERM; touch {ready}; while :; do sleep 0.05; done",
        log = log.display(),
        ready = ready.display()
    );
    let mut run = spawn_run(&ep, &[], "/signals", &script);
    wait_file(&ready, "child to install its traps");
    let pid = Pid::from_raw(run.id() as i32);
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGINT, "INT"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
    ] {
        kill(pid, sig).unwrap();
        wait_until(&format!("child to get {name}"), SOON, || {
            read(&log).lines().any(|l| l == name)
        });
    }
    kill(pid, Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut run, SOON);
    assert!(read(&log).contains("TERM"));
    assert_eq!(
        status.code(),
        Some(3),
        "exit code of the child after SIGTERM"
    );
    assert_clean_now(&cluster);
}

#[test]
fn a_signal_while_waiting_leaves_the_queue() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let go = dir.path().join("go");
    let mut holder = spawn_run(
        &ep,
        &[],
        "/cancel",
        &format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            ready.display(),
            go.display()
        ),
    );
    wait_file(&ready, "holder");
    for (sig, code) in [
        (Signal::SIGINT, 130),
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
    ] {
        let mut waiter = spawn_run(&ep, &[], "/cancel", "echo must-not-run; exit 99");
        wait_until("waiter to queue", SOON, || {
            cluster.keys("/cancel/").len() == 2
        });
        kill(Pid::from_raw(waiter.id() as i32), sig).unwrap();
        assert_eq!(wait_exit(&mut waiter, SOON).code(), Some(code));
        assert_eq!(
            cluster.keys("/cancel/").len(),
            1,
            "the waiter's key must be gone"
        );
        assert_eq!(
            cluster.leases().len(),
            1,
            "the waiter's lease must be revoked"
        );
    }
    fs::write(&go, "").unwrap();
    assert!(wait_exit(&mut holder, SOON).success());
    assert_clean_now(&cluster);
}

#[test]
fn sigkill_of_etcdlock_kills_the_child_and_the_lock_frees_after_the_ttl() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut run = spawn_run(
        &ep,
        &["--ttl", "3s"],
        "/crash",
        &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
    );
    let child = read_pid_file(&pidfile, SOON);
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    let _ = run.wait();
    let killed_at = Instant::now();
    wait_until("child to die with etcdlock", SOON, || !pid_alive(child));
    // The lease is not revoked (etcdlock had no chance), so a waiter gets the lock after the TTL.
    let ran = dir.path().join("ran");
    let mut waiter = spawn_run(&ep, &[], "/crash", &format!("touch {}", ran.display()));
    assert!(wait_exit(&mut waiter, SOON).success());
    let waited = killed_at.elapsed();
    assert!(ran.exists());
    assert!(
        waited >= Duration::from_secs(1),
        "the lock freed before the lease could expire ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(3 + 5),
        "takeover took {waited:?}"
    );
    assert_clean_now(&cluster);
}

/// Revoke the lease or delete the key from outside: the child must be stopped and etcdlock must
/// exit 70 with one line saying why.
#[test]
fn external_revoke_or_delete_kills_the_child_with_70() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    for how in ["revoke", "delete"] {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut run = etcdlock(&ep)
            .args(["run", "/lost", "--", "sh", "-c"])
            .arg(format!("echo $$ > {}; exec sleep 600", pidfile.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let child = read_pid_file(&pidfile, SOON);
        let key = cluster.keys("/lost/").pop().expect("our key");
        let lease = key.rsplit('/').next().unwrap().to_owned();
        match how {
            "revoke" => drop(cluster.etcdctl_ok(&["lease", "revoke", &lease])),
            _ => drop(cluster.etcdctl_ok(&["del", &key])),
        };
        let status = wait_exit(&mut run, SOON);
        assert_eq!(status.code(), Some(70), "after {how}");
        assert!(!pid_alive(child), "child survived the {how}");
        let mut stderr = String::new();
        std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("lock /lost lost"), "{stderr}");
        assert_clean_now(&cluster);
    }
}

/// Freeze etcd with SIGSTOP: no keep-alive can be acknowledged, and the child must be dead before
/// the TTL has elapsed since the last acknowledged keep-alive (which was sent before the freeze).
#[test]
fn frozen_etcd_kills_the_child_before_the_lease_can_expire() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    for child_script in [
        "exec sleep 600",
        "trap '' TERM; while :; do sleep 0.05; done",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let ttl = Duration::from_secs(4);
        let mut run = spawn_run(
            &ep,
            &["--ttl", "4s"],
            "/frozen",
            &format!("echo $$ > {}; {child_script}", pidfile.display()),
        );
        let child = read_pid_file(&pidfile, SOON);
        cluster.stop(0);
        let frozen_at = Instant::now();
        let died = poll_until(ttl + Duration::from_secs(5), || !pid_alive(child));
        let dead_after = frozen_at.elapsed();
        cluster.cont(0);
        assert!(died, "child still alive {dead_after:?} after etcd froze");
        assert!(
            dead_after < ttl,
            "child died {dead_after:?} after the freeze, TTL is {ttl:?}"
        );
        assert_eq!(wait_exit(&mut run, SOON).code(), Some(70));
        // The lease may or may not have expired on the server; etcdlock revoked it on exit if it
        // could, otherwise it expires within the TTL.
        cluster.assert_clean_within(ttl + Duration::from_secs(5));
    }
}

/// Killing the leader of a 3-member cluster, even the member etcdlock talks to, must not cost the
/// holder its lock: it fails over to another endpoint and keeps renewing.
#[test]
fn leader_kill_on_three_members_causes_no_kill() {
    let mut cluster = Cluster::three();
    let leader = cluster.leader_index();
    // Put the leader first so it is the member we are connected to.
    let mut order: Vec<usize> = vec![leader];
    order.extend((0..3).filter(|&i| i != leader));
    let ep = order
        .iter()
        .map(|&i| cluster.endpoint(i))
        .collect::<Vec<_>>()
        .join(",");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let go = dir.path().join("go");
    let mut run = spawn_run(
        &ep,
        &["--ttl", "3s"],
        "/leader",
        &format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.05; done; exit 0",
            ready.display(),
            go.display()
        ),
    );
    wait_file(&ready, "holder");
    cluster.kill(leader);
    cluster.wait_healthy();
    // Hold through several TTLs on the new leader.
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        run.try_wait().unwrap().is_none(),
        "etcdlock exited after the leader was killed"
    );
    fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut run, SOON).code(), Some(0));
    assert_clean_now(&cluster);
}

/// etcdlock itself frozen past its deadline (SIGSTOP): the child keeps running meanwhile (nothing
/// can stop that; the fencing token is the defence), but on SIGCONT etcdlock must check its deadline
/// first, stop the child and never carry on as holder, even though the lease was never revoked.
#[test]
fn etcdlock_frozen_past_its_deadline_never_resumes_as_holder() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut run = spawn_run(
        &ep,
        &["--ttl", "3s"],
        "/paused",
        &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
    );
    let child = read_pid_file(&pidfile, SOON);
    let pid = Pid::from_raw(run.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    // Past the TTL: the lease has expired on the server.
    wait_until("lease to expire on the server", SOON, || {
        cluster.leases().is_empty()
    });
    kill(pid, Signal::SIGCONT).unwrap();
    let resumed = Instant::now();
    assert_eq!(wait_exit(&mut run, SOON).code(), Some(70));
    assert!(!pid_alive(child));
    assert!(
        resumed.elapsed() < Duration::from_secs(5),
        "took {:?} to stop after SIGCONT",
        resumed.elapsed()
    );
    assert_clean_now(&cluster);
}

/// A child that floods its output and keeps a core busy for several TTLs must not cost the lock.
#[test]
fn a_chatty_child_does_not_starve_the_keep_alive() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    // Floods its output (inherited, so etcdlock never touches it) and burns CPU for several TTLs.
    let mut run = etcdlock(&ep)
        .args(["run", "--ttl", "2s", "/chatty", "--", "sh", "-c"])
        .arg("end=$(($(date +%s) + 7)); while [ $(date +%s) -lt $end ]; do echo spam spam spam spam; done")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(
        wait_exit(&mut run, Duration::from_secs(60)).code(),
        Some(0),
        "lease lost under load"
    );
    assert_clean_now(&cluster);
}

/// Arguments that are not UTF-8 reach the command byte for byte (no lossy conversion).
#[test]
fn non_utf8_arguments_reach_the_child_unchanged() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let arg = OsStr::from_bytes(b"caf\xe9 \xff\xfe\n-x");
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "/bytes", "--", "sh", "-c"])
        .arg(format!("printf '%s' \"$1\" > {}", out.display()))
        .arg("sh")
        .arg(arg);
    let status = run_with_timeout(cmd, SOON);
    assert!(
        status.status.success(),
        "{}",
        describe_output("etcdlock", &status)
    );
    assert_eq!(fs::read(&out).unwrap(), arg.as_bytes());
    assert_clean_now(&cluster);
}

/// A locked command may itself run etcdlock: the inherited ETCDLOCK_KEY (our lock key) must not
/// be mistaken for a TLS key file by the inner etcdlock.
#[test]
fn nested_etcdlock_runs() {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = etcdlock(&ep);
    cmd.args(["run", "/outer", "--"])
        .arg(etcdlock_bin())
        .args(["--endpoints", &ep, "run", "/inner", "--", "sh", "-c"])
        .arg(format!("echo \"$ETCDLOCK_NAME\" > {}", out.display()));
    let status = run_with_timeout(cmd, SOON);
    assert!(
        status.status.success(),
        "{}",
        describe_output("etcdlock", &status)
    );
    assert_eq!(read(&out), "/inner\n");
    assert_clean_now(&cluster);
}
