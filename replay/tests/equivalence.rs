//! Replay equivalence: random mixes of admin events, job
//! records, usage and fair-share updates give the same state hash by
//! incremental application, by a full rebuild, by a rebuild to seq k
//! followed by the rest, by an as-of view from a projection checkpoint at k,
//! and by rebuilding the live tables in place. The histories include
//! `JobRejected` events and job records with an `R`.

use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta, Seq};
use fluxacct_replay as replay;
use ledger::Ledger;
use proptest::prelude::*;

const T0: f64 = 1_767_225_600.0;
const BANKS: &[&str] = &["A", "B", "C"];
const USERS: &[&str] = &["u0", "u1", "u2", "u3"];

#[derive(Debug, Clone)]
enum Op {
    AddBank(usize),
    EditBank(usize, i64),
    DisableBank(usize),
    AddUser(usize, usize),
    EditUser(usize, usize, i64, i64),
    DisableUser(usize, usize),
    DeleteUser(usize, usize),
    AddQueue(u8),
    SetFactor(u8, i64),
    Job(usize, usize, u32, u32),
    UsageUpdated(u32),
    Fairshare,
    /// A usage config change: the bins are re-binned from the job records
    /// in the log (0: node_weight, 1: core_weight, 2: the half-life).
    UsageConfig(u8, u32),
    /// `clear-usage` of a bank, ignoring jobs that ended before an hour.
    ClearUsage(usize, u32),
    /// A bank's `ignore_older_than` edited (re-bins that bank).
    BankIgnore(usize, u32),
    /// A record `fetch-job-records` rejected: with an id (that
    /// of a later or earlier job) or without one.
    Rejected(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let b = 0..BANKS.len();
    let u = 0..USERS.len();
    prop_oneof![
        2 => b.clone().prop_map(Op::AddBank),
        1 => (b.clone(), 1..5i64).prop_map(|(b, s)| Op::EditBank(b, s)),
        1 => b.clone().prop_map(Op::DisableBank),
        3 => (u.clone(), b.clone()).prop_map(|(u, b)| Op::AddUser(u, b)),
        2 => (u.clone(), b.clone(), 1..20i64, 1..4i64).prop_map(|(u, b, m, s)| Op::EditUser(u, b, m, s)),
        1 => (u.clone(), b.clone()).prop_map(|(u, b)| Op::DisableUser(u, b)),
        1 => (u.clone(), b.clone()).prop_map(|(u, b)| Op::DeleteUser(u, b)),
        1 => (0u8..3).prop_map(Op::AddQueue),
        1 => (0u8..4, 0..1000i64).prop_map(|(f, w)| Op::SetFactor(f, w)),
        5 => (u.clone(), b.clone(), 0..400u32, 1..50u32).prop_map(|(u, b, t, d)| Op::Job(u, b, t, d)),
        2 => (0..50u32).prop_map(Op::UsageUpdated),
        2 => Just(Op::Fairshare),
        1 => (0u8..3, 1..4u32).prop_map(|(k, v)| Op::UsageConfig(k, v)),
        1 => (b.clone(), 0..400u32).prop_map(|(b, t)| Op::ClearUsage(b, t)),
        1 => (b, 0..400u32).prop_map(|(b, t)| Op::BankIgnore(b, t)),
        2 => (0u8..4).prop_map(Op::Rejected),
    ]
}

fn genesis() -> Event {
    Event::DbCreated(DbCreated {
        format: 1,
        t0: T0,
        priority_decay_half_life: 86400.0,
        priority_usage_reset_period: 86400.0 * 28.0,
        decay_factor: 0.5,
        node_weight: 1.0,
        core_weight: 0.0,
        gpu_weight: 0.0,
    })
}

fn bank_added(bank: &str, parent: &str, shares: i64) -> Event {
    Event::BankAdded(BankAdded {
        bank: bank.into(),
        parent_bank: parent.into(),
        shares,
        priority: 0.0,
        ignore_older_than: 0,
    })
}

/// Turns an op into events, reading the current state where an event needs
/// it (the fair-share digest). Ops that do not fit the state fail to apply
/// and are rolled back, as a refused command would be.
fn events_for(conn: &rusqlite::Connection, op: &Op, step: u32, job_id: &mut u64) -> Vec<Event> {
    let hour = 3600.0;
    match op {
        Op::AddBank(b) => vec![bank_added(BANKS[*b], "root", 1)],
        Op::EditBank(b, s) => {
            vec![Event::BankEdited(BankEdited { bank: BANKS[*b].into(), shares: Some(*s), ..Default::default() })]
        }
        Op::DisableBank(b) => vec![Event::BankDisabled(BankRef { bank: BANKS[*b].into() })],
        Op::AddUser(u, b) => {
            vec![Event::AssociationAdded(AssociationAdded::with_defaults(USERS[*u], 1000 + *u as i64, BANKS[*b]))]
        }
        Op::EditUser(u, b, m, s) => vec![Event::AssociationEdited(AssociationEdited {
            username: USERS[*u].into(),
            bank: BANKS[*b].into(),
            max_running_jobs: Some(*m),
            shares: Some(*s),
            ..Default::default()
        })],
        Op::DisableUser(u, b) => {
            vec![Event::AssociationDisabled(AssocRef { username: USERS[*u].into(), bank: BANKS[*b].into() })]
        }
        Op::DeleteUser(u, b) => {
            vec![Event::AssociationDeleted(AssocRef { username: USERS[*u].into(), bank: BANKS[*b].into() })]
        }
        Op::AddQueue(q) => {
            let mut added = QueueAdded::with_defaults(format!("q{q}"));
            added.limits.priority = i64::from(*q);
            vec![Event::QueueAdded(added)]
        }
        Op::SetFactor(f, w) => vec![Event::FactorWeightSet(FactorWeightSet {
            factor: ["fairshare", "queue", "bank", "urgency"][*f as usize].into(),
            weight: *w,
        })],
        Op::Job(u, b, t, d) => {
            *job_id += 1;
            let t_run = T0 + hour * f64::from(*t);
            vec![Event::JobRecorded(JobRecorded {
                id: *job_id,
                userid: 1000 + *u as i64,
                username: Some(USERS[*u].into()),
                bank: BANKS[*b].into(),
                project: String::new(),
                queue: String::new(),
                t_submit: t_run,
                t_run,
                t_inactive: t_run + 60.0 * f64::from(*d),
                nnodes: 1 + i64::from(*d % 3),
                ncores: 4,
                ngpus: 0,
                requested_duration: 3600.0,
                ranks: None,
                // Some jobs carry an R in canonical form.
                r: (*d % 2 == 0).then(|| {
                    CanonicalJson::from_value(&serde_json::json!({"version": 1, "execution": {"R_lite": [
                        {"rank": format!("0-{}", d % 3), "children": {"core": "0-3"}}]}}))
                }),
            })]
        }
        Op::Rejected(k) => vec![Event::JobRejected(JobRejected {
            id: (*k > 0).then(|| *job_id + u64::from(*k) - 1),
            position: format!("line {}", step + 1),
            reason: ["missing id", "t_inactive 1 is before t_run 2", "job already recorded with a different bank"]
                [(*k % 3) as usize]
                .into(),
        })],
        Op::UsageUpdated(extra) => {
            vec![Event::UsageUpdated(UsageUpdated { as_of: T0 + hour * f64::from(step * 10 + extra) })]
        }
        Op::UsageConfig(k, v) => {
            let (key, value) = match k {
                0 => ("node_weight", v.to_string()),
                1 => ("core_weight", v.to_string()),
                _ => ("priority_decay_half_life", (43200 * v).to_string()),
            };
            vec![Event::ConfigEdited(ConfigSet { key: key.into(), value })]
        }
        Op::ClearUsage(b, t) => vec![Event::UsageCleared(UsageCleared {
            bank: BANKS[*b].into(),
            ignore_older_than: (T0 + hour * f64::from(*t)) as i64,
            at: Some(T0 + hour * f64::from(*t) + 0.25),
        })],
        Op::BankIgnore(b, t) => vec![Event::BankEdited(BankEdited {
            bank: BANKS[*b].into(),
            ignore_older_than: Some((T0 + hour * f64::from(*t)) as i64),
            ..Default::default()
        })],
        Op::Fairshare => match projections::usage::fairshare_values(conn) {
            Ok(values) => vec![Event::FairshareUpdated(FairshareUpdated {
                associations: values.len() as u64,
                digest: projections::usage::fairshare_digest(&values),
            })],
            Err(_) => vec![],
        },
    }
}

/// Builds a file ledger by incremental application (events appended and
/// applied in one transaction per op, as commands do).
fn build(path: &std::path::Path, ops: &[Op]) -> Ledger {
    let mut ledger = Ledger::create(path).expect("create");
    projections::schema::create(ledger.conn()).expect("schema");
    let mut job_id = 0u64;
    let mut first = vec![genesis(), bank_added("root", "", 1)];
    for (i, op) in std::iter::once(None).chain(ops.iter().map(Some)).enumerate() {
        let meta = EventMeta {
            recorded_at_us: (T0 as i64 + i as i64 * 60) * 1_000_000,
            actor: Actor { uid: 0, name: "root".into() },
            argv: vec!["test".into()],
        };
        let mut tx = ledger.transaction().expect("tx");
        let events = match op {
            None => std::mem::take(&mut first),
            Some(op) => events_for(tx.conn(), op, i as u32, &mut job_id),
        };
        if projections::append_and_apply(&mut tx, &meta, &events).is_ok() {
            tx.commit().expect("commit");
        }
    }
    ledger
}

fn hash(conn: &rusqlite::Connection) -> replay::StateHash {
    replay::state_hash(conn).expect("state hash")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replay_paths_agree(ops in prop::collection::vec(op(), 1..60), k_frac in 0.0f64..1.0) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = build(&dir.path().join("l.db"), &ops);
        let head = ledger.head().expect("head").map(|(s, _)| s).expect("non-empty");
        let incremental = hash(ledger.conn());

        // Full rebuild.
        let full = replay::replay_to_memory(&ledger, None).expect("full replay");
        prop_assert_eq!(hash(&full), incremental);

        // Rebuild to k, then the rest.
        let k = Seq(((head.0 as f64) * k_frac) as u64);
        let part = replay::replay_to_memory(&ledger, Some(k)).expect("replay to k");
        let at_k = hash(&part);
        for ev in ledger.stream_range(k.next(), head) {
            projections::apply_stored(&part, &ev.expect("event")).expect("apply");
        }
        prop_assert_eq!(hash(&part), incremental);

        // As-of views: from scratch, and from a projection checkpoint at k.
        prop_assert_eq!(hash(replay::state_at(&ledger, k).expect("as of k").conn()), at_k);
        if k.0 >= 1 {
            let k_state = replay::replay_to_memory(&ledger, Some(k)).expect("replay to k");
            let k_hash = ledger.event(k).expect("read").expect("event at k").hash;
            replay::history::save_checkpoint(ledger.conn(), &k_state, k, k_hash).expect("store");
            let view = replay::state_at(&ledger, head).expect("as of head");
            prop_assert_eq!(view.checkpoint(), Some(k));
            prop_assert_eq!(hash(view.conn()), incremental);
            let view = replay::state_at(&ledger, k).expect("as of k");
            prop_assert_eq!(view.checkpoint(), Some(k));
            prop_assert_eq!(hash(view.conn()), at_k);
        }

        // Rebuilding the live tables in place.
        replay::rebuild_live(&mut ledger, 7, &mut |_| {}).expect("rebuild");
        prop_assert_eq!(hash(ledger.conn()), incremental);
        let mid = Seq(head.0 / 2);
        prop_assert_eq!(
            hash(replay::state_at(&ledger, mid).expect("as of mid").conn()),
            hash(&replay::replay_to_memory(&ledger, Some(mid)).expect("replay mid"))
        );
    }
}

