//! Waiting for a lock, as the user reads about it: the waiting itself is the library's
//! ([`etcdlock::wait`]: queue, watch the own key, give up, leave on a signal); here its events
//! become the notes about the name, the progress line and the give-up line.

use std::cell::RefCell;

use etcdlock::lock::QueueInfo;
use etcdlock::queue::Slot;
use etcdlock::wait::{self, Event, Patience};
use etcdlock::{Client, Holder};
use nix::sys::signal::Signal;

use crate::cli::WaitArgs;
use crate::exit::{self, fail};
use crate::output::{self, short_duration};
use crate::progress::{self, Progress};

/// What the user sees of a wait: the events of [`etcdlock::wait::wait`] told as messages.
pub struct Shown<'a> {
    name: &'a str,
    /// The notes about the name were given already (by the look before the queue).
    name_noted: bool,
    progress: RefCell<Option<Progress>>,
    /// "acquired NAME after 41s", once the lock is ours, if waiting said anything.
    news: RefCell<Option<String>>,
}

impl<'a> Shown<'a> {
    /// For the lock `name`.
    pub fn new(name: &'a str, name_noted: bool) -> Shown<'a> {
        Shown {
            name,
            name_noted,
            progress: RefCell::new(None),
            news: RefCell::new(None),
        }
    }

    /// Tell one event of the wait.
    pub fn event(&self, event: &Event<'_>) {
        match event {
            Event::Queued(noticed) => {
                if !self.name_noted {
                    warn_about_name(self.name, noticed.related_lock.as_deref());
                }
            }
            Event::Blocked => {
                crate::emergency::test_point("waiting");
                *self.progress.borrow_mut() = Some(Progress::new(self.name, output::is_quiet()));
            }
            Event::Progress(info) => {
                if let Some(progress) = self.progress.borrow_mut().as_mut() {
                    progress.update(*info);
                }
            }
        }
    }

    /// The lock is ours: end the progress line, keeping "acquired NAME after 41s" for
    /// [`Shown::announce`] if waiting said anything.
    pub fn acquired(&self) {
        if let Some(mut progress) = self.progress.borrow_mut().take() {
            let waited = short_duration(progress.waited());
            if progress.finish(None) {
                *self.news.borrow_mut() = Some(format!("acquired {} after {waited}", self.name));
            }
        }
    }

    /// Whether waiting said anything (then its end is news too).
    pub fn said_anything(&self) -> bool {
        self.news.borrow().is_some()
    }

    /// Say that we got the lock, if waiting said anything (once).
    pub fn announce(&self) {
        if let Some(news) = self.news.borrow_mut().take() {
            output::info(news);
        }
    }

    /// The wait ended without the lock: end the progress line.
    pub fn finish(&self) {
        if let Some(mut progress) = self.progress.borrow_mut().take() {
            progress.finish(None);
        }
    }
}

/// The library's wait for the options `-n`, `-w`, `-E`, `--progress-interval`.
pub fn how<'a>(name: &'a str, holder: &'a Holder, args: &WaitArgs) -> wait::Wait<'a> {
    let patience = match (args.no_wait, args.timeout) {
        (true, _) => Patience::NoWait,
        (false, Some(t)) => Patience::For(t),
        (false, None) => Patience::Forever,
    };
    wait::Wait {
        name,
        holder,
        patience,
        // Progress costs a queue read per tick; with nothing to show, do not ask.
        progress_every: progress::interval(args.progress_interval, output::is_quiet()),
        describe_give_up: args.conflict_exit_code != 0,
        checks: Vec::new(),
    }
}

/// One line naming the holder (none with `-E 0`: skipping is then the expected, silent outcome),
/// then the conflict exit code.
pub fn gave_up(name: &str, args: &WaitArgs, info: Option<&QueueInfo>) -> u8 {
    if args.conflict_exit_code == 0 {
        return 0;
    }
    let why = if args.no_wait {
        "--no-wait".to_owned()
    } else {
        format!(
            "--timeout {}",
            humantime::format_duration(args.timeout.unwrap_or_default())
        )
    };
    let state = match info {
        Some(info) => progress::describe_queue(info),
        None => "held by someone else".to_owned(),
    };
    output::info(format!("{name} is {state}; giving up ({why})"));
    args.conflict_exit_code
}

/// A signal came while waiting: say so; its exit code.
pub fn cancelled(name: &str, sig: Signal) -> u8 {
    output::info(format!(
        "{sig} received while waiting for {name}; leaving the queue"
    ));
    exit::signal(sig as i32)
}

/// The lease was lost while waiting.
pub fn lost_waiting(name: &str, reason: &str) -> anyhow::Error {
    fail(
        exit::UNAVAILABLE,
        format!("lost the lease while waiting for {name}: {reason}"),
    )
}

/// Names that are legal but likely typos: a trailing slash, or a live lock nested under ours
/// (different locks, though `etcdctl lock` on ours would queue behind the nested one's keys).
pub fn warn_about_name(name: &str, related: Option<&str>) {
    if name.ends_with('/') && name.len() > 1 {
        output::info(format!(
            "note: {name} ends in '/': it is a different lock from {} (its keys are {name}/<lease>)",
            name.trim_end_matches('/')
        ));
    }
    if let Some(other) = related {
        output::info(format!(
            "note: a lock named {other} is held too; {other} and {name} are different locks \
             (etcdlock never mixes them up, but `etcdctl lock` on the shorter name also waits for the longer one's holders)"
        ));
    }
}

/// `-n` found the lock full before joining the queue: the same line as [`gave_up`], from the
/// holders' keys (one read of the oldest's value), and the conflict exit code.
pub async fn conflict(client: &Client, name: &str, holders: &[Slot], code: u8) -> u8 {
    if code == 0 {
        return 0;
    }
    let state = match holders.first() {
        Some(first) => {
            let key = first.key.clone();
            let value = client
                .call(|mut c| async move { c.get(key, None).await })
                .await
                .ok();
            let holder = value
                .as_ref()
                .and_then(|v| v.kvs().first())
                .and_then(|kv| Holder::parse(kv.value()));
            let info = QueueInfo {
                holder,
                holder_key: first.key.clone(),
                ahead: holders.len() as i64,
            };
            progress::describe_queue(&info)
        }
        None => "held by someone else".to_owned(),
    };
    output::info(format!("{name} is {state}; giving up (--no-wait)"));
    code
}
