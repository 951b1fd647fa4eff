//! Fuzzing the real `mf_priority.so` through the jobtap host harness: no
//! input (missing keys, wrong types, huge numbers, random job histories)
//! may make a panic escape (the process would abort) or even be caught
//! inside the plugin, and counters must come back to zero.

mod plugin_harness;

use std::path::PathBuf;

use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder};
use fluxacct_core::{EventHash, Seq};
use plugin_harness::{jobspec, Host, INACTIVE, RUN, SCHED};
use proptest::prelude::*;
use serde_json::{json, Value};

fn snapshot(seq: u64, max_run: i64, max_sched: i64, max_nodes: i64, qmax_run: i64) -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(seq), hash: EventHash([3; 32]) });
    for (uid, bank) in [(100u32, "a"), (100, "b"), (200, "a")] {
        b.add_association(&AssociationRecord {
            userid: uid,
            username: format!("u{uid}"),
            bank: bank.into(),
            default_bank: "a".into(),
            active: true,
            fairshare: 0.5,
            limits: fluxacct_core::limits::AssocLimits {
                max_running_jobs: max_run,
                max_active_jobs: 50,
                max_nodes,
                max_cores: 1000,
                max_sched_jobs: max_sched,
            },
            queues: vec!["q1".into(), "q2".into()],
            projects: vec!["*".into(), "p".into()],
            default_project: "p".into(),
        });
    }
    b.add_queue(&QueueRecord::new(
        "q1",
        QueueLimits { priority: 10, max_running_jobs: qmax_run, ..QueueLimits::default() },
    ));
    b.add_queue(&QueueRecord::new(
        "q2",
        QueueLimits { max_sched_jobs: 1, max_nodes_per_assoc: 4, ..QueueLimits::default() },
    ));
    b.add_bank("a", 1.0).add_bank("b", 2.0);
    b.add_project("*").add_project("p");
    b.build()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(s: &Snapshot) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.mp");
    s.write_atomic(&path).expect("write");
    Fixture { _dir: dir, path }
}

fn host_for(f: &Fixture) -> Host {
    Host::load(Some(json!({"snapshot": f.path.display().to_string()}))).expect("load")
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        "[a-z.*]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// IN args that are nearly right: the real keys with random values.
fn near_args() -> impl Strategy<Value = Value> {
    let field = |name: &'static str, good: Value| {
        prop_oneof![Just(None), Just(Some(good)), any_json().prop_map(Some)].prop_map(move |v| (name, v))
    };
    let system = (
        field("bank", json!("a")),
        field("queue", json!("q2")),
        field("project", json!("p")),
        field("duration", json!(0)),
    );
    let resources = prop_oneof![
        Just(jobspec(2, 3, &[])["resources"].clone()),
        any_json(),
        (any::<u64>(), any::<u64>()).prop_map(|(n, c)| json!([{"type": "node", "count": n,
            "with": [{"type": "slot", "count": 1, "with": [{"type": "core", "count": c}]}]}])),
    ];
    (
        field("id", json!(7)),
        field("userid", json!(100)),
        field("urgency", json!(16)),
        field("state", json!(8)),
        field("priority", json!(-1)),
        system,
        resources,
        field("updates", json!({"attributes.system.bank": "b", "attributes.system.queue": "q1"})),
        field("value", json!("b")),
        field("R", json!({})),
    )
        .prop_map(|(id, uid, urg, st, pr, (b, q, p, d), res, upd, val, r)| {
            let mut sys = serde_json::Map::new();
            for (k, v) in [b, q, p, d] {
                if let Some(v) = v {
                    sys.insert(k.to_string(), v);
                }
            }
            let mut o = serde_json::Map::new();
            o.insert("jobspec".into(), json!({"resources": res, "attributes": {"system": sys}}));
            for (k, v) in [id, uid, urg, st, pr, upd, val, r] {
                if let Some(v) = v {
                    o.insert(k.to_string(), v);
                }
            }
            Value::Object(o)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every handler survives arbitrary IN args.
    #[test]
    fn callbacks_survive_arbitrary_input(
        topic_idx in 0usize..64,
        input in prop_oneof![near_args(), any_json()],
    ) {
        let f = fixture(&snapshot(1, 2, 2, 8, 1));
        let host = host_for(&f);
        let topics = host.topics();
        let topic = topics[topic_idx % topics.len()].clone();
        let _ = host.raw_call(&topic, input.clone());
        // And a job-shaped sequence through the same handlers.
        for t in ["job.validate", "job.new", "job.state.depend", "job.state.priority",
                  "job.state.sched", "job.state.run", "job.update", "job.priority.get",
                  "job.state.inactive"] {
            let _ = host.raw_call(t, input.clone());
        }
        let _ = host.query();
        host.assert_clean();
    }

    /// Service methods survive arbitrary payloads.
    #[test]
    fn services_survive_arbitrary_payloads(payload in prop_oneof![
        any_json().prop_map(|v| Some(v.to_string())),
        ".{0,40}".prop_map(Some),
        Just(None),
    ]) {
        let f = fixture(&snapshot(1, 2, 2, 8, 1));
        let host = host_for(&f);
        for m in ["load_snapshot", "reprioritize", "rec_update", "rec_q_update", "rec_proj_update",
                  "rec_bank_update", "rec_fac_update", "rec_config_update"] {
            let _ = host.service_text(m, payload.as_deref());
        }
        prop_assert_eq!(host.query()["snapshot"]["seq"].clone(), json!(1));
        host.assert_clean();
    }
}

#[derive(Debug, Clone)]
enum Op {
    Submit { uid: u32, bank: Option<&'static str>, queue: Option<&'static str>, nnodes: u64, ncores: u64, urgency: i64 },
    Run(usize),
    Finish(usize),
    Cancel(usize),
    Urgency(usize, i64),
    Snapshot { max_run: i64, max_sched: i64, max_nodes: i64, qmax_run: i64 },
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![Just(100u32), Just(200), Just(300)],
              prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))],
              prop_oneof![Just(None), Just(Some("q1")), Just(Some("q2")), Just(Some("zz"))],
              0u64..4, 1u64..4, 0i64..=31)
            .prop_map(|(uid, bank, queue, nnodes, ncores, urgency)| Op::Submit { uid, bank, queue, nnodes, ncores, urgency }),
        3 => any::<usize>().prop_map(Op::Run),
        2 => any::<usize>().prop_map(Op::Finish),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), 0i64..=31).prop_map(|(i, u)| Op::Urgency(i, u)),
        1 => (0i64..4, 0i64..4, 0i64..8, 0i64..3)
            .prop_map(|(max_run, max_sched, max_nodes, qmax_run)| Op::Snapshot { max_run, max_sched, max_nodes, qmax_run }),
        1 => Just(Op::Reload),
    ]
}

