//! Allocations under random job streams and random allocation edits: at
//! every seq, charged + remaining + reserved = allocated for every
//! allocation, its charged amount is the sum of its charge rows and its
//! allocated amount the sum of its events; and the tables a replay of the
//! log rebuilds (at the end and at a random earlier seq) equal the live ones.

use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta};
use fluxacct_projections as projections;
use ledger::Ledger;
use proptest::prelude::*;
use rusqlite::Connection;

const T0: f64 = 1_767_225_600.0;

#[derive(Debug, Clone)]
enum Op {
    Job { bank: usize, queue: usize, nnodes: i64, ncores: i64, seconds: u32, end_h: u32 },
    Deposit { alloc: usize, milli: i64 },
    Withdraw { alloc: usize, milli: i64 },
    Period { alloc: usize, end_h: u32 },
    Delete { alloc: usize },
    Factor { factor_tenths: u32 },
}

const BANKS: [&str; 3] = ["A", "B", "C"];
const QUEUES: [&str; 2] = ["batch", "premium"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..2usize, 1..8i64, 1..64i64, 0..20_000u32, 0..200u32)
            .prop_map(|(bank, queue, nnodes, ncores, seconds, end_h)| Op::Job { bank, queue, nnodes, ncores, seconds, end_h }),
        1 => (0..3usize, 1..50_000i64).prop_map(|(alloc, milli)| Op::Deposit { alloc, milli }),
        1 => (0..3usize, 1..50_000i64).prop_map(|(alloc, milli)| Op::Withdraw { alloc, milli }),
        1 => (0..3usize, 1..250u32).prop_map(|(alloc, end_h)| Op::Period { alloc, end_h }),
        1 => (0..3usize).prop_map(|alloc| Op::Delete { alloc }),
        1 => (0..40u32).prop_map(|factor_tenths| Op::Factor { factor_tenths }),
    ]
}

fn setup() -> Vec<Event> {
    let bank = |b: &str, p: &str| {
        Event::BankAdded(BankAdded {
            bank: b.into(),
            parent_bank: p.into(),
            shares: 1,
            priority: 0.0,
            ignore_older_than: 0,
        })
    };
    let alloc = |name: &str, bank: &str, unit: &str, milli: i64, end_h: i64| {
        Event::AllocationAdded(AllocationAdded {
            name: name.into(),
            bank: bank.into(),
            project: None,
            unit: unit.into(),
            amount_milli: milli,
            start_s: T0 as i64,
            end_s: T0 as i64 + end_h * 3600,
            exhausted: None,
        })
    };
    vec![
        Event::DbCreated(DbCreated::with_defaults(T0)),
        bank("root", ""),
        bank("A", "root"),
        bank("B", "A"),
        bank("C", "root"),
        Event::QueueAdded(QueueAdded::with_defaults("batch")),
        Event::QueueAdded(QueueAdded { charge_factor: Some(1.5), ..QueueAdded::with_defaults("premium") }),
        alloc("a0", "A", "node-hours", 100_000, 100),
        alloc("a1", "A", "core-hours", 500_000, 150),
        alloc("a2", "root", "charge", 80_000, 200),
    ]
}

fn event(op: &Op, id: u64) -> Event {
    let name = |i: usize| format!("a{i}");
    match op {
        Op::Job { bank, queue, nnodes, ncores, seconds, end_h } => {
            let end = T0 + *end_h as f64 * 3600.0 + 17.25;
            Event::JobRecorded(JobRecorded {
                id,
                userid: 1000 + id as i64 % 3,
                username: None,
                bank: BANKS[*bank].into(),
                project: String::new(),
                queue: QUEUES[*queue].into(),
                t_submit: end - *seconds as f64 - 5.0,
                t_run: end - *seconds as f64,
                t_inactive: end,
                nnodes: *nnodes,
                ncores: *ncores,
                ngpus: 0,
                requested_duration: 0.0,
                ranks: None,
                r: None,
            })
        }
        Op::Deposit { alloc, milli } => {
            Event::AllocationDeposited(AllocationAmount { name: name(*alloc), amount_milli: *milli })
        }
        Op::Withdraw { alloc, milli } => {
            Event::AllocationWithdrawn(AllocationAmount { name: name(*alloc), amount_milli: *milli })
        }
        Op::Period { alloc, end_h } => Event::AllocationPeriodChanged(AllocationPeriodChanged {
            name: name(*alloc),
            start_s: T0 as i64,
            end_s: T0 as i64 + *end_h as i64 * 3600,
        }),
        Op::Delete { alloc } => Event::AllocationDeleted(AllocationRef { name: name(*alloc) }),
        Op::Factor { factor_tenths } => Event::QueueEdited(QueueEdited {
            queue: "premium".into(),
            charge_factor: Some(*factor_tenths as f64 / 10.0),
            ..QueueEdited::default()
        }),
    }
}

