//! The rules that keep the architecture easy to see (docs/architecture.md), read off
//! the source tree:
//! - no import cycle between the library's top-level modules, nor between the files
//!   of one module (a module's root file, which declares and drives its children, is
//!   not one of them);
//! - `oci`, the vocabulary, imports nothing else from the crate;
//! - the library knows nothing of the terminal or of argument parsing: `clap` and
//!   `indicatif` appear only under `src/cli/`;
//! - no source file is over 600 lines.
//!
//! References are `crate::`, `super::` and `self::` paths in code (comments and doc
//! comments are not imports), resolved to the file that defines the module they name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// A source file and the module path it defines (`src/oci/record.rs` -> `oci::record`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    code: String,
    lines: usize,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn source_files() -> Vec<SourceFile> {
    let root = src_dir();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap();
                let mut module: Vec<String> = rel
                    .with_extension("")
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|m| m == "mod") {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                out.push(SourceFile {
                    lines: text.lines().count(),
                    code: strip_comments(&text),
                    module,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The text without `//` comments (line, doc and inner doc comments) and without
/// the contents of string literals, so only code is searched.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = '\0';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                    kept.push('"');
                }
                prev = if prev == '\\' && c == '\\' { '\0' } else { c };
            } else if c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            } else {
                if c == '"' && prev != '\'' {
                    in_str = true;
                }
                kept.push(c);
                prev = c;
            }
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every module path referenced from `file`, absolute (`crate::a::b`, `super::c`,
/// `self::d` and the groups `{x, y::z}` under them), as written: the caller resolves
/// them to files.
fn references(file: &SourceFile) -> Vec<Vec<String>> {
    let code = &file.code;
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("::") {
        // Find the path this `::` belongs to: walk back over identifiers and `::`.
        let mut s = start;
        while s > 0
            && (bytes[s - 1].is_ascii_alphanumeric()
                || bytes[s - 1] == b'_'
                || bytes[s - 1] == b':')
        {
            s -= 1;
        }
        if s > 0 && bytes[s - 1] == b'$' {
            continue;
        }
        let head = &code[s..];
        // Only the first `::` of a path starts a reference.
        if code[s..start].contains("::") {
            continue;
        }
        let first = &code[s..start];
        let base: Vec<String> = match first {
            "crate" => Vec::new(),
            "super" => {
                // `super::super::x` climbs further.
                let mut b = self_module(file);
                b.pop();
                let mut rest = &head[first.len() + 2..];
                while let Some(r) = rest.strip_prefix("super::") {
                    b.pop();
                    rest = r;
                }
                expand(&b, rest, &mut out);
                continue;
            }
            "self" => self_module(file),
            _ => continue,
        };
        expand(&base, &head[first.len() + 2..], &mut out);
    }
    out
}

/// The module `self` names in `file` (for a `mod.rs` or a crate root, the module
/// itself; for `a/b.rs`, `a::b`).
fn self_module(file: &SourceFile) -> Vec<String> {
    let name = file.path.file_name().unwrap().to_string_lossy();
    if name == "lib.rs" || name == "main.rs" {
        Vec::new()
    } else {
        file.module.clone()
    }
}

/// `rest` after a base module: `a::b::C`, or `{a::x, b}`; pushes base + each path.
fn expand(base: &[String], rest: &str, out: &mut Vec<Vec<String>>) {
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        for part in split_top(&group[..end]) {
            expand(base, part.trim(), out);
        }
        return;
    }
    let mut path = base.to_vec();
    let mut rest = rest;
    loop {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        path.push(rest[..len].to_string());
        rest = &rest[len..];
        match rest.strip_prefix("::") {
            Some(r) if r.starts_with('{') => return expand(&path, r, out),
            Some(r) => rest = r,
            None => break,
        }
    }
    out.push(path);
}

/// Splits a `use` group on its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The file module a path lands in: its longest prefix that a file defines.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// A cycle in `graph`, as the nodes along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Library files (not the binary's `cli/` and `main.rs`) and the file modules they
/// reference, resolved.
fn library_edges() -> Vec<(SourceFile, Vec<Vec<String>>)> {
    let files: Vec<SourceFile> = source_files()
        .into_iter()
        .filter(|f| f.module.first().is_none_or(|m| m != "cli" && m != "main"))
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    files
        .into_iter()
        .map(|f| {
            let targets: BTreeSet<Vec<String>> = references(&f)
                .iter()
                .filter_map(|p| resolve(p, &modules))
                .filter(|t| *t != f.module)
                .collect();
            (f, targets.into_iter().collect())
        })
        .collect()
}

