//! The worked example of docs/allocations.md, black-box: a bank with a 100
//! node-hour allocation, jobs of two users (each in a sub-bank, some in a
//! queue with a charge factor) charged as they are recorded, the balance
//! after each job equal to a hand computation, a statement that adds up
//! exactly, and `rebuild --check` and `--as-of` reproducing every
//! intermediate balance.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_flux-account");
/// 2026-01-01T00:00:00Z.
const JAN1: f64 = 1_767_225_600.0;
const HOUR: f64 = 3600.0;

fn run(db: &Path, now: f64, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(args)
        .env("FLUXACCT_NOW", format!("{now}"))
        .output()
        .expect("run flux-account");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(db: &Path, now: f64, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(db, now, args);
    assert_eq!(code, 0, "{args:?} failed: {stderr}{stdout}");
    stdout
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn head_seq(db: &Path) -> i64 {
    let c = Connection::open(db).expect("open");
    c.query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).expect("seq")
}

struct Job {
    id: u64,
    uid: i64,
    bank: &'static str,
    queue: &'static str,
    nnodes: i64,
    seconds: f64,
    /// Hand-computed charge in milli node-hours.
    charge_milli: i64,
}

fn site(dir: &Path) -> PathBuf {
    let db = dir.join("alloc.db");
    let t = JAN1;
    ok(&db, t, &["create-db"]);
    ok(&db, t, &["add-bank", "root", "1"]);
    ok(&db, t, &["add-bank", "physics", "1", "--parent-bank", "root"]);
    ok(&db, t, &["add-bank", "experiment", "1", "--parent-bank", "physics"]);
    ok(&db, t, &["add-bank", "theory", "1", "--parent-bank", "physics"]);
    ok(&db, t, &["add-user", "--username", "alice", "--userid", "1001", "--bank", "experiment"]);
    ok(&db, t, &["add-user", "--username", "bob", "--userid", "1002", "--bank", "theory"]);
    ok(&db, t, &["add-queue", "batch"]);
    ok(&db, t, &["add-queue", "premium", "--charge-factor", "2"]);
    ok(
        &db,
        t,
        &[
            "add-allocation",
            "--bank",
            "physics",
            "--amount",
            "100",
            "--unit",
            "node-hours",
            "--start",
            "2026-01-01",
            "--end",
            "2026-04-01",
            "--name",
            "physics-q1",
        ],
    );
    db
}

fn jobs() -> Vec<Job> {
    vec![
        // alice: 2 nodes × 3 h = 6 node-hours.
        Job {
            id: 1,
            uid: 1001,
            bank: "experiment",
            queue: "batch",
            nnodes: 2,
            seconds: 3.0 * HOUR,
            charge_milli: 6000,
        },
        // bob, in the sub-bank, premium queue: 4 nodes × 0.5 h × 2 = 4.
        Job { id: 2, uid: 1002, bank: "theory", queue: "premium", nnodes: 4, seconds: 1800.0, charge_milli: 4000 },
        // alice: 1 node × 20 min = 0.333… → 0.333.
        Job { id: 3, uid: 1001, bank: "experiment", queue: "batch", nnodes: 1, seconds: 1200.0, charge_milli: 333 },
        // bob: 8 nodes × 10 h = 80.
        Job { id: 4, uid: 1002, bank: "theory", queue: "batch", nnodes: 8, seconds: 10.0 * HOUR, charge_milli: 80_000 },
        // alice: 16 nodes × 1 h = 16 (overdraws: the balance goes negative).
        Job { id: 5, uid: 1001, bank: "experiment", queue: "batch", nnodes: 16, seconds: HOUR, charge_milli: 16_000 },
    ]
}

fn remaining(db: &Path, now: f64, as_of: Option<i64>) -> i64 {
    let seq;
    let mut args = vec!["view-allocation", "physics-q1", "--json"];
    if let Some(s) = as_of {
        seq = s.to_string();
        args.extend(["--as-of", &seq]);
    }
    json_of(&ok(db, now, &args))["remaining_milli"].as_i64().expect("remaining_milli")
}

#[test]
fn the_worked_example_charges_each_job_as_computed_by_hand_and_its_statement_adds_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let mut balance = 100_000i64;
    let mut history = vec![(head_seq(&db), balance)];
    let mut now = JAN1 + 24.0 * HOUR;
    for j in jobs() {
        let end = now;
        let rec = json!({"id": j.id, "userid": j.uid, "bank": j.bank, "queue": j.queue, "t_submit": end - j.seconds - 60.0,
                         "t_run": end - j.seconds, "t_inactive": end, "nnodes": j.nnodes, "ncores": j.nnodes});
        let path = dir.path().join(format!("job{}.jsonl", j.id));
        std::fs::write(&path, format!("{rec}\n")).expect("write job");
        ok(&db, now + 60.0, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
        balance -= j.charge_milli;
        assert_eq!(remaining(&db, now + 60.0, None), balance, "after job {}", j.id);
        history.push((head_seq(&db), balance));
        now += 24.0 * HOUR;
    }
    assert_eq!(balance, -6_333);
    // A deposit brings it back above zero.
    ok(&db, now, &["edit-allocation", "physics-q1", "--deposit", "10"]);
    balance += 10_000;
    assert_eq!(remaining(&db, now, None), 3_667);
    history.push((head_seq(&db), balance));

    // Each job's charge is explainable.
    let listed = ok(&db, now, &["view-job-records", "--charges"]);
    assert!(listed.lines().next().unwrap_or("").ends_with("allocation | charge"), "{listed}");
    assert!(listed.contains("physics-q1 | 0.333"), "{listed}");
    let v = json_of(&ok(&db, now, &["view-allocation", "physics-q1", "--jobs", "--json"]));
    let charged: Vec<i64> =
        v["jobs"].as_array().expect("jobs").iter().map(|j| j["amount_milli"].as_i64().unwrap_or(0)).collect();
    assert_eq!(charged, vec![6000, 4000, 333, 80_000, 16_000]);
    assert_eq!(v["charged_milli"], 106_333);
    assert_eq!(v["allocated_milli"], 110_000);

    // The statement adds up exactly: 0 + 100 + 10 − (22.333 + 84) = 3.667.
    let s = json_of(&ok(&db, now, &["allocation-statement", "physics-q1", "--json"]));
    assert_eq!(s["opening_milli"], 0);
    assert_eq!(s["deposited_milli"], 110_000);
    let users: Vec<(String, i64, i64)> = s["charges"]
        .as_array()
        .expect("charges")
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap_or("").to_string(),
                u["jobs"].as_i64().unwrap_or(0),
                u["amount_milli"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(users, vec![("alice".to_string(), 3, 22_333), ("bob".to_string(), 2, 84_000)]);
    assert_eq!(s["charged_milli"], 106_333);
    assert_eq!(s["liens_milli"], 0);
    assert_eq!(s["closing_milli"], 3_667);
    // A window: jobs 3 and 4 only (ended on Jan 4 and Jan 5).
    let w = json_of(&ok(
        &db,
        now,
        &[
            "allocation-statement",
            "physics-q1",
            "--json",
            "--start",
            "2026-01-03T12:00:00Z",
            "--end",
            "2026-01-05T12:00:00Z",
        ],
    ));
    assert_eq!(w["opening_milli"], 90_000);
    assert_eq!(w["charged_milli"], 80_333);
    assert_eq!(w["closing_milli"], 9_667);
    let text = ok(&db, now, &["allocation-statement", "physics-q1", "--jobs"]);
    assert!(text.contains("closing balance") && text.contains("3.667"), "{text}");

    // The fixed contract.
    {
        let c = Connection::open(&db).expect("open");
        let row: (String, String, Option<String>, String, i64, i64, i64, i64, i64) = c
            .query_row(
                "SELECT name, bank, project, unit, allocated_milli, charged_milli, reserved_milli, remaining_milli, active \
                 FROM allocation_balance",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?)),
            )
            .expect("allocation_balance");
        assert_eq!(
            row,
            ("physics-q1".into(), "physics".into(), None, "node-hours".into(), 110_000, 106_333, 0, 3_667, 1)
        );
    }

    // Replay reproduces every intermediate balance.
    ok(&db, now, &["rebuild", "--check"]);
    for &(seq, b) in &history {
        assert_eq!(remaining(&db, now, Some(seq)), b, "as of seq {seq}");
    }
    ok(&db, now, &["rebuild"]);
    assert_eq!(remaining(&db, now, None), 3_667);
    ok(&db, now, &["rebuild", "--check"]);
}

