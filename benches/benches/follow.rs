//! The journal follower's batch (`commands::follow::Writer::commit`): 100
//! ended jobs decided (the `job_ids` dedup), appended and applied with the
//! batch's `UsageUpdated` and the follower's bookkeeping, in one
//! committed transaction, on a 10k-association site (fixtures::site)
//! holding 1M recorded jobs, and on the same site with no jobs:
//!
//! * `follow/batch_100_on_1m_jobs`, `follow/batch_100_fresh`: without a
//!   fair-share computation (the batches between two computations);
//! * `follow/batch_100_fshare_on_1m_jobs`, `follow/batch_100_fshare_fresh`:
//!   with one (at most one batch a second).
//!
//! The 1M-job ledger is built once per run under `target/follow-bench/`
//! and removed at the end. Set `FLUXACCT_BENCH_JOBS` to use fewer jobs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use commands::context::{Clock, Context};
use commands::follow::Writer;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fixtures::site::{self, Rng, Site, SiteSpec};
use fluxacct_core::events::{Event, FairshareUpdated, UsageUpdated};
use fluxacct_core::{Actor, EventMeta};
use fluxacct_ingest::source::journal::Finished;
use fluxacct_ingest::source::{checked, Position};
use ledger::{Ledger, OpenMode};

fn spec(jobs: usize) -> SiteSpec {
    SiteSpec { banks: 500, associations: 10_000, jobs, weeks: 8, seed: 3 }
}

fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("follow-bench")
}

/// A site at `path` with its usage and fair-share brought up to date, as a
/// ledger under cron's care looks when the follower starts.
fn build(path: &Path, jobs: usize) -> Site {
    let _ = std::fs::remove_file(path);
    let t = std::time::Instant::now();
    let s = site::generate(path, &spec(jobs)).expect("generate");
    let mut ledger = Ledger::open(path, OpenMode::ReadWrite).expect("open");
    let meta =
        EventMeta { recorded_at_us: (s.end * 1e6) as i64, actor: Actor { uid: 0, name: "bench".into() }, argv: vec![] };
    let mut tx = ledger.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta, &[Event::UsageUpdated(UsageUpdated { as_of: s.end })])
        .expect("usage");
    let values = projections::usage::fairshare_values(tx.conn()).expect("values");
    let fs = Event::FairshareUpdated(FairshareUpdated {
        associations: values.len() as u64,
        digest: projections::usage::fairshare_digest(&values),
    });
    projections::append_and_apply(&mut tx, &meta, &[fs]).expect("fshare");
    tx.commit().expect("commit");
    eprintln!("follow bench: site with {jobs} jobs built in {:.1?}", t.elapsed());
    s
}

/// 100 ended jobs, as the journal hands them over.
fn batch(s: &Site, rng: &mut Rng, first_id: u64) -> Vec<Finished> {
    site::sorted_jobs(s, rng, first_id, 100, s.end - 3600.0, s.end - 1.0)
        .into_iter()
        .filter_map(|e| match e {
            Event::JobRecorded(j) => {
                let (id, clean_us) = (j.id, (j.t_inactive * 1e6) as i64);
                Some(Finished { item: checked(Position::Live(id), Ok(j)), id, clean_us })
            }
            _ => None,
        })
        .collect()
}

fn run(c: &mut Criterion, name: &str, jobs: usize) {
    let path = dir().join(format!("{name}.db"));
    std::fs::create_dir_all(dir()).expect("bench dir");
    let s = build(&path, jobs);
    let mut ctx = Context::for_tests(&path, (s.end * 1e6) as i64);
    ctx.clock = Clock::Fixed((s.end * 1e6) as i64);
    let mut w = Writer::open(&ctx).expect("writer");
    let mut rng = Rng::new(7);
    let mut next = s.next_job_id + 1_000_000;
    let mut g = c.benchmark_group("follow");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    for (label, every) in [("batch_100", Duration::from_secs(3600)), ("batch_100_fshare", Duration::ZERO)] {
        // The first batch computes fair-share once; with an hour between
        // computations, the measured ones do not.
        let first = batch(&s, &mut rng, next);
        next += 100;
        w.commit(&ctx, first, every).expect("first batch");
        g.bench_function(format!("{label}_{name}"), |b| {
            b.iter_batched(
                || {
                    let v = batch(&s, &mut rng, next);
                    next += 100;
                    v
                },
                |v| {
                    let r = w.commit(&ctx, v, every).expect("batch");
                    assert_eq!(r.recorded, 100);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    drop(w);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

fn benches(c: &mut Criterion) {
    let jobs = std::env::var("FLUXACCT_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    run(c, "fresh", 0);
    run(c, "on_1m_jobs", jobs);
}

criterion_group!(follow, benches);
criterion_main!(follow);
