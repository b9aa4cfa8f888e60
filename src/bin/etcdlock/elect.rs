//! The `elect` subcommand: run a command on the one elected leader of NAME, with the promise of
//! `run` (the library's [`etcdlock::election`] campaigns, [`etcdlock::runner`] runs and releases);
//! and `elect --observe`, which prints the leader on every change.
//!
//! One *term* is one lease: grant it (setting up the command's tree meanwhile) → campaign →
//! re-check leadership by create revision → run COMMAND (restarting it with `--on-exit restart`)
//! → release (the tree dead first, then the revoke, which deletes the key). A session lost while
//! standing by or while leading ends the term and starts the next one: the campaign starts over.
//! Only a signal, or COMMAND's exit under `--on-exit resign`, ends etcdlock.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use etcdlock::client::{Check, Client};
use etcdlock::election::{Candidate, Election, Leadership};
use etcdlock::holder::{self, Holder};
use etcdlock::process::reaper;
use etcdlock::process::supervise::{self, Signals};
use etcdlock::process::tree::Tree;
use etcdlock::roles::{Led, Roles, Service, Standby};
use etcdlock::runner::{self, Ended, Release};
use etcdlock::safety::SafetyParams;
use etcdlock::{Error, Session};

use crate::cli::{ElectArgs, OnExit, ResignArgs};
use crate::config::Resolved;
use crate::exit;
use crate::output;

/// `etcdlock elect`; the exit code.
pub async fn elect(resolved: Resolved, args: ElectArgs) -> Result<u8> {
    if args.observe {
        return observe(resolved, &args).await;
    }
    let argv = args.argv();
    let program = supervise::check_command(&argv[0])?;
    let params = crate::run::safety_params(args.ttl, args.kill_after)?;
    let meta = args.meta.iter().cloned().collect();
    let recorded = argv.get(..1).unwrap_or_default();
    let mut holder = Holder::current(recorded, 1, meta);
    holder.election = true;
    let proposal = match &args.proposal {
        Some(p) => p.clone().into_bytes(),
        None => holder.to_json(),
    };
    let election = Election::new(args.name.clone())?;
    let mut signals = Signals::install()?;
    let stop = Stop::watch()?;
    let connection_env = resolved.child_env();
    let client = tokio::select! {
        client = exit::connect(resolved.config, Check::Lazy) => client?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    if let Some(path) = &args.metrics_file {
        crate::metrics::check_writable(path)?;
    }
    let plan = Plan {
        metrics: Gauge::new(args.metrics_file.clone(), &args.name),
        election,
        proposal,
        params,
        program,
        argv,
        env: connection_env,
    };
    if let Some(lost) = args.on_lost_signal {
        use nix::sys::signal::Signal::{SIGKILL, SIGSTOP};
        if [Some(SIGKILL), Some(SIGSTOP)].contains(&Some(lost))
            || [Some(SIGKILL), Some(SIGSTOP)].contains(&args.on_won_signal)
        {
            return Err(exit::fail(
                exit::USAGE,
                "--on-won-signal/--on-lost-signal cannot be KILL or STOP (the command must stay up; without them elect stops the whole tree on a loss)",
            ));
        }
        let roles = Roles {
            won: args.on_won_signal,
            lost,
            active_file: args.active_file.clone(),
        };
        return serve(&client, &plan, &args, &mut signals, &roles).await;
    }
    let mut restarts = Vec::new();
    loop {
        match term(&client, &plan, &args, &mut signals, &stop, &mut restarts).await? {
            Next::Exit(code) => return Ok(code),
            Next::Again => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
                }
            }
        }
    }
}

