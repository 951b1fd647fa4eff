//! Source-level rules checked on every crate of the workspace:
//!
//! * no import circle between the files of one crate: for each crate, the
//!   graph "file A uses an item defined in file B" (built from `crate::…`
//!   and `super::…` paths, in `use` lines and in expressions, and from
//!   modules imported that way and then named) has no cycle. A parent that
//!   declares `mod child` does not use it; a child that uses `super::item`
//!   does use its parent.
//! * `unsafe` appears only in the FFI modules and the jobtap test harness,
//!   and every other library crate forbids it in its `lib.rs`.
//!
//! Both are text-based on purpose (comments and string literals are blanked
//! first): cheap, and no parser dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The only files that may contain `unsafe` (workspace-relative).
const UNSAFE_ALLOWED: &[&str] = &[
    "plugin/src/ffi.rs",
    "ledger/src/ffi.rs",
    // The libflux-core client.
    "flux/src/ffi.rs",
    // The jobtap host harness: test-only FFI into the plugin.
    "tests/tests/plugin_harness/mod.rs",
];

/// Crates whose `lib.rs` denies (rather than forbids) `unsafe_code` and
/// allows it on their FFI module alone.
const UNSAFE_CRATES: &[&str] = &["plugin", "ledger", "flux"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

fn members() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("Cargo.toml")).expect("workspace Cargo.toml");
    let list = text.split("members = [").nth(1).and_then(|m| m.split(']').next()).expect("members");
    list.split(',').map(|m| m.trim().trim_matches('"').to_string()).filter(|m| !m.is_empty()).collect()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace()).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

