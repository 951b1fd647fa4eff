//! `fairshare-emulate`: offline fair-share of a JSON hierarchy.

use std::path::PathBuf;

use fluxacct_core::fairshare::{self, FsBank, FsUser, FsValue};
use serde_json::{json, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::{as_format, as_json, as_table, Rows};

/// Compute fair-share offline from a JSON hierarchy, with the same code as
/// `update-fshare`; the ledger is not read. The input is `{"root": NODE}`,
/// where a NODE with `username` is an association (`shares`, default 1;
/// `usage`, default 0.0) and any other NODE needs `bank` (`shares`, and
/// `children`: its associations and sub-banks). `export-db -F` prints such
/// a file. A node with `"active": false` (or 0) is left out, as
/// `update-fshare` leaves out disabled banks and associations. A bank's
/// usage is the sum of its associations' (a bank's own `usage` is ignored).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The JSON hierarchy.
    #[arg(value_name = "FILE", required_unless_present = "input")]
    pub file: Option<PathBuf>,
    /// The JSON hierarchy (flux-accounting's spelling of FILE).
    #[arg(short = 'i', long = "input", value_name = "FILE", conflicts_with = "file")]
    pub input: Option<PathBuf>,
    /// Print a JSON list instead of a table.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Print with a format string (fields: username, bank, shares, usage,
    /// fairshare).
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print `username|bank|shares|usage|fairshare` lines.
    #[arg(short = 'P', long)]
    pub parsable: bool,
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("fairshare-emulate: {msg}"))
}

fn active(node: &Value) -> bool {
    match node.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => v.as_f64() != Some(0.0),
    }
}

fn shares_of(node: &Value) -> Result<i64> {
    match node.get("shares") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or_else(|| bad(format!("ValueError: shares must be a number, got {v}"))),
    }
}

fn usage_of(node: &Value) -> Result<f64> {
    match node.get("usage") {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => v.as_f64().ok_or_else(|| bad(format!("ValueError: usage must be a number, got {v}"))),
    }
}

/// Builds the fair-share tree of one bank node (depth-limited).
fn bank_of(node: &Value, depth: usize, given: &mut Given) -> Result<FsBank> {
    if depth > 10_000 {
        return Err(bad("ValueError: the hierarchy is too deep"));
    }
    let name = match node.get("bank") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => return Err(bad("ValueError: Node must have 'username' or 'bank' key")),
    };
    let mut bank = FsBank { name, shares: shares_of(node)?, banks: Vec::new(), users: Vec::new() };
    let children = match node.get("children") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(bad("ValueError: children must be a list")),
    };
    for child in children {
        if !child.is_object() {
            return Err(bad("ValueError: Node must have 'username' or 'bank' key"));
        }
        if !active(child) {
            continue;
        }
        if let Some(u) = child.get("username") {
            let username = u.as_str().map(str::to_string).unwrap_or_else(|| u.to_string());
            let usage = usage_of(child)?;
            let shown = match child.get("usage") {
                Some(v @ Value::Number(_)) => v.clone(),
                _ => json!(0.0),
            };
            given.entry((bank.name.clone(), username.clone())).or_insert(shown);
            bank.users.push(FsUser { username, shares: shares_of(child)?, usage });
        } else {
            bank.banks.push(bank_of(child, depth + 1, given)?);
        }
    }
    Ok(bank)
}

/// Each association's usage as the input gave it (an integer stays one),
/// by (bank, username): the output echoes it.
pub type Given = std::collections::BTreeMap<(String, String), Value>;

/// The input document: the fair-share tree and the usage values as given.
#[derive(Debug, Clone)]
pub struct Input {
    /// The fair-share tree.
    pub tree: FsBank,
    /// Usage values as given.
    pub given: Given,
}

/// Parses the input document into the fair-share tree. Pure.
pub fn parse_tree(text: &str) -> Result<Input> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("JSONDecodeError: invalid JSON in input file: {e}")))?;
    let root = doc.get("root").ok_or_else(|| bad("ValueError: JSON must contain 'root' key"))?;
    if !root.is_object() || root.get("username").is_some() {
        return Err(bad("ValueError: 'root' must be a bank node"));
    }
    let mut given = Given::new();
    let tree = bank_of(root, 0, &mut given)?;
    Ok(Input { tree, given })
}