#[test]
fn a_deleted_allocation_keeps_its_history_and_charges_nothing_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = site(dir.path());
    let now = JAN1 + 24.0 * HOUR;
    let rec = |id: u64| {
        json!({"id": id, "userid": 1001, "bank": "experiment", "t_submit": now - 4000.0, "t_run": now - HOUR,
               "t_inactive": now, "nnodes": 1, "ncores": 1})
    };
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, format!("{}\n", rec(1))).expect("write");
    ok(&db, now, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
    ok(&db, now, &["delete-allocation", "physics-q1"]);
    std::fs::write(&path, format!("{}\n", rec(2))).expect("write");
    ok(&db, now, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
    let v = json_of(&ok(&db, now, &["view-allocation", "physics-q1", "--json"]));
    assert_eq!((v["charged_milli"].as_i64(), v["active"].as_bool()), (Some(1000), Some(false)));
    let list = ok(&db, now, &["list-allocations"]);
    assert!(list.contains("physics-q1") && list.contains("99"), "{list}");
    let (code, _, stderr) = run(&db, now, &["edit-allocation", "physics-q1", "--deposit", "1"]);
    assert_eq!((code, stderr.trim()), (1, "flux-account: error: allocation physics-q1 was deleted"));
    ok(&db, now, &["rebuild", "--check"]);
}
