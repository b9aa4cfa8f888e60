//! The promise holds for the whole process tree (issue 10): processes the command leaves behind
//! (`&`, nohup, `setsid -f`, `set -m`) keep the lock until they exit or are killed with
//! --kill-leftovers, and every kill (lease loss, --max-runtime, SIGTERM escalation, SIGKILL of
//! etcdlock) reaches them. Each scenario runs with the cgroup (where the host has a writable
//! cgroup v2, as CI does as root) and with `ETCDLOCK_CGROUP=off` (subreaper and process group).

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use etcdlock_testkit::*;
use nix::sys::signal::Signal;

use crate::common::*;

/// The two ways etcdlock tracks a tree: `auto` (cgroup where writable) and `off`.
const MODES: [&str; 2] = ["auto", "off"];

/// `etcdlock run OPTS NAME -- sh -c SCRIPT` in the background with `ETCDLOCK_CGROUP=MODE`,
/// stderr into `err`.
fn spawn_run(ep: &str, mode: &str, opts: &[&str], name: &str, script: &str, err: &Path) -> Child {
    etcdlock_sh(ep, opts, name, script)
        .env("ETCDLOCK_CGROUP", mode)
        .stderr(fs::File::create(err).unwrap())
        .spawn()
        .expect("spawn etcdlock")
}

fn run_no_wait(ep: &str, name: &str) -> Option<i32> {
    etcdlock_out(ep, &["-q", "run", "-n", name, "--", "true"]).0
}

/// Runs `scenario(cluster, endpoints, mode, dir)` for each of the [`MODES`], on one etcd, each
/// time with a fresh temp dir.
fn in_each_mode(scenario: impl Fn(&Cluster, &str, &str, &tempfile::TempDir)) {
    let (cluster, ep) = etcd();
    for mode in MODES {
        scenario(&cluster, &ep, mode, &tempfile::tempdir().unwrap());
    }
}

/// Whether this host lets etcdlock create a cgroup v2 of its own (same test as etcdlock's).
fn cgroup_writable() -> bool {
    let Ok(own) = fs::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    }) else {
        return false;
    };
    let probe = Path::new(mount)
        .join(path.trim_start_matches('/'))
        .join(format!("etcdlock-test-probe-{}", std::process::id()));
    let ok = fs::create_dir(&probe).is_ok();
    let _ = fs::remove_dir(&probe);
    ok
}

/// Scripts that leave one background process (`sleep`) running after the command exits. Each
/// writes its pid to `bg`; the command itself exits 3 at once.
fn leftover_scripts(dir: &Path) -> Vec<(&'static str, String)> {
    let body = dir.join("bg.sh");
    fs::write(
        &body,
        format!(
            "trap '' HUP\necho $$ > {}\nexec sleep 600\n",
            dir.join("bg").display()
        ),
    )
    .unwrap();
    let bg = body.display();
    vec![
        ("&", format!("sh {bg} & exit 3")),
        ("nohup", format!("nohup sh {bg} >/dev/null 2>&1 & exit 3")),
        ("setsid -f", format!("setsid -f sh {bg}; exit 3")),
        ("set -m", format!("bash -c 'set -m; sh {bg} & exit 3'")),
    ]
}

#[test]
fn leftovers_keep_the_lock_until_they_exit() {
    in_each_mode(|cluster, ep, mode, dir| {
        for (label, script) in leftover_scripts(dir.path()) {
            let _ = fs::remove_file(dir.path().join("bg"));
            let err = dir.path().join("err");
            let mut holder = spawn_run(ep, mode, &[], "/esc/a", &script, &err);
            let bg = read_pid_file(&dir.path().join("bg"), SOON);
            wait_until("the leftovers line", SOON, || {
                fs::read_to_string(&err)
                    .unwrap_or_default()
                    .contains("still running")
            });
            wait_until("the leftover to exec sleep", SOON, || {
                fs::read_to_string(format!("/proc/{bg}/comm")).is_ok_and(|c| c == "sleep\n")
            });
            let text = fs::read_to_string(&err).unwrap();
            let ours: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("etcdlock:"))
                .collect();
            let line = ours.join("\n");
            assert!(
                line.starts_with("etcdlock: /esc/a: command exited 3; 1 background process (pid ")
                    && line.ends_with("— holding the lock until it exits")
                    && ours.len() == 1,
                "{mode} {label}: {line:?}"
            );
            assert!(
                pid_alive(bg),
                "{mode} {label}: background process gone early"
            );
            assert_eq!(
                run_no_wait(ep, "/esc/a"),
                Some(75),
                "{mode} {label}: lock not held"
            );
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(bg), Signal::SIGTERM).unwrap();
            assert_eq!(
                wait_exit(&mut holder, SOON).code(),
                Some(3),
                "{mode} {label}"
            );
            assert!(
                !pid_alive(bg),
                "{mode} {label}: released before the leftover exited"
            );
            assert_eq!(run_no_wait(ep, "/esc/a"), Some(0), "{mode} {label}");
            cluster.assert_clean_now();
        }
    });
}

