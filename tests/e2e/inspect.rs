//! `status`, `list`, `break`, JSON output, `--metrics-file` and `--log-format json` against real etcd.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Instant;

use etcdlock_testkit::*;
use serde_json::Value;

use crate::common::*;

/// `etcdlock ARGS` in the background, stderr to /dev/null.
fn spawn(ep: &str, args: &[&str]) -> Child {
    spawn_etcdlock(ep, args, Stdio::null())
}

const ENTRY_FIELDS: [&str; 17] = [
    "key",
    "lease_id",
    "fencing_token",
    "cluster_id",
    "ttl_remaining_s",
    "held_for_s",
    "waited_for_s",
    "host",
    "pid",
    "user",
    "command",
    "meta",
    "started_at",
    "acquired_at",
    "etcdlock_version",
    "mode",
    "kind",
];

fn assert_entry_schema(e: &Value) {
    for f in ENTRY_FIELDS {
        assert!(e.get(f).is_some(), "entry lacks {f}: {e}");
    }
}

#[test]
fn status_of_a_free_lock() {
    let cluster = Cluster::single();
    let (code, out, _) = etcdlock_out(&cluster.endpoints(), &["status", "/nothing"]);
    assert_eq!(code, Some(1));
    assert_eq!(out, "/nothing: free\n");
    // --json says "free" itself and exits 0, so `status --json | jq` works under pipefail.
    let (code, out, _) = etcdlock_out(&cluster.endpoints(), &["status", "--json", "/nothing"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 3);
    assert_eq!(v["held"], false);
    assert_eq!(v["holders"], Value::Array(vec![]));
}

#[test]
fn status_of_a_held_lock_with_two_waiters() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut holder, go) = hold(&ep, "/st", &["--meta", "job=https://ci/9"], dir.path(), "h");
    let mut waiters: Vec<Child> = Vec::new();
    for i in 0..2 {
        waiters.push(spawn(&ep, &["run", "/st", "--", "true"]));
        cluster.wait_keys("/st/", i + 2);
    }
    let (code, out, _) = etcdlock_out(&ep, &["status", "/st"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("/st: held by 1 · 2 waiting\n"), "{out}");
    assert!(
        out.lines().all(|l| l.chars().count() <= 80),
        "wider than 80 columns:\n{out}"
    );
    let roles: Vec<&str> = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(roles[..3], ["holder", "waiter", "waiter"], "{out}");
    assert!(out.contains(&format!("{}", holder.id())), "{out}");
    assert!(
        out.contains("meta ") && out.contains("job=https://ci/9"),
        "{out}"
    );

    let (code, out, _) = etcdlock_out(&ep, &["status", "--json", "/st"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["holder_count"].as_u64(), v["waiter_count"].as_u64()),
        (Some(1), Some(2))
    );
    let h = &v["holders"][0];
    assert_entry_schema(h);
    assert_eq!(h["pid"], holder.id());
    assert_eq!(h["meta"]["job"], "https://ci/9");
    assert!(h["ttl_remaining_s"].as_i64().unwrap() > 0);
    assert!(h["held_for_s"].is_u64());
    let w: Vec<&Value> = v["waiters"].as_array().unwrap().iter().collect();
    assert_eq!(w[0]["pid"], waiters[0].id());
    assert_eq!(w[1]["pid"], waiters[1].id());
    assert!(w[0]["fencing_token"].as_i64() < w[1]["fencing_token"].as_i64());
    assert!(w.iter().all(|e| e["waited_for_s"].is_u64()));
    // Round trip: what we print parses back to the same document.
    let again: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(again, v);

    assert_eq!(let_go(&mut holder, &go).code(), Some(0));
    for w in &mut waiters {
        assert_eq!(wait_exit(w, SOON).code(), Some(0));
    }
    cluster.assert_clean_now();
}

