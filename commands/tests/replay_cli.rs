//! Black-box tests of replay: `rebuild [--check]`, `--as-of`, `diff`,
//! `checkpoint` and `verify --checkpoint`.

use std::path::{Path, PathBuf};
use std::process::Command;

use fluxacct_core::{Actor, EventHash, Seq};
use rusqlite::{params, Connection};

const BIN: &str = env!("CARGO_BIN_EXE_flux-account");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn fa_at(db: &Path, now: &str, args: &[&str]) -> Run {
    let out =
        Command::new(BIN).arg("-p").arg(db).args(args).env("FLUXACCT_NOW", now).output().expect("run flux-account");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_at(db: &Path, now: &str, args: &[&str]) -> String {
    let r = fa_at(db, now, args);
    assert_eq!(r.code, 0, "{args:?} failed: {}{}", r.stderr, r.stdout);
    r.stdout
}

fn ok(db: &Path, args: &[&str]) -> String {
    ok_at(db, "2026-01-05", args)
}

fn fails(db: &Path, args: &[&str]) -> Run {
    let r = fa_at(db, "2026-01-05", args);
    assert_ne!(r.code, 0, "{args:?} unexpectedly succeeded: {}", r.stdout);
    r
}

/// A ledger with banks, users, a queue and a project, recorded on
/// 2026-01-01 and 2026-01-02, plus job records and usage and fair-share
/// updates on 2026-01-03.
fn site(dir: &Path) -> PathBuf {
    let db = dir.join("l.db");
    let d1 = "2026-01-01";
    ok_at(&db, d1, &["create-db"]);
    ok_at(&db, d1, &["add-bank", "root", "1"]);
    ok_at(&db, d1, &["add-bank", "A", "1", "--parent-bank", "root"]);
    ok_at(&db, d1, &["add-bank", "B", "2", "--parent-bank", "root"]);
    let d2 = "2026-01-02";
    ok_at(&db, d2, &["add-user", "--username", "crawford", "--bank", "A", "--userid", "1001"]);
    ok_at(&db, d2, &["add-user", "--username", "bob", "--bank", "A", "--userid", "1002"]);
    ok_at(&db, d2, &["add-user", "--username", "bob", "--bank", "B", "--userid", "1002"]);
    let _ = fa_at(&db, d2, &["add-queue", "batch"]);
    let _ = fa_at(&db, d2, &["add-project", "physics"]);
    // Job records and usage updates.
    let d3 = "2026-01-03";
    let t0 = 1_767_225_600.0_f64; // 2026-01-01
    let mut jobs = String::new();
    for i in 0..20u32 {
        let (uid, bank) = match i % 3 {
            0 => (1001, "A"),
            1 => (1002, "A"),
            _ => (1002, "B"),
        };
        let t_run = t0 + 3600.0 * f64::from(i);
        jobs.push_str(&format!(
            "{{\"id\": {}, \"userid\": {uid}, \"t_submit\": {t_run}, \"t_run\": {t_run}, \"t_inactive\": {}, \
             \"jobspec\": {{\"attributes\": {{\"system\": {{\"bank\": \"{bank}\", \"duration\": 60.0}}}}}}, \
             \"R\": {{\"version\":1,\"execution\":{{\"R_lite\":[{{\"rank\":\"0-1\",\"children\":{{\"core\":\"0-3\"}}}}]}}}}}}\n",
            100 + i,
            t_run + 1800.0
        ));
    }
    let jobs_file = dir.join("jobs.json");
    std::fs::write(&jobs_file, jobs).expect("write jobs");
    ok_at(&db, d3, &["fetch-job-records", "--from-file", jobs_file.to_str().expect("utf8 path")]);
    ok_at(&db, d3, &["update-usage"]);
    ok_at(&db, d3, &["update-fshare"]);
    db
}

fn head(db: &Path) -> u64 {
    let c = Connection::open(db).expect("open");
    c.query_row("SELECT max(seq) FROM events", [], |r| r.get::<_, i64>(0)).expect("head") as u64
}

fn kinds(db: &Path) -> Vec<String> {
    let c = Connection::open(db).expect("open");
    let mut s = c.prepare("SELECT kind FROM events ORDER BY seq").expect("prepare");
    let v = s.query_map([], |r| r.get(0)).expect("query").collect::<Result<Vec<String>, _>>().expect("rows");
    v
}

// ---------------------------------------------------------------- 1. rebuild

#[test]
fn rebuild_check_catches_a_hand_edit_and_rebuild_restores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let k = kinds(&db);
    for want in ["AssociationAdded", "JobRecorded", "UsageUpdated", "FairshareUpdated"] {
        assert!(k.iter().any(|x| x == want), "fixture lacks {want}: {k:?}");
    }
    let out = ok(&db, &["rebuild", "--check"]);
    assert!(out.starts_with("ok:"), "{out}");

    Connection::open(&db)
        .expect("open")
        .execute("UPDATE association_table SET shares=99 WHERE username='crawford' AND bank='A'", [])
        .expect("hand edit");
    let r = fails(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["association_table [username='crawford', bank='A']: shares: live 99, replayed 1"],
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("1 difference"), "{}", r.stderr);

    let out = ok(&db, &["rebuild"]);
    assert!(out.contains("rebuilt"), "{out}");
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok:"));
    let shares: i64 = Connection::open(&db)
        .expect("open")
        .query_row("SELECT shares FROM association_table WHERE username='crawford'", [], |r| r.get(0))
        .expect("row");
    assert_eq!(shares, 1);
}

