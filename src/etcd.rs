//! The connection to the etcd cluster: endpoint list, start-up dial with retries, per-request
//! timeouts and fail-over to the next endpoint when one stops answering.
//!
//! etcd-client balances over all endpoints, but its balancer keeps sending to a member that accepts
//! TCP and then hangs (a partition, a frozen process). We therefore talk to one endpoint at a time and
//! move to the next one ourselves whenever a request fails in a way another member could fix.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use etcd_client::{Client, ConnectOptions};
use tracing::{debug, info};

use crate::cli::GlobalArgs;
use crate::exit::{self, fail};
use etcd_client::{Certificate, Identity, TlsOptions};
use std::path::PathBuf;

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach etcd, resolved from flags, environment and defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    tls: Option<TlsOptions>,
    user: Option<(String, String)>,
    /// The TLS key file, when it came from `ETCDLOCK_KEY` (which the child's environment reuses).
    key_from_env: Option<PathBuf>,
}

/// `ETCDLOCK_<NAME>`, else `ETCDCTL_<NAME>`: etcdlock users often already have etcdctl configured.
fn env_setting(name: &str) -> Option<(String, String)> {
    ["ETCDLOCK_", "ETCDCTL_"].iter().find_map(|prefix| {
        let var = format!("{prefix}{name}");
        std::env::var(&var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (var, v))
    })
}

/// A path from the flag, else from the environment, with where it came from for messages.
fn path_setting(flag: &Option<PathBuf>, flag_name: &str, env: &str) -> Option<(PathBuf, String)> {
    match flag {
        Some(p) => Some((p.clone(), flag_name.to_owned())),
        None if env == "KEY" && inherited_lock_key() => std::env::var("ETCDCTL_KEY")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), "ETCDCTL_KEY".to_owned())),
        None => env_setting(env).map(|(var, v)| (PathBuf::from(v), var)),
    }
}

/// Inside a locked command `ETCDLOCK_KEY` is the lock key (`NAME/<lease hex>`), not a TLS key
/// file: a nested etcdlock must not read it as `--key`. (The parent passes its own TLS key on as
/// `ETCDCTL_KEY`, see [`Config::child_env`].)
fn inherited_lock_key() -> bool {
    match (
        std::env::var("ETCDLOCK_KEY"),
        std::env::var("ETCDLOCK_LEASE_ID"),
    ) {
        (Ok(key), Ok(lease)) => !lease.is_empty() && key.ends_with(&format!("/{lease}")),
        _ => false,
    }
}

fn read_file((path, origin): &(PathBuf, String)) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        fail(
            exit::USAGE,
            format!("cannot read {origin} file {}: {e}", path.display()),
        )
    })
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

/// Read a PEM file and check it holds what it should, so a wrong file is a usage error (2) before
/// any connection, not a TLS failure (69) after one.
fn read_pem(file: &(PathBuf, String), kind: Pem) -> Result<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bytes = read_file(file)?;
    let ok = match kind {
        Pem::Certificates => {
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes).collect();
            !certs.is_empty() && certs.iter().all(Result::is_ok)
        }
        Pem::PrivateKey => PrivateKeyDer::from_pem_slice(&bytes).is_ok(),
    };
    if !ok {
        let what = match kind {
            Pem::Certificates => "PEM certificates (-----BEGIN CERTIFICATE-----)",
            Pem::PrivateKey => "a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        };
        let (path, origin) = file;
        return Err(fail(
            exit::USAGE,
            format!("{origin} file {} does not hold {what}", path.display()),
        ));
    }
    Ok(bytes)
}