#[test]
fn status_shows_an_etcdctl_holder_with_unknown_metadata() {
    let (_cluster, ep, dir) = etcd_with_dir();
    let (ready, go) = hold_files(dir.path(), "ctl");
    let mut ctl = Hold::etcdctl(&ep, "/ctl", &go).ready(&ready).start();
    let (code, out, _) = etcdlock_out(&ep, &["status", "/ctl"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("(etcdctl?)"), "{out}");
    let (_, out, _) = etcdlock_out(&ep, &["status", "--json", "/ctl"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_entry_schema(&v["holders"][0]);
    assert_eq!(v["holders"][0]["host"], Value::Null);
    assert_eq!(v["holders"][0]["etcdlock_version"], Value::Null);
    assert_eq!(let_go(&mut ctl, &go).code(), Some(0));
}

/// Grant a lease with etcdctl; returns its id and the id in hex as lock keys carry it.
fn grant(cluster: &Cluster, ttl: u32) -> (i64, String) {
    let out = cluster.etcdctl_ok(&["lease", "grant", &ttl.to_string()]);
    let id = i64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    // etcdctl prints the id zero-padded to 16 digits; lock keys carry it unpadded (`%x`, as
    // etcdctl lock writes it). A lease id's top 16 bits are the member id's low 16 with the sign
    // bit cleared, so one member id in 8 yields ids whose first hex digit is 0.
    (id, format!("{id:x}"))
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Put many keys attached to `lease` in few requests, through etcd's JSON gateway.
fn put_many(addr: &str, keys: &[String], lease: i64) {
    for chunk in keys.chunks(100) {
        let ops: Vec<String> = chunk
            .iter()
            .map(|k| {
                format!(
                    r#"{{"requestPut":{{"key":"{}","value":"","lease":"{lease}"}}}}"#,
                    base64(k.as_bytes())
                )
            })
            .collect();
        let body = format!(r#"{{"success":[{}]}}"#, ops.join(","));
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /v3/kv/txn HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}

#[test]
fn list_many_locks() {
    let (cluster, ep) = etcd();
    let (lease, hex) = grant(&cluster, 120);
    const N: usize = 3000;
    let keys: Vec<String> = (0..N).map(|i| format!("/many/lock-{i:05}/{hex}")).collect();
    put_many(&cluster.members[0].client_addr(), &keys, lease);
    // Not locks: no lease, or a suffix that is not the lease id.
    cluster.etcdctl_ok(&["put", "/many/config/abc", "x"]);

    let started = Instant::now();
    let (code, out, err) = etcdlock_out(&ep, &["list", "--json", "/many/"]);
    eprintln!(
        "list of {N} locks took {:?} (process included)",
        started.elapsed()
    );
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 3);
    let locks = v["locks"].as_array().unwrap();
    assert_eq!(locks.len(), N);
    assert_eq!(locks[0]["name"], "/many/lock-00000");
    assert_eq!(locks[0]["holder_count"], 1);
    assert_eq!(locks[0]["waiter_count"], 0);
    assert_entry_schema(&locks[0]["holders"][0]);
    let ttl = locks[0]["holders"][0]["ttl_remaining_s"].as_i64();
    assert!(
        ttl.is_some_and(|t| t > 60),
        "list shows the holder's TTL: {ttl:?}"
    );
    let cluster_id = locks[0]["holders"][0]["cluster_id"].as_str().unwrap();
    assert!(
        u64::from_str_radix(cluster_id, 16).is_ok_and(|id| id != 0),
        "{cluster_id}"
    );

    let (code, out, _) = etcdlock_out(&ep, &["list", "/many/lock-0000"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1 + 10, "{out}");
    assert!(out.starts_with("LOCK"), "{out}");
    cluster.etcdctl_ok(&["lease", "revoke", &hex]);
}

#[test]
fn list_shows_holders_and_waiters_of_real_locks() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (mut a, go_a) = hold(&ep, "/l/a", &[], dir.path(), "a");
    let (mut b, go_b) = hold(&ep, "/l/b", &["--limit", "2"], dir.path(), "b");
    let mut w = spawn(&ep, &["run", "/l/a", "--", "true"]);
    cluster.wait_keys("/l/a/", 2);
    let (code, out, _) = etcdlock_out(&ep, &["list"]);
    assert_eq!(code, Some(0));
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .to_owned()
    };
    let a_row: Vec<String> = row("/l/a").split_whitespace().map(str::to_owned).collect();
    assert_eq!(a_row[1..3], ["1/1".to_owned(), "1".to_owned()], "{out}");
    assert!(row("/l/b").contains("1/2"), "{out}");
    assert!(row("/l/a").contains(&format!("pid {}", a.id())), "{out}");
    for go in [go_a, go_b] {
        fs::write(go, "").unwrap();
    }
    for c in [&mut a, &mut b, &mut w] {
        assert_eq!(wait_exit(c, SOON).code(), Some(0));
    }
    cluster.assert_clean_now();
}

#[test]
fn break_a_held_lock_and_a_free_one() {
    let (cluster, ep, dir) = etcd_with_dir();
    let (ready, go) = hold_files(dir.path(), "h");
    let mut holder = Hold::run(&ep, &[], "/brk", &go)
        .ready(&ready)
        .stderr(Stdio::piped())
        .start();
    let ran = dir.path().join("waiter-ran");
    let mut waiter = spawn(&ep, &["run", "/brk", "--", "touch", ran.to_str().unwrap()]);
    cluster.wait_keys("/brk/", 2);

    // Without a terminal, --yes is required.
    let (code, _, err) = etcdlock_out(&ep, &["break", "/brk"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(cluster.keys("/brk/").len(), 2);

    let (code, out, err) = etcdlock_out(&ep, &["break", "--yes", "/brk"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("broke /brk: revoked lease"), "{out}");
    assert!(out.contains(&format!("pid {}", holder.id())), "{out}");
    assert_eq!(
        wait_exit(&mut holder, SOON).code(),
        Some(70),
        "the holder goes through the lost-lease path"
    );
    let stderr = stderr_text(&mut holder);
    assert!(stderr.contains("lock /brk lost"), "{stderr}");
    assert_eq!(wait_exit(&mut waiter, SOON).code(), Some(0));
    assert!(ran.exists(), "the waiter got the lock");

    let (code, _, err) = etcdlock_out(&ep, &["break", "--yes", "/brk"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not held"), "{err}");
    cluster.assert_clean_now();
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{lock=\"/m\"}} ")))
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn metrics_file_after_success_failure_and_lost_lock() {
    let (cluster, ep, dir) = etcd_with_dir();
    let file = dir.path().join("etcdlock.prom");
    let f = file.to_str().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    let (code, _, err) = etcdlock_out(
        &ep,
        &["run", "--metrics-file", f, "/m", "--", "sleep", "0.3"],
    );
    assert_eq!(code, Some(0), "{err}");
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# TYPE etcdlock_lock_lost_total counter"),
        "{text}"
    );
    assert_eq!(metric(&text, "etcdlock_exit_code"), 0.0);
    assert!(metric(&text, "etcdlock_last_start_time_seconds") >= before.floor());
    assert!(
        metric(&text, "etcdlock_last_end_time_seconds")
            >= metric(&text, "etcdlock_last_start_time_seconds") + 0.3
    );
    assert!(metric(&text, "etcdlock_run_seconds") >= 0.3);
    assert!(metric(&text, "etcdlock_wait_seconds") >= 0.0);
    assert_eq!(metric(&text, "etcdlock_lock_lost_total"), 0.0);

    let (code, _, _) = etcdlock_out(
        &ep,
        &["run", "--metrics-file", f, "/m", "--", "sh", "-c", "exit 3"],
    );
    assert_eq!(code, Some(3));
    assert_eq!(
        metric(&fs::read_to_string(&file).unwrap(), "etcdlock_exit_code"),
        3.0
    );

    // Lost lock: break it from outside while the command runs.
    let pidfile = dir.path().join("pid");
    let mut run = etcdlock_sh(
        &ep,
        &["--metrics-file", f],
        "/m",
        &format!("echo $$ > {}; exec sleep 60", pidfile.display()),
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    read_pid_file(&pidfile, SOON);
    // While it runs, the file already says when it started.
    let text = fs::read_to_string(&file).unwrap();
    assert!(metric(&text, "etcdlock_last_start_time_seconds") > 0.0);
    assert!(
        !text.contains("etcdlock_exit_code"),
        "no exit code while running:\n{text}"
    );
    let (code, _, _) = etcdlock_out(&ep, &["break", "--yes", "/m"]);
    assert_eq!(code, Some(0));
    assert_eq!(wait_exit(&mut run, SOON).code(), Some(70));
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(metric(&text, "etcdlock_exit_code"), 70.0);
    assert_eq!(metric(&text, "etcdlock_lock_lost_total"), 1.0);
    // No temporary files left beside it.
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "only the metrics file and the pid file"
    );
    cluster.assert_clean_now();
}

#[test]
fn json_logs() {
    let cluster = Cluster::single();
    let (code, _, err) = etcdlock_out(
        &cluster.endpoints(),
        &["-vv", "--log-format", "json", "run", "/log", "--", "true"],
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty(), "-vv logs something");
    for line in lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

/// Issue 25: `list`'s table shows no TTL, so it asks no lease for one (over thousands of locks
/// held by as many leases that was most of its time); `list --json` still has `ttl_remaining_s`.
#[test]
fn the_list_table_reads_no_lease_ttls() {
    let (cluster, ep) = etcd();
    let addr = cluster.members[0].client_addr();
    let mut hexes = Vec::new();
    for i in 0..5 {
        let (lease, hex) = grant(&cluster, 120);
        put_many(&addr, &[format!("/ttl/lock-{i}/{hex}")], lease);
        hexes.push(hex);
    }
    let before = grpc_started(&addr, "LeaseTimeToLive");
    let (code, out, err) = etcdlock_out(&ep, &["list", "/ttl/"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1 + 5, "{out}");
    let table = grpc_started(&addr, "LeaseTimeToLive") - before;
    assert_eq!(table, 0.0, "the table asked {table} leases for their TTL");
    let (code, out, err) = etcdlock_out(&ep, &["list", "--json", "/ttl/"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(grpc_started(&addr, "LeaseTimeToLive") - before >= 5.0);
    let v: Value = serde_json::from_str(&out).unwrap();
    for lock in v["locks"].as_array().unwrap() {
        let ttl = lock["holders"][0]["ttl_remaining_s"].as_i64();
        assert!(ttl.is_some_and(|t| t > 60), "{lock}");
    }
    for hex in hexes {
        cluster.etcdctl_ok(&["lease", "revoke", &hex]);
    }
}

/// Issue 25: `list` reads a page of keys with their values when most of them are locks'. Under a
/// prefix shared with large ordinary values (5 of 1 MiB, more than one answer may carry), that
/// page is refused by the client before it is read; it is then read keys only, and the lock's value
/// by key: the lock is listed with its holder, the data is not.
#[test]
fn list_under_a_prefix_with_large_values_reads_the_locks_and_not_the_data() {
    let (cluster, ep, dir) = etcd_with_dir();
    let big = base64(&vec![b'x'; 1 << 20]);
    for i in 0..5 {
        let key = base64(format!("/shared/data-{i}").as_bytes());
        let body = format!(r#"{{"key":"{key}","value":"{big}"}}"#);
        gateway_post(&ep, "/v3/kv/put", &body).expect("put a large value");
    }
    let (mut holder, done) = hold(&ep, "/shared/job", &[], dir.path(), "h");
    let (code, out, err) = etcdlock_out(&ep, &["list", "/shared/"]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{out}");
    let pid = format!("pid {}", holder.id());
    assert!(
        rows[0].starts_with("/shared/job ") && rows[0].contains(&pid),
        "{out}"
    );
    assert!(let_go(&mut holder, &done).success());
    cluster.etcdctl_ok(&["del", "/shared/data-", "--prefix"]);
    cluster.assert_clean_now();
}