#[test]
fn a_mixed_history_exercises_every_path() {
    // A fixed case that certainly holds jobs, usage and fair-share updates.
    let ops = vec![
        Op::AddBank(0),
        Op::AddBank(1),
        Op::AddUser(0, 0),
        Op::AddUser(1, 0),
        Op::AddUser(1, 1),
        Op::Job(0, 0, 1, 10),
        Op::Job(1, 0, 2, 20),
        Op::Job(1, 1, 3, 30),
        Op::UsageUpdated(5),
        Op::Fairshare,
        Op::EditUser(0, 0, 9, 3),
        Op::Job(0, 0, 30, 40),
        Op::UsageUpdated(40),
        Op::Fairshare,
        Op::UsageConfig(0, 2),
        Op::UsageUpdated(41),
        Op::BankIgnore(0, 2),
        Op::Job(1, 1, 35, 5),
        Op::ClearUsage(1, 32),
        Op::UsageUpdated(45),
        Op::Rejected(0),
        Op::Rejected(1),
        Op::Job(0, 0, 50, 2),
        Op::UsageUpdated(60),
        Op::Fairshare,
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = build(&dir.path().join("l.db"), &ops);
    let kinds: Vec<String> = ledger.stream(Seq(1)).map(|e| e.expect("event").kind).collect();
    for want in [
        "JobRecorded",
        "UsageUpdated",
        "FairshareUpdated",
        "AssociationEdited",
        "ConfigEdited",
        "UsageCleared",
        "JobRejected",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} missing from {kinds:?}");
    }
    let full = replay::replay_to_memory(&ledger, None).expect("replay");
    assert_eq!(hash(&full), hash(ledger.conn()));
    let diffs = replay::compare(ledger.conn(), &full, &replay::canonical::state_tables()).expect("compare");
    assert!(diffs.is_empty(), "{diffs:?}");
}

