//! Lock holders for tests: a shell under a lock (`etcdlock run` or `etcdctl lock`) that creates
//! a ready file once it runs, then waits until the test creates its release file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::*;

/// A holder about to be started: `LOCK-COMMAND -- sh -c SCRIPT`, where the script creates the
/// ready file (if any), waits until the release file exists, then runs what [`Hold::then`] adds.
///
/// ```no_run
/// # use etcdlock_testkit::*;
/// # let (cluster, dir) = (Cluster::single(), tempfile::tempdir().unwrap());
/// let release = dir.path().join("release");
/// // Returns once etcdlock holds /job or waits for it (its key exists).
/// let mut holder = Hold::run(&cluster.endpoints(), &["--ttl", "5s"], "/job", &release)
///     .queued(&cluster);
/// assert!(let_go(&mut holder, &release).success());
/// ```
pub struct Hold {
    cmd: Command,
    name: String,
    ready: Option<PathBuf>,
    release: PathBuf,
    then: Option<String>,
}

impl Hold {
    /// `etcdlock --endpoints ENDPOINTS run OPTS NAME` (see [`etcdlock_at`]), holding until
    /// `release` exists.
    pub fn run(endpoints: &str, opts: &[&str], name: &str, release: &Path) -> Hold {
        let mut cmd = etcdlock_at(endpoints);
        cmd.arg("run").args(opts).arg(name);
        Hold::of(cmd, name, release)
    }

    /// `etcdctl --endpoints ENDPOINTS lock NAME` (see [`etcdctl_plain`]; stdin and stdout
    /// /dev/null), holding until `release` exists.
    pub fn etcdctl(endpoints: &str, name: &str, release: &Path) -> Hold {
        let mut cmd = etcdctl_plain();
        cmd.args(["--endpoints", endpoints, "lock", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Hold::of(cmd, name, release)
    }

    fn of(cmd: Command, name: &str, release: &Path) -> Hold {
        Hold {
            cmd,
            name: name.to_owned(),
            ready: None,
            release: release.to_owned(),
            then: None,
        }
    }

    /// The command creates `ready` first, so the test can tell it runs (see [`Hold::start`]).
    pub fn ready(mut self, ready: &Path) -> Hold {
        self.ready = Some(ready.to_owned());
        self
    }

    /// Shell commands to run after the release, still under the lock.
    pub fn then(mut self, script: &str) -> Hold {
        self.then = Some(script.to_owned());
        self
    }

    /// Where the lock command's stderr goes (inherited unless set).
    pub fn stderr(mut self, stderr: Stdio) -> Hold {
        self.cmd.stderr(stderr);
        self
    }

    /// The `sh -c` script the holder runs under the lock.
    pub fn script(&self) -> String {
        let mut script = String::new();
        if let Some(ready) = &self.ready {
            script += &format!("touch {}; ", ready.display());
        }
        script += &format!(
            "while [ ! -e {} ]; do sleep 0.02; done",
            self.release.display()
        );
        if let Some(then) = &self.then {
            script += &format!("; {then}");
        }
        script
    }

    /// Spawns the holder (its ready and release files removed first, should an earlier holder
    /// have left them) and returns at once.
    pub fn spawn(mut self) -> Child {
        let script = self.script();
        for file in self.ready.iter().chain([&self.release]) {
            let _ = fs::remove_file(file);
        }
        self.cmd
            .args(["--", "sh", "-c", &script])
            .spawn()
            .unwrap_or_else(|e| panic!("spawn a holder of {}: {e}", self.name))
    }

    /// Spawns the holder and returns once its ready file exists (its command runs, so it holds
    /// the lock), waiting up to [`WAIT_TIMEOUT`].
    pub fn start(self) -> Child {
        let ready = self.ready.clone().expect("Hold::start needs Hold::ready");
        let what = format!("a holder of {} to start", self.name);
        let child = self.spawn();
        wait_until(&what, WAIT_TIMEOUT, || ready.exists());
        child
    }

    /// Spawns the holder and returns once `cluster` has one more key under `NAME/` than before:
    /// it holds the lock or waits for it. Waits up to [`WAIT_TIMEOUT`].
    pub fn queued(self, cluster: &Cluster) -> Child {
        let prefix = format!("{}/", self.name);
        let before = cluster.keys(&prefix).len();
        let what = format!("a holder of {} to queue", self.name);
        let child = self.spawn();
        wait_until(&what, WAIT_TIMEOUT, || cluster.keys(&prefix).len() > before);
        child
    }
}

/// The files of a holder tagged `tag`: (`DIR/ready-TAG`, `DIR/release-TAG`).
pub fn hold_files(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("ready-{tag}")),
        dir.join(format!("release-{tag}")),
    )
}

/// The usual holder: `etcdlock run OPTS NAME` with the [`hold_files`] of `tag` in `dir`, started
/// (see [`Hold::start`]). Returns it and its release file.
pub fn hold(endpoints: &str, name: &str, opts: &[&str], dir: &Path, tag: &str) -> (Child, PathBuf) {
    let (ready, release) = hold_files(dir, tag);
    let child = Hold::run(endpoints, opts, name, &release)
        .ready(&ready)
        .start();
    (child, release)
}

/// Creates `release` and waits (up to [`WAIT_TIMEOUT`]) for the holder `child` to exit.
pub fn let_go(child: &mut Child, release: &Path) -> ExitStatus {
    fs::write(release, "").unwrap_or_else(|e| panic!("create {}: {e}", release.display()));
    wait_exit_named(child, WAIT_TIMEOUT, "the holder")
}
