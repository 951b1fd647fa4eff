use super::*;
use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, QueueRecord, SnapshotBuilder};
use serde_json::json;

fn rec(uid: u32, bank: &str) -> AssociationRecord {
    AssociationRecord {
        userid: uid,
        username: format!("u{uid}"),
        bank: bank.into(),
        default_bank: bank.into(),
        active: true,
        fairshare: 0.5,
        limits: AssocLimits {
            max_running_jobs: 5,
            max_active_jobs: 7,
            max_nodes: 2_147_483_647,
            max_cores: 2_147_483_647,
            max_sched_jobs: 2_147_483_647,
        },
        queues: vec!["gold".into()],
        projects: vec!["*".into(), "shortstops".into()],
        default_project: "shortstops".into(),
    }
}

fn snap(f: impl FnOnce(&mut AssociationRecord)) -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead::default());
    let mut a = rec(5035, "giants");
    f(&mut a);
    b.add_association(&a);
    let mut other = rec(5035, "dodgers");
    other.default_bank = a.default_bank.clone();
    b.add_association(&other);
    b.add_queue(&QueueRecord::new("gold", QueueLimits { priority: 100, ..QueueLimits::default() }));
    b.add_queue(&QueueRecord::with_defaults("silver"));
    b.add_bank("giants", 0.0);
    b.add_project("*").add_project("shortstops");
    b.build()
}

fn job(id: u64, state: u32) -> JobIn {
    JobIn {
        id,
        userid: 5035,
        urgency: 16,
        state,
        resources: Some(Resources { nnodes: 1, ncores: 1, ngpus: 0 }),
        ..JobIn::default()
    }
}

fn core(f: impl FnOnce(&mut AssociationRecord)) -> Policy {
    let mut c = Policy::new();
    c.load(snap(f));
    c
}

/// Submit through validate, new, depend; returns the depend effects.
fn submit(c: &mut Policy, j: &JobIn) -> Result<Vec<Effect>, String> {
    if let Decision::Reject(m) = c.validate(j).decision {
        return Err(m);
    }
    c.job_new(j);
    let mut d = j.clone();
    d.state = STATE_DEPEND;
    Ok(c.depend(&d).effects)
}

#[test]
fn default_bank_and_project_posted_together() {
    let mut c = core(|_| {});
    let o = c.job_new(&job(1, STATE_NEW));
    assert_eq!(
        o.effects,
        vec![Effect::JobspecUpdate { bank: Some("giants".into()), project: Some("shortstops".into()) }]
    );
    let mut j = job(2, STATE_NEW);
    j.bank = Attr::Str("dodgers".into());
    j.project = Attr::Str("*".into());
    assert!(c.job_new(&j).effects.is_empty());
}

#[test]
fn priority_uses_the_jobs_own_queue() {
    let mut c = core(|_| {});
    let mut gold = job(1, STATE_NEW);
    gold.queue = Attr::Str("gold".into());
    c.job_new(&gold);
    let plain = job(2, STATE_NEW);
    c.job_new(&plain);
    // Later jobs of the association do not change earlier jobs' queue factor.
    let o = c.priority(&gold, true);
    assert_eq!(o.decision, Decision::Priority(1_050_000));
    assert_eq!(o.effects, vec![Effect::Memo { id: 1, fairshare: 0.5 }]);
    assert_eq!(c.priority(&plain, true).decision, Decision::Priority(50_000));
    let o = c.priority(&gold, false);
    assert_eq!(o.decision, Decision::Priority(1_050_000));
    assert!(o.effects.is_empty(), "memo only when fairshare changes");
    c.load(snap(|a| a.fairshare = 0.25));
    let o = c.priority(&gold, false);
    assert_eq!(o.decision, Decision::Priority(1_025_000));
    assert_eq!(o.effects, vec![Effect::Memo { id: 1, fairshare: 0.25 }]);
}

