//! Ingest benches, whole processes as a user runs them:
//!
//! * `ingest/from_file_1m`: `flux-account fetch-job-records --from-file`
//!   on 1 000 000 jobs as `flux jobs`-style JSON lines (gen_site shape: R
//!   objects, ranks, bank/queue/project; about 578 MB) into a ledger of
//!   10 000 associations (target ≥ 200 000 records/s).
//! * `ingest/copy_1m`: the same jobs through `--copy` from a job-archive
//!   database.
//! * `ingest/from_file_1m_charged`: `from_file_1m` into the same ledger
//!   with one allocation on the root bank, so that every job is charged
//!   (docs/allocations.md): the cost of charging.
//! * `allocations/statement_1m`: one `flux-account allocation-statement`
//!   process over that allocation once its 1M jobs are charged.
//! * peak RSS of every child (its `VmHWM`, polled from /proc while it runs)
//!   must stay under [`RSS_LIMIT_KIB`], for the 1M runs and for one run on
//!   3 000 000 jobs (`ingest/peak_rss_3m`, printed; skipped when a filter
//!   that does not match it is given): the bench panics otherwise, so it
//!   fails if memory grows with the input.
//!
//! Inputs are generated once (fluxacct_fixtures::jobfile, the same code as
//! the `gen_jobs` example) and cached under `target/fluxacct-bench-ingest/`.
//! The release binary is built first (`cargo build --release -p
//! fluxacct-commands`), or taken from `FLUXACCT_BIN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fixtures::{jobfile, site};

/// The bound on a child's peak RSS.
const RSS_LIMIT_KIB: u64 = 300 * 1024;

fn binary() -> PathBuf {
    fluxacct_benches::flux_account_binary()
}

struct Inputs {
    dir: PathBuf,
    site: PathBuf,
}

fn inputs() -> Inputs {
    let dir = fluxacct_benches::target_dir().join("fluxacct-bench-ingest");
    std::fs::create_dir_all(&dir).expect("cache dir");
    let site_db = dir.join("site.db");
    Inputs { dir, site: site_db }
}

impl Inputs {
    const SPEC: site::SiteSpec = site::SiteSpec { banks: 500, associations: 10_000, jobs: 0, weeks: 8, seed: 3 };

    /// The cached 10k-association ledger, generated when missing.
    fn ensure_site(&self) {
        if !self.site.exists() {
            let tmp = self.dir.join("site.db.tmp");
            let _ = std::fs::remove_file(&tmp);
            site::generate(&tmp, &Self::SPEC).expect("generate site");
            std::fs::rename(&tmp, &self.site).expect("rename");
        }
    }

    /// The site's associations (a function of the spec), for generating jobs.
    fn site(&self) -> site::Site {
        let tmp = tempfile::tempdir().expect("tmp");
        site::generate(&tmp.path().join("s.db"), &Self::SPEC).expect("site users")
    }

    fn jsonl(&self, n: usize) -> PathBuf {
        let p = self.dir.join(format!("jobs-{n}.jsonl"));
        if !p.exists() {
            let s = self.site();
            let tmp = p.with_extension("tmp");
            jobfile::write_jsonl(&tmp, jobfile::jobs(&s, 11, 1, n)).expect("write jsonl");
            std::fs::rename(&tmp, &p).expect("rename");
        }
        p
    }

    fn archive(&self, n: usize) -> PathBuf {
        let p = self.dir.join(format!("archive-{n}.db"));
        if !p.exists() {
            let s = self.site();
            let tmp = p.with_extension("tmp");
            jobfile::write_archive(&tmp, jobfile::jobs(&s, 11, 1, n)).expect("write archive");
            std::fs::rename(&tmp, &p).expect("rename");
        }
        p
    }

    /// A fresh copy of the 10k-association ledger with allocation `bench`
    /// (node-hours) on the root bank, covering every job.
    fn fresh_charged_ledger(&self, bin: &Path, scratch: &Path) -> PathBuf {
        let db = self.fresh_ledger(scratch);
        let st = Command::new(bin)
            .arg("-p")
            .arg(&db)
            .args(["add-allocation", "--bank", "root", "--amount", "1000000000", "--unit", "node-hours"])
            .args(["--start", "0", "--end", "4102444800", "--name", "bench"])
            .status()
            .expect("add-allocation");
        assert!(st.success(), "add-allocation failed");
        db
    }

    /// A fresh copy of the 10k-association ledger.
    fn fresh_ledger(&self, scratch: &Path) -> PathBuf {
        self.ensure_site();
        let db = scratch.join("run.db");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        std::fs::copy(&self.site, &db).expect("copy ledger");
        db
    }
}

