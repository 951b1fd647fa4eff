//! Import bench: `flux-account import-db` of a flux-accounting
//! database with 10k associations and 1M job rows, as one whole process
//! (target < 10 s).
//!
//! The source database is generated once with flux-accounting's v0.60
//! schema (copied from `../shared/fixtures/flux-accounting-dbs`) and kept
//! at `target/fluxacct-bench/fa-10k-1m-v2.db`. The binary is the release
//! `flux-account` next to the bench (built on demand) or `FLUXACCT_BIN`.
//! Run: `cargo bench -p fluxacct-benches --bench import`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn binary() -> PathBuf {
    fluxacct_benches::flux_account_binary()
}

/// The cached source database (generated on first use).
fn source() -> PathBuf {
    let dir = fluxacct_benches::target_dir().join("fluxacct-bench");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let db = dir.join("fa-10k-1m-v2.db");
    if !db.exists() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/flux-accounting-dbs/FluxAccountingv0-60-0.db");
        assert!(template.exists(), "{} is missing", template.display());
        let tmp = dir.join("fa-10k-1m-v2.db.partial");
        let _ = std::fs::remove_file(&tmp);
        let spec = fixtures::flux_accounting::Spec::new(100, 10_000, 1_000_000);
        fixtures::flux_accounting::generate(&template, &tmp, &spec).expect("generate");
        std::fs::rename(&tmp, &db).expect("rename");
    }
    db
}

fn import_10k_1m(c: &mut Criterion) {
    let bin = binary();
    let src = source();
    let spec = fixtures::flux_accounting::Spec::new(100, 10_000, 1_000_000);
    let now = spec.end_half_life_period + spec.half_life * 0.75;
    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(60));
    g.bench_function("import_db_10k_assoc_1m_jobs_process", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = dir.path().join("imported.db");
                let t = Instant::now();
                let out = Command::new(&bin)
                    .arg("-p")
                    .arg(&db)
                    .arg("import-db")
                    .arg(&src)
                    .env("FLUXACCT_NOW", format!("{now}"))
                    .output()
                    .expect("run");
                total += t.elapsed();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, import_10k_1m);
criterion_main!(benches);
