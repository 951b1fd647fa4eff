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
