//! Command-line interface: every flag, its environment variable, its validation and its help text.
//!
//! Parsing is the only thing this module does; values are checked here (durations, names, signals)
//! so that the rest of the program only sees valid settings, and every mistake becomes one clap error
//! line with exit code 2.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use nix::sys::signal::Signal;

use crate::output::LogFormat;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  N        the command's own exit code
  128+N    the command was killed by signal N
  1        internal error
  2        usage error
  69       etcd unavailable, or refused us, before the lock was acquired
  70       the lock was lost while the command ran; it was stopped first
  75       the lock was held and --no-wait or --timeout gave up (see -E)
  77       a process of the command had to be stopped but refused (another
           user's): it may run on after the lock passes on
  124      --max-runtime was reached and the command was stopped
  126      the command is not executable
  127      the command was not found";

const ROOT_AFTER_HELP: &str = "\
Examples:
  etcdlock run /jobs/backup -- ./backup.sh      # at most one backup cluster-wide
  etcdlock --endpoints http://etcd-1:2379,http://etcd-2:2379 run deploy -- make deploy

Environment (a flag beats both; the ETCDCTL_ names let an existing etcdctl setup just work):
  ETCDLOCK_ENDPOINTS     ETCDCTL_ENDPOINTS      --endpoints
  ETCDLOCK_DIAL_TIMEOUT  ETCDCTL_DIAL_TIMEOUT   --dial-timeout
  ETCDLOCK_CACERT        ETCDCTL_CACERT         --cacert
  ETCDLOCK_CERT          ETCDCTL_CERT           --cert
  ETCDLOCK_KEY           ETCDCTL_KEY            --key
  ETCDLOCK_USER          ETCDCTL_USER           --user
  ETCDLOCK_PASSWORD      ETCDCTL_PASSWORD       the password (or --password-file)";

const RUN_USAGE: &str = "\
etcdlock run [OPTIONS] NAME -- COMMAND [ARGS...]
       etcdlock run [OPTIONS] NAME -c 'SHELL COMMAND'
       etcdlock run [OPTIONS] --handle HANDLE -- COMMAND [ARGS...]";

const RUN_EXAMPLES: &str = "\
Examples:
  # crontab: one backup per hour across all hosts, whichever fires first
  0 * * * * etcdlock -q run --once-per 55m /cron/backup -- /srv/backup.sh

  # CI: serialise deploys, wait at most 20 minutes, show the job in status
  etcdlock run -w 20m --meta job=$CI_JOB_URL /ci/deploy -- ./deploy.sh prod

  # deploys share /db/schema (--shared); a migration takes it alone
  etcdlock run --shared /db/schema -- ./deploy.sh api
  etcdlock run /db/schema -- ./migrate.sh

  # at most 3 at once, through a shell
  etcdlock run --limit 3 /jobs/render -c 'cd /srv/app && ./render'

  # systemd service: the unit's stop signal reaches the command
  ExecStart=/usr/bin/etcdlock run --max-runtime 1h /reindex -- /srv/reindex

  # pass the fencing token to the resource you protect
  etcdlock run /db/migrate -- sh -c 'migrate --token $ETCDLOCK_FENCING_TOKEN'";

/// `run --help` after the options: the examples, then (long help only) durations, the command's
/// environment, the safety paragraph with the numbers of [`SafetyParams`], and the exit codes.
/// Paragraphs are single lines: clap wraps them to the terminal.
fn run_after_help(long: bool) -> String {
    use etcdlock::safety::SafetyParams;
    if !long {
        return RUN_EXAMPLES.to_owned();
    }
    let d = |d: Duration| humantime::format_duration(d).to_string();
    let margin = d(SafetyParams::MARGIN);
    format!(
        "{RUN_EXAMPLES}

Durations: 90s, 5m, 1h30m, or a plain number of seconds (-w 5, --ttl 30), as flock and \
etcdctl take them.

The command gets these environment variables: ETCDLOCK_NAME, ETCDLOCK_KEY, ETCDLOCK_LEASE_ID \
(hex), ETCDLOCK_FENCING_TOKEN (create revision of the lock key, strictly increasing from holder \
to holder), ETCDLOCK_CLUSTER_ID (hex), ETCDLOCK_RUN_ID, and for etcdctl compatibility \
ETCD_LOCK_KEY and ETCD_LOCK_REV.

Safety: the lease deadline is the send time of the last acknowledged keep-alive plus the granted \
TTL (default {ttl}). If the lease cannot be renewed, every process the command started (tracked \
in a cgroup v2 of its own where etcdlock may create one, else as a subreaper with the process \
group) gets --kill-signal at deadline - kill-after - {margin} and SIGKILL at deadline - {margin} \
(kill-after: {kill}, or TTL/4 if shorter): all of it is dead before anyone else can take the \
lock. When the command exits while processes it started still run, the lock is held until they \
exit (or --kill-leftovers). A paused or partitioned etcdlock cannot promise more: pass \
ETCDLOCK_FENCING_TOKEN to the resource you protect and let it reject older tokens.

A command that runs `etcdlock run NAME` on the very lock its own etcdlock holds would wait for \
its parent for ever: that run fails at once with exit 2 (its ETCDLOCK_NAME, ETCDLOCK_KEY and \
ETCDLOCK_CLUSTER_ID tell; another name, another cluster or --limit above 1 are fine).

{EXIT_CODES_HELP}",
        ttl = d(SafetyParams::DEFAULT_TTL),
        kill = d(SafetyParams::DEFAULT_KILL_AFTER),
    )
}

/// Run a command while holding a distributed lock in etcd.
///
/// The lock is compatible with `etcdctl lock`: keys NAME/<lease id in hex>, the oldest key holds the
/// lock, waiters queue in FIFO order. The lease is renewed while the command runs; if it cannot be,
/// the command is stopped before the lease can expire on the server.
#[derive(Debug, Parser)]
#[command(
    name = "etcdlock",
    version,
    propagate_version = true,
    after_help = ROOT_AFTER_HELP,
    after_long_help = format!("{ROOT_AFTER_HELP}\n\n{EXIT_CODES_HELP} (of run; status, list and break document their own)")
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// [`Cli`] for parsing only: the same arguments, but a subcommand's options are added to clap's
/// tree only once the command line names that subcommand ([`LazyCommand`]). Building all fourteen
/// at every start was about 0.2 ms of an uncontended `run -- true` (issue 25). Never shown:
/// whatever clap prints (help, version, a usage error) comes from [`Cli`] (see [`parse`]), since
/// in this tree the global options come before the subcommand's own in its help.
#[derive(Debug, Parser)]
#[command(name = "etcdlock", version, propagate_version = true)]
struct LazyCli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: LazyCommand,
}

/// [`LazyCli`] for the one command line whose speed matters, `etcdlock [OPTIONS] run …`: a tree
/// with `run` alone. Deferring the other subcommands' options (`LazyCli`) does not stop clap from
/// copying every global option into each of them before the parse (`_propagate_global_args`: 11
/// options into 15 subcommands): with this tree a run took 0.37 ms less wall time and 0.31 ms
/// less CPU on the 2-core bench machine (300 interleaved runs; issue 25). Tried first when the command line has a `run`
/// argument; whatever it refuses (another subcommand, `run` as an option's value, help, a usage
/// error) goes on to [`LazyCli`] and then [`Cli`], so it never decides what a command line means
/// differently from them and never prints anything.
#[derive(Debug, Parser)]
#[command(name = "etcdlock", version, propagate_version = true)]
struct RunCli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: RunOnly,
}