/// Regression: rebuilding a file ledger whose projection tables do not
/// exist yet (a log written without them, as `fixtures::big` does) must not
/// resolve the swap's table names to the attached scratch copy.
#[test]
fn rebuild_of_a_log_without_projections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log-only.db");
    let mut l = Ledger::create(&path).expect("create");
    let meta = EventMeta { recorded_at_us: 1_000_000, actor: Actor { uid: 0, name: "t".into() }, argv: vec![] };
    {
        let mut tx = l.transaction().expect("tx");
        for ev in [Event::DbCreated(DbCreated::with_defaults(1.0)), bank_added("root", "", 1)] {
            tx.append(&meta, ev.kind(), ev.version(), &ev.encode().expect("encode")).expect("append");
        }
        tx.commit().expect("commit");
    }
    assert_eq!(projections::schema::stored_version(l.conn()).expect("version"), None);
    let stats = replay::rebuild_live(&mut l, 1, &mut |_| {}).expect("rebuild");
    assert_eq!(stats.events, 2);
    let banks: i64 = l.conn().query_row("SELECT count(*) FROM bank_table", [], |r| r.get(0)).expect("banks");
    assert_eq!(banks, 1);
    let memory = replay::replay_to_memory(&l, None).expect("replay");
    assert_eq!(hash(l.conn()), hash(&memory));
}

