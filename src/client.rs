//! The connection to the etcd cluster: where it is ([`Config`]: endpoints, TLS, credentials,
//! dial timeout) and how to talk to it ([`Client`]: start-up dial with retries, per-request
//! timeouts, fail-over to the next endpoint when one stops answering).
//!
//! etcd-client balances over all endpoints, but its balancer keeps sending to a member that accepts
//! TCP and then hangs (a partition, a frozen process). We therefore talk to one endpoint at a time and
//! move to the next one ourselves whenever a request fails in a way another member could fix.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use tracing::{debug, info};

use crate::error::{Error, Result};

type EtcdClient = etcd_client::Client;

/// Where and how to reach one etcd cluster.
///
/// ```
/// use std::time::Duration;
/// use etcdlock::client::Config;
///
/// let config = Config::new(["http://etcd-1:2379", "http://etcd-2:2379"])?
///     .with_dial_timeout(Duration::from_secs(3))?
///     .with_user("ci", "secret");
/// assert_eq!(config.endpoints().len(), 2);
/// # Ok::<(), etcdlock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    endpoints: Vec<String>,
    dial_timeout: Duration,
    tls: Option<TlsOptions>,
    user: Option<(String, String)>,
    records_prefix: String,
}

/// TLS material, PEM-encoded: a CA bundle (else the system's roots) and a client identity.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// CA certificates that sign the members' certificates.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and its private key.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    /// Ok if `pem` holds at least one certificate and nothing unreadable.
    pub fn check_certificates(pem: &[u8]) -> Result<()> {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem).collect();
        if certs.is_empty() || certs.iter().any(|c| c.is_err()) {
            return Err(Error::Config(
                "does not hold PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        Ok(())
    }

    /// Ok if `pem` holds a private key.
    pub fn check_private_key(pem: &[u8]) -> Result<()> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::PrivateKeyDer::from_pem_slice(pem)
            .map(|_| ())
            .map_err(|_| {
                Error::Config(
                    "does not hold a PEM private key (-----BEGIN ... PRIVATE KEY-----)".into(),
                )
            })
    }
}

impl Config {
    /// What `etcdctl` connects to when told nothing.
    pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";
    /// Where run records and once-markers are kept unless configured otherwise (see the
    /// `record` module).
    pub const DEFAULT_RECORDS_PREFIX: &str = ".etcdlock/";
    /// How long [`Client::connect`] keeps trying by default.
    pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

    /// The endpoints of one cluster: `http://host:port`, `https://host:port` or `host:port`.
    pub fn new<I, S>(endpoints: I) -> Result<Config>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() {
            return Err(Error::Config("no etcd endpoint given".into()));
        }
        for e in &endpoints {
            check_endpoint(e, false)?;
        }
        Ok(Config {
            endpoints,
            dial_timeout: Self::DEFAULT_DIAL_TIMEOUT,
            tls: None,
            user: None,
            records_prefix: Self::DEFAULT_RECORDS_PREFIX.to_owned(),
        })
    }

    /// How long [`Client::connect`] (and the first requests) keep trying; more than zero.
    pub fn with_dial_timeout(mut self, timeout: Duration) -> Result<Config> {
        if timeout.is_zero() {
            return Err(Error::Config(
                "the dial timeout must be greater than 0".into(),
            ));
        }
        self.dial_timeout = timeout;
        Ok(self)
    }

    /// Talk TLS (every endpoint must then be https or scheme-less).
    pub fn with_tls(mut self, tls: Tls) -> Result<Config> {
        for e in &self.endpoints {
            check_endpoint(e, true)?;
        }
        let mut options = TlsOptions::new();
        options = match tls.ca_pem {
            Some(ca) => {
                Tls::check_certificates(&ca)?;
                options.ca_certificate(Certificate::from_pem(ca))
            }
            None => options.with_native_roots(),
        };
        if let Some((cert, key)) = tls.identity_pem {
            Tls::check_certificates(&cert)?;
            Tls::check_private_key(&key)?;
            options = options.identity(Identity::from_pem(cert, key));
        }
        self.tls = Some(options);
        Ok(self)
    }

    /// Authenticate as `name` (etcd's simple or JWT tokens; refreshed for long holds).
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Config {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// Keep run records and once-markers under `prefix` instead of
    /// [`Config::DEFAULT_RECORDS_PREFIX`] (see the `record` module for what it must not overlap):
    /// it must end with `/` and hold no control characters.
    pub fn with_records_prefix(mut self, prefix: impl Into<String>) -> Result<Config> {
        let prefix = prefix.into();
        if prefix.is_empty() || !prefix.ends_with('/') || prefix.chars().any(char::is_control) {
            return Err(Error::Config(format!(
                "invalid records prefix {prefix:?}: it must end with '/' and hold no control characters (default {})",
                Self::DEFAULT_RECORDS_PREFIX
            )));
        }
        self.records_prefix = prefix;
        Ok(self)
    }

    /// Where run records and once-markers are kept.
    pub fn records_prefix(&self) -> &str {
        &self.records_prefix
    }

    /// The endpoints, in the order they are tried.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The dial timeout.
    pub fn dial_timeout(&self) -> Duration {
        self.dial_timeout
    }
}

