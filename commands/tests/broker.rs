//! The real-broker suite: every Flux-facing path of fluxacct against a
//! real flux-core instance (`flux start --test-size=N`), each test with its
//! own temporary ledger, driven with real jobs. See `flux_instance/mod.rs` for how
//! flux-core is found; without one each test returns after a one-line
//! notice naming FLUX_PREFIX. The jobtap host harness
//! (tests/tests/plugin_abi.rs) stays the fast, broker-free test of the
//! plugin's callbacks.
//!
//! The test names' prefixes (`p1_…` … `p7_…`) number the points checked,
//! from loading a snapshot to the broker going away; `p8_…` is the plugin
//! fed flux-accounting's way, by its update RPCs.

mod flux_instance;

use std::time::{Duration, Instant};

use flux_instance::{decimal, note, owner, ran, Instance, Setup};
use serde_json::{json, Value};

fn size(n: u32) -> Setup {
    Setup { size: n, ..Setup::default() }
}

/// The jobspec-update event's context of a job, if any.
fn spec_update(inst: &Instance, id: &str) -> Option<Value> {
    inst.eventlog(id).into_iter().find(|(n, _)| n == "jobspec-update").map(|(_, c)| c)
}

/// The dependency descriptions a job got.
fn deps(inst: &Instance, id: &str) -> Vec<String> {
    inst.eventlog(id)
        .into_iter()
        .filter(|(n, _)| n == "dependency-add")
        .filter_map(|(_, c)| c["description"].as_str().map(str::to_string))
        .collect()
}

fn association<'a>(q: &'a Value, uid: u32, bank: &str) -> Option<&'a Value> {
    q["mf_priority_map"].as_array()?.iter().find(|u| u["userid"] == uid)?["banks"]
        .as_array()?
        .iter()
        .find(|b| b["bank_name"] == bank)
}

/// Seed 000's checklist on a loaded plugin: listed, a job without bank or
/// project gets both in one jobspec-update and priority 50000, and the
/// query shows the association.
fn checklist(inst: &Instance, how: &str) {
    let list = inst.ok(&["jobtap", "list"]);
    assert!(list.lines().any(|l| l.starts_with("mf_priority")), "{how}: jobtap list: {list}");
    let id = inst.submit(&["true"]);
    inst.wait_event(&id, "clean");
    assert_eq!(
        spec_update(inst, &id),
        Some(json!({"attributes.system.bank": "A", "attributes.system.project": "*"})),
        "{how}"
    );
    let j = inst.job(&id);
    assert_eq!(j["priority"], 50_000, "{how}: {j}");
    assert_eq!(j["bank"], "A", "{how}: {j}");
    let q = inst.query();
    let a = association(&q, owner().0, "A").unwrap_or_else(|| panic!("{how}: no association in {q}"));
    assert_eq!(a["fairshare"], 0.5, "{how}");
    assert_eq!(a["cur_active_jobs"], 0, "{how}");
}

/// Loaded with `snapshot=` and with `config=$(flux account
/// export-json)` (the `flux` driver running fluxacct's `flux-account`).
/// The third way (job-manager.toml, after a restart) is in
/// `p1_p6_toml_plugin_after_restart_prioritizes_pending_jobs_at_once`.
#[test]
fn p1_plugin_loads_with_snapshot_and_with_export_json_config() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p1_plugin_loads_with_snapshot_and_with_export_json_config");
    inst.site();
    inst.load_plugin();
    checklist(&inst, "snapshot=");
    inst.ok(&["jobtap", "remove", "mf_priority.so"]);
    inst.sh_ok("flux jobtap load \"$SO\" \"config=$(flux account -p \"$DB\" export-json)\"");
    checklist(&inst, "config=");
    // The config's data is in force: a bank unknown to it is refused.
    let r = inst.flux(&["submit", "--setattr=system.bank=nope", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("cannot find user/bank or user/default bank entry for uid"), "{}", r.err);
}

/// The instance owner's jobs run although the owner has no
/// association (the plugin gives it flux-accounting's synthetic one).
#[test]
fn p5_owner_without_association_runs() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p5_owner_without_association_runs");
    inst.account_ok(&["create-db"]);
    inst.account_ok(&["add-bank", "root", "1"]);
    inst.account_ok(&["add-bank", "--parent-bank=root", "giants", "1"]);
    inst.account_ok(&["add-user", "--username=crawford", "--userid=5035", "--bank=giants"]);
    inst.load_plugin();
    let id = inst.submit(&["true"]);
    inst.wait_event(&id, "clean");
    let j = inst.job(&id);
    assert_eq!(j["result"], "COMPLETED", "{j}");
    assert_eq!(j["priority"], 50_000, "{j}");
    assert_eq!(j["bank"], owner().1, "{j}");
}

