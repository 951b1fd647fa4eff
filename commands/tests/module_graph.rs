//! The shape of the commands crate's sources: a command file (`src/cmd/*.rs`)
//! names no other command file, and no module of the crate reaches itself
//! again through the modules it names (`crate::…` and `super::…` paths,
//! in `use` lines or anywhere else).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("read src").map(|e| e.expect("dir entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file (`cmd::add_bank`, `migrate` for
/// `migrate/mod.rs`, empty for `lib.rs`).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts.last().is_some_and(|l| l == "mod" || l == "lib" || l == "main") {
        parts.pop();
    }
    parts
}

/// Expands one use tree (`a::{b, c::{self as d}}`) into its paths, each
/// with the name it brings into scope.
fn use_tree(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_tree(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        use_tree(prefix, &inner[start..], out);
        return;
    }
    if let Some((head, rest)) = tree.split_once("::") {
        let mut p = prefix.to_vec();
        p.push(head.trim().to_string());
        use_tree(&p, rest, out);
        return;
    }
    let (name, alias) = match tree.split_once(" as ") {
        Some((n, a)) => (n.trim(), a.trim()),
        None => (tree, tree),
    };
    match name {
        "" | "*" => {}
        "self" => out.push((prefix.to_vec(), alias.to_string())),
        _ => {
            let mut p = prefix.to_vec();
            p.push(name.to_string());
            out.push((p, alias.to_string()));
        }
    }
}

/// Whether the text just before a path is its start (not a longer name
/// or a path's later segment).
fn starts_path(before: Option<char>) -> bool {
    !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
}

/// The paths after each occurrence of `prefix` (`crate::`, `super::` or
/// an imported name and `::`): their identifier segments.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if !starts_path(before) {
            continue;
        }
        let mut segs = Vec::new();
        let mut s = rest;
        loop {
            let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
            if end == 0 {
                break;
            }
            segs.push(s[..end].to_string());
            s = &s[end..];
            match s.strip_prefix("::") {
                Some(more) => s = more,
                None => break,
            }
        }
        out.push(segs);
    }
    out
}

/// Module → the other modules of the crate it names: through `crate::`
/// and `super::` paths, and through the names its `use` lines bring in
/// (`use crate::cmd;` then `cmd::add_bank`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|p| (module_of(p.strip_prefix(&root).expect("under src")), p.clone())).collect();
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len()).rev().map(|k| path[..k].to_vec()).find(|m| modules.contains_key(m))
    };
    let mut out = BTreeMap::new();
    for (m, p) in &modules {
        let text = std::fs::read_to_string(p).expect("read source");
        // `super` of `a/b.rs` and of `a/b/mod.rs` is `a`. (In a file's
        // `mod tests`, `super` is the file itself: it resolves to `a`,
        // which names nothing back.)
        let parent: Vec<String> = m.iter().take(m.len().saturating_sub(1)).cloned().collect();
        let absolute = |path: Vec<String>| -> Option<Vec<String>> {
            match path.first().map(String::as_str) {
                Some("crate") => Some(path[1..].to_vec()),
                Some("super") => Some(parent.iter().cloned().chain(path[1..].iter().cloned()).collect()),
                _ => None,
            }
        };
        let mut names = BTreeSet::new();
        for (prefix, root_name) in [("crate::", "crate"), ("super::", "super")] {
            for path in paths_after(&text, prefix) {
                let full: Vec<String> = std::iter::once(root_name.to_string()).chain(path).collect();
                names.extend(absolute(full).and_then(|a| resolve(&a)));
            }
        }
        // The names `use` lines bring in, and their later uses.
        let mut imported = Vec::new();
        for (i, _) in text.match_indices("use ") {
            if !starts_path(text[..i].chars().next_back()) {
                continue;
            }
            let Some(end) = text[i..].find(';') else { continue };
            use_tree(&[], &text[i + 4..i + end], &mut imported);
        }
        for (path, alias) in imported {
            let Some(target) = absolute(path).and_then(|a| resolve(&a).map(|r| (a, r))) else { continue };
            let (full, module) = target;
            if full != module {
                continue; // an item of a module, not a module
            }
            for rest in paths_after(&text, &format!("{alias}::")) {
                let p: Vec<String> = module.iter().cloned().chain(rest).collect();
                names.extend(resolve(&p));
            }
        }
        names.remove(m);
        names.remove(&Vec::new());
        out.insert(m.join("::"), names.into_iter().map(|n| n.join("::")).collect());
    }
    out
}

#[test]
fn command_files_name_no_other_command_file() {
    let g = graph();
    let bad: Vec<String> = g
        .iter()
        .filter(|(m, _)| m.starts_with("cmd::"))
        .flat_map(|(m, names)| names.iter().filter(|n| n.starts_with("cmd::")).map(move |n| format!("{m} -> {n}")))
        .collect();
    assert!(bad.is_empty(), "command files that name another command file:\n{}", bad.join("\n"));
}

#[test]
fn modules_name_each_other_without_a_circle() {
    let g = graph();
    // Depth-first search; a name of a module still on the stack closes a
    // circle.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        stack.push(m.to_string());
        for n in g.get(m).into_iter().flatten() {
            if let Some(i) = stack.iter().position(|s| s == n) {
                circles.push(format!("{} -> {n}", stack[i..].join(" -> ")));
            } else {
                visit(n, g, stack, done, circles);
            }
        }
        stack.pop();
        done.insert(m.to_string());
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(m, &g, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "modules that reach themselves again:\n{}", circles.join("\n"));
}

#[test]
fn the_graph_sees_the_command_line_and_its_commands() {
    let g = graph();
    assert!(g["cli"].contains("cmd::add_bank"), "{:?}", g["cli"]);
    assert!(g["cmd::pop_db"].contains("migrate::pop"), "{:?}", g["cmd::pop_db"]);
    assert!(g["migrate::events"].contains("migrate::site"), "{:?}", g["migrate::events"]);
}
