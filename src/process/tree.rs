//! The command's process tree: every process the command starts, however it detaches.
//!
//! A process group is not enough to find a command's processes: `setsid`, `set -m` in a shell,
//! or any daemonising tool leaves the group, and `cmd &` outlives the command itself. etcdlock
//! must know all of them, because the promise is that *nothing the command started* runs once
//! someone else can hold the lock. Two mechanisms, the strongest the host offers first:
//!
//! 1. **A cgroup v2 of its own**, created under etcdlock's current cgroup
//!    where that is writable (root, or a systemd unit with `Delegate=yes`). The child moves itself
//!    into it before `exec`, so no descendant can be missed; nothing unprivileged leaves a cgroup.
//!    `cgroup.kill` kills the whole subtree atomically, `cgroup.events` says when it is empty.
//! 2. **`PR_SET_CHILD_SUBREAPER` plus the process group**: orphans are
//!    re-parented to etcdlock instead of init, so every live descendant stays below etcdlock in
//!    the process tree and can be found in `/proc`; the tree is empty exactly when etcdlock has no
//!    child left (`waitid` says `ECHILD`).
//!
//! Where cgroup v1 only is mounted, or v2 is read-only or not ours, the fallback is silent (one
//! failed `mkdir` at most); `-v` says which mechanism is in force. `ETCDLOCK_CGROUP=off` forces
//! the fallback (used by the tests to cover both paths).
//!
//! All methods are synchronous and callable from any thread: the guard thread kills through them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::reaper::{Reaper, Rescue, Watchdog};
use crate::clock::BootTime;

/// Environment variable that disables the cgroup (`off`); anything else means "use it if you can".
pub const CGROUP_ENV: &str = "ETCDLOCK_CGROUP";

/// A live process of the tree, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its pid.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub comm: String,
}

/// The cgroup created for one command.
#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
    /// The directory itself, for `clone3(CLONE_INTO_CGROUP)`.
    dir_fd: File,
    /// `cgroup.procs`, opened before the fork so the child only has to `write(2)` to join.
    procs: File,
    /// `cgroup.kill` (Linux 5.14+); without it, members are killed one by one.
    kill: Option<File>,
}

/// The processes of one command.
#[derive(Debug)]
pub struct Tree {
    cgroup: Option<Cgroup>,
    /// The command's pid, which is also its process group id; 0 before spawn and once reaped (a
    /// reaped group id may be recycled, so it is never signalled again).
    leader: AtomicI32,
    /// Why the cgroup is not used (for `-v`).
    fallback_reason: Option<String>,
    /// The helper that kills the tree if etcdlock dies; told about the leader and released once
    /// the tree is gone. Dropped unreleased, it kills (see [`super::reaper`]).
    reaper: std::sync::Mutex<Option<Reaper>>,
    /// The helper's side of the deadlines and its health (see [`super::reaper::Watchdog`]).
    watchdog: std::sync::OnceLock<Watchdog>,
    /// Processes that refused a signal with EPERM.
    refused: std::sync::Mutex<std::collections::BTreeSet<i32>>,
    /// The run id in the command's environment (`ETCDLOCK_RUN_ID`): how an orphan of the tree
    /// re-parented to us is told from a child the embedding program started itself.
    run_id: std::sync::OnceLock<String>,
    /// The command's pid (its process group id), kept after it was reaped: a zombie orphan of
    /// the group is the tree's (a zombie's environment cannot be read).
    group: AtomicI32,
    /// Every pid found in the tree so far (a zombie of the tree is recognised by it).
    known: std::sync::Mutex<std::collections::BTreeSet<i32>>,
    /// True while another thread starts the reaper helper ([`Tree::arming`]): what needs the
    /// helper (the spawn, the end of the tree) waits for it first.
    arming: (std::sync::Mutex<bool>, std::sync::Condvar),
    /// How many commands were spawned into the tree ([`Tree::set_leader`]), and that count plus
    /// one once [`Tree::is_empty`] found the tree empty after the last of them (0: not yet).
    /// Empty is final until the next spawn: nothing is left alive to fork, and no process can
    /// join a cgroup nobody is in.
    spawned: AtomicU64,
    empty_after: AtomicU64,
}

