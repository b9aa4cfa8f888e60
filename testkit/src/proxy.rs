//! A TCP proxy (own thread, own tokio runtime) that can pass, blackhole, stall, delay or reset
//! traffic: partitions without root.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::*;

// ---------------------------------------------------------------------------
// TCP proxy
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Read and discard everything, keep sockets open.
    Blackhole,
    /// Stop reading (bytes stay in kernel buffers, TCP back-pressure); on
    /// `pass()` everything resumes intact — a partition that heals.
    Stall,
    Delay(Duration),
}

/// Connections alive per "reset generation" (see [`Proxy::reset_all`]).
type GenCounts = Arc<Mutex<BTreeMap<u64, usize>>>;

struct ConnGuard {
    counts: GenCounts,
    generation: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.generation) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.generation);
            }
        }
    }
}

/// TCP proxy on `127.0.0.1:<free port>` forwarding every accepted connection
/// to `target`. Runs on its own thread with its own current-thread tokio
/// runtime, so plain `#[test]`s can use it. Dropping it closes the listener
/// and every connection.
pub struct Proxy {
    port: u16,
    target: String,
    mode: tokio::sync::watch::Sender<Mode>,
    reset: tokio::sync::watch::Sender<u64>,
    counts: GenCounts,
    accepted: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding to `target` (`"127.0.0.1:PORT"`) in pass mode.
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let (mode_tx, mode_rx) = tokio::sync::watch::channel(Mode::Pass);
        let (reset_tx, reset_rx) = tokio::sync::watch::channel(0u64);
        let (shut_tx, shut_rx) = tokio::sync::oneshot::channel::<()>();
        let counts: GenCounts = Arc::default();
        let accepted: Arc<AtomicU64> = Arc::default();
        let thread = {
            let target = target.to_owned();
            let counts = counts.clone();
            let accepted = accepted.clone();
            thread::Builder::new()
                .name(format!("test-proxy-{port}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("proxy runtime");
                    rt.block_on(async move {
                        let listener =
                            tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                        tokio::select! {
                            _ = shut_rx => {}
                            _ = accept_loop(listener, target, mode_rx, reset_rx, counts, accepted) => {}
                        }
                    });
                    // Dropping the runtime drops every connection task, which
                    // closes their sockets.
                    drop(rt);
                })
                .expect("spawn proxy thread")
        };
        Proxy {
            port,
            target: target.to_owned(),
            mode: mode_tx,
            reset: reset_tx,
            counts,
            accepted,
            shutdown: Some(shut_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Forward normally (also ends blackhole/stall/delay).
    pub fn pass(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Keep accepting and keep every socket open, but silently discard all
    /// bytes in both directions, on existing and new connections. Bytes
    /// discarded are gone: after `pass()` an existing connection's stream is
    /// corrupt (a real client will see a protocol error and reconnect).
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Stop moving bytes without discarding them: the proxy stops reading,
    /// so data waits in socket buffers (peers eventually block on write).
    /// After `pass()` the streams resume intact, like a healed partition.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forward every chunk `d` after it was received (latency, not a
    /// throughput limit: chunks are pipelined).
    pub fn delay(&self, d: Duration) {
        self.mode.send_replace(Mode::Delay(d));
    }

    /// Close all connections that exist now (RST to both sides: zero
    /// linger), and wait (bounded) until they are gone. Connections accepted
    /// afterwards are unaffected. The mode is not changed.
    pub fn reset_all(&self) {
        let mut new_gen = 0;
        self.reset.send_modify(|g| {
            *g += 1;
            new_gen = *g;
        });
        wait_until(
            "proxy connections to close after reset_all",
            STARTUP_TIMEOUT,
            || {
                let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                c.range(..new_gen).all(|(_, n)| *n == 0)
            },
        );
    }

    /// Total number of client connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Number of currently open client connections.
    pub fn active_connections(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    target: String,
    mode: tokio::sync::watch::Receiver<Mode>,
    reset: tokio::sync::watch::Receiver<u64>,
    counts: GenCounts,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let sock = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // e.g. EMFILE; back off instead of spinning.
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        let mut reset = reset.clone();
        let generation = *reset.borrow_and_update();
        *counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(generation)
            .or_default() += 1;
        let guard = ConnGuard {
            counts: counts.clone(),
            generation,
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(handle_conn(
            sock,
            target.clone(),
            mode.clone(),
            reset,
            guard,
        ));
    }
}

async fn handle_conn(
    mut client: tokio::net::TcpStream,
    target: String,
    mode: tokio::sync::watch::Receiver<Mode>,
    mut reset: tokio::sync::watch::Receiver<u64>,
    _guard: ConnGuard,
) {
    let _ = client.set_nodelay(true);
    let connected = tokio::select! {
        r = tokio::net::TcpStream::connect(&target) => r.ok(),
        _ = reset.changed() => {
            let _ = client.set_zero_linger();
            return;
        }
    };
    let Some(mut upstream) = connected else {
        // Target unreachable. A blackhole must look like a hang, not a
        // refusal: swallow bytes until reset. Otherwise just close.
        if matches!(*mode.borrow(), Mode::Blackhole | Mode::Stall) {
            sink(client, reset).await;
        }
        return;
    };
    let _ = upstream.set_nodelay(true);
    let was_reset = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let forward =
            async { tokio::try_join!(pump(cr, uw, mode.clone()), pump(ur, cw, mode.clone())) };
        tokio::select! {
            _ = forward => false,
            _ = reset.changed() => true,
        }
    };
    if was_reset {
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}

async fn sink(mut client: tokio::net::TcpStream, mut reset: tokio::sync::watch::Receiver<u64>) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = client.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = reset.changed() => {
                let _ = client.set_zero_linger();
                return;
            }
        }
    }
}

/// Moves bytes from `r` to `w` according to the current mode. Returns Ok on
/// a clean EOF (after forwarding it as a write shutdown), Err on I/O error.
async fn pump(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    mut mode: tokio::sync::watch::Receiver<Mode>,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant as TInstant;
    const MAX_QUEUED_CHUNKS: usize = 256;
    let mut queue: VecDeque<(TInstant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    loop {
        let m = *mode.borrow_and_update();
        if eof && queue.is_empty() && matches!(m, Mode::Pass | Mode::Delay(_)) {
            let _ = w.shutdown().await;
            return Ok(());
        }
        let can_read = !eof && queue.len() < MAX_QUEUED_CHUNKS && m != Mode::Stall;
        let next_due = if m == Mode::Stall {
            None
        } else {
            queue.front().map(|(t, _)| *t)
        };
        tokio::select! {
            res = r.read(&mut buf), if can_read => {
                match res? {
                    0 => eof = true,
                    n => match m {
                        Mode::Blackhole => {}
                        Mode::Pass | Mode::Stall => queue.push_back((TInstant::now(), buf[..n].to_vec())),
                        Mode::Delay(d) => queue.push_back((TInstant::now() + d, buf[..n].to_vec())),
                    },
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(TInstant::now)), if next_due.is_some() => {
                let (_, data) = queue.pop_front().expect("queue non-empty");
                if *mode.borrow() != Mode::Blackhole {
                    w.write_all(&data).await?;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return Ok(()); // proxy dropped
                }
            }
        }
    }
}