#[test]
fn no_cycle_between_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, targets) in library_edges() {
        let Some(from) = f.module.first() else {
            continue;
        };
        for t in targets {
            if t[0] != *from {
                graph.entry(from.clone()).or_default().insert(t[0].clone());
            }
        }
    }
    assert!(graph.len() > 5, "the graph was not read: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_cycle_between_files_of_one_module() {
    // Per module directory: its children (files, or subdirectories taken whole) and
    // which of the others each one references.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (f, targets) in library_edges() {
        for depth in 0..f.module.len() {
            let parent = &f.module[..depth];
            let child = &f.module[depth];
            for t in &targets {
                if t.len() > depth && t[..depth] == *parent && t[depth] != *child {
                    graphs
                        .entry(parent.to_vec())
                        .or_default()
                        .entry(child.clone())
                        .or_default()
                        .insert(t[depth].clone());
                }
            }
        }
    }
    for (module, graph) in &graphs {
        if module.is_empty() {
            continue; // the top level, checked above
        }
        if let Some(cycle) = find_cycle(graph) {
            panic!(
                "import cycle between the files of {}: {}",
                module.join("::"),
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_oci_core_is_a_leaf() {
    let mut outside = Vec::new();
    for (f, targets) in library_edges() {
        if f.module.first().is_some_and(|m| m == "oci") {
            for t in targets.iter().filter(|t| t[0] != "oci") {
                outside.push(format!("{} uses {}", f.path.display(), t.join("::")));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "oci must import nothing else from the crate:\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_library_knows_no_terminal_or_argument_parser() {
    let mut found = Vec::new();
    for f in source_files() {
        if f.module.first().is_some_and(|m| m == "cli" || m == "main") {
            continue;
        }
        for word in [
            "clap::",
            "indicatif",
            "interrupt::requested",
            "std::process::exit",
        ] {
            if f.code.contains(word) {
                found.push(format!("{}: {word}", f.path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "CLI concerns in the library:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_the_limit() {
    let long: Vec<String> = source_files()
        .iter()
        .filter(|f| f.lines > MAX_LINES)
        .map(|f| format!("{}: {} lines", f.path.display(), f.lines))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_sees_what_the_rules_need() {
    // The checks above pass trivially if references are not read: check the reader
    // on known shapes.
    let file = SourceFile {
        path: src_dir().join("a/b.rs"),
        module: vec!["a".into(), "b".into()],
        code: strip_comments(
            "use crate::x::{y::Z, w};\nuse super::c::D;\n// use crate::comment::Q;\nlet s = \"crate::string::S\";\nfn f() { crate::p::q(); }\n",
        ),
        lines: 5,
    };
    let refs = references(&file);
    let want: Vec<Vec<String>> = [
        vec!["x", "y", "Z"],
        vec!["x", "w"],
        vec!["a", "c", "D"],
        vec!["p", "q"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(refs, want);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// Test files in a folder of `tests/` are modules of a test binary: one that its
/// folder's `mod.rs` does not declare would silently never run.
#[test]
fn every_test_module_is_declared() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut undeclared = Vec::new();
    let mut folders = 0;
    for entry in std::fs::read_dir(&tests).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        folders += 1;
        let root = std::fs::read_to_string(dir.join("mod.rs"))
            .unwrap_or_else(|e| panic!("{}: no mod.rs ({e})", dir.display()));
        let declared: BTreeSet<&str> = root
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("pub ")
                    .unwrap_or(l)
                    .strip_prefix("mod ")?
                    .strip_suffix(';')
            })
            .collect();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.extension().is_some_and(|e| e == "rs")
                && stem != "mod"
                && !declared.contains(stem.as_str())
            {
                undeclared.push(path.display().to_string());
            }
        }
    }
    assert!(
        folders >= 4,
        "found {folders} test folders: is this tests/?"
    );
    assert!(
        undeclared.is_empty(),
        "test files no mod.rs declares (they never run):\n{}",
        undeclared.join("\n")
    );
}