struct Plan {
    metrics: Gauge,
    election: Election,
    proposal: Vec<u8>,
    params: SafetyParams,
    program: std::path::PathBuf,
    argv: Vec<std::ffi::OsString>,
    env: Vec<(&'static str, String)>,
}

/// What comes after a term.
enum Next {
    /// Exit with this code.
    Exit(u8),
    /// Campaign again, with a new lease.
    Again,
}

/// Whether etcdlock was told to stop (SIGTERM, SIGINT, SIGHUP, SIGQUIT): after a COMMAND that the
/// forwarded signal ended, neither restart it nor campaign again. A listener of its own beside
/// [`Signals`], which forwards the signal to COMMAND while it runs.
/// `resigning` is set by the leader's watch of resign requests before it sends SIGTERM to
/// etcdlock itself (so that COMMAND is stopped as by a signal): that one is not a stop.
#[derive(Clone)]
struct Stop {
    stop: Arc<AtomicBool>,
    resigning: Arc<AtomicBool>,
}

impl Stop {
    fn watch() -> Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        let flag = Arc::new(AtomicBool::new(false));
        let resigning = Arc::new(AtomicBool::new(false));
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
            SignalKind::quit(),
        ];
        for kind in kinds {
            let mut stream = signal(kind)?;
            let (flag, resigning) = (flag.clone(), resigning.clone());
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if !resigning.load(Ordering::SeqCst) {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
        Ok(Stop {
            stop: flag,
            resigning,
        })
    }

    fn requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn resigning(&self) -> bool {
        self.resigning.load(Ordering::SeqCst)
    }

    /// Stop COMMAND as a SIGTERM to etcdlock would (forwarded, grace, SIGKILL), as a resign.
    fn resign(&self) {
        self.resigning.store(true, Ordering::SeqCst);
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
    }
}

/// One lease: campaign, lead, release.
async fn term(
    client: &Client,
    plan: &Plan,
    args: &ElectArgs,
    signals: &mut Signals,
    stop: &Stop,
    restarts: &mut Vec<Instant>,
) -> Result<Next> {
    let mut run_id = reaper::new_run_id();
    let (session, tree) = tokio::join!(
        runner::open_session(client, None, plan.params, args.kill_signal),
        crate::run::prepare_tree(&run_id)
    );
    runner::last_resort::tracking(Some(tree.clone()));
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            tree.finish();
            runner::last_resort::tracking(None);
            return Err(e.into());
        }
    };
    let mut tree = tree;
    let next = lead(
        &session,
        plan,
        args,
        signals,
        stop,
        restarts,
        &mut tree,
        &mut run_id,
    )
    .await;
    remove_active(args);
    plan.metrics.set(false);
    let lost = session.is_lost().is_some();
    let name = args.name.clone();
    let client = session.client().clone();
    let report_owned =
        move |event: runner::Event<'_>| crate::command::tell_ending(&client, &name, event);
    runner::release(
        session,
        &tree,
        &args.name,
        Release::Abandon { lost },
        &report_owned,
    )
    .await;
    runner::last_resort::lease_released();
    runner::last_resort::tracking(None);
    next
}

