//! The committed completions and man pages work in the real tools: bash loads the completion and
//! registers `etcdlock`, zsh and fish parse theirs, groff renders every man page without a warning,
//! and `man` shows each page with its sections and with every example of `--help` on one line, as
//! written, ready to copy. (That they match the CLI is checked by a unit test in
//! src/bin/etcdlock/generate.rs.) The tools come from `scripts/setup --test`; a missing one fails the
//! test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;

use etcdlock_testkit::etcdlock_command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it with scripts/setup --test")
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

/// The committed man pages, sorted.
fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<_> = std::fs::read_dir(repo("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    pages
}

#[test]
fn man_pages_render_without_warnings() {
    let pages = man_pages();
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

/// `man -l PAGE` as a reader gets it: UTF-8 (where a hyphenation break or a roff hyphen shows as
/// U+2010, unlike in ASCII), 80 columns, man's own defaults (hyphenation and justification on: the
/// page has to turn them off), groff's warnings on. Returns (text, warnings).
fn man(page: &Path) -> (String, String) {
    let mut cmd = Command::new("man");
    cmd.args(["--warnings=w", "-l"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat");
    for var in [
        "MAN_KEEP_FORMATTING",
        "MANROFFOPT",
        "MANOPT",
        "GROFF_TMAC_PATH",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run man ({e}); install it with scripts/setup --test"));
    assert!(out.status.success(), "man -l {}: {:?}", page.display(), out);
    (
        String::from_utf8(out.stdout).expect("man prints UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `etcdlock [SUB] --help` (the long help, where the examples are).
fn long_help(sub: Option<&str>) -> String {
    let out = etcdlock_command()
        .args(sub)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(out.status.success(), "{sub:?} --help: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The example commands of a help text: the indented lines after "Examples:" up to the next
/// unindented line, without `# comment` lines and trailing `  # comments`.
fn help_examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Examples:")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .map(|l| l.split("  # ").next().unwrap().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The options `--help` lists, as (flag, value name): `-w, --timeout <DUR>` is ("-w", "DUR"),
/// the short flag where there is one, as a synopsis shows it.
fn help_options(help: &str) -> Vec<(String, Option<String>)> {
    let mut options = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let spec = line.trim().split("  ").next().unwrap();
        if !(2..=6).contains(&indent) || !spec.starts_with('-') {
            continue;
        }
        let (short, rest) = match spec.split_once(", ") {
            Some((short, rest)) => (Some(short), rest),
            None => (None, spec),
        };
        let (long, value) = match rest.split_once(" <") {
            Some((long, value)) => (
                long,
                Some(value.trim_end_matches("...").trim_end_matches('>')),
            ),
            None => (rest.trim_end_matches("..."), None),
        };
        let long_ok = long.strip_prefix("--").is_some_and(|l| {
            !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if long_ok && !["--help", "--version"].contains(&long) {
            let flag = short.unwrap_or(long).to_owned();
            options.push((flag, value.map(str::to_owned)));
        }
    }
    options
}

/// The text of a section of a rendered page: the lines after its heading, up to the next one.
fn man_section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn man_pages_have_sections_and_examples_to_copy() {
    let mut examples_seen = 0;
    for page in man_pages() {
        let file = page.file_name().unwrap().to_string_lossy().into_owned();
        let sub = file
            .strip_suffix(".1")
            .and_then(|f| f.strip_prefix("etcdlock-"));
        let help = long_help(sub);
        let (text, warnings) = man(&page);
        assert!(warnings.is_empty(), "{file}: man/groff warn: {warnings}");
        // Section headings are the unindented lines; each expected one once, in this order.
        let headings: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(' '))
            .collect();
        let examples = help_examples(&help);
        let mut expected = vec!["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"];
        if !examples.is_empty() {
            expected.push("EXAMPLES");
        }
        // ENVIRONMENT wherever --help names a variable (every page: the global options do).
        let names_env = help.contains("[env: ") || help.to_lowercase().contains("environment");
        if sub.is_none() || sub == Some("run") || names_env {
            expected.push("ENVIRONMENT");
        }
        expected.extend(["EXIT STATUS", "SEE ALSO"]);
        let found: Vec<&str> = headings
            .iter()
            .copied()
            .filter(|h| expected.contains(h))
            .collect();
        assert_eq!(found, expected, "{file}: section headings {headings:?}");
        assert!(
            !headings.contains(&"EXTRA"),
            "{file}: clap_mangen's EXTRA section is back"
        );
        // Nothing is hyphenated, and no hyphen is a typographic one: copied text must run.
        for bad in ['\u{2010}', '\u{00ad}', '\u{2212}', '\u{2018}', '\u{2019}'] {
            let line = text.lines().find(|l| l.contains(bad));
            assert!(line.is_none(), "{file}: {bad:?} in {line:?}");
        }
        // Every example command of --help is one line of the page, exactly as in --help.
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for example in &examples {
            assert!(
                lines.contains(&example.as_str()),
                "{file}: example not on one line as written: {example:?}\n{}",
                man_section(&text, "EXAMPLES").join("\n")
            );
        }
        examples_seen += examples.len();
        // A subcommand's synopsis shows each option with its value: `[-w DUR]`, or the option as
        // a word of its own where a usage form is built on it (`-c 'SHELL COMMAND'`).
        if sub.is_some() {
            let synopsis = man_section(&text, "SYNOPSIS").join(" ");
            let words: Vec<&str> = synopsis.split_whitespace().collect();
            for (flag, value) in help_options(&help) {
                let item = match &value {
                    Some(value) => format!("[{flag} {value}]"),
                    None => format!("[{flag}]"),
                };
                assert!(
                    synopsis.contains(&item) || words.contains(&flag.as_str()),
                    "{file}: {item} not in the synopsis: {synopsis}"
                );
            }
        }
    }
    assert!(
        examples_seen >= 10,
        "only {examples_seen} examples found in --help: is the Examples: section gone?"
    );
}
