//! The module graph stays acyclic (docs/architecture.md draws it): every `crate::` path in the
//! library's and the binary's sources is a dependency of the module it appears in on the module
//! it names, and no chain of them may lead back. Comments and doc comments do not count.
//!
//! And the binary stays thin where the promise is at stake: nothing in `src/bin/` grants, keeps
//! alive, revokes or lets go of a lease, writes a lock's keys, spawns the command or arms its
//! guard itself; it calls the library's operations named for what they do ([`MECHANICS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`lock`, `process::tree`) → source text, for the `.rs` files under `dir`.
fn modules(dir: &Path, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if stem != "bin" {
                out.extend(modules(&path, &format!("{prefix}{stem}::")));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = match stem.as_str() {
                "mod" => prefix.trim_end_matches("::").to_owned(),
                "lib" | "main" => continue,
                _ => format!("{prefix}{stem}"),
            };
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The code of `text` without comments (line comments, doc comments) and without its unit-test
/// module (tests may use anything); code after that module counts.
fn code(text: &str) -> String {
    let text = without_tests(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without its `#[cfg(test)] mod tests { .. }` (up to the brace that closes it; to the end
/// if none does).
fn without_tests(text: &str) -> String {
    let Some(start) = text.find("#[cfg(test)]\nmod tests") else {
        return text.to_owned();
    };
    let mut depth = 0usize;
    let mut end = text.len();
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    format!("{}{}", &text[..start], &text[end..])
}

/// The `crate::a::b...` paths in `code`, `use crate::{x, y::z}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    paths.push(item.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches(':').to_owned());
    }
    paths
}

/// The dependency graph: module → the modules it names.
fn graph(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    mods.iter()
        .map(|(name, text)| {
            let deps = crate_paths(&code(text))
                .into_iter()
                .filter_map(|path| {
                    // The longest module that the path starts with.
                    mods.keys()
                        .filter(|m| path == **m || path.starts_with(&format!("{m}::")))
                        .max_by_key(|m| m.len())
                        .cloned()
                })
                .filter(|dep| dep != name && !name.starts_with(&format!("{dep}::")))
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// Every cycle's modules (strongly connected components with more than one module).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for d in graph.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reaches(m))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for m in graph.keys() {
        let mut scc: Vec<String> = graph
            .keys()
            .filter(|o| *o != m && reach[m].contains(*o) && reach[*o].contains(m))
            .cloned()
            .collect();
        if scc.is_empty() {
            continue;
        }
        scc.push(m.clone());
        scc.sort();
        if !found.contains(&scc) {
            found.push(scc);
        }
    }
    found
}

/// The module graph of the sources under `dir` has no cycle.
fn assert_acyclic(what: &str, dir: &Path) {
    let mods = modules(dir, "");
    assert!(
        mods.len() > 5,
        "{what}: no modules found in {}",
        dir.display()
    );
    let g = graph(&mods);
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "{what}: import cycles (modules that reach each other): {found:?}\nthe graph: {g:#?}"
    );
}

#[test]
fn the_library_module_graph_has_no_cycles() {
    assert_acyclic(
        "library",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    );
}

#[test]
fn the_binary_module_graph_has_no_cycles() {
    assert_acyclic(
        "binary",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/etcdlock"),
    );
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mods: BTreeMap<String, String> = [
        ("a", "use crate::b::X;"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::{a, d};\n// crate::e is a comment"),
        ("d", ""),
        ("e", "use crate::d;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let g = graph(&mods);
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    assert!(g["c"].contains("d") && !g["c"].contains("e"));
}

/// The library's mechanics that only the library may call, as they appear in code that calls
/// them (a `use` of them shows too), with the operation the binary calls instead. Nothing is
/// allowed in `src/bin/`, without exception. (`hooks` runs the `--on-*` hooks with
/// `std::process::Command` after the lock is released: not a mechanic of the lock, so not
/// listed; the guard's `arm` / `disarm` / `lose` / `start` are crate-private, which the compiler
/// enforces, and are listed so that making them public again fails here; its `extend` is too, but
/// the name is every `Vec`'s.)
const MECHANICS: &[(&str, &str)] = &[
    ("Lease::grant", "runner::open_session, handle::acquire"),
    ("Lease::attach", "Handle::attach"),
    ("lease_grant", "runner::open_session"),
    ("lease_keep_alive", "a Session, Handle::renew"),
    ("session::keep_alive", "a Session (runner::open_session)"),
    ("Session::new", "runner::open_session"),
    (
        "Session::from_lease",
        "runner::open_session, Attached::keep_alive",
    ),
    (".detach()", "runner::hold_handle, handle::acquire"),
    (
        ".close()",
        "runner::hold / runner::release (Session::close revokes)",
    ),
    (
        ".end()",
        "runner::release (Session::end and Lease::end revoke)",
    ),
    (
        ".revoke(",
        "Undelivered::abandon, ResignRequest::withdraw, Handle::release",
    ),
    ("lease_revoke", "inspect::break_holder, runner::release"),
    ("inspect::revoke", "inspect::break_holder"),
    (
        "lock::enqueue",
        "wait::wait (through runner::hold, handle::acquire)",
    ),
    ("mark_held", "handle::acquire"),
    ("lock::mark(", "wait::wait"),
    (
        "lock::release",
        "runner::release, Undelivered::abandon, Handle::release",
    ),
    ("release_with_records", "runner::release"),
    ("spawn::spawn", "runner::run_command (through runner::hold)"),
    ("supervise::spawn", "runner::run_command"),
    ("supervise::supervise", "runner::run_command"),
    ("spawn::reap", "runner::run_command"),
    ("Guard::start", "runner::open_session"),
    (".arm(", "runner::run_command"),
    (".disarm(", "runner::run_command"),
    (".lose(", "the session's keep-alive, the own-key watch"),
];

/// Every `(module, line, mechanic, instead)` in `mods` (comments and unit tests aside).
fn mechanics_called(
    mods: &BTreeMap<String, String>,
) -> Vec<(String, String, &'static str, &'static str)> {
    let mut found = Vec::new();
    for (name, text) in mods {
        for line in code(text).lines() {
            for (mechanic, instead) in MECHANICS {
                if line.contains(mechanic) {
                    found.push((name.clone(), line.trim().to_owned(), *mechanic, *instead));
                }
            }
        }
    }
    found
}

#[test]
fn nothing_in_the_binary_grants_revokes_spawns_or_arms() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/etcdlock");
    let mut mods = modules(&dir, "");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    mods.insert("main".to_owned(), main);
    assert!(mods.len() > 5 && mods.contains_key("handles") && mods.contains_key("run"));
    let found = mechanics_called(&mods);
    assert!(
        found.is_empty(),
        "src/bin/ calls the library's mechanics itself (module, line, mechanic, what to call instead):\n{found:#?}"
    );
}

#[test]
fn the_mechanics_check_finds_a_call() {
    let mods: BTreeMap<String, String> = [
        ("a", "let lease = Lease::grant(&client, ttl).await?;\n// Lease::grant in a comment"),
        ("b", "let _ = lease.revoke(&client).await;"),
        ("c", "let ok = etcdlock::handle::acquire(&client, params).await?;"),
        (
            "d",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { Session::new(); }\n}\nfn h() { x.arm(t) }",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let found: Vec<(String, &str)> = mechanics_called(&mods)
        .into_iter()
        .map(|(m, _, mechanic, _)| (m, mechanic))
        .collect();
    assert_eq!(
        found,
        vec![
            ("a".to_owned(), "Lease::grant"),
            ("b".to_owned(), ".revoke("),
            ("d".to_owned(), ".arm(")
        ]
    );
}
