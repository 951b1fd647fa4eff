//! The commands flux-accounting users rely on that fluxacct once
//! lacked (`sync-userids`, `scrub-old-jobs`, `-msn`/`-msc`, `-v`), as
//! black-box CLI tests. (`fairshare-emulate`: fairshare_emulate_cli.rs;
//! `view-user -J`: usage_cli.rs; `jobs`: jobs_cli.rs.)

mod common;

use common::{fa, new_db, ok};
use serde_json::Value;

#[test]
fn add_queue_and_edit_queue_take_msn_and_msc() {
    let (_d, db) = new_db();
    ok(&db, &["add-queue", "q", "-msn", "5", "-msc=6"]);
    let q: Value = serde_json::from_str(&ok(&db, &["view-queue", "q"])).unwrap();
    assert_eq!(q[0]["max_sched_nodes_per_assoc"], 5);
    assert_eq!(q[0]["max_sched_cores_per_assoc"], 6);
    ok(&db, &["edit-queue", "q", "-msn", "7", "-msc", "-1"]);
    let q: Value = serde_json::from_str(&ok(&db, &["view-queue", "q"])).unwrap();
    assert_eq!(q[0]["max_sched_nodes_per_assoc"], 7);
    assert_eq!(q[0]["max_sched_cores_per_assoc"], "unlimited");
    // The log keeps the command line as typed.
    let log = ok(&db, &["log", "--json"]);
    assert!(log.contains("\"-msn\""), "{log}");
    // Out of range: a usage error (exit 2).
    let r = fa(&db, &["edit-queue", "q", "-msn", "-5"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("-5 is negative"), "{r:?}");
}

const NOW: f64 = 1_767_225_600.0;
const WEEK: f64 = 604_800.0;

fn jobs_site() -> (tempfile::TempDir, std::path::PathBuf) {
    let (d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "A", "1", "--parent-bank", "root"]);
    ok(&db, &["add-user", "--username", "u1", "--bank", "A", "--userid", "5001"]);
    let job = |id: u64, end: f64| {
        serde_json::json!({"id": id, "userid": 5001, "bank": "A", "t_submit": end - 200.0, "t_run": end - 100.0,
                           "t_inactive": end, "nnodes": 1})
    };
    let text: String =
        [job(101, NOW - 30.0 * WEEK), job(102, NOW - 27.0 * WEEK), job(103, NOW - WEEK), job(104, NOW - 86_400.0)]
            .iter()
            .map(|j| format!("{j}\n"))
            .collect();
    let f = d.path().join("jobs.jsonl");
    std::fs::write(&f, text).unwrap();
    ok(&db, &["fetch-job-records", "--from-file", f.to_str().unwrap()]);
    (d, db)
}

fn listed(db: &std::path::Path, pre: &[&str]) -> usize {
    let out = ok(db, &[pre, &["view-job-records", "-o", "{jobid.dec}"]].concat());
    out.lines().skip(1).filter(|l| !l.trim().is_empty()).count()
}

fn report_total(db: &std::path::Path, pre: &[&str]) -> String {
    let start = format!("{}", NOW - 40.0 * WEEK);
    let out = ok(db, &[pre, &["view-usage-report", "-s", &start, "-e", &format!("{NOW}")]].concat());
    out.lines().find(|l| l.starts_with("TOTAL")).unwrap_or_default().to_string()
}

/// scrub-old-jobs appends an event after which older records vanish from
/// view-job-records and view-usage-report, while they stay in the log and
/// `--as-of` before the event still shows them.
#[test]
fn scrub_old_jobs_hides_old_records_but_keeps_them_in_the_log() {
    let (_d, db) = jobs_site();
    assert_eq!(listed(&db, &[]), 4);
    let before_total = report_total(&db, &[]);
    assert!(before_total.contains("400.00"), "{before_total}");
    let seq_before = common::event_count(&db).to_string();

    assert_eq!(ok(&db, &["scrub-old-jobs"]), "", "prints nothing, as flux-accounting");
    assert_eq!(listed(&db, &[]), 2, "the two records older than 26 weeks are hidden");
    assert!(report_total(&db, &[]).contains("200.00"), "{}", report_total(&db, &[]));
    // Still in the log, and in the past.
    let log = ok(&db, &["log", "--json"]);
    assert_eq!(log.matches("\"JobRecorded\"").count(), 4, "{log}");
    assert!(log.contains("\"JobsScrubbed\""), "{log}");
    assert_eq!(listed(&db, &["--as-of", &seq_before]), 4);
    assert_eq!(report_total(&db, &["--as-of", &seq_before]), before_total);
    // A later scrub with a larger age does not bring them back; 0 hides every finished job.
    ok(&db, &["scrub-old-jobs", "52"]);
    assert_eq!(listed(&db, &[]), 2);
    let v = ok(&db, &["scrub-old-jobs", "0", "-v"]);
    assert!(v.starts_with("4 job records that ended before "), "{v}");
    assert_eq!(listed(&db, &[]), 0);
    // The projections are still a replay of the log.
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
    assert!(ok(&db, &["verify"]).starts_with("ok"));
    // A bad age is a usage error and changes nothing.
    let n = common::event_count(&db);
    let r = fa(&db, &["scrub-old-jobs", "many"]);
    assert_ne!(r.code, 0);
    assert_eq!(common::event_count(&db), n);
}

/// sync-userids: a user whose associations carry different uids gets the
/// uid of their earliest association everywhere (passwd does not know the
/// name here), and their jobs then count in every bank.
#[test]
fn sync_userids_gives_a_user_one_uid_and_their_usage_follows() {
    let (d, db) = new_db();
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "A", "1", "--parent-bank", "root"]);
    ok(&db, &["add-bank", "B", "1", "--parent-bank", "root"]);
    let u = "zz-fluxacct-sync";
    ok(&db, &["add-user", "--username", u, "--bank", "A", "--userid", "5001"]);
    ok(&db, &["add-user", "--username", u, "--bank", "B", "--userid", "6001"]);
    let f = d.path().join("jobs.jsonl");
    let end = NOW - 3600.0;
    std::fs::write(
        &f,
        format!(
            "{}\n",
            serde_json::json!({"id": 7, "userid": 5001, "bank": "B", "t_submit": end - 200.0,
                               "t_run": end - 100.0, "t_inactive": end, "nnodes": 1})
        ),
    )
    .unwrap();
    ok(&db, &["fetch-job-records", "--from-file", f.to_str().unwrap()]);
    ok(&db, &["update-usage"]);
    let usage_b = |db: &std::path::Path| -> f64 {
        let v: Value = serde_json::from_str(&ok(db, &["view-user", u])).unwrap();
        v.as_array().unwrap().iter().find(|a| a["bank"] == "B").unwrap()["job_usage"].as_f64().unwrap()
    };
    assert_eq!(usage_b(&db), 0.0, "uid 6001 in B does not match the job's 5001");

    let out = ok(&db, &["sync-userids", "-v"]);
    assert_eq!(out, format!("1 association(s) changed\n{u},B: userid 6001 -> 5001\n"));
    let v: Value = serde_json::from_str(&ok(&db, &["view-user", u])).unwrap();
    assert!(v.as_array().unwrap().iter().all(|a| a["userid"] == 5001), "{v}");
    ok(&db, &["update-usage"]);
    assert!(usage_b(&db) > 0.0, "the job now counts in B");
    // Nothing left to do: a success that appends nothing.
    let n = common::event_count(&db);
    assert_eq!(ok(&db, &["sync-userids"]), "");
    assert_eq!(common::event_count(&db), n);
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
}