impl Tree {
    /// Prepare tracking for a command about to be spawned: create its cgroup if the host lets
    /// us. Call [`Tree::guard_against_our_death`] next, before spawning.
    pub fn prepare() -> Tree {
        let (cgroup, fallback_reason) = match create_cgroup() {
            Ok(cg) => (Some(cg), None),
            Err(why) => (None, Some(why)),
        };
        let tree = Tree {
            cgroup,
            leader: AtomicI32::new(0),
            fallback_reason,
            reaper: std::sync::Mutex::new(None),
            watchdog: std::sync::OnceLock::new(),
            refused: std::sync::Mutex::default(),
            run_id: std::sync::OnceLock::new(),
            group: AtomicI32::new(0),
            known: std::sync::Mutex::default(),
            arming: Default::default(),
            spawned: AtomicU64::new(0),
            empty_after: AtomicU64::new(0),
        };
        match (&tree.cgroup, &tree.fallback_reason) {
            (Some(cg), _) => info!(
                cgroup = %cg.dir.display(),
                kill = if cg.kill.is_some() { "cgroup.kill" } else { "one by one" },
                "tracking the command's processes with a cgroup v2 of its own"
            ),
            (None, reason) => info!(
                reason = reason.as_deref().unwrap_or(""),
                "tracking the command's processes with PR_SET_CHILD_SUBREAPER and its process group"
            ),
        }
        tree
    }

    /// Fork the reaper helper for this tree (before spawning; see [`super::reaper`]), then
    /// become the subreaper of the command's orphans.
    pub fn guard_against_our_death(&self, run_id: &str, rescue: Option<&Rescue>) {
        let _ = self.run_id.set(run_id.to_owned());
        // Already a subreaper (an earlier command of this process): the helper would be
        // re-parented to us, and "no child left" would never hold. Not one for its birth.
        let subreaper = nix::sys::prctl::get_child_subreaper().unwrap_or(false);
        if subreaper {
            let _ = nix::sys::prctl::set_child_subreaper(false);
        }
        match Reaper::start(self, run_id, rescue) {
            Some(started) => {
                *self.reaper_slot() = Some(started.reaper);
                let _ = self.watchdog.set(started.watchdog);
            }
            None => warn!("cannot start the reaper helper: if etcdlock is killed or frozen, processes the command started outside its process group may outlive the lock"),
        }
        self.become_subreaper();
    }

