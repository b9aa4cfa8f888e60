//! What the modules of this test binary share beyond the test kit.

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use etcdlock_testkit::*;

/// Generous bound for anything that should happen "soon" on a noisy 2-core machine.
pub const SOON: Duration = Duration::from_secs(20);

/// What most tests start with: a fresh one-member etcd (see [`Cluster::single`]) and its
/// endpoints.
pub fn etcd() -> (Cluster, String) {
    let cluster = Cluster::single();
    let ep = cluster.endpoints();
    (cluster, ep)
}

/// [`etcd`] and a temp dir for the test's files.
pub fn etcd_with_dir() -> (Cluster, String, tempfile::TempDir) {
    let (cluster, ep) = etcd();
    (cluster, ep, tempfile::tempdir().unwrap())
}

/// Run `body` with a library client of `ep`, on a current-thread runtime (as the binary runs).
pub fn with_client<T>(ep: &str, body: impl AsyncFnOnce(etcdlock::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = etcdlock::Config::new([ep]).unwrap();
        let client = etcdlock::Client::connect(config, etcdlock::client::Check::Lazy)
            .await
            .unwrap();
        body(client).await
    })
}

/// The text of `path`; empty if it does not exist (yet).
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// `etcdlock --endpoints EP ARGS` in the background, its stderr to `stderr`.
pub fn spawn_etcdlock(ep: &str, args: &[&str], stderr: Stdio) -> Child {
    etcdlock_at(ep)
        .args(args)
        .stderr(stderr)
        .spawn()
        .expect("spawn etcdlock")
}

/// `etcdlock status NAME --json`, parsed.
pub fn status_json(ep: &str, name: &str) -> serde_json::Value {
    let (_, out, err) = etcdlock_out(ep, &["status", name, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

/// After a waiter of a lock held by one holder gave up: only the holder's key under `prefix` and
/// its lease are left.
pub fn assert_waiter_left_nothing(cluster: &Cluster, prefix: &str) {
    assert_eq!(
        cluster.keys(prefix).len(),
        1,
        "the waiter's key must be gone"
    );
    assert_eq!(
        cluster.leases().len(),
        1,
        "the waiter's lease must be revoked"
    );
}

/// Freezes the only etcd member (SIGSTOP), so that no keep-alive can be acknowledged, and asserts
/// that `pid` (`what`: the command or one of its descendants) dies before `ttl` has passed since
/// the freeze (waiting up to `ttl` + 5 s); etcd is thawed before the verdict.
pub fn assert_dies_when_etcd_freezes(cluster: &Cluster, pid: i32, ttl: Duration, what: &str) {
    cluster.stop(0);
    let frozen_at = Instant::now();
    let died = poll_until(ttl + Duration::from_secs(5), || !pid_alive(pid));
    let dead_after = frozen_at.elapsed();
    cluster.cont(0);
    assert!(died, "{what} still alive {dead_after:?} after etcd froze");
    assert!(
        dead_after < ttl,
        "{what} died {dead_after:?} after the freeze, TTL is {ttl:?}"
    );
}

/// What a terminal shows: a thread reads the pseudo-terminal's `master` side and sends all it has
/// shown so far after each read (until end-of-file, or the receiver is dropped).
pub fn terminal_output(master: fs::File) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut master = master;
        let (mut buf, mut seen) = ([0u8; 4096], String::new());
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if tx.send(seen.clone()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to [`SOON`]) until the terminal of [`terminal_output`] shows `needle`; all it showed.
pub fn shown(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + SOON;
    let mut seen = String::new();
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the terminal never showed {needle:?}: {seen:?}"
        );
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = s;
        }
    }
    seen
}

/// Put `n` values to `key` through etcdctl, then compact etcd at the last one's revision: the
/// history before it is gone for every watch and read.
pub fn compact_after_puts(cluster: &Cluster, key: &str, n: usize) {
    let mut revision = 0;
    for i in 0..n {
        let put = cluster.etcdctl_ok(&["put", key, &i.to_string(), "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&put).unwrap();
        revision = v["header"]["revision"].as_i64().unwrap();
    }
    cluster.etcdctl_ok(&["compact", &revision.to_string()]);
}

/// etcd's `/metrics` text at `addr` (`host:port`).
pub fn etcd_metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// etcd's count of `method` requests started (unary gRPC), from its /metrics.
pub fn grpc_started(addr: &str, method: &str) -> f64 {
    let needle = format!("grpc_method=\"{method}\"");
    etcd_metrics(addr)
        .lines()
        .filter(|l| l.starts_with("grpc_server_started_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