#[test]
fn kill_leftovers_stops_them_and_releases_with_the_commands_code() {
    in_each_mode(|cluster, ep, mode, dir| {
        let bg = dir.path().join("bg");
        let err = dir.path().join("err");
        // The leftover ignores TERM: only the SIGKILL after the grace stops it.
        let script = format!(
            "setsid -f sh -c 'echo $$ > {}; trap \"\" TERM; while :; do sleep 0.05; done'; \
             while [ ! -s {} ]; do sleep 0.02; done; exit 3",
            bg.display(),
            bg.display()
        );
        let started = Instant::now();
        let mut holder = spawn_run(
            ep,
            mode,
            &["--kill-leftovers", "--kill-after", "1s"],
            "/esc/k",
            &script,
            &err,
        );
        assert_eq!(wait_exit(&mut holder, SOON).code(), Some(3), "{mode}");
        let pid = read_pid_file(&bg, SOON);
        assert!(
            !pid_alive(pid),
            "{mode}: the leftover survived --kill-leftovers"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{mode}: no grace"
        );
        let text = fs::read_to_string(&err).unwrap();
        assert!(
            text.contains("command exited 3; stopping ")
                && text.contains(" background process")
                && text.contains("(--kill-leftovers)"),
            "{mode}: {text}"
        );
        cluster.assert_clean_now();
    });
}

/// [`spawn_run`] of a command that ignores TERM and leaves a descendant that left the process
/// group (setsid) and ignores TERM too, etcdlock's stderr into `DIR/err`; returns once the
/// descendant wrote its pid to `DIR/pid-TAG`: (etcdlock, the descendant's pid).
fn spawn_escaping(
    ep: &str,
    mode: &str,
    opts: &[&str],
    name: &str,
    dir: &Path,
    tag: &str,
) -> (Child, i32) {
    let pidfile = dir.join(format!("pid-{tag}"));
    let script = format!(
        "setsid -f sh -c 'echo $$ > {}; trap \"\" TERM; while :; do sleep 0.05; done'; \
         trap '' TERM; while :; do sleep 0.05; done",
        pidfile.display()
    );
    let holder = spawn_run(ep, mode, opts, name, &script, &dir.join("err"));
    (holder, read_pid_file(&pidfile, SOON))
}

#[test]
fn lease_loss_kills_a_setsid_descendant_before_the_lease_can_expire() {
    in_each_mode(|cluster, ep, mode, dir| {
        let ttl = Duration::from_secs(4);
        let (mut holder, descendant) =
            spawn_escaping(ep, mode, &["--ttl", "4s"], "/esc/lost", dir.path(), "lost");
        assert_dies_when_etcd_freezes(cluster, descendant, ttl, &format!("{mode}: descendant"));
        assert_eq!(wait_exit(&mut holder, SOON).code(), Some(70), "{mode}");
        cluster.assert_clean_within(ttl + Duration::from_secs(5));
    });
}

