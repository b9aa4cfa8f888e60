//! `acquire`, `renew` and `release`: a lock held across processes (CI jobs, `ExecStartPre` /
//! `ExecStartPost`) through a handle (see etcdlock::handle). While `acquire` waits, its lease is
//! kept alive and guarded like `run`'s; once it holds, it renews once (so the TTL counts from
//! now), prints the handle and leaves, and nothing keeps the lease alive any more: the lock frees
//! itself `--ttl` after the last acquire, renew or `run --handle`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use etcdlock::client::{Check, Client};
use etcdlock::handle::{self, Acquisition, Handle};
use etcdlock::holder::{self, Holder, Mode};
use etcdlock::process::supervise::Signals;
use etcdlock::SafetyParams;

use crate::cli::{AcquireArgs, HandleArgs};
use crate::config::Resolved;
use crate::exit::{self, fail};
use crate::output;
use crate::wait;

/// The `--env-file`, opened for appending before anything else happens (a path that cannot be
/// written is a usage error, not a surprise after the lock was taken). The handle is a bearer
/// secret: a new file is created 0600, and a symbolic link is refused (`O_NOFOLLOW`), so that
/// nobody can point the file elsewhere (an existing file keeps its mode: `$GITHUB_ENV` is the
/// runner's).
fn open_env_file(args: &AcquireArgs) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = &args.env_file else {
        return Ok(None);
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map(Some)
        .map_err(|e| {
            let why = if e.raw_os_error() == Some(nix::libc::ELOOP) {
                "it is a symbolic link; refusing to write the handle through it (pass the real path)"
                    .to_owned()
            } else {
                e.to_string()
            };
            fail(exit::USAGE, format!("--env-file {}: {why}", path.display()))
        })
}

/// A closed stdout (`>&-`; Rust's start-up code then opens /dev/null there) or /dev/null would
/// swallow the handle: refuse before taking the lock, unless `--env-file` delivers it.
fn check_stdout(args: &AcquireArgs) -> Result<()> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::MetadataExt;
    if args.env_file.is_some() {
        return Ok(());
    }
    // SAFETY: fd 1 stays open for the whole process; ManuallyDrop never closes it.
    let out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let null = std::fs::metadata("/dev/null").map(|m| m.rdev()).ok();
    let lost = match out.metadata() {
        Err(_) => true,
        Ok(m) => null.is_some_and(|n| m.rdev() == n && m.mode() & 0o170000 == 0o020000),
    };
    if lost {
        return Err(fail(
            exit::USAGE,
            "stdout is closed or /dev/null: acquire prints the handle there and nowhere else (capture it, e.g. H=$(etcdlock acquire NAME), or pass --env-file)",
        ));
    }
    Ok(())
}

/// Write all of `text` to file descriptor 1, reporting every error (EPIPE, ENOSPC, EBADF).
fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 1 stays open for the whole process; ManuallyDrop never closes it.
    let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn check(args: &AcquireArgs) -> Result<BTreeMap<String, String>> {
    if args.shared && args.limit > 1 {
        return Err(fail(
            exit::USAGE,
            "--shared cannot be combined with --limit above 1",
        ));
    }
    check_stdout(args)?;
    let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
    if holder::meta_size(&meta) > holder::MAX_STORED {
        return Err(fail(
            exit::USAGE,
            format!("--meta takes more than {} bytes", holder::MAX_STORED),
        ));
    }
    Ok(meta)
}

