//! Generated documentation: shell completions and man pages, produced from the clap definition so
//! they can never disagree with `--help`. The copies committed in completions/ and man/ are checked
//! against a fresh generation by a test (run scripts/generate to rewrite them).
//!
//! The man pages are written here rather than by clap_mangen: their SYNOPSIS shows option values,
//! OPTIONS keeps the help headings, and the text after the options in `--help` (sections introduced
//! by lines like "Examples:", "Environment:", "Exit codes:") becomes EXAMPLES, ENVIRONMENT and EXIT
//! STATUS, with the example commands in no-fill mode so that they copy exactly as printed.

use std::path::Path;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// Completion script for `shell`. Without the hidden subcommands: clap_complete offers them in
/// bash, zsh and PowerShell, and `internal-reap` is no command for people.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = without_hidden_subcommands(crate::cli::command());
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "etcdlock", &mut out);
    out
}

/// `cmd` with the same arguments, settings and visible subcommands, and no hidden ones (clap
/// has no way to remove a subcommand, so the root is rebuilt around them).
fn without_hidden_subcommands(cmd: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut root = clap::Command::new(cmd.get_name().to_owned())
        .version(cmd.get_version().unwrap_or_default().to_owned())
        .propagate_version(true)
        .args(cmd.get_arguments().cloned())
        .subcommands(visible);
    if let Some(about) = cmd.get_about() {
        root = root.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        root = root.long_about(about.clone());
    }
    root
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

/// Every man page: `etcdlock.1` and `etcdlock-<subcommand>.1` (hidden subcommands have none), as
/// (file name, roff).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut root = crate::cli::command();
    // Building propagates the global options and the version into the subcommands and sets their
    // usage names ("etcdlock run").
    root.build();
    let subs: Vec<clap::Command> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    let titles: Vec<String> = std::iter::once("etcdlock".to_owned())
        .chain(subs.iter().map(|s| format!("etcdlock-{}", s.get_name())))
        .collect();
    let mut pages = vec![(
        format!("{}.1", titles[0]),
        man::page(&root, &root, Some(&subs), &titles[0], &titles).into_bytes(),
    )];
    for (sub, title) in subs.iter().zip(&titles[1..]) {
        let page = man::page(sub, &root, None, title, &titles);
        pages.push((format!("{title}.1"), page.into_bytes()));
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

/// The after-help text of a command, sorted into man page sections.
mod after_help {
    /// What the text after the options in `--help` holds, by man page section.
    #[derive(Debug, Default, PartialEq)]
    pub struct AfterHelp {
        /// Paragraphs of no known section: they go on from the DESCRIPTION.
        pub description: Vec<String>,
        pub examples: Vec<Example>,
        pub environment: Vec<Block>,
        pub exit_status: Vec<Block>,
    }

    /// One example: what it does (its `#` comments) and its command lines, verbatim.
    #[derive(Debug, Default, PartialEq)]
    pub struct Example {
        pub what: String,
        pub lines: Vec<String>,
    }

    /// A paragraph, or a two-column list (`KEY  what it means`; more key columns are joined with
    /// ", ").
    #[derive(Debug, PartialEq)]
    pub enum Block {
        Text(String),
        Table(Vec<(String, String)>),
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Section {
        Examples,
        Environment,
        ExitStatus,
    }

    /// A line such as "Examples:", "Exit codes: 0 success, 2 usage error." or "Environment (a
    /// flag beats both):".
    struct Heading<'a> {
        section: Section,
        /// The words before the colon and the parenthesised note.
        label: &'a str,
        note: Option<&'a str>,
        /// What follows the colon on the same line.
        rest: &'a str,
    }

    /// Sort `text` (clap's after_help or after_long_help) into sections. A line "Label:" starts a
    /// section when the label names one (examples, environment, exit codes); the indented lines
    /// after it, blank lines included, belong to it. Everything else is description.
    pub fn parse(text: &str) -> AfterHelp {
        let mut out = AfterHelp::default();
        let mut open: Option<Section> = None;
        for para in paragraphs(text) {
            if indent(para[0]) > 0 {
                match open {
                    Some(section) => out.body(section, &para),
                    None => out.description.push(join(&para)),
                }
                continue;
            }
            open = None;
            match heading(para[0]) {
                Some(h) => open = out.heading(&h, &para),
                None => out.description.push(join(&para)),
            }
        }
        out
    }

    impl AfterHelp {
        /// A paragraph that starts with a heading; the section its indented lines continue.
        fn heading(&mut self, h: &Heading, para: &[&str]) -> Option<Section> {
            match h.section {
                Section::Examples if h.rest.is_empty() => self.body(h.section, &para[1..]),
                Section::Examples => {
                    self.description.push(join(para));
                    return None;
                }
                Section::Environment => {
                    let mut intro = if h.label.eq_ignore_ascii_case("environment") {
                        h.note.map(sentence).unwrap_or_default()
                    } else {
                        String::new()
                    };
                    if intro.is_empty() {
                        intro = para[0].trim().to_owned();
                    } else {
                        append_words(&mut intro, h.rest);
                    }
                    let more = para[1..].iter().take_while(|l| indent(l) == 0).count();
                    para[1..=more]
                        .iter()
                        .for_each(|l| append_words(&mut intro, l));
                    if !intro.is_empty() {
                        self.environment.push(Block::Text(intro));
                    }
                    self.body(h.section, &para[1 + more..]);
                }
                Section::ExitStatus if h.rest.is_empty() => self.body(h.section, &para[1..]),
                Section::ExitStatus => {
                    // "Exit codes: 0 ok, 2 usage error," goes on while a line ends with a comma.
                    let mut list = h.rest.to_owned();
                    let mut next = 1;
                    while next < para.len() && list.ends_with(',') {
                        append_words(&mut list, para[next]);
                        next += 1;
                    }
                    self.exit_status.push(codes(&list));
                    if next < para.len() {
                        self.description.push(join(&para[next..]));
                    }
                    return None;
                }
            }
            Some(h.section)
        }

        /// Indented lines of `section`.
        fn body(&mut self, section: Section, lines: &[&str]) {
            match section {
                Section::Examples => examples(lines, &mut self.examples),
                Section::Environment => blocks(lines, &mut self.environment),
                Section::ExitStatus => blocks(lines, &mut self.exit_status),
            }
        }
    }

    /// Runs of non-blank lines, trailing spaces removed.
    fn paragraphs(text: &str) -> Vec<Vec<&str>> {
        let mut out = vec![Vec::new()];
        for line in text.lines().map(str::trim_end) {
            match out.last_mut() {
                Some(para) if line.is_empty() && !para.is_empty() => out.push(Vec::new()),
                Some(para) if !line.is_empty() => para.push(line),
                _ => {}
            }
        }
        out.retain(|p| !p.is_empty());
        out
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start_matches(' ').len()
    }

    /// The lines of a paragraph as one line.
    fn join(lines: &[&str]) -> String {
        let mut out = String::new();
        lines.iter().for_each(|l| append_words(&mut out, l));
        out
    }

    fn append_words(to: &mut String, words: &str) {
        let words = words.trim();
        if !to.is_empty() && !words.is_empty() {
            to.push(' ');
        }
        to.push_str(words);
    }

    /// "a flag beats both" -> "A flag beats both."
    fn sentence(text: &str) -> String {
        let mut chars = text.trim().chars();
        let mut out: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        out.push_str(chars.as_str());
        if !out.is_empty() && !out.ends_with(['.', ':', '!', '?']) {
            out.push('.');
        }
        out
    }

    fn heading(line: &str) -> Option<Heading<'_>> {
        let colon = line.find(':')?;
        let (head, note, rest) = match line.find('(') {
            Some(open) if open < colon => {
                let close = open + line[open..].find(')')?;
                let rest = line[close + 1..].strip_prefix(':')?;
                (&line[..open], Some(line[open + 1..close].trim()), rest)
            }
            _ => (&line[..colon], None, &line[colon + 1..]),
        };
        let label = head.trim();
        let words = label.split(' ').count();
        if label.is_empty()
            || words > 8
            || !label.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
        {
            return None;
        }
        let lower = label.to_ascii_lowercase();
        let section = if lower.starts_with("example") {
            Section::Examples
        } else if lower.starts_with("exit code") || lower.starts_with("exit status") {
            Section::ExitStatus
        } else if lower.contains("environment") {
            Section::Environment
        } else {
            return None;
        };
        Some(Heading {
            section,
            label,
            note,
            rest: rest.trim(),
        })
    }

    /// Example lines: `# what it does` lines, then the commands, up to a blank line; a command
    /// with a trailing `  # comment` is an example of its own.
    fn examples(lines: &[&str], out: &mut Vec<Example>) {
        let base = lines.iter().map(|l| indent(l)).min().unwrap_or(0);
        let mut cur = Example::default();
        for line in lines {
            let text = &line[base..];
            if let Some(comment) = text.strip_prefix('#') {
                if !cur.lines.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                append_words(&mut cur.what, comment);
            } else if let Some((command, comment)) = text.split_once("  # ") {
                if !cur.lines.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                append_words(&mut cur.what, comment);
                cur.lines.push(command.trim_end().to_owned());
                out.push(std::mem::take(&mut cur));
            } else {
                cur.lines.push(text.to_owned());
            }
        }
        if cur != Example::default() {
            out.push(cur);
        }
    }

    /// Indented lines of a list section: rows with columns two or more spaces apart (a more
    /// indented line continues the row above), or prose.
    fn blocks(lines: &[&str], out: &mut Vec<Block>) {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row_indent = 0;
        let mut text = String::new();
        for line in lines {
            let columns: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            if let [keys @ .., last] = columns.as_slice() {
                if !keys.is_empty() {
                    if !text.is_empty() {
                        out.push(Block::Text(std::mem::take(&mut text)));
                    }
                    rows.push((keys.join(", "), (*last).to_owned()));
                    row_indent = indent(line);
                    continue;
                }
            }
            match rows.last_mut() {
                Some(row) if indent(line) > row_indent => append_words(&mut row.1, line),
                _ => {
                    if !rows.is_empty() {
                        out.push(Block::Table(std::mem::take(&mut rows)));
                    }
                    append_words(&mut text, line);
                }
            }
        }
        if !rows.is_empty() {
            out.push(Block::Table(rows));
        }
        if !text.is_empty() {
            out.push(Block::Text(text));
        }
    }

    /// "0 held, 1 free, 2 usage error." as rows; a list that does not start with a code is prose.
    fn codes(list: &str) -> Block {
        let list = list.trim().trim_end_matches('.');
        let is_code = |w: &str| {
            w == "N"
                || w.starts_with(|c: char| c.is_ascii_digit())
                    && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
        };
        let mut rows: Vec<(String, String)> = Vec::new();
        for piece in list.split(", ") {
            if let Some((code, what)) = piece.split_once(' ').filter(|(c, _)| is_code(c)) {
                rows.push((code.to_owned(), what.trim().to_owned()));
                continue;
            }
            match rows.last_mut() {
                Some(row) => {
                    row.1.push_str(", ");
                    row.1.push_str(piece);
                }
                None => return Block::Text(sentence(list)),
            }
        }
        Block::Table(rows)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn table(rows: &[(&str, &str)]) -> Block {
            Block::Table(
                rows.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        }

        #[test]
        fn sections_of_a_help_text() {
            let text = "\
Examples:
  # first
  etcdlock a -- b

  etcdlock c      # second
  etcdlock d

Environment (a flag wins):
  ETCDLOCK_X  ETCDCTL_X   --x

Safety: some prose
that goes on.

Exit codes: 0 ok, 2 usage error (bad flag,
missing value), 69 etcd unavailable.
Another note.";
            let got = parse(text);
            assert_eq!(
                got.examples,
                vec![
                    Example {
                        what: "first".into(),
                        lines: vec!["etcdlock a -- b".into()]
                    },
                    Example {
                        what: "second".into(),
                        lines: vec!["etcdlock c".into()]
                    },
                    Example {
                        what: String::new(),
                        lines: vec!["etcdlock d".into()]
                    },
                ]
            );
            assert_eq!(
                got.environment,
                vec![
                    Block::Text("A flag wins.".into()),
                    table(&[("ETCDLOCK_X, ETCDCTL_X", "--x")])
                ]
            );
            assert_eq!(
                got.exit_status,
                vec![table(&[
                    ("0", "ok"),
                    ("2", "usage error (bad flag, missing value)"),
                    ("69", "etcd unavailable")
                ])]
            );
            assert_eq!(
                got.description,
                vec!["Safety: some prose that goes on.", "Another note."]
            );
        }

        #[test]
        fn exit_code_table_with_wrapped_rows() {
            let got = parse("Exit codes:\n  N    its own\n  70   lost,\n       stopped\n");
            assert_eq!(
                got.exit_status,
                vec![table(&[("N", "its own"), ("70", "lost, stopped")])]
            );
        }
    }
}

/// Man pages (man(7) macros) from a clap command.
mod man {
    use std::fmt::Write as _;

    use clap::{Arg, ArgAction, Command};

    use super::after_help::{self, AfterHelp, Block};

    /// The page `title` (`etcdlock` or `etcdlock-<sub>`) of `cmd`; `subs` are the subcommands
    /// when `cmd` is the root, `titles` every page.
    pub fn page(
        cmd: &Command,
        root: &Command,
        subs: Option<&[Command]>,
        title: &str,
        titles: &[String],
    ) -> String {
        let help = after_help::parse(&after_help_text(cmd));
        let mut out = header(title, root.get_version().unwrap_or_default());
        section(&mut out, "NAME");
        let about = one_line(&cmd.get_about().map(ToString::to_string).unwrap_or_default());
        let about = about.trim_end_matches('.');
        writeln!(out, "{} \\- {}", esc(title), prose(about)).unwrap();
        synopsis(&mut out, cmd, subs);
        description(&mut out, cmd, &help);
        if let Some(subs) = subs {
            commands(&mut out, subs);
        }
        options(&mut out, cmd);
        examples(&mut out, &help);
        environment(&mut out, cmd, subs.is_none(), &help);
        exit_status(&mut out, subs.is_none(), &help);
        see_also(&mut out, title, titles);
        out
    }

    fn after_help_text(cmd: &Command) -> String {
        cmd.get_after_long_help()
            .or(cmd.get_after_help())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn header(title: &str, version: &str) -> String {
        format!(
            ".\\\" Generated by `etcdlock man` from the command-line definition: edit\n\
             .\\\" src/bin/etcdlock/cli.rs, then run scripts/generate.\n\
             .TH {} 1 \"\" {}\n\
             .\\\" No hyphenation (HY: also after .YS), no justification: what is printed can be\n\
             .\\\" copied as it is.\n\
             .nr HY 0\n\
             .nh\n\
             .ad l\n",
            arg(&title.to_uppercase()),
            arg(&format!("etcdlock {version}")),
        )
    }

    fn section(out: &mut String, name: &str) {
        if name.contains(' ') {
            writeln!(out, ".SH {}", arg(name)).unwrap();
        } else {
            writeln!(out, ".SH {name}").unwrap();
        }
    }

    /// One `.SY` line per usage form of clap (`etcdlock run [OPTIONS] NAME -- COMMAND [ARGS...]`),
    /// of every subcommand on the root page; on a subcommand's page the first form has its
    /// `[OPTIONS]` spelled out with their values.
    fn synopsis(out: &mut String, cmd: &Command, subs: Option<&[Command]>) {
        section(out, "SYNOPSIS");
        match subs {
            Some(subs) => subs.iter().for_each(|sub| usage_forms(out, sub, false)),
            None => usage_forms(out, cmd, true),
        }
        out.push_str(".YS\n");
    }

    fn usage_forms(out: &mut String, cmd: &Command, spell_out: bool) {
        let usage = cmd.clone().render_usage().to_string();
        let forms: Vec<&str> = usage
            .lines()
            .map(|l| l.trim().trim_start_matches("Usage:").trim())
            .filter(|l| !l.is_empty())
            .collect();
        // Options that a form names itself (`-c 'SHELL COMMAND'`) are not spelled out in another.
        let named: Vec<&str> = forms.iter().flat_map(|f| f.split_whitespace()).collect();
        let bin = cmd.get_bin_name().unwrap_or(cmd.get_name());
        for (i, form) in forms.iter().enumerate() {
            let (program, rest) = match form.strip_prefix(bin) {
                Some(rest) => (bin, rest),
                None => form.split_once(' ').unwrap_or((form, "")),
            };
            writeln!(out, ".SY {}", arg(program)).unwrap();
            let words: Vec<String> = usage_words(rest)
                .iter()
                .map(|w| match *w {
                    "[OPTIONS]" if spell_out && i == 0 => option_list(cmd, &named),
                    w => usage_word(w),
                })
                .filter(|w| !w.is_empty())
                .collect();
            if !words.is_empty() {
                out.push_str(&line_start(&words.join(" ")));
                out.push('\n');
            }
        }
    }

    /// Words of a usage line; a quoted `'SHELL COMMAND'` is one word.
    fn usage_words(line: &str) -> Vec<&str> {
        let mut words = Vec::new();
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            let end = match rest.strip_prefix('\'').and_then(|r| r.find('\'')) {
                Some(close) => close + 2,
                None => rest.find(' ').unwrap_or(rest.len()),
            };
            words.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
        words
    }

    /// `[ARGS...]` -> `[\fIARGS\fR...]`: options and literal words bold, placeholders italic.
    fn usage_word(word: &str) -> String {
        let start = word.len() - word.trim_start_matches(['[', '<']).len();
        let core = word[start..].trim_end_matches([']', '>', '.']);
        let end = start + core.len();
        let mut out: String = word[..start].replace('<', "");
        if let Some(inner) = core.strip_prefix('\'').and_then(|c| c.strip_suffix('\'')) {
            write!(out, "\\(aq\\fI{}\\fR\\(aq", esc(inner).replace(' ', "\\ ")).unwrap();
        } else if core.starts_with('-') || core.chars().any(|c| c.is_ascii_lowercase()) {
            out.push_str(&bold(core));
        } else if !core.is_empty() {
            out.push_str(&italic(core));
        }
        out.push_str(&word[end..].replace('>', ""));
        out
    }

    /// `[\fB\-w\fR\ \fIDUR\fR]` for each option of `cmd` but help, version and `named`.
    fn option_list(cmd: &Command, named: &[&str]) -> String {
        let mut items = Vec::new();
        for arg in groups(cmd).into_iter().flat_map(|(_, args)| args) {
            let long = arg.get_long().map(|l| format!("--{l}"));
            let short = arg.get_short().map(|s| format!("-{s}"));
            let Some(flag) = short.clone().or(long.clone()) else {
                continue;
            };
            let is_named = [short, long]
                .into_iter()
                .flatten()
                .any(|f| named.contains(&f.as_str()));
            if arg.is_positional() || is_named || is_help_or_version(arg) {
                continue;
            }
            let mut item = format!("[{}", bold(&flag));
            if takes_values(arg) {
                write!(item, "\\ {}", value_names(arg)).unwrap();
            }
            item.push(']');
            if matches!(arg.get_action(), ArgAction::Append | ArgAction::Count) {
                item.push_str("...");
            }
            items.push(item);
        }
        items.join(" ")
    }

    fn description(out: &mut String, cmd: &Command, help: &AfterHelp) {
        section(out, "DESCRIPTION");
        let about = cmd
            .get_long_about()
            .or(cmd.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        let paragraphs = about.split("\n\n").map(one_line).map(|p| sentence_end(&p));
        for para in paragraphs.chain(help.description.iter().cloned()) {
            if !para.is_empty() {
                writeln!(out, ".PP\n{}", line_start(&prose(&para))).unwrap();
            }
        }
    }

    fn commands(out: &mut String, subs: &[Command]) {
        section(out, "COMMANDS");
        for sub in subs {
            let about = one_line(&sub.get_about().map(ToString::to_string).unwrap_or_default());
            let page = format!("etcdlock-{}", sub.get_name());
            writeln!(
                out,
                ".TP\n{}\n{} See {}(1).",
                bold(&format!("etcdlock {}", sub.get_name())),
                line_start(&prose(&sentence_end(&about))),
                bold(&page)
            )
            .unwrap();
        }
    }

    /// The arguments by help heading, as `--help` shows them: positional arguments, options
    /// without a heading, then each heading in the order of its first argument.
    fn groups(cmd: &Command) -> Vec<(String, Vec<&Arg>)> {
        let shown = |a: &&Arg| !a.is_hide_set() && !a.is_hide_long_help_set();
        let mut positionals: Vec<&Arg> = cmd
            .get_positionals()
            .filter(|a| a.get_help_heading().is_none())
            .filter(shown)
            .collect();
        positionals.sort_by_key(|a| a.get_index().unwrap_or(0));
        let mut groups = vec![("Arguments".to_owned(), positionals)];
        let plain = cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_help_heading().is_none());
        groups.push(("Options".to_owned(), plain.filter(shown).collect()));
        for arg in cmd.get_arguments() {
            if let Some(heading) = arg.get_help_heading() {
                if !groups.iter().any(|(h, _)| h == heading) {
                    let args = cmd
                        .get_arguments()
                        .filter(|a| a.get_help_heading() == Some(heading));
                    groups.push((heading.to_owned(), args.filter(shown).collect()));
                }
            }
        }
        for (_, args) in groups.iter_mut().skip(1) {
            args.sort_by_key(|a| option_sort_key(a));
        }
        groups.retain(|(_, args)| !args.is_empty());
        groups
    }

    /// clap's order within a heading: display order, then short flag, long flag, name.
    fn option_sort_key(arg: &Arg) -> (usize, String) {
        let key = match (arg.get_short(), arg.get_long()) {
            (Some(s), _) => {
                let case = if s.is_ascii_lowercase() { '0' } else { '1' };
                format!("{}{case}", s.to_ascii_lowercase())
            }
            (None, Some(l)) => l.to_owned(),
            (None, None) => format!("{{{}", arg.get_id()),
        };
        (arg.get_display_order(), key)
    }

    fn options(out: &mut String, cmd: &Command) {
        let groups = groups(cmd);
        if groups.is_empty() {
            return;
        }
        section(out, "OPTIONS");
        let headings = groups.len() > 1 || groups[0].0 != "Options";
        for (heading, args) in &groups {
            if headings {
                writeln!(out, ".SS {}", arg(heading)).unwrap();
            }
            args.iter().for_each(|a| option(out, a));
        }
    }

    fn option(out: &mut String, a: &Arg) {
        writeln!(out, ".TP\n{}", line_start(&option_tag(a))).unwrap();
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        for (i, para) in help.split("\n\n").map(one_line).enumerate() {
            if i > 0 {
                out.push_str(".IP\n");
            }
            writeln!(out, "{}", line_start(&prose(&para))).unwrap();
        }
        let mut notes = Vec::new();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if takes_values(a) && !a.is_hide_default_value_set() && !defaults.is_empty() {
            notes.push(format!("[default: {}]", defaults.join(", ")));
        }
        if let Some(env) = a.get_env().filter(|_| !a.is_hide_env_set()) {
            notes.push(format!("[env: {}]", env.to_string_lossy()));
        }
        let values: Vec<_> = a
            .get_possible_values()
            .into_iter()
            .filter(|v| !v.is_hide_set())
            .collect();
        let values = if a.is_hide_possible_values_set() || !takes_values(a) {
            Vec::new()
        } else {
            values
        };
        if !values.is_empty() && values.iter().all(|v| v.get_help().is_none()) {
            let names: Vec<&str> = values.iter().map(|v| v.get_name()).collect();
            notes.push(format!("[possible values: {}]", names.join(", ")));
        }
        if !notes.is_empty() {
            writeln!(out, ".IP\n{}", line_start(&esc(&notes.join(" ")))).unwrap();
        }
        if values.iter().any(|v| v.get_help().is_some()) {
            out.push_str(".IP\nPossible values:\n.RS\n");
            for v in &values {
                let help = v
                    .get_help()
                    .map(|h| sentence_end(&one_line(&h.to_string())));
                writeln!(
                    out,
                    ".TP\n{}\n{}",
                    bold(v.get_name()),
                    line_start(&prose(&help.unwrap_or_default()))
                )
                .unwrap();
            }
            out.push_str(".RE\n");
        }
    }

    /// `\fB\-w\fR, \fB\-\-timeout\fR \fIDUR\fR`, or `\fINAME\fR` for a positional argument.
    fn option_tag(a: &Arg) -> String {
        if a.is_positional() {
            let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
            return format!("{}{}", value_names(a), if many { "..." } else { "" });
        }
        let mut flags: Vec<String> = Vec::new();
        flags.extend(a.get_short().map(|s| format!("-{s}")));
        flags.extend(
            a.get_visible_short_aliases()
                .unwrap_or_default()
                .iter()
                .map(|s| format!("-{s}")),
        );
        flags.extend(a.get_long().map(|l| format!("--{l}")));
        flags.extend(
            a.get_visible_aliases()
                .unwrap_or_default()
                .iter()
                .map(|l| format!("--{l}")),
        );
        let mut tag = flags.iter().map(|f| bold(f)).collect::<Vec<_>>().join(", ");
        if takes_values(a) {
            let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
            let names = value_names(a);
            tag.push(' ');
            tag.push_str(&if optional {
                format!("[{names}]")
            } else {
                names
            });
        }
        if matches!(a.get_action(), ArgAction::Count) {
            tag.push_str("...");
        }
        tag
    }

    fn value_names(a: &Arg) -> String {
        match a.get_value_names() {
            Some(names) if !names.is_empty() => names
                .iter()
                .map(|n| italic(n.as_str()))
                .collect::<Vec<_>>()
                .join(" "),
            _ => italic(&a.get_id().as_str().to_uppercase()),
        }
    }

    fn takes_values(a: &Arg) -> bool {
        a.is_positional() || a.get_action().takes_values()
    }

    fn is_help_or_version(a: &Arg) -> bool {
        matches!(
            a.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        )
    }

    /// Each example: what it does as a paragraph, its command lines indented and in no-fill mode,
    /// so that they are printed, and copied, exactly as written.
    fn examples(out: &mut String, help: &AfterHelp) {
        if help.examples.is_empty() {
            return;
        }
        section(out, "EXAMPLES");
        for example in &help.examples {
            out.push_str(".PP\n");
            if !example.what.is_empty() {
                writeln!(out, "{}", line_start(&prose(&example.what))).unwrap();
            }
            if !example.lines.is_empty() {
                out.push_str(".RS 4\n.nf\n");
                for line in &example.lines {
                    writeln!(out, "{}", line_start(&esc(line))).unwrap();
                }
                out.push_str(".fi\n.RE\n");
            }
        }
    }

    /// The help text's environment section, the variables of options that have one, and on a
    /// subcommand's page where to find the global options' variables.
    fn environment(out: &mut String, cmd: &Command, is_sub: bool, help: &AfterHelp) {
        let mut rows: Vec<(String, String)> = Vec::new();
        for a in cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_hide_env_set())
        {
            if let Some(env) = a.get_env() {
                let name = match (a.get_long(), a.get_short()) {
                    (Some(l), _) => format!("--{l}"),
                    (None, Some(s)) => format!("-{s}"),
                    (None, None) => a.get_value_names().and_then(|n| n.first()).map_or_else(
                        || a.get_id().as_str().to_uppercase(),
                        |n| n.as_str().to_owned(),
                    ),
                };
                rows.push((
                    env.to_string_lossy().into_owned(),
                    format!("Used when {name} is not given."),
                ));
            }
        }
        let global = cmd
            .get_arguments()
            .any(|a| a.is_global_set() && !a.is_hide_set());
        if help.environment.is_empty() && rows.is_empty() && !(is_sub && global) {
            return;
        }
        section(out, "ENVIRONMENT");
        blocks(out, &help.environment);
        blocks(out, &[Block::Table(rows)]);
        if is_sub && global {
            writeln!(
                out,
                ".PP\nThe global options also come from environment variables: see ENVIRONMENT in {}(1).",
                bold("etcdlock")
            )
            .unwrap();
        }
    }

    fn exit_status(out: &mut String, is_sub: bool, help: &AfterHelp) {
        if help.exit_status.is_empty() && !is_sub {
            return;
        }
        section(out, "EXIT STATUS");
        if help.exit_status.is_empty() {
            writeln!(out, ".PP\nSee EXIT STATUS in {}(1).", bold("etcdlock")).unwrap();
        }
        blocks(out, &help.exit_status);
    }

    /// Paragraphs, and lists as tagged paragraphs (tags bold, indented past short tags).
    fn blocks(out: &mut String, blocks: &[Block]) {
        for block in blocks {
            match block {
                Block::Text(text) => writeln!(out, ".PP\n{}", line_start(&prose(text))).unwrap(),
                Block::Table(rows) => {
                    let widest = rows
                        .iter()
                        .map(|(k, _)| k.chars().count())
                        .max()
                        .unwrap_or(0);
                    let width = if widest + 2 <= 12 {
                        format!(" {}n", widest.max(6) + 3)
                    } else {
                        String::new()
                    };
                    // Rows follow each other without blank lines (.PD 0 after the first).
                    for (i, (key, what)) in rows.iter().enumerate() {
                        if i == 1 {
                            out.push_str(".PD 0\n");
                        }
                        writeln!(
                            out,
                            ".TP{width}\n{}\n{}",
                            line_start(&bold(key)),
                            line_start(&prose(what))
                        )
                        .unwrap();
                    }
                    if rows.len() > 1 {
                        out.push_str(".PD\n");
                    }
                }
            }
        }
    }

    fn see_also(out: &mut String, title: &str, titles: &[String]) {
        section(out, "SEE ALSO");
        let mut refs: Vec<String> = titles
            .iter()
            .filter(|t| *t != title)
            .map(|t| format!("{}(1)", bold(t)))
            .collect();
        refs.push(format!("{}(1)", bold("etcdctl")));
        refs.push(format!("{}(1)", bold("flock")));
        writeln!(out, "{}", refs.join(", ")).unwrap();
    }

    fn one_line(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn sentence_end(text: &str) -> String {
        let text = text.trim();
        if text.is_empty() || text.ends_with(['.', ':', '!', '?']) {
            text.to_owned()
        } else {
            format!("{text}.")
        }
    }

    fn bold(text: &str) -> String {
        format!("\\fB{}\\fR", esc(text))
    }

    fn italic(text: &str) -> String {
        format!("\\fI{}\\fR", esc(text))
    }

    /// A macro argument: quoted, escaped.
    fn arg(text: &str) -> String {
        format!("\"{}\"", esc(text).replace('"', "\\(dq"))
    }

    /// Text for a fill-mode paragraph: escaped, `code` in bold.
    fn prose(text: &str) -> String {
        let parts: Vec<&str> = text.split('`').collect();
        if parts.len() < 3 || parts.len().is_multiple_of(2) {
            return esc(text);
        }
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| if i % 2 == 1 { bold(p) } else { esc(p) })
            .collect()
    }

    /// A text line that starts with `.` or `'` would be a request: `\&` makes it text.
    fn line_start(line: &str) -> String {
        if line.starts_with(['.', '\'']) {
            format!("\\&{line}")
        } else {
            line.to_owned()
        }
    }

    /// Escape text for roff so that it prints as the same ASCII characters it is written with
    /// (groff's UTF-8 output would otherwise turn - into a hyphen, ' and ` into curly quotes, ^ and
    /// ~ into modifier letters), and anything else as its Unicode character.
    pub fn esc(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\e"),
                '-' => out.push_str("\\-"),
                '\'' => out.push_str("\\(aq"),
                '`' => out.push_str("\\(ga"),
                '^' => out.push_str("\\(ha"),
                '~' => out.push_str("\\(ti"),
                '\t' => out.push(' '),
                c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
                c if c.is_ascii_control() => {}
                c => write!(out, "\\[u{:04X}]", u32::from(c)).unwrap(),
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn escapes() {
            assert_eq!(
                esc(r"a\b-c 'd' `e` ^~ é"),
                r"a\eb\-c \(aqd\(aq \(gae\(ga \(ha\(ti \[u00E9]"
            );
            assert_eq!(line_start(".hidden"), r"\&.hidden");
            assert_eq!(prose("see `status`"), r"see \fBstatus\fR");
            assert_eq!(usage_word("[ARGS...]"), r"[\fIARGS\fR...]");
            assert_eq!(usage_word("<NAME>"), r"\fINAME\fR");
            assert_eq!(usage_word("--"), r"\fB\-\-\fR");
            assert_eq!(
                usage_word("'SHELL COMMAND'"),
                r"\(aq\fISHELL\ COMMAND\fR\(aq"
            );
            assert_eq!(usage_words("a 'b c' d"), vec!["a", "'b c'", "d"]);
        }
    }
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
