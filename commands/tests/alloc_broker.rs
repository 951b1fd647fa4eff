//! Allocations against a real flux-core instance (see `flux_instance/mod.rs`;
//! without one each test returns after a one-line notice): a spent
//! allocation holds new jobs with its message until a deposit reaches the
//! plugin, `deny` rejects at submit, running jobs are untouched, and with
//! liens a burst of jobs cannot overspend.

mod flux_instance;

use flux_instance::{owner, ran, Instance, Setup};
use serde_json::Value;

fn size(n: u32) -> Setup {
    Setup { size: n, ..Setup::default() }
}

/// The dependency descriptions a job got.
fn deps(inst: &Instance, id: &str) -> Vec<String> {
    inst.eventlog(id)
        .into_iter()
        .filter(|(n, _)| n == "dependency-add")
        .filter_map(|(_, c)| c["description"].as_str().map(str::to_string))
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The site, with allocation `a1` of `amount` `unit` on bank A (a period
/// around now) and, extra options `extra`.
fn site_with_allocation(inst: &Instance, amount: &str, unit: &str, extra: &[&str]) {
    inst.site();
    let mut args = vec![
        "add-allocation",
        "--bank=A",
        "--amount",
        amount,
        "--unit",
        unit,
        "--start=2020-01-01",
        "--end=2100-01-01",
        "--name=a1",
    ];
    args.extend_from_slice(extra);
    inst.account_ok(&args);
}

/// Records a finished job of the owner in bank A: 1 node, 1 core, `hours` long.
fn spend(inst: &Instance, id: u64, hours: f64) {
    let end = now_s() - 10.0;
    let rec = serde_json::json!({"id": id, "userid": owner().0, "bank": "A", "t_submit": end - hours * 3600.0 - 5.0,
                                 "t_run": end - hours * 3600.0, "t_inactive": end, "nnodes": 1, "ncores": 1});
    let path = inst.path(&format!("spent-{id}.jsonl"));
    std::fs::write(&path, format!("{rec}\n")).expect("write job record");
    inst.account_ok(&["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
}

fn balance(inst: &Instance) -> Value {
    serde_json::from_str(&inst.account_ok(&["view-allocation", "a1", "--json"])).expect("view-allocation JSON")
}

/// `exhausted = hold`: once spent, a new job is held with the message;
/// a running job is untouched; after `edit-allocation --deposit` and
/// `priority-update` the held job runs.
#[test]
fn a_spent_allocation_holds_new_jobs_until_a_deposit_reaches_the_plugin() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("a_spent_allocation_holds_new_jobs_until_a_deposit_reaches_the_plugin");
    site_with_allocation(&inst, "1", "node-hours", &["--exhausted=hold"]);
    inst.load_plugin();
    let running = inst.submit(&["--setattr=system.bank=A", "sleep", "300"]);
    inst.wait_event(&running, "start");
    spend(&inst, 1, 1.0);
    assert_eq!(balance(&inst)["remaining_milli"], 0);
    inst.account_ok(&["priority-update"]);
    let held = inst.submit(&["--setattr=system.bank=A", "true"]);
    inst.wait_event(&held, "dependency-add");
    assert_eq!(deps(&inst, &held), ["allocation a1 exhausted: 0 of 1 node-hours left"]);
    assert_eq!(inst.job(&held)["state"], "DEPEND");
    assert_eq!(inst.job(&running)["state"], "RUN", "the running job is untouched");
    inst.account_ok(&["edit-allocation", "a1", "--deposit", "5"]);
    inst.account_ok(&["priority-update"]);
    inst.wait_event(&held, "clean");
    assert_eq!(inst.job(&held)["result"], "COMPLETED");
    assert_eq!(inst.job(&running)["state"], "RUN");
    inst.ok(&["cancel", &running]);
}

/// `exhausted = deny`: a new job is rejected at submit with the message.
#[test]
fn a_spent_allocation_with_deny_rejects_at_submit_with_the_message() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("a_spent_allocation_with_deny_rejects_at_submit_with_the_message");
    site_with_allocation(&inst, "1", "node-hours", &["--exhausted=deny"]);
    spend(&inst, 1, 2.0);
    inst.load_plugin();
    let r = inst.flux(&["submit", "--setattr=system.bank=A", "true"]);
    assert_ne!(r.code, 0, "job accepted: {}", r.out);
    assert!(r.err.contains("allocation a1 exhausted: 0 of 1 node-hours left"), "{}", r.err);
    // Bank B has no allocation.
    let b = inst.submit(&["--setattr=system.bank=B", "true"]);
    inst.wait_event(&b, "clean");
}

/// Liens: ten one-hour, one-core jobs submitted at once against 6
/// core-hours: at most six get past DEPEND, the rest are held, and once
/// they are recorded no overdraft is.
#[test]
fn with_liens_ten_jobs_at_once_against_six_core_hours_run_at_most_six() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("with_liens_ten_jobs_at_once_against_six_core_hours_run_at_most_six");
    site_with_allocation(&inst, "6", "core-hours", &[]);
    inst.account_ok(&["add-config", "allocation_liens=true"]);
    inst.account_ok(&["edit-user", &owner().1, "--bank=A", "--max-active-jobs=100", "--max-running-jobs=100"]);
    inst.load_plugin();
    inst.ok(&["queue", "stop"]);
    let ids: Vec<String> =
        (0..10).map(|_| inst.submit(&["--setattr=system.bank=A", "-n1", "-t", "60m", "sleep", "2"])).collect();
    let mut held = Vec::new();
    for id in &ids {
        let j = inst.wait_job(id, "past NEW", |j| j["state"] != "NEW");
        if j["state"] == "DEPEND" {
            held.push(id.clone());
        }
    }
    assert_eq!(held.len(), 4, "held: {held:?}");
    for id in &held {
        assert_eq!(deps(&inst, id), ["allocation a1 exhausted: 0 of 6 core-hours left"]);
    }
    inst.ok(&["queue", "start"]);
    for id in ids.iter().filter(|id| !held.contains(id)) {
        inst.wait_event(id, "clean");
    }
    inst.account_ok(&["fetch-job-records"]);
    let b = balance(&inst);
    let (charged, allocated) = (b["charged_milli"].as_i64().unwrap_or(-1), b["allocated_milli"].as_i64().unwrap_or(0));
    assert!(charged >= 6 && charged <= allocated, "{b}");
    assert!(b["remaining_milli"].as_i64().unwrap_or(-1) >= 0, "overdraft recorded: {b}");
    for id in &held {
        assert_eq!(inst.job(id)["state"], "DEPEND");
        inst.ok(&["cancel", id]);
    }
}
