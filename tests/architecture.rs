//! The structural invariants ARCHITECTURE.md states, checked by reading `src/`: the modules form
//! layers (no import cycle, so nothing imports from a layer above it), only `src/shell` names the
//! JavaScript bindings, the core never reads a clock, `view` knows nothing of KV, and a file's
//! production part stays under ~500 lines unless its opening lines say why it reads better whole.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(path relative to src/, production text)`: what comes before a file's `#[cfg(test)]` tests;
/// files that are tests themselves (`tests.rs`, `tests/`, the serde reference parser) give none.
fn production_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let test_only = rel.ends_with("tests.rs")
            || rel.contains("/tests/")
            || rel.ends_with("parse_reference.rs")
            || rel == "testkit.rs";
        if test_only {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let production = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        out.push((rel, production));
    }
    out
}

/// The top-level module a file belongs to (`service/owner.rs` → `service`, `lib.rs` → `lib`).
fn module_of(rel: &str) -> String {
    rel.split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_string()
}

/// Lines that are code, not comments (a `//` line or a doc line says nothing of dependencies).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Top-level module → the top-level modules its production code names as `crate::x`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in production_sources() {
        let from = module_of(&rel);
        let deps = graph.entry(from.clone()).or_default();
        for line in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // `crate::{a, b}` groups are not used in this crate; a name is a module or a
                // root item (`crate::SOMETHING`), which belongs to `lib`.
                let is_module = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("src")
                    .join(&name)
                    .exists()
                    || Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("src")
                        .join(format!("{name}.rs"))
                        .exists();
                let to = if is_module { name } else { "lib".to_string() };
                if to != from {
                    deps.insert(to);
                }
            }
        }
    }
    graph
}

#[test]
fn modules_form_layers_without_cycles() {
    let graph = dependencies();
    // Kahn's algorithm: a module is placed once everything it depends on is placed.
    let mut placed: Vec<String> = Vec::new();
    let mut left: BTreeMap<String, BTreeSet<String>> = graph.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| {
                deps.iter()
                    .all(|d| placed.contains(d) || !graph.contains_key(d) || d == "lib")
            })
            .map(|(m, _)| m.clone())
            .collect();
        assert!(
            !ready.is_empty(),
            "an import cycle among {:?}",
            left.iter()
                .map(|(m, d)| format!("{m} -> {d:?}"))
                .collect::<Vec<_>>()
        );
        for m in ready {
            left.remove(&m);
            placed.push(m);
        }
    }
    // The arrows the issue named, checked by name too.
    let forbidden = [
        ("service", "owners"),
        ("config", "forge"),
        ("cache", "service"),
        ("view", "cache"),
        ("view", "service"),
        ("model", "service"),
        ("forge", "service"),
        ("listing", "service"),
        ("listing", "http"),
    ];
    for (from, to) in forbidden {
        assert!(
            !graph.get(from).is_some_and(|d| d.contains(to)),
            "{from} imports {to}: {:?}",
            graph.get(from)
        );
    }
    // Only the root wires the shell in.
    for (m, deps) in &graph {
        assert!(
            m == "lib" || !deps.contains("shell"),
            "{m} imports the shell"
        );
    }
}

