//! What etcdlock and its reaper helper agree on: the descriptors the helper finds its inputs on,
//! the shared page's layout, the pipe's messages, and the rule that turns the published deadlines
//! into the helper's next step.
//!
//! Two programs are built from this file: the library (through [`super::reaper`]) and the
//! freestanding helper in `watchdog/main.rs`, which `build.rs` compiles and the library embeds
//! (`#[path]`-included there, so it uses `core` only). Keeping both sides of the protocol in one
//! file is what keeps them in step; the rule ([`next_step`]) is unit-tested here, once, for both.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// The descriptor the helper reads etcdlock's pipe from.
pub const PIPE_FD: i32 = 3;
/// The descriptor of the shared page with the deadlines.
pub const PAGE_FD: i32 = 4;
/// `cgroup.kill` of the command's cgroup, if there is one (else closed).
pub const KILL_FD: i32 = 5;
/// The rescue program (an `O_PATH` descriptor), if there is one (else closed): what the
/// embedded helper execs when it must kill (see [`super::reaper::Rescue`]).
pub const RESCUE_FD: i32 = 6;

/// Pipe message: the command's pid follows (4 bytes, little-endian).
pub const MSG_LEADER: u8 = b'p';
/// Pipe message: the command was reaped; never signal its group id again.
pub const MSG_REAPED: u8 = b'r';
/// Pipe message: the deadlines were armed or moved earlier; read them again.
pub const MSG_WAKE: u8 = b'w';
/// Pipe message: done; exit quietly.
pub const MSG_DONE: u8 = b'd';

/// The size of the shared page.
pub const PAGE_SIZE: usize = 4096;

/// How long after `term_at` the helper sends the kill signal itself, unless the guard did: a
/// running guard does it first and says so, and the command does not get the signal twice. A
/// quarter of the grace at most, so SIGKILL still lands at `kill_at`.
pub const TERM_LAG_NS: u64 = 250_000_000;

/// What etcdlock and its helper share: the guard's kill times (nanoseconds on CLOCK_BOOTTIME, 0
/// when no command is armed; a published time is never 0) and two flags. etcdlock writes the
/// times with [`Page::publish`] and [`Page::clear`], the helper reads them with
/// [`Page::next_step`]: two separate stores and two separate loads, so the helper can see one
/// time of a publication without the other; [`next_step`] reads such a pair as unarmed.
#[repr(C)]
pub struct Page {
    /// When the kill signal is due.
    pub term_at: AtomicU64,
    /// When SIGKILL is due.
    pub kill_at: AtomicU64,
    /// The signal to send at `term_at`.
    pub signal: AtomicI32,
    /// The guard sent the kill signal itself (the helper does not repeat it).
    pub term_sent: AtomicU32,
    /// The helper found a deadline passed and acted (etcdlock then reports the lock lost).
    pub fired: AtomicU32,
}

impl Page {
    /// Publish the guard's kill times (etcdlock's side); true if the helper must be woken to see
    /// them: they were not armed before (it may have read half of this publication, which it
    /// takes for unarmed) or moved earlier (its timer is set for the old ones).
    pub fn publish(&self, term_at: u64, kill_at: u64, signal: i32) -> bool {
        let old = self.kill_at.load(Ordering::Relaxed);
        let kill = kill_at.max(1);
        self.signal.store(signal, Ordering::Relaxed);
        self.term_at.store(term_at.max(1), Ordering::Release);
        self.kill_at.store(kill, Ordering::Release);
        old == 0 || kill < old
    }

    /// No command to watch any more (etcdlock's side): the helper stops timing.
    pub fn clear(&self) {
        self.kill_at.store(0, Ordering::Release);
        self.term_at.store(0, Ordering::Release);
    }

    /// The helper's next step at `now` (see [`next_step`]) from the times as published, `termed`
    /// if the helper sent the kill signal already.
    pub fn next_step(&self, now: u64, termed: bool) -> Step {
        next_step(
            self.term_at.load(Ordering::Acquire),
            self.kill_at.load(Ordering::Acquire),
            now,
            termed,
            self.term_sent.load(Ordering::Acquire) != 0,
        )
    }
}

/// What the helper does next, given the deadlines it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sleep until this time (0: no deadline armed; wait for the pipe only).
    Sleep(u64),
    /// `term_at` (plus the lag) passed and nobody sent the kill signal: send it, then sleep
    /// until `kill_at`.
    Term {
        /// `kill_at`.
        then: u64,
    },
    /// `kill_at` passed: SIGKILL the tree.
    Kill,
}

