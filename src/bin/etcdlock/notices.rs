//! Notes said once per user, not on every run: a cron job whose etcd role may not write the run
//! records should hear it, but not in every mail cron sends. What was said is remembered as one
//! line per notice in `$XDG_STATE_HOME/etcdlock/notices` (else `~/.local/state/etcdlock/notices`);
//! delete the file to hear them again. Where no such file can be kept (no home, read-only), the
//! note is said every time: better too often than never.

use std::io::Write;
use std::path::PathBuf;

use crate::output;

/// The file that remembers what was said.
fn file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(state.join("etcdlock/notices"))
}

/// Say `message` (one `etcdlock: note:` line) unless a note with this `id` was said before.
pub fn once(id: &str, message: &str) {
    let Some(path) = file() else {
        return output::warn(format!("note: {message}"));
    };
    let said = std::fs::read_to_string(&path).unwrap_or_default();
    if said.lines().any(|l| l == id) {
        return;
    }
    let remembered = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        .and_then(|mut f| writeln!(f, "{id}"));
    let hint = match remembered {
        Ok(()) => format!(" (said once; delete {} to hear it again)", path.display()),
        Err(_) => String::new(),
    };
    output::warn(format!("note: {message}{hint}"));
}
