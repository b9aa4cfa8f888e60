//! `etcdlock run` through the library alone, on its one call ([`runner::hold`]): wait for the
//! lock NAME, run COMMAND with the whole promise (its tree tracked, killed before the lease can
//! expire, dead before the lease is revoked), release, and exit with its code (70 when the lock
//! was lost).
//!
//! ```text
//! cargo run --example run -- --endpoints URL[,URL...] NAME -- COMMAND [ARGS...]
//! ```

use etcdlock::process::supervise::{Event as Supervision, Signals};
use etcdlock::runner::{self, Command, Event, Run};
use etcdlock::{client::Check, record::Retention, wait::Wait};
use etcdlock::{Client, Config, Holder, SafetyParams, Session};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [flag, endpoints, name, dashes, command @ ..] = argv.as_slice() else {
        return Err("usage: run --endpoints URL NAME -- COMMAND [ARGS...]".into());
    };
    if flag != "--endpoints" || dashes != "--" {
        return Err("usage: run --endpoints URL NAME -- COMMAND [ARGS...]".into());
    }
    let client = Client::connect(Config::new(endpoints.split(','))?, Check::Lazy).await?;
    let mut signals = Signals::install()?;
    let command = Command::prepare(command.iter().map(Into::into).collect(), None).await?;
    let holder = Holder::current(&command.argv, 1, Default::default());
    let records = Retention::start(&client, name, None);
    let run = Run::new(Wait::new(name, &holder), &command, records);
    let session = Session::new(&client, SafetyParams::default()).await?;
    let report = |event: Event<'_>| {
        if let Event::Command(Supervision::Lost(why)) = event {
            eprintln!("run: lock {name} lost: {why}; stopping the command");
        }
    };
    let outcome = runner::hold(session, &mut signals, run, &report).await?;
    Ok(outcome.code().into())
}
