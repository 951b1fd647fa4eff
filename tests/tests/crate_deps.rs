//! The crate map of docs/architecture.md, checked on the manifests: which
//! workspace crate may depend on which, and that the priority plugin's
//! whole dependency closure (normal and build dependencies, as the
//! workspace build resolves them) is free of SQLite. `.ci/run` checks the
//! same rule on `cargo tree --workspace`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

/// The `[section]` a line opens, if any.
fn section(line: &str) -> Option<&str> {
    let l = line.trim();
    (l.starts_with('[') && l.ends_with(']')).then(|| l.trim_matches(|c| c == '[' || c == ']'))
}

/// `key = "value"` inside an inline table or a line: the quoted value of `key`.
fn quoted(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("{key} = \""))? + key.len() + 4;
    Some(text[at..].split('"').next()?.to_string())
}

/// The entries (dependency key → rest of the line) of the given sections.
fn entries(manifest: &str, sections: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        if let Some(s) = section(line) {
            inside = sections.contains(&s);
            continue;
        }
        let l = line.trim();
        if !inside || l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split(['=', '.', ' ']).next().unwrap_or_default().trim().to_string();
        out.push((key, l.to_string()));
    }
    out
}

struct Workspace {
    /// Package name → its normal and build dependencies (package names).
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Workspace {
    fn load() -> Workspace {
        let root = workspace();
        let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace Cargo.toml");
        // Workspace dependency key → package name.
        let renames: BTreeMap<String, String> = entries(&text, &["workspace.dependencies"])
            .into_iter()
            .map(|(k, rest)| {
                let pkg = quoted(&rest, "package").unwrap_or_else(|| k.clone());
                (k, pkg)
            })
            .collect();
        let members = text.split("members = [").nth(1).and_then(|m| m.split(']').next()).expect("members");
        let mut deps = BTreeMap::new();
        for m in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
            let manifest = std::fs::read_to_string(root.join(m).join("Cargo.toml")).expect("member Cargo.toml");
            let name = quoted(&manifest, "name").expect("package name");
            let mut set = BTreeSet::new();
            for (key, rest) in entries(&manifest, &["dependencies", "build-dependencies"]) {
                let pkg = quoted(&rest, "package")
                    .or_else(|| rest.contains("workspace = true").then(|| renames.get(&key).cloned()).flatten())
                    .unwrap_or(key);
                set.insert(pkg);
            }
            deps.insert(name, set);
        }
        Workspace { deps }
    }

    /// Every package `name` depends on, directly or through workspace crates.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            for d in self.deps.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn plugin_and_core_never_depend_on_sqlite() {
    let ws = Workspace::load();
    for krate in ["fluxacct-plugin", "fluxacct-core"] {
        let all = ws.closure(krate);
        for banned in [
            "rusqlite",
            "libsqlite3-sys",
            "fluxacct-ledger",
            "fluxacct-projections",
            "fluxacct-metrics",
            "fluxacct-centre",
            "postgres",
        ] {
            assert!(!all.contains(banned), "{krate} depends on {banned}: {all:?}");
        }
    }
    // The rule is not vacuous: the SQLite side does see it.
    assert!(ws.closure("fluxacct-projections").contains("rusqlite"));
}

#[test]
fn workspace_crates_depend_only_down_the_crate_map() {
    // docs/architecture.md, "What each crate may depend on".
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("fluxacct-core", &[][..]),
        ("fluxacct-ledger", &["fluxacct-core"][..]),
        ("fluxacct-projections", &["fluxacct-core", "fluxacct-ledger"][..]),
        ("fluxacct-replay", &["fluxacct-core", "fluxacct-ledger", "fluxacct-projections"][..]),
        ("fluxacct-flux", &["fluxacct-core"][..]),
        ("fluxacct-ingest", &["fluxacct-core", "fluxacct-ledger", "fluxacct-projections", "fluxacct-flux"][..]),
        ("fluxacct-centre", &["fluxacct-core", "fluxacct-ledger", "fluxacct-projections"][..]),
        (
            "fluxacct-commands",
            &[
                "fluxacct-core",
                "fluxacct-ledger",
                "fluxacct-projections",
                "fluxacct-replay",
                "fluxacct-flux",
                "fluxacct-ingest",
                "fluxacct-metrics",
                "fluxacct-centre",
            ][..],
        ),
        ("fluxacct-metrics", &["fluxacct-core", "fluxacct-ledger", "fluxacct-projections"][..]),
        ("fluxacct-fixtures", &["fluxacct-core", "fluxacct-ledger", "fluxacct-projections"][..]),
        ("fluxacct-plugin", &["fluxacct-core"][..]),
        // Test and bench crates use everything, as dev-dependencies only.
        ("fluxacct-benches", &[][..]),
        ("fluxacct-tests", &[][..]),
    ]);
    let ws = Workspace::load();
    for (name, deps) in &ws.deps {
        let ok = allowed.get(name.as_str()).unwrap_or_else(|| panic!("{name} is not in the crate map"));
        for d in deps.iter().filter(|d| ws.deps.contains_key(*d)) {
            assert!(ok.contains(&d.as_str()), "{name} may not depend on {d}");
        }
    }
}