/// `run` alone (see [`RunCli`]).
#[derive(Debug, Subcommand)]
enum RunOnly {
    Run(RunArgs),
}

/// Options valid before or after the subcommand. Each is also read from `ETCDLOCK_<NAME>`, then
/// `ETCDCTL_<NAME>` (so an existing etcdctl setup just works), then the default; a flag beats both.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct GlobalArgs {
    /// etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS]
    /// [default: http://127.0.0.1:2379]
    #[arg(
        long,
        global = true,
        value_name = "URL[,URL...]",
        value_delimiter = ','
    )]
    pub endpoints: Vec<String>,

    /// How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT,
    /// ETCDCTL_DIAL_TIMEOUT] [default: 5s]
    #[arg(long, global = true, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub dial_timeout: Option<Duration>,

    /// CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the
    /// system's roots]
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Client certificate's private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]
    #[arg(long, global = true, value_name = "NAME[:PASSWORD]")]
    pub user: Option<String>,

    /// Read the password from FILE (first line) so it never shows in the process list [password
    /// also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside
    /// every lock's tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default:
    /// .etcdlock/]
    #[arg(help_heading = "Records", long, global = true, value_name = "PREFIX")]
    pub records_prefix: Option<String>,

    /// More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)
    #[arg(help_heading = "Output", short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr (no waiting progress)
    #[arg(
        help_heading = "Output",
        short,
        long,
        global = true,
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    /// Format of -v diagnostics on stderr
    #[arg(
        help_heading = "Output",
        long,
        global = true,
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// What a run leaves in etcd after it ended (see `etcdlock::record`).
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Leave no run record in etcd (last run, last success: what `status` and `list` show) [env:
    /// ETCDLOCK_NO_RECORD=1]; --once-per cannot do without its marker and refuses this
    #[arg(help_heading = "Records", long)]
    pub no_record: bool,

    /// How long NAME's run records stay after its last run; etcd deletes them then, by itself
    /// [env: ETCDLOCK_RECORD_RETENTION] [default: 35days: a monthly job's last run is always
    /// there]
    #[arg(help_heading = "Records", long, value_name = "DUR", value_parser = parse_retention)]
    pub record_retention: Option<Duration>,
}

/// `--record-retention`: whole seconds, from 10 s (no etcd raises a TTL that long) to 10 years.
pub fn parse_retention(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.subsec_nanos() != 0
        || d < Duration::from_secs(10)
        || d > Duration::from_secs(10 * 365 * 86400)
    {
        return Err("the retention must be whole seconds from 10s to 10 years".into());
    }
    Ok(d)
}

/// How much of the command line goes into the lock key (`--record-command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordCommand {
    /// Every argument (up to 16 KiB).
    Full,
    /// argv[0] only (the default).
    Program,
    /// Nothing: `status` shows "-".
    None,
}

/// The subcommands, declared once for two enums: [`Command`], the one the program uses, and
/// [`LazyCommand`], the same with `defer` for parsing (see [`LazyCli`]).
macro_rules! subcommands {
    ($($variants:tt)*) => {
        // Parsed once per process: the size of `run`'s arguments does not matter.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Subcommand)]
        pub enum Command {
            $($variants)*
        }

        // Only ever converted into a `Command` through clap's matches; never built.
        #[allow(clippy::large_enum_variant, dead_code)]
        #[derive(Debug, Subcommand)]
        #[command(defer = true)]
        enum LazyCommand {
            $($variants)*
        }
    };
}

subcommands! {
    /// Run COMMAND while holding the lock NAME
    #[command(
        after_help = run_after_help(false),
        after_long_help = run_after_help(true),
        override_usage = RUN_USAGE
    )]
    Run(RunArgs),
    /// Show who holds NAME, since when, who waits, and its last run
    #[command(after_help = STATUS_AFTER_HELP)]
    Status(StatusArgs),
    /// List the locks under PREFIX with their holders and waiters
    #[command(after_help = LIST_AFTER_HELP)]
    List(ListArgs),
    /// Break NAME: revoke its holder's lease, so that holder's etcdlock stops its command (exit 70)
    #[command(after_help = BREAK_AFTER_HELP)]
    Break(BreakArgs),
    /// Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a
    /// handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)
    #[command(after_help = ACQUIRE_AFTER_HELP)]
    Acquire(AcquireArgs),
    /// Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)
    #[command(after_help = RENEW_AFTER_HELP)]
    Renew(HandleArgs),
    /// Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)
    #[command(after_help = RELEASE_AFTER_HELP)]
    Release(HandleArgs),
    /// Forget NAME's run records and its --once-per marker (the next run may go at once)
    #[command(after_help = FORGET_AFTER_HELP)]
    Forget(ForgetArgs),
    /// Check that each NAME succeeded recently, from its run records (a monitoring plugin:
    /// OK/CRITICAL lines, exit 0 or 1)
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd
    /// (holders, waiters, last run and last success), kept current by one etcd watch
    #[command(after_help = EXPORTER_AFTER_HELP)]
    Exporter(ExporterArgs),
    /// Run COMMAND on the one host elected leader of NAME (the others stand by and take over
    /// when it goes); or observe the leader (--observe)
    #[command(after_help = ELECT_AFTER_HELP, override_usage = ELECT_USAGE)]
    Elect(ElectArgs),
    /// Ask the leader of the election NAME to step down: it stops its command and resigns, and
    /// the next candidate takes over
    #[command(after_help = RESIGN_AFTER_HELP)]
    Resign(ResignArgs),
    /// Print shell completions to stdout
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Write man pages (etcdlock.1 and one per subcommand) into DIR
    #[command(after_help = MAN_AFTER_HELP)]
    Man(ManArgs),
    /// Internal: what the reaper helper execs when etcdlock died while its command ran
    #[command(name = "internal-reap", hide = true)]
    InternalReap(InternalReapArgs),
}

const ELECT_USAGE: &str = "\
etcdlock elect [OPTIONS] NAME -- COMMAND [ARGS...]
       etcdlock elect [OPTIONS] NAME -c 'SHELL COMMAND'
       etcdlock elect --observe [--json] [--wait-leader] NAME";

const ELECT_AFTER_HELP: &str = "\
Examples:
  # one active scheduler across three hosts (run the same line on each)
  etcdlock elect /svc/scheduler -- /usr/bin/scheduler --serve
  # keep it running while leader; after 5 crashes in 10 minutes step down
  etcdlock elect --on-exit restart --max-restarts 5 /svc/scheduler -- ./scheduler
  # who leads, on every change (\"no leader\" when the key goes)
  etcdlock elect --observe /svc/scheduler
  # scripts: wait until there is a primary
  etcdlock elect --observe --wait-leader /svc/db-primary
  # a service that stays up: USR1 when it leads, USR2 when it must stop leading
  etcdlock elect --on-won-signal USR1 --on-lost-signal USR2 --active-file /run/sched.active \\
      /svc/scheduler -- ./scheduler

Keys are those of etcdctl elect and Go's concurrency.Election (NAME/<lease hex>, the oldest \
leads, the value is the proposal): etcdctl elect -l NAME shows etcdlock's leader, and etcdlock \
and etcdctl/Go candidates exclude each other. While leader, COMMAND runs with the whole promise \
of run: its process tree is dead before the lease can expire. SIGTERM/SIGINT stop COMMAND \
(signal, grace, SIGKILL) and only then delete the key. A lost session while standing by starts \
the campaign over; a lost lease while leader kills COMMAND before the lease can expire and \
stands again (exit only on a signal).

