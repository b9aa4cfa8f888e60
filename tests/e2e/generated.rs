//! The committed completions and man pages work in the real tools: bash loads the completion and
//! registers `etcdlock`, zsh and fish parse theirs, groff renders every man page without a warning.
//! (That they match the CLI is checked by a unit test in src/generate.rs.) The tools come from
//! `scripts/setup --dev`; a missing one fails the test rather than skipping it.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it with scripts/setup --dev")
        })
}

#[test]
fn bash_completion_registers_etcdlock() {
    let script = repo("completions/etcdlock.bash");
    let out = run(
        "bash",
        &[
            "-c",
            &format!("source {}; complete -p etcdlock", script.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("-F _etcdlock etcdlock"));
}

#[test]
fn zsh_and_fish_completions_parse() {
    for (shell, file) in [
        ("zsh", "completions/_etcdlock.zsh"),
        ("fish", "completions/etcdlock.fish"),
    ] {
        let out = run(shell, &["-n", repo(file).to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let mut pages: Vec<_> = std::fs::read_dir(repo("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "etcdlock.1",
        "etcdlock-run.1",
        "etcdlock-status.1",
        "etcdlock-list.1",
        "etcdlock-break.1",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "man/{expected} missing: {names:?}"
        );
    }
    for page in &pages {
        let out = run("groff", &["-man", "-ww", "-z", page.to_str().unwrap()]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
