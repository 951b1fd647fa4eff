//! ABI tests of the real `mf_priority.so` (built as for installation)
//! through the jobtap host harness: no Flux needed.

mod plugin_harness;

use std::path::{Path, PathBuf};

use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder};
use fluxacct_core::{EventHash, Seq};
use plugin_harness::{jobspec, Host, DEPEND, INACTIVE, PRIORITY, RUN, SCHED};
use serde_json::{json, Value};

const CRAWFORD: u32 = 5035;

fn crawford(f: impl FnOnce(&mut AssociationRecord)) -> AssociationRecord {
    let mut a = AssociationRecord {
        userid: CRAWFORD,
        username: "crawford".into(),
        bank: "giants".into(),
        default_bank: "giants".into(),
        active: true,
        fairshare: 0.5,
        limits: fluxacct_core::limits::AssocLimits {
            max_running_jobs: 5,
            max_active_jobs: 7,
            max_nodes: 2_147_483_647,
            max_cores: 2_147_483_647,
            max_sched_jobs: 2_147_483_647,
        },
        queues: vec!["orange".into()],
        projects: vec!["*".into(), "shortstops".into()],
        default_project: "shortstops".into(),
    };
    f(&mut a);
    a
}

/// The seed-000 setup: bank giants under root, user crawford in giants,
/// queue orange, project shortstops (crawford's default).
fn seed(seq: u64, f: impl FnOnce(&mut AssociationRecord), queue_priority: i64) -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(seq), hash: EventHash([seq as u8; 32]) });
    b.add_association(&crawford(f));
    b.add_queue(&QueueRecord::new("orange", QueueLimits { priority: queue_priority, ..QueueLimits::default() }));
    b.add_queue(&QueueRecord::with_defaults("purple"));
    b.add_bank("root", 0.0).add_bank("giants", 0.0);
    b.add_project("*").add_project("shortstops").add_project("catchers");
    b.build()
}

fn write(dir: &Path, name: &str, s: &Snapshot) -> PathBuf {
    let p = dir.join(name);
    s.write_atomic(&p).expect("write snapshot");
    p
}

fn load(path: &Path) -> Host {
    Host::load(Some(json!({ "snapshot": path.display().to_string() }))).expect("plugin loads")
}

fn setup(f: impl FnOnce(&mut AssociationRecord)) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "snap.mp", &seed(10, f, 0));
    let host = load(&p);
    (dir, host)
}

fn association(q: &Value, uid: u32, bank: &str) -> Option<Value> {
    let map = q["mf_priority_map"].as_array()?;
    let u = map.iter().find(|u| u["userid"] == uid)?;
    u["banks"].as_array()?.iter().find(|b| b["bank_name"] == bank).cloned()
}

fn giants(q: &Value) -> Value {
    let map = q["mf_priority_map"].as_array().expect("map");
    let u = map.iter().find(|u| u["userid"] == CRAWFORD).expect("crawford");
    u["banks"].as_array().expect("banks").iter().find(|b| b["bank_name"] == "giants").expect("giants").clone()
}

/// Acceptance 1: the seed 000 health checklist.
#[test]
fn seed_000_checklist() {
    let (_dir, host) = setup(|_| {});
    assert_eq!(host.name_and_sort_order(), ("mf_priority".to_string(), "-state".to_string()));
    let methods = host.methods();
    assert!(methods.contains(&"load_snapshot".to_string()) && methods.contains(&"reprioritize".to_string()));

    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("accepted");
    let job = host.job(id);
    let names: Vec<&str> = job.events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..4], &["submit", "jobspec-update", "validate", "state:depend"]);
    assert_eq!(
        job.events_named("jobspec-update"),
        vec![json!({"attributes.system.bank": "giants", "attributes.system.project": "shortstops"})]
    );
    assert_eq!(job.jobspec["attributes"]["system"]["bank"], "giants");
    assert_eq!(job.priority, 50_000);
    assert_eq!(job.events_named("priority"), vec![json!({"priority": 50000})]);
    assert_eq!(job.events_named("memo"), vec![json!({"fairshare": 0.5})]);
    assert_eq!(job.state, SCHED);
    host.run(id);

    let q = host.query();
    assert_eq!(q["name"], "mf_priority.so", "OUT merged, not replaced");
    assert!(q["path"].is_string());
    let g = giants(&q);
    assert_eq!(g["def_project"], "shortstops");
    assert_eq!(g["projects"], json!(["*", "shortstops"]));
    assert_eq!(g["cur_active_jobs"], 1);
    assert_eq!(g["cur_run_jobs"], 1);
    assert_eq!(g["fairshare"], 0.5);
    assert_eq!(q["queues"]["orange"]["name"], "orange");
    assert_eq!(q["projects"], json!(["*", "shortstops", "catchers"]));
    assert_eq!(q["snapshot"], json!({"seq": 10, "hash": EventHash([10; 32]).to_hex()}));
    host.finish(id);
    assert_eq!(giants(&host.query())["cur_active_jobs"], 0);
    host.assert_clean();
}

