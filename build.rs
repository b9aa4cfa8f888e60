//! Build script: two things the `etcdlock` binary's start-up time asks of the build (issue 25).
//!
//! **The embedded reaper helper.** `watchdog/main.rs` is a freestanding program (no standard
//! library, no C library) that watches etcdlock and kills the command's tree if etcdlock dies or
//! freezes (see `src/process/reaper.rs`). This script compiles it with the same `rustc` for the
//! same target, and the library embeds the bytes (`include_bytes!` of `$OUT_DIR`, under
//! `cfg(embedded_watchdog)`), so the helper is exec'd in ~0.1 ms instead of forking etcdlock. It
//! is built for x86-64 Linux only (its entry point and system calls are that architecture's);
//! elsewhere the library forks its helper as before. There a failed compile fails the build
//! (a warning, which cargo hides for dependencies, would ship the slower helper unnoticed);
//! `ETCDLOCK_NO_EMBEDDED_HELPER=1` builds without it instead.
//!
//! **GCC's unwinder linked into etcdlock instead of loading `libgcc_s.so.1` at start.**
//!
//! Rust's standard library on `*-linux-gnu` asks the linker for `-lgcc_s` (the unwinder, which a
//! `panic = "abort"` build needs only for backtraces). Loading that shared library costs every
//! start of etcdlock about 0.1 ms on the 2-core bench machine (issue 25): one more object for the
//! dynamic loader to map and relocate, and its constructor `__cpu_indicator_init`, whose `cpuid`
//! instructions each trap to the hypervisor on a virtual machine (3.7 µs each there). The same
//! code is in `libgcc_eh.a`, which GCC ships beside it for `-static-libgcc`; Rust has no switch
//! for that, so this script puts a one-line linker script named `libgcc_s.so` first on the
//! library path, pointing at `libgcc_eh.a`. The linker then takes the unwinder from the archive,
//! and `libgcc_s.so.1` is no longer among the binary's `NEEDED` libraries (`readelf -d`; the
//! test `the_binary_does_not_load_libgcc_s` in `tests/e2e/cli.rs` checks it). Where the archive
//! is not found (another toolchain, a cross build), nothing changes. Static builds
//! (`+crt-static`, `scripts/static`) link it statically anyway.

use std::path::PathBuf;
use std::process::Command;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    watchdog();
    unwinder();
}

/// Compile `watchdog/main.rs` into `$OUT_DIR` and tell the library where it is.
fn watchdog() {
    println!("cargo:rustc-check-cfg=cfg(embedded_watchdog)");
    println!("cargo:rerun-if-changed=watchdog/main.rs");
    println!("cargo:rerun-if-changed=src/process/watchdog_abi.rs");
    println!("cargo:rerun-if-env-changed=ETCDLOCK_NO_EMBEDDED_HELPER");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ARCH") != "x86_64" {
        return;
    }
    if var("ETCDLOCK_NO_EMBEDDED_HELPER") == "1" {
        println!(
            "cargo:warning=ETCDLOCK_NO_EMBEDDED_HELPER=1: etcdlock will fork its reaper helper"
        );
        return;
    }
    let out = PathBuf::from(var("OUT_DIR")).join("etcd-lock-watchdog");
    let mut rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()));
    rustc.args(["--edition", "2021", "--crate-type", "bin"]);
    rustc.args([
        "--crate-name",
        "etcd_lock_watchdog",
        "--target",
        &var("TARGET"),
    ]);
    // Freestanding and static: no start files, no C library, no relocations to apply at start;
    // LTO so that `core`'s unwinding glue (built for unwinding) is dropped with the panics.
    for flag in [
        "panic=abort",
        "opt-level=s",
        "lto",
        "codegen-units=1",
        "relocation-model=static",
        "target-feature=+crt-static",
        "link-arg=-nostartfiles",
        "link-arg=-nostdlib",
        "link-arg=-static",
        "strip=symbols",
        "debuginfo=0",
    ] {
        rustc.args(["-C", flag]);
    }
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        rustc.arg(format!("-Clinker={linker}"));
    }
    rustc.arg("watchdog/main.rs").arg("-o").arg(&out);
    let built = match rustc.output() {
        Ok(o) if o.status.success() => std::fs::read(&out).map_err(|e| e.to_string()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(format!("cannot run rustc: {e}")),
    };
    // A static x86-64 executable (ELF, 64-bit, little-endian, ET_EXEC, EM_X86_64) with no
    // program interpreter: what the kernel will exec from a memfd.
    let sane = |b: &[u8]| {
        b.len() > 64
            && b.starts_with(b"\x7fELF\x02\x01")
            && b[16..20] == [2, 0, 0x3e, 0]
            && !b.windows(12).any(|w| w == b"ld-linux-x86")
    };
    match built {
        Ok(bytes) if sane(&bytes) => {
            println!("cargo:rustc-cfg=embedded_watchdog");
            println!("cargo:rustc-env=ETCDLOCK_WATCHDOG_BIN={}", out.display());
        }
        Ok(_) => panic!("watchdog/main.rs built, but not as a static x86-64 executable ({}); set ETCDLOCK_NO_EMBEDDED_HELPER=1 to build without it", out.display()),
        Err(e) => panic!("the embedded reaper helper (watchdog/main.rs) did not build; set ETCDLOCK_NO_EMBEDDED_HELPER=1 to build etcdlock without it (it then forks its helper):\n{e}"),
    }
}

/// Put `libgcc_eh.a` where the linker looks for `libgcc_s`, for the binaries (see the top).
fn unwinder() {
    let native = var("TARGET") == var("HOST");
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if !(native && linux_gnu) || static_crt {
        return;
    }
    let Some(archive) = gcc_eh() else { return };
    let dir = PathBuf::from(var("OUT_DIR")).join("unwinder");
    let script = format!("INPUT({})\n", archive.display());
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(dir.join("libgcc_s.so"), script).is_ok()
    {
        // For the binaries only: a program that uses the library keeps its own unwinder.
        println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    }
}

/// Where the C compiler (the linker driver rustc uses on Linux) keeps `libgcc_eh.a`, if it has
/// one: `cc -print-file-name` prints the bare name when it does not.
fn gcc_eh() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}
