//! Build script: link GCC's unwinder into etcdlock instead of loading `libgcc_s.so.1` at start.
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

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
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