/// An empty ledger: after `priority-update` the owner's job gets a
/// priority and runs (the plugin gives the owner its synthetic
/// association), and the query shows it.
#[test]
fn p5_empty_ledger_owner_job_gets_a_priority_and_runs() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p5_empty_ledger_owner_job_gets_a_priority_and_runs");
    inst.account_ok(&["create-db"]);
    let so = flux_instance::plugin().display().to_string();
    inst.ok(&["jobtap", "load", "-r", ".priority-default", &so]);
    inst.account_ok(&["priority-update"]);
    let id = inst.submit(&["true"]);
    inst.wait_event(&id, "clean");
    let j = inst.job(&id);
    assert_eq!(j["result"], "COMPLETED", "{j}");
    assert_eq!(j["priority"], 50_000, "{j}");
    assert_eq!(j["bank"], owner().1, "{j}");
    assert!(association(&inst.query(), owner().0, &owner().1).is_some(), "{}", inst.query());
}

/// `priority-update` with no reachable instance fails with one line
/// naming what was tried, unless `--no-flux`.
#[test]
fn p7_priority_update_without_instance_fails_in_one_line() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p7_priority_update_without_instance_fails_in_one_line");
    inst.site();
    let gone = format!("local://{}/nothing-here", inst.dir.path().display());
    for script in [
        format!("FLUX_URI={gone} flux account-priority-update -p \"$DB\""),
        format!("FLUX_URI={gone} \"$FA\" -p \"$DB\" priority-update"),
    ] {
        let r = inst.sh(&script);
        assert_ne!(r.code, 0, "{script}: {}", r.out);
        assert_eq!(r.err.lines().count(), 1, "{script}: {}", r.err);
        assert!(r.err.contains("no Flux instance could be reached at FLUX_URI="), "{}", r.err);
        assert!(r.err.contains("libflux-core.so.2"), "{}", r.err);
    }
    // Run directly (not through the driver) with a flux on PATH only.
    let r = inst.sh(&format!("FLUX_URI={gone} \"$FA\" -p \"$DB\" priority-update"));
    assert!(r.err.contains("(the flux on PATH)") || r.err.contains("(FLUX_CONNECTOR_PATH)"), "{}", r.err);
    // No flux anywhere: the message names what was tried.
    let r = inst.sh("PATH=/usr/bin:/bin FLUX_URI= \"$FA\" -p \"$DB\" priority-update");
    assert_ne!(r.code, 0);
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
    let r = inst.sh(&format!("FLUX_URI={gone} flux account-priority-update -p \"$DB\" --no-flux"));
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("wrote snapshot "), "{}", r.out);
}

/// Sets association limits of the owner in bank A and loads the plugin.
fn limited(inst: &Instance, limits: &[&str]) {
    inst.site();
    let me = owner().1;
    let mut args = vec!["edit-user", me.as_str(), "--bank=A"];
    args.extend_from_slice(limits);
    inst.account_ok(&args);
    inst.load_plugin();
}

/// Max_active_jobs rejects at submit with the reference's text;
/// `--urgency` and `--setattr=system.bank` reach the plugin.
#[test]
fn p2_max_active_jobs_rejects_with_the_reference_text() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p2_max_active_jobs_rejects_with_the_reference_text");
    limited(&inst, &["--max-active-jobs=2"]);
    let a = inst.submit(&["--urgency=20", "sleep", "300"]);
    let b = inst.submit(&["sleep", "300"]);
    let r = inst.flux(&["submit", "true"]);
    assert_ne!(r.code, 0, "third job accepted");
    assert!(r.err.contains("user has max active jobs"), "{}", r.err);
    // Bank B has its own count (the job waits for a core).
    let c = inst.submit(&["--setattr=system.bank=B", "true"]);
    let j = inst.wait_job(&c, "priority", |j| j["priority"].is_number());
    assert_eq!(j["bank"], "B");
    assert_eq!(j["priority"], 50_000);
    let j = inst.wait_job(&a, "priority", |j| j["priority"].is_number());
    assert_eq!(j["priority"], 54_000, "urgency 20: {j}");
    inst.ok(&["cancel", &a, &b, &c]);
}