impl Config {
    /// Flag, then environment, then default; every value is validated (exit 2 on nonsense).
    pub fn resolve(args: &GlobalArgs) -> Result<Config> {
        let endpoints: Vec<String> = if args.endpoints.is_empty() {
            // Set but empty is a mistake (a CI variable that did not expand), not "use the
            // default": silently talking to 127.0.0.1:2379 could be another cluster entirely.
            for var in ["ETCDLOCK_ENDPOINTS", "ETCDCTL_ENDPOINTS"] {
                if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
                    return Err(fail(
                        exit::USAGE,
                        format!("{var} is set but empty; unset it or name the etcd endpoints"),
                    ));
                }
            }
            match env_setting("ENDPOINTS") {
                Some((_, v)) => v.split(',').map(|s| s.trim().to_owned()).collect(),
                None => vec![DEFAULT_ENDPOINT.to_owned()],
            }
        } else {
            args.endpoints.iter().map(|e| e.trim().to_owned()).collect()
        };
        let dial_timeout = match (args.dial_timeout, env_setting("DIAL_TIMEOUT")) {
            (Some(d), _) => d,
            (None, Some((var, v))) => crate::cli::parse_duration(&v)
                .map_err(|e| fail(exit::USAGE, format!("invalid {var}={v:?}: {e}")))?,
            (None, None) => DEFAULT_DIAL_TIMEOUT,
        };
        if dial_timeout.is_zero() {
            return Err(fail(exit::USAGE, "--dial-timeout must be greater than 0"));
        }
        let tls = Self::tls(args)?;
        let key_from_env = match path_setting(&args.key, "--key", "KEY") {
            Some((path, origin)) if origin == "ETCDLOCK_KEY" => Some(path),
            _ => None,
        };
        for e in &endpoints {
            check_endpoint(e, tls.is_some())?;
        }
        Ok(Config {
            endpoints,
            dial_timeout,
            tls,
            user: Self::user(args)?,
            key_from_env,
        })
    }

    /// Variables the locked command needs so that etcd tools it runs still find our settings:
    /// `ETCDLOCK_KEY` becomes the lock key there, so a TLS key given that way moves to
    /// `ETCDCTL_KEY` (unless that is set already).
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        match &self.key_from_env {
            Some(path) if std::env::var_os("ETCDCTL_KEY").is_none() => {
                vec![("ETCDCTL_KEY", path.to_string_lossy().into_owned())]
            }
            _ => Vec::new(),
        }
    }

    fn tls(args: &GlobalArgs) -> Result<Option<TlsOptions>> {
        let cacert = path_setting(&args.cacert, "--cacert", "CACERT");
        let cert = path_setting(&args.cert, "--cert", "CERT");
        let key = path_setting(&args.key, "--key", "KEY");
        if cacert.is_none() && cert.is_none() && key.is_none() {
            return Ok(None);
        }
        let mut tls = TlsOptions::new();
        tls = match &cacert {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read_pem(ca, Pem::Certificates)?)),
            None => tls.with_native_roots(),
        };
        match (&cert, &key) {
            (Some(c), Some(k)) => {
                tls = tls.identity(Identity::from_pem(
                    read_pem(c, Pem::Certificates)?,
                    read_pem(k, Pem::PrivateKey)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(fail(
                    exit::USAGE,
                    "a client certificate needs both --cert and --key",
                ))
            }
        }
        Ok(Some(tls))
    }

    fn user(args: &GlobalArgs) -> Result<Option<(String, String)>> {
        let Some(user) = args
            .user
            .clone()
            .or_else(|| env_setting("USER").map(|(_, v)| v))
        else {
            if args.password_file.is_some() {
                return Err(fail(
                    exit::USAGE,
                    "--password-file needs a user: add --user NAME (or ETCDLOCK_USER)",
                ));
            }
            return Ok(None);
        };
        let (name, inline) = match user.split_once(':') {
            Some((n, p)) => (n.to_owned(), Some(p.to_owned())),
            None => (user, None),
        };
        if name.is_empty() {
            return Err(fail(exit::USAGE, "--user needs a user name"));
        }
        let password = match (&args.password_file, inline) {
            (Some(path), _) => {
                let text = read_file(&(path.clone(), "--password-file".to_owned()))?;
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }
            (None, Some(p)) => p,
            (None, None) => env_setting("PASSWORD").map(|(_, v)| v).ok_or_else(|| {
                fail(
                    exit::USAGE,
                    format!("no password for etcd user {name}: use --user {name}:PASSWORD, --password-file or ETCDLOCK_PASSWORD"),
                )
            })?,
        };
        Ok(Some((name, password)))
    }
}

