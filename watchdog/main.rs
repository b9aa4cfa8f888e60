//! The reaper helper as a program of its own: freestanding (no standard library, no C library,
//! no allocation), a few kilobytes, started by etcdlock with an exec instead of a fork.
//!
//! Why a separate program: a fork of etcdlock copies its page tables and then makes every page
//! etcdlock writes a copy-on-write fault, each with a TLB shootdown across etcdlock's threads; on
//! the 2-core bench machine that was about 1.2 ms of CPU and 0.5 ms of wall time per run (issue
//! 25). etcdlock's own binary is too large to exec for this (about 1 ms more per run). This one
//! starts in about 0.1 ms: `build.rs` compiles it for the target, the library embeds the bytes
//! and execs them from a memfd (`src/process/reaper.rs`, which also says what happens where that
//! is refused: the forked helper of before).
//!
//! What it does is the forked helper's watch, see the reaper module's doc: it finds etcdlock's
//! pipe, the shared page, `cgroup.kill` and the rescue program on descriptors 3, 4, 5 and 6
//! (`watchdog_abi.rs`), sleeps on a CLOCK_BOOTTIME timer until the published deadline, and kills
//! the tree with system calls when etcdlock did not move the deadline in time or its pipe ends
//! without the "done" byte. Then it execs the rescue program (etcdlock's `internal-reap`) with
//! its own argv (`etcd-lock-watchdog internal-reap --run-id ID`) plus `--after gone|expired
//! --leader PID`, for the slow part: finding every process of the run and removing the cgroup.
//!
//! Only x86-64 Linux for now (`build.rs` builds it nowhere else): the entry point and the system
//! call instruction are the architecture's.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::Ordering;

#[path = "../src/process/watchdog_abi.rs"]
#[allow(dead_code)]
mod abi;

use abi::{Page, Step};

/// Linux x86-64 system call numbers.
mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const CLONE: usize = 56;
    pub const MMAP: usize = 9;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const DUP2: usize = 33;
    pub const KILL: usize = 62;
    pub const FCNTL: usize = 72;
    pub const SETSID: usize = 112;
    pub const PRCTL: usize = 157;
    pub const CLOCK_GETTIME: usize = 228;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const PPOLL: usize = 271;
    pub const TIMERFD_CREATE: usize = 283;
    pub const TIMERFD_SETTIME: usize = 286;
    pub const EXECVEAT: usize = 322;
}

const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const EINTR: isize = -4;
const CLOCK_BOOTTIME: usize = 7;
const O_RDWR: usize = 2;
const O_CLOEXEC: usize = 0o2000000;
const AT_FDCWD: isize = -100;
const AT_EMPTY_PATH: usize = 0x1000;
const F_GETFD: usize = 1;
const PR_SET_NAME: usize = 15;
const POLLIN: i16 = 1;

/// A system call with up to six arguments; returns the raw result (`-errno` on failure).
///
/// # Safety
/// The caller passes what the call expects.
unsafe fn sys(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction clobbers rcx and r11 only; the caller vouches for the
    // arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes a number and does not return.
        unsafe { sys(nr::EXIT_GROUP, [code, 0, 0, 0, 0, 0]) };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing here can panic (no indexing out of bounds is reachable); if it did, the end of the
    // helper is what etcdlock watches for (it then stops the command: lock lost).
    exit(70)
}

// The compiler lowers array fills and copies to these C functions; without a C library the
// program brings its own. Volatile accesses, so that these loops are not themselves turned into
// calls to the functions they define.

#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's buffer holds n bytes.
        unsafe { core::ptr::write_volatile(dst.add(i), c as u8) };
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's buffers hold n bytes and do not overlap.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) {
        // SAFETY: as memcpy; forwards is safe when the destination starts first.
        return unsafe { memcpy(dst, src, n) };
    }
    for i in (0..n).rev() {
        // SAFETY: the caller's buffers hold n bytes.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's buffers hold n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

// The kernel starts the program with the stack pointer on argc, argv, NULL, envp, NULL.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym main,
);

fn write_all(fd: usize, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: a write from a valid buffer.
        let n = unsafe {
            sys(
                nr::WRITE,
                [fd, bytes.as_ptr() as usize, bytes.len(), 0, 0, 0],
            )
        };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n != EINTR {
            return;
        }
    }
}

/// read(2) until `buf` is full; false on end-of-file or error.
fn read_exact(fd: usize, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: a read into a valid buffer.
        let n = unsafe {
            sys(
                nr::READ,
                [fd, rest.as_mut_ptr() as usize, rest.len(), 0, 0, 0],
            )
        };
        if n > 0 {
            done += n as usize;
        } else if n != EINTR {
            return false;
        }
    }
    true
}

fn boottime_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime into a timespec-sized buffer.
    unsafe {
        sys(
            nr::CLOCK_GETTIME,
            [CLOCK_BOOTTIME, ts.as_mut_ptr() as usize, 0, 0, 0, 0],
        )
    };
    (ts[0] as u64).saturating_mul(1_000_000_000) + ts[1] as u64
}