/// The child's `VmHWM` (peak RSS) in KiB, if it is still running.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one ingest process; returns its wall time and peak RSS (KiB).
fn run(bin: &Path, db: &Path, source: &[&str], expect: &str) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(db)
        .arg("fetch-job-records")
        .args(source)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flux-account");
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(k) = vm_hwm(pid) {
            peak = peak.max(k);
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = t.elapsed();
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ingest failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim_end(), expect);
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB ≥ {RSS_LIMIT_KIB} KiB for {source:?}");
    (elapsed, peak)
}

fn ingest(c: &mut Criterion) {
    let bin = binary();
    let inp = inputs();
    let scratch = tempfile::tempdir_in(&inp.dir).expect("scratch");
    let n = 1_000_000;
    let jsonl = inp.jsonl(n);
    let archive = inp.archive(n);
    let expect = format!("recorded {n}, already recorded 0, rejected 0");
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    let mut peak = 0;
    g.bench_function("from_file_1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let db = inp.fresh_ledger(scratch.path());
                let (t, p) = run(&bin, &db, &["--from-file", jsonl.to_str().expect("utf8")], &expect);
                total += t;
                peak = peak.max(p);
            }
            total
        })
    });
    eprintln!("ingest/from_file_1m: peak RSS {peak} KiB");
    let mut peak = 0;
    g.bench_function("copy_1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let db = inp.fresh_ledger(scratch.path());
                let (t, p) = run(&bin, &db, &["--copy", archive.to_str().expect("utf8")], &expect);
                total += t;
                peak = peak.max(p);
            }
            total
        })
    });
    eprintln!("ingest/copy_1m: peak RSS {peak} KiB");
    let mut peak = 0;
    g.bench_function("from_file_1m_charged", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let db = inp.fresh_charged_ledger(&bin, scratch.path());
                let (t, p) = run(&bin, &db, &["--from-file", jsonl.to_str().expect("utf8")], &expect);
                total += t;
                peak = peak.max(p);
            }
            total
        })
    });
    eprintln!("ingest/from_file_1m_charged: peak RSS {peak} KiB");
    g.finish();
}

/// A statement over an allocation with 1M charged jobs, as a whole process.
fn statement(c: &mut Criterion) {
    let bin = binary();
    let inp = inputs();
    let n = 1_000_000;
    let db = inp.dir.join("charged-1m.db");
    if !db.exists() {
        let scratch = tempfile::tempdir_in(&inp.dir).expect("scratch");
        let fresh = inp.fresh_charged_ledger(&bin, scratch.path());
        let jsonl = inp.jsonl(n);
        let expect = format!("recorded {n}, already recorded 0, rejected 0");
        run(&bin, &fresh, &["--from-file", jsonl.to_str().expect("utf8")], &expect);
        for ext in ["", "-wal", "-shm"] {
            let from = format!("{}{ext}", fresh.display());
            if std::path::Path::new(&from).exists() {
                std::fs::rename(&from, format!("{}{ext}", db.display())).expect("keep charged ledger");
            }
        }
    }
    let statement = || {
        let out = Command::new(&bin)
            .arg("-p")
            .arg(&db)
            .args(["allocation-statement", "bench", "--json"])
            .output()
            .expect("allocation-statement");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let v: serde_json::Value = serde_json::from_slice(&statement()).expect("statement JSON");
    let jobs: i64 = v["charges"].as_array().expect("charges").iter().map(|u| u["jobs"].as_i64().unwrap_or(0)).sum();
    assert!(jobs > 900_000, "{jobs} jobs charged");
    assert_eq!(
        v["closing_milli"].as_i64(),
        Some(v["deposited_milli"].as_i64().unwrap_or(0) - v["charged_milli"].as_i64().unwrap_or(0))
    );
    let mut g = c.benchmark_group("allocations");
    g.sample_size(10);
    g.bench_function("statement_1m", |b| b.iter(statement));
    g.finish();
}

/// One 3M-job ingest (too long for criterion's ten samples): prints its
/// time and peak RSS and panics if the RSS bound is broken.
fn peak_rss_3m(_c: &mut Criterion) {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "ingest/peak_rss_3m".contains(f.as_str())) {
        return;
    }
    let bin = binary();
    let inp = inputs();
    let scratch = tempfile::tempdir_in(&inp.dir).expect("scratch");
    let n = 3_000_000;
    let jsonl = inp.jsonl(n);
    let db = inp.fresh_ledger(scratch.path());
    let expect = format!("recorded {n}, already recorded 0, rejected 0");
    let (t, peak) = run(&bin, &db, &["--from-file", jsonl.to_str().expect("utf8")], &expect);
    eprintln!(
        "ingest/peak_rss_3m: {n} records in {:.2} s ({:.0} records/s), peak RSS {peak} KiB (limit {RSS_LIMIT_KIB})",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
}

criterion_group!(benches, ingest, statement, peak_rss_3m);
criterion_main!(benches);