Services that stay up and switch roles (--on-won-signal/--on-lost-signal, Choria's pattern): \
COMMAND starts at once as a standby, with no promise (it runs beside the leader's and must not \
act as leader until told); on election --active-file is written, then the won signal is sent to \
its main process; when leadership ends the active file is removed and the lost signal sent, at \
the latest --kill-after plus 0.5s before the lease can expire (a resign waits --kill-after after \
it before the key goes). etcdlock cannot see whether the service obeyed: act as leader only \
between the two signals and pass the fencing token (in --active-file). If the lost signal cannot \
be delivered in time (etcdlock frozen or starved), the whole tree is killed before the lease can \
expire, and etcdlock exits 70. COMMAND exiting ends etcdlock with its code.

Exit codes: COMMAND's (--on-exit resign), 128+N after signal N, 2 usage error, 69 etcd \
unavailable, 70 (--on-lost-signal) COMMAND could not be told in time and was killed, 77 COMMAND's \
processes could not be killed; --wait-leader: 0 once NAME has a leader.";

/// What `elect` does when COMMAND exits while it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExit {
    /// Step down (a standby takes over) and exit with COMMAND's code
    Resign,
    /// Restart COMMAND while keeping leadership (backoff 1s doubling to 30s), until
    /// --max-restarts in --restart-window; then resign
    Restart,
}

/// Arguments of `elect`.
#[derive(Debug, Args)]
pub struct ElectArgs {
    /// The candidate's value (what etcdctl elect -l prints) [default: etcdlock's holder
    /// metadata, the JSON status shows]
    #[arg(help_heading = "Election", long, value_name = "VALUE")]
    pub proposal: Option<String>,

    /// What to do when COMMAND exits while leader
    #[arg(
        help_heading = "Election",
        long,
        value_name = "WHAT",
        default_value = "resign"
    )]
    pub on_exit: OnExit,

    /// With --on-exit restart: resign after N restarts within --restart-window
    #[arg(help_heading = "Election", long, value_name = "N", default_value_t = 5)]
    pub max_restarts: u32,

    /// The window --max-restarts counts in
    #[arg(help_heading = "Election", long, value_name = "DUR", default_value = "10m", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub restart_window: Duration,

    /// A file that exists exactly while COMMAND runs as leader (removed before the key goes; with
    /// --on-lost-signal, before the signal); it holds etcdlock's pid and the leader's
    /// ETCDLOCK_KEY, ETCDLOCK_LEASE_ID and ETCDLOCK_FENCING_TOKEN lines
    #[arg(help_heading = "Election", long, value_name = "PATH")]
    pub active_file: Option<PathBuf>,

    /// Keep COMMAND up across role changes: start it at once, as a standby (NOT the only active
    /// one: it must not act as leader until told), and send SIG to its main process when this
    /// candidate becomes leader (after --active-file is written); needs --on-lost-signal
    #[arg(help_heading = "Election", long, value_name = "SIG", value_parser = parse_signal, requires = "on_lost_signal")]
    pub on_won_signal: Option<Signal>,

    /// Keep COMMAND up across role changes (see --on-won-signal): send SIG to its main process
    /// when leadership ends (lease lost or revoked, key deleted, resign), at the latest
    /// --kill-after plus 0.5s before the lease can expire, so it has the grace to stop acting as
    /// leader; if it cannot be told in time (etcdlock frozen), its tree is killed instead
    #[arg(help_heading = "Election", long, value_name = "SIG", value_parser = parse_signal, conflicts_with = "on_exit")]
    pub on_lost_signal: Option<Signal>,

    /// Write a Prometheus textfile (node_exporter textfile collector) with etcdlock_leader (1
    /// while leader) and etcdlock_leader_transitions_total, updated on every change
    #[arg(help_heading = "Election", long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Print the leader of NAME on every change, "no leader" when there is none; run nothing
    #[arg(help_heading = "Observe", long, conflicts_with_all = ["command", "shell"])]
    pub observe: bool,

    /// With --observe: JSON lines (leader, key, proposal, host, pid, lease, since)
    #[arg(help_heading = "Observe", long, requires = "observe")]
    pub json: bool,

    /// With --observe: exit 0 as soon as NAME has a leader
    #[arg(help_heading = "Observe", long, requires = "observe")]
    pub wait_leader: bool,

    /// Lease TTL: how long leadership outlives a crashed etcdlock, so the longest a standby
    /// waits after a crash (whole seconds, at least 2s)
    #[arg(help_heading = "Lock", long, value_name = "DUR", default_value = "10s", value_parser = parse_ttl, allow_hyphen_values = true)]
    pub ttl: Duration,

    /// Extra holder metadata shown by `status`, e.g. --meta role=scheduler (repeatable)
    #[arg(help_heading = "Lock", long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,

    /// Run STRING with /bin/sh -c instead of COMMAND
    #[arg(
        help_heading = "Command",
        short = 'c',
        long = "shell",
        value_name = "STRING",
        conflicts_with = "command"
    )]
    pub shell: Option<String>,

    /// Signal sent to the command's process group when the lease is about to be lost
    #[arg(help_heading = "Command", long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal)]
    pub kill_signal: Signal,

    /// Grace between the kill signal (or a forwarded SIGTERM) and SIGKILL [default: 2s, or TTL/4
    /// if that is shorter]; must be less than TTL/2
    #[arg(help_heading = "Command", long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub kill_after: Option<Duration>,

    /// Election name; the candidates' keys are NAME/<lease id in hex>
    #[arg(value_name = "NAME", value_parser = parse_name)]
    pub name: String,

    /// The command and its arguments, run directly (no shell)
    #[arg(
        value_name = "COMMAND",
        required_unless_present_any = ["shell", "observe"],
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

impl ElectArgs {
    /// argv (`argv[0]` included).
    pub fn argv(&self) -> Vec<OsString> {
        match &self.shell {
            Some(script) => vec!["/bin/sh".into(), "-c".into(), script.into()],
            None => self.command.clone(),
        }
    }
}

const RESIGN_AFTER_HELP: &str = "\
Examples:
  etcdlock resign /svc/scheduler     # the leader stops its command; a standby takes over

The request is a key on a short lease under etcdlock's records prefix (.etcdlock/resign/NAME by \
default; the etcd user needs write there), which leaders running etcdlock elect watch; the leader \
stops its command (signal, grace, SIGKILL), resigns, and stands again behind the others. \
etcdctl elect and Go leaders do not see it.

Exit codes: 0 the leader stepped down, 1 no leader, 2 usage error, 69 etcd unavailable, 75 the \
leader did not step down within --wait.";

/// Arguments of `resign`.
#[derive(Debug, Args)]
pub struct ResignArgs {
    /// How long to wait for the leader to step down
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub wait: Duration,

    /// Election name
    #[arg(value_name = "NAME", value_parser = parse_name)]
    pub name: String,
}

/// Arguments of the hidden `internal-reap` subcommand (see reaper.rs).
#[derive(Debug, Args)]
pub struct InternalReapArgs {
    /// The run whose processes to kill (ETCDLOCK_RUN_ID in their environment)
    #[arg(long)]
    pub run_id: String,
    /// The run's cgroup, if it had one (else ETCDLOCK_REAP_CGROUP)
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// What happened: gone (etcdlock died) or expired (a deadline passed)
    #[arg(long)]
    pub after: Option<String>,
    /// The command's process group, if it was still running
    #[arg(long, default_value_t = 0)]
    pub leader: i32,
}

