//! Holder metadata: the JSON value stored in each lock key, telling operators who holds or waits.
//!
//! `etcdctl lock` stores an empty value and ignores values, so the metadata costs compatibility
//! nothing. Fields are only ever added; readers must accept values they do not understand,
//! including empty ones.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Who holds (or waits for) a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name of the holder.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The user it runs as.
    pub user: String,
    /// The command, as recorded (see `--record-command`); empty if not recorded.
    pub command: Vec<String>,
    /// When this etcdlock joined the queue (RFC 3339, UTC).
    pub started_at: String,
    /// When it got the lock, if it had to wait for it (else the same as `started_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired_at: Option<String>,
    /// The semaphore size all holders of this lock agree on (1 = mutex).
    #[serde(default = "one")]
    pub limit: u32,
    /// Free-form `--meta KEY=VALUE` pairs (a CI job URL, a ticket).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// A shared (reader) holder: holds together with other shared holders (see [`Mode`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// Held by a handle (`etcdlock acquire`) rather than by a running process: `pid` is the
    /// acquiring process, long gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handle: bool,
    /// For a handle's key, once it holds: the SHA-256 of the handle's secret (see
    /// [`crate::handle`]); `run --handle`, `renew` and `release` check a handle against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_secret_sha256: Option<String>,
    /// A candidate of a leader election (`etcdlock elect`): the oldest key is the leader, the
    /// others stand by.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub election: bool,
    /// etcdlock version that wrote this value.
    pub version: String,
}

/// How a key holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Alone: plain `run`, `etcdctl lock`, Go's Mutex (every key that is not etcdlock's own
    /// shared key counts as exclusive, so exclusion with them stays exact).
    #[default]
    Exclusive,
    /// Together with every other shared holder, never with an exclusive one.
    Shared,
}

impl Mode {
    /// The mode of a key's value (empty and foreign values are exclusive).
    pub fn of_value(value: &[u8]) -> Mode {
        match Holder::parse(value) {
            Some(h) if h.shared => Mode::Shared,
            _ => Mode::Exclusive,
        }
    }

