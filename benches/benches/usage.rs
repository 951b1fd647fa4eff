//! Usage and fair-share benches on a synthetic site (fixtures::site): 10k associations
//! under 500 banks, 1M job records over 8 weeks.
//!
//! * `ingest_100k_jobs`: append + apply 100k `JobRecorded` (with the
//!   already-recorded check of fetch-job-records) in one transaction.
//! * `update_usage_full_1m`: the first `UsageUpdated` over all 1M jobs.
//! * `update_usage_incremental_10k`: an update after 10k new jobs (same
//!   period as the previous update).
//! * `update_fshare_10k`: compute + append + apply `FairshareUpdated`.
//!
//! Every measured transaction is rolled back, so iterations see the same
//! state. Set `FLUXACCT_BENCH_JOBS` to use fewer jobs.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fixtures::site::{self, Rng, Site, SiteSpec};
use fluxacct_core::events::{Event, FairshareUpdated, UsageUpdated};
use fluxacct_core::{Actor, EventMeta};
use ledger::{Ledger, OpenMode};

fn meta(t: f64) -> EventMeta {
    EventMeta { recorded_at_us: (t * 1e6) as i64, actor: Actor { uid: 0, name: "bench".into() }, argv: vec![] }
}

/// Appends and applies in a transaction that is rolled back.
fn dry_run(ledger: &mut Ledger, t: f64, events: &[Event]) {
    let mut tx = ledger.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta(t), events).expect("apply");
    drop(tx);
}

fn commit(ledger: &mut Ledger, t: f64, events: &[Event]) {
    let mut tx = ledger.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta(t), events).expect("apply");
    tx.commit().expect("commit");
}

fn spec() -> SiteSpec {
    let jobs = std::env::var("FLUXACCT_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    SiteSpec { banks: 500, associations: 10_000, jobs, weeks: 8, seed: 3 }
}

fn fshare_event(ledger: &Ledger) -> Event {
    let values = projections::usage::fairshare_values(ledger.conn()).expect("values");
    Event::FairshareUpdated(FairshareUpdated {
        associations: values.len() as u64,
        digest: projections::usage::fairshare_digest(&values),
    })
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("site.db");
    let t = std::time::Instant::now();
    let s: Site = site::generate(&base, &spec()).expect("generate");
    eprintln!("generated site ({} jobs) in {:.1?}", spec().jobs, t.elapsed());
    let mut ledger = Ledger::open(&base, OpenMode::ReadWrite).expect("open");
    let mut rng = Rng::new(99);

    // Ingest throughput.
    let new_jobs = site::sorted_jobs(&s, &mut rng, s.next_job_id, 100_000, s.end, s.end + 3600.0);
    let mut g = c.benchmark_group("usage");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(new_jobs.len() as u64));
    g.bench_function("ingest_100k_jobs", |b| {
        b.iter_batched(
            || new_jobs.clone(),
            |jobs| {
                let mut tx = ledger.transaction().expect("tx");
                let fresh: Vec<Event> = {
                    // As fetch-job-records does: one range scan for the batch.
                    let state = projections::model::State::new(tx.conn());
                    let ids: Vec<u64> = jobs
                        .iter()
                        .filter_map(|e| match e {
                            Event::JobRecorded(j) => Some(j.id),
                            _ => None,
                        })
                        .collect();
                    let recorded = state.recorded_among(&ids).expect("recorded_among");
                    jobs.into_iter()
                        .filter(|e| match e {
                            Event::JobRecorded(j) => !recorded.contains(&j.id),
                            _ => true,
                        })
                        .collect()
                };
                projections::append_and_apply(&mut tx, &meta(s.end), &fresh).expect("apply");
                drop(tx);
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(spec().jobs as u64));
    g.bench_function("update_usage_full_1m", |b| {
        b.iter(|| dry_run(&mut ledger, s.end, &[Event::UsageUpdated(UsageUpdated { as_of: s.end })]))
    });

    // Incremental: first update committed, then 10k new jobs recorded.
    let as_of = s.end;
    commit(&mut ledger, as_of, &[Event::UsageUpdated(UsageUpdated { as_of })]);
    let recent = site::sorted_jobs(&s, &mut rng, s.next_job_id + 1_000_000, 10_000, as_of - 3600.0, as_of + 1800.0);
    commit(&mut ledger, as_of, &recent);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("update_usage_incremental_10k", |b| {
        b.iter(|| dry_run(&mut ledger, as_of + 3600.0, &[Event::UsageUpdated(UsageUpdated { as_of: as_of + 3600.0 })]))
    });
    commit(&mut ledger, as_of + 3600.0, &[Event::UsageUpdated(UsageUpdated { as_of: as_of + 3600.0 })]);
    g.throughput(Throughput::Elements(s.users.len() as u64));
    g.bench_function("update_fshare_10k", |b| {
        b.iter(|| {
            let ev = fshare_event(&ledger);
            dry_run(&mut ledger, as_of + 3600.0, &[ev]);
        })
    });
    g.finish();
    drop(ledger);
    let _ = Path::new(&base);
}

criterion_group!(usage, benches);
criterion_main!(usage);