#[test]
fn sigkill_of_etcdlock_kills_a_setsid_descendant() {
    in_each_mode(|cluster, ep, mode, dir| {
        let (mut holder, descendant) = spawn_escaping(
            ep,
            mode,
            &["-v", "--ttl", "3s"],
            "/esc/sigkill",
            dir.path(),
            "sigkill",
        );
        let log = fs::read_to_string(dir.path().join("err")).unwrap();
        let cgroup = log
            .split("cgroup=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        signal(&holder, Signal::SIGKILL);
        let _ = holder.wait();
        wait_pid_gone(descendant, SOON);
        if let Some(dir) = cgroup {
            wait_until("the cgroup to be removed", SOON, || {
                !Path::new(&dir).exists()
            });
        }
        // The lease was not revoked (etcdlock died): it expires after its TTL.
        cluster.assert_clean_within(Duration::from_secs(10));
    });
}

#[test]
fn max_runtime_and_sigterm_escalation_reach_a_setsid_descendant() {
    in_each_mode(|cluster, ep, mode, dir| {
        let (mut holder, descendant) = spawn_escaping(
            ep,
            mode,
            &["--max-runtime", "1s", "--kill-after", "500ms"],
            "/esc/timeout",
            dir.path(),
            "timeout",
        );
        assert_eq!(wait_exit(&mut holder, SOON).code(), Some(124), "{mode}");
        assert!(!pid_alive(descendant), "{mode}: survived --max-runtime");

        let (mut holder, descendant) = spawn_escaping(
            ep,
            mode,
            &["--kill-after", "500ms"],
            "/esc/term",
            dir.path(),
            "term",
        );
        signal(&holder, Signal::SIGTERM);
        assert_eq!(wait_exit(&mut holder, SOON).code(), Some(137), "{mode}");
        assert!(
            !pid_alive(descendant),
            "{mode}: survived the SIGKILL escalation"
        );
        cluster.assert_clean_now();
    });
}

#[test]
fn verbose_output_names_the_mechanism() {
    let (_cluster, ep) = etcd();
    let expect_cgroup = cgroup_writable();
    for mode in MODES {
        let mut cmd = etcdlock_at(&ep);
        cmd.env("ETCDLOCK_CGROUP", mode)
            .args(["-v", "run", "/esc/v", "--", "true"]);
        let (_, _, text) = run_text(cmd, SOON);
        let cgroup = text.contains("with a cgroup v2 of its own");
        let subreaper = text.contains("with PR_SET_CHILD_SUBREAPER and its process group");
        assert!(cgroup != subreaper, "{mode}: {text}");
        assert_eq!(cgroup, mode == "auto" && expect_cgroup, "{mode}: {text}");
        if mode == "off" {
            assert!(text.contains("ETCDLOCK_CGROUP=off"), "{text}");
        }
    }
    // CI runs as root: there the cgroup path must really be taken.
    if std::env::var_os("CI").is_some() && nix::unistd::geteuid().is_root() {
        assert!(expect_cgroup, "CI as root but no writable cgroup v2");
    }
}

/// No way a run ends leaves the command's cgroup behind: success, failure, `--max-runtime`, a
/// signal, and etcd failing after the tree was set up (the lease grant that the setup overlaps).
/// etcdlock removes it before it exits; should it not, the reaper helper does (so this waits a
/// little). Where the host has no writable cgroup v2 there is none to find.
#[test]
fn no_exit_leaves_the_cgroup_behind() {
    let (cluster, ep) = etcd();
    // A closed port: the lease grant fails while the tree is being set up beside it.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let cases: [(&str, &[&str], i32); 5] = [
        (&ep, &["run", "/cg/ok", "--", "true"], 0),
        (&ep, &["run", "/cg/fail", "--", "false"], 1),
        (
            &ep,
            &[
                "run",
                "--max-runtime",
                "1s",
                "/cg/slow",
                "--",
                "sleep",
                "30",
            ],
            124,
        ),
        (
            &ep,
            &["run", "/cg/term", "--", "sh", "-c", "kill -TERM $$"],
            143,
        ),
        (
            &closed,
            &["--dial-timeout", "1s", "run", "/cg/down", "--", "true"],
            69,
        ),
    ];
    for (endpoints, args, code) in cases {
        let mut cmd = etcdlock_at(endpoints);
        cmd.arg("-v").args(args);
        let (got, _, text) = run_text(cmd, SOON);
        assert_eq!(got, Some(code), "{args:?}: {text}");
        let cgroup = text
            .split("cgroup=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next());
        assert_eq!(cgroup.is_some(), cgroup_writable(), "{args:?}: {text}");
        if let Some(dir) = cgroup {
            wait_until("the cgroup to be removed", SOON, || {
                !Path::new(dir).exists()
            });
        }
    }
    cluster.assert_clean_now();
}
