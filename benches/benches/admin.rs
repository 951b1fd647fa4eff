//! Admin-path benches:
//!
//! * `add_user_process_10k`: one `flux-account add-user` as a whole
//!   process against a ledger holding 10k associations (target < 5 ms),
//!   sealed as a site's ledger is once `update-fshare` or `rebuild` ran
//!   (so each write keeps the fair-share inputs seal).
//! * `append_admin_batched`: append + apply throughput of admin events,
//!   1000 per transaction (target >= 20k events/s).
//! * `demo_process`: one whole `flux-account demo` process (sample site,
//!   400 job records, update-usage, update-fshare, snapshot, chart, verify,
//!   checkpoint) into a new ledger (target < 1 s).
//!
//! The first bench needs the release binary; it builds it with `cargo
//! build --release -p fluxacct-commands --bin flux-account` (into the same
//! target dir) when it is not next to the bench executable, or uses
//! `FLUXACCT_BIN`.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta};
use ledger::Ledger;

fn meta(t: i64) -> EventMeta {
    EventMeta { recorded_at_us: t, actor: Actor { uid: 0, name: "root".into() }, argv: vec!["bench".into()] }
}

fn assoc(i: usize) -> AssociationAdded {
    AssociationAdded::with_defaults(format!("user{i}"), 10_000 + i as i64, format!("bank{}", i % 10))
}

/// A ledger file with a root, 10 leaf banks and `n` associations; with
/// `sealed`, the fair-share inputs seal stored (as `rebuild` or
/// `update-fshare` leave it).
fn site(path: &Path, n: usize, sealed: bool) -> Ledger {
    let mut l = Ledger::create(path).expect("create");
    let mut events = vec![Event::DbCreated(DbCreated::with_defaults(1.0))];
    let bank = |b: &str, p: &str| {
        Event::BankAdded(BankAdded {
            bank: b.into(),
            parent_bank: p.into(),
            shares: 1,
            priority: 0.0,
            ignore_older_than: 0,
        })
    };
    events.push(bank("root", ""));
    for b in 0..10 {
        events.push(bank(&format!("bank{b}"), "root"));
    }
    events.extend((0..n).map(|i| Event::AssociationAdded(assoc(i))));
    let mut tx = l.transaction().expect("tx");
    projections::schema::create(tx.conn()).expect("schema");
    projections::append_and_apply(&mut tx, &meta(1_000_000), &events).expect("apply");
    if sealed {
        projections::seal::store(tx.conn(), &projections::seal::compute(tx.conn()).expect("seal")).expect("seal");
    }
    tx.commit().expect("commit");
    l
}

fn binary() -> PathBuf {
    fluxacct_benches::flux_account_binary()
}

fn add_user_process(c: &mut Criterion) {
    let bin = binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("10k.db");
    drop(site(&db, 10_000, true));
    let mut i = 0u64;
    let mut g = c.benchmark_group("admin");
    g.sample_size(200);
    g.bench_function("add_user_process_10k", |b| {
        b.iter(|| {
            i += 1;
            let st = Command::new(&bin)
                .arg("-p")
                .arg(&db)
                .args(["add-user", "-u", &format!("new{i}"), "-B", "bank3", "--userid", &i.to_string()])
                .status()
                .expect("run");
            assert!(st.success());
        })
    });
    g.finish();
}

fn demo_process(c: &mut Criterion) {
    let bin = binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut i = 0u64;
    let mut g = c.benchmark_group("admin");
    g.sample_size(10);
    g.bench_function("demo_process", |b| {
        b.iter(|| {
            i += 1;
            let db = dir.path().join(format!("demo{i}.db"));
            let out = Command::new(&bin).arg("-p").arg(&db).arg("demo").output().expect("run");
            assert!(out.status.success());
        })
    });
    g.finish();
}

fn append_batched(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = site(&dir.path().join("tp.db"), 1000, false);
    const BATCH: usize = 1000;
    let mut g = c.benchmark_group("admin");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut round = 0i64;
    g.bench_function("append_admin_batched", |b| {
        b.iter(|| {
            round += 1;
            let events: Vec<Event> = (0..BATCH)
                .map(|i| {
                    Event::AssociationEdited(AssociationEdited {
                        username: format!("user{i}"),
                        bank: format!("bank{}", i % 10),
                        max_active_jobs: Some(round % 50),
                        ..Default::default()
                    })
                })
                .collect();
            let mut tx = l.transaction().expect("tx");
            projections::append_and_apply(&mut tx, &meta(2_000_000 + round), &events).expect("apply");
            tx.commit().expect("commit");
        })
    });
    g.finish();
}

criterion_group!(benches, add_user_process, append_batched, demo_process);
criterion_main!(benches);