/// The emulated values with each association's shares and usage, in the
/// order of the fair-share walk (highest fair-share first).
pub fn emulate(input: &Input) -> Result<Vec<(FsValue, i64, Value)>> {
    let tree = &input.tree;
    let values = fairshare::compute(tree);
    if values.is_empty() {
        return Err(bad("ValueError: no users found in input"));
    }
    let mut leaves = std::collections::BTreeMap::new();
    fn collect<'a>(b: &'a FsBank, out: &mut std::collections::BTreeMap<(&'a str, &'a str), (i64, f64)>) {
        for u in &b.users {
            out.entry((b.name.as_str(), u.username.as_str())).or_insert((u.shares, u.usage));
        }
        for s in &b.banks {
            collect(s, out);
        }
    }
    collect(tree, &mut leaves);
    Ok(values
        .into_iter()
        .map(|v| {
            let (shares, usage) = leaves.get(&(v.bank.as_str(), v.username.as_str())).copied().unwrap_or((1, 0.0));
            let shown = input.given.get(&(v.bank.clone(), v.username.clone())).cloned().unwrap_or_else(|| json!(usage));
            (v, shares, shown)
        })
        .collect())
}

fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// Renders the result as flux-accounting's emulator does.
pub fn render(values: &[(FsValue, i64, Value)], args: &Args) -> Result<String> {
    let mut rows = Rows::new(&["username", "bank", "shares", "usage", "fairshare"]);
    for (v, shares, usage) in values {
        rows.push(vec![
            json!(v.username),
            json!(v.bank),
            json!(shares),
            usage.clone(),
            json!(fairshare::round6(v.fairshare)),
        ]);
    }
    let fmt = if args.parsable { Some("{username}|{bank}|{shares}|{usage}|{fairshare}") } else { None };
    if let Some(f) = args.format.as_deref().or(fmt) {
        return as_format(&rows, f)
            .map(|s| s.split_once('\n').map(|(_, body)| body.to_string()).unwrap_or_default() + "\n")
            .map_err(|e| match e {
                Error::Invalid(m) if m.starts_with("Invalid column name") => {
                    let key = m.trim_start_matches("Invalid column name in format string: ");
                    let key = key.split_once(". ").map(|(k, _)| k).unwrap_or(key);
                    bad(format!("ValueError: Invalid format string key: '{key}'"))
                }
                other => other,
            });
    }
    if args.json {
        return Ok(as_json(&rows) + "\n");
    }
    let mut rows = Rows::new(&["Username", "Bank", "Shares", "Usage", "FairShare"]);
    for (v, shares, usage) in values {
        rows.push(vec![
            json!(v.username),
            json!(v.bank),
            json!(shares),
            // Python's round(usage, 2): an integer stays one.
            match usage.as_f64() {
                Some(f) if usage.is_f64() => json!(round2(f)),
                _ => usage.clone(),
            },
            json!(fairshare::round6(v.fairshare)),
        ]);
    }
    Ok(as_table(&rows) + "\n")
}