/// Max_running_jobs holds a job with `max-running-jobs-user-limit`
/// and releases it when the running job finishes.
#[test]
fn p2_max_running_jobs_holds_then_releases() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p2_max_running_jobs_holds_then_releases");
    limited(&inst, &["--max-running-jobs=1"]);
    let a = inst.submit(&["sleep", "300"]);
    inst.wait_event(&a, "start");
    let b = inst.submit(&["true"]);
    inst.wait_event(&b, "dependency-add");
    assert_eq!(deps(&inst, &b), ["max-running-jobs-user-limit"]);
    assert_eq!(inst.job(&b)["state"], "DEPEND");
    inst.ok(&["cancel", &a]);
    inst.wait_event(&b, "clean");
    assert_eq!(inst.job(&b)["result"], "COMPLETED");
}

/// Per-queue limits with flux-core queues: a queue the association
/// may not use is refused, the queue's running-jobs limit holds and
/// releases, and the queue's priority is in the job's priority.
#[test]
fn p2_queue_limits() {
    let setup = Setup {
        size: 1,
        config: vec![("queues.toml".into(), "[queues.debug]\n[queues.batch]\n".into())],
        ..Setup::default()
    };
    let Some(inst) = Instance::start(setup) else { return };
    ran("p2_queue_limits");
    inst.ok(&["queue", "start", "--all"]);
    inst.site();
    inst.account_ok(&["add-queue", "debug", "--max-running-jobs=1", "--priority=100"]);
    inst.account_ok(&["add-queue", "batch"]);
    inst.account_ok(&["edit-user", &owner().1, "--bank=A", "--queues=debug"]);
    inst.load_plugin();
    let a = inst.submit(&["--queue=debug", "sleep", "300"]);
    inst.wait_event(&a, "start");
    assert_eq!(inst.job(&a)["priority"], 1_050_000);
    let b = inst.submit(&["--queue=debug", "true"]);
    inst.wait_event(&b, "dependency-add");
    assert_eq!(deps(&inst, &b), ["max-run-jobs-queue"]);
    let r = inst.flux(&["submit", "--queue=batch", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("queue \"batch\" not valid for user; valid queues for user: debug"), "{}", r.err);
    inst.ok(&["cancel", &a]);
    inst.wait_event(&b, "clean");
    assert_eq!(inst.job(&b)["result"], "COMPLETED");
}

/// Max_nodes/max_cores on a 2-broker instance: a job bigger than the
/// limit is refused, one that would exceed it with the running jobs is held
/// with `max-resources-user-limit` and released when room frees up.
#[test]
fn p2_max_nodes_and_cores_on_two_brokers() {
    let Some(inst) = Instance::start(size(2)) else { return };
    ran("p2_max_nodes_and_cores_on_two_brokers");
    limited(&inst, &["--max-nodes=1"]);
    let a = inst.submit(&["-N1", "sleep", "300"]);
    inst.wait_event(&a, "start");
    let b = inst.submit(&["-N1", "true"]);
    inst.wait_event(&b, "dependency-add");
    assert_eq!(deps(&inst, &b), ["max-resources-user-limit"]);
    let r = inst.flux(&["submit", "-N2", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.err.contains("job size (2 node(s), 2 core(s)) is greater than max resources limits configured for association (1 node(s), 2147483647 core(s))"),
        "{}",
        r.err
    );
    inst.ok(&["cancel", &a]);
    inst.wait_event(&b, "clean");
    // max_cores, pushed by priority-update through the flux driver.
    inst.account_ok(&["edit-user", &owner().1, "--bank=A", "--max-nodes=2", "--max-cores=1"]);
    inst.sh_ok("flux account-priority-update -p \"$DB\"");
    let r = inst.flux(&["submit", "-N2", "true"]);
    assert!(r.err.contains("(2 node(s), 2 core(s)) is greater than max resources limits configured for association (2 node(s), 1 core(s))"), "{}", r.err);
    let c = inst.submit(&["-n1", "true"]);
    inst.wait_event(&c, "clean");
}

/// Inactive jobs of `flux jobs -a --json`, by decimal id.
fn flux_jobs_inactive(inst: &Instance) -> Vec<Value> {
    let v: Value = serde_json::from_str(&inst.ok(&["jobs", "-a", "-c", "0", "--json"])).expect("flux jobs JSON");
    let mut jobs: Vec<Value> =
        v["jobs"].as_array().expect("jobs").iter().filter(|j| j["state"] == "INACTIVE").cloned().collect();
    jobs.sort_by_key(|j| j["id"].as_i64());
    jobs
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-3,
        _ => false,
    }
}

/// The recorded jobs equal flux's view of the jobs that ran: ids, bank,
/// queue, project, nnodes and the three times.
fn assert_recorded_match(inst: &Instance, ran: &[Value]) {
    let rec = inst.recorded();
    let ids = |v: &[Value]| v.iter().map(|j| j["id"].as_i64().unwrap_or(-1)).collect::<Vec<_>>();
    assert_eq!(ids(&rec), ids(ran), "recorded ids vs flux jobs -a");
    for (r, f) in rec.iter().zip(ran) {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        assert_eq!(text(&r["bank"]), text(&f["bank"]), "bank of {f}");
        assert_eq!(text(&r["queue"]), text(&f["queue"]), "queue of {f}");
        assert_eq!(text(&r["project"]), text(&f["project"]), "project of {f}");
        assert_eq!(r["nnodes"], f["nnodes"], "nnodes of {f}");
        for t in ["t_submit", "t_run", "t_inactive"] {
            assert!(close(&r[t], &f[t]), "{t}: recorded {r} vs flux {f}");
        }
    }
}

/// Jobs as two banks of the same user, then the seed's cron line
/// through the `flux` driver: the recorded jobs equal `flux jobs -a`,
/// usage and fair-share moved, pending jobs were reprioritized.
#[test]
fn p3_cron_pipeline_end_to_end() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p3_cron_pipeline_end_to_end");
    inst.site();
    inst.account_ok(&["edit-user", &owner().1, "--bank=A", "--projects=*,shortstops"]);
    inst.load_plugin();
    inst.ok(&["run", "--setattr=system.bank=A", "sleep", "2"]);
    inst.ok(&["run", "--setattr=system.bank=A", "--setattr=system.project=shortstops", "sleep", "1"]);
    inst.ok(&["run", "--setattr=system.bank=B", "true"]);
    inst.ok(&["queue", "stop"]);
    let pa = inst.submit(&["--setattr=system.bank=A", "true"]);
    let pb = inst.submit(&["--setattr=system.bank=B", "true"]);
    for id in [&pa, &pb] {
        assert_eq!(inst.wait_job(id, "priority", |j| j["priority"].is_number())["priority"], 50_000);
    }
    let before = (inst.usage("A"), inst.usage("B"));
    let r = inst.sh("bash -c \"flux account-fetch-job-records -p $DB; flux account-update-usage -p $DB; \
         flux account-update-fshare -p $DB; flux account-priority-update -p $DB\"");
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(r.err, "", "cron line stderr");
    assert_recorded_match(&inst, &flux_jobs_inactive(&inst));
    let after = (inst.usage("A"), inst.usage("B"));
    assert!(after.0 .0 > before.0 .0 && after.1 .0 > before.1 .0, "usage: {before:?} -> {after:?}");
    assert!(after.0 .0 > after.1 .0, "A ran longer: {after:?}");
    assert_ne!((after.0 .1, after.1 .1), (0.5, 0.5), "fair-share did not move: {after:?}");
    for (id, fs) in [(&pa, after.0 .1), (&pb, after.1 .1)] {
        let want = (fs * 100_000.0).round() as i64;
        let j = inst.wait_job(id, "reprioritized", |j| j["priority"] == want);
        assert_eq!(j["priority"], want);
    }
    inst.ok(&["queue", "start"]);
}