#[test]
fn rebuild_check_reports_deleted_and_invented_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let c = Connection::open(&db).expect("open");
    c.execute("DELETE FROM bank_table WHERE bank='B'", []).expect("delete");
    c.execute("INSERT INTO queue_table(queue) VALUES ('ghost')", []).expect("insert");
    drop(c);
    let r = fails(&db, &["rebuild", "--check"]);
    assert!(r.stdout.contains("bank_table [bank_id=3]: row missing from live"), "{}", r.stdout);
    assert!(r.stdout.contains("queue_table [queue='ghost']: row in live only"), "{}", r.stdout);
    ok(&db, &["rebuild"]);
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok:"));
}

// ---------------------------------------------------------------- 2. --as-of

fn max_running(out: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(out).expect("view-user prints JSON");
    let row = if v.is_array() { &v[0] } else { &v };
    row["max_running_jobs"].as_i64().expect("max_running_jobs")
}

#[test]
fn as_of_shows_the_past_by_seq_and_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let before = head(&db);
    ok_at(&db, "2026-01-04", &["edit-user", "crawford", "--max-running-jobs", "9"]);
    assert_eq!(head(&db), before + 1);

    assert_eq!(max_running(&ok(&db, &["view-user", "crawford"])), 9);
    let seq = before.to_string();
    assert_eq!(max_running(&ok(&db, &["--as-of", &seq, "view-user", "crawford"])), 5);
    assert_eq!(max_running(&ok(&db, &["--as-of", &(before + 1).to_string(), "view-user", "crawford"])), 9);
    // Time-based as-of matches seq-based.
    let by_time = ok(&db, &["--as-of", "2026-01-03T12:00:00Z", "view-user", "crawford"]);
    assert_eq!(by_time, ok(&db, &["--as-of", &seq, "view-user", "crawford"]));
    assert_eq!(
        ok(&db, &["--as-of", "2026-01-04T00:00:00Z", "view-user", "crawford"]),
        ok(&db, &["view-user", "crawford"])
    );
    // The log as of a seq ends there.
    assert_eq!(ok(&db, &["--as-of", "3", "log"]).lines().count(), 3);
    // view-bank too.
    assert!(ok(&db, &["--as-of", "3", "view-bank", "A"]).contains('A'));
    assert_ne!(fa_at(&db, "2026-01-05", &["--as-of", "2", "view-bank", "A"]).code, 0);
    // Beyond the head, and before the first event: refused.
    assert!(fails(&db, &["--as-of", "100000", "view-user", "crawford"]).stderr.contains("beyond"));
    assert!(fails(&db, &["--as-of", "2025-01-01", "view-user", "crawford"]).stderr.contains("no event"));
}

