//! Replay benches: chain verification (alone, and with SQLite's
//! quick_check beside it as `verify --file` runs it), full rebuild of all projections,
//! and `--as-of` on a recent point, on a generated ledger
//! (`fixtures::big`, cached under the target directory).
//!
//! Size: `FLUXACCT_BENCH_EVENTS` (default 1,000,000).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fluxacct_core::Seq;
use ledger::{Ledger, OpenMode};

fn fixture() -> (PathBuf, u64) {
    let events: u64 = std::env::var("FLUXACCT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = fixtures::big::cached(&dir, events).expect("generate fixture");
    // Projections and projection checkpoints, once.
    let mut l = Ledger::open(&path, OpenMode::ReadWrite).expect("open");
    if projections::schema::stored_version(l.conn()).expect("version").is_none() {
        replay::rebuild_live(&mut l, replay::history::DEFAULT_CHECKPOINT_EVERY, &mut |_| {}).expect("rebuild");
    }
    (path, events)
}

fn benches(c: &mut Criterion) {
    let (path, events) = fixture();
    let mut g = c.benchmark_group(format!("replay_{events}"));
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    g.bench_function("verify_2_threads", |b| {
        b.iter(|| {
            let r = ledger::verify_chain(&path, 2).expect("verify");
            assert!(r.ok());
        })
    });
    // `verify --file`: the walk with SQLite's quick_check beside it.
    g.bench_function("verify_2_threads_with_quick_check", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                let file = s.spawn(|| ledger::integrity::file_check(&path, false).expect("quick_check"));
                let r = ledger::verify_chain(&path, 2).expect("verify");
                assert!(r.ok());
                assert!(file.join().expect("join").is_empty());
            })
        })
    });
    g.bench_function("as_of_recent", |b| {
        let l = Ledger::open(&path, OpenMode::ReadOnly).expect("open");
        let head = l.head().expect("head").expect("non-empty").0;
        let at = Seq(head.0 - 1000);
        b.iter(|| {
            let v = replay::state_at(&l, at).expect("as of");
            let n: i64 = v.conn().query_row("SELECT count(*) FROM association_table", [], |r| r.get(0)).expect("q");
            assert!(n > 0);
        })
    });
    g.bench_function("rebuild_all_projections", |b| {
        let mut l = Ledger::open(&path, OpenMode::ReadWrite).expect("open");
        b.iter(|| {
            replay::rebuild_live(&mut l, replay::history::DEFAULT_CHECKPOINT_EVERY, &mut |_| {}).expect("rebuild")
        })
    });
    g.finish();
}

criterion_group!(replay_benches, benches);
criterion_main!(replay_benches);