    /// Hand this tree to others while [`Tree::guard_against_our_death`] runs on the current
    /// thread: the spawn, [`Tree::stop_all`] and [`Tree::finish`] wait until it has returned
    /// (or until the returned mark is dropped, should it not return). Lets the caller go on
    /// (take the lock) while the helper is forked; the command never starts without it.
    pub fn arming(&self) -> Arming<'_> {
        *self.arming_lock() = true;
        Arming(self)
    }

    /// Wait until no other thread is starting the reaper helper ([`Tree::arming`]). At once in
    /// the usual case: the helper is up before the lock is held.
    pub fn wait_armed(&self) {
        let (lock, cvar) = &self.arming;
        let mut arming = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *arming {
            arming = cvar.wait(arming).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn arming_lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.arming.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reaper_slot(&self) -> std::sync::MutexGuard<'_, Option<Reaper>> {
        self.reaper.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Become the reaper of the command's orphans, in both modes: in subreaper mode that is how
    /// the tree is found; in cgroup mode it still lets etcdlock hear (SIGCHLD) when the last
    /// process ends and reap it. Process-wide and harmless to leave set: etcdlock runs one
    /// command. Done after the reaper helper is forked, so the helper is not re-parented to us.
    fn become_subreaper(&self) {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            debug!(error = %e, "PR_SET_CHILD_SUBREAPER failed");
        }
    }

    /// The cgroup directory, if one is used.
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(|c| c.dir.as_path())
    }

    /// The raw `cgroup.procs` descriptor a forked child writes `0` to before it execs.
    pub fn join_fd(&self) -> Option<RawFd> {
        self.cgroup.as_ref().map(|c| c.procs.as_raw_fd())
    }

    /// The cgroup directory's descriptor, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn dir_fd(&self) -> Option<RawFd> {
        self.cgroup.as_ref().map(|c| c.dir_fd.as_raw_fd())
    }

    /// The raw `cgroup.kill` descriptor (for the reaper helper, which may only make system calls).
    pub fn kill_fd(&self) -> Option<RawFd> {
        self.cgroup
            .as_ref()
            .and_then(|c| c.kill.as_ref())
            .map(AsRawFd::as_raw_fd)
    }

    /// The command was spawned as `pid` (its own process group).
    pub fn set_leader(&self, pid: Pid) {
        self.leader.store(pid.as_raw(), Ordering::SeqCst);
        self.group.store(pid.as_raw(), Ordering::SeqCst);
        self.known_lock().insert(pid.as_raw());
        self.spawned.fetch_add(1, Ordering::SeqCst);
        if let Some(r) = self.reaper_slot().as_ref() {
            r.leader(pid);
        }
    }

    /// The command's pid while it runs (not yet reaped).
    pub fn leader_pid(&self) -> Option<i32> {
        Some(self.leader.load(Ordering::SeqCst)).filter(|&pid| pid > 0)
    }

    /// The command has been reaped: its process group id is never used again.
    pub fn leader_reaped(&self) {
        self.leader.store(0, Ordering::SeqCst);
        if let Some(r) = self.reaper_slot().as_ref() {
            r.leader_reaped();
        }
    }

    /// Publish the guard's kill times to the reaper helper, which kills the tree itself if they
    /// pass without a newer publication (etcdlock frozen). Two atomic stores; a system call only
    /// when the helper must re-arm its timer (first publication, or the times moved earlier).
    pub fn publish_deadlines(&self, term_at: BootTime, kill_at: BootTime, signal: Signal) {
        if let Some(w) = self.watchdog.get() {
            if w.deadlines.publish(term_at, kill_at, signal) {
                if let Some(r) = self.reaper_slot().as_ref() {
                    r.wake();
                }
            }
        }
    }

    /// The tree is gone (or no longer the guard's): the helper stops timing it.
    pub fn clear_deadlines(&self) {
        if let Some(w) = self.watchdog.get() {
            w.deadlines.clear();
        }
    }

    /// The guard sent the kill signal: the helper need not repeat it.
    pub fn note_term_sent(&self) {
        if let Some(w) = self.watchdog.get() {
            w.deadlines.term_sent();
        }
    }

    /// Why the guard must consider the lock lost on the helper's account: it found a deadline
    /// passed (etcdlock was not running at it) and stopped the command, or it died.
    pub fn watchdog_verdict(&self) -> Option<String> {
        let w = self.watchdog.get()?;
        if w.deadlines.fired() {
            return Some(
                "etcdlock was not running at its deadline (frozen or starved); its reaper helper stopped the command"
                    .to_owned(),
            );
        }
        w.helper_died().map(str::to_owned)
    }

    /// Every live process of the tree (the command included while it runs), oldest pid first.
    /// Only the command's processes: the children of ours that are the tree's (the command, a
    /// pid seen in the tree before, the command's process group, or `ETCDLOCK_RUN_ID` of this run
    /// in the environment) and their descendants, and the cgroup's members; never a child the
    /// embedding program started itself.
    pub fn members(&self) -> Vec<Member> {
        let roots: Vec<i32> = self
            .tree_children()
            .into_iter()
            .filter(|(_, stat)| !matches!(stat.state, 'Z' | 'X'))
            .map(|(pid, _)| pid)
            .collect();
        // In cgroup mode this also finds one that moved itself to another cgroup
        // (`systemd-run --scope`, `cgexec`): as subreaper we stay its ancestor.
        let mut pids = if roots.is_empty() {
            Vec::new()
        } else {
            descendants_of(&proc_table(), &roots)
        };
        if let Some(cg) = &self.cgroup {
            pids.extend(cgroup_member_pids(&cg.dir));
        }
        pids.sort_unstable();
        pids.dedup();
        let mut members: Vec<Member> = pids
            .into_iter()
            .filter_map(|pid| {
                let stat = read_stat(pid)?;
                (!matches!(stat.state, 'Z' | 'X')).then_some(Member {
                    pid,
                    comm: stat.comm,
                })
            })
            .collect();
        members.sort_by_key(|m| m.pid);
        self.known_lock().extend(members.iter().map(|m| m.pid));
        members
    }

    fn known_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<i32>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Our children that belong to the tree: the command, a pid seen in the tree before, a
    /// process whose environment carries this run's id (an orphan re-parented to us), or a
    /// zombie of the command's process group. A child the embedding program started itself is
    /// none of these, and is never signalled or reaped here.
    fn tree_children(&self) -> Vec<(i32, Stat)> {
        // The usual answer once the command is reaped, at a syscall's cost instead of a read
        // of every thread's children list (on the hand-off's path: the revoke waits for it).
        if has_no_children() {
            return Vec::new();
        }
        let me = nix::unistd::getpid().as_raw();
        let group = self.group.load(Ordering::SeqCst);
        let known = self.known_lock().clone();
        let marker = self
            .run_id
            .get()
            .map(|id| format!("{}={id}", super::reaper::RUN_ID_ENV).into_bytes());
        children_of(me)
            .into_iter()
            .filter(|(pid, stat)| {
                known.contains(pid)
                    || (group > 0 && stat.pgrp == group)
                    || marker.as_ref().is_some_and(|m| environ_has(*pid, m))
            })
            .collect()
    }

    /// Send `sig` to every process of the tree, each once (best effort; processes may be
    /// exiting).
    pub fn signal(&self, sig: Signal) {
        let leader = self.leader.load(Ordering::SeqCst);
        let group_told = leader > 0 && killpg(Pid::from_raw(leader), sig).is_ok();
        for m in self.members() {
            // The group got it already: a second SIGTERM or SIGINT is "quit now" to many
            // programs (a service's graceful stop would be cut short). SIGKILL goes to each
            // anyway, to learn which processes refuse it.
            if group_told
                && sig != Signal::SIGKILL
                && read_stat(m.pid).is_some_and(|s| s.pgrp == leader)
            {
                continue;
            }
            // Only a refused SIGKILL counts: a refused kill signal may still be followed by
            // `cgroup.kill`, which needs no permission on the process.
            if kill(Pid::from_raw(m.pid), sig) == Err(nix::errno::Errno::EPERM)
                && sig == Signal::SIGKILL
            {
                self.refused_lock().insert(m.pid);
            }
        }
    }

    /// Send `sig` to the command's main process only (not its group: a service's workers may
    /// not handle it); `ESRCH` once it was reaped.
    pub fn signal_leader(&self, sig: Signal) -> nix::Result<()> {
        match self.leader.load(Ordering::SeqCst) {
            pid if pid > 0 => kill(Pid::from_raw(pid), sig),
            _ => Err(nix::errno::Errno::ESRCH),
        }
    }

    fn refused_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<i32>> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live processes of the tree that refused a signal with EPERM (another user's: a
    /// setuid program, `sudo`), if every live process of the tree is one of them: then killing
    /// cannot make progress and waiting for the tree to end would wait forever.
    pub fn only_unkillable_left(&self) -> Option<Vec<Member>> {
        let refused = self.refused_lock().clone();
        if refused.is_empty() {
            return None;
        }
        let members = self.members();
        (!members.is_empty() && members.iter().all(|m| refused.contains(&m.pid))).then_some(members)
    }

    /// One pass of SIGKILL over the whole tree. With `cgroup.kill` that is atomic and final; the
    /// other paths may race with a fork, so callers repeat until [`Tree::is_empty`].
    pub fn kill_pass(&self) {
        if let Some(Cgroup {
            kill: Some(file), ..
        }) = &self.cgroup
        {
            if (&*file).write_all(b"1").is_ok() {
                // Atomic for the cgroup; a descendant that moved out of it is signalled below.
                if self.has_children_outside_cgroup() {
                    self.signal(Signal::SIGKILL);
                }
                return;
            }
        }
        self.signal(Signal::SIGKILL);
    }

    /// Whether no process of the tree is alive. Reaps the tree's orphans that died (they are
    /// our children), never the command itself (its status is the supervisor's: a dead command
    /// not yet reaped counts as dead) and never a child that is not the tree's. Every live
    /// descendant has a live parent chain up to one of
    /// etcdlock's children (orphans come to us), so "no child" is "no tree"; the cgroup says the
    /// same through `populated 0`, which also covers a process moved out of our ancestry.
    ///
    /// Once empty, the answer is kept until the next spawn (the release asks three times).
    pub fn is_empty(&self) -> bool {
        // Read before looking: a spawn while we look makes what we saw stale, and it is then
        // not kept.
        let mark = self.spawned.load(Ordering::SeqCst) + 1;
        if self.empty_after.load(Ordering::SeqCst) == mark {
            return true;
        }
        let empty = self.looks_empty();
        if empty {
            self.empty_after.store(mark, Ordering::SeqCst);
        }
        empty
    }

    fn looks_empty(&self) -> bool {
        let leader = self.leader.load(Ordering::SeqCst);
        let mut no_children = true;
        for (pid, stat) in self.tree_children() {
            if !matches!(stat.state, 'Z' | 'X') {
                no_children = false;
            } else if pid != leader {
                // A dead orphan of the tree: ours to reap. The dead command itself is left to
                // the supervisor, for its status (it is dead all the same).
                super::spawn::reap(pid);
            }
        }
        match &self.cgroup {
            Some(cg) => no_children && !cgroup_populated(&cg.dir),
            None => no_children,
        }
    }

    /// Whether a child of ours (the tree's, as subreaper) lives outside the command's cgroup.
    fn has_children_outside_cgroup(&self) -> bool {
        let Some(cg) = &self.cgroup else { return false };
        let inside = cgroup_member_pids(&cg.dir);
        self.members().iter().any(|m| !inside.contains(&m.pid))
    }

    /// Kill whatever is left of the tree and wait (at most `timeout`) until it is gone. False if
    /// something would not die: the lease must then not be revoked early (it expires by its TTL)
    /// and the reaper helper is left to go on killing. Call [`Tree::finish`] afterwards (it can
    /// wait until the lock is released: removing the cgroup is not on the hand-off's path).
    pub fn stop_all(&self, timeout: std::time::Duration) -> bool {
        self.wait_armed();
        let give_up = std::time::Instant::now() + timeout;
        while !self.is_empty() {
            if std::time::Instant::now() > give_up {
                drop(self.reaper_slot().take());
                return false;
            }
            self.kill_pass();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        true
    }

    /// Once the tree is empty (else see below): remove the cgroup (and any a nested etcdlock left in it) and let the
    /// reaper helper go. If the cgroup cannot be removed, the helper is left to clean up after
    /// us (it sees end-of-file, kills nothing that is not there, and removes the cgroup).
    pub fn finish(&self) {
        self.wait_armed();
        if !self.is_empty() {
            // Dropping the helper unreleased makes it kill what is left and clean up.
            drop(self.reaper_slot().take());
            return;
        }
        let removed = match &self.cgroup {
            Some(cg) => remove_cgroup_tree(&cg.dir),
            None => true,
        };
        let reaper = self.reaper_slot().take();
        if let (true, Some(r)) = (removed, reaper) {
            r.release();
        }
    }
}

/// The mark of [`Tree::arming`]: dropped, it lets the waiters go.
#[must_use = "dropping the mark ends the arming at once"]
pub struct Arming<'a>(&'a Tree);