    /// "exclusive" / "shared".
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

/// At most this many bytes of the command and, separately, of `--meta` are stored in the lock
/// key: a lock key is read by every waiter and by `status`, and etcd caps a request at 1.5 MiB.
pub const MAX_STORED: usize = 16 * 1024;

/// A command line as a shell would take it back: `sh -c 'echo inner'`, not `sh -c echo inner`.
pub fn shell_words(args: &[String]) -> String {
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
    // only a NUL byte fails, which argv cannot hold
}

/// The command as stored: arguments up to [`MAX_STORED`] bytes in all; the rest is cut and the
/// last stored argument ends with a marker saying how much.
pub fn stored_command(command: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut used = 0;
    let total: usize = command.iter().map(|a| a.len()).sum();
    for arg in command {
        let arg = arg.to_string_lossy();
        if used + arg.len() <= MAX_STORED {
            used += arg.len();
            out.push(arg.into_owned());
            continue;
        }
        let mut keep = MAX_STORED.saturating_sub(used);
        while !arg.is_char_boundary(keep) {
            keep -= 1;
        }
        out.push(format!(
            "{}…[{} bytes cut]",
            &arg[..keep],
            total - used - keep
        ));
        break;
    }
    out
}

/// Bytes `--meta` pairs take in the lock key (keys and values).
pub fn meta_size(meta: &BTreeMap<String, String>) -> usize {
    meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn one() -> u32 {
    1
}

/// Now, as RFC 3339 UTC to the millisecond: a hold of 0.7 s must not read as 2 s because its
/// start was cut to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The name of user `uid`, as `id -un` would say it: from `/etc/passwd` when the uid is there,
/// else from NSS (`getpwuid`: LDAP, sssd, systemd's dynamic users). The file comes first because
/// asking NSS costs every run about 0.08 ms before etcd is even contacted (glibc tries nscd's
/// socket twice, then reads nsswitch.conf and the file; issue 25), and for a uid listed in the
/// file every usual `nsswitch.conf` gives its name from there.
#[cfg(not(target_feature = "crt-static"))]
fn user_name(uid: nix::unistd::Uid) -> Option<String> {
    from_passwd_file(uid).or_else(|| {
        nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
    })
}

/// The name of user `uid`, from /etc/passwd only. A statically linked glibc would have NSS
/// `dlopen` the host's modules (systemd, sss, ldap) for users not in the file: libraries of
/// another glibc than the one linked in, which may not load or may crash. In an empty root (a
/// `FROM scratch` image) there is no /etc/passwd, and the uid stands in.
#[cfg(target_feature = "crt-static")]
fn user_name(uid: nix::unistd::Uid) -> Option<String> {
    from_passwd_file(uid)
}

/// The first name `/etc/passwd` gives uid `uid` (NIS's `+`/`-` lines are not names).
fn from_passwd_file(uid: nix::unistd::Uid) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    user_in_passwd(&passwd, uid.as_raw())
}

fn user_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        let valid = !name.is_empty() && !name.starts_with(['+', '-']);
        (valid && id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

impl Holder {
    /// Metadata describing this process running `command`.
    pub fn current(command: &[OsString], limit: u32, meta: BTreeMap<String, String>) -> Holder {
        let uid = nix::unistd::getuid();
        let user = user_name(uid).unwrap_or_else(|| uid.to_string());
        Holder {
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pid: std::process::id(),
            user,
            command: stored_command(command),
            started_at: now_rfc3339(),
            acquired_at: None,
            limit,
            meta,
            shared: false,
            handle: false,
            handle_secret_sha256: None,
            election: false,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// How this holder holds.
    pub fn mode(&self) -> Mode {
        if self.shared {
            Mode::Shared
        } else {
            Mode::Exclusive
        }
    }

    /// The value stored in the lock key.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and maps only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse a key's value; `None` for values not written by etcdlock (e.g. etcdctl's empty one).
    pub fn parse(value: &[u8]) -> Option<Holder> {
        serde_json::from_slice(value).ok()
    }

    /// How long this holder has held the lock, by the wall clocks of its host and ours (so only
    /// approximately; never negative).
    pub fn held_for(&self) -> Option<Duration> {
        let since = self.acquired_at.as_deref().unwrap_or(&self.started_at);
        let since = humantime::parse_rfc3339(since).ok()?;
        Some(SystemTime::now().duration_since(since).unwrap_or_default())
    }

    /// "web-3 pid 4121 (./backup.sh)" for messages (the command shell-quoted).
    pub fn describe(&self) -> String {
        if self.handle {
            return format!("a handle acquired on {} by {}", self.host, self.user);
        }
        if self.command.is_empty() {
            // `--record-command none`: nothing to show, not even empty parentheses.
            return format!("{} pid {}", self.host, self.pid);
        }
        format!(
            "{} pid {} ({})",
            self.host,
            self.pid,
            shell_words(&self.command)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwd_file_gives_the_first_name_of_a_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n+nis::0:0:::\n\
                      -skip:x:1000:1000::/:/bin/sh\nbuild:x:1000:1000::/home/build:/bin/sh\n\
                      alias:x:1000:1000::/:/bin/sh\nbroken\n";
        assert_eq!(user_in_passwd(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_in_passwd(passwd, 1000).as_deref(), Some("build"));
        assert_eq!(user_in_passwd(passwd, 4242), None);
        assert_eq!(user_in_passwd("", 0), None);
    }

    #[test]
    fn the_user_is_the_one_nss_names() {
        // For a uid in /etc/passwd (this test's own), reading the file says what getpwuid says.
        let uid = nix::unistd::getuid();
        let nss = nix::unistd::User::from_uid(uid).unwrap().map(|u| u.name);
        assert_eq!(user_name(uid), nss);
    }

    #[test]
    fn round_trips_and_tolerates_foreign_values() {
        let meta = BTreeMap::from([("job".to_owned(), "https://ci/1".to_owned())]);
        let h = Holder::current(
            &[OsString::from("./backup.sh"), OsString::from("--full")],
            2,
            meta,
        );
        assert_eq!(Holder::parse(&h.to_json()), Some(h.clone()));
        assert_eq!(h.pid, std::process::id());
        assert!(h.started_at.ends_with('Z'));
        // To the millisecond: a start cut to the second made "held for" up to 1 s too long.
        assert!(
            h.started_at.len() == "2026-01-01T00:00:00.000Z".len() && h.started_at.contains('.'),
            "{}",
            h.started_at
        );
        assert!(h.held_for().unwrap() < Duration::from_secs(5));
        assert_eq!(Holder::parse(b""), None);
        assert_eq!(Holder::parse(b"not json"), None);
    }

    #[test]
    fn older_values_without_new_fields_parse() {
        let v = br#"{"host":"h","pid":1,"user":"u","command":["x"],"started_at":"2026-01-01T00:00:00Z","version":"0.0.1","future":true}"#;
        let h = Holder::parse(v).unwrap();
        assert_eq!(h.limit, 1);
        assert!(h.meta.is_empty());
    }

    #[test]
    fn commands_are_shown_shell_quoted() {
        let words = |a: &[&str]| shell_words(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["sh", "-c", "echo inner"]), "sh -c 'echo inner'");
        assert_eq!(words(&["./backup.sh", "-v", "/srv"]), "./backup.sh -v /srv");
        assert_eq!(words(&["echo", "it's", ""]), r#"echo "it's" ''"#);
    }

    #[test]
    fn long_commands_are_cut_with_a_marker() {
        let long = OsString::from("x".repeat(MAX_STORED));
        let stored = stored_command(&[OsString::from("sh"), OsString::from("-c"), long]);
        assert_eq!(stored.len(), 3);
        assert!(
            stored[2].ends_with("…[4 bytes cut]"),
            "{}",
            &stored[2][stored[2].len() - 20..]
        );
        let total: usize = stored.iter().map(String::len).sum();
        assert!(total <= MAX_STORED + 32);
        let short = [OsString::from("true")];
        assert_eq!(stored_command(&short), vec!["true".to_owned()]);
        // Multi-byte characters are never split.
        let wide = OsString::from("é".repeat(MAX_STORED));
        assert!(stored_command(&[wide])[0].contains("bytes cut"));
    }
}
