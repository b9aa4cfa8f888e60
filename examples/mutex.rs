//! The Rust counterpart of the Go program in etcd's documentation
//! (`concurrency.NewSession(cli, concurrency.WithTTL(10))`, `concurrency.NewMutex(s, "/my-lock/")`,
//! `Lock`, work, `Unlock`), with what Go's package cannot do: the session says the lock is lost
//! *before* the server can expire it, so the work stops in time.
//!
//! ```text
//! cargo run --example mutex -- --endpoints URL[,URL...] [--hold DUR] [NAME]
//! ```
//!
//! NAME defaults to `/my-lock/` and the hold to 5 s, as in the Go program. It excludes, and is
//! excluded by, `etcdctl lock /my-lock/`, Go's `NewMutex(s, "/my-lock/")` and
//! `etcdlock run /my-lock/`.

use std::time::Duration;

use etcdlock::client::Check;
use etcdlock::{Client, Config, Mutex, SafetyParams, Session};

struct Args {
    endpoints: Vec<String>,
    hold: Duration,
    name: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        endpoints: vec![Config::DEFAULT_ENDPOINT.to_owned()],
        hold: Duration::from_secs(5),
        name: "/my-lock/".to_owned(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--endpoints" => {
                let list = argv.next().ok_or("--endpoints needs URL[,URL...]")?;
                args.endpoints = list.split(',').map(|e| e.trim().to_owned()).collect();
            }
            "--hold" => {
                let d = argv.next().ok_or("--hold needs a duration, e.g. 5s")?;
                args.hold = humantime::parse_duration(&d).map_err(|e| format!("--hold: {e}"))?;
            }
            name if !name.starts_with("--") => args.name = name.to_owned(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("mutex: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let client = Client::connect(Config::new(args.endpoints)?, Check::Lazy).await?;
    // concurrency.NewSession(cli, concurrency.WithTTL(10))
    let session = Session::new(&client, SafetyParams::new(Duration::from_secs(10), None)?).await?;
    // concurrency.NewMutex(s, "/my-lock/"), then Lock(ctx)
    let held = Mutex::new(args.name)?.lock(&session).await?;
    println!(
        "acquired lock {} with fencing token {} (cluster {:x})",
        held.key(),
        held.fencing_token(),
        held.cluster_id()
    );
    // The work: here, waiting. It stops early if the session says the lock is lost, which is
    // before the lease can expire on the server, so nobody else holds the lock while it runs.
    tokio::select! {
        () = tokio::time::sleep(args.hold) => println!("work done"),
        reason = session.lost() => {
            eprintln!("lock lost, work stopped: {reason}");
            return Err("lock lost".into());
        }
    }
    held.unlock().await?;
    println!("released lock");
    session
        .close()
        .await
        .map_err(|e| format!("cannot revoke the lease: {e}"))?;
    Ok(())
}