impl Drop for Arming<'_> {
    fn drop(&mut self) {
        *self.0.arming_lock() = false;
        self.0.arming.1.notify_all();
    }
}

/// Create `etcdlock-<pid>-<random>` beside etcdlock in its own cgroup v2, ready to be joined.
fn create_cgroup() -> Result<Cgroup, String> {
    if std::env::var(CGROUP_ENV).is_ok_and(|v| v == "off") {
        return Err(format!("{CGROUP_ENV}=off"));
    }
    let parent = own_cgroup_dir()?;
    let name = format!(
        "etcdlock-{}-{:08x}",
        std::process::id(),
        crate::random::u64() as u32
    );
    let dir = parent.join(name);
    // The one attempt a host without a usable cgroup pays for.
    std::fs::create_dir(&dir).map_err(|e| {
        format!(
            "cannot create a cgroup under {} ({e}); run as root or in a systemd unit with Delegate=yes",
            parent.display()
        )
    })?;
    let opened = (|| {
        // Moving a process needs write access to cgroup.procs of the common ancestor: ours.
        nix::unistd::access(&parent.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK)
            .map_err(|e| format!("cannot move processes out of {} ({e})", parent.display()))?;
        let open = |file: &str| {
            OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_CLOEXEC)
                .open(dir.join(file))
        };
        let procs = open("cgroup.procs").map_err(|e| format!("cgroup.procs: {e}"))?;
        let dir_fd = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok::<_, String>((dir_fd, procs, open("cgroup.kill").ok()))
    })();
    match opened {
        Ok((dir_fd, procs, kill)) => Ok(Cgroup {
            dir,
            dir_fd,
            procs,
            kill,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// etcdlock's own cgroup v2 directory: the `0::PATH` line of /proc/self/cgroup, under the
/// cgroup2 mount found in /proc/self/mountinfo (at /sys/fs/cgroup, or /sys/fs/cgroup/unified on
/// hybrid hosts).
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 hierarchy (cgroup v1 only)")?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let (root, mount_point) = mounts
        .lines()
        .find_map(cgroup2_mount)
        .ok_or("cgroup v2 is not mounted")?;
    let rel = path
        .strip_prefix(root.as_str())
        .ok_or_else(|| format!("own cgroup {path} is outside the cgroup2 mount"))?;
    Ok(Path::new(&mount_point).join(rel.trim_start_matches('/')))
}

/// (root, mount point) of a mountinfo line if it is a cgroup2 mount.
fn cgroup2_mount(line: &str) -> Option<(String, String)> {
    let (left, right) = line.split_once(" - ")?;
    if right.split_whitespace().next()? != "cgroup2" {
        return None;
    }
    let fields: Vec<&str> = left.split_whitespace().collect();
    Some((
        unescape_mount(fields.get(3)?),
        unescape_mount(fields.get(4)?),
    ))
}

/// mountinfo escapes space, tab, newline and backslash as octal `\NNN`.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pids in a cgroup and all cgroups below it (a nested etcdlock makes its own).
pub fn cgroup_member_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for sub in subdirs(dir) {
        pids.extend(cgroup_member_pids(&sub));
    }
    pids
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// `populated 1` in cgroup.events: some process in the cgroup or below is alive.
fn cgroup_populated(dir: &Path) -> bool {
    let mut text = String::new();
    match File::open(dir.join("cgroup.events")).and_then(|mut f| f.read_to_string(&mut text)) {
        Ok(_) => text.lines().any(|l| l == "populated 1"),
        // Gone or unreadable: nothing we could still wait for.
        Err(_) => false,
    }
}

/// rmdir the cgroup bottom-up. cgroupfs refuses while a process is inside, so this never
/// removes anything alive. The cgroup itself is tried first: it rarely has cgroups below it
/// (only when the command made some), and listing it costs five system calls.
pub fn remove_cgroup_tree(dir: &Path) -> bool {
    for attempt in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            // Cgroups below it (EBUSY, as for a process inside): remove them, then retry.
            Err(_) if attempt == 0 => {
                for sub in subdirs(dir) {
                    remove_cgroup_tree(&sub);
                }
            }
            // Busy for a moment after the last process exits.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
    debug!(cgroup = %dir.display(), "cannot remove the cgroup yet");
    false
}

/// What etcdlock needs from /proc/PID/stat.
#[derive(Debug, Clone)]
pub struct Stat {
    /// Parent pid.
    pub ppid: i32,
    /// State letter (R, S, D, Z, T, ...).
    pub state: char,
    /// Command name.
    pub comm: String,
    /// Process group id.
    pub pgrp: i32,
}

/// Parse /proc/PID/stat: "pid (comm) state ppid ..."; comm may itself contain spaces and ')'.
pub fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Stat {
        ppid,
        state,
        comm,
        pgrp,
    })
}

