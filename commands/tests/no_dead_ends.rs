//! No dead ends: after a hand edit, a damaged or edited event, an accepted
//! break, or a path that is not a ledger file, the tools name what is wrong
//! (with its seq) and some command gets the site back to a working ledger.

mod common;
use common::*;
#[path = "common/dead_ends.rs"]
mod dead_ends;
use dead_ends::*;

use std::path::Path;

use rusqlite::Connection;

/// Appends a `FairshareUpdated` whose digest no replay reproduces, with a
/// sound hash chain: what an `update-fshare` over hand-edited rows
/// recorded before it checked them (existing sites carry such events).
fn append_foreign_digest(db: &Path) -> i64 {
    use fluxacct_core::events::{Event, FairshareUpdated};
    use fluxacct_core::{Actor, EventMeta};
    use ledger::{Ledger, OpenMode};
    let mut l = Ledger::open(db, OpenMode::ReadWrite).expect("open");
    let ev = Event::FairshareUpdated(FairshareUpdated { associations: 2, digest: "2493".repeat(16) });
    let meta =
        EventMeta { recorded_at_us: 1_767_225_600_000_000, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
    let mut tx = l.transaction().expect("tx");
    let a = tx.append(&meta, ev.kind(), ev.version(), &ev.encode().expect("encode")).expect("append");
    tx.commit().expect("commit");
    a.seq.0 as i64
}

#[test]
fn a_recorded_digest_the_log_does_not_imply_is_reported_and_carried_by_every_replay() {
    let (_d, db) = site();
    let seq = append_foreign_digest(&db);
    let warning = format!("flux-account: warning: replay: seq {seq}: fair-share recomputation");
    let r = fa(&db, &["rebuild"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&warning), "{r:?}");
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&warning), "{r:?}");
    let r = fa(&db, &["--as-of", &format!("seq:{seq}"), "view-user", "mays"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = fa(&db, &["diff", "seq:1", &format!("seq:{seq}")]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    assert!(r.stderr.contains(&warning), "{r:?}");
    let r = fa(&db, &["checkpoint", "--no-store"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&warning), "{r:?}");
    // Deterministic: a second rebuild gives the same tables.
    let before = dump_projections(&Connection::open(&db).expect("open"));
    ok(&db, &["rebuild"]);
    assert_eq!(before, dump_projections(&Connection::open(&db).expect("open")));
}

#[test]
fn update_fshare_refuses_rows_the_log_does_not_imply_and_rebuild_repairs_them() {
    let (_d, db) = site();
    let n = event_count(&db);
    Connection::open(&db)
        .expect("open")
        .execute_batch("UPDATE association_table SET shares = 999999 WHERE username = 'mays'")
        .expect("drift");
    let e = fails(&db, &["update-fshare"]);
    assert!(e.contains("association_table") && e.contains("rebuild"), "{e}");
    assert_eq!(event_count(&db), n, "nothing recorded");
    ok(&db, &["rebuild"]);
    ok(&db, &["update-fshare"]);
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
}

#[test]
fn update_fshare_refuses_a_hand_edited_job_usage_even_after_another_command_and_rebuild_repairs_it() {
    let (_d, db) = site();
    // A run that finds the rows as the log implies seals them; the next
    // runs read only the seal and the rows.
    ok(&db, &["update-fshare"]);
    ok(&db, &["update-fshare"]);
    Connection::open(&db)
        .expect("open")
        .execute_batch("UPDATE association_table SET job_usage = 12345.0 WHERE username = 'mays'")
        .expect("drift");
    // A command that changes other association rows does not re-seal
    // the edited ones.
    ok(&db, &["add-user", "--username=ohtani", "--userid=1003", "--bank=giants"]);
    let n = event_count(&db);
    let e = fails(&db, &["update-fshare"]);
    assert!(e.contains("association_table") && e.contains("job_usage") && e.contains("rebuild"), "{e}");
    assert_eq!(event_count(&db), n, "nothing recorded");
    ok(&db, &["rebuild"]);
    ok(&db, &["update-fshare"]);
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
}

#[test]
fn an_accepted_break_on_an_edited_payload_blocks_neither_rebuild_nor_log() {
    let (_d, db) = site();
    let seq = seq_of(&db, "FairshareUpdated");
    edit_log(
        &db,
        &format!(
            "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '\"digest\":\"', '\"digest\":\"00') AS BLOB) \
             WHERE seq = {seq}"
        ),
    );
    ok(&db, &["repair", "--accept-break", &seq.to_string(), "--reason", "digest edited by hand"]);
    assert!(ok(&db, &["verify"]).starts_with("ok"));
    let r = fa(&db, &["rebuild"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}: fair-share recomputation")), "{r:?}");
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ok(&db, &["log", "--kind", "BreakAccepted"]).contains("digest edited by hand"));
}

#[test]
fn a_payload_turned_into_text_keeps_the_log_and_the_replay_readable() {
    let (_d, db) = site();
    let seq = seq_of(&db, "FairshareUpdated");
    edit_log(&db, &format!("UPDATE events SET payload = CAST(payload AS TEXT) WHERE seq = {seq}"));
    let out = ok(&db, &["log"]);
    assert!(out.contains("FairshareUpdated"), "{out}");
    assert_eq!(fa(&db, &["rebuild"]).code, 0);
    assert_eq!(fa(&db, &["rebuild", "--check"]).code, 0);
}

#[test]
fn a_malformed_job_record_is_named_by_its_seq_and_the_others_still_read() {
    let (_d, db) = site();
    let seq = {
        let conn = Connection::open(&db).expect("open");
        conn.query_row("SELECT min(seq) FROM events WHERE kind = 'JobRecorded'", [], |r| r.get::<_, i64>(0))
            .expect("seq")
    };
    edit_log(
        &db,
        &format!(
            "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), ',', ';') AS BLOB) WHERE seq = {seq}"
        ),
    );
    let r = fa(&db, &["view-job-records"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}")), "{r:?}");
    assert_eq!(r.stdout.lines().count(), 20, "header and the 19 readable jobs: {}", r.stdout);
    let r = fa(&db, &["view-usage-report", "--start", "0"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = fa(&db, &["diff", "seq:1", &format!("seq:{}", event_count(&db))]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}: payload unreadable")), "{r:?}");
    let r = fa(&db, &["rebuild"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}: payload unreadable")), "{r:?}");
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
}

#[test]
fn a_path_that_is_not_a_regular_file_is_refused_before_sqlite_opens_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    for args in [&["list-banks"][..], &["create-db"][..]] {
        let e = fails(&fifo, args);
        assert!(e.contains("is a FIFO (named pipe), not a ledger file"), "{e}");
    }
    let e = fails(dir.path(), &["create-db"]);
    assert!(e.contains("is a directory, not a ledger file"), "{e}");
    let e = fails(Path::new("/dev/null"), &["create-db"]);
    assert!(e.contains("is a character device, not a ledger file"), "{e}");
    assert!(std::fs::read_dir(dir.path()).expect("ls").count() == 1, "nothing created beside the FIFO");
}

#[test]
fn control_characters_in_names_are_escaped_on_output() {
    let (_d, db) = new_db();
    seed_000(&db);
    let name = "\x1b[31mred\x1b]0;pwned\x07";
    let r = fa(&db, &["view-user", name]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains('\x1b') && !r.stderr.contains('\x07'), "{:?}", r.stderr);
    assert!(r.stderr.contains("\\x1b[31mred\\x1b]0;pwned\\x07"), "{:?}", r.stderr);
    // Names are checked on input; a hand edit (or an old import) can
    // still bring one in.
    Connection::open(&db)
        .expect("open")
        .execute("UPDATE bank_table SET bank = ?1 WHERE bank = 'giants'", [name])
        .expect("edit");
    let out = ok(&db, &["list-banks"]);
    assert!(!out.contains('\x1b') && out.contains("\\x1b[31mred"), "{out:?}");
    let r = fa(&db, &["\x1b]0;pwned\x07"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains('\x1b') && !r.stderr.contains('\x07'), "{r:?}");
    let json = ok(&db, &["list-banks", "--json"]);
    assert!(json.contains("\\u001b[31mred"), "{json}");
}

#[test]
fn a_limit_above_the_maximum_is_refused_not_stored_as_unlimited() {
    let (_d, db) = new_db();
    seed_000(&db);
    let n = event_count(&db);
    for args in [
        &["add-user", "--username=mays", "--bank=giants", "--max-running-jobs", "4294967296"][..],
        &["edit-user", "crawford", "--max-running-jobs", "4294967296"][..],
        &["add-queue", "gold", "--max-nodes", "4294967296"][..],
        &["edit-queue", "orange", "--max-running-jobs", "4294967296"][..],
    ] {
        let r = fa(&db, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("4294967296 is above the maximum 2147483647"), "{args:?}: {r:?}");
        assert!(r.stderr.contains("For more information, try '--help'"), "{args:?}: {r:?}");
    }
    assert_eq!(event_count(&db), n);
    ok(&db, &["edit-user", "crawford", "--max-running-jobs", "2147483647"]);
}

#[test]
fn an_edited_event_the_log_contradicts_is_skipped_by_the_replay_with_its_seq() {
    let (_d, db) = site();
    ok(&db, &["edit-user", "crawford", "--max-active-jobs", "9"]);
    let seq = seq_of(&db, "AssociationEdited");
    edit_log(
        &db,
        &format!(
            "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'crawford', 'crawfoxd') AS BLOB) \
             WHERE seq = {seq}"
        ),
    );
    ok(&db, &["repair", "--accept-break", &seq.to_string(), "--reason", "user name edited by hand"]);
    let r = fa(&db, &["rebuild"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}: AssociationEdited does not apply")), "{r:?}");
    let r = fa(&db, &["--as-of", &format!("seq:{seq}"), "view-user", "crawford"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = fa(&db, &["checkpoint", "--no-store"]);
    assert_eq!(r.code, 0, "{r:?}");
}
