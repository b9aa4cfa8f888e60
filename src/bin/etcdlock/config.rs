//! From flags and environment to the library's [`etcdlock::Config`]: flag, then `ETCDLOCK_*`,
//! then `ETCDCTL_*` (an existing etcdctl setup just works), then the default. Every value is
//! checked here, before any etcd call, and a mistake is a usage error naming the flag or variable
//! it came from.

use std::path::{Path, PathBuf};

use anyhow::Result;
use etcdlock::client::{Config, Tls};

use crate::cli::GlobalArgs;
use crate::exit::{fail, USAGE};

/// The resolved connection settings, plus what the locked command's environment needs from them.
pub struct Resolved {
    /// For the library.
    pub config: Config,
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
/// `ETCDCTL_KEY`, see [`Resolved::child_env`].)
fn inherited_lock_key() -> bool {
    match (
        std::env::var("ETCDLOCK_KEY"),
        std::env::var("ETCDLOCK_LEASE_ID"),
    ) {
        (Ok(key), Ok(lease)) => !lease.is_empty() && key.ends_with(&format!("/{lease}")),
        _ => false,
    }
}

fn read_file(path: &Path, origin: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        fail(
            USAGE,
            format!("cannot read {origin} file {}: {e}", path.display()),
        )
    })
}

/// An error of the library's `Config` checks, as a usage error.
fn usage(e: etcdlock::Error) -> anyhow::Error {
    fail(USAGE, e.to_string())
}

/// Flag, then environment, then default; every value is validated (exit 2 on nonsense).
pub fn resolve(args: &GlobalArgs) -> Result<Resolved> {
    let mut config = Config::new(endpoints(args)?).map_err(usage)?;
    let dial_timeout = match (args.dial_timeout, env_setting("DIAL_TIMEOUT")) {
        (Some(d), _) => Some(d),
        (None, Some((var, v))) => Some(
            crate::cli::parse_duration(&v)
                .map_err(|e| fail(USAGE, format!("invalid {var}={v:?}: {e}")))?,
        ),
        (None, None) => None,
    };
    if let Some(d) = dial_timeout {
        config = config
            .with_dial_timeout(d)
            .map_err(|e| fail(USAGE, format!("--dial-timeout: {e}")))?;
    }
    if let Some(tls) = tls(args)? {
        config = config.with_tls(tls).map_err(usage)?;
    }
    if let Some((name, password)) = user(args)? {
        config = config.with_user(name, password);
    }
    let records_prefix = match &args.records_prefix {
        Some(p) => Some(("--records-prefix", p.clone())),
        None => std::env::var("ETCDLOCK_RECORDS_PREFIX")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| ("ETCDLOCK_RECORDS_PREFIX", v)),
    };
    if let Some((origin, prefix)) = records_prefix {
        config = config
            .with_records_prefix(prefix)
            .map_err(|e| fail(USAGE, format!("{origin}: {e}")))?;
    }
    let key_from_env = match path_setting(&args.key, "--key", "KEY") {
        Some((path, origin)) if origin == "ETCDLOCK_KEY" => Some(path),
        _ => None,
    };
    withhold_credentials();
    Ok(Resolved {
        config,
        key_from_env,
    })
}

/// The variables that carry a password for etcd: the password variables, and a user variable of
/// the form `NAME:PASSWORD`.
fn credential_vars() -> Vec<String> {
    let mut vars: Vec<String> = ["ETCDLOCK_PASSWORD", "ETCDCTL_PASSWORD"]
        .iter()
        .filter(|v| std::env::var_os(v).is_some())
        .map(|v| (*v).to_owned())
        .collect();
    for var in ["ETCDLOCK_USER", "ETCDCTL_USER"] {
        if std::env::var_os(var).is_some_and(|v| v.to_string_lossy().contains(':')) {
            vars.push(var.to_owned());
        }
    }
    vars
}

/// Once read, the password leaves etcdlock's environment, which the command inherits: a job under
/// the lock must not get etcdlock's etcd credentials (a `--password-file` is never exported).
fn withhold_credentials() {
    for var in credential_vars() {
        // Sound: called from `main`'s thread before the runtime or any other thread exists
        // (commands.rs resolves the settings first), so nothing reads the environment meanwhile.
        std::env::remove_var(var);
    }
}