#[test]
fn rejects_with_reference_texts() {
    let c = core(|a| a.limits.max_nodes = 2);
    let mut j = job(1, STATE_NEW);
    j.userid = 1;
    assert_eq!(
        c.validate(&j).decision,
        Decision::Reject("cannot find user/bank or user/default bank entry for uid: 1".into())
    );
    let mut j = job(1, STATE_NEW);
    j.queue = Attr::Str("silver".into());
    assert_eq!(
        c.validate(&j).decision,
        Decision::Reject("queue \"silver\" not valid for user; valid queues for user: gold".into())
    );
    let mut j = job(1, STATE_NEW);
    j.project = Attr::Str("catchers".into());
    assert_eq!(
        c.validate(&j).decision,
        Decision::Reject("project \"catchers\" not valid for user; valid projects for user: *,shortstops".into())
    );
    let mut j = job(1, STATE_NEW);
    j.bank = Attr::Invalid;
    assert_eq!(c.validate(&j).decision, Decision::Reject("unable to unpack bank arg".into()));
    let mut j = job(1, STATE_NEW);
    j.resources = Some(Resources { nnodes: 3, ncores: 3, ngpus: 0 });
    assert_eq!(
        c.validate(&j).decision,
        Decision::Reject("job size (3 node(s), 3 core(s)) is greater than max resources limits configured for association (2 node(s), 2147483647 core(s))".into())
    );
    let mut j = job(1, STATE_NEW);
    j.resources = None;
    assert_eq!(c.validate(&j).decision, Decision::Reject("unable to count resources for job".into()));
    // Unknown queue passes unless deny_unknown_queues.
    let mut j = job(1, STATE_NEW);
    j.queue = Attr::Str("bronze".into());
    assert_eq!(c.validate(&j).decision, Decision::Ok);
    let mut s = snap(|_| {});
    s.deny_unknown_queues = true;
    let mut c2 = Policy::new();
    c2.load(s);
    assert_eq!(
        c2.validate(&j).decision,
        Decision::Reject("queue \"bronze\" is unknown to flux-accounting and deny-unknown-queues is enabled".into())
    );
    let c3 = core(|a| a.active = false);
    assert_eq!(
        c3.validate(&job(1, STATE_NEW)).decision,
        Decision::Reject("user/bank entry has been disabled from flux-accounting DB".into())
    );
}

#[test]
fn max_active_jobs() {
    let mut c = core(|a| a.limits.max_active_jobs = 2);
    for id in 1..=2 {
        submit(&mut c, &job(id, STATE_NEW)).unwrap();
    }
    assert_eq!(submit(&mut c, &job(3, STATE_NEW)), Err("user has max active jobs".into()));
    // Re-validation on update (state != NEW) is not blocked.
    assert_eq!(c.validate(&job(1, STATE_SCHED)).decision, Decision::Ok);
    c.inactive(1);
    assert!(submit(&mut c, &job(3, STATE_NEW)).is_ok());
}

#[test]
fn running_limit_holds_and_releases_only_as_many_as_fit() {
    let mut c = core(|a| a.limits.max_running_jobs = 1);
    submit(&mut c, &job(1, STATE_NEW)).unwrap();
    c.priority(&job(1, STATE_PRIORITY), true);
    c.sched(&job(1, STATE_SCHED));
    assert!(c.run(&job(1, STATE_RUN)).effects.is_empty());
    for id in 2..=3 {
        assert_eq!(submit(&mut c, &job(id, STATE_NEW)).unwrap(), vec![Effect::DependencyAdd { id, dep: D_ASSOC_MRJ }]);
    }
    let o = c.inactive(1);
    assert_eq!(o.effects, vec![Effect::DependencyRemove { id: 2, dep: D_ASSOC_MRJ, quiet: false }]);
    // Another pass before job 2 runs releases nothing more.
    assert!(c.release_all().is_empty());
    c.priority(&job(2, STATE_PRIORITY), true);
    c.sched(&job(2, STATE_SCHED));
    assert!(c.run(&job(2, STATE_RUN)).effects.is_empty());
    let o = c.inactive(2);
    assert_eq!(o.effects, vec![Effect::DependencyRemove { id: 3, dep: D_ASSOC_MRJ, quiet: false }]);
}

#[test]
fn sched_twice_counts_once() {
    let mut c = core(|a| a.limits.max_sched_jobs = 1);
    submit(&mut c, &job(1, STATE_NEW)).unwrap();
    c.sched(&job(1, STATE_SCHED));
    c.sched(&job(1, STATE_SCHED));
    let q = c.query();
    assert_eq!(q["mf_priority_map"][0]["banks"][1]["cur_sched_jobs"], 1);
    // Back to PRIORITY uncounts; a second job is then not held.
    c.priority(&job(1, STATE_PRIORITY), true);
    assert!(submit(&mut c, &job(2, STATE_NEW)).unwrap().is_empty());
    c.sched(&job(1, STATE_SCHED));
    assert_eq!(submit(&mut c, &job(3, STATE_NEW)).unwrap(), vec![Effect::DependencyAdd { id: 3, dep: D_ASSOC_MSJ }]);
    c.run(&job(1, STATE_RUN));
    c.inactive(1);
    c.inactive(2);
    c.inactive(3);
    let q = c.query();
    let giants = &q["mf_priority_map"][0]["banks"][1];
    assert_eq!(giants["bank_name"], "giants");
    for k in ["cur_sched_jobs", "cur_run_jobs", "cur_active_jobs", "cur_nodes", "cur_cores"] {
        assert_eq!(giants[k], 0, "{k}");
    }
}

