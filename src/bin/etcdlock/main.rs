//! etcdlock: run a command while holding a distributed lock in etcd — the command-line tool on
//! the `etcdlock` library. `main` only parses, dispatches (commands.rs) and turns the outcome into
//! an exit code (exit.rs).
//!
//! The C library calls [`main`] directly (`#![no_main]`): Rust's own start-up, which every run
//! would pay for, reads `/proc/self/maps` to find the main thread's stack and maps an alternate
//! signal stack per thread, only to print "has overflowed its stack" before a crash (issue 25:
//! −0.1 ms per start on the bench machine). A stack overflow is still a SIGSEGV that ends
//! etcdlock, and the reaper helper then kills the command's tree. What of that start-up etcdlock
//! relies on, `main` does itself: descriptors 0–2 open, SIGPIPE ignored (a closed pipe is an
//! error to report, not a silent death), standard output flushed at the end.
// Not in the unit-test build of this binary, whose `main` is the test harness's.
#![cfg_attr(not(test), no_main)]

mod check;
mod cli;
mod command;
mod commands;
mod config;
mod elect;
mod emergency;
mod exit;
mod exporter;
mod generate;
mod handles;
mod herd;
mod hooks;
mod live;
mod metrics;
mod notices;
mod output;
mod progress;
mod run;
mod show;
mod wait;

/// The program's entry point, called by the C library with the command line (which
/// `std::env::args` reads all the same). Returns the exit code.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    standard_fds();
    one_malloc_arena();
    // SAFETY: setting a signal's disposition to "ignore" before any thread exists.
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    emergency::install();
    let cli = cli::parse();
    output::init(cli.global.verbose, cli.global.quiet, cli.global.log_format);
    let code = commands::dispatch(cli).unwrap_or_else(|err| {
        output::error(&exit::explain(&err));
        exit::code_of(&err)
    });
    use std::io::Write;
    let _ = std::io::stdout().flush();
    code.into()
}

/// glibc gives each thread that allocates a malloc arena of its own: a 64 MiB reservation, its
/// trimming and protection (three system calls) and fresh pages to fault in. etcdlock's threads
/// (the tree's, the guard's) allocate a few hundred bytes each: one arena serves them all.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a malloc tunable, set before any thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Open `/dev/null` on any of descriptors 0, 1 and 2 that is closed, as Rust's start-up would:
/// otherwise the first file or socket etcdlock opens would become the command's standard input
/// or output (or etcdlock's own stderr).
fn standard_fds() {
    use nix::libc;
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: a plain open of a constant path; the descriptor is kept on purpose.
            let _ = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}
