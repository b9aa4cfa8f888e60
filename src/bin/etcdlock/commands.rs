//! Which subcommand runs which code, and on what runtime.

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::{check, config, elect, exporter, generate, handles, live, output, run, show};

/// Run the subcommand; its exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    // These need neither etcd nor a runtime.
    match &cli.command {
        Command::Completions(args) => {
            std::io::stdout().write_all(&generate::completions(args.shell))?;
            return Ok(0);
        }
        Command::Man(args) => {
            generate::write_man_pages(&args.dir)?;
            return Ok(0);
        }
        Command::InternalReap(args) => {
            return Ok(internal_reap(args));
        }
        _ => {}
    }
    let resolved = config::resolve(&cli.global)?;
    let name = match &cli.command {
        Command::Run(args) => args.name_arg.as_deref(),
        Command::Status(args) => Some(args.name.as_str()),
        Command::Break(args) => Some(args.name.as_str()),
        Command::Forget(args) => Some(args.name.as_str()),
        Command::Acquire(args) => Some(args.name.as_str()),
        Command::Elect(args) => Some(args.name.as_str()),
        Command::Resign(args) => Some(args.name.as_str()),
        _ => None,
    };
    let checked = match &cli.command {
        Command::Check(args) => args.names.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    for name in name.into_iter().chain(checked) {
        etcdlock::record::check_lock_name(&resolved.config, name)
            .map_err(|e| crate::exit::fail(crate::exit::USAGE, e.to_string()))?;
    }
    // No thread of this program forks while a command's tree is prepared (the command is
    // spawned after its reaper helper is up, hooks after the release): the helper's fork may
    // leave the heap out.
    etcdlock::process::reaper::leave_heap_out_of_helper_fork();
    // One thread: the keep-alive, watches and supervision are all I/O-bound (and the command is
    // then forked on the main thread itself, with no hop to the library's spawner thread).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run(args) => {
            let code = runtime.block_on(run::run(resolved, args));
            // Everything a run does is done once `run` returns: the lease is revoked, the tree
            // reaped, its cgroup removed and the helper let go. Dropping the runtime would only
            // cancel idle tasks, free memory and close descriptors one by one, which the exit
            // does at once.
            std::mem::forget(runtime);
            code
        }
        Command::Status(args) => runtime.block_on(show::status(resolved.config, args)),
        Command::List(args) if args.watch => runtime.block_on(live::watch(resolved.config, args)),
        Command::List(args) => runtime.block_on(show::list(resolved.config, args)),
        Command::Break(args) => runtime.block_on(show::break_lock(resolved.config, args)),
        Command::Forget(args) => runtime.block_on(show::forget(resolved.config, args)),
        Command::Check(args) => runtime.block_on(check::check(resolved.config, args)),
        Command::Exporter(args) => runtime.block_on(exporter::exporter(resolved.config, args)),
        Command::Acquire(args) => runtime.block_on(handles::acquire(resolved, args)),
        Command::Renew(args) => runtime.block_on(handles::renew(resolved, args)),
        Command::Release(args) => runtime.block_on(handles::release(resolved, args)),
        Command::Elect(args) => runtime.block_on(elect::elect(resolved, args)),
        Command::Resign(args) => runtime.block_on(elect::resign(resolved.config, args)),
        Command::Completions(_) | Command::Man(_) | Command::InternalReap(_) => Ok(0),
    }
}

/// The reaper helper's second half (see etcdlock::process::reaper), exec'ed once etcdlock died
/// or missed a deadline (`--after`): kill what is left of the tree (also what left the cgroup or
/// the group), keep watching etcdlock's pipe if it may come back, and say so on its stderr.
fn internal_reap(args: &crate::cli::InternalReapArgs) -> u8 {
    use etcdlock::process::reaper::{self, After, Note};
    let run_id = &args.run_id;
    let from_env = std::env::var_os(reaper::CGROUP_PATH_ENV).map(std::path::PathBuf::from);
    let cgroup = args.cgroup.as_deref().or(from_env.as_deref());
    let after = match args.after.as_deref() {
        Some("gone") => Some(After::Gone),
        Some("expired") => Some(After::Expired),
        _ => None,
    };
    reaper::serve(run_id, cgroup, after, args.leader, &mut |note| {
        match note {
        Note::Expired(Some(sig)) => output::warn(format!(
            "etcdlock (run {run_id}) did not renew its lock in time (frozen or starved?); its reaper helper is stopping the command ({sig}, then SIGKILL)"
        )),
        Note::Expired(None) => output::warn(format!(
            "etcdlock (run {run_id}) did not renew its lock in time; its reaper helper killed the command"
        )),
        Note::Rescued(done) => output::warn(format!(
            "etcdlock (run {run_id}) died while its command ran; killed {} leftover process(es){}{}",
            done.killed,
            if done.refused > 0 {
                format!("; {} refused (permission denied: another user's) and may run on after the lock passes on", done.refused)
            } else {
                String::new()
            },
            if done.cgroup_removed {
                ""
            } else {
                "; the cgroup could not be removed"
            }
        )),
    }
    });
    0
}
