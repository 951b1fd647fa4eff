//! Allocation enforcement of the real `mf_priority.so` through the jobtap
//! host harness (no Flux needed): holds with the allocation's message,
//! released when a snapshot with a deposit is loaded; deny at submission;
//! lowpriority; liens against a burst of jobs; GPUs counted from the
//! jobspec for a `gpu-hours` allocation.

mod plugin_harness;

use std::path::Path;

use fluxacct_core::allocation::{Exhausted, ResourceWeights, Unit};
use fluxacct_core::limits::AssocLimits;
use fluxacct_core::snapshot::{AllocationRecord, AssociationRecord, LedgerHead, Snapshot, SnapshotBuilder};
use fluxacct_core::{EventHash, Seq};
use plugin_harness::{jobspec, Host, DEPEND, SCHED};
use serde_json::{json, Value};

const CRAWFORD: u32 = 5035;
const SPENT: &str = "allocation giants-q1 exhausted: 0 of 500000 node-hours left";

fn site(seq: u64, remaining_milli: i64, policy: Exhausted, liens: bool) -> Snapshot {
    site_in(seq, Unit::NodeHours, remaining_milli, policy, liens)
}

/// [`site`] with the allocation in `unit`.
fn site_in(seq: u64, unit: Unit, remaining_milli: i64, policy: Exhausted, liens: bool) -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(seq), hash: EventHash([seq as u8; 32]) });
    b.add_association(&AssociationRecord {
        userid: CRAWFORD,
        username: "crawford".into(),
        bank: "giants".into(),
        default_bank: "giants".into(),
        active: true,
        fairshare: 0.5,
        limits: AssocLimits {
            max_running_jobs: 100,
            max_active_jobs: 100,
            max_nodes: 2_147_483_647,
            max_cores: 2_147_483_647,
            max_sched_jobs: 2_147_483_647,
        },
        queues: vec![],
        projects: vec!["*".into()],
        default_project: "*".into(),
    });
    b.add_bank("root", 0.0).add_bank("giants", 0.0);
    b.add_project("*");
    b.allocation_settings(policy, liens, 3600, ResourceWeights::default());
    b.add_allocation(&AllocationRecord {
        name: "giants-q1".into(),
        banks: vec!["giants".into()],
        project: String::new(),
        unit,
        allocated_milli: 500_000_000,
        remaining_milli,
        start_s: 0,
        end_s: i64::MAX,
        exhausted: None,
    });
    b.build()
}

fn write(dir: &Path, name: &str, s: &Snapshot) -> String {
    let p = dir.join(name);
    s.write_atomic(&p).expect("write snapshot");
    p.display().to_string()
}

fn reload(host: &Host, dir: &Path, name: &str, s: &Snapshot) {
    host.service("load_snapshot", Some(json!({"path": write(dir, name, s)}))).expect("load_snapshot");
}

fn one_hour_job() -> Value {
    let mut j = jobspec(1, 1, &[]);
    j["attributes"]["system"]["duration"] = json!(3600);
    j
}

#[test]
fn a_spent_allocation_holds_new_jobs_with_its_message_until_a_deposit_is_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host =
        Host::load(Some(json!({"snapshot": write(dir.path(), "a.mp", &site(10, 1000, Exhausted::Hold, false))})))
            .expect("plugin loads");
    let running = host.submit(CRAWFORD, jobspec(1, 1, &[]), 16).expect("submit");
    host.run(running);
    reload(&host, dir.path(), "b.mp", &site(11, 0, Exhausted::Hold, false));
    let held = host.submit(CRAWFORD, jobspec(1, 1, &[]), 16).expect("submit while spent");
    let j = host.job(held);
    assert_eq!(j.state, DEPEND);
    assert_eq!(j.deps.iter().cloned().collect::<Vec<_>>(), vec![SPENT.to_string()]);
    // The running job is untouched.
    assert!(host.job(running).fatal.is_none());
    reload(&host, dir.path(), "c.mp", &site(12, 50_000, Exhausted::Hold, false));
    assert_eq!(host.job(held).state, SCHED);
    assert_eq!(host.job(held).events_named("dependency-remove"), vec![json!({"description": SPENT})]);
    host.finish(running);
    host.assert_clean();
}

#[test]
fn deny_rejects_at_submission_and_lowpriority_runs_at_priority_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::load(Some(json!({"snapshot": write(dir.path(), "a.mp", &site(10, 0, Exhausted::Deny, false))})))
        .expect("plugin loads");
    let e = host.submit(CRAWFORD, jobspec(1, 1, &[]), 16).expect_err("denied");
    assert!(e.contains(SPENT), "{e}");
    reload(&host, dir.path(), "b.mp", &site(11, 0, Exhausted::LowPriority, false));
    let id = host.submit(CRAWFORD, jobspec(1, 1, &[]), 16).expect("lowpriority submits");
    assert_eq!(host.job(id).state, SCHED);
    assert_eq!(host.job(id).priority, 0);
    host.assert_clean();
}

#[test]
fn with_liens_ten_jobs_started_at_once_against_six_node_hours_run_six() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::load(Some(json!({"snapshot": write(dir.path(), "a.mp", &site(10, 6000, Exhausted::Hold, true))})))
        .expect("plugin loads");
    let ids: Vec<u64> = (0..10).map(|_| host.submit(CRAWFORD, one_hour_job(), 16).expect("submit")).collect();
    let moving = ids.iter().filter(|&&id| host.job(id).state == SCHED).count();
    let held = ids.iter().filter(|&&id| host.job(id).state == DEPEND).count();
    assert_eq!((moving, held), (6, 4));
    for &id in &ids[..6] {
        host.run(id);
    }
    host.assert_clean();
}

/// A one-hour jobspec of 2 nodes, each with 2 slots of one core and one
/// GPU (the GPU count given as an RFC 14 range): 4 GPUs in all.
fn four_gpu_hour_job() -> Value {
    let slot = json!({"type": "slot", "count": 2, "label": "task",
                      "with": [{"type": "core", "count": 1}, {"type": "gpu", "count": {"min": 1, "max": 2}}]});
    let mut j = jobspec(1, 1, &[]);
    j["resources"] = json!([{"type": "node", "count": 2, "with": [slot]}]);
    j["attributes"]["system"]["duration"] = json!(3600);
    j
}

#[test]
fn a_gpu_hours_allocation_takes_liens_on_the_jobspecs_gpus_and_holds_what_does_not_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ten = site_in(10, Unit::GpuHours, 10_000, Exhausted::Hold, true);
    let host = Host::load(Some(json!({"snapshot": write(dir.path(), "a.mp", &ten)}))).expect("plugin loads");
    // 10 GPU-hours left, each job takes 4: two run, the third is held.
    let ids: Vec<u64> = (0..3).map(|_| host.submit(CRAWFORD, four_gpu_hour_job(), 16).expect("submit")).collect();
    assert_eq!(ids.iter().map(|&id| host.job(id).state).collect::<Vec<_>>(), vec![SCHED, SCHED, DEPEND]);
    let short = "allocation giants-q1 exhausted: 2 of 500000 gpu-hours left";
    assert_eq!(host.job(ids[2]).deps.iter().cloned().collect::<Vec<_>>(), vec![short.to_string()]);
    // A job without GPUs is not charged to a gpu-hours allocation.
    let cpu = host.submit(CRAWFORD, one_hour_job(), 16).expect("submit");
    assert_eq!(host.job(cpu).state, SCHED);
    for &id in &[ids[0], ids[1], cpu] {
        host.run(id);
    }
    host.assert_clean();
}
