//! Acceptance point 3: every rejected command leaves the event count and
//! the projection tables byte-for-byte unchanged, prints one line on stderr
//! and exits 1. Names holding SQL metacharacters are stored literally.

mod common;
use common::*;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let (d, db) = new_db();
    seed_000(&db);
    ok(&db, &["add-bank", "--parent-bank=root", "mets", "1"]);
    ok(&db, &["add-user", "-u", "alonso", "-B", "mets"]);
    (d, db)
}

#[test]
fn bad_inputs_change_nothing() {
    let (_d, db) = setup();
    let long = "x".repeat(256);
    let ctl = "bad\u{7}name";
    let cases: Vec<Vec<&str>> = vec![
        // unknown bank or user
        vec!["add-user", "-u", "x", "-B", "nope"],
        vec!["add-bank", "--parent-bank=nope", "x", "1"],
        vec!["edit-bank", "nope", "--shares", "2"],
        vec!["delete-bank", "nope"],
        vec!["edit-user", "nobody", "--shares", "2"],
        vec!["edit-user", "crawford", "-B", "mets", "--shares", "2"],
        vec!["delete-user", "nobody", "giants"],
        vec!["edit-queue", "nope", "--priority", "1"],
        vec!["delete-queue", "nope"],
        vec!["delete-project", "nope"],
        vec!["edit-config", "nope=1"],
        vec!["delete-config", "nope"],
        vec!["edit-factor", "--factor", "nope", "--weight", "1"],
        vec!["add-user", "-u", "x", "-B", "giants", "-q", "nope"],
        vec!["add-user", "-u", "x", "-B", "giants", "-P", "nope"],
        vec!["edit-user", "crawford", "--default-project", "nope"],
        // duplicates
        vec!["add-bank", "--parent-bank=root", "giants", "1"],
        vec!["add-bank", "other-root", "1"],
        vec!["add-user", "-u", "crawford", "-B", "giants"],
        vec!["add-queue", "orange"],
        vec!["add-project", "shortstops"],
        vec!["add-config", "decay_factor=0.1"],
        // names: empty, control characters, too long
        vec!["add-bank", "--parent-bank=root", "", "1"],
        vec!["add-bank", "--parent-bank=root", ctl, "1"],
        vec!["add-bank", "--parent-bank=root", &long, "1"],
        vec!["add-user", "-u", "", "-B", "giants"],
        vec!["add-user", "-u", ctl, "-B", "giants"],
        vec!["add-user", "-u", &long, "-B", "giants"],
        vec!["add-queue", ""],
        vec!["add-queue", ctl],
        vec!["add-queue", &long],
        vec!["add-project", ""],
        vec!["add-project", &long],
        vec!["add-config", "=1"],
        // structure rules and no-op edits
        vec!["add-user", "-u", "x", "-B", "root"],
        vec!["add-bank", "--parent-bank=giants", "sub", "1"],
        vec!["edit-bank", "giants", "--parent-bank", "giants"],
        vec!["edit-user", "crawford"],
        vec!["edit-queue", "orange"],
        vec!["edit-bank", "giants"],
        vec!["edit-all-users"],
        vec!["edit-user", "crawford", "--default-bank", "-1"],
        vec!["view-user", "nobody"],
    ];
    let before = snapshot(&db);
    for c in &cases {
        let line = fails(&db, c);
        assert!(line.starts_with("flux-account: error: "), "{c:?}: {line}");
        assert_eq!(snapshot(&db), before, "{c:?} changed the ledger");
    }
    // Usage errors (clap's): its whole message with the usage line, exit 2.
    // Malformed or out-of-range values are usage errors (exit 2), like a
    // missing argument.
    for c in [
        &["add-bank", "--parent-bank=root", "x", "-1"][..],
        &["add-bank", "--parent-bank=root"],
        &["add-bank", "--parent-bank=root", "x", "abc"],
        &["add-user", "-u", "x", "-B", "giants", "--max-active-jobs=-5"],
        &["add-user", "-u", "x", "-B", "giants", "--shares", "many"],
        &["edit-user", "crawford", "--max-running-jobs", "-2"],
        &["edit-user", "crawford", "--fairshare", "x"],
        &["edit-bank", "giants", "--shares", "-3"],
        &["edit-bank", "giants", "--priority", "high"],
        &["add-queue", "q2", "--priority", "-4"],
        &["edit-queue", "orange", "--max-running-jobs", "-7"],
        &["edit-factor", "--factor", "bank", "--weight", "-1"],
        &["edit-all-users", "--shares", "-9"],
        &["edit-config", "decay_factor=7"],
    ] {
        let r = fa(&db, c);
        assert_eq!(r.code, 2, "{c:?}: {r:?}");
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains("Usage: "), "{c:?}: {}", r.stderr);
        assert_eq!(snapshot(&db), before, "{c:?} changed the ledger");
    }
}

/// A real flux-accounting v0.60 database from `shared/fixtures`, beside the
/// workspace (as in CI); the test fails when it is missing.
fn flux_accounting_db(to: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/flux-accounting-dbs/FluxAccountingv0-60-0.db");
    std::fs::copy(&src, to)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared fixtures must be beside the workspace)", src.display()));
}

#[test]
fn missing_and_foreign_files_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.db");
    for c in [&["add-bank", "root", "1"][..], &["view-bank", "root"], &["verify"], &["list-banks"]] {
        let line = fails(&missing, c);
        assert!(line.contains("missing.db"), "{line}");
        assert!(!missing.exists(), "{c:?} created the file");
    }
    let fixture = dir.path().join("fa.db");
    flux_accounting_db(&fixture);
    let garbage = dir.path().join("garbage.db");
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&garbage, &bytes).expect("write");
    for f in [&fixture, &garbage] {
        let before = std::fs::read(f).expect("read");
        for c in
            [&["add-bank", "root", "1"][..], &["add-user", "-u", "a", "-B", "b"], &["view-bank", "root"], &["verify"]]
        {
            let line = fails(f, c);
            assert!(line.contains("is not a fluxacct ledger"), "{line}");
            if *f == fixture {
                assert!(line.contains("flux-accounting"), "{line}");
            }
            assert_eq!(std::fs::read(f).expect("read"), before, "{c:?} changed {}", f.display());
        }
    }
}

#[test]
fn sql_metacharacters_are_stored_literally() {
    let (_d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    let bank = "a'; DROP TABLE bank_table; --";
    let user = "o'brien--;";
    ok(&db, &["add-bank", "--parent-bank=root", bank, "1"]);
    ok(&db, &["add-user", "-u", user, "-B", bank]);
    ok(&db, &["add-queue", "q';--"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&db, &["view-user", user])).expect("json");
    assert_eq!(v[0]["bank"], bank);
    assert_eq!(v[0]["username"], user);
    assert!(ok(&db, &["view-bank", "root", "--tree"]).contains(user));
    assert!(ok(&db, &["list-banks"]).contains(bank));
    assert!(ok(&db, &["verify"]).starts_with("ok: 5 events"));
}