#[test]
fn queue_limits_hold() {
    let mut s = snap(|_| {});
    s.queues[0].limits.max_running_jobs = 1;
    s.queues[0].limits.max_nodes_per_assoc = 2;
    let mut c = Policy::new();
    c.load(s);
    let mut j1 = job(1, STATE_NEW);
    j1.queue = Attr::Str("gold".into());
    submit(&mut c, &j1).unwrap();
    j1.state = STATE_RUN;
    c.run(&j1);
    let mut j2 = job(2, STATE_NEW);
    j2.queue = Attr::Str("gold".into());
    j2.resources = Some(Resources { nnodes: 2, ncores: 2, ngpus: 0 });
    let deps = submit(&mut c, &j2).unwrap();
    assert_eq!(
        deps,
        vec![Effect::DependencyAdd { id: 2, dep: D_QUEUE_MRJ }, Effect::DependencyAdd { id: 2, dep: D_QUEUE_MRES }]
    );
    let q = c.query();
    let held = &q["mf_priority_map"][0]["banks"][1]["held_jobs"]["2"];
    assert_eq!(held["deps"], json!([D_QUEUE_MRJ, D_QUEUE_MRES]));
    let o = c.inactive(1);
    assert_eq!(o.effects.len(), 2);
}

#[test]
fn no_data_waits_then_attaches() {
    let mut c = Policy::new();
    let j = job(1, STATE_NEW);
    assert_eq!(c.validate(&j).decision, Decision::Ok);
    assert!(c.job_new(&j).effects.is_empty());
    let mut p = j.clone();
    p.state = STATE_PRIORITY;
    assert_eq!(c.priority(&p, true).decision, Decision::Unavail);
    c.load(snap(|_| {}));
    let o = c.priority(&p, false);
    assert_eq!(o.decision, Decision::Priority(50_000));
    assert!(o
        .effects
        .contains(&Effect::JobspecUpdate { bank: Some("giants".into()), project: Some("shortstops".into()) }));
    // A user still unknown once data is present gets an exception.
    let mut c = Policy::new();
    let mut j = job(2, STATE_NEW);
    j.userid = 9;
    c.job_new(&j);
    c.load(snap(|_| {}));
    j.state = STATE_PRIORITY;
    let o = c.priority(&j, false);
    assert_eq!(o.decision, Decision::Fail);
    assert!(matches!(o.effects[0], Effect::Exception { id: 2, .. }));
}

#[test]
fn replay_counts_running_and_scheduled_jobs() {
    let mut c = core(|a| a.limits.max_running_jobs = 1);
    let mut r = job(1, STATE_RUN);
    r.has_r = true;
    assert!(c.job_new(&r).effects.is_empty());
    c.job_new(&job(2, STATE_SCHED));
    c.job_new(&job(3, STATE_DEPEND));
    let o = c.depend(&job(3, STATE_DEPEND));
    assert!(o.effects.contains(&Effect::DependencyAdd { id: 3, dep: D_ASSOC_MRJ }));
    assert!(o.effects.contains(&Effect::DependencyRemove { id: 3, dep: D_ASSOC_MSJ, quiet: true }));
    let q = c.query();
    let g = &q["mf_priority_map"][0]["banks"][1];
    assert_eq!((g["cur_run_jobs"].as_i64(), g["cur_sched_jobs"].as_i64()), (Some(1), Some(1)));
    assert_eq!(g["cur_active_jobs"], 3);
}

