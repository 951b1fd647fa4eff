//! Job records read back: rejections recorded once however often a file is
//! read, records that match no association counted and listed, and job
//! users named from the associations when passwd does not know them.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use common::{event_count, fa, ok};

/// FLUXACCT_NOW of the tests, in seconds.
const NOW_S: f64 = 1_767_225_600.0;

/// A uid that no passwd database of a test machine holds.
const GHOST_UID: u64 = 3_999_999_001;

fn site() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok(&db, &["create-db"]);
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "A", "1"]);
    ok(&db, &["add-user", "--username=u1", "--userid=1001", "--bank=A"]);
    ok(&db, &["add-user", "--username=ghost", &format!("--userid={GHOST_UID}"), "--bank=A"]);
    (dir, db)
}

fn job(id: u64, userid: u64, bank: Option<&str>) -> Value {
    let end = NOW_S - 3600.0;
    let mut j = json!({"id": id, "userid": userid, "t_submit": end - 200.0, "t_run": end - 100.0,
                       "t_inactive": end, "nnodes": 1});
    if let Some(b) = bank {
        j["bank"] = json!(b);
    }
    j
}

fn write(db: &Path, name: &str, text: &str) -> String {
    let path = db.with_file_name(name);
    std::fs::write(&path, text).expect("write input");
    path.to_str().expect("utf8 path").to_string()
}

fn rejected_events(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row("SELECT count(*) FROM events WHERE kind = 'JobRejected'", [], |r| r.get(0)).expect("count")
}

#[test]
fn reading_the_same_file_again_records_its_bad_lines_once() {
    let (_d, db) = site();
    let text = format!(
        "{}\nthis is not json\n{}\n{}\n",
        job(1, 1001, Some("A")),
        json!({"userid": 1001, "bank": "A"}),
        json!({"id": 7, "userid": 1001, "bank": "A", "t_run": 5.0, "t_inactive": 1.0})
    );
    let path = write(&db, "in.jsonl", &text);
    let first = fa(&db, &["fetch-job-records", "--from-file", &path]);
    assert_eq!(first.code, 3, "{} {}", first.stdout, first.stderr);
    assert_eq!(rejected_events(&db), 3);
    let events = event_count(&db);
    for _ in 0..2 {
        let again = fa(&db, &["fetch-job-records", "--from-file", &path]);
        assert_eq!(again.code, 0, "{} {}", again.stdout, again.stderr);
        assert!(
            again.stdout.starts_with("recorded 0, already recorded 1, rejected 0 (and 3 rejected by an earlier fetch)"),
            "{}",
            again.stdout
        );
        assert_eq!(event_count(&db), events, "no new events");
    }
    // A bad line at another place is still recorded.
    let other = write(
        &db,
        "other.jsonl",
        &format!("{}\n{}\nthis is not json\n", job(2, 1001, Some("A")), job(3, 1001, Some("A"))),
    );
    assert_eq!(fa(&db, &["fetch-job-records", "--from-file", &other]).code, 3);
    assert_eq!(rejected_events(&db), 4);
}

#[test]
fn records_that_match_no_association_are_counted_in_the_summary_and_listed_with_orphans() {
    let (_d, db) = site();
    let mut lines = vec![job(1, 1001, Some("A")).to_string()];
    for i in 0..10 {
        lines.push(job(100 + i, 9999, Some("A")).to_string());
    }
    lines.push(job(200, 1001, Some("nosuchbank")).to_string());
    lines.push(job(201, 1001, None).to_string());
    let path = write(&db, "in.jsonl", &(lines.join("\n") + "\n"));
    let out = ok(&db, &["fetch-job-records", "--from-file", &path]);
    assert_eq!(
        out.trim_end(),
        "recorded 13, already recorded 0, rejected 0; \
         12 records match no association: uid 9999 ×10, bank nosuchbank ×1, no bank ×1"
    );
    let listed = ok(&db, &["view-job-records", "--orphans", "-o", "{jobid.dec}"]);
    let ids: Vec<&str> = listed.lines().skip(1).collect();
    let mut want: Vec<String> = (100..110).map(|i| i.to_string()).collect();
    want.extend(["200".to_string(), "201".to_string()]);
    assert_eq!(ids, want);
    let all = ok(&db, &["view-job-records", "-o", "{jobid.dec}"]);
    assert_eq!(all.lines().count(), 14);
    // Recorded again: nothing new, no orphans counted.
    let again = ok(&db, &["fetch-job-records", "--from-file", &path]);
    assert_eq!(again.trim_end(), "recorded 0, already recorded 13, rejected 0");
}

#[test]
fn job_users_unknown_to_passwd_are_named_and_found_by_their_association() {
    let (_d, db) = site();
    let path = write(&db, "in.jsonl", &format!("{}\n{}\n", job(1, 1001, Some("A")), job(2, GHOST_UID, Some("A"))));
    ok(&db, &["fetch-job-records", "--from-file", &path]);
    let listed = ok(&db, &["view-job-records", "-o", "{jobid.dec} {username}"]);
    assert_eq!(listed.lines().skip(1).collect::<Vec<_>>(), vec!["1 u1", "2 ghost"]);
    let mine = ok(&db, &["view-job-records", "-u", "ghost", "-o", "{jobid.dec}"]);
    assert_eq!(mine.lines().skip(1).collect::<Vec<_>>(), vec!["2"]);
}