const COMPLETIONS_AFTER_HELP: &str = "\
Examples:
  etcdlock completions bash > /etc/bash_completion.d/etcdlock
  etcdlock completions zsh > \"${fpath[1]}/_etcdlock\"
  etcdlock completions fish > ~/.config/fish/completions/etcdlock.fish

Exit codes: 0 success, 2 usage error.";

const MAN_AFTER_HELP: &str = "\
Examples:
  etcdlock man /usr/local/share/man/man1 && man etcdlock-run

Exit codes: 0 success, 1 the directory cannot be written, 2 usage error.";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing)
    pub dir: PathBuf,
}

const STATUS_AFTER_HELP: &str = "\
Examples:
  etcdlock status /jobs/backup
  etcdlock status /jobs/backup --json | jq '.holders[0].host'
  etcdlock status /jobs/backup >/dev/null && echo held

Locks taken by `etcdctl lock` are shown too, without host/pid/command (etcdctl stores none).
When etcd has nothing by NAME (no key, waiter or run record), a line on stderr says so and names
the closest existing lock, if one is a typo away.

Exit codes: 0 held, 1 free, 2 usage error, 69 etcd unavailable; with --json 0 whenever the lock \
could be read (the JSON says held or free).";

const LIST_AFTER_HELP: &str = "\
Examples:
  etcdlock list                 # every lock (keys NAME/<lease hex>) and every name with run records
  etcdlock list /jobs/          # only locks under /jobs/
  etcdlock list --json | jq '.locks[] | select(.waiter_count > 0) | .name'
  etcdlock list --watch /ci/    # a live table on a terminal (q or Ctrl-C to leave)
  etcdlock list --watch | jq -c 'select(.lock.waiter_count > 0)'   # one JSON line per change

Exit codes: 0 success, 2 usage error, 69 etcd unavailable.";

const BREAK_AFTER_HELP: &str = "\
Examples:
  etcdlock break /jobs/backup           # asks for confirmation
  etcdlock break --yes /jobs/backup     # in scripts (required when stdin is not a terminal)

The holder's lease is revoked: its key disappears, the next waiter gets the lock, and the holder's
etcdlock stops its command and exits 70. A holder that is not etcdlock (e.g. etcdctl lock) keeps
running its command: only etcdlock watches its lease. Keys named like a holder's but left without
their lease (after a put over a holder's key; status shows them) are deleted: they would block
etcdctl lock for ever.

Exit codes: 0 broken, 1 nothing was held, 2 usage error or not confirmed, 69 etcd unavailable.";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output (schema in the README; has a schema_version field)
    #[arg(long)]
    pub json: bool,

    /// Lock name
    #[arg(value_parser = parse_name)]
    pub name: String,
}

const CHECK_AFTER_HELP: &str = "\
Examples:
  etcdlock check --max-age 25h /jobs/backup               # Nagios/Icinga/Sensu check command
  etcdlock check /jobs/backup /jobs/reindex               # --max-age from their --once-per
  etcdlock check /jobs/backup >/dev/null && curl -fsS https://hc-ping.com/UUID
  etcdlock check --json --max-age 1h /ci/nightly | jq '.checks[].problems[]'

A NAME is OK when its last run exited 0 and ended less than --max-age ago. Every problem is one
CRITICAL line, listed before the OK lines: no run record (never ran, or not within the records'
retention), the last run failed (its exit code, a lost lock, --max-runtime), never succeeded,
the last success too old. Without --max-age a NAME's allowed age is twice the --once-per period
recorded with its last run (one missed slot is tolerated); a NAME that ran without --once-per
needs --max-age. Ages are measured by this host's clock against the recorded end times.

Exit codes: 0 every NAME is OK, 1 one is not (CRITICAL), 2 usage error (also: no --max-age and
no --once-per recorded), 69 etcd unavailable or the records cannot be read.";

const EXPORTER_AFTER_HELP: &str = "\
Examples:
  etcdlock exporter --listen 127.0.0.1:9479                 # every lock
  etcdlock exporter --listen :9479 /jobs/ /ci/              # only these prefixes
  curl -s localhost:9479/metrics | grep last_success

Metrics, labelled lock=\"NAME\": etcdlock_lock_holders, etcdlock_lock_waiters, etcdlock_lock_limit,
etcdlock_lock_held_seconds (oldest holder), etcdlock_last_run_timestamp_seconds,
etcdlock_last_success_timestamp_seconds, etcdlock_last_exit_code, etcdlock_once_per_seconds,
etcdlock_next_run_allowed_timestamp_seconds; and etcdlock_exporter_{locks,synced,resyncs_total,
watch_events_total,revision}. The view is loaded once and kept current by one etcd watch (a
scrape sends etcd nothing); it is loaded again after a fail-over or a compaction. Needs read
permission on the prefixes and on the records prefix only.

Exit codes: 0 stopped by SIGINT or SIGTERM, 2 usage error or --listen cannot be bound, 69 etcd
unavailable at start-up.";

#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Address to serve GET /metrics on, e.g. 127.0.0.1:9479 or [::]:9479
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,

    /// Only locks under these prefixes (and their names' run records) [default: every lock]
    #[arg(value_name = "PREFIX")]
    pub prefixes: Vec<String>,
}

/// `--listen`: HOST:PORT, or :PORT for every address.
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address (expected e.g. 127.0.0.1:9479 or :9479)"))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// How long ago the last success may have ended [default: twice the --once-per period
    /// recorded with the last run]
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub max_age: Option<Duration>,

    /// Machine-readable output (schema in the README); same exit codes
    #[arg(long)]
    pub json: bool,

    /// Lock names
    #[arg(value_name = "NAME", required = true, num_args = 1.., value_parser = parse_name)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable output (same field names as `status --json`); it also asks each
    /// holder's lease for its remaining TTL (ttl_remaining_s), which the table does not show
    #[arg(long)]
    pub json: bool,

    /// Keep watching: on a terminal, redraw the table whenever a lock or record under PREFIX
    /// changes; otherwise print one JSON line per lock that changed (with --json or not)
    #[arg(long)]
    pub watch: bool,

    /// Only keys under this prefix [default: all keys]
    pub prefix: Option<String>,
}

const ACQUIRE_AFTER_HELP: &str = "\
Examples:
  HANDLE=$(etcdlock acquire --ttl 30m /ci/deploy-prod)      # later: run --handle, renew, release
  etcdlock acquire --env-file \"$GITHUB_ENV\" /ci/deploy-prod  # ETCDLOCK_HANDLE=... for later steps
  etcdlock acquire --shared --json /db/schema | jq -r .handle

The handle is one line of [A-Za-z0-9._-], safe in variables and CI outputs. It carries a secret
(etcd keeps only its hash): whoever has it can run under the lock, renew and release it, so treat
it like a token (masked variables; --env-file creates its file 0600). Nothing keeps the lease
alive: the lock frees itself --ttl after the last acquire, renew or run --handle, so a pipeline
that dies leaves no stale lock.

Exit codes: 0 acquired, 1 the handle could not be written (the lock is released again), 2 usage
error (also: stdout closed or /dev/null without --env-file), 69 etcd unavailable, 75 held and -n or
-w gave up (see -E), 128+N interrupted by signal N while waiting (the queue key is removed).";

