//! Corruption catalogue: flipped bytes in an index page of the
//! log, a projection row, an event row and the header, and a truncated
//! file, each reported by `verify` with its cause (damage inside the file's
//! pages by `verify --file`, which runs SQLite's `quick_check` beside the
//! chain walk); `rebuild` repairs what is derived.

mod common;
#[path = "common/dead_ends.rs"]
mod dead_ends;

use std::path::{Path, PathBuf};

use common::*;
use dead_ends::site_with_jobs;
use rusqlite::Connection;

const PAGE: usize = 16384;

/// A site with 300 job records, a usage and a fair-share update; returns
/// the dir and the db.
fn site() -> (tempfile::TempDir, PathBuf) {
    site_with_jobs(300)
}

fn root_page(db: &Path, name: &str) -> usize {
    let c = Connection::open(db).expect("open");
    let r: i64 = c.query_row("SELECT rootpage FROM sqlite_master WHERE name = ?1", [name], |r| r.get(0)).expect("root");
    r as usize
}

fn flip(db: &Path, offset: usize, xor: u8) {
    let mut bytes = std::fs::read(db).expect("read");
    bytes[offset] ^= xor;
    std::fs::write(db, bytes).expect("write");
}

/// The file offset of `needle` inside a live cell of the leaf table page
/// `page` (1-based): only cells the cell-pointer array points at, not
/// stale copies in the page's free space.
fn find_in_page(db: &Path, page: usize, needle: &[u8]) -> usize {
    let bytes = std::fs::read(db).expect("read");
    let start = (page - 1) * PAGE;
    let p = &bytes[start..start + PAGE];
    assert_eq!(p[0], 0x0d, "page {page} is a leaf table page");
    let ncells = u16::from_be_bytes([p[3], p[4]]) as usize;
    for c in 0..ncells {
        let ptr = u16::from_be_bytes([p[8 + 2 * c], p[9 + 2 * c]]) as usize;
        let end = (ptr + 512).min(PAGE);
        if let Some(i) = p[ptr..end].windows(needle.len()).position(|w| w == needle) {
            return start + ptr + i;
        }
    }
    panic!("needle not in a live cell of page {page}");
}

/// The events and every projection table, for comparing a repaired
/// ledger with a clean copy.
fn data(db: &Path) -> String {
    snapshot(db)
}

/// After a repair: `verify` and `rebuild --check` pass, and the data equals
/// the clean ledger's.
fn assert_repaired(db: &Path, clean: &Path) {
    let v = ok(db, &["verify", "--file"]);
    assert!(v.contains("file: ok (quick_check)"), "{v}");
    ok(db, &["rebuild", "--check"]);
    ok(db, &["verify", "--full"]);
    assert_eq!(data(db), data(clean));
    // The job lookups that failed before work again.
    ok(db, &["view-job-records", "--jobid", "1005"]);
    ok(db, &["list-users"]);
}

/// Copies the clean ledger, damages the copy with `damage`, and returns it.
fn damaged(dir: &Path, clean: &Path, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let db = dir.join(name);
    std::fs::copy(clean, &db).expect("copy");
    damage(&db);
    db
}

/// (a) A flipped byte in an index page of the log (`events_job_rejected`):
/// `verify` names the index, exit 1; `rebuild` repairs it.
#[test]
fn flipped_byte_in_a_log_index_page() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "a.db", |db| {
        let root = root_page(db, "events_job_rejected");
        flip(db, (root - 1) * PAGE, 0xff);
    });
    let e = fails(&db, &["verify", "--file"]);
    assert!(e.contains("the ledger file is damaged: index events_job_rejected"), "{e}");
    let out = ok(&db, &["rebuild"]);
    assert!(out.contains("repaired damaged file structure: index events_job_rejected"), "{out}");
    assert!(out.contains("reindexed") && out.contains("events_job_rejected"), "{out}");
    assert_repaired(&db, &clean);
}

/// (b) A flipped byte in a projection row that makes the row unreadable:
/// `verify` names the table, exit 1; `rebuild` repairs it.
#[test]
fn flipped_byte_in_a_projection_row() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "b.db", |db| {
        let root = root_page(db, "association_table");
        // The record header of the row of `mays` (a few bytes before its
        // username): its size no longer fits the cell.
        let off = find_in_page(db, root, b"mays");
        flip(db, off - 12, 0x40);
    });
    let e = fails(&db, &["verify", "--file"]);
    assert!(e.contains("the ledger file is damaged: table association_table"), "{e}");
    assert!(e.contains("malformed"), "{e}");
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("association_table: live table unreadable"), "{}", r.stdout);
    let out = ok(&db, &["rebuild"]);
    assert!(out.contains("repaired damaged file structure: table association_table"), "{out}");
    assert_repaired(&db, &clean);
}