/// File → the files (not `mod.rs`/`lib.rs`, which only declare and re-export) its production
/// code imports from: `super::name` for a sibling `name.rs`, and `crate::a::b` for `a/b.rs`.
fn file_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let sources = production_sources();
    let files: BTreeSet<String> = sources
        .iter()
        .map(|(rel, _)| rel.clone())
        .filter(|rel| !rel.ends_with("mod.rs") && rel != "lib.rs")
        .collect();
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &sources {
        if !files.contains(rel) {
            continue;
        }
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        let deps = graph.entry(rel.clone()).or_default();
        let mut add = |path: String| {
            if files.contains(&path) && path != *rel {
                deps.insert(path);
            }
        };
        for line in code_lines(text) {
            for (i, _) in line.match_indices("super::") {
                let rest = &line[i + "super::".len()..];
                let sibling = |name: &str| {
                    if dir.is_empty() {
                        format!("{name}.rs")
                    } else {
                        format!("{dir}/{name}.rs")
                    }
                };
                if let Some(group) = rest.strip_prefix('{') {
                    // `super::{a::X, b::{self, Y}, Z}`: the names followed by `::`.
                    let group = group.split('}').next().unwrap_or("");
                    for part in group.split(',') {
                        let name = ident(part.trim_start());
                        if part.trim_start()[name.len()..].starts_with("::") {
                            add(sibling(&name));
                        }
                    }
                } else {
                    let name = ident(rest);
                    if rest[name.len()..].starts_with("::") {
                        add(sibling(&name));
                    }
                }
            }
            for (i, _) in line.match_indices("crate::") {
                let mut path = String::new();
                for seg in line[i + "crate::".len()..].split("::") {
                    let name = ident(seg);
                    if name.is_empty() {
                        break;
                    }
                    path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}/{name}")
                    };
                    add(format!("{path}.rs"));
                    // The path ended inside this segment (`Name;`, `Name,`, `{`).
                    if name.len() != seg.len() {
                        break;
                    }
                }
            }
        }
    }
    graph
}

/// No two files import from each other, directly or through others: a concept's file can be
/// read knowing only the files below it.
#[test]
fn files_import_without_cycles() {
    let graph = file_dependencies();
    assert!(
        graph
            .get("owners/revalidate.rs")
            .is_some_and(|d| d.contains("owners/directory.rs")),
        "the graph sees `use super::directory::…`: {:?}",
        graph.get("owners/revalidate.rs")
    );
    // Depth-first search for a back edge; the path to it is the cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut state, &mut Vec::new());
        assert!(
            cycle.is_none(),
            "an import cycle between files: {:?}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
}

#[test]
fn only_the_shell_names_javascript() {
    for (rel, text) in production_sources() {
        if rel.starts_with("shell/") || rel == "lib.rs" {
            continue;
        }
        for (n, line) in code_lines(&text).enumerate() {
            for word in [
                "worker::",
                "js_sys",
                "wasm_bindgen",
                "web_sys",
                "use worker",
            ] {
                assert!(
                    !line.contains(word),
                    "src/{rel}: `{word}` outside src/shell (code line {n}): {line}"
                );
            }
        }
    }
}

#[test]
fn the_core_never_reads_a_clock() {
    for (rel, text) in production_sources() {
        if rel.starts_with("shell/") {
            continue;
        }
        for line in code_lines(&text) {
            for word in [
                "SystemTime",
                "Instant::now",
                "Date::now",
                "Date::new",
                "chrono::",
            ] {
                assert!(
                    !line.contains(word),
                    "src/{rel} reads a clock (`{word}`): {line}"
                );
            }
        }
    }
}

#[test]
fn view_and_listing_know_nothing_of_kv_or_upstream() {
    for (rel, text) in production_sources() {
        if !(rel == "view.rs" || rel.starts_with("listing/")) {
            continue;
        }
        for line in code_lines(&text) {
            for word in [
                "crate::cache",
                "Store",
                "Transport",
                "crate::forge",
                "crate::service",
            ] {
                assert!(!line.contains(word), "src/{rel} names `{word}`: {line}");
            }
        }
    }
}

#[test]
fn files_hold_one_concept_of_readable_length() {
    const LIMIT: usize = 500;
    let mut long = Vec::new();
    for (rel, text) in production_sources() {
        let lines = text.lines().count();
        // The file's opening doc says why it reads better whole.
        let justified = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .any(|l| l.contains("Whole:"));
        if lines > LIMIT && !justified {
            long.push(format!("src/{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "split these along their concepts, or say at the top (`//! Whole: …`) why one reads better whole: {long:?}"
    );
}
