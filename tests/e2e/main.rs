//! End-to-end tests of etcdlock against real etcd processes, one test binary (it links once).
//! Each module covers one area; the fault-injection suite is the other binary (tests/faults).

mod cli;
mod fleet;
mod generated;
mod harness;
mod inspect;
mod library;
mod names;
mod options;
mod robust;
mod run;
mod security;
mod tree;