/// (b') A flipped byte that changes a projection value (the row stays
/// readable): `rebuild --check` reads the table's own cells (not a covering
/// index) and reports it; `rebuild` repairs it.
#[test]
fn flipped_value_in_a_projection_row() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "b2.db", |db| {
        let root = root_page(db, "association_table");
        flip(db, find_in_page(db, root, b"mays"), 0x01);
    });
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("username='lays'"), "{}", r.stdout);
    ok(&db, &["rebuild"]);
    assert_repaired(&db, &clean);
}

/// (c) A flipped byte in an event row: `verify` names its seq, exit 1.
#[test]
fn flipped_byte_in_an_event_row() {
    let (dir, clean) = site();
    let c = Connection::open(&clean).expect("open");
    let seq: i64 = c.query_row("SELECT seq FROM events WHERE kind = 'ProjectAdded'", [], |r| r.get(0)).expect("seq");
    drop(c);
    let db = damaged(dir.path(), &clean, "c.db", |db| {
        // Every copy of the payload's bytes in the file (free pages may
        // hold stale ones).
        let bytes = std::fs::read(db).expect("read");
        let needle = b"{\"project\":\"shortstops\"}";
        let at: Vec<usize> =
            (0..bytes.len() - needle.len()).filter(|&i| &bytes[i..i + needle.len()] == needle).collect();
        assert!(!at.is_empty(), "payload found");
        for i in at {
            flip(db, i + 13, 0x01);
        }
    });
    let e = fails(&db, &["verify"]);
    assert_eq!(
        e,
        format!("flux-account: error: chain broken at seq {seq}: stored hash does not match the event's content")
    );
    let e = fails(&db, &["add-queue", "blue"]);
    assert!(e.contains(&format!("broken at seq {seq}")), "{e}");
}

/// (d) A flipped byte in the header (the application id): the file is a
/// damaged ledger, not "a flux-accounting database".
#[test]
fn flipped_byte_in_the_header() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "d.db", |db| flip(db, 70, 0x01));
    let e = fails(&db, &["verify"]);
    assert!(e.contains("is damaged: its header's application_id is"), "{e}");
    assert!(!e.contains("flux-accounting"), "{e}");
    let e = fails(&db, &["list-users"]);
    assert!(e.contains("is damaged"), "{e}");
}

/// A truncated file: `verify` says so in SQLite's words, exit 1.
#[test]
fn truncated_file() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "trunc.db", |db| {
        let bytes = std::fs::read(db).expect("read");
        std::fs::write(db, &bytes[..bytes.len() / 2]).expect("truncate");
    });
    let e = fails(&db, &["verify"]);
    assert!(e.contains("database disk image is malformed (truncated"), "{e}");
}

/// A projection cell that is not valid UTF-8: `rebuild --check` reports it
/// as a difference (exit 1, no panic); `rebuild` repairs it.
#[test]
fn non_utf8_projection_cell() {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, "u.db", |db| {
        let c = Connection::open(db).expect("open");
        c.execute("UPDATE association_table SET queues = CAST(x'ff80' AS TEXT) WHERE username = 'mays'", [])
            .expect("update");
    });
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("queues: live x'ff80', replayed ''"), "{}", r.stdout);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    ok(&db, &["rebuild"]);
    assert_repaired(&db, &clean);
}

/// A side table derived from the log (outside the canonical state) whose
/// first row's `key` is shifted and whose last row is deleted:
/// `rebuild --check` names both differences and `rebuild` rewrites the
/// table from the log.
fn side_table_difference(table: &str, key: &str) {
    let (dir, clean) = site();
    let db = damaged(dir.path(), &clean, &format!("{table}.db"), |db| {
        let c = Connection::open(db).expect("open");
        c.execute_batch(&format!(
            "UPDATE {table} SET {key} = {key} + 1000000 WHERE seq = (SELECT min(seq) FROM {table});
             DELETE FROM {table} WHERE seq = (SELECT max(seq) FROM {table});"
        ))
        .expect("edit");
    });
    let r = fa(&db, &["rebuild", "--check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(&format!("{table} [seq=")), "{}", r.stdout);
    assert!(r.stdout.contains("row in live only"), "{}", r.stdout);
    assert!(r.stdout.contains("row missing from live"), "{}", r.stdout);
    let out = ok(&db, &["rebuild"]);
    assert!(out.contains(&format!("repaired {table}: 3 difference(s) from the log")), "{out}");
    assert_repaired(&db, &clean);
    assert_eq!(
        dump_table(&Connection::open(&db).unwrap(), table),
        dump_table(&Connection::open(&clean).unwrap(), table)
    );
}

/// `job_times` (ranges of `t_inactive`) is compared by `rebuild --check`
/// too, and rewritten by `rebuild`.
#[test]
fn job_times_difference() {
    side_table_difference("job_times", "t_inactive_us");
}

/// `job_ids` (the job-id lookup table a fetch uses to find jobs already
/// recorded) likewise.
#[test]
fn job_ids_difference() {
    side_table_difference("job_ids", "id");
}