const RENEW_AFTER_HELP: &str = "\
Examples:
  etcdlock renew \"$ETCDLOCK_HANDLE\"      # another --ttl from now

Exit codes: 0 renewed, 2 malformed handle, one from another cluster, or one whose secret does not
fit its key (nothing is done), 69 etcd unavailable, 70 the lock was lost (expired, broken, revoked,
released, or its key deleted or put over).";

const RELEASE_AFTER_HELP: &str = "\
Examples:
  etcdlock release \"$ETCDLOCK_HANDLE\"    # in the pipeline's last job, with if: always()

Exit codes: 0 released (or already released by this handle), 2 malformed handle, one from another
cluster, or one whose secret does not fit its key (nothing is done), 69 etcd unavailable, 70 the
lock had been lost meanwhile (someone else may have held it).";

/// How to wait for a lock: the options `run` and `acquire` share.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// If the lock is held, give up at once (exit 75, or --conflict-exit-code)
    #[arg(
        help_heading = "Waiting",
        short = 'n',
        long,
        conflicts_with = "timeout"
    )]
    pub no_wait: bool,

    /// Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)
    #[arg(help_heading = "Waiting", short = 'w', long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub timeout: Option<Duration>,

    /// Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if
    /// already running" (no message either)
    #[arg(help_heading = "Waiting", short = 'E', long, value_name = "N", default_value_t = crate::exit::CONFLICT, value_parser = clap::value_parser!(u8))]
    pub conflict_exit_code: u8,

    /// While waiting and stderr is not a terminal, print a progress line this often
    #[arg(help_heading = "Waiting", long, value_name = "DUR", default_value = "30s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub progress_interval: Duration,
}

#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// Semaphore: up to N holders at once; every holder must use the same N
    #[arg(help_heading = "Lock", long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,

    /// Shared (reader) lock: holds together with other shared holders, never with an exclusive one
    #[arg(help_heading = "Lock", short = 's', long)]
    pub shared: bool,

    /// The lock frees itself this long after the last acquire, renew or run --handle (whole
    /// seconds; plain numbers are seconds)
    #[arg(help_heading = "Lock", long, value_name = "DUR", default_value = "15m", value_parser = parse_ttl, allow_hyphen_values = true)]
    pub ttl: Duration,

    /// Extra holder metadata shown by status, e.g. --meta job=$CI_JOB_URL (repeatable)
    #[arg(help_heading = "Lock", long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,

    #[command(flatten)]
    pub wait: WaitArgs,

    /// Print the handle with its key, lease, fencing token and expiry as JSON
    #[arg(help_heading = "Output", long)]
    pub json: bool,

    /// Also append ETCDLOCK_HANDLE=... and ETCDLOCK_FENCING_TOKEN=... lines to FILE (e.g.
    /// $GITHUB_ENV, a GitLab dotenv artifact)
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// Lock name
    #[arg(value_parser = parse_name)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct HandleArgs {
    /// The handle etcdlock acquire printed
    #[arg(value_name = "HANDLE", env = "ETCDLOCK_HANDLE", hide_env_values = true)]
    pub handle: String,
}

const FORGET_AFTER_HELP: &str = "\
Examples:
  etcdlock forget /jobs/backup      # run the --once-per job again now, and clear its last run

Exit codes: 0 forgotten, 1 nothing was recorded, 2 usage error, 69 etcd unavailable.";

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Lock name
    #[arg(value_parser = parse_name)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct BreakArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,

    /// Break only the holder (or waiter) with this lease id (hex, as `status` shows it), e.g. one
    /// holder of a --limit semaphore [default: every holder]
    #[arg(long, value_name = "ID")]
    pub lease: Option<String>,

    /// Lock name
    #[arg(value_parser = parse_name)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Semaphore: up to N holders at once (the N oldest keys hold); every holder must use the same N
    #[arg(help_heading = "Lock", long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,

    /// Shared (reader) lock, as flock -s: any number of shared holders hold together, an
    /// exclusive one (plain run, etcdctl lock, Go's Mutex) alone; FIFO, so a shared request
    /// behind a waiting exclusive one waits for it
    #[arg(help_heading = "Lock", short = 's', long)]
    pub shared: bool,

    /// At most one successful run of NAME per DUR, cluster-wide: holding the lock, skip (exit 0,
    /// silently) if a run succeeded less than DUR ago, by etcd's clock; a failed run does not
    /// count, so the next firing on any host retries (DUR: whole seconds, at least 2s)
    #[arg(help_heading = "Lock", long, value_name = "DUR", value_parser = parse_period, allow_hyphen_values = true)]
    pub once_per: Option<Duration>,

    /// Run inside a lock taken earlier with `etcdlock acquire` (NAME comes from the handle):
    /// keep-alive while the command runs, kill before expiry; the lock stays held afterwards.
    /// Steps sharing one handle share the lock: they may run at the same time (the lock keeps
    /// other holders out, not the pipeline's own steps)
    #[arg(help_heading = "Lock", long, value_name = "HANDLE", conflicts_with_all = ["no_wait", "timeout", "limit", "shared", "once_per", "meta", "ttl"])]
    pub handle: Option<String>,

    /// Lease TTL: how long the lock outlives a crashed etcdlock (whole seconds, at least 2s)
    #[arg(help_heading = "Lock", long, value_name = "DUR", default_value = "10s", value_parser = parse_ttl, allow_hyphen_values = true)]
    pub ttl: Duration,

    /// Extra holder metadata shown by `status`, e.g. --meta job=$CI_JOB_URL (repeatable)
    #[arg(help_heading = "Lock", long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,

    /// Keep the lock at least DUR after acquiring it, even if the command ends sooner (stops cron
    /// jobs on hosts with skewed clocks from running twice in one period; --once-per does it
    /// exactly)
    #[arg(help_heading = "Lock", long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub min_hold: Option<Duration>,

    /// What of the command line to store in the lock key and the run record, where anyone who
    /// can read the lock's prefix sees it and every waiter prints it: only the program name (the
    /// default: arguments may carry secrets, mysql -pSECRET, curl -H 'Authorization: ...'), the
    /// whole command line, or nothing
    #[arg(
        help_heading = "Lock",
        long,
        value_name = "WHAT",
        default_value = "program",
        env = "ETCDLOCK_RECORD_COMMAND",
        hide_env_values = true
    )]
    pub record_command: RecordCommand,

    #[command(flatten)]
    pub records: RecordArgs,

    #[command(flatten)]
    pub wait: WaitArgs,

    /// Run STRING with /bin/sh -c instead of COMMAND
    #[arg(
        help_heading = "Command",
        short = 'c',
        long = "shell",
        value_name = "STRING",
        conflicts_with = "command"
    )]
    pub shell: Option<String>,

    /// Stop the command after DUR (kill signal, grace, SIGKILL) and exit 124, as timeout(1) does;
    /// 0 means no limit, as in timeout(1)
    #[arg(help_heading = "Command", long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub max_runtime: Option<Duration>,

    /// Signal sent to the command's process group when the lease is about to be lost or
    /// --max-runtime is reached
    #[arg(help_heading = "Command", long, value_name = "SIG", default_value = "TERM", value_parser = parse_signal)]
    pub kill_signal: Signal,

    /// Grace between --kill-signal and SIGKILL when the lease is lost, --max-runtime is reached or
    /// etcdlock gets SIGTERM [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2
    #[arg(help_heading = "Command", long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub kill_after: Option<Duration>,

    /// When the command exits while processes it started still run (`cmd &`, nohup, setsid,
    /// daemons), stop them (kill signal, grace, SIGKILL) and release at once, instead of holding
    /// the lock until they exit; the exit code stays the command's own
    #[arg(help_heading = "Command", long)]
    pub kill_leftovers: bool,

    /// Write a Prometheus textfile (node_exporter textfile collector) with this run's timings,
    /// exit code and lost-lock count, updated when the command starts and ends
    #[arg(help_heading = "Command", long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// After a run whose command exited 0, run CMD with /bin/sh -c, once the lock is released
    /// (environment: ETCDLOCK_NAME, ETCDLOCK_OUTCOME, ETCDLOCK_EXIT_CODE, ETCDLOCK_DURATION_S,
    /// ETCDLOCK_FENCING_TOKEN); it never changes etcdlock's exit code
    #[arg(help_heading = "Hooks", long, value_name = "CMD")]
    pub on_success: Option<String>,

    /// After a run whose command failed (non-zero exit, signal, lost lock, --max-runtime), run
    /// CMD with /bin/sh -c, once the lock is released (same environment; ETCDLOCK_OUTCOME is
    /// failure, lock_lost or timeout); a skip or a give-up runs no hook
    #[arg(help_heading = "Hooks", long, value_name = "CMD")]
    pub on_failure: Option<String>,

    /// How long a hook may run; then its process group gets SIGTERM, and SIGKILL 2s later
    #[arg(help_heading = "Hooks", long, value_name = "DUR", default_value = "60s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub hook_timeout: Duration,

    /// Lock name; the lock's keys are NAME/<lease id in hex> (with --handle: from the handle)
    #[arg(value_name = "NAME", value_parser = parse_name, required_unless_present = "handle")]
    pub name_arg: Option<String>,

    /// The lock name in force (NAME, or the handle's).
    #[arg(skip)]
    pub name: String,

    /// The command and its arguments, run directly (no shell)
    #[arg(
        value_name = "COMMAND",
        required_unless_present_any = ["shell", "handle"],
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