/// Campaign and, once elected, run COMMAND (again, with `--on-exit restart`).
#[allow(clippy::too_many_arguments)]
async fn lead(
    session: &Session,
    plan: &Plan,
    args: &ElectArgs,
    signals: &mut Signals,
    stop: &Stop,
    restarts: &mut Vec<Instant>,
    tree: &mut Arc<Tree>,
    run_id: &mut String,
) -> Result<Next> {
    let name = &args.name;
    tracing::info!(name, "campaigning");
    let won = tokio::select! {
        won = plan.election.campaign(session, plan.proposal.clone()) => won,
        sig = signals.recv_cancel() => return Ok(Next::Exit(exit::signal(sig as i32))),
    };
    let leadership = match won {
        Ok(l) => l,
        Err(Error::Lost(reason)) => {
            output::warn(format!(
                "{name}: session lost while standing by ({reason}); campaigning again"
            ));
            return Ok(Next::Again);
        }
        Err(e) => return Err(e.into()),
    };
    // Leadership re-checked by create revision, linearizable, right before COMMAND starts.
    if let Err(e) = leadership.confirm().await {
        output::warn(format!("{name}: {e}; campaigning again"));
        return Ok(Next::Again);
    }
    tracing::info!(
        name,
        key = leadership.key(),
        fencing_token = leadership.fencing_token(),
        "elected"
    );
    plan.metrics.set(true);
    stop.resigning.store(false, Ordering::SeqCst);
    let _requests = {
        let (client, name, key, stop) = (
            session.client().clone(),
            name.clone(),
            leadership.key().to_owned(),
            stop.clone(),
        );
        etcdlock::session::AbortOnDrop(tokio::spawn(async move {
            if etcdlock::election::resign_requested(&client, &name, &key)
                .await
                .is_ok()
            {
                output::info(format!("{name}: asked to resign; stopping the command"));
                stop.resign();
            }
        }))
    };
    let options = runner::Options {
        kill_signal: args.kill_signal,
        max_runtime: None,
        kill_leftovers: true,
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let command = runner::Command {
            program: plan.program.clone(),
            argv: plan.argv.clone(),
            env: plan.env.clone(),
            tree: tree.clone(),
            run_id: run_id.clone(),
        };
        write_active(args, session, &leadership);
        let report = |event: runner::Event<'_>| tell(name, session, event);
        let ended = runner::run_command(
            session,
            signals,
            name,
            &command,
            leadership.acquired(),
            &options,
            &report,
        )
        .await?;
        remove_active(args);
        let code = ended.code();
        match ended {
            Ended::Unkillable => return Ok(Next::Exit(code)),
            _ if stop.requested() => return Ok(Next::Exit(code)),
            // The release deletes the key (the tree is gone); then we stand again, behind.
            _ if stop.resigning() => return Ok(Next::Again),
            Ended::NotStarted(reason) => {
                output::warn(format!(
                    "{name}: leadership lost before the command started ({reason}); campaigning again"
                ));
                return Ok(Next::Again);
            }
            Ended::Lost => {
                // The guard stopped COMMAND before the lease could expire (its message said so).
                output::warn(format!("{name}: leadership lost; campaigning again"));
                return Ok(Next::Again);
            }
            Ended::Exited(_) | Ended::TimedOut => {}
        }
        if args.on_exit == OnExit::Resign {
            return Ok(Next::Exit(code));
        }
        let now = Instant::now();
        restarts.retain(|t| now.duration_since(*t) < args.restart_window);
        if restarts.len() >= args.max_restarts as usize {
            output::warn(format!(
                "{name}: the command exited {code}; it was restarted {} times within {}: resigning",
                restarts.len(),
                humantime::format_duration(args.restart_window)
            ));
            return Ok(Next::Exit(code));
        }
        restarts.push(now);
        output::warn(format!(
            "{name}: the command exited {code}; restarting it in {} (still leader)",
            humantime::format_duration(backoff)
        ));
        // A fresh tree (and reaper helper) for the next run: the last one is finished.
        tree.stop_all(Duration::from_secs(3));
        tree.finish();
        *run_id = reaper::new_run_id();
        *tree = crate::run::prepare_tree(run_id).await;
        runner::last_resort::tracking(Some(tree.clone()));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            sig = signals.recv_cancel() => {
                if stop.resigning() {
                    return Ok(Next::Again);
                }
                return Ok(Next::Exit(exit::signal(sig as i32)));
            }
            reason = session.lost() => {
                output::warn(format!("{name}: leadership lost ({reason}); campaigning again"));
                return Ok(Next::Again);
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// `--on-lost-signal`: COMMAND starts at once and stays up across terms, switching roles when
/// told ([`etcdlock::roles`] starts, promotes, tells and stops it); one term is one lease, as in
/// [`term`], but the command outlives them.
async fn serve(
    client: &Client,
    plan: &Plan,
    args: &ElectArgs,
    signals: &mut Signals,
    roles: &Roles,
) -> Result<u8> {
    let name = &args.name;
    remove_active(args);
    let run_id = reaper::new_run_id();
    let tree = crate::run::prepare_tree(&run_id).await;
    runner::last_resort::tracking(Some(tree.clone()));
    let mut env = plan.env.clone();
    if let Some(path) = &args.active_file {
        env.push(("ETCDLOCK_ACTIVE_FILE", path.to_string_lossy().into_owned()));
    }
    let command = runner::Command {
        program: plan.program.clone(),
        argv: plan.argv.clone(),
        env,
        tree,
        run_id,
    };
    let mut service = match Service::start(&command, name) {
        Ok(service) => service,
        Err(e) => {
            command.tree.finish();
            runner::last_resort::tracking(None);
            return Err(e.into());
        }
    };
    tracing::info!(name, pid = service.pid(), "the command runs, as standby");
    loop {
        if let Some(code) = serve_term(client, plan, args, signals, roles, &mut service).await {
            return Ok(code);
        }
        let pause = tokio::time::sleep(Duration::from_secs(1));
        match service.standby(signals, pause).await {
            Standby::Done(()) => {}
            Standby::Exited(status) => return Ok(finish(&service, None, status).await),
            Standby::Stop(sig) => return Ok(stop(&mut service, None, sig, plan).await),
        }
    }
}

/// One lease of [`serve`]: campaign while standing by, lead, step down; the exit code once
/// etcdlock is to exit (COMMAND gone).
async fn serve_term(
    client: &Client,
    plan: &Plan,
    args: &ElectArgs,
    signals: &mut Signals,
    roles: &Roles,
    service: &mut Service,
) -> Option<u8> {
    let name = &args.name;
    let grant = runner::open_session(client, None, plan.params, args.kill_signal);
    let session = match service.standby(signals, grant).await {
        Standby::Done(Ok(session)) => session,
        Standby::Done(Err(e)) => {
            output::warn(format!("{name}: {e}; campaigning again"));
            runner::last_resort::lease_released();
            return None;
        }
        Standby::Exited(status) => return Some(finish(service, None, status).await),
        Standby::Stop(sig) => return Some(stop(service, None, sig, plan).await),
    };
    tracing::info!(name, "campaigning");
    let campaign = plan.election.campaign(&session, plan.proposal.clone());
    let leadership = match service.standby(signals, campaign).await {
        Standby::Done(Ok(leadership)) => leadership,
        Standby::Done(Err(e)) => {
            let why = match e {
                Error::Lost(reason) => format!("session lost while standing by ({reason})"),
                e => e.to_string(),
            };
            output::warn(format!("{name}: {why}; campaigning again"));
            step_down(service, session).await;
            return None;
        }
        Standby::Exited(status) => return Some(finish(service, Some(session), status).await),
        Standby::Stop(sig) => return Some(stop(service, Some(session), sig, plan).await),
    };
    if let Err(e) = leadership.confirm().await {
        output::warn(format!("{name}: {e}; campaigning again"));
        drop(leadership);
        step_down(service, session).await;
        return None;
    }
    write_active(args, &session, &leadership);
    plan.metrics.set(true);
    tracing::info!(
        name,
        key = leadership.key(),
        fencing_token = leadership.fencing_token(),
        "elected"
    );
    let resign = {
        let (client, name, key) = (
            session.client().clone(),
            name.clone(),
            leadership.key().to_owned(),
        );
        async move {
            if etcdlock::election::resign_requested(&client, &name, &key)
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        }
    };
    let led = service.lead(&session, roles, signals, resign).await;
    plan.metrics.set(false);
    remove_active(args);
    let _ = leadership.into_acquired(); // the key goes with the lease
    let lost = signal_name(roles.lost);
    match led {
        Led::Lost { reason, told: true } => {
            output::warn(format!(
                "{name}: leadership lost ({reason}); the command was told ({lost}) and runs on as a standby; campaigning again"
            ));
            step_down(service, session).await;
            None
        }
        Led::Lost {
            reason,
            told: false,
        } => {
            output::warn(format!(
                "{name}: leadership lost ({reason}); the command could not be told in time and was stopped"
            ));
            service.wait_exit().await;
            finish(service, Some(session), std::process::ExitStatus::default()).await;
            Some(exit::LOCK_LOST)
        }
        Led::SteppedDown { told: true } => {
            output::info(format!(
                "{name}: asked to resign; sent {lost} to the command, which runs on as a standby"
            ));
            step_down(service, session).await;
            None
        }
        Led::SteppedDown { told: false } => {
            let status = service.wait_exit().await;
            Some(finish(service, Some(session), status).await)
        }
        Led::Exited(status) => Some(finish(service, Some(session), status).await),
        Led::Stop(sig) => Some(stop(service, Some(session), sig, plan).await),
    }
}

/// "SIGUSR2" as "USR2", as the flags take it.
fn signal_name(sig: nix::sys::signal::Signal) -> &'static str {
    sig.as_str().trim_start_matches("SIG")
}

/// End a term while the command runs on (see [`Service::step_down`]).
async fn step_down(service: &Service, session: Session) {
    if let Err(why) = service.step_down(session).await {
        output::warn(format!(
            "cannot revoke the lease: {why}; it expires by its TTL"
        ));
    }
    runner::last_resort::lease_released();
}

/// The command ended with `status`: release (its tree dead first) and exit with its code.
async fn finish(
    service: &Service,
    session: Option<Session>,
    status: std::process::ExitStatus,
) -> u8 {
    if let Err(why) = service.release(session).await {
        output::warn(format!(
            "cannot revoke the lease: {why}; it expires by its TTL"
        ));
    }
    runner::last_resort::lease_released();
    runner::last_resort::tracking(None);
    runner::status_code(status)
}

/// A signal to etcdlock: stop the command (the signal, the grace, SIGKILL), then release.
async fn stop(
    service: &mut Service,
    session: Option<Session>,
    sig: nix::sys::signal::Signal,
    plan: &Plan,
) -> u8 {
    let status = service.stop(sig, plan.params.kill_after()).await;
    finish(service, session, status).await
}

/// What the user reads about the command's events while it runs as leader.
fn tell(name: &str, session: &Session, event: runner::Event<'_>) {
    use etcdlock::process::supervise::Event;
    match event {
        runner::Event::Command(Event::Lost(reason)) => output::warn(format!(
            "leadership of {name} lost: {reason}; stopping the command (SIGKILL in {:.1}s)",
            session.guard().kill_in().as_secs_f64()
        )),
        runner::Event::Command(Event::Unkillable(members)) => output::warn(format!(
            "cannot stop {} of {name}'s command: permission denied; it may run on after a standby takes over",
            etcdlock::process::tree::describe(members)
        )),
        runner::Event::Command(Event::Leftovers { .. }) => {}
        other => crate::command::tell_ending(session.client(), name, other),
    }
}

/// `--active-file`: exists exactly while COMMAND runs as leader: etcdlock's pid, then the
/// leadership's key, lease and fencing token as `VAR=value` lines.
fn write_active(args: &ElectArgs, session: &Session, leadership: &Leadership<'_>) -> bool {
    let Some(path) = &args.active_file else {
        return true;
    };
    let text = format!(
        "{}\nETCDLOCK_KEY={}\nETCDLOCK_LEASE_ID={:x}\nETCDLOCK_FENCING_TOKEN={}\n",
        std::process::id(),
        leadership.key(),
        session.lease().id,
        leadership.fencing_token()
    );
    match std::fs::write(path, text) {
        Ok(()) => true,
        Err(e) => {
            output::warn(format!(
                "cannot write --active-file {}: {e}",
                path.display()
            ));
            false
        }
    }
}

fn remove_active(args: &ElectArgs) {
    if let Some(path) = args.active_file.as_deref() {
        remove_file(path);
    }
}

fn remove_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => output::warn(format!(
            "cannot remove --active-file {}: {e}",
            path.display()
        )),
    }
}