/// Accept `http://host:port`, `https://host:port` or `host:port`, as etcdctl does.
fn check_endpoint(e: &str, tls: bool) -> Result<()> {
    let bad = |why: &str| {
        Error::Config(format!(
            "invalid endpoint {e:?}: {why} (expected e.g. http://127.0.0.1:2379)"
        ))
    };
    let rest = if let Some(r) = e.strip_prefix("http://") {
        if tls {
            return Err(bad(
                "TLS (a CA certificate or a client certificate) needs https endpoints",
            ));
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
            "credentials in endpoint URLs are not used; give the user name and password separately",
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
    /// etcd (or the transport) said no.
    Etcd(etcd_client::Error),
    /// No answer within this long.
    Timeout(Duration),
}

impl CallError {
    /// Whether another member, or a later try, might succeed.
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
    client: EtcdClient,
    index: usize,
    generation: u64,
}

/// A cheap-to-clone handle on one etcd cluster; all clones share the current endpoint.
#[derive(Clone)]
pub struct Client {
    config: Arc<Config>,
    current: Arc<Mutex<Current>>,
    /// Bumped on every endpoint switch, so long-lived watches know to re-establish themselves.
    switched: Arc<tokio::sync::watch::Sender<u64>>,
    /// From the first response header seen (see [`Client::note_cluster`]).
    cluster_id: Arc<AtomicU64>,
    /// What the caller should tell its user (see [`Client::notices`]).
    notices: Arc<Vec<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.config.endpoints)
            .field("cluster_id", &format_args!("{:x}", self.cluster_id()))
            .finish_non_exhaustive()
    }
}

/// How much [`Client::connect`] checks before returning.
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

async fn open(config: &Config, endpoint: &str, timeout: Duration) -> Result<EtcdClient, CallError> {
    let connect = EtcdClient::connect([endpoint], Some(options(config, timeout)));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(CallError::Etcd(e)),
        Err(_) => Err(CallError::Timeout(timeout)),
    }
}

/// Note a failed try in `last` (as `PREFIX<error>`), unless it is a timeout after something more
/// telling: a timeout's duration is only what was left of the budget, and it would hide why the
/// earlier tries failed.
pub(crate) fn keep_telling(last: &mut String, prefix: &str, e: &CallError) {
    match e {
        CallError::Timeout(_) if last.is_empty() || last.ends_with("no answer") => {
            *last = format!("{prefix}no answer");
        }
        CallError::Timeout(_) => {}
        e => *last = format!("{prefix}{e}"),
    }
}