/// Arm the timerfd for the absolute CLOCK_BOOTTIME time `at` (0: disarm).
fn set_timer(timer: usize, at: u64) {
    let spec: [i64; 4] = [
        0,
        0,
        (at / 1_000_000_000) as i64,
        (at % 1_000_000_000) as i64,
    ];
    // SAFETY: an itimerspec (interval, value) from a valid buffer; TFD_TIMER_ABSTIME is 1.
    unsafe {
        sys(
            nr::TIMERFD_SETTIME,
            [timer, 1, spec.as_ptr() as usize, 0, 0, 0],
        )
    };
}

/// Write `msg` to stderr from a child of our own, so that a stderr that does not take it (a
/// pipe to a stopped reader, a terminal stopped with Ctrl-S) can never hold up the kill that
/// follows. The child is left as a zombie until the helper ends: one message, once.
fn say(msg: &[u8]) {
    const SIGCHLD: usize = 17;
    // SAFETY: clone without CLONE_VM and without a new stack is fork: the child runs on a copy.
    if unsafe { sys(nr::CLONE, [SIGCHLD, 0, 0, 0, 0, 0]) } == 0 {
        write_all(2, msg);
        exit(0);
    }
}

fn kill(pid: isize, sig: usize) {
    // SAFETY: kill takes numbers.
    unsafe { sys(nr::KILL, [pid as usize, sig, 0, 0, 0, 0]) };
}

/// Signal the tree with system calls only: the process group, and `cgroup.kill` for SIGKILL.
fn stop(sig: usize, leader: i32, has_kill: bool) {
    if sig == SIGKILL && has_kill {
        write_all(abi::KILL_FD as usize, b"1");
    }
    if leader > 0 {
        kill(-(leader as isize), sig);
    }
}

fn fd_open(fd: i32) -> bool {
    // SAFETY: fcntl on a number; EBADF if it is not open.
    unsafe { sys(nr::FCNTL, [fd as usize, F_GETFD, 0, 0, 0, 0]) >= 0 }
}

/// Every signal back to its default action, then the ones that reach etcdlock's group or
/// terminal ignored (the helper must outlive them), and none blocked.
fn set_signals() {
    const SIG_IGN: usize = 1;
    let ignored = [1, 2, 15, 3, 10, 12, 13, 20, 21, 22]; // HUP INT TERM QUIT USR1 USR2 PIPE TSTP TTIN TTOU
    for sig in 1..=64usize {
        if sig == SIGKILL || sig == SIGSTOP {
            continue;
        }
        let handler = if ignored.contains(&sig) { SIG_IGN } else { 0 };
        // handler, flags, restorer, mask: the kernel's struct sigaction.
        let act: [usize; 4] = [handler, 0, 0, 0];
        // SAFETY: rt_sigaction with a valid struct and the kernel's sigset size (8).
        unsafe { sys(nr::RT_SIGACTION, [sig, act.as_ptr() as usize, 0, 8, 0, 0]) };
    }
    let none = 0u64;
    // SAFETY: SIG_SETMASK (2) to the empty set.
    unsafe {
        sys(
            nr::RT_SIGPROCMASK,
            [2, &none as *const u64 as usize, 0, 8, 0, 0],
        )
    };
}

/// The helper's argv followed by `--after AFTER --leader LEADER`, exec'd from [`abi::RESCUE_FD`]
/// (which stays open across the exec: the kernel refuses to run a script from a close-on-exec
/// descriptor). Returns only if there is no rescue program or the exec failed.
///
/// # Safety
/// `argv` and `envp` are the ones the kernel gave this process.
unsafe fn exec_rescue(
    argv: *const *const u8,
    argc: usize,
    envp: *const *const u8,
    after: &[u8],
    leader: i32,
    has_rescue: bool,
) {
    const MAX: usize = 60;
    if argc > MAX || !has_rescue {
        return;
    }
    let mut leader_arg = [0u8; 12];
    abi::decimal(leader.max(0) as u32, &mut leader_arg);
    let mut args: [*const u8; MAX + 5] = [core::ptr::null(); MAX + 5];
    for (i, slot) in args.iter_mut().enumerate().take(argc) {
        // SAFETY: argv holds argc pointers.
        *slot = unsafe { *argv.add(i) };
    }
    args[argc] = c"--after".as_ptr().cast();
    args[argc + 1] = after.as_ptr();
    args[argc + 2] = c"--leader".as_ptr().cast();
    args[argc + 3] = leader_arg.as_ptr();
    // SAFETY: a NUL-terminated argv and the environment we were given.
    unsafe {
        sys(
            nr::EXECVEAT,
            [
                abi::RESCUE_FD as usize,
                c"".as_ptr() as usize,
                args.as_ptr() as usize,
                envp as usize,
                AT_EMPTY_PATH,
                0,
            ],
        )
    };
}

/// The kernel's `struct pollfd` (a tuple's layout is not guaranteed; this one's is C's).
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