/// The source with comments, string and char literals replaced by spaces
/// (newlines kept, so offsets and lines stay where they were).
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n);
            wipe(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r#") || rest.starts_with(b"r\"") || rest.starts_with(b"br"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let start = if rest[0] == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|&&c| c == b'#').count();
            if b.get(start + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let body = start + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n + close.len());
            wipe(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime.
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|n| i + 2 + n + 1)
            } else {
                let ch_len =
                    std::str::from_utf8(&rest[1..]).ok().and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
                (rest.get(1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
            };
            match end {
                Some(e) => {
                    wipe(&mut out, i, e);
                    i = e;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The paths of a `use` tree or an expression path starting at `at`
/// (just after `crate::` or `super::`), as segment lists. A group
/// `{a::b, c}` gives several paths; `self` in a group names the prefix.
fn paths_at(text: &[u8], at: usize) -> Vec<Vec<String>> {
    fn skip_ws(t: &[u8], mut i: usize) -> usize {
        while i < t.len() && t[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    fn tree(t: &[u8], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix;
        loop {
            i = skip_ws(t, i);
            if i < t.len() && t[i] == b'{' {
                i += 1;
                loop {
                    i = skip_ws(t, i);
                    if i >= t.len() || t[i] == b'}' {
                        return i + 1;
                    }
                    i = tree(t, i, path.clone(), out);
                    i = skip_ws(t, i);
                    if i < t.len() && t[i] == b',' {
                        i += 1;
                    }
                }
            }
            if i < t.len() && t[i] == b'*' {
                out.push(path);
                return i + 1;
            }
            let start = i;
            while i < t.len() && is_ident(t[i]) {
                i += 1;
            }
            let seg = String::from_utf8_lossy(&t[start..i]).to_string();
            if seg.is_empty() {
                out.push(path);
                return i;
            }
            if seg != "self" {
                path.push(seg);
            }
            if t[i..].starts_with(b"::") {
                i += 2;
            } else {
                out.push(path);
                return i;
            }
        }
    }
    let mut out = Vec::new();
    tree(text, at, Vec::new(), &mut out);
    out
}

/// The number of inline `mod name { … }` blocks enclosing each byte.
fn inline_depths(text: &[u8]) -> Vec<u32> {
    let mut depths = vec![0u32; text.len() + 1];
    let mut braces = 0u32;
    let mut mods: Vec<u32> = Vec::new();
    let mut pending_mod = false;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if text[i..].starts_with(b"mod")
            && (i == 0 || !is_ident(text[i - 1]))
            && text.get(i + 3).is_some_and(|c| c.is_ascii_whitespace())
        {
            let mut j = i + 3;
            while j < text.len() && text[j].is_ascii_whitespace() {
                j += 1;
            }
            while j < text.len() && is_ident(text[j]) {
                j += 1;
            }
            while j < text.len() && text[j].is_ascii_whitespace() {
                j += 1;
            }
            pending_mod = text.get(j) == Some(&b'{');
        }
        if c == b'{' {
            braces += 1;
            if pending_mod {
                mods.push(braces);
                pending_mod = false;
            }
        } else if c == b'}' {
            if mods.last() == Some(&braces) {
                mods.pop();
            }
            braces = braces.saturating_sub(1);
        } else if c == b';' {
            pending_mod = false;
        }
        depths[i] = mods.len() as u32;
        i += 1;
    }
    depths
}

struct Crate {
    /// Module path (under the library root) → file.
    modules: BTreeMap<Vec<String>, String>,
    /// File → its module path.
    files: BTreeMap<String, Vec<String>>,
    /// File → blanked text.
    text: BTreeMap<String, String>,
}

impl Crate {
    fn load(dir: &Path) -> Crate {
        let src = dir.join("src");
        let mut all = Vec::new();
        rs_files(&src, &mut all);
        let (mut modules, mut files, mut text) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for p in all {
            let r = p.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            // Binary roots are crates of their own; they only use the library.
            if r == "main.rs" || r.starts_with("bin/") {
                continue;
            }
            let mut segs: Vec<String> = r.trim_end_matches(".rs").split('/').map(str::to_string).collect();
            if segs == ["lib"] || segs.last().is_some_and(|s| s == "mod") {
                segs.pop();
            }
            let name = rel(&p);
            let src_text = std::fs::read_to_string(&p).expect("readable source");
            modules.insert(segs.clone(), name.clone());
            files.insert(name.clone(), segs);
            text.insert(name, blank(&src_text));
        }
        Crate { modules, files, text }
    }

    /// Resolves `base` + `path` to (the deepest file, whether the whole
    /// path named a module).
    fn resolve(&self, base: &[String], path: &[String]) -> Option<(String, bool)> {
        let mut m = base.to_vec();
        let mut file = self.modules.get(&m)?.clone();
        for (n, seg) in path.iter().enumerate() {
            m.push(seg.clone());
            match self.modules.get(&m) {
                Some(f) => file = f.clone(),
                None => return Some((file, n == path.len())),
            }
        }
        Some((file, true))
    }

    /// File → files it uses items of.
    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (file, text) in &self.text {
            let me = &self.files[file];
            let t = text.as_bytes();
            let depths = inline_depths(t);
            let mut out = BTreeSet::new();
            // Modules imported by name: alias → module path.
            let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut i = 0;
            while i < t.len() {
                let at_word = i == 0 || !(is_ident(t[i - 1]) || t[i - 1] == b'$' || t[i - 1] == b':');
                let (base, after) = if at_word && t[i..].starts_with(b"crate::") {
                    (Some(Vec::new()), i + 7)
                } else if at_word && t[i..].starts_with(b"super::") {
                    // `super` first leaves enclosing inline modules (same file).
                    let mut up = depths[i];
                    let mut j = i;
                    let mut m = me.clone();
                    while t[j..].starts_with(b"super::") {
                        if up > 0 {
                            up -= 1;
                        } else {
                            m.pop();
                        }
                        j += 7;
                    }
                    (Some(m), j)
                } else {
                    (None, i + 1)
                };
                if let Some(base) = base {
                    let before = String::from_utf8_lossy(&t[..i]);
                    let in_use = before.rsplit(';').next().is_some_and(|s| s.split_whitespace().any(|w| w == "use"));
                    for p in paths_at(t, after) {
                        if let Some((target, whole_module)) = self.resolve(&base, &p) {
                            let mut module = base.clone();
                            module.extend(p.iter().cloned());
                            if whole_module && in_use && !p.is_empty() {
                                aliases.insert(p.last().cloned().unwrap_or_default(), module);
                            } else if !whole_module && target != *file {
                                out.insert(target);
                            }
                        }
                    }
                }
                i = after.max(i + 1);
            }
            // Paths through imported modules: `alias::item`.
            for (alias, module) in &aliases {
                let pat = format!("{alias}::");
                let mut from = 0;
                while let Some(n) = text[from..].find(&pat) {
                    let i = from + n;
                    from = i + pat.len();
                    if i > 0 && (is_ident(t[i - 1]) || t[i - 1] == b':') {
                        continue;
                    }
                    for p in paths_at(t, i + pat.len()) {
                        if let Some((target, false)) = self.resolve(module, &p) {
                            if target != *file {
                                out.insert(target);
                            }
                        }
                    }
                }
            }
            edges.insert(file.clone(), out);
        }
        edges
    }
}

/// The strongly connected groups of more than one file (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct St<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.out.push(group);
            }
        }
    }
    let mut s = St {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One cycle through `group`, for the failure message: a → b → … → a.
fn example_cycle(edges: &BTreeMap<String, BTreeSet<String>>, group: &[String]) -> String {
    let inside: BTreeSet<&String> = group.iter().collect();
    let start = &group[0];
    // Breadth-first from start back to start, inside the group.
    let mut prev: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(v).into_iter().flatten().filter(|w| inside.contains(w)) {
            if w == start {
                let mut path = vec![start.clone(), v.clone()];
                let mut at = v;
                while let Some(p) = prev.get(at) {
                    path.push((*p).clone());
                    at = p;
                }
                path.pop();
                path.reverse();
                path.insert(0, start.clone());
                path.push(start.clone());
                path.dedup();
                return path.join(" -> ");
            }
            if !prev.contains_key(w) && w != start {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    group.join(", ")
}

fn all_circles() -> (Vec<Vec<String>>, Vec<String>) {
    let mut found = Vec::new();
    let mut described = Vec::new();
    for m in members() {
        let krate = Crate::load(&workspace().join(&m));
        let edges = krate.edges();
        for group in circles(&edges) {
            described.push(format!("  {}", example_cycle(&edges, &group)));
            found.push(group);
        }
    }
    (found, described)
}

#[test]
fn no_crate_has_an_import_circle_between_its_files() {
    let (_, described) = all_circles();
    assert!(described.is_empty(), "import circles between the files of a crate:\n{}", described.join("\n"));
}

#[test]
fn the_circle_detector_finds_a_planted_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut edge = |a: &str, b: &str| {
        edges.entry(a.to_string()).or_default().insert(b.to_string());
    };
    edge("a.rs", "b.rs");
    edge("b.rs", "c.rs");
    edge("c.rs", "a.rs");
    edge("d.rs", "a.rs");
    let found = circles(&edges);
    assert_eq!(found, vec![vec!["a.rs".to_string(), "b.rs".to_string(), "c.rs".to_string()]]);
}

#[test]
fn command_files_import_no_other_command_file() {
    // A command file (`commands/src/cmd/*.rs`) is a leaf: what several
    // commands share lives beside `cmd/`, never in another command's file.
    let commands = Crate::load(&workspace().join("commands"));
    let is_command = |f: &str| f.starts_with("commands/src/cmd/") && !f.ends_with("/mod.rs");
    let mut bad = Vec::new();
    for (from, to) in commands.edges().iter().filter(|(from, _)| is_command(from)) {
        bad.extend(to.iter().filter(|t| is_command(t) && *t != from).map(|t| format!("{from} -> {t}")));
    }
    assert!(bad.is_empty(), "command files that import another command file:\n{}", bad.join("\n"));
}

#[test]
fn super_in_an_inline_module_stays_in_its_file() {
    let text = blank("mod tests {\n    use super::*;\n}\nfn f() { super::g(); }\n");
    let d = inline_depths(text.as_bytes());
    assert_eq!(d[text.find("super").expect("first")], 1);
    assert_eq!(d[text.rfind("super").expect("second")], 0);
}

#[test]
fn use_groups_give_one_path_per_item() {
    let text = b"{a::{self, B}, c::D, e};";
    let paths = paths_at(text, 0);
    let want: Vec<Vec<String>> = [vec!["a"], vec!["a", "B"], vec!["c", "D"], vec!["e"]]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(paths, want);
}

#[test]
fn unsafe_appears_only_in_the_ffi_modules() {
    let mut offenders = Vec::new();
    for m in members() {
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches", "examples"] {
            rs_files(&workspace().join(&m).join(sub), &mut files);
        }
        for f in files {
            let name = rel(&f);
            if UNSAFE_ALLOWED.contains(&name.as_str()) {
                continue;
            }
            let text = blank(&std::fs::read_to_string(&f).expect("readable source"));
            let t = text.as_bytes();
            let hit = text.match_indices("unsafe").any(|(i, _)| {
                let before = i > 0 && is_ident(t[i - 1]);
                let after = t.get(i + 6).is_some_and(|&c| is_ident(c));
                !before && !after
            });
            if hit {
                offenders.push(name);
            }
        }
    }
    assert!(offenders.is_empty(), "`unsafe` outside the FFI modules: {offenders:?}");
}

#[test]
fn every_crate_without_ffi_forbids_unsafe_code() {
    let mut missing = Vec::new();
    for m in members() {
        let lib = workspace().join(&m).join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else { continue };
        let want =
            if UNSAFE_CRATES.contains(&m.as_str()) { "#![deny(unsafe_code)]" } else { "#![forbid(unsafe_code)]" };
        if !text.lines().any(|l| l.trim() == want) {
            missing.push(format!("{}: {want}", rel(&lib)));
        }
    }
    assert!(missing.is_empty(), "missing: {missing:?}");
}
