//! End-to-end tests of etcdlock against real etcd processes, one test binary (it links once).
//! Each module covers one area; the fault-injection suite is the other binary (tests/faults).

mod architecture;
mod cli;
mod common;
mod elect;
mod fleet;
mod generated;
mod harness;
mod inspect;
mod library;
mod monitoring;
mod names;
mod options;
mod papercuts;
mod pipeline;
mod records;
mod robust;
mod run;
mod security;
mod tree;

/// The test binary is also the lock-set child (the pipeline steps): before main, it becomes one
/// if told so.
#[used]
#[link_section = ".init_array"]
static CHILD_ENTRY: extern "C" fn() = etcdlock_testkit::lockset::child_entry;