/// `elect --observe`: one line per change of leader, "no leader" included.
async fn observe(resolved: Resolved, args: &ElectArgs) -> Result<u8> {
    let election = Election::new(args.name.clone())?;
    let mut signals = Signals::install()?;
    let client = tokio::select! {
        client = exit::connect(resolved.config, Check::Lazy) => client?,
        sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
    };
    let mut observer = election.observe(&client);
    loop {
        let leader = tokio::select! {
            leader = observer.next() => leader?,
            sig = signals.recv_cancel() => return Ok(exit::signal(sig as i32)),
        };
        let line = if args.json {
            json_line(&args.name, leader.as_ref())
        } else {
            text_line(&args.name, leader.as_ref())
        };
        if output::print(&format!("{line}\n")).is_err() {
            return Ok(0); // stdout closed (a pipe to head): done
        }
        if args.wait_leader && leader.is_some() {
            return Ok(0);
        }
    }
}

/// "NAME: leader host pid N (key K)" / "NAME: no leader".
fn text_line(name: &str, leader: Option<&Candidate>) -> String {
    let Some(c) = leader else {
        return format!("{name}: no leader");
    };
    let who = match c.holder() {
        Some(h) => format!("{} pid {}", h.host, h.pid),
        None => format!("{:?}", output::one_line(&c.proposal_text())),
    };
    format!(
        "{name}: leader {who} (key {}, lease {:x}, revision {})",
        c.key, c.lease, c.create_revision
    )
}

