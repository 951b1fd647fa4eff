//! `flux account-service` latency, against a real broker:
//!
//! * `service_view_user_process`: one whole `flux-account --service
//!   view-user` process: CLI → broker → service → answer printed (target
//!   median < 20 ms; flux-accounting's `flux account view-user`: 99 ms).
//! * `service_10_clients`: ten such processes at once, every one answered
//!   without error (30 s of them).
//!
//! It starts its own instance (`flux start --test-size=1`) with flux-core
//! from `$FLUX_PREFIX`, `/var/cache/fluxacct/flux-core-0.88.0` or `PATH`,
//! and skips with a notice without one. The release `flux-account` comes
//! from `fluxacct_benches::flux_account_binary`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn find_flux() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLUX_PREFIX").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("bin/flux"));
    }
    let cached = Path::new("/var/cache/fluxacct/flux-core-0.88.0/bin/flux");
    if cached.is_file() {
        return Some(cached.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("flux")).find(|f| f.is_file())
}

/// A test instance running until dropped.
struct Instance {
    dir: tempfile::TempDir,
    child: Child,
    uri: String,
}

impl Instance {
    fn start(flux: &Path) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("keep"), "").expect("keep");
        let child = Command::new(flux)
            .args(["start", "--test-size=1", "sh", "-c"])
            .arg("echo \"$FLUX_URI\" > \"$D/uri.tmp\" && mv \"$D/uri.tmp\" \"$D/uri\"; while test -e \"$D/keep\"; do sleep 0.1; done")
            .env("D", d)
            .env_remove("FLUX_URI")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flux start");
        let t0 = Instant::now();
        let uri = loop {
            if let Ok(u) = std::fs::read_to_string(d.join("uri")) {
                break u.trim().to_string();
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the instance did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Instance { dir, child, uri }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join("keep"));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PATH` with the flux-core install's `bin` first, so that `flux-account`
/// finds its libflux-core beside that `flux` (as under `flux start`).
fn path_with(flux: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = flux.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).expect("PATH")
}

fn run(bin: &Path, uri: &str, args: &[&str]) -> std::process::Output {
    let flux = find_flux().expect("flux");
    Command::new(bin)
        .args(args)
        .env("FLUX_URI", uri)
        .env("PATH", path_with(&flux))
        .stdin(Stdio::null())
        .output()
        .expect("flux-account")
}

fn ok(bin: &Path, uri: &str, args: &[&str]) {
    let o = run(bin, uri, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn service(c: &mut Criterion) {
    let Some(flux) = find_flux() else {
        eprintln!("service benches skipped: no flux-core found (set FLUX_PREFIX)");
        return;
    };
    let bin = fluxacct_benches::flux_account_binary();
    let inst = Instance::start(&flux);
    let db = inst.dir.path().join("ledger.db");
    let p = db.display().to_string();
    let uri = inst.uri.clone();
    for args in [
        &["create-db"][..],
        &["add-bank", "root", "1"],
        &["add-bank", "A", "1", "--parent-bank=root"],
        &["add-user", "--username=alice", "--userid=5001", "--bank=A"],
    ] {
        let mut all = vec!["-p", &p];
        all.extend_from_slice(args);
        ok(&bin, &uri, &all);
    }
    // `-t` returns once the service registered; the service itself keeps
    // running, so it must not hold this process's output pipes.
    let st = Command::new(&bin)
        .args(["-p", &p, "service", "-t"])
        .env("FLUX_URI", &uri)
        .env("PATH", path_with(&flux))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("flux-account service -t");
    assert!(st.success(), "flux-account service -t failed");

    let mut g = c.benchmark_group("service");
    g.bench_function("service_view_user_process", |b| {
        b.iter(|| ok(&bin, &uri, &["--service", "view-user", "alice"]));
    });
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("service_10_clients", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..10 {
                    s.spawn(|| ok(&bin, &uri, &["--service", "view-user", "alice"]));
                }
            })
        });
    });
    g.finish();
    let stop = Command::new(&flux)
        .args(["python", "-c", "import flux; flux.Flux().rpc('accounting.shutdown_service').get()"])
        .env("FLUX_URI", &uri)
        .status();
    if !stop.is_ok_and(|s| s.success()) {
        eprintln!("service bench: shutdown_service failed; the instance's end stops the service");
    }
}

criterion_group!(benches, service);
criterion_main!(benches);
