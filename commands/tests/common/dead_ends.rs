//! The site and log edits the no-dead-ends and corruption tests share
//! (`no_dead_ends.rs`, `no_stuck_site.rs`, `corruption.rs`).
#![allow(dead_code)]

use crate::common::*;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The seed site with one more user, 20 job records, a usage and a
/// fair-share update.
pub fn site() -> (tempfile::TempDir, PathBuf) {
    site_with_jobs(20)
}

/// The seed site with one more user, `jobs` job records, a usage and a
/// fair-share update.
pub fn site_with_jobs(jobs: u64) -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = new_db();
    seed_000(&db);
    ok(&db, &["add-user", "--username=mays", "--userid=1002", "--bank=giants"]);
    let mut lines = String::new();
    for i in 0..jobs {
        let t = 1_767_200_000.0 + i as f64 * 61.5;
        let user = if i % 2 == 0 { 1001 } else { 1002 };
        lines.push_str(&format!(
            "{{\"id\":{},\"userid\":{user},\"bank\":\"giants\",\"t_run\":{},\"t_inactive\":{t}}}\n",
            1000 + i,
            t - 30.0
        ));
    }
    let f = dir.path().join("jobs.jsonl");
    std::fs::write(&f, lines).expect("write");
    ok(&db, &["fetch-job-records", "--from-file", f.to_str().expect("utf8")]);
    ok(&db, &["update-usage"]);
    ok(&db, &["update-fshare"]);
    (dir, db)
}

/// Runs `sql` on the ledger with the write-once triggers dropped (a hand
/// edit of the log).
pub fn edit_log(db: &Path, sql: &str) {
    let conn = Connection::open(db).expect("open");
    conn.execute_batch("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;")
        .expect("drop triggers");
    conn.execute_batch(sql).expect("edit");
}

pub fn seq_of(db: &Path, kind: &str) -> i64 {
    let conn = Connection::open(db).expect("open");
    conn.query_row("SELECT max(seq) FROM events WHERE kind = ?1", [kind], |r| r.get(0)).expect("seq")
}