#[test]
fn bank_and_queue_updates() {
    let mut c = core(|_| {});
    submit(&mut c, &job(1, STATE_NEW)).unwrap();
    assert_eq!(
        c.update_bank(&job(1, STATE_SCHED), &json!("nope")).decision,
        Decision::Reject("update_bank: cannot find flux-accounting entry for uid/bank: 5035/nope".into())
    );
    assert_eq!(
        c.update_bank(&job(1, STATE_SCHED), &json!(3)).decision,
        Decision::Reject("unable to unpack bank arg".into())
    );
    assert_eq!(c.update_bank(&job(1, STATE_SCHED), &json!("dodgers")).decision, Decision::Ok);
    c.update(&job(1, STATE_SCHED), &json!({"attributes.system.bank": "dodgers"}));
    let q = c.query();
    let banks = &q["mf_priority_map"][0]["banks"];
    assert_eq!((banks[0]["bank_name"].as_str(), banks[0]["cur_active_jobs"].as_i64()), (Some("dodgers"), Some(1)));
    assert_eq!(banks[1]["cur_active_jobs"], 0);
    assert_eq!(
        c.update_queue(&job(1, STATE_SCHED), &json!("silver")).decision,
        Decision::Reject("mf_priority: queue not valid for user: silver".into())
    );
    let c2 = core(|a| a.limits.max_active_jobs = 1);
    let mut c2 = c2;
    let mut j = job(5, STATE_NEW);
    j.bank = Attr::Str("giants".into());
    submit(&mut c2, &j).unwrap();
    let mut d = job(6, STATE_NEW);
    d.bank = Attr::Str("dodgers".into());
    submit(&mut c2, &d).unwrap();
    assert_eq!(
        c2.update_bank(&d, &json!("giants")).decision,
        Decision::Reject("new bank is already at max-active-jobs limit".into())
    );
}

#[test]
fn query_shape() {
    let c = core(|_| {});
    let q = c.query();
    assert_eq!(q["mf_priority_map"][0]["userid"], 5035);
    assert_eq!(q["mf_priority_map"][0]["banks"][1]["def_project"], "shortstops");
    assert_eq!(q["queues"]["gold"]["priority"], 100);
    assert_eq!(q["projects"], json!(["*", "shortstops"]));
    assert_eq!(q["snapshot"]["seq"], 0);
    assert!(Policy::new().query()["snapshot"].is_null());
}

/// `head_json` (the serde form of `LedgerHead`) has exactly the keys and
/// value types of the hand-built `{"seq", "hash"}` object it replaced.
#[test]
fn head_json_shape() {
    let mut h = LedgerHead::default();
    h.seq.0 = 42;
    h.hash.0 = [7; 32];
    assert_eq!(head_json(&h), json!({"seq": 42, "hash": h.hash.to_hex()}));
}

#[test]
fn counters_add_and_clamp() {
    let mut x = 1;
    assert!(add(&mut x, 2));
    assert_eq!(x, 3);
    assert!(add(&mut x, -3));
    assert_eq!(x, 0);
    let mut c = Policy::new();
    assert!(c.take_errors().is_empty());
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "counter underflow")]
fn counter_underflow_is_a_bug_caught_in_debug_builds() {
    let mut x = 0;
    let _ = add(&mut x, -1);
}

#[test]
fn owner_without_association_gets_the_synthetic_one() {
    let mut c = Policy::new();
    c.set_owner(0, "root");
    c.load(snap(|_| {}));
    let owner = JobIn { userid: 0, ..job(1, STATE_NEW) };
    assert_eq!(c.validate(&owner).decision, Decision::Ok);
    let o = c.job_new(&owner);
    assert!(
        o.effects.iter().any(|e| format!("{e:?}").contains("root") && format!("{e:?}").contains('*')),
        "{:?}",
        o.effects
    );
    assert_eq!(c.priority(&owner, true).decision, Decision::Priority(50_000));
    // A queue known to the data is not one of the owner's (queues "").
    let gold = JobIn { userid: 0, queue: Attr::Str("gold".into()), ..job(2, STATE_NEW) };
    assert!(matches!(c.validate(&gold).decision, Decision::Reject(_)));
    // Other users without an association are still rejected.
    let stranger = JobIn { userid: 77, ..job(3, STATE_NEW) };
    assert!(matches!(c.validate(&stranger).decision, Decision::Reject(_)));
}

#[test]
fn owner_with_an_association_keeps_it() {
    let mut c = Policy::new();
    c.set_owner(5035, "crawford");
    c.load(snap(|a| a.fairshare = 0.25));
    let j = job(1, STATE_NEW);
    submit(&mut c, &j).unwrap();
    assert_eq!(c.priority(&j, true).decision, Decision::Priority(25_000));
}