fn counters_zero(q: &Value) -> Result<(), String> {
    for u in q["mf_priority_map"].as_array().into_iter().flatten() {
        for b in u["banks"].as_array().into_iter().flatten() {
            for k in ["cur_active_jobs", "cur_run_jobs", "cur_sched_jobs", "cur_nodes", "cur_cores"] {
                if b[k] != 0 {
                    return Err(format!("{k} = {} in {b}", b[k]));
                }
            }
            if b["held_jobs"] != json!({}) {
                return Err(format!("held jobs left: {b}"));
            }
            for (q, usage) in b["queue_usage"].as_object().into_iter().flatten() {
                for (k, v) in usage.as_object().into_iter().flatten() {
                    if *v != 0 {
                        return Err(format!("queue {q} {k} = {v}"));
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Random job histories: counters stay consistent (all zero once every
    /// job is gone), running jobs never exceed max_running_jobs, and no
    /// panic is caught.
    #[test]
    fn random_histories_keep_counters_right(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seq = 1;
        let mut limits = (2i64, 3i64, 8i64, 2i64);
        let write = |seq: u64, l: (i64, i64, i64, i64)| {
            let p = dir.path().join(format!("s{seq}"));
            snapshot(seq, l.0, l.1, l.2, l.3).write_atomic(&p).expect("write");
            p
        };
        let mut path = write(seq, limits);
        let host = Host::load(Some(json!({"snapshot": path.display().to_string()}))).expect("load");
        let mut ids: Vec<u64> = Vec::new();
        let pick = |ids: &[u64], i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
        for op in ops {
            match op {
                Op::Submit { uid, bank, queue, nnodes, ncores, urgency } => {
                    let mut sys = Vec::new();
                    if let Some(b) = bank { sys.push(("bank", b)); }
                    if let Some(q) = queue { sys.push(("queue", q)); }
                    if let Ok(id) = host.submit(uid, jobspec(nnodes, ncores, &sys), urgency) {
                        ids.push(id);
                    }
                }
                Op::Run(i) => if let Some(id) = pick(&ids, i) {
                    if host.job(id).state == SCHED { host.run(id); }
                },
                Op::Finish(i) => if let Some(id) = pick(&ids, i) {
                    if host.job(id).state == RUN { host.finish(id); }
                },
                Op::Cancel(i) => if let Some(id) = pick(&ids, i) { host.cancel(id); },
                Op::Urgency(i, u) => if let Some(id) = pick(&ids, i) {
                    if host.job(id).state != INACTIVE { host.set_urgency(id, u); }
                },
                Op::Snapshot { max_run, max_sched, max_nodes, qmax_run } => {
                    seq += 1;
                    limits = (max_run, max_sched, max_nodes, qmax_run);
                    path = write(seq, limits);
                    host.service("load_snapshot", Some(json!({"path": path.display().to_string()})))
                        .expect("good snapshot loads");
                }
                Op::Reload => host.reload(Some(json!({"snapshot": path.display().to_string()}))).expect("reload"),
            }
            let _ = limits;
            host.assert_clean();
        }
        // Drain: cancel everything pending, finish everything running.
        for &id in &ids {
            match host.job(id).state {
                RUN => host.finish(id),
                INACTIVE => {}
                _ => host.cancel(id),
            }
        }
        for &id in &ids {
            prop_assert_eq!(host.job(id).state, INACTIVE);
        }
        if let Err(e) = counters_zero(&host.query()) {
            prop_assert!(false, "{}", e);
        }
        host.assert_clean();
    }
}
