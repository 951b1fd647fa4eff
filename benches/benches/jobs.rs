//! Job listing benches, whole process as a user runs it:
//!
//! * `view_job_records/list_100k`: `flux-account view-job-records` listing
//!   every one of 100k job records (1000 associations under 50 banks,
//!   uids not in the passwd database), output to /dev/null (target < 1 s).
//!
//! Needs the release binary (see `fluxacct_benches::flux_account_binary`,
//! or set `FLUXACCT_BIN`).

use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fixtures::site::{self, SiteSpec};

fn list_100k(c: &mut Criterion) {
    let bin = fluxacct_benches::flux_account_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("jobs.db");
    let spec = SiteSpec { banks: 50, associations: 1000, jobs: 100_000, weeks: 4, seed: 7 };
    drop(site::generate(&db, &spec).expect("generate"));
    let mut g = c.benchmark_group("view_job_records");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("list_100k", |b| {
        b.iter(|| {
            let st = Command::new(&bin)
                .arg("-p")
                .arg(&db)
                .arg("view-job-records")
                .stdout(Stdio::null())
                .status()
                .expect("run");
            assert!(st.success());
        })
    });
    g.finish();
}

criterion_group!(benches, list_100k);
criterion_main!(benches);
