//! Times are shown in one form per output type: tables in the local time
//! zone (`TZ`) with its offset, JSON in RFC 3339 UTC with `+00:00`; `log`,
//! `log --json` and `view-job-records --rejected` name the same instants.

mod common;

use std::process::Command;

use chrono::DateTime;
use common::{BIN, NOW};

fn run(db: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(args)
        .env("FLUXACCT_NOW", NOW)
        .env("TZ", "America/Los_Angeles")
        .output()
        .expect("run flux-account");
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 3), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn instant(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_micros()
}

#[test]
fn log_log_json_and_rejected_records_show_the_same_instants_local_in_tables_utc_offset_in_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    run(&db, &["create-db"]);
    run(&db, &["add-bank", "root", "1"]);
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(&jobs, "this is not a job record\n").expect("write");
    run(&db, &["fetch-job-records", "--from-file", jobs.to_str().expect("utf8")]);

    // log --json: UTC with an explicit offset.
    let json_times: Vec<String> = run(&db, &["log", "--json"])
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["time"].as_str().expect("time").into()
        })
        .collect();
    assert_eq!(json_times.len(), 3, "{json_times:?}");
    assert!(json_times.iter().all(|t| t.ends_with("+00:00")), "{json_times:?}");

    // log: the local time (Los Angeles in January: -08:00).
    let table_times: Vec<String> =
        run(&db, &["log"]).lines().map(|l| l.split_whitespace().nth(1).expect("time column").to_string()).collect();
    assert_eq!(table_times.len(), 3, "{table_times:?}");
    assert!(table_times.iter().all(|t| t.ends_with("-08:00")), "{table_times:?}");
    for (a, b) in table_times.iter().zip(&json_times) {
        assert_eq!(instant(a), instant(b), "{a} vs {b}");
    }

    // view-job-records --rejected: the table form, the same instant as the
    // JobRejected event's in the log.
    let listed = run(&db, &["view-job-records", "--rejected"]);
    let row = listed.lines().nth(1).expect("one rejected record");
    let when = row.split(" | ").nth(1).expect("recorded_at").trim();
    assert!(when.ends_with("-08:00"), "{listed}");
    assert_eq!(instant(when), instant(&json_times[2]), "{listed}");
}
