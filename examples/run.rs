//! `etcdlock run` in about 30 lines of library calls: run COMMAND under the lock NAME with the
//! whole promise (killed before the lease can expire, its tree tracked, the lock released with
//! the lease), and exit with its code (70 when the lock was lost).
//!
//! ```text
//! cargo run --example run -- --endpoints URL[,URL...] NAME -- COMMAND [ARGS...]
//! ```

use std::time::Duration;

use etcdlock::client::Check;
use etcdlock::process::{reaper, supervise};
use etcdlock::runner::{self, Command, Event, Options, Records, Release};
use etcdlock::{record::Retention, Client, Config, Holder, Mutex, SafetyParams, Session};

#[tokio::main(flavor = "current_thread")] // the main thread spawns: see etcdlock::process::spawn
async fn main() -> std::process::ExitCode {
    let code = run().await.unwrap_or_else(|e| {
        eprintln!("run: {e}");
        1
    });
    std::process::ExitCode::from(code)
}

async fn run() -> Result<u8, Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [flag, endpoints, name, dashes, command @ ..] = argv.as_slice() else {
        return Err("usage: run --endpoints URL NAME -- COMMAND [ARGS...]".into());
    };
    if flag != "--endpoints" || dashes != "--" || command.is_empty() {
        return Err("usage: run --endpoints URL NAME -- COMMAND [ARGS...]".into());
    }
    let client = Client::connect(Config::new(endpoints.split(','))?, Check::Lazy).await?;
    let mut signals = supervise::Signals::install()?;
    let program = supervise::check_command(command[0].as_ref())?;
    let run_id = reaper::new_run_id();
    let tree = runner::prepare_tree(&run_id, None).await;
    let session = Session::new(&client, SafetyParams::new(Duration::from_secs(10), None)?).await?;
    let held = Mutex::new(name.as_str())?.lock(&session).await?;
    let argv: Vec<std::ffi::OsString> = command.iter().map(Into::into).collect();
    let holder = Holder::current(&argv, 1, Default::default());
    let (env, tree2) = (Vec::new(), tree.clone());
    let cmd = Command {
        program,
        argv,
        env,
        tree: tree2,
        run_id,
    };
    let report = |event: Event<'_>| {
        if let Event::Command(supervise::Event::Lost(why)) = event {
            eprintln!("run: lock {name} lost: {why}; stopping the command");
        }
    };
    let (options, started, at) = (
        Options::default(),
        std::time::SystemTime::now(),
        std::time::Instant::now(),
    );
    let ended = runner::run_command(
        &session,
        &mut signals,
        name,
        &cmd,
        held.acquired(),
        &options,
        &report,
    )
    .await?;
    let records = Records {
        holder: &holder,
        retention: Retention::start(&client, name, None),
        once_per: None,
    };
    let (acquired, code) = (held.into_acquired(), ended.code());
    let how = Release::Ran {
        acquired,
        code,
        started,
        took: at.elapsed(),
        records,
    };
    runner::release(session, &tree, name, how, &report).await;
    Ok(code)
}
