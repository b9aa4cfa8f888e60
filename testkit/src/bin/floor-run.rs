//! The floor of an uncontended `etcdlock run NAME -- CMD`, for `scripts/bench` row 1 (issue 25,
//! point 5: "the floor to compare against: process start plus the raft writes a run needs").
//!
//! It makes the etcd requests an uncontended run makes, in the same order and with the same
//! overlap, and nothing else: the lease's grant; the queue transaction (our key if absent, and the
//! queue's head in the same answer); the command, spawned and waited for; then the run's records
//! (last run, last success) beside the lease's revoke, both answered before it exits. That is
//! four raft writes, where `etcdctl lock` makes three (grant, put, revoke). Left out is
//! everything that makes the run safe and visible: no keep-alive, guard or deadline, no reaper
//! helper or cgroup, no signal handling, no retention lease, no command-line parser, no logging.
//! So a figure for etcdlock minus this one's is what its safety and its features cost.
//!
//! ```text
//! floor-run ENDPOINT NAME [--no-records] -- CMD [ARG...]
//! ```
//! Exits with the command's code; 70 if etcd fails (the message on stderr). The records are two
//! keys without a lease, `.floor/NAME/last-run` and `last-success`, written over at each run:
//! on the run's own lease the revoke, often applied first, would make their write fail.

use std::process::{Command, ExitCode};

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
};

const USAGE: &str = "usage: floor-run ENDPOINT NAME [--no-records] -- CMD [ARG...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dash) = args.iter().position(|a| a == "--") else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (head, cmd) = (&args[..dash], &args[dash + 1..]);
    let (Some(endpoint), Some(name), false) = (head.first(), head.get(1), cmd.is_empty()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let records = !head.iter().any(|a| a == "--no-records");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(endpoint, name, records, cmd)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("floor-run: {e}");
            ExitCode::from(70)
        }
    }
}

async fn run(
    endpoint: &str,
    name: &str,
    records: bool,
    cmd: &[String],
) -> Result<u8, etcd_client::Error> {
    let mut client = Client::connect([endpoint], None).await?;
    let lease = client.lease_grant(10, None).await?.id();
    let prefix = format!("{name}/");
    let key = format!("{prefix}{lease:x}");
    let head = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let queue = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(
                key.as_str(),
                "{}",
                Some(PutOptions::new().with_lease(lease)),
            ),
            TxnOp::get(prefix.as_str(), Some(head.clone())),
        ])
        .or_else([TxnOp::get(prefix.as_str(), Some(head))]);
    client.txn(queue).await?;
    let status = Command::new(&cmd[0]).args(&cmd[1..]).status();
    let code = match status {
        Ok(s) => s.code().map_or(128, |c| c.clamp(0, 255) as u8),
        Err(_) => 127,
    };
    let mut revoker = client.clone();
    if records {
        let record = format!("{{\"exit_code\":{code}}}");
        let ops = [
            TxnOp::put(format!(".floor/{name}/last-run"), record.as_str(), None),
            TxnOp::put(format!(".floor/{name}/last-success"), record.as_str(), None),
        ];
        let (recorded, revoked) = tokio::join!(
            client.txn(Txn::new().and_then(ops)),
            revoker.lease_revoke(lease)
        );
        recorded?;
        revoked?;
    } else {
        revoker.lease_revoke(lease).await?;
    }
    Ok(code)
}
