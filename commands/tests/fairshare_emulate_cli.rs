//! `fairshare-emulate`: offline fair-share from the JSON that
//! `export-db -F` prints gives the same values as `update-fshare` on the
//! same tree: on flux-accounting's own hierarchy fixtures (which need
//! `../shared`; these tests FAIL when it is missing) and on a ledger after
//! the demo pipeline.

mod common;

use std::path::{Path, PathBuf};

use common::{fa, ok};
use rusqlite::{params, Connection, OpenFlags};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/flux-accounting-dbs").join(name);
    assert!(p.is_file(), "missing shared fixture {} (../shared must be beside the repo)", p.display());
    p
}

fn has_column(conn: &Connection, table: &str, col: &str) -> bool {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    let names: Vec<String> = stmt.query_map([], |r| r.get(1)).unwrap().collect::<Result<_, _>>().unwrap();
    names.iter().any(|n| n == col)
}

/// The `export-db -F` document of a flux-accounting-shaped database, built
/// as reference §2.1 describes it: `{"root": bank}`; a bank node is
/// `{bank, shares, usage, children}` whose children are its associations
/// (`{username, shares, usage}`) then its sub-banks, in table order; active
/// and inactive rows alike.
fn export_f(conn: &Connection) -> Value {
    let bank_usage = has_column(conn, "bank_table", "job_usage");
    fn node(conn: &Connection, bank: &str, shares: i64, usage: f64, bank_usage: bool) -> Value {
        let mut children = Vec::new();
        let mut stmt = conn.prepare("SELECT username, shares, job_usage FROM association_table WHERE bank=?1").unwrap();
        let users: Vec<(String, i64, f64)> = stmt
            .query_map([bank], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (u, s, us) in users {
            children.push(json!({"username": u, "shares": s, "usage": us}));
        }
        let sql = if bank_usage {
            "SELECT bank, shares, job_usage FROM bank_table WHERE parent_bank=?1"
        } else {
            "SELECT bank, shares, 0.0 FROM bank_table WHERE parent_bank=?1"
        };
        let mut stmt = conn.prepare(sql).unwrap();
        let subs: Vec<(String, i64, f64)> = stmt
            .query_map(params![bank], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (b, s, us) in subs {
            children.push(node(conn, &b, s, us, bank_usage));
        }
        json!({"bank": bank, "shares": shares, "usage": usage, "children": children})
    }
    let sql = if bank_usage {
        "SELECT bank, shares, job_usage FROM bank_table WHERE parent_bank='' LIMIT 1"
    } else {
        "SELECT bank, shares, 0.0 FROM bank_table WHERE parent_bank='' LIMIT 1"
    };
    let (root, shares, usage): (String, i64, f64) =
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    json!({"root": node(conn, &root, shares, usage, bank_usage)})
}

/// (bank, username) → fair-share text from `fairshare-emulate -P`.
fn emulated(dir: &Path, doc: &Value) -> Vec<(String, String, String)> {
    let file = dir.join("tree.json");
    std::fs::write(&file, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    let out = ok(&dir.join("unused.db"), &["fairshare-emulate", "-P", file.to_str().unwrap()]);
    let mut v: Vec<(String, String, String)> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 5, "{l}");
            (f[1].to_string(), f[0].to_string(), f[4].to_string())
        })
        .collect();
    v.sort();
    v
}

/// What update-fshare's code computes on the same tables.
fn update_fshare_values(conn: &Connection) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = projections::usage::fairshare_values(conn)
        .unwrap()
        .into_iter()
        .map(|f| {
            (f.bank, f.username, fluxacct_commands::format::py_float(fluxacct_core::fairshare::round6(f.fairshare)))
        })
        .collect();
    v.sort();
    v
}