/// Acceptance 2a: max_active_jobs 2 rejects the third submission.
#[test]
fn max_active_jobs_rejects_the_third_job() {
    let (_dir, host) = setup(|a| a.limits.max_active_jobs = 2);
    let a = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("first");
    host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("second");
    assert_eq!(host.submit(CRAWFORD, jobspec(0, 1, &[]), 16), Err("user has max active jobs".to_string()));
    host.cancel(a);
    assert_eq!(host.job(a).state, INACTIVE);
    host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("room again");
    host.assert_clean();
}

/// Acceptance 2b: max_running_jobs 1 holds the second job, released when
/// the first becomes inactive.
#[test]
fn max_running_jobs_holds_then_releases() {
    let (_dir, host) = setup(|a| a.limits.max_running_jobs = 1);
    let a = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("a");
    host.run(a);
    let b = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("b");
    let c = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("c");
    for id in [b, c] {
        let j = host.job(id);
        assert_eq!(j.state, DEPEND);
        assert_eq!(j.deps.iter().cloned().collect::<Vec<_>>(), vec!["max-running-jobs-user-limit"]);
    }
    let held = giants(&host.query())["held_jobs"].clone();
    assert_eq!(held[b.to_string()]["deps"], json!(["max-running-jobs-user-limit"]));
    host.finish(a);
    // b was released synchronously (DEPEND → PRIORITY → SCHED) while a's
    // inactive callback ran; c stays held: only one slot opened.
    assert_eq!(host.job(b).state, SCHED);
    assert_eq!(
        host.job(b).events_named("dependency-remove"),
        vec![json!({"description": "max-running-jobs-user-limit"})]
    );
    assert_eq!(host.job(c).state, DEPEND);
    host.service("reprioritize", None).expect("reprioritize");
    assert_eq!(host.job(c).state, DEPEND, "a second pass releases nothing while b has not run");
    host.run(b);
    assert_eq!(host.job(c).state, DEPEND);
    host.finish(b);
    assert_eq!(host.job(c).state, SCHED);
    host.run(c);
    host.finish(c);
    let g = giants(&host.query());
    for k in ["cur_active_jobs", "cur_run_jobs", "cur_sched_jobs", "cur_nodes", "cur_cores"] {
        assert_eq!(g[k], 0, "{k}");
    }
    assert_eq!(g["held_jobs"], json!({}));
    host.assert_clean();
}

/// Acceptance 2c: queue and project permission rejects carry the reference texts.
#[test]
fn queue_and_project_rejects() {
    let (_dir, host) = setup(|_| {});
    assert_eq!(
        host.submit(CRAWFORD, jobspec(0, 1, &[("queue", "purple")]), 16),
        Err("queue \"purple\" not valid for user; valid queues for user: orange".to_string())
    );
    assert_eq!(
        host.submit(CRAWFORD, jobspec(0, 1, &[("project", "catchers")]), 16),
        Err("project \"catchers\" not valid for user; valid projects for user: *,shortstops".to_string())
    );
    assert_eq!(
        host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "dodgers")]), 16),
        Err("cannot find user/bank or user/default bank entry for uid: 5035".to_string())
    );
    assert_eq!(
        host.submit(42, jobspec(0, 1, &[]), 16),
        Err("cannot find user/bank or user/default bank entry for uid: 42".to_string())
    );
    // An unknown queue passes (deny_unknown_queues is off) with factor 0.
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[("queue", "mystery")]), 16).expect("unknown queue ok");
    assert_eq!(host.job(id).priority, 50_000);
    host.assert_clean();
}