/// Runs `fairshare-emulate`.
pub fn cmd_fairshare_emulate(_ctx: &Context, args: &Args) -> Result<Output> {
    let path = args.input.as_ref().or(args.file.as_ref()).ok_or_else(|| bad("an input FILE is required"))?;
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad(format!("FileNotFoundError: input file not found: {}", path.display())),
        _ => bad(format!("cannot read {}: {e}", path.display())),
    })?;
    let tree = parse_tree(&text)?;
    Ok(Output::text(render(&emulate(&tree)?, args)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse_args;

    /// small_no_tie (reference §5.5) as `export-db -F` prints it.
    const SMALL_NO_TIE: &str = r#"{"root": {"bank": "root", "shares": 1000, "usage": 233.0, "children": [
        {"bank": "account1", "shares": 1000, "usage": 121.0, "children": [
            {"username": "leaf.1.1", "shares": 10000, "usage": 100.0},
            {"username": "leaf.1.2", "shares": 1000, "usage": 11.0},
            {"username": "leaf.1.3", "shares": 100000, "usage": 10.0}]},
        {"bank": "account2", "shares": 100, "usage": 11.0, "children": [
            {"username": "leaf.2.1", "shares": 100000, "usage": 8.0},
            {"username": "leaf.2.2", "shares": 10000, "usage": 3.0}]},
        {"bank": "account3", "shares": 10, "usage": 1.0, "children": [
            {"username": "leaf.3.1", "shares": 100, "usage": 0.0},
            {"username": "leaf.3.2", "shares": 10, "usage": 1.0}]}]}}"#;

    fn run(text: &str, argv: &[&str]) -> Result<String> {
        let args: Args = parse_args(&[&["x.json"], argv].concat());
        render(&emulate(&parse_tree(text)?)?, &args)
    }

    #[test]
    fn given_small_no_tie_when_emulating_then_the_reference_values() {
        let out = run(SMALL_NO_TIE, &["-P"]).unwrap();
        assert_eq!(
            out,
            "leaf.3.1|account3|100|0.0|1.0\nleaf.3.2|account3|10|1.0|0.857143\n\
             leaf.2.1|account2|100000|8.0|0.714286\nleaf.2.2|account2|10000|3.0|0.571429\n\
             leaf.1.3|account1|100000|10.0|0.428571\nleaf.1.1|account1|10000|100.0|0.285714\n\
             leaf.1.2|account1|1000|11.0|0.142857\n"
        );
    }

    #[test]
    fn given_a_tree_when_emulating_then_table_json_and_format_layouts() {
        let t = run(SMALL_NO_TIE, &[]).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Username | Bank     | Shares | Usage | FairShare");
        assert_eq!(lines[1], "---------+----------+--------+-------+----------");
        assert_eq!(lines[2], "leaf.3.1 | account3 | 100    | 0.0   | 1.0      ");
        let j: Value = serde_json::from_str(&run(SMALL_NO_TIE, &["-j"]).unwrap()).unwrap();
        assert_eq!(
            j[1],
            json!({"username": "leaf.3.2", "bank": "account3", "shares": 10, "usage": 1.0, "fairshare": 0.857143})
        );
        assert_eq!(run(SMALL_NO_TIE, &["-o", "{username}:{fairshare}"]).unwrap().lines().next(), Some("leaf.3.1:1.0"));
        assert_eq!(
            run(SMALL_NO_TIE, &["-o", "{nope}"]).unwrap_err().to_string(),
            "fairshare-emulate: ValueError: Invalid format string key: 'nope'"
        );
    }

    #[test]
    fn given_defaults_and_inactive_nodes_when_emulating_then_defaults_apply_and_inactive_are_left_out() {
        let doc = r#"{"root": {"bank": "root", "children": [{"bank": "A", "children": [
            {"username": "u1"}, {"username": "u2", "usage": 5}, {"username": "gone", "active": 0}]}]}}"#;
        let out = run(doc, &["-P"]).unwrap();
        assert_eq!(out, "u1|A|1|0.0|1.0\nu2|A|1|5|0.5\n");
    }

    #[test]
    fn given_usage_values_when_emulating_then_they_are_echoed_as_given() {
        let doc = r#"{"root": {"bank": "root", "children": [{"bank": "A", "children": [
            {"username": "u1", "usage": 10}, {"username": "u2", "usage": 10.0}, {"username": "u3", "usage": 2.345}]}]}}"#;
        let out = run(doc, &["-o", "{username}={usage}"]).unwrap();
        assert_eq!(out, "u3=2.345\nu1=10\nu2=10.0\n");
        let json = run(doc, &["--json"]).unwrap();
        assert!(json.contains("\"usage\": 10,") && json.contains("\"usage\": 10.0,"), "{json}");
        // The table rounds as Python's round(usage, 2): an integer stays one.
        let table = run(doc, &[]).unwrap();
        assert!(table.contains(" | 2.35 ") && table.contains(" | 10.0 ") && table.contains(" | 10 "), "{table}");
    }

    #[test]
    fn given_bad_input_when_emulating_then_one_line_errors() {
        let e = |doc: &str| run(doc, &[]).unwrap_err().to_string();
        assert!(e("{").starts_with("fairshare-emulate: JSONDecodeError: invalid JSON in input file: "));
        assert_eq!(e("{}"), "fairshare-emulate: ValueError: JSON must contain 'root' key");
        assert_eq!(
            e(r#"{"root": {"bank": "r", "children": [{"shares": 1}]}}"#),
            "fairshare-emulate: ValueError: Node must have 'username' or 'bank' key"
        );
        assert_eq!(e(r#"{"root": {"bank": "r"}}"#), "fairshare-emulate: ValueError: no users found in input");
        let ctx = Context::for_tests("/nonexistent.db", 0);
        let args: Args = parse_args(&["/nonexistent/x.json"]);
        assert_eq!(
            cmd_fairshare_emulate(&ctx, &args).unwrap_err().to_string(),
            "fairshare-emulate: FileNotFoundError: input file not found: /nonexistent/x.json"
        );
    }
}