#[test]
fn empty_snapshot_gives_the_owner_an_association_and_refuses_strangers() {
    let mut c = Policy::new();
    c.set_owner(0, "root");
    c.load(SnapshotBuilder::new(LedgerHead::default()).build());
    let owner = JobIn { userid: 0, ..job(1, STATE_NEW) };
    submit(&mut c, &owner).unwrap();
    assert_eq!(c.priority(&owner, true).decision, Decision::Priority(50_000));
    let stranger = JobIn { userid: 77, ..job(3, STATE_NEW) };
    assert!(matches!(c.validate(&stranger).decision, Decision::Reject(_)));
    let map = c.query()["mf_priority_map"].clone();
    assert_eq!(map[0]["userid"], 0, "{map}");
    assert_eq!(map[0]["banks"][0]["bank_name"], "root", "{map}");
}

#[test]
fn without_owner_an_empty_snapshot_is_no_data() {
    let mut c = Policy::new();
    c.load(SnapshotBuilder::new(LedgerHead::default()).build());
    let j = job(1, STATE_NEW);
    assert_eq!(c.validate(&j).decision, Decision::Ok);
    c.job_new(&j);
    assert_eq!(c.priority(&j, true).decision, Decision::Unavail);
}

fn rec_update(uid: u32, bank: &str, def_bank: &str, f: impl FnOnce(&mut AssociationRecord)) -> RpcUpdate {
    let mut a = rec(uid, bank);
    a.username = String::new();
    a.default_bank = def_bank.into();
    a.queues = vec![];
    a.projects = vec!["*".into()];
    a.default_project = "*".into();
    f(&mut a);
    RpcUpdate::Associations(vec![a])
}

#[test]
fn rpc_updates_fill_the_data_a_snapshot_would() {
    let mut c = Policy::new();
    let j = job(1, STATE_NEW);
    c.job_new(&j);
    assert_eq!(c.priority(&j, true).decision, Decision::Unavail);
    // Queues alone are not data yet.
    c.apply_rpc(RpcUpdate::Queues(vec![QueueRecord::new(
        "gold",
        QueueLimits { priority: 1, ..QueueLimits::default() },
    )]));
    assert_eq!(c.priority(&j, true).decision, Decision::Unavail);
    c.apply_rpc(rec_update(5035, "account3", "account3", |a| a.fairshare = 0.45321));
    c.apply_rpc(rec_update(5035, "account2", "account3", |a| a.fairshare = 0.11345));
    c.apply_rpc(RpcUpdate::Factors(vec![("urgency".into(), 1), ("nonsense".into(), 9)]));
    assert_eq!(c.priority(&j, true).decision, Decision::Priority(45_321));
    let mut other = job(2, STATE_NEW);
    other.bank = Attr::Str("account2".into());
    other.urgency = 15;
    submit(&mut c, &other).unwrap();
    assert_eq!(c.priority(&other, true).decision, Decision::Priority(11_344));
    let mut wrong = job(3, STATE_NEW);
    wrong.bank = Attr::Str("account1".into());
    assert!(matches!(c.validate(&wrong).decision, Decision::Reject(m) if m.contains("cannot find user/bank")));
    // Upsert: new values for account3, nothing removed.
    c.apply_rpc(rec_update(5035, "account3", "account3", |a| a.fairshare = 0.2));
    assert_eq!(c.priority(&j, true).decision, Decision::Priority(20_000));
    let q = c.query();
    assert_eq!(q["mf_priority_map"][0]["banks"].as_array().map(Vec::len), Some(2), "{q}");
    assert_eq!(q["queues"]["gold"]["priority"], 1);
    assert_eq!(q["rpc_updates"], 5);
    // Queues, projects and banks are replaced.
    c.apply_rpc(RpcUpdate::Queues(vec![QueueRecord::with_defaults("silver")]));
    c.apply_rpc(RpcUpdate::Projects(vec!["*".into(), "p".into()]));
    c.apply_rpc(RpcUpdate::Banks(vec![("account3".into(), 2.0)]));
    c.apply_rpc(RpcUpdate::Factors(vec![("bank".into(), 1000)]));
    let q = c.query();
    assert!(q["queues"].get("gold").is_none(), "{q}");
    assert_eq!(q["projects"], json!(["*", "p"]));
    assert_eq!(c.priority(&j, true).decision, Decision::Priority(22_000));
    // deny_unknown_queues.
    let mut unknown = job(4, STATE_NEW);
    unknown.queue = Attr::Str("nowhere".into());
    assert_eq!(c.validate(&unknown).decision, Decision::Ok);
    c.apply_rpc(RpcUpdate::Config { deny_unknown_queues: true });
    assert!(matches!(c.validate(&unknown).decision, Decision::Reject(_)));
    // A snapshot load replaces everything the RPCs set.
    c.load(snap(|_| {}));
    assert_eq!(c.query()["rpc_updates"], 0);
    assert_eq!(c.validate(&unknown).decision, Decision::Ok);
    let mut gone = job(5, STATE_NEW);
    gone.bank = Attr::Str("account3".into());
    assert!(matches!(c.validate(&gone).decision, Decision::Reject(_)));
}

