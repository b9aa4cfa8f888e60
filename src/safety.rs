//! The numbers the promise rests on, and the one place that checks them.
//!
//! A holder's deadline is the *send* time of its last acknowledged keep-alive plus the TTL the
//! server granted (the server restarted its countdown no earlier than that send). Counting back
//! from that deadline:
//!
//! ```text
//!  ack sent ........ renew every window/3 ........ term_at ........ kill_at ...... deadline
//!  |<----------------- window ------------------->|<-kill_after->|<-- MARGIN -->|
//! ```
//!
//! - `kill_at = deadline - MARGIN`: SIGKILL lands half a second early, to absorb scheduling and
//!   signal delivery.
//! - `term_at = kill_at - kill_after`: the kill signal goes out a grace period before that.
//! - `window = TTL - kill_after - MARGIN`: how long keep-alives may go unanswered before the
//!   command is stopped; renewals are paced by it (three fit in), not by the bare TTL.
//!
//! [`SafetyParams::new`] refuses what would break this: a TTL etcd would silently change (not whole
//! seconds, under its 2 s minimum, over its maximum) and a grace of half the TTL or more (then the
//! window would be shorter than the grace, and one slow answer would cost the lock). The server may
//! grant more than asked, never less; [`SafetyParams::with_granted_ttl`] re-checks against what it
//! granted.

use std::fmt;
use std::time::Duration;

use crate::clock::BootTime;

/// Why a set of safety parameters was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// etcd leases have one-second resolution.
    TtlNotWholeSeconds(Duration),
    /// etcd raises shorter TTLs to its minimum (1.5 × election timeout, 2 s by default).
    TtlTooShort(Duration),
    /// etcd's `MaxLeaseTTL`.
    TtlTooLong(Duration),
    /// The grace between the kill signal and SIGKILL must be under half the TTL.
    GraceTooLong {
        /// The grace asked for.
        kill_after: Duration,
        /// The TTL it was checked against.
        ttl: Duration,
    },
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Unsafe::TtlNotWholeSeconds(t) => write!(
                f,
                "the TTL ({}) must be whole seconds (etcd leases have 1 s resolution)",
                d(t)
            ),
            Unsafe::TtlTooShort(_) => write!(
                f,
                "the TTL must be at least {} (etcd's minimum lease TTL)",
                d(&SafetyParams::MIN_TTL)
            ),
            Unsafe::TtlTooLong(_) => write!(
                f,
                "the TTL must be at most {}s (etcd's maximum lease TTL)",
                SafetyParams::MAX_TTL.as_secs()
            ),
            Unsafe::GraceTooLong { kill_after, ttl } => write!(
                f,
                "the kill grace {} must be less than half the TTL ({})",
                d(kill_after),
                d(ttl)
            ),
        }
    }
}

impl std::error::Error for Unsafe {}

impl From<Unsafe> for crate::Error {
    fn from(e: Unsafe) -> crate::Error {
        crate::Error::Config(e.to_string())
    }
}

/// TTL and kill grace of one session, checked together; everything the guard and the keep-alive
/// derive from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafetyParams {
    ttl: Duration,
    /// As given; `None` means [`SafetyParams::default_kill_after`] of the TTL in force.
    kill_after: Option<Duration>,
}

impl SafetyParams {
    /// SIGKILL lands this long before the deadline.
    pub const MARGIN: Duration = Duration::from_millis(500);
    /// The TTL `etcdctl lock` uses, and ours by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
    /// etcd's minimum lease TTL with default election settings.
    pub const MIN_TTL: Duration = Duration::from_secs(2);
    /// etcd's `MaxLeaseTTL`.
    pub const MAX_TTL: Duration = Duration::from_secs(9_000_000_000);
    /// The kill grace when none is given (or a quarter of the TTL, if that is shorter).
    pub const DEFAULT_KILL_AFTER: Duration = Duration::from_secs(2);
    /// How often an unanswered keep-alive is sent again (as Go's client does).
    pub const RESEND: Duration = Duration::from_millis(500);

    /// Check a TTL on its own (for parsing it early).
    pub fn check_ttl(ttl: Duration) -> Result<(), Unsafe> {
        if ttl.subsec_nanos() != 0 {
            return Err(Unsafe::TtlNotWholeSeconds(ttl));
        }
        if ttl < Self::MIN_TTL {
            return Err(Unsafe::TtlTooShort(ttl));
        }
        if ttl > Self::MAX_TTL {
            return Err(Unsafe::TtlTooLong(ttl));
        }
        Ok(())
    }

    /// `ttl` with a kill grace of `kill_after` (`None`: the default for the TTL in force).
    pub fn new(ttl: Duration, kill_after: Option<Duration>) -> Result<SafetyParams, Unsafe> {
        Self::check_ttl(ttl)?;
        let params = SafetyParams { ttl, kill_after };
        let grace = params.kill_after();
        if grace.saturating_mul(2) >= ttl {
            return Err(Unsafe::GraceTooLong {
                kill_after: grace,
                ttl,
            });
        }
        Ok(params)
    }

    /// The same parameters for the TTL the server actually granted (it may raise the request).
    pub fn with_granted_ttl(self, granted: Duration) -> Result<SafetyParams, Unsafe> {
        let granted = granted.max(Duration::from_secs(1));
        let params = SafetyParams {
            ttl: granted,
            kill_after: self.kill_after,
        };
        if params.kill_after().saturating_mul(2) >= granted {
            return Err(Unsafe::GraceTooLong {
                kill_after: params.kill_after(),
                ttl: granted,
            });
        }
        Ok(params)
    }

