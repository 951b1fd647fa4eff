//! The real-broker suite: every Flux-facing path of fluxacct against a
//! real flux-core instance (`flux start --test-size=N`), each test with its
//! own temporary ledger, driven with real jobs. See `flux_instance/mod.rs` for how
//! flux-core is found; without one each test returns after a one-line
//! notice naming FLUX_PREFIX. The jobtap host harness
//! (tests/tests/plugin_abi.rs) stays the fast, broker-free test of the
//! plugin's callbacks.
//!
//! Issue 12 §2's points are the test names' prefixes (`p1_…` … `p7_…`).

mod flux_instance;

use std::time::{Duration, Instant};

use flux_instance::{decimal, note, owner, plugin, ran, Instance, Setup};
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
    q["mf_priority_map"]
        .as_array()?
        .iter()
        .find(|u| u["userid"] == uid)?["banks"]
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

/// §2.1: loaded with `snapshot=` and with `config=$(flux account
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

/// §2.5: the instance owner's jobs run although the owner has no
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

/// §2.7: `priority-update` with no reachable instance fails with one line
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

#[allow(dead_code)]
fn unused() -> (Duration, Instant, i64) {
    (Duration::ZERO, Instant::now(), decimal as usize as i64 + plugin().as_os_str().len() as i64)
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

/// §2.2: max_active_jobs rejects at submit with the reference's text;
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

/// §2.2: max_running_jobs holds a job with `max-running-jobs-user-limit`
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

/// §2.2: per-queue limits with flux-core queues: a queue the association
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

/// §2.2: max_nodes/max_cores on a 2-broker instance: a job bigger than the
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
