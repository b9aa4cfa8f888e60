//! Smoke tests for the integration-test harness in `tests/common`.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use etcdlock_testkit::*;

#[test]
fn single_node_put_get_and_clean() {
    let c = Cluster::single();
    assert_eq!(c.members.len(), 1);
    assert_eq!(c.endpoints(), c.endpoint(0));
    c.assert_clean();

    c.etcdctl_ok(&["put", "k", "v"]);
    assert_eq!(c.etcdctl_ok(&["get", "k"]), "k\nv\n");
    assert_eq!(c.get("k").as_deref(), Some("v"));
    assert_eq!(c.get("missing"), None);
    c.etcdctl_ok(&["put", "dir/a b", "1"]);
    assert_eq!(c.keys("dir/"), vec!["dir/a b".to_string()]);
    assert_eq!(c.keys("").len(), 2);

    let granted = c.etcdctl_ok(&["lease", "grant", "60"]);
    let id = granted
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    assert_eq!(c.leases(), vec![id.clone()]);

    // A failing command does not panic in etcdctl(), only in etcdctl_ok().
    assert!(!c.etcdctl(&["lease", "revoke", "ffff"]).status.success());

    c.etcdctl_ok(&["lease", "revoke", &id]);
    c.etcdctl_ok(&["del", "", "--prefix"]);
    c.assert_clean();
}

#[test]
fn assert_clean_reports_leftovers() {
    let c = Cluster::single_with_args(&["--auth-token", "simple"]);
    c.etcdctl_ok(&["put", "left-over", "x"]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Short bound: the key is never going away.
        c.assert_clean_within(Duration::from_secs(1))
    }));
    let err = r.expect_err("assert_clean must fail with a key present");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("left-over"), "unexpected message: {msg}");
}

#[test]
fn three_members_failover_stop_cont_restart() {
    let mut c = Cluster::three();
    assert_eq!(c.endpoints().split(',').count(), 3);
    let leader = c.leader_index();
    c.etcdctl_ok(&["put", "before", "1"]);

    c.kill(leader);
    assert!(!pid_alive(c.pid(leader) as i32));
    c.wait_healthy();
    let new_leader = c.leader_index();
    assert_ne!(new_leader, leader);
    c.etcdctl_ok(&["put", "after", "2"]);

    c.restart(leader);
    c.wait_healthy();
    assert_eq!(c.get("before").as_deref(), Some("1"));
    assert_eq!(c.get("after").as_deref(), Some("2"));

    // Freeze a follower: the other two still form a quorum.
    let follower = (0..3).find(|&i| i != c.leader_index()).unwrap();
    c.stop(follower);
    assert_eq!(proc_state(c.pid(follower) as i32), Some('T'));
    c.etcdctl_ok(&["put", "frozen", "3"]);
    c.wait_healthy();
    c.cont(follower);
    c.wait_healthy();
    c.leader_index();
    let log = std::fs::read_to_string(c.members[leader].log_path()).unwrap();
    assert!(log.contains("--initial-cluster-state existing"));
}

#[test]
fn proxy_pass_blackhole_pass() {
    let c = Cluster::single();
    let proxies = c.proxied();
    let p = &proxies[0];
    assert_eq!(proxy_endpoints(&proxies), p.url());

    let ok = |args: &[&str]| {
        let out = etcdctl_at(&p.url(), args);
        assert!(
            out.status.success(),
            "{}",
            describe_output("via proxy", &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["put", "x", "1"]);
    assert_eq!(ok(&["get", "x", "--print-value-only"]), "1\n");

    p.blackhole();
    let t = Instant::now();
    let out = etcdctl_at(&p.url(), &["--command-timeout=1s", "get", "x"]);
    assert!(
        !out.status.success(),
        "{}",
        describe_output("blackholed get", &out)
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    // Blackholed connections are held open, not refused or closed.
    assert!(p.active_connections() >= 1);

    p.pass();
    assert_eq!(ok(&["get", "x", "--print-value-only"]), "1\n");

    p.delay(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(ok(&["get", "x", "--print-value-only"]), "1\n");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "delay not applied"
    );
    p.pass();

    // reset_all closes a connection that is open right now.
    let before = p.accepted();
    let mut s = std::net::TcpStream::connect(p.addr()).unwrap();
    wait_until(
        "proxy to accept the connection",
        Duration::from_secs(10),
        || p.accepted() > before,
    );
    p.reset_all();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1];
    use std::io::Read;
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected a closed/reset connection, got {other:?}"),
    }
    drop(proxies);
    c.etcdctl_ok(&["del", "x"]);
    c.assert_clean();
}

#[test]
fn process_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 30 & echo $! > {}.tmp && mv {0}.tmp {0}; wait",
            pidfile.display()
        ))
        .spawn()
        .unwrap();
    let sh = child.id() as i32;
    let grandchild = read_pid_file(&pidfile, Duration::from_secs(30));
    assert!(pid_alive(sh) && pid_alive(grandchild));
    assert!(descendants_of(sh).contains(&grandchild));
    assert!(descendants_of(std::process::id() as i32).contains(&grandchild));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(grandchild),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    wait_pid_gone(grandchild, Duration::from_secs(30));
    // sh exits after `wait`; unreaped it is a zombie, which is not alive.
    wait_until("sh to become a zombie", Duration::from_secs(30), || {
        !pid_alive(sh)
    });
    child.wait().unwrap();
    assert!(!pid_alive(sh));
    assert!(!pid_alive(0) && !pid_alive(-1));
}

#[test]
fn free_ports_are_distinct() {
    let ports: HashSet<u16> = (0..100).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 100);
}

#[test]
fn binaries_are_found() {
    assert!(etcd_bin().is_file());
    assert!(etcdctl_bin().is_file());
}