#[test]
fn rpc_update_changes_limits_of_counted_jobs_and_the_default_bank() {
    let mut c = core(|a| a.limits.max_running_jobs = 1);
    let a = job(1, STATE_NEW);
    submit(&mut c, &a).unwrap();
    c.run(&job(1, STATE_RUN));
    let b = job(2, STATE_NEW);
    let deps = submit(&mut c, &b).unwrap();
    assert!(deps.contains(&Effect::DependencyAdd { id: 2, dep: D_ASSOC_MRJ }), "{deps:?}");
    // Raise the limit by RPC; the release pass lets the held job go.
    c.apply_rpc(rec_update(5035, "giants", "dodgers", |a| a.limits.max_running_jobs = 2));
    let effects = c.release_all();
    assert_eq!(effects, vec![Effect::DependencyRemove { id: 2, dep: D_ASSOC_MRJ, quiet: false }]);
    assert_eq!(c.query()["mf_priority_map"][0]["banks"][1]["cur_run_jobs"], 1);
    // The user's default bank is now dodgers.
    let o = c.job_new(&job(3, STATE_NEW));
    assert!(matches!(&o.effects[..], [Effect::JobspecUpdate { bank: Some(b), .. }] if b == "dodgers"), "{o:?}");
}

#[test]
fn missing_bank_info_marker_fails_the_job_at_depend() {
    let mut c = Policy::new();
    c.apply_rpc(rec_update(5011, "account3", "account3", |a| a.limits.max_running_jobs = BANK_INFO_MISSING));
    let j = JobIn { userid: 5011, ..job(1, STATE_NEW) };
    assert_eq!(c.validate(&j).decision, Decision::Ok);
    c.job_new(&j);
    let o = c.depend(&JobIn { state: STATE_DEPEND, ..j.clone() });
    assert_eq!(o.decision, Decision::Fail);
    assert_eq!(o.effects, vec![Effect::Exception { id: 1, note: "job.state.depend: bank info is missing".into() }]);
    c.inactive(1);
    c.apply_rpc(rec_update(5011, "account3", "account3", |a| a.fairshare = 0.45321));
    let k = JobIn { userid: 5011, ..job(2, STATE_NEW) };
    submit(&mut c, &k).unwrap();
    assert_eq!(c.priority(&k, true).decision, Decision::Priority(45_321));
}

#[test]
fn owner_is_added_to_rpc_data_once_it_has_associations() {
    let mut c = Policy::new();
    c.set_owner(0, "root");
    c.apply_rpc(RpcUpdate::Banks(vec![("b".into(), 0.0)]));
    let owner = JobIn { userid: 0, ..job(1, STATE_NEW) };
    c.job_new(&owner);
    assert_eq!(c.priority(&owner, true).decision, Decision::Unavail);
    c.apply_rpc(rec_update(5035, "giants", "giants", |_| {}));
    assert_eq!(c.priority(&owner, true).decision, Decision::Priority(50_000));
}

/// [`snap`] with one allocation on bank giants: `remaining` of 500000
/// node-hours (milli-units), policy `policy`, liens `liens` (one-hour
/// default duration).
fn alloc_snap(remaining_milli: i64, policy: Exhausted, liens: bool) -> Snapshot {
    alloc_snap_in(
        fluxacct_core::allocation::Unit::NodeHours,
        fluxacct_core::allocation::ResourceWeights::default(),
        remaining_milli,
        policy,
        liens,
    )
}