/// Accept `http://host:port`, `https://host:port` or `host:port`, as etcdctl does.
fn check_endpoint(e: &str, tls: bool) -> Result<()> {
    let bad = |why: &str| {
        fail(
            exit::USAGE,
            format!("invalid endpoint {e:?}: {why} (expected e.g. http://127.0.0.1:2379)"),
        )
    };
    let rest = if let Some(r) = e.strip_prefix("http://") {
        if tls {
            return Err(bad("--cacert/--cert/--key need https endpoints"));
        }
        r
    } else if let Some(r) = e.strip_prefix("https://") {
        r
    } else if e.contains("://") {
        return Err(bad("the scheme must be http or https"));
    } else {
        e
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err(bad(
            "credentials in endpoint URLs are not used; pass --user and --password-file (or ETCDLOCK_PASSWORD) instead",
        ));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
        return Err(bad("no valid host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok(())
}

/// Errors no retry can fix: bad credentials, TLS trust failures, missing permissions.
pub fn is_fatal(err: &CallError) -> bool {
    if !err.is_transient() {
        return true;
    }
    let text = err.to_string().to_ascii_lowercase();
    ["certificate", "tls", "handshake", "authentication"]
        .iter()
        .any(|w| text.contains(w))
}

/// Whether a failed request might succeed on another member or a little later.
pub fn is_transient(err: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    use tonic::Code;
    match err {
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => true,
        E::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Internal
                | Code::Aborted
        ),
        _ => false,
    }
}

/// A short human description of an etcd error (tonic's Display is several lines of debug output).
pub fn describe(err: &etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(s) => format!("{} ({:?})", s.message(), s.code()),
        etcd_client::Error::TransportError(t) => {
            let mut msg = t.to_string();
            let mut src = std::error::Error::source(t);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        }
        other => other.to_string(),
    }
}

/// A request that failed or did not answer in time.
#[derive(Debug)]
pub enum CallError {
    Etcd(etcd_client::Error),
    Timeout(Duration),
}

impl CallError {
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Etcd(e) => is_transient(e),
            CallError::Timeout(_) => true,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Etcd(e) => f.write_str(&describe(e)),
            CallError::Timeout(d) => {
                write!(f, "no answer within {}", humantime::format_duration(*d))
            }
        }
    }
}

impl std::error::Error for CallError {}

struct Current {
    client: Client,
    index: usize,
    generation: u64,
}

/// A cheap-to-clone handle on the cluster; all clones share the current endpoint.
#[derive(Clone)]
pub struct Etcd {
    config: Arc<Config>,
    current: Arc<Mutex<Current>>,
    /// Bumped on every endpoint switch, so long-lived watches know to re-establish themselves.
    switched: Arc<tokio::sync::watch::Sender<u64>>,
    /// From the first response header seen (see [`Etcd::note_cluster`]).
    cluster_id: Arc<AtomicU64>,
}

/// How much [`Etcd::connect`] checks before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Ask a member for its status: it must answer and have a leader. For commands whose first
    /// request would otherwise not be bounded by the dial timeout.
    Leader,
    /// Only set up the connection; the caller's first request (bounded by the dial timeout and
    /// retried on other endpoints) is the check. Saves a round trip on `run`'s critical path.
    Lazy,
}

fn options(config: &Config, connect_timeout: Duration) -> ConnectOptions {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(connect_timeout)
        // A member cut off from the leader answers "no leader" at once instead of hanging.
        .with_require_leader(true)
        .with_keep_alive_while_idle(false);
    if let Some(tls) = &config.tls {
        opts = opts.with_tls(tls.clone());
    }
    if let Some((user, password)) = &config.user {
        // Simple tokens expire (--auth-token-ttl); long holds must keep working.
        opts = opts
            .with_user(user.clone(), password.clone())
            .with_auto_token_refresh(true);
    }
    opts
}

async fn open(config: &Config, endpoint: &str, timeout: Duration) -> Result<Client, CallError> {
    let connect = Client::connect([endpoint], Some(options(config, timeout)));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(CallError::Etcd(e)),
        Err(_) => Err(CallError::Timeout(timeout)),
    }
}