#[test]
fn as_of_uses_stored_projection_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let before = head(&db);
    // A projection checkpoint every 5 events (rebuild) and at the head
    // (checkpoint); the answers must not change.
    let plain = ok(&db, &["--as-of", &before.to_string(), "view-user", "crawford"]);
    let jobs_plain = ok(&db, &["--as-of", &before.to_string(), "view-job-records"]);
    ok(&db, &["rebuild", "--checkpoint-every", "5"]);
    ok(&db, &["checkpoint"]);
    ok_at(&db, "2026-01-04", &["edit-user", "crawford", "--max-running-jobs", "9"]);
    let n: i64 = Connection::open(&db)
        .expect("open")
        .query_row("SELECT count(*) FROM projection_checkpoints", [], |r| r.get(0))
        .expect("count");
    assert!(n >= 2, "{n}");
    assert_eq!(ok(&db, &["--as-of", &before.to_string(), "view-user", "crawford"]), plain);
    assert_eq!(ok(&db, &["--as-of", &before.to_string(), "view-job-records"]), jobs_plain);
    assert_eq!(max_running(&ok(&db, &["--as-of", &(before + 1).to_string(), "view-user", "crawford"])), 9);
    // Every point gives the same state hash with and without checkpoints.
    for s in 1..=before + 1 {
        let with = ok(&db, &["--as-of", &s.to_string(), "checkpoint", "--no-store"]);
        let v: serde_json::Value = serde_json::from_str(&with).expect("json");
        assert_eq!(v["seq"].as_u64(), Some(s));
    }
}

