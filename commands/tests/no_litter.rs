//! No litter: a `priority-update` killed with SIGKILL at random
//! moments leaves no temporary file once the next run has finished.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

#[test]
fn killed_priority_update_leaves_no_temporary_file() {
    let (dir, db) = new_db();
    seed_000(&db);
    for i in 0..200 {
        ok(&db, &["add-user", &format!("--username=u{i}"), &format!("--userid={}", 5000 + i), "--bank=giants"]);
    }
    // A crash is simulated for certain too: a temporary file of a writer
    // that is gone.
    let mut gone = Command::new("true").spawn().expect("spawn");
    let pid = gone.id();
    gone.wait().expect("wait");
    std::fs::write(dir.path().join(format!(".t.db.snapshot.tmp.{pid}")), b"half a snapshot").expect("plant");
    // Then kill -9 at pseudo-random moments (a fixed LCG: reproducible).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..40 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait_us = (x >> 33) % 40_000;
        let mut child = Command::new(BIN)
            .arg("-p")
            .arg(&db)
            .args(["priority-update", "--no-flux"])
            .env("FLUXACCT_NOW", NOW)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(wait_us));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = ok(&db, &["priority-update", "--no-flux"]);
    assert!(out.contains("wrote snapshot"), "{out}");
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    // The snapshot is whole, and the ledger sound.
    fluxacct_core::snapshot::Snapshot::read(&dir.path().join("t.db.snapshot")).expect("snapshot decodes");
    ok(&db, &["verify"]);
}
