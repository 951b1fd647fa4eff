//! Acceptance 7: after random runs of ingests, usage updates, clears,
//! config changes and fair-share updates, rebuilding every projection from
//! the log gives exactly the live tables (bit-identical floats).

use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta};
use fluxacct_projections as projections;
use ledger::Ledger;
use proptest::prelude::*;
use rusqlite::{types::Value, Connection};

#[derive(Debug, Clone)]
enum Op {
    /// Jobs: (user index, bank index, nnodes, ncores, elapsed, end offset from now).
    Ingest(Vec<(usize, usize, i64, i64, u16, i32)>),
    /// Advance the clock by this much, then update usage.
    Update(u16),
    Fshare,
    /// Clear bank index, ignore-older-than offset from now.
    Clear(usize, i32),
    /// Set a usage config key (index) to a value (index).
    Config(usize, usize),
    DisableUser(usize),
}

const BANKS: &[&str] = &["A", "B1", "B2", "", "nope"];
/// (username, uid, bank)
const USERS: &[(&str, i64, &str)] =
    &[("u1", 1, "A"), ("u2", 2, "A"), ("u3", 3, "B1"), ("u4", 4, "B2"), ("u5", 5, "B2")];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0..6usize, 0..5usize, 0..4i64, 0..8i64, 0..400u16, -500..60i32), 1..12)
            .prop_map(Op::Ingest),
        4 => (0..250u16).prop_map(Op::Update),
        2 => Just(Op::Fshare),
        1 => (0..3usize, -300..10i32).prop_map(|(b, t)| Op::Clear(b, t)),
        1 => (0..4usize, 0..3usize).prop_map(|(k, v)| Op::Config(k, v)),
        1 => (0..5usize).prop_map(Op::DisableUser),
    ]
}

fn meta(t: f64) -> EventMeta {
    EventMeta { recorded_at_us: (t * 1e6) as i64, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] }
}

fn append(ledger: &mut Ledger, t: f64, events: Vec<Event>) {
    let mut tx = ledger.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta(t), &events).expect("apply");
    tx.commit().expect("commit");
}

fn setup() -> Ledger {
    let mut ledger = Ledger::in_memory().expect("ledger");
    projections::schema::create(ledger.conn()).expect("schema");
    let mut evs = vec![Event::DbCreated(DbCreated {
        format: 1,
        t0: 1000.0,
        priority_decay_half_life: 100.0,
        priority_usage_reset_period: 300.0,
        decay_factor: 0.5,
        node_weight: 1.0,
        core_weight: 0.0,
        gpu_weight: 0.0,
    })];
    for (b, p, s) in [("root", "", 1), ("A", "root", 3), ("B", "root", 1), ("B1", "B", 2), ("B2", "B", 1)] {
        evs.push(Event::BankAdded(BankAdded {
            bank: b.into(),
            parent_bank: p.into(),
            shares: s,
            priority: 0.0,
            ignore_older_than: 0,
        }));
    }
    for (i, (u, uid, b)) in USERS.iter().enumerate() {
        evs.push(Event::AssociationAdded(AssociationAdded {
            shares: 1 + i as i64,
            ..AssociationAdded::with_defaults(*u, *uid, *b)
        }));
    }
    append(&mut ledger, 1000.0, evs);
    ledger
}

fn run(ledger: &mut Ledger, ops: &[Op]) {
    let mut now = 1000.0;
    let mut next_id = 1u64;
    for op in ops {
        now += 1.0;
        let events = match op {
            Op::Ingest(jobs) => jobs
                .iter()
                .map(|&(u, b, nnodes, ncores, elapsed, end)| {
                    let uid = USERS.get(u).map(|x| x.1).unwrap_or(99);
                    let t_inactive = now + end as f64 + 0.25;
                    next_id += 1;
                    Event::JobRecorded(JobRecorded {
                        id: next_id,
                        userid: uid,
                        username: None,
                        bank: BANKS[b].into(),
                        project: String::new(),
                        queue: String::new(),
                        t_submit: t_inactive - elapsed as f64 - 1.0,
                        t_run: if elapsed == 0 { 0.0 } else { t_inactive - elapsed as f64 * 1.1 },
                        t_inactive,
                        nnodes,
                        ncores,
                        ngpus: 0,
                        requested_duration: 0.0,
                        ranks: None,
                        r: None,
                    })
                })
                .collect(),
            Op::Update(dt) => {
                now += *dt as f64;
                vec![Event::UsageUpdated(UsageUpdated { as_of: now })]
            }
            Op::Fshare => {
                let values = projections::usage::fairshare_values(ledger.conn()).expect("values");
                vec![Event::FairshareUpdated(FairshareUpdated {
                    associations: values.len() as u64,
                    digest: projections::usage::fairshare_digest(&values),
                })]
            }
            Op::Clear(b, t) => vec![Event::UsageCleared(UsageCleared {
                bank: BANKS[*b].into(),
                ignore_older_than: (now + *t as f64) as i64,
                at: None,
            })],
            Op::Config(k, v) => {
                let key = ["node_weight", "core_weight", "priority_decay_half_life", "decay_factor"][*k];
                let value = match (*k, *v) {
                    (0 | 1, v) => ["0", "1", "2.5"][v],
                    (2, v) => ["100", "50", "150"][v],
                    (_, v) => ["0.5", "0.25", "0.9"][v],
                };
                vec![Event::ConfigEdited(ConfigSet { key: key.into(), value: value.into() })]
            }
            Op::DisableUser(u) => {
                let (name, _, bank) = USERS[*u];
                let active: i64 = ledger
                    .conn()
                    .query_row(
                        "SELECT active FROM association_table WHERE username = ?1 AND bank = ?2",
                        [name, bank],
                        |r| r.get(0),
                    )
                    .expect("assoc");
                if active == 1 {
                    vec![Event::AssociationDisabled(AssocRef { username: name.into(), bank: bank.into() })]
                } else {
                    vec![Event::AssociationReactivated(AssocRef { username: name.into(), bank: bank.into() })]
                }
            }
        };
        append(ledger, now, events);
    }
}

