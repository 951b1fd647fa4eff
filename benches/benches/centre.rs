//! The accounting centre against a local PostgreSQL (a throwaway server,
//! `centre::testing::Server`; the benches skip when none can be started):
//!
//! * `centre/ship_1m_job_events`: `flux-account ship` of a ledger of 1M job
//!   records (and ~1k admin events) into an empty centre database, whole
//!   process (target ≥ 100k events/s).
//! * `centre/usage_report_3x1m`: `flux-account view-usage-report --centre
//!   URL --cluster all` over 3 clusters × 1M job records, whole process
//!   (target < 2 s).
//! * `centre/batch_50k_into_empty` and `centre/batch_50k_into_3m`: one
//!   50k-event batch shipped (library call) into an empty centre and into
//!   one holding 3M events: the cost per batch does not grow with the
//!   centre's size.
//!
//! Setup: the 1M-job site is generated once (about a minute in release),
//! and shipped three times under three names for the report.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use centre::testing::Server;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fixtures::site::{self, SiteSpec};

fn admin(pg: &Server) -> postgres::Client {
    postgres::Client::connect(&pg.admin_url("postgres"), postgres::NoTls).expect("connect")
}

fn fresh_db(pg: &Server, name: &str) {
    let mut c = admin(pg);
    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"")).expect("drop");
    c.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("create");
}

fn ship_lib(pg: &Server, db: &str, ledger: &std::path::Path, cluster: &str) -> Duration {
    let l = ledger::Ledger::open(ledger, ledger::OpenMode::ReadOnly).expect("ledger");
    let mut c = postgres::Client::connect(&pg.admin_url(db), postgres::NoTls).expect("connect");
    let t = Instant::now();
    centre::ship::ship(&l, &mut c, cluster, &centre::ship::Options::default()).expect("ship");
    t.elapsed()
}

fn benches(c: &mut Criterion) {
    let pg = match Server::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("centre benches skipped: no PostgreSQL server ({why})");
            return;
        }
    };
    let bin = fluxacct_benches::flux_account_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.db");
    let t = Instant::now();
    let spec = SiteSpec { banks: 50, associations: 1000, jobs: 1_000_000, weeks: 8, seed: 1 };
    let s = site::generate(&big, &spec).expect("generate");
    let events = ledger::Ledger::open(&big, ledger::OpenMode::ReadOnly).unwrap().count().unwrap();
    eprintln!("generated the 1M-job site ({events} events) in {:.1?}", t.elapsed());
    let small = dir.path().join("small.db");
    let small_spec = SiteSpec { banks: 10, associations: 100, jobs: 50_000 - 200, weeks: 2, seed: 2 };
    site::generate(&small, &small_spec).expect("generate small");

    let mut g = c.benchmark_group("centre");
    g.sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(60));

    g.throughput(Throughput::Elements(events));
    let mut n = 0;
    g.bench_function("ship_1m_job_events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let db = format!("ship{n}");
                fresh_db(&pg, &db);
                let t = Instant::now();
                let st = Command::new(&bin)
                    .arg("-p")
                    .arg(&big)
                    .args(["ship", "--to", &pg.admin_url(&db), "--cluster", "big"])
                    .stdout(Stdio::null())
                    .status()
                    .expect("run");
                total += t.elapsed();
                assert!(st.success());
                let mut c = admin(&pg);
                c.batch_execute(&format!("DROP DATABASE \"{db}\"")).expect("drop");
            }
            total
        })
    });

    // The 3M-event centre: the same ledger under three names.
    fresh_db(&pg, "report");
    let t = Instant::now();
    for cl in ["c1", "c2", "c3"] {
        ship_lib(&pg, "report", &big, cl);
    }
    admin_vacuum(&pg, "report");
    eprintln!("shipped 3 × {events} events for the report in {:.1?}", t.elapsed());
    g.throughput(Throughput::Elements(3 * spec.jobs as u64));
    let (start, end) = (format!("{}", s.t0 as i64), format!("{}", s.end as i64 + 1));
    g.bench_function("usage_report_3x1m", |b| {
        b.iter(|| {
            let st = Command::new(&bin)
                .args(["view-usage-report", "--centre", &pg.admin_url("report"), "--cluster", "all"])
                .args(["-s", &start, "-e", &end, "-S", "1,2,4,8"])
                .stdout(Stdio::null())
                .status()
                .expect("run");
            assert!(st.success());
        })
    });

    let small_events = ledger::Ledger::open(&small, ledger::OpenMode::ReadOnly).unwrap().count().unwrap();
    g.throughput(Throughput::Elements(small_events));
    let mut k = 0;
    g.bench_function("batch_50k_into_empty", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                k += 1;
                let db = format!("empty{k}");
                fresh_db(&pg, &db);
                total += ship_lib(&pg, &db, &small, "small");
                admin(&pg).batch_execute(&format!("DROP DATABASE \"{db}\"")).expect("drop");
            }
            total
        })
    });
    let mut k = 0;
    g.bench_function("batch_50k_into_3m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                k += 1;
                total += ship_lib(&pg, "report", &small, &format!("small{k}"));
            }
            total
        })
    });
    g.finish();
}

fn admin_vacuum(pg: &Server, db: &str) {
    let mut c = postgres::Client::connect(&pg.admin_url(db), postgres::NoTls).expect("connect");
    c.batch_execute("VACUUM ANALYZE").expect("vacuum");
}

criterion_group!(centre_benches, benches);
criterion_main!(centre_benches);