/// Disabled associations, deny_unknown_queues and oversize jobs.
#[test]
fn disabled_unknown_queue_and_oversize_rejects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = seed(3, |a| a.limits.max_nodes = 2, 0);
    s.deny_unknown_queues = true;
    let host = load(&write(dir.path(), "s", &s));
    assert_eq!(
        host.submit(CRAWFORD, jobspec(0, 1, &[("queue", "mystery")]), 16),
        Err("queue \"mystery\" is unknown to flux-accounting and deny-unknown-queues is enabled".to_string())
    );
    assert_eq!(
        host.submit(CRAWFORD, jobspec(3, 4, &[]), 16),
        Err("job size (3 node(s), 12 core(s)) is greater than max resources limits configured for association (2 node(s), 2147483647 core(s))".to_string())
    );
    let off = write(dir.path(), "off", &seed(4, |a| a.active = false, 0));
    host.service("load_snapshot", Some(json!({"path": off.display().to_string()}))).expect("load");
    assert_eq!(
        host.submit(CRAWFORD, jobspec(0, 1, &[]), 16),
        Err("user/bank entry has been disabled from flux-accounting DB".to_string())
    );
    host.assert_clean();
}

/// Acceptance 3: urgency, queue priority, and reprioritization after a
/// new snapshot is loaded through the load_snapshot RPC.
#[test]
fn priorities_and_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = load(&write(dir.path(), "a", &seed(1, |_| {}, 100)));
    let urgent = host.submit(CRAWFORD, jobspec(0, 1, &[]), 20).expect("urgent");
    assert_eq!(host.job(urgent).priority, 54_000);
    let queued = host.submit(CRAWFORD, jobspec(0, 1, &[("queue", "orange")]), 16).expect("queued");
    assert_eq!(host.job(queued).priority, 1_050_000);
    // The earlier job keeps its own (no-queue) factor.
    host.service("reprioritize", None).expect("reprioritize");
    assert_eq!(host.job(urgent).priority, 54_000);
    let held = host.submit(CRAWFORD, jobspec(0, 1, &[]), 0).expect("held");
    assert_eq!(host.job(held).priority, 0);
    let expedite = host.submit(CRAWFORD, jobspec(0, 1, &[]), 31).expect("expedite");
    assert_eq!(host.job(expedite).priority, 4_294_967_295);

    let b = write(dir.path(), "b", &seed(2, |a| a.fairshare = 0.25, 100));
    let reply = host.service("load_snapshot", Some(json!({"path": b.display().to_string()}))).expect("load b");
    assert_eq!(reply, json!({"seq": 2, "hash": EventHash([2; 32]).to_hex()}));
    assert_eq!(host.job(urgent).priority, 29_000);
    assert_eq!(host.job(queued).priority, 1_025_000);
    assert_eq!(host.job(urgent).events_named("memo"), vec![json!({"fairshare": 0.5}), json!({"fairshare": 0.25})]);
    // Same fairshare again: no new memo.
    host.service("load_snapshot", Some(json!({"path": b.display().to_string()}))).expect("load b again");
    assert_eq!(host.job(urgent).events_named("memo").len(), 2);
    host.assert_clean();
}

/// Acceptance 4: bad snapshots are refused; the old data stays in force.
#[test]
fn bad_snapshots_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = seed(5, |_| {}, 0);
    let host = load(&write(dir.path(), "good", &good));
    let bytes = good.encode().expect("encode");
    let bad = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    };
    let mut corrupt = bytes.clone();
    let n = corrupt.len();
    corrupt[n - 3] ^= 0xff;
    let mut version = bytes.clone();
    version[8..12].copy_from_slice(&99u32.to_le_bytes());
    let cases = [
        (bad("corrupt", &corrupt), "checksum"),
        (bad("truncated", &bytes[..bytes.len() / 2]), "truncated"),
        (bad("version", &version), "version 99"),
        (bad("garbage", b"hello"), "magic"),
        (dir.path().join("missing"), "No such file"),
    ];
    for (path, want) in &cases {
        let err =
            host.service("load_snapshot", Some(json!({"path": path.display().to_string()}))).expect_err("refused");
        assert!(err.1.contains(want), "{}: {err:?}", path.display());
    }
    assert_eq!(host.service("load_snapshot", Some(json!({"path": "relative/snap"}))).expect_err("relative").0, 71);
    assert_eq!(host.service("load_snapshot", None).expect_err("no payload").0, 71);
    assert_eq!(host.query()["snapshot"]["seq"], 5, "old data in force");
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("still works");
    assert_eq!(host.job(id).priority, 50_000);
    // A bad snapshot at load time fails the load.
    assert!(Host::load(Some(json!({"snapshot": cases[0].0.display().to_string()}))).is_err());
    host.assert_clean();
}