/// `etcdlock acquire NAME`.
pub async fn acquire(resolved: Resolved, args: AcquireArgs) -> Result<u8> {
    let meta = check(&args)?;
    let env_file = open_env_file(&args)?;
    let mut signals = Signals::install()?;
    let client = tokio::select! {
        client = exit::connect(resolved.config, Check::Leader) => client?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    let mode = if args.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    if let Some(code) = held_already(&client, &args, mode).await? {
        return Ok(code);
    }
    let params = SafetyParams::new(args.ttl, None).map_err(|e| fail(exit::USAGE, e.to_string()))?;
    let mut holder = Holder::current(&[], args.limit, meta);
    holder.shared = args.shared;
    let shown = wait::Shown::new(&args.name, false);
    let how = wait::how(&args.name, &holder, &args.wait);
    let report = |event: etcdlock::wait::Event<'_>| shown.event(&event);
    let taken = match handle::acquire(&client, params, &mut signals, &how, &report).await? {
        Acquisition::Held(taken) => {
            shown.acquired();
            shown.announce();
            taken
        }
        Acquisition::GaveUp(info) => {
            shown.finish();
            return Ok(wait::gave_up(&args.name, &args.wait, info.as_ref()));
        }
        Acquisition::Cancelled(sig) => {
            shown.finish();
            return Ok(wait::cancelled(&args.name, sig));
        }
        Acquisition::Lost(reason) => {
            shown.finish();
            return Err(wait::lost_waiting(&args.name, &reason));
        }
    };
    // The handle goes to stdout (or --env-file) and nowhere else.
    if let Err(e) = deliver(taken.handle(), &args, taken.ttl(), env_file) {
        // Nobody can use a handle that was not delivered: free the lock now rather than at the
        // end of the TTL.
        let _ = taken.abandon().await;
        return Err(fail(
            exit::INTERNAL,
            format!("{e}; released {} again (nobody has the handle)", args.name),
        ));
    }
    taken.delivered();
    Ok(0)
}

/// `-n`: learn with a read that the lock is held (no lease, no write); the exit code if so.
async fn held_already(client: &Client, args: &AcquireArgs, mode: Mode) -> Result<Option<u8>> {
    if !args.wait.no_wait {
        return Ok(None);
    }
    let peek = etcdlock::lock::peek(client, &args.name, args.limit, mode, false).await?;
    if !peek.full(args.limit) {
        return Ok(None);
    }
    let code = wait::conflict(
        client,
        &args.name,
        &peek.holders,
        args.wait.conflict_exit_code,
    );
    Ok(Some(code.await))
}

/// The `--env-file` lines, then the handle on stdout (or the JSON object); the first failure.
fn deliver(
    handle: &Handle,
    args: &AcquireArgs,
    ttl: std::time::Duration,
    env_file: Option<std::fs::File>,
) -> std::result::Result<(), String> {
    let text = handle.encode();
    if let Some(mut file) = env_file {
        let lines = format!(
            "ETCDLOCK_HANDLE={text}\nETCDLOCK_FENCING_TOKEN={}\n",
            handle.fencing_token
        );
        file.write_all(lines.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| format!("cannot write the handle to --env-file: {e}"))?;
    }
    let out = if args.json {
        let expires = std::time::SystemTime::now() + ttl;
        let json = serde_json::json!({
            "schema_version": etcdlock::inspect::SCHEMA_VERSION,
            "handle": text,
            "name": handle.name,
            "key": handle.key(),
            "lease_id": format!("{:x}", handle.lease_id),
            "fencing_token": handle.fencing_token,
            "cluster_id": format!("{:x}", handle.cluster_id),
            "mode": if args.shared { "shared" } else { "exclusive" },
            "ttl_s": ttl.as_secs(),
            "expires_at": humantime::format_rfc3339_seconds(expires).to_string(),
        });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
        )
    } else {
        format!("{text}\n")
    };
    write_stdout(&out).map_err(|e| format!("cannot print the handle on stdout: {e}"))
}

/// Parse a handle and connect to its cluster (refusing another cluster's handle).
pub async fn open(resolved: Resolved, text: &str) -> Result<(Client, Handle)> {
    let handle = Handle::parse(text).map_err(|e| fail(exit::USAGE, e.to_string()))?;
    let client = exit::connect(resolved.config, Check::Leader).await?;
    handle
        .check_cluster(&client)
        .map_err(|e| fail(exit::USAGE, e.to_string()))?;
    Ok((client, handle))
}

/// A lost lock's error with what became of the lock since, as far as etcd still shows it: who
/// holds it now, or who ran it last, after us.
pub async fn lost_since(client: &Client, handle: &Handle, e: etcdlock::Error) -> etcdlock::Error {
    let etcdlock::Error::Lost(reason) = e else {
        return e;
    };
    let ours = handle.fencing_token;
    if handle.released(client).await {
        return etcdlock::Error::Lost(format!(
            "the lock {} of this handle was released (etcdlock release); take it again with etcdlock acquire",
            handle.name
        ));
    }
    let since = match etcdlock::inspect::status(client, &handle.name).await {
        Ok(s) => match s.holders.iter().find(|h| h.fencing_token > ours) {
            Some(h) => format!(
                "; someone else holds it now: {}",
                crate::show::describe_holder(h)
            ),
            None => match &s.last_run {
                Some(r) if r.fencing_token > ours => {
                    format!("; {} held it since (ended {})", r.host, r.ended_at)
                }
                _ => "; nobody has taken it since".to_owned(),
            },
        },
        Err(_) => "; someone else may have held it since".to_owned(),
    };
    etcdlock::Error::Lost(format!("{reason}{since}"))
}

/// `etcdlock renew HANDLE`.
pub async fn renew(resolved: Resolved, args: HandleArgs) -> Result<u8> {
    let (client, handle) = open(resolved, &args.handle).await?;
    let ttl = match handle.renew(&client).await {
        Ok(ttl) => ttl,
        Err(e) => return Err(refused_or_lost(&client, &handle, e).await),
    };
    output::info(format!(
        "renewed {}: it frees itself in {} unless renewed or released",
        handle.name,
        humantime::format_duration(ttl)
    ));
    Ok(0)
}

/// `etcdlock release HANDLE`. A handle released already (its release is the lock's last run) is
/// no loss: "already released", exit 0, so that a retried cleanup job stays green.
pub async fn release(resolved: Resolved, args: HandleArgs) -> Result<u8> {
    let (client, handle) = open(resolved, &args.handle).await?;
    match handle.release(&client).await {
        Ok(()) => {
            output::info(format!("released {}", handle.name));
            Ok(0)
        }
        Err(etcdlock::Error::Lost(_)) if handle.released(&client).await => {
            output::info(format!("{} was already released", handle.name));
            Ok(0)
        }
        Err(e) => Err(refused_or_lost(&client, &handle, e).await),
    }
}

/// A handle that does not fit its key is a usage error (exit 2); a lost lock says what became of
/// it.
pub async fn refused_or_lost(
    client: &Client,
    handle: &Handle,
    e: etcdlock::Error,
) -> anyhow::Error {
    match e {
        etcdlock::Error::Config(msg) => fail(exit::USAGE, msg),
        other => lost_since(client, handle, other).await.into(),
    }
}