/// [`alloc_snap`] with the allocation in `unit`, charged with `weights`.
fn alloc_snap_in(
    unit: fluxacct_core::allocation::Unit,
    weights: fluxacct_core::allocation::ResourceWeights,
    remaining_milli: i64,
    policy: Exhausted,
    liens: bool,
) -> Snapshot {
    let mut s = snap(|a| {
        a.limits.max_active_jobs = 100;
        a.limits.max_running_jobs = 100;
    });
    let mut b = SnapshotBuilder::new(s.head);
    for a in &s.associations {
        b.add_association(&s.association_record(a));
    }
    for q in &s.queues {
        b.add_queue(&QueueRecord::new(s.str(q.name), q.limits));
    }
    b.add_bank("giants", 0.0);
    b.add_project("*").add_project("shortstops");
    b.allocation_settings(policy, liens, 3600, weights);
    b.add_allocation(&fluxacct_core::snapshot::AllocationRecord {
        name: "q1".into(),
        banks: vec!["giants".into()],
        project: String::new(),
        unit,
        allocated_milli: 500_000_000,
        remaining_milli,
        start_s: 0,
        end_s: i64::MAX,
        exhausted: None,
    });
    s = b.build();
    s
}

const SPENT: &str = "allocation q1 exhausted: 0 of 500000 node-hours left";

#[test]
fn a_job_of_a_spent_allocation_is_held_with_the_message_and_released_by_a_deposit() {
    let mut c = Policy::new();
    c.load(alloc_snap(0, Exhausted::Hold, false));
    let effects = submit(&mut c, &job(1, STATE_NEW)).unwrap();
    assert_eq!(effects, vec![Effect::AllocationHoldAdd { id: 1, dep: SPENT.into() }]);
    // Other associations (bank dodgers) are not covered.
    let mut other = job(2, STATE_NEW);
    other.bank = Attr::Str("dodgers".into());
    assert_eq!(submit(&mut c, &other).unwrap(), vec![]);
    // Still spent: a reload releases nothing.
    c.load(alloc_snap(-5, Exhausted::Hold, false));
    assert_eq!(c.release_all(), vec![]);
    // A deposit arrives with the next snapshot.
    c.load(alloc_snap(1000, Exhausted::Hold, false));
    assert_eq!(c.release_all(), vec![Effect::AllocationHoldRemove { id: 1, dep: SPENT.into() }]);
    assert_eq!(c.release_all(), vec![]);
}

#[test]
fn deny_rejects_at_submission_with_the_message_and_lowpriority_gives_priority_zero() {
    let mut c = Policy::new();
    c.load(alloc_snap(0, Exhausted::Deny, false));
    assert_eq!(submit(&mut c, &job(1, STATE_NEW)), Err(SPENT.to_string()));
    c.load(alloc_snap(0, Exhausted::LowPriority, false));
    let j = job(2, STATE_NEW);
    assert_eq!(submit(&mut c, &j).unwrap(), vec![]);
    assert_eq!(c.priority(&j, true).decision, Decision::Priority(0));
    c.load(alloc_snap(1, Exhausted::LowPriority, false));
    assert_eq!(c.priority(&j, false).decision, Decision::Priority(50_000));
}

#[test]
fn a_running_job_is_never_touched_when_its_allocation_is_spent() {
    let mut c = Policy::new();
    c.load(alloc_snap(10_000_000, Exhausted::Hold, false));
    let j = job(1, STATE_NEW);
    assert_eq!(submit(&mut c, &j).unwrap(), vec![]);
    let mut r = j.clone();
    r.state = STATE_RUN;
    c.run(&r);
    c.load(alloc_snap(0, Exhausted::Hold, false));
    assert_eq!(c.release_all(), vec![]);
    let o = c.inactive(1);
    assert!(o.effects.iter().all(|e| !matches!(e, Effect::Exception { .. })), "{o:?}");
}

