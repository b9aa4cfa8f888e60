//! The Rust counterpart of Go's `concurrency.NewElection(s, "/my-election/")`, `Campaign`, work,
//! `Resign`, and of `etcdctl elect`: with what Go's package does not do. The campaign fails when
//! the session is lost while it waits (Go's `Campaign` can return leadership without a key: etcd
//! #11007), the session says leadership is lost *before* the server can expire the lease, and
//! `--observe` reports "no leader" when the leader goes (Go's `Observe` does not).
//!
//! ```text
//! cargo run --example elect -- --endpoints URL[,URL...] [--lead DUR] [NAME [PROPOSAL]]
//! cargo run --example elect -- --endpoints URL[,URL...] --observe [NAME]
//! ```
//!
//! NAME defaults to `/my-election/`, PROPOSAL to this host's name, the time it leads to 5 s. It
//! competes with `etcdctl elect /my-election/ P` and `etcdlock elect /my-election/ -- ...`.

use std::time::Duration;

use etcdlock::client::Check;
use etcdlock::{Client, Config, Election, SafetyParams, Session};

struct Args {
    endpoints: Vec<String>,
    lead: Duration,
    observe: bool,
    name: String,
    proposal: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        endpoints: vec![Config::DEFAULT_ENDPOINT.to_owned()],
        lead: Duration::from_secs(5),
        observe: false,
        name: "/my-election/".to_owned(),
        proposal: None,
    };
    let mut positional = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--endpoints" => {
                let list = argv.next().ok_or("--endpoints needs URL[,URL...]")?;
                args.endpoints = list.split(',').map(|e| e.trim().to_owned()).collect();
            }
            "--lead" => {
                let d = argv.next().ok_or("--lead needs a duration, e.g. 5s")?;
                args.lead = humantime::parse_duration(&d).map_err(|e| format!("--lead: {e}"))?;
            }
            "--observe" => args.observe = true,
            word if !word.starts_with("--") => positional.push(word.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let mut positional = positional.into_iter();
    if let Some(name) = positional.next() {
        args.name = name;
    }
    args.proposal = positional.next();
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("elect: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let client = Client::connect(Config::new(args.endpoints)?, Check::Lazy).await?;
    let election = Election::new(args.name)?;
    if args.observe {
        // e.Observe(ctx), with the "no leader" Go's channel never sends.
        let mut observer = election.observe(&client);
        loop {
            match observer.next().await? {
                Some(leader) => println!("leader: {}", leader.proposal_text()),
                None => println!("no leader"),
            }
        }
    }
    let proposal = args.proposal.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "candidate".into())
    });
    // concurrency.NewSession(cli, concurrency.WithTTL(10)), NewElection(s, NAME), Campaign(ctx, v)
    let session = Session::new(&client, SafetyParams::new(Duration::from_secs(10), None)?).await?;
    let leadership = election.campaign(&session, proposal).await?;
    println!(
        "elected: key {} (fencing token {})",
        leadership.key(),
        leadership.fencing_token()
    );
    // The work: here, waiting; it stops early if leadership is lost, before the lease can expire.
    tokio::select! {
        () = tokio::time::sleep(args.lead) => println!("done leading"),
        reason = leadership.lost() => {
            eprintln!("leadership lost, work stopped: {reason}");
            return Err("leadership lost".into());
        }
    }
    leadership.resign().await?;
    println!("resigned");
    session
        .close()
        .await
        .map_err(|e| format!("cannot revoke the lease: {e}"))?;
    Ok(())
}