impl RunArgs {
    /// After parsing: with --handle, NAME is the handle's and what clap took for NAME is the
    /// command's first word (`run --handle H -- cmd args`).
    pub fn resolve_name(&mut self) -> Result<(), String> {
        match &self.handle {
            Some(h) => {
                let handle = etcdlock::handle::Handle::parse(h).map_err(|e| e.to_string())?;
                if let Some(first) = self.name_arg.take() {
                    self.command.insert(0, OsString::from(first));
                }
                if self.command.is_empty() && self.shell.is_none() {
                    return Err(
                        "--handle needs a command: etcdlock run --handle HANDLE -- COMMAND".into(),
                    );
                }
                self.name = handle.name;
            }
            None => self.name = self.name_arg.clone().unwrap_or_default(),
        }
        Ok(())
    }

    /// The argv to execute: COMMAND, or `/bin/sh -c STRING`.
    pub fn argv(&self) -> Vec<OsString> {
        match &self.shell {
            Some(script) => vec!["/bin/sh".into(), "-c".into(), script.into()],
            None => self.command.clone(),
        }
    }

    /// `--max-runtime`, with 0 meaning no limit.
    pub fn max_runtime(&self) -> Option<Duration> {
        self.max_runtime.filter(|d| !d.is_zero())
    }
}

/// The longest duration any option takes: 100 years. Longer values are refused when parsed, so
/// no deadline computed from one can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parse a duration: humantime ("10s", "1m30s", "500ms") or a plain number of seconds ("5",
/// "0.5"), as flock's -w and etcdctl's --ttl take them. At most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        s.parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite())
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("{s:?} is not a number of seconds"))?
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("{e} (expected e.g. 10s, 1m30s, 500ms, or plain seconds)"))?
    };
    if d > MAX_DURATION {
        return Err("at most 100 years".into());
    }
    Ok(d)
}

/// A duration that must be greater than zero.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be greater than 0".into()),
        d => Ok(d),
    }
}

/// A TTL etcd will not silently change (see etcdlock::safety).
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    etcdlock::SafetyParams::check_ttl(d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// `--once-per`: the period is the once-marker's lease TTL, so etcd's limits on TTLs apply; the
/// message names the period, the value the user gave.
fn parse_period(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    etcdlock::SafetyParams::check_ttl(d)
        .map_err(|e| e.to_string().replacen("the TTL", "the period", 1))?;
    Ok(d)
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    etcdlock::lock::check_name(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// Parse a signal by name ("TERM", "SIGTERM", "term") or number ("15").
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("{n} is not a signal number"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("unknown signal {s:?} (expected e.g. TERM, INT, HUP, KILL or 15)"))
}

/// The command line as clap sees it, with what the derive attributes cannot say: the global
/// (connection and output) options are hidden from the help, completions and man pages of the
/// subcommands that never talk to etcd. Parsing, `completions` and `man` all use this.
pub fn command() -> clap::Command {
    hide_globals(Cli::command())
}

/// [`command`] as [`LazyCli`]: for parsing a command line, never for printing anything.
fn lazy_command() -> clap::Command {
    hide_globals(LazyCli::command())
}

fn hide_globals(cmd: clap::Command) -> clap::Command {
    // clap does not propagate a global option into a subcommand that defines one of that name
    // itself, so a hidden copy there hides it.
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().hide(true))
        .collect();
    ["completions", "man"].iter().fold(cmd, |cmd, sub| {
        cmd.mut_subcommand(sub, |s| s.args(hidden.iter().cloned()))
    })
}

/// `raw` parsed with [`RunCli`], if it has a `run` argument at all.
fn parse_run_only(raw: &[OsString]) -> Result<Cli, clap::Error> {
    if !raw.iter().skip(1).any(|a| a == "run") {
        return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
    }
    let mut m = RunCli::command().try_get_matches_from(raw)?;
    let RunCli { global, command } =
        <RunCli as clap::FromArgMatches>::from_arg_matches_mut(&mut m)?;
    let RunOnly::Run(args) = command;
    Ok(Cli {
        global,
        command: Command::Run(args),
    })
}

/// Parse the process arguments. A usage error is a few lines on stderr (the mistake, clap's
/// suggestions, which help to read) and exit code 2: in a cron mail or CI log a full usage
/// screen would bury the actual mistake.
pub fn parse() -> Cli {
    use clap::error::ErrorKind;
    let raw: Vec<OsString> = std::env::args_os().collect();
    let parse = |cmd: clap::Command| {
        cmd.try_get_matches_from(&raw)
            .and_then(|mut m| <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m))
    };
    // The `run`-only tree first, then the lazy tree; whatever clap prints (help, version, a
    // usage error) comes from the full one, which parses the command line again when the smaller
    // ones refuse it.
    let parsed = parse_run_only(&raw)
        .or_else(|_| parse(lazy_command()))
        .or_else(|_| parse(command()));
    if name_missing(&parsed, &raw) {
        crate::output::stderr(&format!(
            "etcdlock: error: {MISSING_NAME}\n  (see etcdlock run --help)\n"
        ));
        std::process::exit(i32::from(crate::exit::USAGE));
    }
    match parsed {
        Ok(mut cli) => {
            if let Command::Run(run) = &mut cli.command {
                if let Err(e) = run.resolve_name() {
                    // A bad handle's message already says what to pass instead: one line.
                    let tip = if run.handle.is_some() {
                        ""
                    } else {
                        "  (see etcdlock run --help)\n"
                    };
                    crate::output::stderr(&format!("etcdlock: error: {e}\n{tip}"));
                    std::process::exit(i32::from(crate::exit::USAGE));
                }
            }
            cli
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            crate::output::stderr(&usage_error(&e, &args));
            std::process::exit(i32::from(crate::exit::USAGE));
        }
    }
}

