//! Corruption catalogue (issue 15): flipped bytes in an index page of the
//! log, a projection row, an event row and the header, and a truncated
//! file, each reported by `verify` with its cause; `rebuild` repairs what
//! is derived.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rusqlite::Connection;

const PAGE: usize = 16384;

/// A site with job records and a usage update; returns the dir and the db.
fn site() -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = new_db();
    seed_000(&db);
    ok(&db, &["add-user", "--username=mays", "--userid=1002", "--bank=giants"]);
    let mut lines = String::new();
    for i in 0..300u64 {
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

#[test]
fn experiment() {
    let (_dir, db) = site();
    let root = root_page(&db, "events_job_id");
    let clean = std::fs::read(&db).unwrap();
    flip(&db, (root - 1) * PAGE, 0xff);
    let r = fa(&db, &["verify"]);
    eprintln!("A: {} | {} | {}", r.code, r.stdout, r.stderr);
    std::fs::write(&db, &clean).unwrap();
    let root = root_page(&db, "association_table");
    let off = find_in_page(&db, root, b"mays");
    flip(&db, off, 0x01);
    let r = fa(&db, &["verify"]);
    eprintln!("B1: {} | {} | {}", r.code, r.stdout, r.stderr);
    let r = fa(&db, &["rebuild", "--check"]);
    eprintln!("B1c: {} | {} | {}", r.code, r.stdout, r.stderr);
    std::fs::write(&db, &clean).unwrap();
    flip(&db, off, 0x80);
    let r = fa(&db, &["rebuild", "--check"]);
    eprintln!("B2c: {} | {} | {}", r.code, r.stdout, r.stderr);
    let r = fa(&db, &["list-users"]);
    eprintln!("B2l: {} | {} | {}", r.code, r.stdout, r.stderr);
    std::fs::write(&db, &clean).unwrap();
    // record header byte: the byte before the cell header size... flip the cell's header length
    flip(&db, off - 12, 0x40);
    std::fs::copy(&db, "/tmp/i15/b3.db").unwrap();
    let r = fa(&db, &["verify"]);
    eprintln!("B3: {} | {} | {}", r.code, r.stdout, r.stderr);
    let r = fa(&db, &["list-users"]);
    eprintln!("B3l: {} | {} | {}", r.code, r.stdout, r.stderr);
    let r = fa(&db, &["rebuild", "--check"]);
    eprintln!("B3c: {} | {} | {}", r.code, r.stdout, r.stderr);
    std::fs::write(&db, &clean).unwrap();
    std::fs::write(&db, &clean[..clean.len() / 2]).unwrap();
    let r = fa(&db, &["verify"]);
    eprintln!("T: {} | {} | {}", r.code, r.stdout, r.stderr);
    std::fs::write(&db, &clean).unwrap();
    flip(&db, 0, 0x01);
    let r = fa(&db, &["verify"]);
    eprintln!("H: {} | {} | {}", r.code, r.stdout, r.stderr);
}
