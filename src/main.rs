//! etcdlock: run a command while holding a distributed lock in etcd.
//!
//! `main` only parses, dispatches and turns the outcome into an exit code; see `run.rs` for the
//! life cycle of a locked command and `exit.rs` for the codes.

mod child;
mod cli;
mod etcd;
mod exit;
mod guard;
mod lease;
mod lock;
mod meta;
mod output;
mod run;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    output::init(cli.global.verbose, cli.global.quiet);
    let code = match run::main(cli) {
        Ok(code) => code,
        Err(err) => {
            output::error(&err);
            exit::code_of(&err)
        }
    };
    ExitCode::from(code)
}