const MISSING_NAME: &str = "the lock NAME is missing: etcdlock run [OPTIONS] NAME -- COMMAND \
     (what follows -- is the command)";

/// `etcdlock run -- ls`, parsed as `parsed`: NAME is missing. The two trial parses of
/// [`name_missing_before_dashes`] run only where it may be: for a command line clap refused, or a
/// `run` whose command is shorter than what follows `--`.
fn name_missing(parsed: &Result<Cli, clap::Error>, raw: &[OsString]) -> bool {
    let suspect = match parsed {
        Ok(cli) => command_cut_short(cli, raw),
        Err(_) => true,
    };
    suspect && name_missing_before_dashes(raw)
}

/// Whether `cli` is a `run` (without --handle) whose COMMAND is shorter than the words after the
/// first `--` of `raw`: then clap took one of them for NAME, which only [`name_missing_before_dashes`]
/// can tell from a NAME that was given. Everything after `--` belongs to COMMAND otherwise.
fn command_cut_short(cli: &Cli, raw: &[OsString]) -> bool {
    let Command::Run(run) = &cli.command else {
        return false;
    };
    match raw.iter().position(|a| a == "--") {
        Some(dashes) => run.handle.is_none() && run.command.len() < raw.len() - dashes - 1,
        None => false,
    }
}

/// `etcdlock run -- ls`: clap takes the first word after `--` for NAME, then says COMMAND is
/// missing (or, with more words, runs the rest as the command). NAME is missing when the words
/// before the first `--` make a `run` (without --handle) only once a NAME is added to them.
fn name_missing_before_dashes(raw: &[OsString]) -> bool {
    let Some(dashes) = raw.iter().position(|a| a == "--") else {
        return false;
    };
    if dashes + 1 >= raw.len() {
        return false; // nothing after `--`: clap's own message says what is missing
    }
    let parse_with = |tail: &[&str]| {
        let mut args = raw[..dashes].to_vec();
        args.extend(tail.iter().map(OsString::from));
        lazy_command().try_get_matches_from(args)
    };
    let plain_run = |m: &clap::ArgMatches| matches!(m.subcommand(), Some(("run", run)) if run.get_one::<String>("handle").is_none());
    parse_with(&["NAME", "--", "true"]).is_ok_and(|m| plain_run(&m))
        && parse_with(&["--", "true"]).is_err()
}

/// "etcdlock: error: ..." plus clap's tips, then which --help to read (the subcommand's when the
/// mistake is in one).
fn usage_error(e: &clap::Error, args: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let mut rendered = e.render().to_string();
    // A value with a newline in it would otherwise be cut or spread over lines.
    if let Some(ContextValue::String(v)) = e.get(ContextKind::InvalidValue) {
        rendered = rendered.replace(v.as_str(), &crate::output::one_line(v));
    }
    let mut paragraphs = rendered
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with("Usage:") && !p.starts_with("For more"));
    let first = paragraphs
        .next()
        .unwrap_or("invalid arguments")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = format!(
        "etcdlock: error: {}\n",
        first.strip_prefix("error: ").unwrap_or(&first)
    );
    let mut tips: Vec<String> = paragraphs
        .flat_map(str::lines)
        .map(|t| t.trim().to_owned())
        .collect();
    let sub_at = subcommand_position(args);
    more_tips(e, args, sub_at, &mut tips);
    for tip in tips.iter().take(2) {
        out.push_str(&format!("  {tip}\n"));
    }
    let sub = sub_at.map(|i| &args[i]);
    match sub {
        Some(sub) => out.push_str(&format!("  (see etcdlock {sub} --help)\n")),
        None => out.push_str("  (see etcdlock --help)\n"),
    }
    out
}

/// Where the subcommand is in the arguments, if there is one.
fn subcommand_position(args: &[String]) -> Option<usize> {
    let cmd = Cli::command();
    args.iter().position(|a| {
        cmd.get_subcommands()
            .any(|s| !s.is_hide_set() && s.get_name() == a.as_str())
    })
}

/// Tips clap does not give: close typos of short subcommand names ("rn"), and an option of a
/// subcommand given before it (`etcdlock -n run ...`).
fn more_tips(e: &clap::Error, args: &[String], sub_at: Option<usize>, tips: &mut Vec<String>) {
    use clap::error::{ContextKind, ContextValue};
    let cmd = Cli::command();
    let visible = || cmd.get_subcommands().filter(|s| !s.is_hide_set());
    if let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidSubcommand) {
        // clap ranks by similarity, which prefers 'renew' to 'run' for "rn": the fewest edits
        // win here.
        let nearest = visible()
            .map(|s| (edit_distance(s.get_name(), bad), s.get_name()))
            .min();
        if let Some((_, near)) = nearest.filter(|(d, _)| *d <= 2) {
            tips.retain(|t| !t.contains("similar subcommand"));
            tips.insert(0, format!("tip: a similar subcommand exists: '{near}'"));
        }
    }
    let (Some(i), Some(ContextValue::String(bad))) = (sub_at, e.get(ContextKind::InvalidArg))
    else {
        return;
    };
    let flag = bad.split('=').next().unwrap_or(bad);
    let belongs = visible()
        .find(|s| s.get_name() == args[i])
        .is_some_and(|s| {
            s.get_arguments().any(|a| {
                a.get_long().is_some_and(|l| flag == format!("--{l}"))
                    || a.get_short().is_some_and(|c| flag == format!("-{c}"))
            })
        });
    let before = args[..i].iter().any(|a| a.split('=').next() == Some(flag));
    if belongs && before {
        tips.insert(
            0,
            format!(
                "tip: {flag} is an option of '{0}': put it after the subcommand (etcdlock {0} {flag} ...)",
                args[i]
            ),
        );
    }
}