/// The helper's rule: with `term_at` and `kill_at` as published (0: unarmed), the time `now`,
/// and whether the kill signal was sent already (by the helper, `termed`, or by the guard,
/// `guard_termed`), what to do.
///
/// Either time at 0 is unarmed: the helper read them between the two stores of a publication
/// that arms (which then wakes it) or of a clearing. Read as a kill-signal time of 0, long past,
/// such a half publication made the helper stop a healthy command the moment it was armed.
pub fn next_step(term_at: u64, kill_at: u64, now: u64, termed: bool, guard_termed: bool) -> Step {
    if kill_at == 0 || term_at == 0 {
        return Step::Sleep(0);
    }
    if now >= kill_at {
        return Step::Kill;
    }
    if termed || guard_termed {
        return Step::Sleep(kill_at);
    }
    let lag = (kill_at.saturating_sub(term_at) / 4).min(TERM_LAG_NS);
    let term_due = term_at.saturating_add(lag);
    if now >= term_due {
        Step::Term { then: kill_at }
    } else {
        Step::Sleep(term_due)
    }
}

/// `v` in decimal, NUL-terminated, into `out`; returns the digits' count. For the rescue
/// program's `--leader` argument, written where nothing may allocate.
pub fn decimal(v: u32, out: &mut [u8; 12]) -> usize {
    let mut digits = [0u8; 10];
    let (mut n, mut v) = (0, v);
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    out[n] = 0;
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_the_digits_and_a_nul() {
        for v in [0, 7, 10, 4_194_304, u32::MAX] {
            let mut out = [0xff; 12];
            let n = super::decimal(v, &mut out);
            assert_eq!(&out[..n], v.to_string().as_bytes());
            assert_eq!(out[n], 0);
        }
    }

    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn unarmed_waits_for_the_pipe_only() {
        assert_eq!(next_step(0, 0, 5 * S, false, false), Step::Sleep(0));
    }

    /// Half a publication (the helper read one time before etcdlock stored it and the other
    /// after) is unarmed, not a deadline long past.
    #[test]
    fn half_a_publication_is_unarmed() {
        assert_eq!(next_step(0, 12 * S, 5 * S, false, false), Step::Sleep(0));
        assert_eq!(next_step(10 * S, 0, 5 * S, false, false), Step::Sleep(0));
    }

    /// etcdlock arms, moves and clears far-off deadlines as fast as it can while a helper reads
    /// them as fast as it can: the helper never finds one due. (Without the rule above, it found
    /// one in each of three runs on the bench machine.)
    #[test]
    fn a_helper_reading_while_etcdlock_publishes_never_finds_a_far_deadline_due() {
        let page = Page {
            term_at: AtomicU64::new(0),
            kill_at: AtomicU64::new(0),
            signal: AtomicI32::new(15),
            term_sent: AtomicU32::new(0),
            fired: AtomicU32::new(0),
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (now, far) = (1000 * S, 2000 * S);
        let reads = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let step = page.next_step(now, false);
                    assert!(matches!(step, Step::Sleep(_)), "read {reads}: {step:?}");
                    reads += 1;
                }
                reads
            });
            let start = std::time::Instant::now();
            let mut round = 0u64;
            while start.elapsed() < std::time::Duration::from_millis(300) {
                page.publish(far + round, far + 2 * S + round, 15);
                page.publish(far + round + 1, far + 2 * S + round + 1, 15);
                page.clear();
                round += 1;
            }
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap()
        });
        assert!(reads > 1000, "the reader read only {reads} times");
    }

    #[test]
    fn the_kill_signal_comes_a_lag_after_term_at_and_sigkill_at_kill_at() {
        // Grace 2 s: the lag is its quarter capped at 250 ms.
        let (term, kill) = (10 * S, 12 * S);
        assert_eq!(
            next_step(term, kill, 9 * S, false, false),
            Step::Sleep(term + TERM_LAG_NS)
        );
        assert_eq!(
            next_step(term, kill, term + TERM_LAG_NS, false, false),
            Step::Term { then: kill }
        );
        assert_eq!(
            next_step(term, kill, 11 * S, true, false),
            Step::Sleep(kill)
        );
        assert_eq!(next_step(term, kill, kill, true, false), Step::Kill);
        // A short grace: the lag is a quarter of it, so SIGKILL still comes last.
        assert_eq!(
            next_step(term, term + 400_000_000, 0, false, false),
            Step::Sleep(term + 100_000_000)
        );
    }

    #[test]
    fn a_guard_that_sent_the_signal_is_not_repeated() {
        assert_eq!(
            next_step(10 * S, 12 * S, 11 * S, false, true),
            Step::Sleep(12 * S)
        );
    }

    #[test]
    fn sigkill_is_due_even_if_the_signal_was_never_sent() {
        // etcdlock frozen past both times before the helper woke: straight to SIGKILL.
        assert_eq!(next_step(10 * S, 12 * S, 13 * S, false, false), Step::Kill);
    }
}