/// The values flux-accounting's C++ update-fshare stored in the fixture.
fn stored(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn.prepare("SELECT bank, username, fairshare FROM association_table WHERE active=1").unwrap();
    let mut v: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, fluxacct_commands::format::py_float(r.get::<_, f64>(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    v.sort();
    v
}

fn check_fixture(name: &str, compare_stored: bool) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open_with_flags(fixture(name), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let doc = export_f(&conn);
    let emu = emulated(dir.path(), &doc);
    assert!(!emu.is_empty());
    assert_eq!(emu, update_fshare_values(&conn), "{name}: fairshare-emulate vs update-fshare");
    if compare_stored {
        assert_eq!(emu, stored(&conn), "{name}: fairshare-emulate vs flux-accounting's stored values");
    }
}

#[test]
fn emulate_matches_update_fshare_on_small_no_tie() {
    check_fixture("small_no_tie.db", true);
}

#[test]
fn emulate_matches_update_fshare_on_small_tie() {
    check_fixture("small_tie.db", true);
}

#[test]
fn emulate_matches_update_fshare_on_small_tie_all() {
    check_fixture("small_tie_all.db", true);
}

#[test]
fn emulate_matches_update_fshare_on_small_tie_zero_shares() {
    check_fixture("small_tie_zero_shares.db", true);
}

#[test]
fn emulate_matches_update_fshare_on_out_of_insert_order() {
    // flux-accounting never ran update-fshare on this one (fairshare 0.0).
    check_fixture("out_of_insert_order.db", false);
}

/// After the demo pipeline, the ledger's own fair-share column (written by
/// update-fshare) equals fairshare-emulate's output on the ledger's tree.
#[test]
fn emulate_matches_update_fshare_on_the_demo_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    ok(&db, &["demo"]);
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let doc = export_f(&conn);
    let emu = emulated(dir.path(), &doc);
    let mut ledger: Vec<(String, String, String)> = {
        let mut stmt = conn.prepare("SELECT bank, username, fairshare FROM association_table").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, fluxacct_commands::format::py_float(r.get(2)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    ledger.sort();
    assert_eq!(emu, ledger);
    let distinct: std::collections::BTreeSet<&String> = emu.iter().map(|e| &e.2).collect();
    assert!(distinct.len() >= 2);
}

#[test]
fn emulate_reads_input_option_and_reports_missing_file_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let f = dir.path().join("t.json");
    std::fs::write(&f, r#"{"root": {"bank": "r", "children": [{"bank": "A", "children": [{"username": "u"}]}]}}"#)
        .unwrap();
    let out = ok(&db, &["fairshare-emulate", "-i", f.to_str().unwrap()]);
    assert_eq!(out, "Username | Bank | Shares | Usage | FairShare\n---------+------+--------+-------+----------\nu        | A    | 1      | 0.0   | 1.0      \n");
    // flux-accounting's `flux account-fairshare-emulate` spelling.
    let alias = Path::new(common::BIN).with_file_name("flux-account-fairshare-emulate");
    let o = std::process::Command::new(alias).args(["-i", f.to_str().unwrap(), "-P"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "u|A|1|0.0|1.0\n");
    let r = fa(&db, &["fairshare-emulate", "/nonexistent.json"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "flux-account: error: fairshare-emulate: FileNotFoundError: input file not found: /nonexistent.json\n"
    );
    assert!(!db.exists(), "fairshare-emulate does not touch the ledger path");
}

/// With disabled rows (a deleted user, a deleted bank and its users), the
/// `export-db -F` document makes fairshare-emulate agree with the ledger's
/// own update-fshare on every active association.
#[test]
fn emulate_on_export_db_f_agrees_with_the_ledger_when_users_and_banks_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    ok(&db, &["demo"]);
    ok(&db, &["delete-user", "posey", "giants"]);
    ok(&db, &["delete-bank", "outfield"]);
    ok(&db, &["update-fshare"]);
    let doc: Value = serde_json::from_str(&ok(&db, &["export-db", "-F"])).unwrap();
    let emu = emulated(dir.path(), &doc);
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut ledger: Vec<(String, String, String)> = {
        let mut stmt =
            conn.prepare("SELECT bank, username, fairshare FROM association_table WHERE active = 1").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, fluxacct_commands::format::py_float(r.get(2)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    ledger.sort();
    assert_eq!(emu, ledger);
    assert_eq!(emu.len(), 3, "{emu:?}");
}
