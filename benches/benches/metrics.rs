//! Metrics benches on a synthetic site (fixtures::site): 10k associations
//! under 500 banks, 1M job records.
//!
//! * `metrics_process_10k_1m`: one whole `flux-account metrics` process
//!   (open, gather, encode, print) on that ledger (target < 200 ms).
//! * `scrape_http_10k_1m`: one `GET /metrics` over HTTP from `flux-account
//!   metrics --listen` with the cache off, so every scrape reads the
//!   ledger again (target < 200 ms).
//!
//! After the benches it scrapes the server 1 000 more times and prints
//! its peak resident set (`VmHWM`, target < 50 MB). Set
//! `FLUXACCT_BENCH_JOBS` to use fewer jobs. Uses the release binary
//! (`fluxacct_benches::flux_account_binary`).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fixtures::site::{self, SiteSpec};

fn spec() -> SiteSpec {
    let jobs = std::env::var("FLUXACCT_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    SiteSpec { banks: 500, associations: 10_000, jobs, weeks: 8, seed: 3 }
}

fn get(port: u16) -> std::io::Result<usize> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    assert!(raw.starts_with(b"HTTP/1.1 200") || raw.starts_with(b"HTTP/1.0 200"), "scrape failed");
    assert!(raw.ends_with(b"# EOF\n"), "incomplete scrape");
    Ok(raw.len())
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn benches(c: &mut Criterion) {
    let bin = fluxacct_benches::flux_account_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("site.db");
    let t = Instant::now();
    site::generate(&db, &spec()).expect("generate");
    eprintln!("generated site ({} jobs) in {:.1?}", spec().jobs, t.elapsed());

    let mut g = c.benchmark_group("metrics");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("metrics_process_10k_1m", |b| {
        b.iter(|| {
            let out = Command::new(&bin).arg("-p").arg(&db).arg("metrics").output().expect("run");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(out.stdout.ends_with(b"# EOF\n"));
        })
    });

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let server = Server(
        Command::new(&bin)
            .arg("-p")
            .arg(&db)
            .args(["metrics", "--listen", &format!("127.0.0.1:{port}"), "--cache-seconds", "0"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let start = Instant::now();
    while get(port).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    g.bench_function("scrape_http_10k_1m", |b| b.iter(|| get(port).expect("scrape")));
    g.finish();

    for _ in 0..1000 {
        get(port).expect("scrape");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.0.id())).expect("status");
    let line = |key: &str| status.lines().find(|l| l.starts_with(key)).unwrap_or("").to_string();
    eprintln!("metrics --listen after 1000 more scrapes: {} {}", line("VmHWM:"), line("VmRSS:"));
}

criterion_group!(metrics, benches);
criterion_main!(metrics);