/// Live fetch, the hard cases: running and pending jobs are not
/// recorded and are picked up later; a job canceled while running is
/// recorded with its run time, and with its `R` as updated when its
/// duration was raised (a `resource-update` event: R is read from the KVS,
/// and from job-info when job-list's expiration says it changed); a job
/// that never ran is skipped and counted; the bank posted by the plugin is
/// the one recorded; a second fetch records nothing; a user who may not
/// read the KVS is served by job-info (which refuses other users' jobs).
#[test]
fn p4_live_fetch_hard_cases() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p4_live_fetch_hard_cases");
    inst.site();
    inst.load_plugin();
    let done = inst.submit(&["true"]);
    inst.wait_event(&done, "clean");
    let running = inst.submit(&["-t", "10m", "sleep", "300"]);
    inst.wait_event(&running, "start");
    inst.ok(&["update", &running, "duration=20m"]);
    let held = inst.submit(&["--urgency=0", "true"]);
    inst.wait_event(&held, "priority");
    let fetch = || inst.sh_ok("flux account-fetch-job-records -v -p \"$DB\"");
    let out = fetch();
    assert!(out.starts_with("recorded 1, "), "{out}");
    let rec = inst.recorded();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["id"], decimal(&inst, &done));
    assert_eq!(rec[0]["bank"], "A", "bank posted by the plugin's jobspec-update");
    std::thread::sleep(Duration::from_millis(1500));
    inst.ok(&["cancel", &running, &held]);
    inst.wait_event(&running, "clean");
    inst.wait_event(&held, "clean");
    let out = fetch();
    assert!(out.starts_with("recorded 1, "), "{out}");
    assert!(out.contains("1 never ran"), "the never-run job is counted: {out}");
    let rec = inst.recorded();
    assert_eq!(rec.len(), 2);
    let r = rec.iter().find(|r| r["id"] == decimal(&inst, &running)).expect("canceled job recorded");
    let ran_for = r["t_inactive"].as_f64().unwrap_or(0.0) - r["t_run"].as_f64().unwrap_or(0.0);
    assert!(ran_for > 1.0, "canceled job's run time: {r}");
    let updated = inst
        .eventlog(&running)
        .into_iter()
        .find(|(n, _)| n == "resource-update")
        .map(|(_, c)| c["expiration"].clone())
        .expect("resource-update event");
    let c = rusqlite::Connection::open(inst.db()).expect("ledger");
    let r_text: String =
        c.query_row("SELECT R FROM jobs WHERE id = ?1", [decimal(&inst, &running)], |r| r.get(0)).expect("recorded R");
    let r_json: Value = serde_json::from_str(&r_text).expect("R");
    assert_eq!(r_json["execution"]["expiration"], updated, "R with the resource-update applied: {r_text}");
    let start = r_json["execution"]["starttime"].as_f64().unwrap_or(0.0);
    assert!((updated.as_f64().unwrap_or(0.0) - start - 1200.0).abs() < 1e-3, "{r_text}");
    assert_recorded_match(
        &inst,
        &flux_jobs_inactive(&inst).into_iter().filter(|j| j["t_run"].is_number()).collect::<Vec<_>>(),
    );
    let out = fetch();
    assert!(out.starts_with("recorded 0, "), "{out}");
    // Another user: the KVS refuses (EPERM), job-info refuses the owner's
    // jobs; the fetch fails in one line and records nothing.
    let guest = inst.path("guest.db");
    inst.site_at(&guest);
    let r = inst.sh(&format!(
        "FLUX_HANDLE_USERID={} FLUX_HANDLE_ROLEMASK=2 \"$FA\" -p {} fetch-job-records",
        owner().0 + 1,
        guest.display()
    ));
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.err.contains("job-info.lookup: access is restricted to job/instance owner"), "{}", r.err);
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
    assert!(inst.recorded_at(&guest).is_empty());
}