impl PollFd {
    fn new(fd: usize) -> PollFd {
        PollFd {
            fd: fd as i32,
            events: POLLIN,
            revents: 0,
        }
    }
}

/// How the watch ended.
enum End {
    Released,
    Gone,
}

/// The entry point (from `_start`, with the initial stack pointer).
///
/// # Safety
/// `sp` is the stack pointer the kernel started the program with.
unsafe extern "C" fn main(sp: *const usize) -> ! {
    // SAFETY: the kernel's layout: argc, then argc pointers and a NULL, then the environment.
    let (argc, argv, envp) = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        (argc, argv, argv.add(argc + 1))
    };
    // Which inputs etcdlock gave, before any descriptor of ours can take a free number.
    let (has_kill, has_rescue) = (fd_open(abi::KILL_FD), fd_open(abi::RESCUE_FD));
    // SAFETY: plain system calls on numbers and static strings.
    unsafe {
        // The memfd's exec named the process after its descriptor; `ps` should say what it is.
        sys(
            nr::PRCTL,
            [
                PR_SET_NAME,
                c"etcd-lock-watch".as_ptr() as usize,
                0,
                0,
                0,
                0,
            ],
        );
        sys(nr::SETSID, [0; 6]);
        // Keep stderr (the helper says what it did); never hold the caller's stdin or stdout.
        let null = sys(
            nr::OPENAT,
            [
                AT_FDCWD as usize,
                c"/dev/null".as_ptr() as usize,
                O_RDWR | O_CLOEXEC,
                0,
                0,
                0,
            ],
        );
        if null >= 0 {
            sys(nr::DUP2, [null as usize, 0, 0, 0, 0, 0]);
            sys(nr::DUP2, [null as usize, 1, 0, 0, 0, 0]);
            sys(nr::CLOSE, [null as usize, 0, 0, 0, 0, 0]);
        }
    }
    set_signals();
    // SAFETY: a shared mapping of the page's descriptor; failure is checked.
    let map = unsafe {
        sys(
            nr::MMAP,
            [0, abi::PAGE_SIZE, 3, 1, abi::PAGE_FD as usize, 0],
        ) // RW, MAP_SHARED
    };
    if map < 0 && map > -4096 {
        exit(1); // etcdlock sees its helper die and stops the command
    }
    // SAFETY: a page-sized mapping that lives until exit; zero-filled or written with atomics.
    let page: &Page = unsafe { &*(map as usize as *const Page) };
    // SAFETY: timerfd_create takes numbers (TFD_CLOEXEC).
    let timer = unsafe { sys(nr::TIMERFD_CREATE, [CLOCK_BOOTTIME, O_CLOEXEC, 0, 0, 0, 0]) };
    if timer < 0 {
        exit(1);
    }
    let timer = timer as usize;
    let pipe = abi::PIPE_FD as usize;
    let mut leader: i32 = 0;
    let (mut termed, mut killed) = (false, false);
    let end = loop {
        let mut wake = 0;
        if !killed {
            let step = page.next_step(boottime_ns(), termed);
            match step {
                Step::Sleep(at) => wake = at,
                Step::Term { then } => {
                    page.fired.store(1, Ordering::Release);
                    termed = true;
                    stop(
                        page.signal.load(Ordering::Relaxed) as usize,
                        leader,
                        has_kill,
                    );
                    if has_rescue {
                        say(b"etcdlock: etcdlock did not renew its lock in time (frozen or starved?); its reaper helper is stopping the command\n");
                    }
                    wake = then;
                }
                Step::Kill => {
                    page.fired.store(1, Ordering::Release);
                    killed = true;
                    stop(SIGKILL, leader, has_kill);
                    // The rest of the tree (a descendant that left the group or the cgroup) is
                    // for the rescue program; it also goes on watching the pipe.
                    // SAFETY: our own argv and environment.
                    unsafe { exec_rescue(argv, argc, envp, b"expired\0", leader, has_rescue) };
                }
            }
        }
        set_timer(timer, wake);
        let mut fds = [PollFd::new(pipe), PollFd::new(timer)];
        // SAFETY: ppoll on two valid pollfds, no timeout, no mask.
        if unsafe { sys(nr::PPOLL, [fds.as_mut_ptr() as usize, 2, 0, 0, 8, 0]) } < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut ticks = [0u8; 8];
            read_exact(timer, &mut ticks);
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut byte = [0u8];
        if !read_exact(pipe, &mut byte) {
            break End::Gone;
        }
        match byte[0] {
            abi::MSG_LEADER => {
                let mut pid = [0u8; 4];
                if !read_exact(pipe, &mut pid) {
                    break End::Gone;
                }
                leader = i32::from_le_bytes(pid);
            }
            abi::MSG_REAPED => leader = 0,
            abi::MSG_DONE => break End::Released,
            _ => {}
        }
    };
    if let End::Gone = end {
        stop(SIGKILL, leader, has_kill);
        // SAFETY: our own argv and environment.
        unsafe { exec_rescue(argv, argc, envp, b"gone\0", leader, has_rescue) };
    }
    exit(0)
}
