//! What admins and scripts written for flux-accounting 0.60 rely on: job id
//! forms and the locale, `update-db`, `-v` progress lines, output details,
//! Flux Standard Durations in `edit-config`, the unknown uid.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fa, fails, new_db, ok, BIN, NOW};
use serde_json::json;

/// Records one job of `alice` (uid 5001, bank giants) with id `id`.
fn one_job(db: &Path, id: u64) {
    ok(db, &["add-bank", "root", "1"]);
    ok(db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok(db, &["add-user", "--username=alice", "--bank=giants", "--userid=5001"]);
    let end = 1767225000.0;
    let rec = json!({"id": id, "userid": 5001, "bank": "giants", "t_submit": end - 600.0, "t_run": end - 500.0,
                     "t_inactive": end, "nnodes": 2});
    let path = db.with_extension("jobs.jsonl");
    std::fs::write(&path, format!("{rec}\n")).expect("write jobs");
    ok(db, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
}

fn run_in_locale(db: &Path, lc_all: &str, args: &[&str]) -> String {
    let o = Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(args)
        .env("FLUXACCT_NOW", NOW)
        .env("LC_ALL", lc_all)
        .output()
        .expect("run flux-account");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn view_job_records_format_fields_show_every_id_form_as_flux_does() {
    let (_d, db) = new_db();
    let id: u64 = 0x2a_0f00_0000_0001;
    one_job(&db, id);
    let fmt = "{jobid.words}|{jobid.f58plain}|{jobid.f58}|{jobid.dec}|{jobid.hex}|{jobid.dothex}|{jobid.kvs}";
    let words = mnemonic::to_string(id.to_le_bytes());
    let c = run_in_locale(&db, "C", &["view-job-records", "--format", fmt]);
    assert_eq!(
        c.lines().nth(1),
        Some(
            format!(
                "{words}|f2bSenkrsMz|f2bSenkrsMz|{id}|0x2a0f0000000001|002a.0f00.0000.0001|job.002a.0f00.0000.0001"
            )
            .as_str()
        ),
        "{c}"
    );
    // Under UTF-8 only jobid.f58 changes: f58plain keeps its `f`.
    let u = run_in_locale(&db, "C.UTF-8", &["view-job-records", "--format", fmt]);
    assert_eq!(u, c.replace(&format!("|f2bSenkrsMz|{id}|"), &format!("|ƒ2bSenkrsMz|{id}|")));
    assert_eq!(
        ok(&db, &["view-job-records", "--jobid", &words, "--format", "{jobid.dec}"]),
        format!("jobid.dec\n{id}\n")
    );
}

/// Runs a `flux-account-*` binary with `args`, at NOW in UTC.
fn run_bin(bin: &str, args: &[&str]) -> common::Run {
    let o = Command::new(bin).args(args).env("FLUXACCT_NOW", NOW).env("TZ", "UTC").output().expect("run");
    common::Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn verbose_update_usage_logs_flux_accountings_info_lines_on_stderr() {
    let (_d, db) = new_db();
    one_job(&db, 7);
    let path = db.to_str().expect("utf8");
    let bin = env!("CARGO_BIN_EXE_flux-account-update-usage");
    let r = run_bin(bin, &["-p", path, "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "2026-01-01 00:00:00: INFO: beginning job-usage update for flux-accounting DB; slow response times may occur\n\
         2026-01-01 00:00:00: INFO: job-usage update for flux-accounting DB now complete\n"
    );
    // fluxacct's summary stays on stdout.
    assert!(r.stdout.starts_with("update-usage: "), "{}", r.stdout);
    let quiet = run_bin(bin, &["-p", path]);
    assert_eq!((quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()), (0, "", ""));
}

#[test]
fn verbose_fetch_job_records_logs_flux_accountings_info_lines_on_stderr() {
    let (_d, db) = new_db();
    one_job(&db, 7);
    let file = db.with_extension("more.jsonl");
    let rec = json!({"id": 8, "userid": 5001, "bank": "giants", "t_submit": 1767224000.0, "t_run": 1767224100.0,
                     "t_inactive": 1767224200.0, "nnodes": 1});
    std::fs::write(&file, format!("{rec}\n")).expect("write");
    let bin = env!("CARGO_BIN_EXE_flux-account-fetch-job-records");
    let r = run_bin(bin, &["-p", db.to_str().expect("utf8"), "-v", "--from-file", file.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "2026-01-01 00:00:00: INFO: beginning INSERT of newly found jobs into flux-accounting DB\n\
         2026-01-01 00:00:00: INFO: INSERT of newly found jobs into flux-accounting DB complete\n"
    );
    assert_eq!(r.stdout, "recorded 1, already recorded 0, rejected 0\n");
}

fn fa_fixture(name: &str) -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/flux-accounting-dbs");
    assert!(d.is_dir(), "{} is missing: these tests need ../shared beside the workspace", d.display());
    d.join(name)
}

const UPDATE_DB: &str = env!("CARGO_BIN_EXE_flux-account-update-db");

#[test]
fn update_db_turns_a_flux_accounting_database_into_a_ledger_in_place_keeping_a_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("FluxAccounting.db");
    std::fs::copy(fa_fixture("FluxAccountingv0-60-0.db"), &db).expect("copy");
    let original = std::fs::read(&db).expect("read");
    let r = run_bin(UPDATE_DB, &["-v", "-p", db.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let backup = dir.path().join("FluxAccounting.db.backup");
    assert_eq!(std::fs::read(&backup).expect("backup"), original, "the backup is the database as it was");
    assert!(r.stdout.contains(&format!("update-db: the flux-accounting database is kept at {}", backup.display())));
    for line in [
        format!("INFO: starting database update for {}", db.display()),
        format!("INFO: created backup at {}", backup.display()),
        "INFO: updated database schema version to ".to_string(),
        "INFO: database update complete".to_string(),
    ] {
        assert!(r.stderr.contains(&line), "{line} in {}", r.stderr);
    }
    // Scripts go on using the same path: it is a ledger now.
    assert!(ok(&db, &["verify"]).starts_with("ok"));
    assert!(!ok(&db, &["list-banks"]).is_empty());
    // A second run finds the ledger up to date and says so.
    let again = run_bin(UPDATE_DB, &["-p", db.to_str().expect("utf8")]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains(": the ledger is up to date (ledger schema "), "{}", again.stdout);
    assert_eq!(again.stderr, "");
}

#[test]
fn update_db_with_new_db_writes_the_ledger_there_and_leaves_the_database_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("FluxAccounting.db");
    std::fs::copy(fa_fixture("FluxAccountingv0-60-0.db"), &db).expect("copy");
    let original = std::fs::read(&db).expect("read");
    let new = dir.path().join("ledger.db");
    let r = fa(&db, &["update-db", "--new-db", new.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("imported "), "{}", r.stdout);
    assert_eq!(std::fs::read(&db).expect("read"), original);
    assert!(!dir.path().join("FluxAccounting.db.backup").exists());
    assert!(ok(&new, &["verify"]).starts_with("ok"));
    // --new-db on a ledger is refused in one line; a second import refuses the existing file.
    let e = fails(&new, &["update-db", "--new-db", dir.path().join("x.db").to_str().expect("utf8")]);
    assert!(e.contains("is already a fluxacct ledger"), "{e}");
    let e = fails(&db, &["update-db", "--new-db", new.to_str().expect("utf8")]);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn update_db_refuses_to_overwrite_an_existing_backup_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("FluxAccounting.db");
    std::fs::copy(fa_fixture("FluxAccountingv0-60-0.db"), &db).expect("copy");
    std::fs::write(dir.path().join("FluxAccounting.db.backup"), "older backup").expect("write");
    let original = std::fs::read(&db).expect("read");
    let e = fails(&db, &["update-db"]);
    assert!(e.contains(".backup already exists: move it away"), "{e}");
    assert_eq!(std::fs::read(&db).expect("read"), original);
    assert_eq!(std::fs::read_to_string(dir.path().join("FluxAccounting.db.backup")).expect("read"), "older backup");
}

#[test]
fn update_db_applies_a_pending_ledger_schema_upgrade_now_and_says_so() {
    let (_d, db) = new_db();
    let current: i64 = {
        let c = rusqlite::Connection::open(&db).expect("open");
        let v = c.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        c.pragma_update(None, "user_version", 1).expect("set");
        v
    };
    let out = ok(&db, &["update-db"]);
    assert_eq!(out, format!("{}: upgraded: ledger schema 1 -> {current}\n", db.display()));
    let v: i64 = rusqlite::Connection::open(&db)
        .expect("open")
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("v");
    assert_eq!(v, current);
}

/// `list-configs -o "{key}={value}"`: one `key=value` per config key.
fn config_pairs(db: &Path) -> Vec<String> {
    ok(db, &["list-configs", "-o", "{key}={value}"]).lines().skip(1).map(str::to_string).collect()
}

#[test]
fn every_value_list_configs_prints_is_accepted_back_by_edit_config_unchanged() {
    let (_d, db) = new_db();
    ok(&db, &["edit-config", "priority_decay_half_life=15m", "priority_usage_reset_period=1h"]);
    for db in [new_db().1.clone(), db.clone()] {
        let before = config_pairs(&db);
        assert_eq!(before.len(), 7, "{before:?}");
        for pair in &before {
            ok(&db, &["edit-config", pair]);
            assert_eq!(config_pairs(&db), before, "edit-config {pair}");
        }
    }
}

#[test]
fn edit_config_reads_a_bare_number_as_seconds_like_flux_accounting() {
    let (_d, db) = new_db();
    ok(&db, &["edit-config", "priority_decay_half_life=900", "priority_usage_reset_period=3600"]);
    let pairs = config_pairs(&db);
    assert!(pairs.contains(&"priority_decay_half_life=900".to_string()), "{pairs:?}");
    assert!(pairs.contains(&"priority_usage_reset_period=3600".to_string()), "{pairs:?}");
    // A malformed duration is a usage error (exit 2, clap's message).
    let r = fa(&db, &["edit-config", "priority_usage_reset_period=foo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with(
            "error: invalid value 'priority_usage_reset_period=foo' for '<PAIRS>...': invalid Flux standard duration\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_reset_period_shorter_than_the_half_life_is_refused_naming_both() {
    let (_d, db) = new_db();
    let before = config_pairs(&db);
    let e = fails(&db, &["edit-config", "priority_usage_reset_period=3d"]);
    assert!(
        e.contains("priority_usage_reset_period (259200s) is shorter than priority_decay_half_life (604800s)"),
        "{e}"
    );
    assert_eq!(config_pairs(&db), before);
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("n.db");
    let e = fails(&new, &["create-db", "--priority-decay-half-life", "2w", "--priority-usage-reset-period", "1w"]);
    assert!(
        e.contains("--priority-usage-reset-period (604800s) is shorter than --priority-decay-half-life (1209600s)"),
        "{e}"
    );
    assert!(!new.exists());
}

#[test]
fn a_user_not_in_passwd_gets_uid_65534_as_in_flux_accounting() {
    let (_d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok(&db, &["add-user", "--username=fluxacct-no-such-user-x9", "--bank=giants"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&db, &["view-user", "fluxacct-no-such-user-x9", "-J"])).expect("json");
    assert_eq!(v[0]["userid"], json!(65534), "{v}");
}

#[test]
fn userid_4294967295_is_refused_as_flux_unknown_uid() {
    let (_d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    let before = common::event_count(&db);
    let e = fails(&db, &["add-user", "--username=bob", "--bank=giants", "--userid=4294967295"]);
    assert!(e.contains("--userid: 4294967295 is flux's unknown user id"), "{e}");
    assert_eq!(common::event_count(&db), before);
    ok(&db, &["add-user", "--username=bob", "--bank=giants", "--userid=4294967294"]);
}

#[test]
fn pop_db_of_a_csv_named_after_no_table_says_the_table_does_not_exist() {
    let (_d, db) = new_db();
    let csv = db.with_file_name("foo.csv");
    std::fs::write(&csv, "a,b\n1,2\n").expect("write");
    let e = fails(&db, &["pop-db", "-c", csv.to_str().expect("utf8")]);
    assert!(e.ends_with("pop-db: table \"foo\" does not exist in the database"), "{e}");
}

/// Where flux-accounting's text ends in a newline that its `print` doubles
/// (the `view-bank --tree` forms, `view-user --list-banks`), the output
/// ends with the same blank line; tables end with their last row.
#[test]
fn tree_and_bank_list_outputs_end_with_a_blank_line_as_flux_accounting_prints_them() {
    let (_d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "A", "1"]);
    ok(&db, &["add-user", "--username=u1", "--userid=5001", "--bank=A"]);
    for args in [&["view-bank", "root", "-t"][..], &["view-bank", "root", "-t", "-P"]] {
        let out = ok(&db, args);
        assert!(out.ends_with("\n\n") && !out.ends_with("\n\n\n"), "{args:?}: {out:?}");
    }
    assert_eq!(ok(&db, &["view-user", "u1", "--list-banks"]), "A\n\n");
    let banks = ok(&db, &["list-banks"]);
    assert!(banks.ends_with("\n") && !banks.ends_with("\n\n"), "{banks:?}");
}