impl Etcd {
    /// Find a member that answers and has a leader, trying every endpoint with backoff until the
    /// dial timeout runs out (exit 69 then): an etcd restart or election should not fail a cron job.
    pub async fn connect(mut config: Config, check: Check) -> Result<Etcd> {
        let started = Instant::now();
        let deadline = started + config.dial_timeout;
        let mut backoff = Duration::from_millis(50);
        let mut last_error = String::new();
        let n = config.endpoints.len();
        let mut attempt = 0usize;
        loop {
            let index = attempt % n;
            let endpoint = &config.endpoints[index];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(fail(
                    exit::UNAVAILABLE,
                    format!(
                        "cannot reach etcd at {} within {} ({last_error}); check --endpoints and that etcd is running",
                        config.endpoints.join(","),
                        humantime::format_duration(config.dial_timeout)
                    ),
                ));
            }
            let probed = match check {
                Check::Leader => probe(&config, endpoint, left).await,
                Check::Lazy => open(&config, endpoint, left).await.map(|c| (c, 0)),
            };
            match probed {
                Ok((client, cluster_id)) => {
                    info!(endpoint, "connected to etcd");
                    return Ok(Etcd {
                        cluster_id: Arc::new(AtomicU64::new(cluster_id)),
                        current: Arc::new(Mutex::new(Current {
                            client,
                            index,
                            generation: 0,
                        })),
                        config: Arc::new(config),
                        switched: Arc::new(tokio::sync::watch::Sender::new(0)),
                    });
                }
                Err(e)
                    if config.user.is_some()
                        && e.to_string().contains("authentication is not enabled") =>
                {
                    // As etcdctl does: credentials for an etcd without authentication (an
                    // exported ETCDCTL_USER meant for another cluster) are a warning, not a stop.
                    crate::output::warn(format!(
                        "warning: etcd at {endpoint} has authentication disabled; going on without the user name and password"
                    ));
                    config.user = None;
                    continue;
                }
                Err(e) if is_fatal(&e) => {
                    return Err(fail(
                        exit::UNAVAILABLE,
                        format!("etcd at {endpoint} refused us: {e}"),
                    ));
                }
                Err(e) => {
                    debug!(endpoint, error = %e, "endpoint not usable");
                    last_error = format!("{endpoint}: {e}");
                }
            }
            attempt += 1;
            if attempt.is_multiple_of(n) {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(jitter(backoff).min(left)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }

    /// The cluster id (0 until a response header was seen).
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id.load(Ordering::Relaxed)
    }

    /// Remember the cluster id from a response header.
    pub fn note_cluster(&self, header: Option<&etcd_client::ResponseHeader>) {
        if let Some(h) = header {
            self.cluster_id.store(h.cluster_id(), Ordering::Relaxed);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How long one unary request may take before we try another member.
    pub fn request_timeout(&self) -> Duration {
        self.config
            .dial_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(5))
    }

    /// The client for the current endpoint and its generation (for [`Etcd::failover`]).
    pub fn client(&self) -> (Client, u64) {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (cur.client.clone(), cur.generation)
    }

    /// Move to the next endpoint, unless someone already did since `generation` was read.
    pub async fn failover(&self, generation: u64) {
        let next = {
            let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if cur.generation != generation || self.config.endpoints.len() == 1 {
                // With one endpoint a fresh channel still helps: the old one may be stuck on a
                // dead TCP connection.
                if cur.generation != generation {
                    return;
                }
            }
            (cur.index + 1) % self.config.endpoints.len()
        };
        let endpoint = self.config.endpoints[next].clone();
        let timeout = self.request_timeout();
        match open(&self.config, &endpoint, timeout).await {
            Ok(client) => {
                let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
                if cur.generation == generation {
                    info!(endpoint, "switched etcd endpoint");
                    *cur = Current {
                        client,
                        index: next,
                        generation: generation + 1,
                    };
                    self.switched.send_replace(generation + 1);
                }
            }
            Err(e) => debug!(endpoint, error = %e, "cannot open endpoint"),
        }
    }

    /// Notified whenever the current endpoint changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.switched.subscribe()
    }

    /// Run one request against the current endpoint with the request timeout; a transient failure
    /// moves us to the next endpoint before the error is returned, so a retry goes elsewhere.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, CallError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_within(self.request_timeout(), f).await
    }

    /// [`Etcd::call`] with its own timeout.
    pub async fn call_within<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, CallError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let (client, generation) = self.client();
        let result = match tokio::time::timeout(timeout, f(client)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => CallError::Etcd(e),
            Err(_) => CallError::Timeout(timeout),
        };
        if result.is_transient() {
            self.failover(generation).await;
        }
        Err(result)
    }
}

/// Connect to one endpoint and check that it is part of a cluster with a leader.
async fn probe(
    config: &Config,
    endpoint: &str,
    timeout: Duration,
) -> Result<(Client, u64), CallError> {
    let started = Instant::now();
    let mut client = open(config, endpoint, timeout).await?;
    let left = timeout.saturating_sub(started.elapsed());
    let status = tokio::time::timeout(left, client.status())
        .await
        .map_err(|_| CallError::Timeout(timeout))?
        .map_err(CallError::Etcd)?;
    if status.leader() == 0 {
        return Err(CallError::Etcd(etcd_client::Error::InvalidArgs(
            "member has no leader".into(),
        )));
    }
    let cluster_id = status.header().map_or(0, |h| h.cluster_id());
    Ok((client, cluster_id))
}

/// Up to ±25 % random jitter so that many cron jobs retrying together spread out.
pub fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let r = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 1000;
    d.mul_f64(0.75 + f64::from(r) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_validated() {
        for ok in [
            "http://127.0.0.1:2379",
            "127.0.0.1:2379",
            "http://etcd-1:2379/",
            "localhost:1",
        ] {
            assert!(check_endpoint(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://",
            "http://host",
            "ftp://a:1",
            "http://a:99999",
            "a b:1",
            "http://:1",
        ] {
            let err = check_endpoint(bad, false).unwrap_err();
            assert_eq!(exit::code_of(&err), exit::USAGE, "{bad}");
        }
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let d = Duration::from_millis(1000);
        let j = jitter(d);
        assert!(j >= Duration::from_millis(750) && j <= Duration::from_millis(1250));
    }
}
