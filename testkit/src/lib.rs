//! The test kit of etcdlock: what its end-to-end tests and its scripts share, so that there is one
//! way to start etcd, one way to start etcdlock and etcdctl, one set of wait helpers.
//!
//! Everything here talks to a *real* etcd (3.4+) started from the binaries found by [`etcd_bin`] /
//! [`etcdctl_bin`] (`ETCD_BIN` / `ETCDCTL_BIN`, else `PATH`); nothing is mocked, and a missing etcd
//! fails loudly. All waits are bounded polls (see [`wait_until`]) so tests behave on slow, noisy
//! machines.
//!
//! - [`cluster`]: [`Cluster`] / [`Etcd`], one or three members on free loopback ports, each in its
//!   own temp dir, SIGKILLed on drop (and with `PR_SET_PDEATHSIG`, so they never outlive a killed
//!   test binary); the HTTP gateway for cheap checks.
//! - [`proxy`]: [`Proxy`], a TCP proxy that can pass, blackhole, stall, delay or reset traffic.
//! - [`cmd`]: [`etcdlock_command`], [`etcdctl_plain`], [`Cluster::etcdctl`], all with a clean
//!   environment ([`clean_env`]).
//! - [`process`]: [`wait_until`], [`pid_alive`], [`read_pid_file`], [`wait_exit`],
//!   [`run_with_timeout`], ...
//! - [`mod@hold`]: [`Hold`], a lock holder (`etcdlock run` or `etcdctl lock`) that runs until the
//!   test creates its release file; [`hold()`], [`let_go`].
//! - [`lockset`]: the Jepsen-style lock-set workload, its child, the fenced store and the checker.
//!
//! The `etcd-sandbox` binary starts a throwaway etcd for scripts (demo, examples, bench) with the
//! same launcher the tests use.

pub mod cluster;
pub mod cmd;
pub mod hold;
pub mod lockset;
pub mod process;
pub mod proxy;

pub use cluster::*;
pub use cmd::*;
pub use hold::*;
pub use process::*;
pub use proxy::*;