#[test]
fn with_liens_a_burst_of_jobs_runs_only_as_far_as_the_allocation_covers() {
    let mut c = Policy::new();
    // 6 node-hours left; each job asks 1 node for one hour.
    c.load(alloc_snap(6000, Exhausted::Hold, true));
    let mut held = Vec::new();
    for id in 1..=10 {
        let mut j = job(id, STATE_NEW);
        j.duration_s = 3600.0;
        if !submit(&mut c, &j).unwrap().is_empty() {
            held.push(id);
        }
    }
    assert_eq!(held, vec![7, 8, 9, 10]);
    // Jobs 1 and 2 finish and are charged 1 node-hour each: the next
    // snapshot has 4 left, and 4 jobs still hold liens of 1 each.
    for id in [1, 2] {
        c.inactive(id);
    }
    c.load(alloc_snap(4000, Exhausted::Hold, true));
    let released: Vec<u64> = c
        .release_all()
        .into_iter()
        .filter_map(|e| match e {
            Effect::AllocationHoldRemove { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(released, Vec::<u64>::new());
    // A deposit of 2 node-hours lets two more go.
    c.load(alloc_snap(6000, Exhausted::Hold, true));
    let released: Vec<u64> = c
        .release_all()
        .into_iter()
        .filter_map(|e| match e {
            Effect::AllocationHoldRemove { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(released, vec![7, 8]);
}

/// A job of `gpus` GPUs on one node and core, asking `duration_s`.
fn gpu_job(id: u64, gpus: i64, duration_s: f64) -> JobIn {
    let mut j = job(id, STATE_NEW);
    j.resources = Some(Resources { nnodes: 1, ncores: 1, ngpus: gpus });
    j.duration_s = duration_s;
    j
}

/// The ids of the jobs whose allocation hold a list of effects adds.
fn held_ids(effects: &[Effect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::AllocationHoldAdd { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_gpu_job_of_a_spent_gpu_hours_allocation_is_held_with_a_message_naming_gpu_hours() {
    use fluxacct_core::allocation::{ResourceWeights, Unit};
    let spent = "allocation q1 exhausted: 0 of 500000 gpu-hours left";
    let mut c = Policy::new();
    c.load(alloc_snap_in(Unit::GpuHours, ResourceWeights::default(), 0, Exhausted::Hold, false));
    let effects = submit(&mut c, &gpu_job(1, 2, 0.0)).unwrap();
    assert_eq!(effects, vec![Effect::AllocationHoldAdd { id: 1, dep: spent.into() }]);
    // A job without GPUs uses nothing a gpu-hours allocation counts.
    assert_eq!(submit(&mut c, &gpu_job(2, 0, 0.0)).unwrap(), vec![]);
    // Deny rejects a GPU job at submission with the same message.
    c.load(alloc_snap_in(Unit::GpuHours, ResourceWeights::default(), 0, Exhausted::Deny, false));
    assert_eq!(submit(&mut c, &gpu_job(3, 1, 0.0)), Err(spent.to_string()));
    // A deposit releases the held job.
    c.load(alloc_snap_in(Unit::GpuHours, ResourceWeights::default(), 1000, Exhausted::Hold, false));
    assert_eq!(c.release_all(), vec![Effect::AllocationHoldRemove { id: 1, dep: spent.into() }]);
}

#[test]
fn with_liens_a_gpu_hours_allocation_reserves_gpus_times_the_requested_duration() {
    use fluxacct_core::allocation::{ResourceWeights, Unit};
    let mut c = Policy::new();
    // 10 GPU-hours left; each job asks 4 GPUs for one hour (4 GPU-hours).
    c.load(alloc_snap_in(Unit::GpuHours, ResourceWeights::default(), 10_000, Exhausted::Hold, true));
    let mut held = Vec::new();
    for id in 1..=3 {
        held.extend(held_ids(&submit(&mut c, &gpu_job(id, 4, 3600.0)).unwrap()));
    }
    assert_eq!(held, vec![3]);
    assert_eq!(c.liens_held.get("q1").copied(), Some(8_000));
    // Half an hour of 2 GPUs (1 GPU-hour) still fits in the 2 left.
    assert_eq!(held_ids(&submit(&mut c, &gpu_job(4, 2, 1800.0)).unwrap()), Vec::<u64>::new());
    assert_eq!(c.liens_held.get("q1").copied(), Some(9_000));
}

#[test]
fn a_charge_allocation_weighs_the_jobs_gpus_in_its_liens() {
    use fluxacct_core::allocation::{ResourceWeights, Unit};
    let weights = ResourceWeights { node: 1.0, core: 0.0, gpu: 2.0 };
    let mut c = Policy::new();
    // 9 charge-units left; a job of 1 node and 2 GPUs for one hour costs
    // 1·1 + 2·2 = 5, so only one fits (nine would without the GPUs).
    c.load(alloc_snap_in(Unit::Charge, weights, 9_000, Exhausted::Hold, true));
    assert_eq!(held_ids(&submit(&mut c, &gpu_job(1, 2, 3600.0)).unwrap()), Vec::<u64>::new());
    assert_eq!(c.liens_held.get("q1").copied(), Some(5_000));
    assert_eq!(held_ids(&submit(&mut c, &gpu_job(2, 2, 3600.0)).unwrap()), vec![2]);
}