/// Jobs submitted before any data wait in PRIORITY, then are released
/// (with their bank and project posted) when a snapshot arrives.
#[test]
fn jobs_wait_for_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::load(None).expect("load without data");
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("accepted without data");
    assert_eq!(host.job(id).state, PRIORITY);
    assert_eq!(host.job(id).priority, -1);
    let p = write(dir.path(), "s", &seed(1, |_| {}, 0));
    host.service("load_snapshot", Some(json!({"path": p.display().to_string()}))).expect("load");
    let j = host.job(id);
    assert_eq!(j.state, SCHED);
    assert_eq!(j.priority, 50_000);
    assert_eq!(
        j.events_named("jobspec-update"),
        vec![json!({"attributes.system.bank": "giants", "attributes.system.project": "shortstops"})]
    );
    assert_eq!(giants(&host.query())["cur_active_jobs"], 1);
    host.assert_clean();
}

/// Plugin reload with jobs active: counters are rebuilt from the replay
/// (sort order -state), holds still apply and are released.
#[test]
fn reload_with_active_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "s", &seed(1, |a| a.limits.max_running_jobs = 1, 0));
    let host = load(&p);
    let a = host.submit(CRAWFORD, jobspec(0, 2, &[]), 16).expect("a");
    host.run(a);
    let b = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("b");
    let c = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "giants")]), 16).expect("c");
    assert_eq!(host.job(b).state, DEPEND);
    host.reload(Some(json!({ "snapshot": p.display().to_string() }))).expect("reload");
    let g = giants(&host.query());
    assert_eq!(
        (g["cur_run_jobs"].clone(), g["cur_cores"].clone(), g["cur_active_jobs"].clone()),
        (json!(1), json!(2), json!(3))
    );
    assert_eq!(host.job(b).state, DEPEND);
    host.finish(a);
    assert_eq!(host.job(b).state, SCHED);
    assert_eq!(host.job(c).state, DEPEND);
    host.run(b);
    assert_eq!(host.job(b).state, RUN);
    host.assert_clean();
}

/// job.state.sched firing twice (urgency change) does not double count.
#[test]
fn sched_twice_is_counted_once() {
    let (_dir, host) = setup(|a| a.limits.max_sched_jobs = 2);
    let a = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("a");
    host.set_urgency(a, 20);
    assert_eq!(host.job(a).priority, 54_000);
    assert_eq!(host.job(a).state, SCHED);
    assert_eq!(giants(&host.query())["cur_sched_jobs"], 1);
    host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("b");
    let c = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("c");
    assert_eq!(host.job(c).deps.iter().cloned().collect::<Vec<_>>(), vec!["max-sched-jobs-user-limit"]);
    host.run(a);
    assert_eq!(host.job(c).state, SCHED);
    host.assert_clean();
}

/// `flux update` of bank and queue.
#[test]
fn bank_and_queue_updates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = SnapshotBuilder::new(LedgerHead::default());
    b.add_association(&crawford(|_| {}));
    b.add_association(&crawford(|a| {
        a.bank = "dodgers".into();
        a.fairshare = 0.2;
        a.queues = vec!["orange".into(), "purple".into()];
    }));
    b.add_queue(&QueueRecord::new("orange", QueueLimits { priority: 100, ..QueueLimits::default() }));
    b.add_queue(&QueueRecord::new("purple", QueueLimits { priority: 7, ..QueueLimits::default() }));
    b.add_project("*").add_project("shortstops");
    let host = load(&write(dir.path(), "s", &b.build()));
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("job");
    assert_eq!(
        host.update(id, "attributes.system.bank", json!("nope")),
        Err("update_bank: cannot find flux-accounting entry for uid/bank: 5035/nope".to_string())
    );
    assert_eq!(
        host.update(id, "attributes.system.queue", json!("purple")),
        Err("mf_priority: queue not valid for user: purple".to_string())
    );
    host.update(id, "attributes.system.bank", json!("dodgers")).expect("bank update");
    assert_eq!(host.job(id).priority, 20_000);
    host.update(id, "attributes.system.queue", json!("purple")).expect("queue update");
    assert_eq!(host.job(id).priority, 90_000);
    let q = host.query();
    // The map also holds the instance owner (the user running the test).
    let map = q["mf_priority_map"].as_array().expect("map");
    let banks = map.iter().find(|u| u["userid"] == CRAWFORD).expect("crawford")["banks"].clone();
    assert_eq!((banks[0]["bank_name"].clone(), banks[0]["cur_active_jobs"].clone()), (json!("dodgers"), json!(1)));
    assert_eq!(banks[1]["cur_active_jobs"], 0);
    assert_eq!(banks[0]["queue_usage"]["purple"]["cur_sched_jobs"], 1);
    assert_eq!(
        host.update(id, "attributes.system.project", json!("x")),
        Err("update of attributes.system.project not supported".to_string())
    );
    host.assert_clean();
}