#[test]
fn write_commands_refuse_as_of() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    for args in [
        vec!["--as-of", "3", "edit-user", "crawford", "--max-running-jobs", "3"],
        vec!["--as-of", "3", "add-bank", "C", "1", "--parent-bank", "root"],
        vec!["--as-of", "3", "rebuild"],
        vec!["--as-of", "2026-01-02", "update-usage"],
    ] {
        let r = fails(&db, &args);
        assert!(r.stderr.contains("--as-of"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn diff_lists_added_removed_and_changed_rows_with_their_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let before = head(&db);
    ok_at(&db, "2026-01-04", &["edit-user", "crawford", "--max-running-jobs", "9"]);
    ok_at(&db, "2026-01-04", &["add-bank", "C", "1", "--parent-bank", "root"]);
    let out = ok(&db, &["diff", &before.to_string(), &(before + 2).to_string()]);
    let edit = before + 1;
    assert!(
        out.contains(&format!(
            "changed association_table [username='crawford', bank='A']: mod_time 1767312000 -> 1767484800, \
             max_running_jobs 5 -> 9  (events: {edit} AssociationEdited)"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("(events: {} BankAdded)", before + 2)), "{out}");
    assert!(out.contains("added   bank_table [bank_id=4]"), "{out}");
    assert!(out.contains("events by table:"), "{out}");
    // Reversed: the bank is removed.
    let err = fails(&db, &["diff", &(before + 2).to_string(), &before.to_string()]);
    assert!(err.stderr.contains("after"), "{}", err.stderr);
    let out = ok(&db, &["diff", "2026-01-03T12:00:00Z", "now"]);
    assert!(out.contains("max_running_jobs 5 -> 9"), "{out}");
    // Job records (the `jobs` view over the log) show up as added rows.
    let out = ok(&db, &["diff", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z"]);
    assert!(out.contains("added   jobs [id=100]: id=100, seq="), "{out}");
    assert!(out.contains("added   jobs [id=119]"), "{out}");
    assert!(out.contains("JobRecorded)"), "{out}");
}

/// `edit-bank --ignore-older-than` re-bins the bank's jobs: the usage rows it
/// changes (`usage_bins`, `association_table.job_usage`) are attributed to
/// the `BankEdited` event (it used to name `bank_table` only, so those rows
/// showed no cause).
#[test]
fn diff_attributes_usage_changes_of_bank_edited_ignore_older_than() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let before = head(&db);
    // 2026-01-01T05:00:00Z: bank A's first jobs no longer count.
    ok_at(&db, "2026-01-04", &["edit-bank", "A", "--ignore-older-than", "1767243600"]);
    let out = ok(&db, &["diff", &before.to_string(), &(before + 1).to_string()]);
    let cause = format!("(events: {} BankEdited)", before + 1);
    let usage: Vec<&str> = out.lines().filter(|l| l.starts_with("changed association_table")).collect();
    assert!(!usage.is_empty(), "{out}");
    for l in &usage {
        assert!(l.contains("job_usage") && l.ends_with(&cause), "{l}\n{out}");
    }
    let bins: Vec<&str> = out.lines().filter(|l| l.contains(" usage_bins [")).collect();
    assert!(!bins.is_empty(), "{out}");
    for l in &bins {
        assert!(l.ends_with(&cause), "{l}\n{out}");
    }
    assert!(out.contains(&format!("  usage_bins: {} BankEdited", before + 1)), "{out}");
}

// ---------------------------------------------------------------- 3. checkpoints

fn checkpoint(db: &Path) -> String {
    let line = ok(db, &["checkpoint"]);
    assert_eq!(line.lines().count(), 1, "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json line");
    assert_eq!(v["seq"].as_u64(), Some(head(db)));
    assert_eq!(v["hash"].as_str().map(str::len), Some(64));
    assert_eq!(v["state_hash"].as_str().map(str::len), Some(64));
    assert_eq!(v["time"].as_str(), Some("2026-01-05T00:00:00.000000+00:00"));
    line.trim().to_string()
}

/// Opens the ledger with its write-once triggers dropped.
fn tamper(db: &Path) -> Connection {
    let c = Connection::open(db).expect("open");
    c.execute_batch("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;")
        .expect("drop triggers");
    c
}

/// seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload.
type EventRow = (i64, i64, i64, String, String, String, i64, Vec<u8>);

/// Recomputes every hash and link from `from` on, so that the chain is
/// consistent with itself again.
fn rechain(c: &Connection, from: u64) {
    let mut prev: EventHash = if from <= 1 {
        EventHash::ZERO
    } else {
        let h: Vec<u8> =
            c.query_row("SELECT hash FROM events WHERE seq = ?1", [from as i64 - 1], |r| r.get(0)).expect("prev");
        EventHash::from_slice(&h).expect("32 bytes")
    };
    let rows: Vec<EventRow> = {
        let mut s = c
            .prepare(
                "SELECT seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload FROM events \
                 WHERE seq >= ?1 ORDER BY seq",
            )
            .expect("prepare");
        let v = s
            .query_map([from as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        v
    };
    for (seq, t, uid, name, argv, kind, version, payload) in rows {
        let argv: Vec<String> = serde_json::from_str(&argv).expect("argv");
        let actor = Actor { uid: uid as u32, name };
        let h = fluxacct_core::event_hash(Seq(seq as u64), t, &actor, &argv, &kind, version as u32, &payload, &prev);
        c.execute("UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1", params![seq, &prev.0[..], &h.0[..]])
            .expect("rechain");
        prev = h;
    }
}

#[test]
fn checkpoint_verifies_now_and_after_more_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let line = checkpoint(&db);
    let out = ok(&db, &["verify", "--checkpoint", &line]);
    assert!(out.contains("ok"), "{out}");
    ok_at(&db, "2026-01-04", &["edit-user", "crawford", "--max-running-jobs", "9"]);
    ok_at(&db, "2026-01-04", &["add-bank", "C", "1", "--parent-bank", "root"]);
    let out = ok(&db, &["verify", "--checkpoint", &line]);
    assert!(out.contains("checkpoint seq") && out.contains("ok"), "{out}");
    // From a file holding several lines.
    let second = checkpoint(&db);
    let file = dir.path().join("cp.txt");
    std::fs::write(&file, format!("{line}\n{second}\n")).expect("write");
    let out = ok(&db, &["verify", "--checkpoint", file.to_str().expect("utf8")]);
    assert_eq!(out.matches(" ok:").count(), 2, "{out}");
}

#[test]
fn checkpoint_detects_a_rewritten_event_with_a_recomputed_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let line = checkpoint(&db);
    ok_at(&db, "2026-01-04", &["edit-user", "crawford", "--max-running-jobs", "9"]);
    let c = tamper(&db);
    // Give bob in bank B 50 shares instead of 1 at his AssociationAdded.
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM events WHERE kind='AssociationAdded' AND payload LIKE '%\"bank\":\"B\"%' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("event");
    c.execute(
        "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '\"shares\":1,', '\"shares\":50,') AS BLOB) \
         WHERE seq = ?1",
        [seq],
    )
    .expect("rewrite");
    rechain(&c, seq as u64);
    drop(c);
    // The chain is self-consistent: plain verify passes...
    ok(&db, &["verify"]);
    // ...but the checkpoint does not.
    let r = fails(&db, &["verify", "--checkpoint", &line]);
    assert!(r.stderr.contains("history rewritten or reordered"), "{}", r.stderr);
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
}

#[test]
fn checkpoint_detects_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let n = head(&db);
    let line = checkpoint(&db);
    let c = tamper(&db);
    c.execute("DELETE FROM events WHERE seq >= ?1", [n as i64 - 2]).expect("truncate");
    drop(c);
    ok(&db, &["verify"]);
    let r = fails(&db, &["verify", "--checkpoint", &line]);
    assert!(r.stderr.contains("log truncated"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("ends at seq {}", n - 3)), "{}", r.stderr);
}

#[test]
fn checkpoint_detects_two_swapped_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let line = checkpoint(&db);
    let c = tamper(&db);
    // Swap the two bank additions A (seq 3) and B (seq 4), keeping seqs
    // gapless, and recompute the chain.
    c.execute_batch(
        "UPDATE events SET seq = -1 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = 4; \
         UPDATE events SET seq = 4 WHERE seq = -1;",
    )
    .expect("swap");
    rechain(&c, 3);
    drop(c);
    ok(&db, &["verify"]);
    let r = fails(&db, &["verify", "--checkpoint", &line]);
    assert!(r.stderr.contains("history rewritten or reordered"), "{}", r.stderr);
    // Without recomputing, plain verify already fails.
    let db2 = site(&dir.path().join("second"));
    let line2 = checkpoint(&db2);
    tamper(&db2)
        .execute_batch(
            "UPDATE events SET seq = -1 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = 4; \
             UPDATE events SET seq = 4 WHERE seq = -1;",
        )
        .expect("swap");
    let r = fails(&db2, &["verify", "--checkpoint", &line2]);
    assert!(r.stderr.contains("seq 3"), "{}", r.stderr);
}

#[test]
fn checkpoint_line_must_be_well_formed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let r = fails(&db, &["verify", "--checkpoint", "{\"seq\": 1}"]);
    assert!(r.stderr.contains("not a checkpoint line"), "{}", r.stderr);
    let r = fails(&db, &["verify", "--checkpoint", "/nonexistent/cp"]);
    assert!(r.stderr.contains("cannot read checkpoint file"), "{}", r.stderr);
}

/// Projection schema 2 keeps job records in the log: `jobs` is a view over
/// `events`. A ledger written with schema 1 (a `jobs` table, no log
/// indexes) is upgraded when it is first opened, and the view cannot be
/// edited by hand.
#[test]
fn schema_1_jobs_table_is_replaced_by_the_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let jobs_before = ok(&db, &["view-job-records", "-o", "json"]);
    {
        let c = Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP VIEW jobs; DROP TABLE job_ids; DROP TABLE job_times;
             CREATE TABLE jobs (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, userid INTEGER NOT NULL);
             INSERT INTO jobs VALUES (1, 1, 1);
             UPDATE projection_meta SET value = 1 WHERE key = 'schema_version';",
        )
        .expect("make schema 1");
    }
    assert_eq!(ok(&db, &["view-job-records", "-o", "json"]), jobs_before);
    let c = Connection::open(&db).expect("open");
    let kind: String =
        c.query_row("SELECT type FROM sqlite_master WHERE name = 'jobs'", [], |r| r.get(0)).expect("jobs");
    assert_eq!(kind, "view");
    let indexes: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE name IN ('job_ids', 'job_times')", [], |r| r.get(0))
        .expect("indexes");
    assert_eq!(indexes, 2);
    let json_indexes: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'events_job_id'", [], |r| r.get(0))
        .expect("indexes");
    assert_eq!(json_indexes, 0, "schema 5 drops the expression index over job ids");
    let v: i64 =
        c.query_row("SELECT value FROM projection_meta WHERE key = 'schema_version'", [], |r| r.get(0)).expect("v");
    assert_eq!(v, projections::schema::PROJECTION_SCHEMA_VERSION);
    let err = c.execute("UPDATE jobs SET userid = 7", []).expect_err("a view");
    assert!(err.to_string().contains("view"), "{err}");
    let seq: i64 = c.query_row("SELECT seq FROM jobs WHERE id = 105", [], |r| r.get(0)).expect("job 105");
    let by_id: i64 = c.query_row("SELECT seq FROM job_ids WHERE id = 105", [], |r| r.get(0)).expect("job_ids 105");
    assert_eq!(by_id, seq, "job_ids is filled from the log on the upgrade");
}