fn check_balances(conn: &Connection) {
    let mut stmt = conn
        .prepare(
            "SELECT b.name, b.allocated_milli, b.charged_milli, b.reserved_milli, b.remaining_milli, \
             (SELECT coalesce(sum(amount_milli), 0) FROM allocation_charges c WHERE c.allocation = b.name), \
             (SELECT coalesce(sum(amount_milli), 0) FROM allocation_transactions t WHERE t.allocation = b.name) \
             FROM allocation_balance b",
        )
        .expect("prepare");
    let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 3);
    for (name, allocated, charged, reserved, remaining, charge_rows, deposits) in rows {
        assert_eq!(charged + remaining + reserved, allocated, "{name}");
        assert_eq!(charged, charge_rows, "{name}: charged vs its charge rows");
        assert_eq!(allocated, deposits, "{name}: allocated vs its events");
    }
}

fn dump(conn: &Connection) -> Vec<String> {
    projections::allocation::TABLES
        .iter()
        .chain(["allocation_balance"].iter())
        .map(|t| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {t} ORDER BY 1")).expect("prepare");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            let mut out = format!("{t}:");
            while let Some(r) = rows.next().expect("row") {
                for i in 0..n {
                    out.push_str(&format!("{:?}|", r.get_ref(i).expect("cell")));
                }
                out.push('\n');
            }
            out
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn balances_add_up_at_every_seq_and_replay_equals_live(ops in prop::collection::vec(op(), 1..60), cut in 0usize..60) {
        let mut l = Ledger::in_memory().expect("ledger");
        projections::schema::create(l.conn()).expect("schema");
        let meta = EventMeta { recorded_at_us: (T0 * 1e6) as i64, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
        let mut tx = l.transaction().expect("tx");
        projections::append_and_apply(&mut tx, &meta, &setup()).expect("setup");
        tx.commit().expect("commit");
        let mut cut_seq = None;
        for (i, op) in ops.iter().enumerate() {
            let ev = event(op, i as u64 + 1);
            let mut tx = l.transaction().expect("tx");
            // A rejected edit (a deleted allocation) is not appended: the
            // commands refuse it; the apply path would too.
            let edits_allocation = matches!(&ev, Event::AllocationDeposited(_) | Event::AllocationWithdrawn(_) | Event::AllocationPeriodChanged(_) | Event::AllocationDeleted(_));
            let name = match &ev {
                Event::AllocationDeposited(a) | Event::AllocationWithdrawn(a) => Some(a.name.clone()),
                Event::AllocationPeriodChanged(a) => Some(a.name.clone()),
                Event::AllocationDeleted(a) => Some(a.name.clone()),
                _ => None,
            };
            if edits_allocation {
                let active = projections::allocation::allocation(tx.conn(), name.as_deref().unwrap_or(""))
                    .expect("read").is_some_and(|a| a.active);
                if !active {
                    continue;
                }
            }
            projections::append_and_apply(&mut tx, &meta, &[ev]).expect("apply");
            let (seq, _) = tx.head().expect("head");
            tx.commit().expect("commit");
            check_balances(l.conn());
            if i == cut {
                cut_seq = Some((seq, dump(l.conn())));
            }
        }
        let replayed = projections::replay(&l, None).expect("replay");
        check_balances(&replayed);
        prop_assert_eq!(dump(&replayed), dump(l.conn()));
        if let Some((seq, live)) = cut_seq {
            let replayed = projections::replay(&l, Some(seq)).expect("replay to cut");
            prop_assert_eq!(dump(&replayed), live);
        }
    }
}
