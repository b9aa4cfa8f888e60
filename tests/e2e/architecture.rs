//! The module graph stays acyclic (docs/architecture.md draws it): every `crate::` path in the
//! library's and the binary's sources is a dependency of the module it appears in on the module
//! it names, and no chain of them may lead back. Comments and doc comments do not count.

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
/// module (tests may use anything).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
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
