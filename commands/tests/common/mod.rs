//! Helpers for the black-box CLI tests: run the `flux-account` binary of
//! this package against a temporary ledger, with a fixed clock.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_flux-account");

/// Fixed "now" for every command (2026-01-01T00:00:00Z).
pub const NOW: &str = "1767225600";

/// What one run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `flux-account -p DB args...`.
pub fn fa(db: &Path, args: &[&str]) -> Run {
    let out =
        Command::new(BIN).arg("-p").arg(db).args(args).env("FLUXACCT_NOW", NOW).output().expect("run flux-account");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and asserts success.
pub fn ok(db: &Path, args: &[&str]) -> String {
    let r = fa(db, args);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

/// Runs and asserts exit 1 with exactly one line on stderr; returns it.
pub fn fails(db: &Path, args: &[&str]) -> String {
    let r = fa(db, args);
    assert_eq!(r.code, 1, "{args:?} should fail: stdout {} stderr {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{args:?}: one stderr line expected, got {:?}", r.stderr);
    assert!(r.stderr.ends_with('\n'));
    r.stderr.trim_end().to_string()
}

/// A temp dir with a fresh ledger `t.db`.
pub fn new_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok(&db, &["create-db"]);
    (dir, db)
}

/// The seed 000 health-checklist site.
pub fn seed_000(db: &Path) {
    ok(db, &["add-bank", "root", "1"]);
    ok(db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok(db, &["add-user", "--username=crawford", "--bank=giants"]);
    ok(db, &["add-queue", "orange"]);
    ok(db, &["add-project", "shortstops"]);
}

fn cell(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("i{i}"),
        ValueRef::Real(f) => format!("r{f:?}"),
        ValueRef::Text(t) => format!("t{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("b{b:?}"),
    }
}

/// Every row of `table`, all columns, ordered by every column.
pub fn dump_table(conn: &Connection, table: &str) -> String {
    let ncols: usize = conn.prepare(&format!("SELECT * FROM {table} LIMIT 0")).map(|s| s.column_count()).unwrap_or(0);
    if ncols == 0 {
        return format!("{table}: <missing>\n");
    }
    let order: Vec<String> = (1..=ncols).map(|i| i.to_string()).collect();
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {}", order.join(","))).expect("select");
    let mut rows = stmt.query([]).expect("query");
    let mut out = format!("{table}:\n");
    while let Some(r) = rows.next().expect("row") {
        let cells: Vec<String> = (0..ncols).map(|i| cell(r.get_ref(i).expect("cell"))).collect();
        out.push_str(&cells.join("|"));
        out.push('\n');
    }
    out
}

/// Every projection table, dumped.
pub fn dump_projections(conn: &Connection) -> String {
    projections::schema::PROJECTION_TABLES.iter().map(|t| dump_table(conn, t)).collect()
}

/// Event count plus every projection table of the ledger file.
pub fn snapshot(db: &Path) -> String {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let n: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count");
    format!("events={n}\n{}{}", dump_table(&conn, "events"), dump_projections(&conn))
}

/// Number of events.
pub fn event_count(db: &Path) -> i64 {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count")
}
