//! Acceptance point 4: tamper detection. Changing one byte of any stored
//! event (after dropping the write-once triggers) makes `verify` fail and
//! name exactly that seq. A CLI test covers one case end to end; a
//! proptest covers random events, columns and bytes through the library.

mod common;
use common::*;

use std::path::Path;

use proptest::prelude::*;
use rusqlite::types::Value;
use rusqlite::Connection;

/// Columns a tamperer may touch.
const COLUMNS: &[&str] = &["payload", "kind", "actor_name", "argv", "hash", "prev_hash"];

/// Flips bits of byte `pos` (mod length) of `column` in event `seq`,
/// keeping the SQLite type when the result is still valid text.
fn tamper(db: &Path, seq: i64, column: &str, pos: usize, xor: u8) {
    let conn = Connection::open(db).expect("open");
    conn.execute_batch("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;")
        .expect("drop triggers");
    let v: Value =
        conn.query_row(&format!("SELECT {column} FROM events WHERE seq = ?1"), [seq], |r| r.get(0)).expect("read");
    let (mut bytes, text) = match v {
        Value::Text(t) => (t.into_bytes(), true),
        Value::Blob(b) => (b, false),
        other => panic!("unexpected {other:?}"),
    };
    assert!(!bytes.is_empty());
    let i = pos % bytes.len();
    bytes[i] ^= xor.max(1);
    let new = match (text, String::from_utf8(bytes.clone())) {
        (true, Ok(s)) => Value::Text(s),
        _ => Value::Blob(bytes),
    };
    conn.execute(&format!("UPDATE events SET {column} = ?1 WHERE seq = ?2"), rusqlite::params![new, seq])
        .expect("tamper");
}

fn base_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let (d, db) = new_db();
    seed_000(&db);
    ok(&db, &["add-bank", "--parent-bank=root", "mets", "2"]);
    ok(&db, &["add-user", "-u", "alonso", "-B", "mets", "--queues", "orange"]);
    ok(&db, &["edit-user", "alonso", "--max-active-jobs", "9"]);
    (d, db)
}

#[test]
fn verify_names_the_tampered_seq() {
    let (_d, db) = base_db();
    assert!(ok(&db, &["verify"]).starts_with("ok: 9 events"));
    tamper(&db, 5, "payload", 3, 0x20);
    let r = fa(&db, &["verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.trim_end(),
        "flux-account: error: chain broken at seq 5: stored hash does not match the event's content"
    );
    assert!(r.stdout.starts_with("FAILED at seq 5"), "{r:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn any_single_byte_change_is_found_at_its_seq(
        seq in 1i64..=9, col in 0usize..COLUMNS.len(), pos in 0usize..4096, xor in 1u8..=255,
    ) {
        thread_local! {
            static BASE: (tempfile::TempDir, std::path::PathBuf) = base_db();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        BASE.with(|(_, base)| {
            // Checkpoint the WAL into the main file, then copy it.
            Connection::open(base).expect("open").pragma_update(None, "wal_checkpoint", "TRUNCATE").ok();
            std::fs::copy(base, &db).expect("copy");
        });
        tamper(&db, seq, COLUMNS[col], pos, xor);
        let report = ledger::verify_chain(&db, 2).expect("verify runs");
        let failure = report.failure.expect("tampering must be detected");
        prop_assert_eq!(failure.seq.0 as i64, seq, "{}", failure.reason);
    }
}