/// Many jobs, the broker gone mid-fetch, and the live fetch's timing:
/// a few thousand `true` jobs are all recorded once; the fetch is timed
/// next to `flux jobs -a -c 0 --json`; a fetch into a fresh ledger whose
/// broker is killed midway exits non-zero and leaves whole batches only.
#[test]
fn p4_p7_thousands_of_jobs_then_broker_dies_mid_fetch() {
    let Some(mut inst) = Instance::start(size(1)) else { return };
    ran("p4_p7_thousands_of_jobs_then_broker_dies_mid_fetch");
    const N: usize = 2000;
    inst.site();
    inst.account_ok(&["edit-user", &owner().1, "--bank=A", "--max-active-jobs=100000", "--max-running-jobs=100000"]);
    inst.load_plugin();
    let t0 = Instant::now();
    inst.ok(&["submit", "--quiet", &format!("--cc=1-{N}"), "--wait", "true"]);
    note(&format!("broker suite: {N} jobs ran in {:.1} s", t0.elapsed().as_secs_f64()));
    let t0 = Instant::now();
    let listed = flux_jobs_inactive(&inst);
    let t_jobs = t0.elapsed().as_secs_f64();
    assert_eq!(listed.len(), N);
    let t0 = Instant::now();
    let out = inst.sh_ok("flux account-fetch-job-records -v -p \"$DB\"");
    let t_fetch = t0.elapsed().as_secs_f64();
    note(&format!(
        "broker suite: {N} finished jobs: `flux jobs -a -c 0 --json` {t_jobs:.2} s, `flux account-fetch-job-records` {t_fetch:.2} s (fetch/flux jobs {:.2})",
        t_fetch / t_jobs
    ));
    assert!(out.starts_with(&format!("recorded {N}, already recorded 0, rejected 0")), "{out}");
    assert_recorded_match(&inst, &listed);
    let out = inst.sh_ok("flux account-fetch-job-records -v -p \"$DB\"");
    assert!(out.starts_with("recorded 0, "), "{out}");
    assert_eq!(inst.recorded().len(), N);

    // A fresh ledger; the broker is killed while the fetch runs.
    let fresh = inst.path("fresh.db");
    inst.site_at(&fresh);
    const BATCH: usize = 100;
    let child = inst
        .command(env!("CARGO_BIN_EXE_flux-account"))
        .arg("-p")
        .arg(&fresh)
        // Small job-list windows: many round trips, so that the broker is
        // killed while the fetch still has jobs to read.
        .args(["fetch-job-records", &format!("--batch-size={BATCH}"), "--live-window=50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fetch");
    // Kill the broker once the first batch is committed (or after a
    // fraction of the first fetch's time, whichever comes first).
    let started = std::time::Instant::now();
    let limit = Duration::from_secs_f64((t_fetch * 0.3).clamp(0.05, 2.0));
    while started.elapsed() < limit && committed_jobs(&fresh) == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    inst.kill();
    let r: flux_instance::Run = child.wait_with_output().expect("fetch output").into();
    assert_ne!(r.code, 0, "fetch survived the broker: {}", r.out);
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
    let n = inst.recorded_at(&fresh).len();
    assert_eq!(n % BATCH, 0, "a partial batch was recorded ({n})");
    let v = inst.account_at(&fresh, &["verify"]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    note(&format!("broker suite: broker killed mid-fetch: {n} records kept, fetch said: {}", r.err.trim()));
}

/// Reloading the plugin with a bad snapshot is refused and the old
/// data stays in force.
#[test]
fn p7_bad_snapshot_reload_keeps_the_old_data() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p7_bad_snapshot_reload_keeps_the_old_data");
    inst.site();
    inst.load_plugin();
    let seq = inst.query()["snapshot"]["seq"].clone();
    assert!(seq.is_number(), "{}", inst.query());
    let good = std::fs::read(format!("{}.snapshot", inst.db().display())).expect("snapshot");
    let bad =
        [("truncated.snapshot", good[..good.len() / 2].to_vec()), ("garbage.snapshot", b"not a snapshot".to_vec())];
    for (name, bytes) in bad {
        let path = inst.path(name);
        std::fs::write(&path, bytes).expect("write");
        let r = inst.flux(&[
            "python",
            "-c",
            "import flux, sys; flux.Flux().rpc('job-manager.mf_priority.load_snapshot', {'path': sys.argv[1]}).get()",
            &path.display().to_string(),
        ]);
        assert_ne!(r.code, 0, "{name} accepted");
        assert_eq!(inst.query()["snapshot"]["seq"], seq, "{name}");
    }
    // priority-update with an unwritable snapshot path fails too.
    let r = inst.account(&["priority-update", "--snapshot=/nonexistent/dir/snap"]);
    assert_ne!(r.code, 0);
    let id = inst.submit(&["true"]);
    inst.wait_event(&id, "clean");
    assert_eq!(inst.job(&id)["priority"], 50_000);
    assert_eq!(inst.job(&id)["bank"], "A");
}

/// The `job-manager.toml` entry of README, pointing at this instance's
/// ledger's snapshot.
const JOB_MANAGER_TOML: &str = "[job-manager]
plugins = [
  { load = \"@SO@\", remove = \".priority-default\", conf = { snapshot = \"@DIR@/ledger.db.snapshot\" } },
]
";

/// The ledger's last event (`log --json`).
fn last_event(inst: &Instance) -> Value {
    let log = inst.account_ok(&["log", "--json"]);
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).next_back().expect("events")
}

/// Bank factor weight 1000 and bank A priority 10: +10000.
fn raise_bank_a(inst: &Instance) {
    inst.account_ok(&["edit-factor", "--factor=bank", "--weight=1000"]);
    inst.account_ok(&["edit-bank", "A", "--priority=10"]);
}

/// The plugin configured in job-manager.toml
/// with a snapshot is loaded at a broker restart, and after a restart
/// pending jobs get the new snapshot's priorities at once, before any cron
/// run.
#[test]
fn p1_p6_toml_plugin_after_restart_prioritizes_pending_jobs_at_once() {
    let setup = Setup { size: 1, config: vec![("empty.toml".into(), "# none yet\n".into())], ..Setup::default() };
    let Some(mut inst) = Instance::start(setup) else { return };
    ran("p1_p6_toml_plugin_after_restart_prioritizes_pending_jobs_at_once");
    inst.site();
    inst.account_ok(&["priority-update", "--no-flux"]);
    inst.write_config("job-manager.toml", JOB_MANAGER_TOML);
    inst.restart();
    checklist(&inst, "job-manager.toml");
    inst.ok(&["queue", "stop"]);
    let ids: Vec<String> = (0..2).map(|_| inst.submit(&["true"])).collect();
    for id in &ids {
        assert_eq!(inst.wait_job(id, "priority", |j| j["priority"].is_number())["priority"], 50_000);
    }
    raise_bank_a(&inst);
    inst.account_ok(&["priority-update", "--no-flux"]);
    inst.restart();
    let head = inst.query()["snapshot"]["seq"].clone();
    for id in &ids {
        let j = inst.wait_job(id, "new priority", |j| j["priority"] == 60_000);
        assert_eq!(j["priority"], 60_000);
    }
    let last = last_event(&inst);
    assert_eq!(head, last["seq"], "the plugin works from the ledger head");
    inst.ok(&["queue", "start"]);
}

/// The rc1 hook (etc/rc1.d/01-flux-account-priority-update), installed
/// in an rc1.d of FLUX_RC_EXTRA on a 2-broker instance: at start it pushes
/// the ledger's current state (not the stale snapshot) to the plugin.
#[test]
fn rc1_hook_pushes_the_ledger_at_start() {
    let setup = Setup {
        size: 2,
        config: vec![("empty.toml".into(), "# none yet\n".into())],
        env: vec![("FLUX_RC_EXTRA".into(), "@DIR@/rc".into()), ("FLUXACCT_DB".into(), "@DIR@/ledger.db".into())],
        args: vec![],
    };
    let Some(mut inst) = Instance::start(setup) else { return };
    ran("rc1_hook_pushes_the_ledger_at_start");
    inst.site();
    inst.account_ok(&["priority-update", "--no-flux"]);
    inst.write_config("job-manager.toml", JOB_MANAGER_TOML);
    let hook = flux_instance::workspace().join("etc/rc1.d/01-flux-account-priority-update");
    std::fs::create_dir_all(inst.path("rc/rc1.d")).expect("rc1.d");
    let installed = inst.path("rc/rc1.d/01-flux-account-priority-update");
    std::fs::copy(&hook, &installed).expect("installing the hook");
    // The ledger moves on; the snapshot is now stale.
    raise_bank_a(&inst);
    inst.restart();
    let id = inst.submit(&["true"]);
    inst.wait_event(&id, "clean");
    assert_eq!(inst.job(&id)["priority"], 60_000, "{}", inst.broker_log());
    let last = last_event(&inst);
    assert_eq!(inst.query()["snapshot"]["seq"], last["seq"]);
}

/// Job records committed to `db` so far (0 while it cannot be read).
fn committed_jobs(db: &std::path::Path) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .and_then(|c| c.query_row("SELECT count(*) FROM events WHERE kind = 'JobRecorded'", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Sends `job-manager.mf_priority.METHOD` with a JSON payload through the
/// Python bindings, as flux-accounting's tools and tests do.
fn rpc(inst: &Instance, method: &str, payload: &Value) -> flux_instance::Run {
    let topic = format!("job-manager.mf_priority.{method}");
    let script = "import flux, sys; flux.Flux().rpc(sys.argv[1], sys.argv[2]).get()";
    inst.flux(&["python", "-c", script, &topic, &payload.to_string()])
}

/// A `rec_update` element for the owner (all 13 keys).
fn owner_rec(bank: &str, def_bank: &str, fairshare: f64, max_running_jobs: i64) -> Value {
    json!({"userid": owner().0, "bank": bank, "def_bank": def_bank, "fairshare": fairshare,
           "max_running_jobs": max_running_jobs, "max_active_jobs": 12, "max_nodes": 2147483647,
           "max_cores": 2147483647, "max_sched_jobs": 2147483647, "queues": "", "active": 1,
           "projects": "*", "def_project": "*"})
}

/// The priority of a job once it has one.
fn priority_of(inst: &Instance, id: &str) -> Value {
    inst.wait_job(id, "priority", |j| j["priority"].is_number())["priority"].clone()
}

/// flux-accounting's direct plugin checks, fed by its update RPCs to a
/// plugin loaded without data: a payload without `data` fails and is
/// logged; jobs submitted before any data wait in PRIORITY until
/// `reprioritize`; priorities follow fair-share, urgency and the factor
/// weight sent; unknown banks and malformed bank attributes are refused;
/// the bank-info-missing marker fails a job; a limit raised by
/// `rec_update` + `reprioritize` releases a held job.
#[test]
fn p8_update_rpcs_feed_the_plugin_as_flux_accounting_does() {
    let Some(inst) = Instance::start(size(1)) else { return };
    ran("p8_update_rpcs_feed_the_plugin_as_flux_accounting_does");
    let so = flux_instance::plugin().display().to_string();
    inst.ok(&["jobtap", "load", "-r", ".priority-default", &so]);
    let r = rpc(&inst, "rec_update", &json!({}));
    assert_ne!(r.code, 0, "an empty payload is refused");
    let dmesg = inst.ok(&["dmesg"]);
    assert!(dmesg.contains("failed to unpack custom_priority.trigger msg: Protocol error"), "{dmesg}");

    let early = inst.submit(&["true"]);
    inst.wait_event(&early, "depend");
    let mut twelve = owner_rec("account2", "account3", 0.11345, 10);
    twelve.as_object_mut().map(|o| o.remove("max_sched_jobs"));
    let queue = json!({"queue": "default", "min_nodes_per_job": 0, "max_nodes_per_job": 5,
        "max_time_per_job": 64000, "priority": 0, "max_running_jobs": 2147483647,
        "max_nodes_per_assoc": 2147483647, "max_sched_jobs": 2147483647,
        "max_sched_nodes_per_assoc": 2147483647, "max_sched_cores_per_assoc": 2147483647});
    for (method, payload) in [
        ("rec_update", json!({"data": [owner_rec("account3", "account3", 0.45321, 10), twelve]})),
        ("rec_q_update", json!({"data": [queue]})),
        ("rec_proj_update", json!({"data": [{"project": "*"}]})),
        ("rec_bank_update", json!({"data": [{"bank": "account3", "priority": 0.0}]})),
        ("rec_fac_update", json!({"data": [{"factor": "urgency", "weight": 1}]})),
        ("rec_config_update", json!({"data": {"deny_unknown_queues": false}})),
    ] {
        let r = rpc(&inst, method, &payload);
        assert_eq!(r.code, 0, "{method}: {}", r.err);
    }
    assert_eq!(inst.job(&early)["state"], "PRIORITY", "no reprioritization before reprioritize");
    let r = rpc(&inst, "reprioritize", &json!({}));
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(priority_of(&inst, &early), 45_321);
    inst.wait_event(&early, "clean");

    for (args, want) in [
        (&["--setattr=system.bank=account3"][..], 45_321i64),
        (&["--setattr=system.bank=account3", "--urgency=15"], 45_320),
        (&["--setattr=system.bank=account3", "--urgency=31"], 4_294_967_295),
        (&["--setattr=system.bank=account2"], 11_345),
        (&[], 45_321),
    ] {
        let mut a = args.to_vec();
        a.push("true");
        let id = inst.submit(&a);
        assert_eq!(priority_of(&inst, &id), want, "{args:?}");
        inst.wait_event(&id, "clean");
    }
    let zero = inst.submit(&["--urgency=0", "true"]);
    assert_eq!(priority_of(&inst, &zero), 0);
    inst.ok(&["cancel", &zero]);
    for (arg, text) in [
        ("--setattr=system.bank=account1", "cannot find user/bank or user/default bank entry for uid:"),
        ("--setattr=system.bank=1", "unable to unpack bank arg"),
    ] {
        let r = inst.flux(&["submit", arg, "true"]);
        assert_ne!(r.code, 0, "{arg} accepted");
        assert!(r.err.contains(text), "{arg}: {}", r.err);
    }

    // flux-accounting's marker for missing bank information.
    let r = rpc(&inst, "rec_update", &json!({"data": [owner_rec("missing", "account3", 0.5, -1)]}));
    assert_eq!(r.code, 0, "{}", r.err);
    let id = inst.submit(&["--setattr=system.bank=missing", "true"]);
    inst.wait_event(&id, "exception");
    let ex = inst.eventlog(&id).into_iter().find(|(n, _)| n == "exception").map(|(_, c)| c);
    assert!(ex.is_some_and(|c| c["note"] == "job.state.depend: bank info is missing"));

    // A held job is released once rec_update raises the limit.
    let r = rpc(&inst, "rec_update", &json!({"data": [owner_rec("account3", "account3", 0.45321, 1)]}));
    assert_eq!(r.code, 0, "{}", r.err);
    let a = inst.submit(&["sleep", "300"]);
    inst.wait_event(&a, "start");
    let b = inst.submit(&["true"]);
    inst.wait_event(&b, "dependency-add");
    assert_eq!(deps(&inst, &b), vec!["max-running-jobs-user-limit".to_string()]);
    let r = rpc(&inst, "rec_update", &json!({"data": [owner_rec("account3", "account3", 0.45321, 2)]}));
    assert_eq!(r.code, 0, "{}", r.err);
    let r = rpc(&inst, "reprioritize", &json!({}));
    assert_eq!(r.code, 0, "{}", r.err);
    inst.wait_event(&b, "clean");
    inst.ok(&["cancel", &a]);
    let q = inst.query();
    assert_eq!(association(&q, owner().0, "account2").map(|a| a["max_sched_jobs"].clone()), Some(json!(32_767)));
    assert_eq!(q["rpc_updates"], 9, "{q}");
}
