//! `etcd-sandbox`: a throwaway etcd for scripts, started by the same launcher the tests use.
//!
//! ```text
//! etcd-sandbox [--members N] [--etcd-arg ARG]... [--until-stdin-closes]
//! ```
//!
//! Starts N members (default 1) on free loopback ports, data in a temporary directory
//! (`$TMPDIR`), waits until they are healthy, then prints shell-friendly lines on stdout and
//! an empty line:
//!
//! ```text
//! ETCD_ENDPOINTS=http://127.0.0.1:23791
//! ETCD_PIDS=4242
//! ETCD_DIRS=/tmp/.tmpAbCd12
//!
//! ```
//!
//! It stays up until SIGTERM, SIGINT or SIGHUP (or, with `--until-stdin-closes`, until its stdin
//! reaches end-of-file, so a parent that dies takes it along), then kills the members and removes
//! their data. `etcd` comes from `ETCD_BIN` or `PATH`.

use std::io::{Read, Write};

use etcdlock_testkit::Cluster;
use nix::sys::signal::{SigSet, Signal};

fn usage() -> ! {
    eprintln!("usage: etcd-sandbox [--members N] [--etcd-arg ARG]... [--until-stdin-closes]");
    std::process::exit(2);
}

fn main() {
    let mut members = 1usize;
    let mut extra: Vec<String> = Vec::new();
    let mut until_stdin = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--members" => {
                members = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--etcd-arg" => extra.push(args.next().unwrap_or_else(|| usage())),
            "--until-stdin-closes" => until_stdin = true,
            _ => usage(),
        }
    }
    // Block the stop signals in every thread; the main thread collects them with sigwait.
    let mut stop = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop.add(sig);
    }
    if stop.thread_block().is_err() {
        eprintln!("etcd-sandbox: cannot block signals");
        std::process::exit(1);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let cluster = Cluster::start(members, &extra);
    let pids: Vec<String> = (0..members).map(|i| cluster.pid(i).to_string()).collect();
    let dirs: Vec<String> = cluster
        .members
        .iter()
        .map(|m| m.dir().display().to_string())
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ETCD_ENDPOINTS={}\nETCD_PIDS={}\nETCD_DIRS={}\n",
        cluster.endpoints(),
        pids.join(","),
        dirs.join(",")
    );
    let _ = out.flush();
    drop(out);
    if until_stdin {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
        });
    }
    let _ = stop.wait();
    drop(cluster);
}