impl Client {
    /// Find a member that answers and has a leader, trying every endpoint with backoff until the
    /// dial timeout runs out (exit 69 then): an etcd restart or election should not fail a cron job.
    pub async fn connect(mut config: Config, check: Check) -> Result<Client> {
        let deadline = Instant::now() + config.dial_timeout;
        let mut backoff = Duration::from_millis(50);
        let mut last_error = String::new();
        let mut notices = Vec::new();
        let n = config.endpoints.len();
        let mut attempt = 0usize;
        loop {
            let index = attempt % n;
            let endpoint = &config.endpoints[index];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Unreachable {
                    endpoints: config.endpoints.join(","),
                    within: humantime::format_duration(config.dial_timeout).to_string(),
                    last_error,
                });
            }
            let probed = match check {
                Check::Leader => probe(&config, endpoint, left).await,
                Check::Lazy => open(&config, endpoint, left).await.map(|c| (c, 0)),
            };
            match probed {
                Ok((client, cluster_id)) => {
                    info!(endpoint, "connected to etcd");
                    return Ok(Client::new(config, client, index, cluster_id, notices));
                }
                Err(e)
                    if config.user.is_some()
                        && e.to_string().contains("authentication is not enabled") =>
                {
                    // As etcdctl does: credentials for an etcd without authentication (an
                    // exported ETCDCTL_USER meant for another cluster) are a warning, not a stop.
                    notices.push(format!(
                        "warning: etcd at {endpoint} has authentication disabled; going on without the user name and password"
                    ));
                    config.user = None;
                    continue;
                }
                Err(e) if is_fatal(&e) => {
                    return Err(Error::Refused {
                        context: format!("etcd at {endpoint} refused us"),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    debug!(endpoint, error = %e, "endpoint not usable");
                    keep_telling(&mut last_error, &format!("{endpoint}: "), &e);
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

    fn new(
        config: Config,
        client: EtcdClient,
        index: usize,
        cluster_id: u64,
        notices: Vec<String>,
    ) -> Client {
        Client {
            notices: Arc::new(notices),
            cluster_id: Arc::new(AtomicU64::new(cluster_id)),
            current: Arc::new(Mutex::new(Current {
                client,
                index,
                generation: 0,
            })),
            config: Arc::new(config),
            switched: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Warnings the caller should pass on to its user (e.g. credentials ignored by an etcd
    /// without authentication).
    pub fn notices(&self) -> &[String] {
        &self.notices
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

    /// The configuration this client was made from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How long one unary request may take before we try another member.
    pub fn request_timeout(&self) -> Duration {
        self.config
            .dial_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(5))
    }

    /// The etcd-client handle for the current endpoint and its generation (for
    /// [`Client::failover`]).
    pub fn client(&self) -> (EtcdClient, u64) {
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

    /// Open a watch on `key` on the current endpoint (see [`Watch::next`]).
    pub(crate) async fn watch(
        &self,
        key: impl Into<Vec<u8>>,
        opts: Option<etcd_client::WatchOptions>,
    ) -> Result<Watch, CallError> {
        // Subscribed before the endpoint is read: a switch in between is seen, not missed.
        let endpoint_changed = self.subscribe();
        // The endpoint the watch is opened on: a broken stream fails over from that one only
        // (another task may have moved on already).
        let (_, generation) = self.client();
        let key = key.into();
        let stream = self
            .call(|mut c| async move { c.watch(key, opts).await })
            .await?;
        Ok(Watch {
            stream,
            endpoint_changed,
            generation,
        })
    }

    /// Run one request against the current endpoint with the request timeout; a transient failure
    /// moves us to the next endpoint before the error is returned, so a retry goes elsewhere.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, CallError>
    where
        F: FnOnce(EtcdClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_within(self.request_timeout(), f).await
    }

    /// [`Client::call`] with its own timeout.
    pub async fn call_within<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, CallError>
    where
        F: FnOnce(EtcdClient) -> Fut,
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
) -> Result<(EtcdClient, u64), CallError> {
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

impl Client {
    /// Run `txn`, retrying transient failures; `what` names it in a permanent failure.
    pub async fn txn(&self, what: &str, txn: etcd_client::Txn) -> Result<etcd_client::TxnResponse> {
        self.retrying(what, || {
            let txn = txn.clone();
            self.call(|mut c| async move { c.txn(txn).await })
        })
        .await
    }

    /// Retry `op` while it fails transiently (the caller bounds the whole wait, e.g. by the
    /// lease's life); a permanent error (permission denied, lease not found) ends the attempt as
    /// [`Error::Refused`] with `what` as its context.
    pub async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut backoff = Duration::from_millis(50);
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() => {
                    debug!(error = %e, "{what} failed; retrying");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(Error::Refused {
                        context: what.to_owned(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
}

/// Up to ±25 % random jitter so that many cron jobs retrying together spread out.
pub fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let r = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 1000;
    d.mul_f64(0.75 + f64::from(r) / 2000.0)
}

/// A watch opened by [`Client::watch`]: its responses until it is over.
pub(crate) struct Watch {
    /// The stream (more keys can be watched on it with `watch`).
    pub(crate) stream: etcd_client::WatchStream,
    endpoint_changed: tokio::sync::watch::Receiver<u64>,
    generation: u64,
}

impl Watch {
    /// The next response. `Err` once the watch is over: the stream ended or failed (then the
    /// client moves on from the endpoint it was opened on), the server cancelled it (e.g. its
    /// start revision was compacted), or the client moved to another endpoint meanwhile (a watch
    /// on the old one may hear nothing more). Cancel-safe.
    pub(crate) async fn next(
        &mut self,
        client: &Client,
    ) -> Result<etcd_client::WatchResponse, CallError> {
        let broke = |why: String| CallError::Etcd(etcd_client::Error::WatchError(why));
        let msg = tokio::select! {
            m = self.stream.message() => m,
            _ = self.endpoint_changed.changed() => return Err(broke("endpoint changed".into())),
        };
        match msg {
            Ok(Some(resp)) if resp.canceled() => Err(broke(resp.cancel_reason().to_owned())),
            Ok(Some(resp)) => Ok(resp),
            Ok(None) => Err(broke("watch stream ended".into())),
            Err(e) => {
                client.failover(self.generation).await;
                Err(CallError::Etcd(e))
            }
        }
    }
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
            assert!(
                matches!(check_endpoint(bad, false), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let d = Duration::from_millis(1000);
        let j = jitter(d);
        assert!(j >= Duration::from_millis(750) && j <= Duration::from_millis(1250));
    }
}