/// One JSON object per change; `since` is when this observer saw the change.
fn json_line(name: &str, leader: Option<&Candidate>) -> String {
    let since = holder::now_rfc3339();
    let value = match leader {
        None => serde_json::json!({"name": name, "leader": false, "since": since}),
        Some(c) => {
            let h = c.holder();
            serde_json::json!({
                "name": name,
                "leader": true,
                "key": c.key,
                "proposal": c.proposal_text(),
                "host": h.as_ref().map(|h| h.host.clone()),
                "pid": h.as_ref().map(|h| h.pid),
                "lease": format!("{:x}", c.lease),
                "create_revision": c.create_revision,
                "since": since,
            })
        }
    };
    value.to_string()
}

/// `etcdlock resign NAME`: ask the leader to step down (see [`etcdlock::election::request_resign`])
/// and wait until its key is gone.
pub async fn resign(config: etcdlock::Config, args: ResignArgs) -> Result<u8> {
    let election = Election::new(args.name.clone())?;
    let client = exit::connect(config, Check::Lazy).await?;
    let Some(leader) = election.leader(&client).await? else {
        output::warn(format!("{}: no leader", args.name));
        return Ok(1);
    };
    let ttl = args.wait + Duration::from_secs(5);
    let ttl = Duration::from_secs(ttl.as_secs().max(5));
    let request = etcdlock::election::request_resign(&client, &args.name, &leader, ttl).await?;
    let deadline = tokio::time::Instant::now() + args.wait;
    let gone = loop {
        let (candidates, _) = election.candidates(&client).await?;
        if !candidates
            .iter()
            .any(|c| c.key == leader.key && c.create_revision == leader.create_revision)
        {
            break true;
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = request.withdraw().await;
    if gone {
        output::info(format!(
            "{}: the leader (key {}) stepped down",
            args.name, leader.key
        ));
        Ok(0)
    } else {
        output::warn(format!(
            "{}: the leader ({}) did not step down within {} (is it etcdlock elect? etcdctl and Go leaders do not see the request)",
            args.name,
            leader.key,
            humantime::format_duration(args.wait)
        ));
        Ok(exit::CONFLICT)
    }
}

/// `--metrics-file`: `etcdlock_leader` (1 while leader) and `etcdlock_leader_transitions_total`
/// (times this etcdlock became leader), rewritten whole on every change.
struct Gauge {
    path: Option<std::path::PathBuf>,
    name: String,
    leader: std::cell::Cell<Option<bool>>,
    transitions: std::cell::Cell<u64>,
}

impl Gauge {
    fn new(path: Option<std::path::PathBuf>, name: &str) -> Gauge {
        let gauge = Gauge {
            path,
            name: name.to_owned(),
            leader: std::cell::Cell::new(None),
            transitions: std::cell::Cell::new(0),
        };
        gauge.set(false);
        gauge
    }

    fn set(&self, leader: bool) {
        if self.leader.get() == Some(leader) {
            return;
        }
        if leader {
            self.transitions.set(self.transitions.get() + 1);
        }
        self.leader.set(Some(leader));
        let Some(path) = &self.path else { return };
        let label = crate::metrics::escape(&self.name);
        let text = format!(
            "# HELP etcdlock_leader 1 while this etcdlock leads the election and runs its command.\n\
             # TYPE etcdlock_leader gauge\n\
             etcdlock_leader{{lock=\"{label}\"}} {}\n\
             # HELP etcdlock_leader_transitions_total Times this etcdlock became leader.\n\
             # TYPE etcdlock_leader_transitions_total counter\n\
             etcdlock_leader_transitions_total{{lock=\"{label}\"}} {}\n",
            u8::from(leader),
            self.transitions.get()
        );
        if let Err(e) = crate::metrics::write_atomically(path, text.as_bytes()) {
            output::warn(format!(
                "cannot write --metrics-file {}: {e}",
                path.display()
            ));
        }
    }
}