/// flux-accounting's `config=$(flux account export-json)` load conf.
#[test]
fn export_json_config() {
    let conf = json!({"config": {
        "associations": [{"userid": CRAWFORD, "bank": "giants", "def_bank": "giants", "fairshare": 0.75,
            "max_running_jobs": 5, "max_active_jobs": 7, "queues": "", "active": 1, "projects": "*",
            "def_project": "*", "max_nodes": 100, "max_cores": 100, "max_sched_jobs": 100}],
        "queues": [], "projects": [{"project": "*"}], "banks": [{"bank": "giants", "priority": 0.0}],
        "config": {"deny_unknown_queues": false}, "priority_factors": [{"factor": "fairshare", "weight": 100000}]
    }});
    let host = Host::load(Some(conf)).expect("load");
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("job");
    assert_eq!(host.job(id).priority, 75_000);
    assert_eq!(
        host.job(id).events_named("jobspec-update"),
        vec![json!({"attributes.system.bank": "giants", "attributes.system.project": "*"})]
    );
    assert!(Host::load(Some(json!({"config": {"associations": [{"userid": 1}]}}))).is_err());
    host.assert_clean();
}

/// flux-accounting's update RPCs methods, as its `priority-update` sends them.
const UPDATE_METHODS: [&str; 6] =
    ["rec_update", "rec_q_update", "rec_proj_update", "rec_bank_update", "rec_fac_update", "rec_config_update"];

/// One `rec_update` element (all 13 keys).
fn rec(uid: u32, bank: &str, def_bank: &str, fairshare: f64, max_running_jobs: i64) -> Value {
    json!({"userid": uid, "bank": bank, "def_bank": def_bank, "fairshare": fairshare,
           "max_running_jobs": max_running_jobs, "max_active_jobs": 12, "max_nodes": 2147483647,
           "max_cores": 2147483647, "max_sched_jobs": 2147483647, "queues": "standby,special",
           "active": 1, "projects": "*", "def_project": "*"})
}

fn queue(name: &str, priority: i64) -> Value {
    json!({"queue": name, "min_nodes_per_job": 0, "max_nodes_per_job": 5, "max_time_per_job": 64000,
           "priority": priority, "max_running_jobs": 2147483647, "max_nodes_per_assoc": 2147483647,
           "max_sched_jobs": 2147483647, "max_sched_nodes_per_assoc": 2147483647,
           "max_sched_cores_per_assoc": 2147483647})
}

