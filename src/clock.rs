//! CLOCK_BOOTTIME: the only clock deadlines are kept on.
//!
//! `Instant` on Linux is CLOCK_MONOTONIC, which stops while the machine is suspended; a lease on
//! the etcd server does not. A deadline on CLOCK_MONOTONIC would be late by the length of every
//! suspend. CLOCK_BOOTTIME keeps counting through it.

use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// A point on CLOCK_BOOTTIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootTime(Duration);

impl BootTime {
    /// Now.
    pub fn now() -> BootTime {
        // Every Linux since 2.6.39 has CLOCK_BOOTTIME, and reading it cannot fail with valid
        // arguments; should it ever, a time of zero makes every deadline look passed (safe side).
        BootTime(clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(Duration::ZERO, Duration::from))
    }

    /// The point `d` after boot (for tests and arithmetic).
    pub fn from_duration(d: Duration) -> BootTime {
        BootTime(d)
    }

    /// Nanoseconds since boot, as the reaper helper's shared page stores it (0 means "none": no
    /// real deadline is ever at boot time itself).
    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The point `ns` nanoseconds after boot.
    pub fn from_nanos(ns: u64) -> BootTime {
        BootTime(Duration::from_nanos(ns))
    }

    /// `self - d`, or boot time itself.
    pub fn saturating_sub(self, d: Duration) -> BootTime {
        BootTime(self.0.saturating_sub(d))
    }

    /// How long from `self` to `later` (zero if `later` is not later).
    pub fn until(self, later: BootTime) -> Duration {
        later.0.saturating_sub(self.0)
    }
}

impl std::ops::Add<Duration> for BootTime {
    type Output = BootTime;
    fn add(self, d: Duration) -> BootTime {
        BootTime(self.0.saturating_add(d))
    }
}
