//! `export-db` then `pop-db` into a fresh ledger gives back the same
//! tables, and loading the same files again (after a crash, or twice)
//! changes nothing.

mod common;

use std::path::Path;

use common::{event_count, fa, new_db, ok, seed_000};

fn site(db: &Path) {
    seed_000(db);
    ok(db, &["add-bank", "--parent-bank=root", "dodgers", "3"]);
    ok(db, &["add-bank", "--parent-bank=dodgers", "infield", "2"]);
    ok(db, &["add-bank", "--parent-bank=root", "closed", "1"]);
    ok(db, &["add-queue", "gold", "--priority", "5", "--max-running-jobs", "4"]);
    ok(db, &["add-project", "catchers"]);
    ok(
        db,
        &[
            "add-user",
            "--username=betts",
            "--userid=5001",
            "--bank=infield",
            "--queues=orange,gold",
            "--projects=shortstops,catchers",
        ],
    );
    ok(db, &["add-user", "--username=freeman", "--userid=5002", "--bank=infield", "--shares=4", "--max-active-jobs=9"]);
    ok(db, &["add-user", "--username=gone", "--userid=5003", "--bank=closed"]);
    ok(db, &["add-user", "--username=betts", "--userid=5001", "--bank=giants"]);
    ok(db, &["delete-user", "freeman", "infield"]);
    ok(db, &["delete-bank", "closed"]);
    ok(db, &["edit-config", "priority_decay_half_life=2w", "node_weight=2.5"]);
    ok(db, &["edit-factor", "--factor=bank", "--weight=100"]);
}

fn export(db: &Path, dir: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).expect("mkdir");
    ok(db, &["export-db", "--out", dir.to_str().expect("utf8")]);
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let p = e.expect("entry").path();
            (p.file_name().expect("name").to_string_lossy().into_owned(), std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn export_db_then_pop_db_into_a_fresh_ledger_gives_the_same_csv_files_and_a_rerun_changes_nothing() {
    let (dir, db) = new_db();
    site(&db);
    let first = export(&db, &dir.path().join("first"));
    assert!(first.iter().any(|(n, t)| n == "queue_table.csv" && t.contains("gold")));
    let fresh = dir.path().join("fresh.db");
    ok(&fresh, &["create-db"]);
    let csv_dir = dir.path().join("first");
    ok(&fresh, &["pop-db", "-c", csv_dir.to_str().expect("utf8")]);
    let second = export(&fresh, &dir.path().join("second"));
    for ((n1, t1), (n2, t2)) in first.iter().zip(&second) {
        assert_eq!(n1, n2);
        assert_eq!(t1, t2, "{n1} differs after the round trip");
    }
    assert_eq!(first.len(), second.len());
    // Loaded again (as after a crash after the commit): exit 0, no events.
    let n = event_count(&fresh);
    for _ in 0..2 {
        ok(&fresh, &["pop-db", "-c", csv_dir.to_str().expect("utf8")]);
        assert_eq!(event_count(&fresh), n, "a rerun appends nothing");
    }
}

#[test]
fn pop_db_loads_several_files_in_dependency_order_and_a_second_load_changes_nothing() {
    let (dir, db) = new_db();
    site(&db);
    let out = dir.path().join("csv");
    export(&db, &out);
    let f = |t: &str| out.join(format!("{t}.csv")).to_str().expect("utf8").to_string();
    let fresh = dir.path().join("fresh.db");
    ok(&fresh, &["create-db"]);
    // Every file, associations named before what they refer to.
    let args = [
        "pop-db",
        "-c",
        &f("association_table"),
        "-c",
        &f("priority_factor_weight_table"),
        "-c",
        &f("project_table"),
        "-c",
        &f("queue_table"),
        "-c",
        &f("config_table"),
        "-c",
        &f("bank_table"),
    ];
    ok(&fresh, &args);
    let n = event_count(&fresh);
    ok(&fresh, &args);
    assert_eq!(event_count(&fresh), n);
    assert_eq!(export(&fresh, &dir.path().join("again")), export(&db, &dir.path().join("orig")));
}

#[test]
fn pop_db_refuses_a_row_that_is_in_the_ledger_with_other_values_and_adds_nothing() {
    let (dir, db) = new_db();
    site(&db);
    let out = dir.path().join("csv");
    export(&db, &out);
    let banks = out.join("bank_table.csv");
    let text = std::fs::read_to_string(&banks).expect("read").replace("dodgers,1,root,3", "dodgers,1,root,7");
    std::fs::write(&banks, text).expect("write");
    let n = event_count(&db);
    let r = fa(&db, &["pop-db", "-c", out.to_str().expect("utf8")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("bank dodgers already exists in bank_table with a different shares"), "{}", r.stderr);
    assert_eq!(event_count(&db), n);
}