/// The update RPCs fill a plugin loaded without data as flux-accounting's
/// `priority-update` does; pending jobs get their priority at
/// `reprioritize`, not before; a `rec_update` element without
/// `max_sched_jobs` (flux-accounting's own test payloads) is accepted.
#[test]
fn update_rpcs_feed_a_plugin_loaded_without_data() {
    let host = Host::load(None).expect("load without data");
    let methods = host.methods();
    for m in UPDATE_METHODS {
        assert!(methods.contains(&m.to_string()), "{m} not registered: {methods:?}");
    }
    let early = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("accepted without data");
    assert_eq!(host.job(early).state, PRIORITY);
    let mut twelve = rec(CRAWFORD, "account2", "account3", 0.11345, 10);
    twelve.as_object_mut().map(|o| o.remove("max_sched_jobs"));
    let updates = [
        ("rec_update", json!({"data": [rec(CRAWFORD, "account3", "account3", 0.45321, 10), twelve]})),
        ("rec_q_update", json!({"data": [queue("standby", 1), queue("special", 2)]})),
        ("rec_proj_update", json!({"data": [{"project": "*"}, {"project": "shortstops"}]})),
        (
            "rec_bank_update",
            json!({"data": [{"bank": "account3", "priority": 0.0}, {"bank": "account2", "priority": 1.0}]}),
        ),
        ("rec_fac_update", json!({"data": [{"factor": "urgency", "weight": 1}, {"factor": "bank", "weight": 0}]})),
        ("rec_config_update", json!({"data": {"deny_unknown_queues": true}})),
    ];
    for (m, payload) in updates {
        assert_eq!(host.service(m, Some(payload)), Ok(Value::Null), "{m}");
    }
    assert_eq!(host.job(early).state, PRIORITY, "no reprioritization before the reprioritize RPC");
    host.service("reprioritize", None).expect("reprioritize");
    let j = host.job(early);
    assert_eq!((j.state, j.priority), (SCHED, 45_321));
    assert_eq!(
        j.events_named("jobspec-update"),
        vec![json!({"attributes.system.bank": "account3", "attributes.system.project": "*"})]
    );
    let b = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "account2")]), 15).expect("account2");
    assert_eq!(host.job(b).priority, 11_344);
    let urgent = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "account3")]), 31).expect("urgency 31");
    assert_eq!(host.job(urgent).priority, 4_294_967_295);
    let held = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "account3")]), 0).expect("urgency 0");
    assert_eq!(host.job(held).priority, 0);
    let e = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "account1")]), 16).expect_err("unknown bank");
    assert!(e.contains("cannot find user/bank or user/default bank entry for uid"), "{e}");
    let e = host.submit(CRAWFORD, jobspec(0, 1, &[("queue", "elsewhere")]), 16).expect_err("unknown queue");
    assert!(e.contains("deny-unknown-queues"), "{e}");
    let q = host.query();
    let a2 = association(&q, CRAWFORD, "account2").unwrap_or_else(|| panic!("no account2 in {q}"));
    assert_eq!(a2["max_sched_jobs"], 32_767, "flux-accounting's value for a payload without it");
    assert_eq!(a2["queues"], json!(["standby", "special"]));
    assert_eq!(q["queues"]["special"]["priority"], 2);
    assert_eq!(q["projects"], json!(["*", "shortstops"]));
    assert_eq!(q["rpc_updates"], 6);
    assert_eq!(q["snapshot"], Value::Null, "no snapshot was loaded");
    host.assert_clean();
}

/// Raising a limit by `rec_update`, then `reprioritize`, releases a held
/// job; upserts never remove an association.
#[test]
fn rec_update_then_reprioritize_releases_held_jobs() {
    let (_dir, host) = setup(|a| a.limits.max_running_jobs = 1);
    let a = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("a");
    host.run(a);
    let b = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("b");
    assert_eq!(host.job(b).state, DEPEND);
    let mut g = rec(CRAWFORD, "giants", "giants", 0.5, 2);
    g["queues"] = json!("orange");
    g["projects"] = json!("*,shortstops");
    g["def_project"] = json!("shortstops");
    host.service("rec_update", Some(json!({"data": [g]}))).expect("rec_update");
    host.service("reprioritize", None).expect("reprioritize");
    assert_eq!(host.job(b).state, SCHED);
    let g = giants(&host.query());
    assert_eq!((g["max_run_jobs"].clone(), g["cur_run_jobs"].clone()), (json!(2), json!(1)));
    host.service("rec_update", Some(json!({"data": []}))).expect("empty upsert");
    assert_eq!(giants(&host.query())["max_run_jobs"], 2, "nothing removed");
    host.assert_clean();
}