fn endpoints(args: &GlobalArgs) -> Result<Vec<String>> {
    if !args.endpoints.is_empty() {
        return Ok(args.endpoints.iter().map(|e| e.trim().to_owned()).collect());
    }
    // Set but empty is a mistake (a CI variable that did not expand), not "use the default":
    // silently talking to 127.0.0.1:2379 could be another cluster entirely.
    for var in ["ETCDLOCK_ENDPOINTS", "ETCDCTL_ENDPOINTS"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            return Err(fail(
                USAGE,
                format!("{var} is set but empty; unset it or name the etcd endpoints"),
            ));
        }
    }
    Ok(match env_setting("ENDPOINTS") {
        Some((_, v)) => v.split(',').map(|s| s.trim().to_owned()).collect(),
        None => vec![Config::DEFAULT_ENDPOINT.to_owned()],
    })
}

fn tls(args: &GlobalArgs) -> Result<Option<Tls>> {
    let cacert = path_setting(&args.cacert, "--cacert", "CACERT");
    let cert = path_setting(&args.cert, "--cert", "CERT");
    let key = path_setting(&args.key, "--key", "KEY");
    if cacert.is_none() && cert.is_none() && key.is_none() {
        return Ok(None);
    }
    let pem = |setting: &(PathBuf, String), check: fn(&[u8]) -> etcdlock::Result<()>| {
        let (path, origin) = setting;
        let bytes = read_file(path, origin)?;
        check(&bytes).map_err(|e| fail(USAGE, format!("{origin} file {} {e}", path.display())))?;
        Ok::<_, anyhow::Error>(bytes)
    };
    let mut tls = Tls::default();
    if let Some(ca) = &cacert {
        tls.ca_pem = Some(pem(ca, Tls::check_certificates)?);
    }
    match (&cert, &key) {
        (Some(c), Some(k)) => {
            tls.identity_pem = Some((
                pem(c, Tls::check_certificates)?,
                pem(k, Tls::check_private_key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(fail(
                USAGE,
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
                USAGE,
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
        return Err(fail(USAGE, "--user needs a user name"));
    }
    let password = match (&args.password_file, inline) {
        (Some(path), _) => {
            let text = read_file(path, "--password-file")?;
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        }
        (None, Some(p)) => p,
        (None, None) => env_setting("PASSWORD").map(|(_, v)| v).ok_or_else(|| {
            fail(
                USAGE,
                format!("no password for etcd user {name}: use --user {name}:PASSWORD, --password-file or ETCDLOCK_PASSWORD"),
            )
        })?,
    };
    Ok(Some((name, password)))
}

impl Resolved {
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
}

/// Whether a run leaves records, and for how long: `None` when turned off (`--no-record`,
/// `ETCDLOCK_NO_RECORD=1`), else the retention (`--record-retention`,
/// `ETCDLOCK_RECORD_RETENTION`, default 35 days).
pub fn records(args: &crate::cli::RecordArgs) -> Result<Option<std::time::Duration>> {
    let off = args.no_record
        || match std::env::var("ETCDLOCK_NO_RECORD").ok().as_deref() {
            None | Some("" | "0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(other) => {
                return Err(fail(
                    USAGE,
                    format!("invalid ETCDLOCK_NO_RECORD={other:?}: expected 1 or 0"),
                ))
            }
        };
    if off {
        return Ok(None);
    }
    let retention = match (
        args.record_retention,
        std::env::var("ETCDLOCK_RECORD_RETENTION"),
    ) {
        (Some(d), _) => d,
        (None, Ok(v)) if !v.is_empty() => crate::cli::parse_retention(&v).map_err(|e| {
            fail(
                USAGE,
                format!("invalid ETCDLOCK_RECORD_RETENTION={v:?}: {e}"),
            )
        })?,
        _ => etcdlock::record::DEFAULT_RETENTION,
    };
    Ok(Some(retention))
}
