//! Acceptance point 5: concurrent writers. Two writer loops run at the same
//! time against one ledger, each adding 200 users with its own
//! `flux-account` processes. All 400 are present, the chain verifies and
//! seqs are gapless.

mod common;
use common::*;

use rusqlite::{Connection, OpenFlags};

#[test]
fn two_writers_200_users_each() {
    let (_d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "A", "1"]);
    let base = event_count(&db);
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                // One shell process per writer, each looping over the binary.
                let script = format!(
                    "for i in $(seq 1 200); do \"{BIN}\" -p \"$DB\" add-user -u {w}$i -B A --userid $i || exit 1; done"
                );
                let st = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .env("DB", &db)
                    .env("FLUXACCT_NOW", NOW)
                    .status()
                    .expect("sh");
                assert!(st.success(), "writer {w} failed");
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    assert_eq!(event_count(&db), base + 400);
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let (n, min, max): (i64, i64, i64) = conn
        .query_row("SELECT count(*), min(seq), max(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("seqs");
    assert_eq!((min, max), (1, n), "seqs must be gapless");
    let users: i64 = conn.query_row("SELECT count(*) FROM association_table", [], |r| r.get(0)).expect("count");
    assert_eq!(users, 400);
    assert!(ok(&db, &["verify"]).starts_with(&format!("ok: {n} events")));
}
