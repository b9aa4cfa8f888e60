//! The lock-set child as a program of its own, for scripts (the tests use the same code from
//! inside their own binary, see `lockset::child_entry`).
//!
//! ```text
//! lockset-child                 # the lock-set workload's child, configured by its environment
//! lockset-child --stamp FILE    # append "START_NS END_NS" (CLOCK_MONOTONIC) to FILE and exit
//! ```

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match args.as_slice() {
        [] => etcdlock_testkit::lockset::run_child(),
        [flag, file] if flag == "--stamp" => etcdlock_testkit::lockset::stamp(file.as_ref()),
        _ => {
            eprintln!("usage: lockset-child [--stamp FILE]");
            2
        }
    };
    std::process::exit(code);
}