/// Every process on the machine with its stat line.
pub fn proc_table() -> Vec<(i32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// `roots` and all their descendants in `table`, by parent links.
fn descendants_of(table: &[(i32, Stat)], roots: &[i32]) -> Vec<i32> {
    let mut found = roots.to_vec();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(_, s)| s.ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found
}

/// Whether this process has no child at all, live or dead and not yet reaped: `waitid` for any
/// child (`__WALL`: whatever signal it reports its end with) that waits for nothing and reaps
/// nothing (`WNOHANG | WNOWAIT`) fails with `ECHILD` exactly then.
fn has_no_children() -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    let flags =
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT | WaitPidFlag::__WALL;
    waitid(Id::All, flags) == Err(nix::errno::Errno::ECHILD)
}

/// The children of `parent` with their stat lines: from `/proc/PID/task/*/children` (a few
/// small reads), else from the whole process table.
fn children_of(parent: i32) -> Vec<(i32, Stat)> {
    let listed = std::fs::read_dir(format!("/proc/{parent}/task"))
        .ok()
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                .flat_map(|text| {
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<i32>>()
        });
    match listed {
        Some(pids)
            if std::path::Path::new(&format!("/proc/{parent}/task/{parent}/children")).exists() =>
        {
            pids.into_iter()
                .filter_map(|pid| Some((pid, read_stat(pid)?)))
                .collect()
        }
        _ => proc_table()
            .into_iter()
            .filter(|(_, s)| s.ppid == parent)
            .collect(),
    }
}