    /// 2 s, or a quarter of the TTL if that is shorter: valid for every TTL.
    pub fn default_kill_after(ttl: Duration) -> Duration {
        Self::DEFAULT_KILL_AFTER.min(ttl / 4)
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The grace between the kill signal and SIGKILL.
    pub fn kill_after(&self) -> Duration {
        self.kill_after
            .unwrap_or_else(|| Self::default_kill_after(self.ttl))
    }

    /// From an acknowledged keep-alive's send time to the kill signal, if no other comes.
    pub fn window(&self) -> Duration {
        self.ttl.saturating_sub(self.kill_after() + Self::MARGIN)
    }

    /// Renewal period: half the window, as long as three resends ([`SafetyParams::RESEND`]) of a
    /// renewal that goes unanswered still fit before the window ends; a third of the window for
    /// short TTLs where they would not. With the default TTL (10 s) that is 3.75 s, about
    /// `etcdctl lock`'s pace (TTL/3 rounded down to whole seconds, checked every 0.5 s: ~3.5 s), so
    /// a holder loads etcd no more than etcdctl does. The worst case under one lost message: the
    /// renewal sent at `window/2` after the last acknowledged one is lost, its resend 0.5 s later
    /// still has `window/2 − 0.5 s` (3.25 s with TTL 10) to be answered before the kill signal.
    pub fn renew_every(&self) -> Duration {
        let window = self.window();
        (window / 2)
            .min(window.saturating_sub(Self::RESEND * 3))
            .max(window / 3)
    }

    /// A keep-alive stream silent this long (or for half of what is left, if that is more) is
    /// abandoned for another endpoint: one dead member costs a fail-over, not the lock.
    pub fn stale_after(&self) -> Duration {
        (self.window() / 6).clamp(Duration::from_millis(250), Duration::from_secs(2))
    }

    /// When the kill signal goes out for `deadline`.
    pub fn term_at(&self, deadline: BootTime) -> BootTime {
        deadline.saturating_sub(self.kill_after() + Self::MARGIN)
    }

    /// When SIGKILL goes out for `deadline`.
    pub fn kill_at(&self, deadline: BootTime) -> BootTime {
        deadline.saturating_sub(Self::MARGIN)
    }
}

impl Default for SafetyParams {
    fn default() -> SafetyParams {
        SafetyParams {
            ttl: Self::DEFAULT_TTL,
            kill_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_etcd_would_change_are_refused() {
        assert!(SafetyParams::new(Duration::from_secs(10), None).is_ok());
        for bad in [0, 1] {
            assert!(SafetyParams::new(Duration::from_secs(bad), None).is_err());
        }
        assert!(SafetyParams::new(Duration::from_millis(2500), None).is_err());
        assert!(SafetyParams::new(Duration::from_secs(9_000_000_001), None).is_err());
    }

    #[test]
    fn the_default_grace_fits_every_ttl() {
        let p = SafetyParams::new(Duration::from_secs(10), None).unwrap();
        assert_eq!(p.kill_after(), Duration::from_secs(2));
        let p = SafetyParams::new(Duration::from_secs(2), None).unwrap();
        assert_eq!(p.kill_after(), Duration::from_millis(500));
        assert_eq!(p.window(), Duration::from_secs(1));
    }

    #[test]
    fn a_grace_of_half_the_ttl_is_refused_before_and_after_the_grant() {
        let err = SafetyParams::new(Duration::from_secs(10), Some(Duration::from_secs(5)));
        assert_eq!(
            err.unwrap_err().to_string(),
            "the kill grace 5s must be less than half the TTL (10s)"
        );
        let p = SafetyParams::new(Duration::from_secs(10), Some(Duration::from_secs(4))).unwrap();
        assert!(p.with_granted_ttl(Duration::from_secs(20)).is_ok());
        assert!(p.with_granted_ttl(Duration::from_secs(8)).is_err());
    }

    #[test]
    fn pacing_follows_the_window() {
        let p = SafetyParams::new(Duration::from_secs(10), None).unwrap();
        assert_eq!(p.window(), Duration::from_millis(7500));
        assert_eq!(p.renew_every(), Duration::from_millis(3750));
        // Short TTLs keep a third of the window: three resends would not fit after half of it.
        let short = SafetyParams::new(Duration::from_secs(2), None).unwrap();
        assert_eq!(short.renew_every(), short.window() / 3);
        for ttl in [2, 3, 4, 5, 10, 30, 60, 3600] {
            let p = SafetyParams::new(Duration::from_secs(ttl), None).unwrap();
            // A lost renewal's first resend goes out well before the kill signal.
            assert!(
                p.renew_every() + SafetyParams::RESEND < p.window(),
                "ttl {ttl}"
            );
            assert!(p.renew_every() >= p.window() / 3, "ttl {ttl}");
        }
        assert_eq!(p.stale_after(), Duration::from_millis(1250));
        let d = BootTime::from_duration(Duration::from_secs(100));
        assert_eq!(
            p.kill_at(d),
            BootTime::from_duration(Duration::from_millis(99_500))
        );
        assert_eq!(
            p.term_at(d),
            BootTime::from_duration(Duration::from_millis(97_500))
        );
    }
}