/// Levenshtein distance, for typo suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `run`-only tree takes every `run` command line the full tree takes, as the full tree
    /// reads it, and refuses the rest (which then go on to the full tree).
    #[test]
    fn the_run_only_tree_reads_a_command_line_as_the_full_tree_does() {
        let lines: &[&[&str]] = &[
            &["etcdlock", "run", "/x", "--", "true"],
            &[
                "etcdlock",
                "-v",
                "--endpoints",
                "http://e:1,http://f:2",
                "run",
                "-n",
                "/x",
                "--",
                "ls",
                "-l",
            ],
            &[
                "etcdlock",
                "run",
                "--ttl",
                "5s",
                "--kill-after",
                "1s",
                "-w",
                "3",
                "/x",
                "--",
                "sh",
                "-c",
                "run",
            ],
            &[
                "etcdlock",
                "run",
                "/x",
                "-q",
                "--log-format",
                "json",
                "--",
                "run",
            ],
            &["etcdlock", "--user", "run", "run", "/x", "--", "true"],
            &[
                "etcdlock", "run", "--limit", "2", "--shared", "/x", "--", "true",
            ],
            &["etcdlock", "run", "--once-per", "1h", "/x", "-c", "echo hi"],
            &["etcdlock", "run", "--", "ls"],
            &["etcdlock", "status", "run"],
            &["etcdlock", "--user", "run", "status", "/x"],
            &["etcdlock", "list", "--prefix", "run"],
            &["etcdlock", "run", "--help"],
            &["etcdlock", "run", "--version"],
            &["etcdlock", "run", "--no-such-option", "/x", "--", "true"],
            &["etcdlock", "run"],
        ];
        for line in lines {
            let raw: Vec<OsString> = line.iter().map(OsString::from).collect();
            let full = command()
                .try_get_matches_from(&raw)
                .and_then(|mut m| <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m));
            let full_run = matches!(
                &full,
                Ok(Cli {
                    command: Command::Run(_),
                    ..
                })
            );
            match parse_run_only(&raw) {
                Ok(fast) => {
                    let full =
                        full.unwrap_or_else(|e| panic!("{line:?}: only the run tree took it: {e}"));
                    assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line:?}");
                }
                Err(_) => assert!(!full_run, "{line:?}: a run the run tree refused"),
            }
        }
    }

    #[test]
    fn a_name_after_the_dashes_is_no_name() {
        let check = |args: &[&str]| {
            let raw: Vec<OsString> = args.iter().map(OsString::from).collect();
            let parsed = lazy_command()
                .try_get_matches_from(&raw)
                .and_then(|mut m| <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m));
            let missing = name_missing(&parsed, &raw);
            // The shortcut never decides otherwise than the two trial parses alone.
            assert_eq!(missing, name_missing_before_dashes(&raw), "{args:?}");
            missing
        };
        assert!(check(&["etcdlock", "run", "--", "ls"]));
        assert!(check(&["etcdlock", "run", "--", "ls", "-la"]));
        assert!(check(&["etcdlock", "run", "-w", "5", "--", "ls", "-la"]));
        assert!(check(&[
            "etcdlock",
            "--endpoints",
            "http://x:1",
            "run",
            "--",
            "ls"
        ]));
        assert!(!check(&["etcdlock", "run", "/x", "--", "ls"]));
        assert!(!check(&[
            "etcdlock", "run", "-w", "5", "/x", "--", "ls", "--", "y"
        ]));
        assert!(!check(&["etcdlock", "run", "/x", "ls"]));
        assert!(!check(&["etcdlock", "run", "/x", "--"]));
        assert!(!check(&["etcdlock", "run", "--handle", "h", "--", "ls"]));
        assert!(!check(&["etcdlock", "status", "--", "/x"]));
    }

    /// The lazy tree parses every command line as the full one does: the same settings, or an
    /// error of the same kind (which `parse` then takes from the full tree).
    #[test]
    fn the_lazy_tree_parses_as_the_full_one() {
        let lines: &[&[&str]] = &[
            &["etcdlock", "run", "/x", "--", "true"],
            &[
                "etcdlock",
                "-v",
                "--endpoints",
                "http://e:1",
                "run",
                "-n",
                "-E",
                "0",
                "/x",
                "--",
                "a",
                "--",
                "b",
            ],
            &[
                "etcdlock",
                "run",
                "--once-per",
                "1h",
                "--ttl",
                "20s",
                "--meta",
                "k=v",
                "/x",
                "-c",
                "echo hi",
            ],
            &[
                "etcdlock",
                "run",
                "--limit",
                "3",
                "-w",
                "5s",
                "/x",
                "--endpoints",
                "http://e:1",
                "-vv",
                "--",
                "ls",
            ],
            &["etcdlock", "run", "--handle", "h", "--", "ls"],
            &["etcdlock", "status", "/x", "--json"],
            &["etcdlock", "list", "/"],
            &["etcdlock", "break", "/x"],
            &["etcdlock", "acquire", "/x", "--ttl", "1m"],
            &["etcdlock", "renew", "h"],
            &["etcdlock", "check", "/x", "--max-age", "1h"],
            &["etcdlock", "elect", "/svc", "--", "server"],
            &["etcdlock", "resign", "/svc"],
            &["etcdlock", "completions", "bash"],
            &["etcdlock", "man", "/tmp/m"],
            &["etcdlock", "forget", "/x"],
            &["etcdlock", "exporter", "--listen", ":9"],
            // Refused, each for its own reason.
            &["etcdlock"],
            &["etcdlock", "run"],
            &["etcdlock", "run", "/x"],
            &["etcdlock", "run", "--ttl", "0s", "/x", "--", "true"],
            &["etcdlock", "rn", "/x"],
            &["etcdlock", "-n", "run", "/x", "--", "true"],
            &["etcdlock", "run", "--help"],
            &["etcdlock", "--version"],
            &["etcdlock", "status", "-V"],
        ];
        let parse = |cmd: clap::Command, line: &[&str]| {
            cmd.try_get_matches_from(line)
                .and_then(|mut m| <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m))
                .map(|cli| format!("{cli:?}"))
                .map_err(|e| e.kind())
        };
        let mut refused = 0;
        for line in lines {
            let full = parse(command(), line);
            refused += usize::from(full.is_err());
            assert_eq!(parse(lazy_command(), line), full, "{line:?}");
        }
        assert_eq!(refused, 9, "the corpus must keep both kinds of lines");
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
        lazy_command().debug_assert();
    }

    /// The defaults the help shows are the library's safety constants.
    #[test]
    fn help_numbers_are_the_safety_constants() {
        use etcdlock::safety::SafetyParams;
        let Command::Run(run) = Cli::parse_from(["etcdlock", "run", "x", "--", "true"]).command
        else {
            unreachable!()
        };
        assert_eq!(run.ttl, SafetyParams::DEFAULT_TTL);
        let min = SafetyParams::MIN_TTL;
        assert!(parse_ttl(&format!("{}s", min.as_secs())).is_ok());
        assert!(parse_ttl(&format!("{}s", min.as_secs() - 1)).is_err());
        let help = run_after_help(true);
        let d = |d| humantime::format_duration(d).to_string();
        let ttl = format!("(default {})", d(SafetyParams::DEFAULT_TTL));
        let kill = format!("deadline - {}", d(SafetyParams::MARGIN));
        assert!(help.contains(&ttl) && help.contains(&kill), "{help}");
    }

    #[test]
    fn ttl_validation() {
        assert_eq!(parse_ttl("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_ttl("1m30s"), Ok(Duration::from_secs(90)));
        for bad in [
            "abc",
            "0s",
            "-5s",
            "1ns",
            "1s",
            "2500ms",
            "1000000000000000s",
            "",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(parse_name("/jobs/backup").is_ok());
        assert!(parse_name("").is_err());
        assert!(parse_name("a\nb").is_err());
        assert!(parse_name("a\0b").is_err());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("sigint"), Ok(Signal::SIGINT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn defaults_are_the_librarys() {
        let cli = Cli::try_parse_from(["etcdlock", "run", "x", "--", "true"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(run.ttl, etcdlock::SafetyParams::DEFAULT_TTL);
        assert_eq!(run.kill_after, None);
    }

    #[test]
    fn global_flags_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "etcdlock",
            "run",
            "--endpoints",
            "http://a:1,http://b:2",
            "x",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoints, vec!["http://a:1", "http://b:2"]);
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(
            run.command,
            vec![OsString::from("ls"), OsString::from("-l")]
        );
    }
}