/// Whether process `pid`'s environment holds the entry `entry` (`NAME=value`).
///
/// A process in the middle of `execve` shows an empty environment for a moment (the kernel sets
/// the new image's up after swapping its memory in): an orphan of the command caught then, e.g.
/// a `set -m` job whose shell has just exited, would be taken for a stranger and the lock
/// released under it. The command's processes always carry the entry, so an empty read of a
/// live process is read again, for up to about 100 ms.
fn environ_has(pid: i32, entry: &[u8]) -> bool {
    for _ in 0..50 {
        match std::fs::read(format!("/proc/{pid}/environ")) {
            Err(_) => return false,
            Ok(env) if env.is_empty() => {
                if read_stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X')) {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(env) => return env.split(|b| *b == 0).any(|e| e == entry),
        }
    }
    false
}

/// Every descendant of `root` (not `root` itself), by parent links.
pub fn descendants(root: i32) -> Vec<i32> {
    let table = proc_table();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(_, s)| s.ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// "1 background process (pid 123 sleep)" / "3 background processes (pid 1 a, pid 2 b, ...)".
pub fn describe(members: &[Member]) -> String {
    const SHOWN: usize = 3;
    let list: Vec<String> = members
        .iter()
        .take(SHOWN)
        .map(|m| format!("pid {} {}", m.pid, m.comm))
        .collect();
    let more = if members.len() > SHOWN { ", …" } else { "" };
    let noun = if members.len() == 1 {
        "process"
    } else {
        "processes"
    };
    format!(
        "{} background {noun} ({}{more})",
        members.len(),
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that is already a subreaper (a library caller's second command) must not get
    /// the reaper helper as its own child: in subreaper mode "no child left" would never hold.
    /// Being a subreaper changes the whole process, so the check runs in a process of its own:
    /// this test binary again, running only this test.
    #[test]
    fn the_reaper_helper_is_never_our_child() {
        const INNER: &str = "TREE_TEST_HELPER_NOT_OUR_CHILD";
        if std::env::var_os(INNER).is_none() {
            let mut inner = std::process::Command::new(std::env::current_exe().unwrap());
            inner
                .args([
                    "--exact",
                    "process::tree::tests::the_reaper_helper_is_never_our_child",
                ])
                .args(["--nocapture", "--test-threads", "1"])
                .env(INNER, "1");
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("ETCDLOCK_") || key.starts_with("ETCDCTL_") {
                    inner.env_remove(&*key);
                }
            }
            let out = inner
                .env_remove("RUST_LOG")
                .env_remove("NO_COLOR")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let tree = Tree::prepare();
        tree.guard_against_our_death("test-run", None);
        assert!(tree.reaper_slot().is_some(), "no reaper helper");
        // This process starts nothing else: any child would be the helper (its name may not be
        // set yet).
        let me = std::process::id() as i32;
        let children: Vec<i32> = proc_table()
            .into_iter()
            .filter(|(_, st)| st.ppid == me)
            .map(|(pid, _)| pid)
            .collect();
        tree.finish();
        assert!(children.is_empty(), "the helper {children:?} is our child");
    }

    /// Empty is kept until the next spawn: a tree found empty after its first command is not
    /// empty while a second one runs in it, and empty again once that one is gone too.
    #[test]
    fn an_empty_tree_stays_empty_until_the_next_spawn() {
        use std::time::{Duration, Instant};
        let tree = Tree::prepare();
        assert!(tree.is_empty());
        let spawn = || {
            let argv = ["sleep".into(), "30".into()];
            super::super::supervise::spawn(Path::new("/bin/sleep"), &argv, &[], &tree).unwrap();
            tree.leader_pid().unwrap()
        };
        let end = |pid: i32| {
            kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
            super::super::spawn::reap(pid);
            tree.leader_reaped();
            let give_up = Instant::now() + Duration::from_secs(10);
            while !tree.is_empty() {
                assert!(
                    Instant::now() < give_up,
                    "the tree is not empty after its command"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let first = spawn();
        assert!(!tree.is_empty(), "the tree is empty while its command runs");
        end(first);
        let second = spawn();
        assert!(
            !tree.is_empty(),
            "the tree found empty before is still said to be empty while a new command runs"
        );
        end(second);
        tree.finish();
    }

    /// While another thread starts the helper ([`Tree::arming`]), what needs it waits; once the
    /// mark is gone it goes on. Without an arming, at once.
    #[test]
    fn what_needs_the_helper_waits_until_it_is_started() {
        use std::sync::{mpsc, Arc};
        use std::time::Duration;
        let tree = Arc::new(Tree::prepare());
        tree.wait_armed();
        let arming = tree.arming();
        let (tx, rx) = mpsc::channel();
        let waiting = tree.clone();
        let waiter = std::thread::spawn(move || {
            waiting.wait_armed();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "wait_armed returned while the helper was being started"
        );
        drop(arming);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("wait_armed did not return once the helper was started");
        waiter.join().unwrap();
        tree.finish();
    }

    /// A live child and a dead one not yet reaped are both children; asking reaps neither (the
    /// command's status belongs to the supervisor).
    #[test]
    fn has_no_children_sees_live_and_dead_children_and_reaps_none() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!has_no_children(), "a live child");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        kill(pid, Signal::SIGKILL).unwrap();
        // Wait for the zombie without reaping it.
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags).unwrap();
        assert!(!has_no_children(), "a dead child not yet reaped");
        let status = child.try_wait().unwrap();
        assert!(
            status.is_some(),
            "the child's status is still there to reap"
        );
    }

    #[test]
    fn stat_lines_with_odd_command_names() {
        let s = parse_stat("42 (a) b (c)) S 7 42 42 0").unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid), ("a) b (c)", 'S', 7));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn mountinfo_finds_cgroup2() {
        let line = "35 24 0:30 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw";
        assert_eq!(
            cgroup2_mount(line),
            Some(("/".into(), "/sys/fs/cgroup/unified".into()))
        );
        let v1 = "36 24 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu";
        assert_eq!(cgroup2_mount(v1), None);
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
    }

    #[test]
    fn descendants_of_a_shell_pipeline() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while descendants(me).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = descendants(me);
        child.kill().unwrap();
        for pid in &found {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        child.wait().unwrap();
        assert!(found.len() >= 3, "{found:?}");
    }

    #[test]
    fn descriptions_count_and_name() {
        let m = |pid, comm: &str| Member {
            pid,
            comm: comm.into(),
        };
        assert_eq!(
            describe(&[m(123, "sleep")]),
            "1 background process (pid 123 sleep)"
        );
        let four = [m(1, "a"), m(2, "b"), m(3, "c"), m(4, "d")];
        assert_eq!(
            describe(&four),
            "4 background processes (pid 1 a, pid 2 b, pid 3 c, …)"
        );
    }
}
