//! A broken hash chain stops the writes: the O(1) head check of
//! every write, the incremental check of `update-usage`, the break that
//! `verify` records, and `repair --accept-break`.

mod common;

use std::path::Path;

use common::*;
use rusqlite::Connection;

/// Edits event `seq` past the write-once triggers (as an attacker would).
fn edit_event(db: &Path, seq: i64) {
    let c = Connection::open(db).expect("open");
    c.execute_batch("DROP TRIGGER IF EXISTS events_no_update;").expect("drop trigger");
    let n = c.execute("UPDATE events SET actor_name = actor_name || 'x' WHERE seq = ?1", [seq]).expect("edit");
    assert_eq!(n, 1);
}

fn jobs_file(dir: &Path) -> String {
    let f = dir.join("jobs.jsonl");
    std::fs::write(
        &f,
        "{\"id\":1,\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767225000,\"t_inactive\":1767225500}\n",
    )
    .expect("write");
    f.to_str().expect("utf8").to_string()
}

/// (a) The head event is edited: the next write exits 1 naming its seq.
#[test]
fn edited_head_refuses_the_next_write() {
    let (_dir, db) = new_db();
    seed_000(&db);
    let head = event_count(&db);
    edit_event(&db, head);
    let e = fails(&db, &["add-user", "--username=mays", "--bank=giants"]);
    assert!(e.contains(&format!("broken at seq {head}")), "{e}");
    assert!(e.contains("verify"), "{e}");
    assert_eq!(event_count(&db), head);
    // The break is now recorded: other writes are refused the same way.
    let e = fails(&db, &["add-queue", "blue"]);
    assert!(e.contains(&format!("broken at seq {head}")), "{e}");
    assert_eq!(event_count(&db), head);
}

/// (b) An old event is edited: `verify` names it and records it, and then
/// every write is refused naming the same seq. `repair --accept-break`
/// records the break as an event, writes resume, and `verify` reports the
/// break as accepted with the reason.
#[test]
fn recorded_break_refuses_writes_until_accepted() {
    let (dir, db) = new_db();
    seed_000(&db);
    let n = event_count(&db);
    edit_event(&db, 3);
    let r = fa(&db, &["verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("chain broken at seq 3"), "{}", r.stderr);
    let jobs = jobs_file(dir.path());
    for args in [
        vec!["add-user", "--username=mays", "--bank=giants"],
        vec!["fetch-job-records", "--from-file", &jobs],
        vec!["update-usage"],
        vec!["update-fshare"],
        vec!["priority-update", "--no-flux"],
    ] {
        let e = fails(&db, &args);
        assert!(e.contains("broken at seq 3"), "{args:?}: {e}");
        assert_eq!(event_count(&db), n, "{args:?} appended");
    }
    assert!(!dir.path().join("t.db.snapshot").exists(), "no snapshot built on a broken chain");
    // Accepting another seq, or without a reason, is refused.
    let e = fails(&db, &["repair", "--accept-break", "4", "--reason", "x"]);
    assert!(e.contains("seq 3"), "{e}");
    assert_eq!(event_count(&db), n);
    let out = ok(&db, &["repair", "--accept-break", "3", "--reason", "actor name fixed by hand, checked by auditor"]);
    assert!(out.contains("writes resume"), "{out}");
    assert_eq!(event_count(&db), n + 1);
    let log = ok(&db, &["log", "--kind", "BreakAccepted"]);
    assert!(log.contains("actor name fixed by hand, checked by auditor"), "{log}");
    assert!(log.contains("BreakAccepted  {\"seq\":3,"), "{log}");
    ok(&db, &["add-user", "--username=mays", "--bank=giants"]);
    ok(&db, &["fetch-job-records", "--from-file", &jobs]);
    ok(&db, &["update-usage"]);
    let v = ok(&db, &["verify"]);
    assert!(v.contains("accepted break at seq 3"), "{v}");
    assert!(v.contains("actor name fixed by hand, checked by auditor"), "{v}");
    assert!(v.starts_with(&format!("ok: {} events", n + 4)), "{v}");
}

/// (c) An event after the last verified seq is edited: the next
/// `update-usage` (which verifies from there to the head) exits 1 naming it.
#[test]
fn update_usage_verifies_incrementally() {
    let (_dir, db) = new_db();
    seed_000(&db);
    ok(&db, &["update-usage"]);
    let verified = event_count(&db);
    ok(&db, &["add-user", "--username=mays", "--bank=giants"]);
    ok(&db, &["add-queue", "blue"]);
    ok(&db, &["add-queue", "green"]);
    let n = event_count(&db);
    // Not the head: the head check of a write does not see it.
    let target = verified + 2;
    assert!(target < n);
    edit_event(&db, target);
    let e = fails(&db, &["update-usage"]);
    assert!(e.contains(&format!("broken at seq {target}")), "{e}");
    assert_eq!(event_count(&db), n);
    let e = fails(&db, &["add-queue", "red"]);
    assert!(e.contains(&format!("broken at seq {target}")), "{e}");
    assert_eq!(event_count(&db), n);
}