/// Bad payloads are answered with an error (EPROTO) and change nothing;
/// the missing-`data` case logs flux-accounting's line.
#[test]
fn bad_update_payloads_are_refused_and_change_nothing() {
    let (_dir, host) = setup(|_| {});
    let before = host.query();
    let mut no_bank = rec(CRAWFORD, "giants", "giants", 0.1, 1);
    no_bank.as_object_mut().map(|o| o.remove("bank"));
    let mut bad_queue = queue("q", 1);
    bad_queue["priority"] = json!("high");
    let bad: Vec<(&str, Option<&str>, Option<Value>)> = vec![
        ("rec_update", None, None),
        ("rec_update", Some("{}"), None),
        ("rec_update", Some("not json"), None),
        ("rec_update", None, Some(json!({"data": {}}))),
        ("rec_update", None, Some(json!({"data": [rec(CRAWFORD, "giants", "giants", 0.1, 1), no_bank]}))),
        ("rec_update", None, Some(json!({"data": [rec(CRAWFORD, "giants", "giants", 0.1, 1), 7]}))),
        ("rec_q_update", None, Some(json!({"data": [queue("new", 1), bad_queue]}))),
        ("rec_q_update", None, Some(json!({"data": [{"queue": "only-a-name"}]}))),
        ("rec_proj_update", None, Some(json!({"data": [{"project": "*"}, {"project": 3}]}))),
        ("rec_bank_update", None, Some(json!({"data": [{"bank": "giants", "priority": "1"}]}))),
        ("rec_fac_update", None, Some(json!({"data": [{"factor": "fairshare", "weight": 1.5}]}))),
        ("rec_fac_update", None, Some(json!({"data": [{"weight": 1}]}))),
        ("rec_config_update", None, Some(json!({"data": {"deny_unknown_queues": "yes"}}))),
        ("rec_config_update", None, Some(json!({"data": [true]}))),
    ];
    for (m, text, payload) in bad {
        let r = match (text, payload) {
            (Some(t), _) => host.service_text(m, Some(t)),
            (None, p) => host.service(m, p),
        };
        let (errnum, msg) = r.expect_err(m);
        assert_eq!(errnum, 71, "{m}: {msg}");
        assert_eq!(host.query(), before, "{m} changed the data");
    }
    assert!(
        host.log().iter().any(|(l, m)| *l == 3 && m == "failed to unpack custom_priority.trigger msg: Protocol error"),
        "{:?}",
        host.log()
    );
    let id = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("still served");
    assert_eq!(host.job(id).priority, 50_000);
    host.assert_clean();
}

/// A snapshot load replaces whatever update RPCs changed.
#[test]
fn snapshot_load_replaces_rpc_updates() {
    let (dir, host) = setup(|_| {});
    let mut g = rec(CRAWFORD, "giants", "giants", 0.25, 5);
    g["queues"] = json!("orange");
    host.service("rec_update", Some(json!({"data": [g, rec(CRAWFORD, "rpcbank", "giants", 0.5, 5)]}))).expect("rec");
    host.service("rec_q_update", Some(json!({"data": [queue("orange", 3)]}))).expect("queues");
    let orange = [("queue", "orange")];
    assert_eq!(host.submit(CRAWFORD, jobspec(0, 1, &orange), 16).map(|id| host.job(id).priority), Ok(55_000));
    assert_eq!(host.query()["snapshot"]["seq"], 10, "the head stays the snapshot's");
    let p = write(dir.path(), "again.mp", &seed(11, |_| {}, 0));
    host.service("load_snapshot", Some(json!({"path": p.display().to_string()}))).expect("load");
    let q = host.query();
    assert_eq!((q["snapshot"]["seq"].clone(), q["rpc_updates"].clone()), (json!(11), json!(0)));
    assert_eq!(q["queues"]["orange"]["priority"], 0);
    assert_eq!(host.submit(CRAWFORD, jobspec(0, 1, &orange), 16).map(|id| host.job(id).priority), Ok(50_000));
    let e = host.submit(CRAWFORD, jobspec(0, 1, &[("bank", "rpcbank")]), 16).expect_err("gone with the reload");
    assert!(e.contains("cannot find user/bank"), "{e}");
    host.assert_clean();
}

/// A snapshot of an empty ledger: the owner (the user running the host)
/// gets the synthetic association and its job a priority; others are
/// refused.
#[test]
fn empty_ledger_snapshot_gives_the_owner_a_priority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "empty.mp", &SnapshotBuilder::new(LedgerHead::default()).build());
    let host = load(&p);
    let id_u = std::process::Command::new("id").arg("-u").output().expect("id -u");
    let me: u32 = String::from_utf8_lossy(&id_u.stdout).trim().parse().expect("uid");
    let id = host.submit(me, jobspec(0, 1, &[]), 16).expect("owner accepted");
    let j = host.job(id);
    assert_eq!((j.state, j.priority), (SCHED, 50_000));
    assert_eq!(j.jobspec["attributes"]["system"]["project"], "*");
    let stranger = if me == CRAWFORD { CRAWFORD + 1 } else { CRAWFORD };
    let e = host.submit(stranger, jobspec(0, 1, &[]), 16).expect_err("no association");
    assert!(e.contains("cannot find user/bank"), "{e}");
    host.assert_clean();
}
