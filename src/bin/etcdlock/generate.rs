//! Generated documentation: shell completions and man pages, produced from the clap definition so
//! they can never disagree with `--help`. The copies committed in completions/ and man/ are checked
//! against a fresh generation by a test (run scripts/generate to rewrite them).

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "etcdlock", &mut out);
    out
}

/// The file name a completion script is committed under in completions/ (scripts/generate agrees).
#[cfg(test)]
pub fn completion_file(shell: Shell) -> String {
    match shell {
        Shell::Bash => "etcdlock.bash",
        Shell::Zsh => "_etcdlock.zsh",
        Shell::Fish => "etcdlock.fish",
        Shell::Elvish => "etcdlock.elv",
        Shell::PowerShell => "_etcdlock.ps1",
        _ => "etcdlock.unknown",
    }
    .to_owned()
}

/// Every man page: `etcdlock.1` and `etcdlock-<subcommand>.1`, as (file name, roff).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command();
    // Building propagates global options and the version into the subcommands' pages.
    cmd.build();
    let mut pages = Vec::new();
    let mut root = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut root)?;
    pages.push(("etcdlock.1".to_owned(), root));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("etcdlock-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).display_name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}

/// `etcdlock man DIR`.
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, page) in man_pages()? {
        let path = dir.join(name);
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn repo(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    /// Fails when completions/ or man/ no longer match the CLI: run scripts/generate.
    #[test]
    fn committed_files_are_current() {
        let mut stale = Vec::new();
        for &shell in Shell::value_variants() {
            let path = repo("completions").join(completion_file(shell));
            if std::fs::read(&path).ok() != Some(completions(shell)) {
                stale.push(path);
            }
        }
        let pages = man_pages().unwrap();
        for (name, page) in &pages {
            let path = repo("man").join(name);
            if std::fs::read(&path).ok().as_ref() != Some(page) {
                stale.push(path);
            }
        }
        let committed = std::fs::read_dir(repo("man")).map_or(0, |d| d.count());
        assert_eq!(
            committed,
            pages.len(),
            "man/ has pages for subcommands that no longer exist"
        );
        assert!(
            stale.is_empty(),
            "stale generated files (run scripts/generate): {stale:?}"
        );
    }
}