/// The parallel log readers of a file rebuild hand over fixed seq ranges
/// (8 192 events) in turn: a log of several ranges, with usage updates,
/// re-binnings and admin edits spread across range boundaries, rebuilds to
/// the incrementally kept state, and so do replays to memory and as-of
/// views from the projection checkpoints the rebuild stores.
#[test]
fn file_rebuild_across_many_reader_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.db");
    let mut ledger = Ledger::create(&path).expect("create");
    projections::schema::create(ledger.conn()).expect("schema");
    let hour = 3600.0;
    let mut seq_time = 0i64;
    let mut append = |ledger: &mut Ledger, events: Vec<Event>| {
        seq_time += 1;
        let meta = EventMeta {
            recorded_at_us: (T0 as i64 + seq_time) * 1_000_000,
            actor: Actor { uid: 0, name: "root".into() },
            argv: vec!["test".into()],
        };
        let mut tx = ledger.transaction().expect("tx");
        projections::append_and_apply(&mut tx, &meta, &events).expect("apply");
        tx.commit().expect("commit");
    };
    let mut setup = vec![genesis(), bank_added("root", "", 1)];
    for (i, b) in BANKS.iter().enumerate() {
        setup.push(bank_added(b, "root", 1 + i as i64));
        for (j, u) in USERS.iter().enumerate() {
            setup.push(Event::AssociationAdded(AssociationAdded::with_defaults(*u, 1000 + j as i64, *b)));
        }
    }
    append(&mut ledger, setup);
    let mut id = 0u64;
    for round in 0..14u32 {
        let jobs: Vec<Event> = (0..2500u32)
            .map(|k| {
                id += 1;
                let t_run = T0 + hour * f64::from(round * 20) + f64::from(k) * 10.0;
                Event::JobRecorded(JobRecorded {
                    id,
                    userid: 1000 + i64::from(k % 4),
                    username: None,
                    bank: BANKS[(k % 3) as usize].into(),
                    project: String::new(),
                    queue: String::new(),
                    t_submit: t_run,
                    t_run,
                    // Some jobs end after the next update: they stay pending.
                    t_inactive: t_run + f64::from(k % 7) * 1000.0 + 0.25,
                    nnodes: 1 + i64::from(k % 3),
                    ncores: 4,
                    ngpus: 0,
                    requested_duration: 3600.0,
                    ranks: None,
                    r: None,
                })
            })
            .collect();
        append(&mut ledger, jobs);
        let as_of = T0 + hour * f64::from(round * 20 + 8);
        append(&mut ledger, vec![Event::UsageUpdated(UsageUpdated { as_of })]);
        let edit = Event::AssociationEdited(AssociationEdited {
            username: USERS[(round % 4) as usize].into(),
            bank: BANKS[(round % 3) as usize].into(),
            shares: Some(1 + i64::from(round)),
            ..Default::default()
        });
        append(&mut ledger, vec![edit]);
        match round {
            5 => append(
                &mut ledger,
                vec![Event::ConfigEdited(ConfigSet { key: "core_weight".into(), value: "2".into() })],
            ),
            9 => append(
                &mut ledger,
                vec![Event::UsageCleared(UsageCleared {
                    bank: "B".into(),
                    ignore_older_than: (T0 + hour * f64::from(round * 20)) as i64,
                    at: None,
                })],
            ),
            _ => {}
        }
    }
    let head = ledger.head().expect("head").map(|(s, _)| s).expect("non-empty");
    assert!(head.0 > 4 * 8192, "only {head} events");
    let pending: i64 = ledger.conn().query_row("SELECT count(*) FROM usage_pending", [], |r| r.get(0)).expect("n");
    assert!(pending > 0, "some jobs must still be pending");
    let incremental = hash(ledger.conn());
    assert_eq!(hash(&replay::replay_to_memory(&ledger, None).expect("replay")), incremental);
    let stats = replay::rebuild_live(&mut ledger, 5000, &mut |_| {}).expect("rebuild");
    assert_eq!(stats.events, head.0);
    assert_eq!(hash(ledger.conn()), incremental);
    // Projection checkpoints sit at usage updates (few pending jobs), at
    // least 5 000 events apart, never more than 10 000.
    let cps: Vec<(i64, String)> = {
        let mut s = ledger
            .conn()
            .prepare("SELECT c.seq, e.kind FROM projection_checkpoints c JOIN events e ON e.seq = c.seq ORDER BY c.seq")
            .expect("prepare");
        let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(cps.len() as u64, stats.checkpoints);
    assert!(cps.len() >= 4, "{cps:?}");
    let mut prev = 0;
    for (seq, kind) in &cps {
        assert_eq!(kind, "UsageUpdated", "{cps:?}");
        assert!((5000..=10_000).contains(&(seq - prev)), "{cps:?}");
        prev = *seq;
    }
    for at in [Seq(head.0 / 3), Seq(head.0 - 17), head] {
        let view = replay::state_at(&ledger, at).expect("as of");
        assert!(view.checkpoint().is_some());
        assert_eq!(hash(view.conn()), hash(&replay::replay_to_memory(&ledger, Some(at)).expect("replay")));
        let jobs: i64 = view.conn().query_row("SELECT count(*) FROM jobs", [], |r| r.get(0)).expect("jobs");
        let want: i64 = ledger
            .conn()
            .query_row("SELECT count(*) FROM events WHERE kind = 'JobRecorded' AND seq <= ?1", [at.0 as i64], |r| {
                r.get(0)
            })
            .expect("want");
        assert_eq!(jobs, want, "the as-of jobs view ends at its seq");
    }
}
