//! The ledger file stays sound: no index over JSON floats, so
//! `PRAGMA integrity_check` passes with the bundled SQLite and with the
//! system `sqlite3`; old ledgers are upgraded.

mod common;

use std::path::Path;

use common::*;
use fluxacct_core::events::{DbCreated, Event, JobRecorded};
use fluxacct_core::{Actor, EventMeta};
use ledger::{Ledger, OpenMode};
use proptest::prelude::*;
use rusqlite::Connection;

fn job(id: u64, t_inactive: f64) -> JobRecorded {
    JobRecorded {
        id,
        userid: 1001,
        username: None,
        bank: if id.is_multiple_of(3) { String::new() } else { "giants".into() },
        project: String::new(),
        queue: String::new(),
        t_submit: 0.0,
        t_run: 0.0,
        t_inactive,
        nnodes: 1,
        ncores: 1,
        ngpus: 0,
        requested_duration: 0.0,
        ranks: None,
        r: None,
    }
}

/// A ledger file holding the given job records (library path: append and
/// apply in one transaction).
fn ledger_with_jobs(path: &Path, times: &[f64]) {
    let mut l = Ledger::create(path).expect("create");
    projections::schema::create(l.conn()).expect("schema");
    let meta = EventMeta { recorded_at_us: 1, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
    let mut events = vec![Event::DbCreated(DbCreated::with_defaults(1_767_225_600.0))];
    events.extend(times.iter().enumerate().map(|(i, &t)| Event::JobRecorded(job(i as u64 + 1, t))));
    let mut tx = l.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta, &events).expect("apply");
    tx.commit().expect("commit");
    drop(l);
    let _ = Ledger::open(path, OpenMode::ReadOnly).expect("reopen");
}

/// `fetch-job-records --from-file FILE` at a time after every record's end
/// (the ingest rules refuse end times more than a day after the ingest).
fn fetch_later(db: &Path, file: &Path) {
    let out = std::process::Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(["fetch-job-records", "--from-file"])
        .arg(file)
        .env("FLUXACCT_NOW", "1900000000")
        .output()
        .expect("run flux-account");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn bundled_integrity(path: &Path) -> String {
    let c = Connection::open(path).expect("open");
    let rows: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows.join("\n")
}

/// `PRAGMA integrity_check` of the system `sqlite3` binary, or `None` (with
/// a notice) when there is none.
fn system_integrity(path: &Path) -> Option<String> {
    match std::process::Command::new("sqlite3").arg(path).arg("PRAGMA integrity_check;").output() {
        Ok(out) => Some(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))),
        Err(_) => {
            eprintln!("notice: no system sqlite3 binary; the system-SQLite comparison was not run");
            None
        }
    }
}

/// The reported job end time that Debian's SQLite 3.40 read
/// differently from the bundled one in the old `events_job_t_inactive`.
const REPORTED: f64 = 1790534011.063887;

