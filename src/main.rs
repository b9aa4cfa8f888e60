//! etcdlock: run a command while holding a distributed lock in etcd.
//!
//! `main` only parses, dispatches and turns the outcome into an exit code; see `run.rs` for the
//! life cycle of a locked command and `exit.rs` for the codes.

mod child;
mod cli;
mod emergency;
mod error;
mod etcd;
mod exit;
mod generate;
mod guard;
mod inspect;
mod lease;
mod lock;
mod meta;
mod metrics;
mod output;
mod progress;
mod queue;
mod reaper;
mod run;
mod spawn;
mod tree;

pub use error::Error;

use std::process::ExitCode;

fn main() -> ExitCode {
    emergency::install();
    let cli = cli::parse();
    output::init(cli.global.verbose, cli.global.quiet, cli.global.log_format);
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            output::error(&err);
            exit::code_of(&err)
        }
    };
    ExitCode::from(code)
}

fn dispatch(cli: cli::Cli) -> anyhow::Result<u8> {
    // These need neither etcd nor a runtime.
    match &cli.command {
        cli::Command::Completions(args) => {
            use std::io::Write;
            std::io::stdout().write_all(&generate::completions(args.shell))?;
            return Ok(0);
        }
        cli::Command::Man(args) => {
            generate::write_man_pages(&args.dir)?;
            return Ok(0);
        }
        cli::Command::InternalReap(args) => {
            return Ok(reaper::rescue(&args.run_id, args.cgroup.as_deref()));
        }
        _ => {}
    }
    let config = etcd::Config::resolve(&cli.global)?;
    // One thread: the keep-alive, watches and supervision are all I/O-bound, and spawning from the
    // main thread is what makes PR_SET_PDEATHSIG reliable (see child.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        cli::Command::Run(args) => runtime.block_on(run::run(config, args)),
        cli::Command::Status(args) => runtime.block_on(inspect::status(config, args)),
        cli::Command::List(args) => runtime.block_on(inspect::list(config, args)),
        cli::Command::Break(args) => runtime.block_on(inspect::break_lock(config, args)),
        cli::Command::Completions(_) | cli::Command::Man(_) | cli::Command::InternalReap(_) => {
            unreachable!("handled above")
        }
    }
}
