//! Benches of the priority plugin's safe core and of the snapshot format.
//!
//! * `core/validate`, `core/priority_get`: one decision for one job against
//!   a 100k-association snapshot (target: < 1 µs median).
//! * `core/job_lifecycle`: validate, new, depend, priority, sched, run and
//!   inactive for one job.
//! * `snapshot/encode_100k`, `snapshot/decode_100k`: the snapshot of 100k
//!   associations (target: decode < 50 ms; the ≤ 100 bytes/association
//!   size target is asserted by a unit test in projections).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder};
use fluxacct_core::{EventHash, Seq};
use plugin::jobin::{Attr, JobIn, Resources};
use plugin::policy::{Policy, STATE_DEPEND, STATE_INACTIVE, STATE_NEW, STATE_PRIORITY, STATE_RUN, STATE_SCHED};

fn big(n: u32) -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(1_000_000), hash: EventHash([1; 32]) });
    for i in 0..n {
        b.add_association(&AssociationRecord {
            userid: 10_000 + i,
            username: format!("user{i:06}"),
            bank: format!("bank{}", i % 20),
            default_bank: format!("bank{}", i % 20),
            active: true,
            fairshare: (i % 1000) as f64 / 1000.0,
            limits: fluxacct_core::limits::AssocLimits {
                max_running_jobs: 1_000_000,
                max_active_jobs: 1_000_000,
                max_nodes: 2_147_483_647,
                max_cores: 2_147_483_647,
                max_sched_jobs: 2_147_483_647,
            },
            queues: match i % 3 {
                0 => vec![],
                1 => vec!["batch".into()],
                _ => vec!["batch".into(), "debug".into()],
            },
            projects: vec!["*".into()],
            default_project: "*".into(),
        });
    }
    for (q, p) in [("batch", 100), ("debug", 0)] {
        b.add_queue(&QueueRecord::new(q, QueueLimits { priority: p, ..QueueLimits::default() }));
    }
    for i in 0..20 {
        b.add_bank(&format!("bank{i}"), 0.0);
    }
    b.add_project("*");
    b.build()
}

fn job(id: u64, state: u32) -> JobIn {
    JobIn {
        id,
        userid: 10_000 + 4_001,
        urgency: 16,
        state,
        bank: Attr::Missing,
        queue: Attr::Str("batch".into()),
        project: Attr::Missing,
        resources: Some(Resources { nnodes: 1, ncores: 4, ngpus: 0 }),
        has_r: false,
        duration_s: 0.0,
    }
}

fn benches(c: &mut Criterion) {
    let snap = big(100_000);
    let mut core = Policy::new();
    core.load(snap.clone());
    let j = job(1, STATE_NEW);
    core.job_new(&j);
    c.bench_function("core/validate", |b| b.iter(|| black_box(core.validate(black_box(&j)))));
    let jp = job(1, STATE_PRIORITY);
    c.bench_function("core/priority_get", |b| b.iter(|| black_box(core.priority(black_box(&jp), false))));
    let mut id = 100u64;
    c.bench_function("core/job_lifecycle", |b| {
        b.iter(|| {
            id += 1;
            let mut j = job(id, STATE_NEW);
            black_box(core.validate(&j));
            black_box(core.job_new(&j));
            j.state = STATE_DEPEND;
            black_box(core.depend(&j));
            j.state = STATE_PRIORITY;
            black_box(core.priority(&j, true));
            j.state = STATE_SCHED;
            black_box(core.sched(&j));
            j.state = STATE_RUN;
            black_box(core.run(&j));
            j.state = STATE_INACTIVE;
            black_box(core.inactive(id));
        })
    });

    let bytes = snap.encode().expect("encode");
    eprintln!(
        "snapshot of 100000 associations: {} bytes ({:.1} bytes/association)",
        bytes.len(),
        bytes.len() as f64 / 100_000.0
    );
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(20);
    g.bench_function("encode_100k", |b| b.iter(|| black_box(snap.encode().expect("encode"))));
    g.bench_function("decode_100k", |b| b.iter(|| black_box(Snapshot::decode(black_box(&bytes)).expect("decode"))));
    g.bench_function("decode_and_load_100k", |b| {
        b.iter(|| {
            let mut c = Policy::new();
            black_box(c.load(Snapshot::decode(&bytes).expect("decode")))
        })
    });
    g.finish();
}

criterion_group!(plugin_benches, benches);
criterion_main!(plugin_benches);