fn time_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        // Epoch seconds with microsecond fractions.
        (1_000_000_000i64..4_000_000_000i64, 0i64..1_000_000).prop_map(|(s, us)| s as f64 + us as f64 / 1e6),
        // Any fraction.
        (0.0f64..4e9),
        // Small and large values.
        (1e-9f64..1.0),
        (1e12f64..1e300),
        Just(REPORTED),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random job records with random float times: the bundled SQLite's
    /// `integrity_check` is ok (and the system `sqlite3`'s, when there is
    /// one), and `job_times` holds every job at its integer microsecond.
    #[test]
    fn integrity_check_passes_for_any_job_times(times in prop::collection::vec(time_strategy(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        ledger_with_jobs(&db, &times);
        prop_assert_eq!(bundled_integrity(&db), "ok");
        // The same file through the system's SQLite, when there is one.
        if let Some(out) = system_integrity(&db) {
            prop_assert_eq!(out.trim(), "ok", "system sqlite3 integrity_check");
        }
        let c = Connection::open(&db).expect("open");
        let n: i64 = c.query_row("SELECT count(*) FROM job_times", [], |r| r.get(0)).expect("count");
        prop_assert_eq!(n as usize, times.len());
        for (i, t) in times.iter().enumerate() {
            let us: i64 = c
                .query_row("SELECT t_inactive_us FROM job_times WHERE seq = ?1", [i as i64 + 2], |r| r.get(0))
                .expect("row");
            prop_assert_eq!(us, projections::schema::t_us(*t));
        }
    }
}

/// The same kind of file through the CLI, checked by the system `sqlite3`
/// (Debian's 3.40 in CI) as well as the bundled SQLite.
#[test]
fn system_sqlite3_integrity_check_passes() {
    let (dir, db) = new_db();
    seed_000(&db);
    let mut lines = String::new();
    let mut t = REPORTED;
    for i in 0..2000u64 {
        lines.push_str(&format!(
            "{{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_submit\":{},\"t_run\":{},\"t_inactive\":{}}}\n",
            i + 1,
            t - 100.0,
            t - 50.123457,
            t
        ));
        t += 0.000001 + (i as f64) * 0.137911;
    }
    let f = dir.path().join("jobs.jsonl");
    std::fs::write(&f, lines).expect("write");
    fetch_later(&db, &f);
    ok(&db, &["update-usage"]);
    assert_eq!(bundled_integrity(&db), "ok");
    if let Some(out) = system_integrity(&db) {
        assert_eq!(out.trim(), "ok", "system sqlite3 integrity_check");
    }
}

/// Pins the reported failure: with the old expression index the
/// system SQLite (3.40) found a row missing from it; the test fails if such
/// an index is ever created again.
#[test]
fn no_expression_index_over_a_json_float() {
    let (dir, db) = new_db();
    seed_000(&db);
    let f = dir.path().join("jobs.jsonl");
    std::fs::write(&f, format!("{{\"id\":1,\"userid\":1001,\"bank\":\"giants\",\"t_inactive\":{REPORTED}}}\n"))
        .expect("write");
    fetch_later(&db, &f);
    let c = Connection::open(&db).expect("open");
    let float_indexes: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%t_inactive%'")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(float_indexes.is_empty(), "{float_indexes:?}");
    assert_eq!(bundled_integrity(&db), "ok");
    if let Some(out) = system_integrity(&db) {
        assert_eq!(out.trim(), "ok");
    }
}

/// A ledger with projection schema 2 (the float expression index, no
/// `job_times`) is upgraded when opened: the index is dropped, `job_times`
/// is filled from the log, and lookups by time work.
#[test]
fn old_projection_schema_is_upgraded() {
    let (dir, db) = new_db();
    seed_000(&db);
    let f = dir.path().join("jobs.jsonl");
    let mut lines = String::new();
    for i in 0..50 {
        let t = 1_767_200_000.0 + i as f64 * 37.25;
        lines.push_str(&format!(
            "{{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_run\":{},\"t_inactive\":{t}}}\n",
            i + 1,
            t - 10.0
        ));
    }
    std::fs::write(&f, lines).expect("write");
    fetch_later(&db, &f);
    let before = ok(&db, &["view-job-records"]);
    {
        let c = Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP TABLE job_times;
             CREATE INDEX events_job_t_inactive ON events(json_extract(CAST(payload AS TEXT), '$.t_inactive'))
                 WHERE kind = 'JobRecorded';
             UPDATE projection_meta SET value = 2 WHERE key = 'schema_version';",
        )
        .expect("downgrade");
    }
    assert_eq!(ok(&db, &["view-job-records"]), before);
    let c = Connection::open(&db).expect("open");
    let v: i64 = c.query_row("SELECT value FROM projection_meta WHERE key='schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, projections::schema::PROJECTION_SCHEMA_VERSION);
    let idx: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'events_job_t_inactive'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(idx, 0);
    let n: i64 = c.query_row("SELECT count(*) FROM job_times", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 50);
    assert_eq!(bundled_integrity(&db), "ok");
    // The newest record is found through job_times: fetching again skips all.
    let r = fa(&db, &["fetch-job-records", "--from-file", f.to_str().expect("utf8"), "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(common::event_count(&db), 6 + 50);
}