/// Every row of every projection table, sorted (floats compared by bits).
fn dump(conn: &Connection) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in projections::schema::PROJECTION_TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).expect("select");
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    cells.push(match r.get::<_, Value>(i)? {
                        Value::Real(f) => format!("R{:016x}", f.to_bits()),
                        other => format!("{other:?}"),
                    });
                }
                Ok(cells.join("|"))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.sort();
        out.push((t.to_string(), rows));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn rebuild_equals_live(ops in prop::collection::vec(op(), 1..30)) {
        let mut ledger = setup();
        run(&mut ledger, &ops);
        let fresh = projections::replay(&ledger, None).expect("rebuild");
        let live = dump(ledger.conn());
        let rebuilt = dump(&fresh);
        for (l, r) in live.iter().zip(&rebuilt) {
            prop_assert_eq!(l, r);
        }
    }

    /// The usage updates roll up only the banks they changed (and their
    /// ancestors): every bank's `job_usage` is still what rolling up every
    /// bank gives, bit for bit.
    #[test]
    fn bank_usage_equals_a_full_rollup(ops in prop::collection::vec(op(), 1..30)) {
        let mut ledger = setup();
        run(&mut ledger, &ops);
        let banks = |conn: &Connection| -> Vec<(String, u64)> {
            conn.prepare("SELECT bank, job_usage FROM bank_table ORDER BY bank")
                .expect("select")
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, f64>(1)?.to_bits())))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let kept = banks(ledger.conn());
        projections::usage::rollup(ledger.conn()).expect("rollup");
        prop_assert_eq!(kept, banks(ledger.conn()));
    }
}

/// Usage really moves in these runs (guards against a vacuous proptest).
#[test]
fn runs_produce_usage() {
    let mut ledger = setup();
    run(&mut ledger, &[Op::Ingest(vec![(0, 0, 2, 0, 100, 0)]), Op::Update(0), Op::Fshare]);
    let u: f64 = ledger
        .conn()
        .query_row("SELECT job_usage FROM association_table WHERE username = 'u1'", [], |r| r.get(0))
        .expect("u1");
    assert_eq!(u, 220.0);
    let root: f64 = ledger
        .conn()
        .query_row("SELECT job_usage FROM bank_table WHERE bank = 'root'", [], |r| r.get(0))
        .expect("root");
    assert_eq!(root, 220.0);
}

proptest! {
    /// Replays read a job record's binning fields straight from the stored
    /// payload (`PendingJob::decode`); the live path takes them from the
    /// decoded record (`PendingJob::of`). They must agree bit for bit.
    #[test]
    fn pending_job_decode_equals_of(
        id in 0u64..u64::from(u32::MAX),
        userid in -5i64..100_000,
        bank in prop_oneof![Just(String::new()), "[a-z]{1,12}", "[A-Za-z0-9_\\-\\. \"\\\\é]{1,20}"],
        username in proptest::option::of("[a-z]{1,8}"),
        t_run in prop_oneof![Just(0.0f64), 1.0e9f64..2.0e9],
        dur in 0.0f64..1.0e6,
        nnodes in 0i64..10_000,
        ncores in 0i64..100_000,
        ngpus in 0i64..64,
        seq in 1u64..1_000_000_000,
    ) {
        let j = fluxacct_core::events::JobRecorded {
            id,
            userid,
            username,
            bank,
            project: "p".into(),
            queue: "q".into(),
            t_submit: t_run,
            t_run,
            t_inactive: t_run + dur / 3.0,
            nnodes,
            ncores,
            ngpus,
            requested_duration: dur,
            ranks: Some("0-3".into()),
            r: Some(fluxacct_core::events::CanonicalJson::from_value(&serde_json::json!({"version": 1}))),
        };
        let ev = fluxacct_core::Event::JobRecorded(j.clone());
        let payload = ev.encode().expect("encode");
        let mut banks = projections::usage::BankNames::default();
        let got = projections::usage::PendingJob::decode(seq, ev.version(), &payload, &mut banks).expect("decode");
        let want = projections::usage::PendingJob::of(seq, &j);
        prop_assert_eq!(&got, &want);
        if let (Some(g), Some(w)) = (got, want) {
            prop_assert_eq!(g.t_run.to_bits(), w.t_run.to_bits());
            prop_assert_eq!(g.t_inactive.to_bits(), w.t_inactive.to_bits());
        }
    }
}
