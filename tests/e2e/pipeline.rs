//! Locks held across CI jobs (issue 14): `acquire` → `run --handle` steps in separate processes
//! → `release`, expiry with no process alive, `renew`, handles that are lost, malformed or from
//! another cluster, interrupting `acquire`, and `break` of a handle's lock.

use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::lockset::*;
use etcdlock_testkit::*;
use nix::sys::signal::Signal;

use crate::common::{etcd, etcd_with_dir};

const SOON: Duration = Duration::from_secs(30);

/// `etcdlock acquire ARGS… NAME`, which must succeed: the handle it printed.
fn acquire(ep: &str, args: &[&str]) -> String {
    let mut all = vec!["acquire"];
    all.extend_from_slice(args);
    let (code, out, err) = etcdlock_out(ep, &all);
    assert_eq!(code, Some(0), "acquire {args:?}: {err}");
    assert_eq!(out.lines().count(), 1, "one line on stdout: {out:?}");
    out.trim_end().to_owned()
}

/// `etcdlock acquire` in the background (it waits), stdout piped for the handle.
fn spawn_acquire(ep: &str, name: &str) -> Child {
    etcdlock_at(ep)
        .args(["acquire", "--ttl", "60s", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The handle a background `acquire` printed, once it has the lock.
fn handle_of(mut acquire: Child) -> String {
    let status = wait_exit(&mut acquire, SOON);
    assert!(status.success(), "acquire: {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut acquire.stdout.take().unwrap(), &mut out).unwrap();
    out.trim_end().to_owned()
}

/// The fencing token in a handle (`etl2.<cluster>.<lease>.<token>.<name>.<secret>.<check>`).
fn token_of(handle: &str) -> i64 {
    handle.split('.').nth(3).unwrap().parse().unwrap()
}

fn still_waiting(child: &mut Child, what: &str) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what} should still wait"
    );
}

/// One pipeline step: `run --handle H -- <lock-set child>`, in its own process.
fn step(w: &Workload, ep: &str, handle: &str, contender: usize) -> ExitStatus {
    let mut cmd = etcdlock_at(ep);
    cmd.args(["run", "--handle", handle, "--"])
        .arg(Workload::child_exe());
    let spec = ChildSpec {
        hold_ms: 150,
        ..ChildSpec::default()
    };
    w.configure(&mut cmd, contender, &spec);
    cmd.stdout(Stdio::null());
    run_with_timeout(cmd, SOON).status
}

fn three_steps(w: &Workload, ep: &str, handle: &str, pipeline: usize) {
    for i in 0..3 {
        let status = step(w, ep, handle, pipeline * 10 + i);
        assert!(status.success(), "pipeline {pipeline} step {i}: {status}");
    }
}

fn release(ep: &str, handle: &str) {
    let (code, _, err) = etcdlock_out(ep, &["release", handle]);
    assert_eq!(code, Some(0), "release: {err}");
}

#[test]
fn pipelines_hold_across_processes_and_queue_fifo() {
    let (cluster, ep) = etcd();
    let w = Workload::new("pipeline");
    let a = acquire(&ep, &["--ttl", "60s", "/deploy"]);
    // Two more pipelines queue behind it, in this order.
    let mut b = spawn_acquire(&ep, "/deploy");
    wait_until("pipeline B queued", SOON, || {
        cluster.lock_keys("/deploy/").len() == 2
    });
    let mut c = spawn_acquire(&ep, "/deploy");
    wait_until("pipeline C queued", SOON, || {
        cluster.lock_keys("/deploy/").len() == 3
    });

    three_steps(&w, &ep, &a, 0);
    still_waiting(&mut b, "pipeline B while A runs");
    still_waiting(&mut c, "pipeline C while A runs");
    release(&ep, &a);
    let b = handle_of(b);
    still_waiting(&mut c, "pipeline C while B holds");
    three_steps(&w, &ep, &b, 1);
    release(&ep, &b);
    let c = handle_of(c);
    three_steps(&w, &ep, &c, 2);
    release(&ep, &c);

    assert!(token_of(&a) < token_of(&b) && token_of(&b) < token_of(&c));
    let report = w.check();
    assert_eq!(report.acquisitions, 9, "{}", report.summary());
    assert_eq!(
        (report.witness_overlaps, report.interval_overlaps),
        (0, 0),
        "{}",
        report.summary()
    );
    assert_eq!(report.counter, 9, "{}", report.summary());
    assert_eq!(report.counter_lost_updates, 0, "{}", report.summary());
    // The steps of one pipeline share its token, so the store sees equal tokens; none is stale.
    report.assert_fence_works("pipelines");
    assert_eq!(report.store_value, 9, "{}", report.summary());
    cluster.assert_clean();
}

#[test]
fn a_handle_lock_expires_with_no_process_alive_unless_renewed() {
    let (cluster, ep) = etcd();
    let ttl = Duration::from_secs(4);
    let h = acquire(&ep, &["--ttl", "4s", "/exp"]);
    std::thread::sleep(Duration::from_millis(2500));
    let renewed_before = Instant::now();
    let (code, _, err) = etcdlock_out(&ep, &["renew", &h]);
    assert_eq!(code, Some(0), "renew: {err}");
    assert!(err.contains("frees itself in 4s"), "{err}");

    // Nothing keeps the lease alive now: a waiter gets the lock when the renewed TTL runs out,
    // not before (and not at the first TTL, which the renew pushed back).
    let mut waiter = etcdlock_at(&ep)
        .args(["run", "/exp", "--", "true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut waiter, SOON);
    assert!(status.success(), "waiter: {status}");
    let waited = renewed_before.elapsed();
    assert!(waited >= ttl, "the lock freed {waited:?} after the renew");

    for args in [
        vec!["release", h.as_str()],
        vec!["renew", h.as_str()],
        vec!["run", "--handle", h.as_str(), "--", "true"],
    ] {
        let (code, _, err) = etcdlock_out(&ep, &args);
        assert_eq!(code, Some(70), "{args:?} of an expired lock: {err}");
        assert!(err.contains("was lost"), "{err}");
        assert!(
            err.contains(" held it since (ended "),
            "the waiter's run: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    cluster.assert_clean();
}

#[test]
fn foreign_and_malformed_handles_are_refused_without_writes() {
    let ours = Cluster::single();
    let theirs = Cluster::single();
    let h = acquire(&theirs.endpoints(), &["--ttl", "60s", "/h"]);
    let ep = ours.endpoints();
    let cut = &h[..h.len() - 1];
    let changed = h.replacen("/h", "/x", 1).replacen(".L2g.", ".L3g.", 1);
    let cases = [
        (h.as_str(), "another etcd cluster"),
        ("", "not an etcdlock handle"),
        ("etl1", "not an etcdlock handle"),
        (cut, "not an etcdlock handle"),
        (changed.as_str(), "not an etcdlock handle"),
        ("etl9.1.2.3.L2g.0", "not an etcdlock handle"),
    ];
    for (handle, says) in cases {
        for args in [
            vec!["release", handle],
            vec!["renew", handle],
            vec!["run", "--handle", handle, "--", "true"],
        ] {
            let (code, _, err) = etcdlock_out(&ep, &args);
            assert_eq!(code, Some(2), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        }
    }
    assert!(ours.keys("").is_empty() && ours.leases().is_empty());
    // The handle still works where it came from.
    release(&theirs.endpoints(), &h);
    theirs.assert_clean();
}

#[test]
fn acquire_interrupted_while_waiting_leaves_nothing_and_unreachable_is_69() {
    let (cluster, ep) = etcd();
    let h = acquire(&ep, &["--ttl", "60s", "/busy"]);
    let mut waiting = spawn_acquire(&ep, "/busy");
    wait_until("the second acquire to queue", SOON, || {
        cluster.lock_keys("/busy/").len() == 2
    });
    signal(&waiting, Signal::SIGTERM);
    assert_eq!(wait_exit(&mut waiting, SOON).code(), Some(128 + 15));
    assert_eq!(cluster.lock_keys("/busy/").len(), 1, "its key is gone");
    assert_eq!(cluster.leases().len(), 1, "its lease is revoked");
    let (code, _, err) = etcdlock_out(&ep, &["acquire", "-n", "/busy"]);
    assert_eq!(code, Some(75), "-n on a held lock: {err}");
    release(&ep, &h);
    cluster.assert_clean();

    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, out, err) = etcdlock_out(&dead, &["--dial-timeout", "1s", "acquire", "/x"]);
    assert_eq!((code, out.as_str()), (Some(69), ""), "{err}");
}

#[test]
fn break_frees_a_handle_lock_and_the_pipeline_sees_it_lost() {
    let (cluster, ep) = etcd();
    let h = acquire(&ep, &["--ttl", "60s", "/stuck"]);
    let (code, out, _) = etcdlock_out(&ep, &["status", "/stuck"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("(handle)"), "{out}");
    let (code, out, err) = etcdlock_out(&ep, &["break", "--yes", "/stuck"]);
    assert_eq!(code, Some(0), "break: {err}");
    assert!(out.contains("of a handle acquired on"), "{out}");
    let (code, _, err) = etcdlock_out(&ep, &["release", &h]);
    assert_eq!(code, Some(70), "release after break: {err}");
    assert!(err.contains("nobody has taken it since"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let mut next = holder(&ep, dir.path(), "next", &[], "/stuck");
    wait_started(dir.path(), "next");
    let (code, _, err) = etcdlock_out(&ep, &["renew", &h]);
    assert_eq!(code, Some(70), "renew after break: {err}");
    assert!(err.contains("someone else holds it now: "), "{err}");
    let_go_of(dir.path(), "next", &mut next);
    cluster.assert_clean();
}

#[test]
fn run_handle_supervises_keeps_alive_and_leaves_the_lock_held() {
    let (cluster, ep, dir) = etcd_with_dir();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "EARLIER=1\n").unwrap();
    let env = env_file.to_str().unwrap();
    let (code, out, err) = etcdlock_out(
        &ep,
        &["acquire", "--ttl", "3s", "--json", "--env-file", env, "/j"],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = v["handle"].as_str().unwrap().to_owned();
    let token = v["fencing_token"].as_i64().unwrap();
    assert_eq!(v["key"], format!("/j/{}", v["lease_id"].as_str().unwrap()));
    assert!(v["expires_at"].is_string(), "{v}");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("EARLIER=1\nETCDLOCK_HANDLE={h}\nETCDLOCK_FENCING_TOKEN={token}\n")
    );

    // The command runs longer than the TTL: run --handle keeps the lease alive meanwhile.
    let (code, out, err) = etcdlock_out(
        &ep,
        &[
            "run",
            "--handle",
            &h,
            "--",
            "sh",
            "-c",
            "sleep 5; echo $ETCDLOCK_FENCING_TOKEN; exit 7",
        ],
    );
    assert_eq!(code, Some(7), "the command's exit code: {err}");
    assert_eq!(out.trim(), token.to_string());
    // ... and leaves the lock held by the handle.
    let (_, out, _) = etcdlock_out(&ep, &["status", "--json", "/j"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["holders"][0]["kind"], "handle", "{s}");
    assert_eq!(s["holders"][0]["fencing_token"], token, "{s}");
    release(&ep, &h);
    cluster.assert_clean();
}

/// A holder of `name` (`etcdlock run ARGS NAME`) with the [`hold_files`] of `tag` in `dir`: its
/// command creates the ready file and runs until the release file exists. Returns at once.
fn holder(ep: &str, dir: &Path, tag: &str, args: &[&str], name: &str) -> Child {
    let (ready, release) = hold_files(dir, tag);
    Hold::run(ep, args, name, &release)
        .ready(&ready)
        .stderr(Stdio::null())
        .spawn()
}

/// Like [`holder`] for `etcdctl lock` (an exclusive holder with an empty value).
fn etcdctl_holder(ep: &str, dir: &Path, tag: &str, name: &str) -> Child {
    let (ready, release) = hold_files(dir, tag);
    Hold::etcdctl(ep, name, &release).ready(&ready).spawn()
}

fn started(dir: &Path, tag: &str) -> bool {
    hold_files(dir, tag).0.exists()
}

fn wait_started(dir: &Path, tag: &str) {
    wait_until(&format!("{tag} to start"), SOON, || started(dir, tag));
}

/// Releases the holder `tag` and checks it ended well.
fn let_go_of(dir: &Path, tag: &str, child: &mut Child) {
    let status = let_go(child, &hold_files(dir, tag).1);
    assert!(status.success(), "{tag}: {status}");
}

/// Waits until `name` has `n` keys (holders and waiters), then makes sure that a waiter that
/// should not start has had time to (a reader would have started by now if it could).
fn queued(cluster: &Cluster, name: &str, n: usize) {
    wait_until(&format!("{n} keys under {name}"), SOON, || {
        cluster.lock_keys(&format!("{name}/")).len() == n
    });
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn shared_holders_hold_together_and_an_exclusive_one_alone_in_fifo_order() {
    let (cluster, ep, dir) = etcd_with_dir();
    let d = dir.path();
    // Readers hold together.
    let mut r1 = holder(&ep, d, "r1", &["-s"], "/db");
    let mut r2 = holder(&ep, d, "r2", &["--shared"], "/db");
    wait_started(d, "r1");
    wait_started(d, "r2");
    // A writer waits for both; a reader behind the waiting writer waits for it (no starvation).
    let mut w1 = holder(&ep, d, "w1", &[], "/db");
    queued(&cluster, "/db", 3);
    let mut r3 = holder(&ep, d, "r3", &["-s"], "/db");
    queued(&cluster, "/db", 4);
    assert!(!started(d, "w1") && !started(d, "r3"));
    let (_, out, _) = etcdlock_out(&ep, &["status", "/db"]);
    assert!(out.contains("held by 2 shared · 2 waiting"), "{out}");
    assert!(out.lines().nth(1).unwrap().contains(" MODE "), "{out}");
    let rows: Vec<&str> = out.lines().skip(2).collect();
    let mode = |m: &str| rows.iter().filter(|r| r.contains(m)).count();
    assert_eq!((mode(" shared "), mode(" excl ")), (3, 1), "{out}");
    let (_, out, _) = etcdlock_out(&ep, &["list"]);
    assert!(out.contains("2 shared"), "{out}");

    let_go_of(d, "r1", &mut r1);
    queued(&cluster, "/db", 3);
    assert!(!started(d, "w1"), "the writer waits for the last reader");
    let_go_of(d, "r2", &mut r2);
    wait_started(d, "w1");
    queued(&cluster, "/db", 2);
    assert!(!started(d, "r3"), "a reader waits while the writer holds");
    // The other order: readers queued behind a writer all start when it ends.
    let mut r4 = holder(&ep, d, "r4", &["-s"], "/db");
    queued(&cluster, "/db", 3);
    let_go_of(d, "w1", &mut w1);
    wait_started(d, "r3");
    wait_started(d, "r4");
    let_go_of(d, "r3", &mut r3);
    let_go_of(d, "r4", &mut r4);
    cluster.assert_clean();
}

#[test]
fn shared_locks_exclude_etcdctl_lock_both_ways() {
    let (cluster, ep, dir) = etcd_with_dir();
    let d = dir.path();
    // etcdctl holds: a reader waits.
    let mut ctl = etcdctl_holder(&ep, d, "c1", "/mix");
    wait_started(d, "c1");
    let mut r1 = holder(&ep, d, "r1", &["-s"], "/mix");
    queued(&cluster, "/mix", 2);
    assert!(!started(d, "r1"), "a reader waits for etcdctl lock");
    let_go_of(d, "c1", &mut ctl);
    wait_started(d, "r1");
    // A reader holds: etcdctl lock waits, and so does a reader behind it.
    let mut ctl = etcdctl_holder(&ep, d, "c2", "/mix");
    queued(&cluster, "/mix", 2);
    let mut r2 = holder(&ep, d, "r2", &["-s"], "/mix");
    queued(&cluster, "/mix", 3);
    assert!(!started(d, "c2"), "etcdctl lock waits for a reader");
    assert!(!started(d, "r2"), "a reader waits behind etcdctl lock");
    let_go_of(d, "r1", &mut r1);
    wait_started(d, "c2");
    queued(&cluster, "/mix", 2);
    assert!(!started(d, "r2"));
    let_go_of(d, "c2", &mut ctl);
    wait_started(d, "r2");
    let_go_of(d, "r2", &mut r2);
    // A shared handle, too.
    let h = acquire(&ep, &["--shared", "--ttl", "60s", "/mix"]);
    let (code, _, _) = etcdlock_out(&ep, &["run", "-s", "-n", "/mix", "--", "true"]);
    assert_eq!(code, Some(0), "readers hold together with a shared handle");
    let (code, _, _) = etcdlock_out(&ep, &["run", "-n", "/mix", "--", "true"]);
    assert_eq!(code, Some(75), "a writer does not");
    release(&ep, &h);
    cluster.assert_clean();
}

#[test]
fn shared_with_a_limit_is_a_usage_error() {
    for args in [
        ["run", "-s", "--limit", "2", "/x", "--", "true"].as_slice(),
        ["acquire", "--shared", "--limit", "2", "/x"].as_slice(),
    ] {
        let (code, out, err) = etcdlock_out("http://127.0.0.1:9", args);
        assert_eq!((code, out.as_str()), (Some(2), ""), "{args:?}: {err}");
        assert!(
            err.contains("--shared cannot be combined with --limit"),
            "{err}"
        );
    }
}

/// The store revision: unchanged across a step means the step wrote nothing.
fn revision(cluster: &Cluster) -> i64 {
    let out = cluster.etcdctl_ok(&["get", "/", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["header"]["revision"].as_i64().unwrap()
}

/// Handles forged for the key `entry` (a holder or waiter of `status --json`) of lock `name` from
/// nothing but what `status` shows: in the format of etcdlock 0.1 before secrets (`etl1`, an
/// unkeyed FNV-1a check, which a ten-line script reproduces byte for byte), and in the current
/// format with a guessed secret (the check is only SHA-256 of the rest, anyone can compute it).
pub fn forged_handles(entry: &serde_json::Value, name: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (cluster, lease, token) = (
        entry["cluster_id"].as_str().unwrap(),
        entry["lease_id"].as_str().unwrap(),
        entry["fencing_token"].as_i64().unwrap(),
    );
    let name = b64.encode(name);
    let etl1 = format!("etl1.{cluster}.{lease}.{token}.{name}");
    let fnv = etl1.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let etl2 = format!(
        "etl2.{cluster}.{lease}.{token}.{name}.{}",
        b64.encode([7u8; 32])
    );
    let sum = ring::digest::digest(&ring::digest::SHA256, etl2.as_bytes());
    let check: String = sum.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![format!("{etl1}.{fnv:08x}"), format!("{etl2}.{check}")]
}

/// `run --handle F`, `renew F` and `release F` with each forged handle: exit 2, one line, the
/// command never started, nothing written.
fn assert_forgeries_refused(cluster: &Cluster, ep: &str, forged: &[String], marker: &Path) {
    let m = marker.to_str().unwrap();
    for f in forged {
        for args in [
            vec!["run", "--handle", f, "--", "touch", m],
            vec!["renew", f],
            vec!["release", f],
        ] {
            let before = revision(cluster);
            let (code, _, err) = etcdlock_out(ep, &args);
            assert_eq!(code, Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
            assert!(!marker.exists(), "{args:?} ran its command: {err}");
            assert_eq!(revision(cluster), before, "{args:?} wrote to etcd: {err}");
        }
    }
}

/// Issue 22, reproduction 1a: a handle forged from `status --json` of a plain `run` neither runs
/// a command inside the victim's lock, nor extends its lease, nor kills it by releasing.
#[test]
fn handles_forged_from_a_plain_runs_key_are_refused() {
    let (cluster, ep, dir) = etcd_with_dir();
    let started = dir.path().join("started");
    let mut victim = etcdlock_at(&ep)
        .args(["run", "--ttl", "20s", "/h/victim", "--", "sh", "-c"])
        .arg(format!("touch {}; sleep 6", started.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the victim's command", SOON, || started.exists());
    // Past its lazy mark (1 s after acquiring), so that the victim itself writes nothing more.
    std::thread::sleep(Duration::from_millis(1500));
    let s = crate::common::status_json(&ep, "/h/victim");
    let forged = forged_handles(&s["holders"][0], "/h/victim");
    let marker = dir.path().join("forger-ran");
    assert_forgeries_refused(&cluster, &ep, &forged, &marker);
    let ended = wait_exit(&mut victim, SOON);
    assert_eq!(ended.code(), Some(0), "the victim ran to its end: {ended}");
    cluster.assert_clean();
}

/// Issue 22, reproduction 1b: a handle forged from a waiter's key (or from an acquired handle's
/// key, with a guessed secret) does not run its command while the real holder holds.
#[test]
fn handles_forged_from_a_waiters_key_or_without_the_secret_are_refused() {
    let (cluster, ep, dir) = etcd_with_dir();
    let h = acquire(&ep, &["--ttl", "60s", "/h/q"]);
    let waiter_ran = dir.path().join("waiter-ran");
    let mut waiter = etcdlock_at(&ep)
        .args(["run", "/h/q", "--", "touch", waiter_ran.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the waiter to queue", SOON, || {
        cluster.lock_keys("/h/q/").len() == 2
    });
    let s = crate::common::status_json(&ep, "/h/q");
    let mut forged = forged_handles(&s["waiters"][0], "/h/q");
    forged.extend(forged_handles(&s["holders"][0], "/h/q"));
    let marker = dir.path().join("forger-ran");
    assert_forgeries_refused(&cluster, &ep, &forged, &marker);
    assert!(!waiter_ran.exists());
    // The real handle still works.
    let (code, _, err) = etcdlock_out(&ep, &["renew", &h]);
    assert_eq!(code, Some(0), "{err}");
    release(&ep, &h);
    assert_eq!(wait_exit(&mut waiter, SOON).code(), Some(0));
    assert!(waiter_ran.exists());
    cluster.assert_clean();
}

/// Issue 22, reproduction 3: `--once-per` with `--limit 2` ran the job twice in one period, with
/// `--shared` three times. Refused now, before anything is written.
#[test]
fn once_per_refuses_several_holders() {
    let (cluster, ep, dir) = etcd_with_dir();
    let marker = dir.path().join("ran");
    let m = marker.to_str().unwrap();
    for extra in [["--limit", "2"].as_slice(), ["--shared"].as_slice()] {
        let mut args = vec!["run", "--once-per", "1h"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["/once", "--", "touch", m]);
        let (code, _, err) = etcdlock_out(&ep, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--once-per cannot be combined with"),
            "{args:?}: {err}"
        );
        assert!(!marker.exists(), "{args:?} ran the command");
    }
    assert!(cluster.keys("").is_empty() && cluster.leases().is_empty());
}

/// Issue 22, reproduction 4: an `acquire` whose handle cannot be delivered (stdout closed, a
/// broken pipe, a full device) exits non-zero with one line and leaves nothing held.
#[test]
fn a_handle_that_cannot_be_delivered_is_not_held() {
    let (cluster, ep) = etcd();
    let bin = etcdlock_bin();
    // Closed stdout: refused before anything is taken.
    let script = format!("exec {} \"$@\" >&-", bin.display());
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &script,
        "sh",
        "--endpoints",
        &ep,
        "acquire",
        "/undelivered",
    ]);
    clean_env(&mut cmd);
    let out = run_with_timeout(cmd, SOON);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "closed stdout: {err}");
    assert_eq!(err.lines().count(), 1, "closed stdout: one line: {err}");
    assert!(err.contains("stdout"), "{err}");
    cluster.assert_clean_now();

    // A reader that went away: the pipe is broken when the handle is written.
    let mut child = etcdlock_at(&ep)
        .args(["acquire", "/undelivered"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = wait_exit(&mut child, SOON);
    let err = stderr_text(&mut child);
    assert_eq!(status.code(), Some(1), "broken pipe: {err}");
    assert_eq!(err.lines().count(), 1, "broken pipe: one line: {err}");
    assert!(err.contains("cannot print the handle"), "{err}");
    cluster.assert_clean_now();

    // A full device.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = etcdlock_at(&ep)
        .args(["acquire", "--json", "/undelivered"])
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, SOON);
    let err = stderr_text(&mut child);
    assert_eq!(status.code(), Some(1), "/dev/full: {err}");
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(err.lines().count(), 1, "/dev/full: one line: {err}");
    cluster.assert_clean_now();

    // An --env-file that cannot take the lines.
    let (code, out, err) =
        etcdlock_out(&ep, &["acquire", "--env-file", "/dev/full", "/undelivered"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), ""),
        "--env-file /dev/full: {err}"
    );
    assert!(err.contains("--env-file"), "{err}");
    assert_eq!(
        err.lines().count(),
        1,
        "--env-file /dev/full: one line: {err}"
    );
    cluster.assert_clean_now();
}

/// Issue 23 papercuts: a second `release` of a handle says "already released" and exits 0 (a
/// retried cleanup job stays green), while a real loss stays 70; `acquire --json` carries
/// `schema_version`; `--env-file` is created 0600 and never written through a symbolic link.
#[test]
fn release_twice_json_schema_and_env_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (cluster, ep, dir) = etcd_with_dir();
    let env_file = dir.path().join("handle.env");
    let (code, out, err) = etcdlock_out(
        &ep,
        &[
            "acquire",
            "--json",
            "--env-file",
            env_file.to_str().unwrap(),
            "/twice",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["schema_version"].as_u64().is_some(), "{v}");
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "--env-file mode {mode:o}");
    let h = v["handle"].as_str().unwrap().to_owned();
    release(&ep, &h);
    let (code, _, err) = etcdlock_out(&ep, &["release", &h]);
    assert_eq!(code, Some(0), "second release: {err}");
    assert!(err.contains("already released"), "{err}");
    let (code, _, err) = etcdlock_out(&ep, &["renew", &h]);
    assert_eq!(code, Some(70), "renew after release: {err}");
    assert!(err.contains("was released"), "{err}");

    // A symbolic link as --env-file: refused before the lock is taken.
    let target = dir.path().join("elsewhere");
    let link = dir.path().join("link.env");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, out, err) = etcdlock_out(
        &ep,
        &["acquire", "--env-file", link.to_str().unwrap(), "/twice"],
    );
    assert_eq!((code, out.as_str()), (Some(2), ""), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!target.exists());
    cluster.assert_clean();
}
