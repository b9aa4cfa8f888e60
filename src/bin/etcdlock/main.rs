//! etcdlock: run a command while holding a distributed lock in etcd — the command-line tool on
//! the `etcdlock` library. `main` only parses, dispatches (commands.rs) and turns the outcome into
//! an exit code (exit.rs).

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

fn main() -> std::process::ExitCode {
    emergency::install();
    let cli = cli::parse();
    output::init(cli.global.verbose, cli.global.quiet, cli.global.log_format);
    let code = commands::dispatch(cli).unwrap_or_else(|err| {
        output::error(&exit::explain(&err));
        exit::code_of(&err)
    });
    std::process::ExitCode::from(code)
}
