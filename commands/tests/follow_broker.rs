//! The journal follower (`flux account-follow`) against a real broker:
//! records equal to `fetch-job-records`' across a kill -9 of the follower
//! and a broker restart, a malformed jobspec rejected alone, the latency of
//! a stream of 2000 jobs with the plugin loaded (printed, not asserted),
//! priorities that react without cron, and `flux account-service
//! --follow`. Each test logs itself to FLUXACCT_BROKER_LOG (`.ci/run`
//! counts them).

mod flux_instance;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flux_instance::{note, owner, ran, Instance, Setup};
use serde_json::Value;

/// A running follower (the `flux-account-follow` program), its stderr in a
/// file of the instance's directory.
struct Follower {
    child: Child,
    err: PathBuf,
}

impl Follower {
    fn start(inst: &Instance, db: &Path, name: &str) -> Follower {
        let err = inst.path(&format!("{name}.err"));
        let child = inst
            .command(env!("CARGO_BIN_EXE_flux-account-follow"))
            .arg("-p")
            .arg(db)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("follower stderr"))
            .spawn()
            .expect("starting flux-account-follow");
        Follower { child, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// kill -9.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU time of the process so far (user + system), in seconds.
    fn cpu_s(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The fields after the command name (which is in parentheses).
        let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (tick(11) + tick(12)) / 100.0
    }

    /// VmHWM of the process, in kB.
    fn vm_hwm_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ro(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open ledger");
    c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    c
}

/// The JobRecorded payloads of a ledger by job id, each with how many
/// times it was recorded.
fn recorded_payloads(db: &Path) -> BTreeMap<u64, (Value, usize)> {
    let c = ro(db);
    let mut st = c.prepare("SELECT CAST(payload AS TEXT) FROM events WHERE kind = 'JobRecorded'").expect("prepare");
    let mut out: BTreeMap<u64, (Value, usize)> = BTreeMap::new();
    for p in st.query_map([], |r| r.get::<_, String>(0)).expect("query") {
        let v: Value = serde_json::from_str(&p.expect("row")).expect("payload JSON");
        let id = v["id"].as_u64().expect("id");
        out.entry(id).or_insert((v, 0)).1 += 1;
    }
    out
}

/// Jobs recorded so far (0 while the ledger is busy).
fn count(db: &Path) -> usize {
    ro(db).query_row("SELECT count(*) FROM job_ids", [], |r| r.get::<_, i64>(0)).unwrap_or(0) as usize
}

/// Waits until the ledger holds `n` jobs (up to `secs`), else panics with
/// the follower's stderr.
fn wait_count(db: &Path, n: usize, secs: u64, f: &Follower) {
    let t0 = Instant::now();
    while count(db) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{} of {n} jobs recorded; follower: {}",
            count(db),
            f.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids of the jobs that ran (`flux jobs -a` with a `t_run`).
fn ran_ids(inst: &Instance) -> BTreeSet<u64> {
    let v: Value = serde_json::from_str(&inst.ok(&["jobs", "-a", "-c", "0", "--json"])).expect("flux jobs JSON");
    v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["state"] == "INACTIVE" && j["t_run"].as_f64().unwrap_or(0.0) > 0.0)
        .filter_map(|j| j["id"].as_u64())
        .collect()
}

/// Each job that ran is recorded exactly once, and each record equals,
/// field by field, what `fetch-job-records` records from the same instance
/// into a fresh ledger.
fn assert_same_as_fetch(inst: &Instance, follower_db: &Path) {
    let fresh = inst.path("fetched.db");
    inst.site_at(&fresh);
    let r = inst.account_at(&fresh, &["fetch-job-records"]);
    assert_eq!(r.code, 0, "fetch-job-records: {}{}", r.out, r.err);
    let followed = recorded_payloads(follower_db);
    let fetched = recorded_payloads(&fresh);
    let twice: Vec<&u64> = followed.iter().filter(|(_, (_, n))| *n != 1).map(|(id, _)| id).collect();
    assert!(twice.is_empty(), "jobs recorded more than once: {twice:?}");
    assert_eq!(followed.keys().collect::<Vec<_>>(), fetched.keys().collect::<Vec<_>>(), "followed vs fetched ids");
    assert_eq!(followed.keys().copied().collect::<BTreeSet<u64>>(), ran_ids(inst), "followed ids vs flux jobs -a");
    for (id, (v, _)) in &followed {
        assert_eq!(v, &fetched[id].0, "record of job {id}: followed vs fetched");
    }
    // The cron fetch next to the follower adds nothing.
    let again = inst.account_at(follower_db, &["fetch-job-records"]);
    assert!(again.out.starts_with("recorded 0, "), "{}{}", again.out, again.err);
    let v = inst.account_at(follower_db, &["verify"]);
    assert_eq!(v.code, 0, "verify: {}{}", v.out, v.err);
}

/// The site of [`Instance::site`] with the owner's job limits raised in
/// both banks (thousands of jobs are submitted at once).
fn site_without_job_limits(inst: &Instance) {
    inst.site();
    let me = owner().1;
    for bank in ["A", "B"] {
        inst.account_ok(&[
            "edit-user",
            &me,
            &format!("--bank={bank}"),
            "--max-active-jobs=100000",
            "--max-running-jobs=100000",
        ]);
    }
}

/// A broker whose URI survives restarts (the follower reconnects to it).
fn stable_uri_instance() -> Option<Instance> {
    Instance::start(Setup { size: 1, args: vec!["-Slocal-uri=local://@DIR@/sock".into()], ..Setup::default() })
}

#[test]
fn follower_records_each_job_once_as_fetch_does_across_kill_and_broker_restart() {
    let Some(mut inst) = stable_uri_instance() else { return };
    ran("follower_records_each_job_once_as_fetch_does_across_kill_and_broker_restart");
    site_without_job_limits(&inst);
    inst.load_plugin();
    let db = inst.db();
    // Jobs that ended before the follower ever ran.
    inst.ok(&["submit", "--quiet", "--cc=1-20", "--wait", "true"]);
    let f = Follower::start(&inst, &db, "follow1");
    wait_count(&db, 20, 60, &f);
    // kill -9 mid-stream.
    inst.ok(&["submit", "--quiet", "--cc=1-200", "--setattr=system.bank=B", "true"]);
    let t0 = Instant::now();
    while count(&db) < 60 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed_at = count(&db);
    f.kill();
    inst.ok(&["queue", "idle"]);
    // A job that never ran is not a record.
    let held = inst.submit(&["--urgency=0", "true"]);
    inst.ok(&["cancel", &held]);
    let mut f = Follower::start(&inst, &db, "follow2");
    wait_count(&db, 220, 60, &f);
    // The broker restarts (content kept in its statedir) under the
    // follower, which reconnects by itself.
    inst.restart();
    inst.load_plugin();
    inst.ok(&["submit", "--quiet", "--cc=1-50", "--wait", "true"]);
    wait_count(&db, 270, 90, &f);
    assert!(f.alive(), "the follower stopped: {}", f.stderr());
    let err = f.kill();
    assert!(err.contains("lost the job-manager's journal"), "{err}");
    assert!(err.contains("reconnected to the job-manager's journal"), "{err}");
    note(&format!("follow suite: follower killed after {killed_at} of 220 jobs; broker restarted; 270 jobs recorded"));
    assert_same_as_fetch(&inst, &db);
    let st = inst.account_ok(&["follow-status", "--json"]);
    let st: Value = serde_json::from_str(&st).expect("follow-status JSON");
    assert!(st["batches"].as_i64().unwrap_or(0) > 0, "{st}");
}

#[test]
fn follower_rejects_a_malformed_jobspec_alone_and_goes_on() {
    let Some(inst) = Instance::start(Setup { size: 1, ..Setup::default() }) else { return };
    ran("follower_rejects_a_malformed_jobspec_alone_and_goes_on");
    inst.site();
    let db = inst.db();
    let mut f = Follower::start(&inst, &db, "follow");
    let good1 = inst.submit(&["--setattr=system.bank=A", "true"]);
    // attributes.system.bank is a number: flux runs it; its record breaks
    // the ingest rules.
    let bad = inst.submit(&["--setattr=system.bank=42", "true"]);
    let good2 = inst.submit(&["--setattr=system.bank=B", "true"]);
    inst.ok(&["job", "wait-event", "-t", "60", &good2, "clean"]);
    inst.ok(&["job", "wait-event", "-t", "60", &bad, "clean"]);
    wait_count(&db, 2, 60, &f);
    let bad_dec = flux_instance::decimal(&inst, &bad) as u64;
    let t0 = Instant::now();
    let rejected = loop {
        let c = ro(&db);
        let r: Option<String> = c
            .query_row(
                "SELECT CAST(payload AS TEXT) FROM events WHERE kind = 'JobRejected' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .ok();
        if let Some(r) = r {
            break r;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no rejection: {}", f.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    let r: Value = serde_json::from_str(&rejected).expect("rejection JSON");
    assert_eq!(r["id"].as_u64(), Some(bad_dec), "{r}");
    assert!(r["reason"].as_str().unwrap_or("").contains("jobspec is not valid"), "{r}");
    let ids: BTreeSet<u64> = recorded_payloads(&db).keys().copied().collect();
    let want: BTreeSet<u64> = [&good1, &good2].iter().map(|j| flux_instance::decimal(&inst, j) as u64).collect();
    assert_eq!(ids, want);
    // It goes on.
    let after = inst.submit(&["--setattr=system.bank=A", "true"]);
    inst.ok(&["job", "wait-event", "-t", "60", &after, "clean"]);
    wait_count(&db, 3, 60, &f);
    assert!(f.alive(), "{}", f.stderr());
    // `--once` on another ledger: the backlog, then exit.
    let other = inst.path("once.db");
    inst.site_at(&other);
    let r: flux_instance::Run = inst
        .command(env!("CARGO_BIN_EXE_flux-account-follow"))
        .arg("-p")
        .arg(&other)
        .args(["--once", "--no-plugin"])
        .output()
        .expect("flux-account-follow --once")
        .into();
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.starts_with("recorded 3, already recorded 0, rejected 1"), "{}", r.out);
    assert_eq!(recorded_payloads(&other).keys().collect::<Vec<_>>(), recorded_payloads(&db).keys().collect::<Vec<_>>());
}

/// Percentiles of a list of seconds: (p50, p99, max).
fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), *v.last().expect("values"))
}

/// The time now, µs since the epoch.
fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[test]
fn follower_latency_of_2000_jobs_with_the_plugin_loaded() {
    let Some(inst) = Instance::start(Setup { size: 2, ..Setup::default() }) else { return };
    ran("follower_latency_of_2000_jobs_with_the_plugin_loaded");
    const N: usize = 2000;
    site_without_job_limits(&inst);
    inst.load_plugin();
    let db = inst.db();
    let mut f = Follower::start(&inst, &db, "follow");
    // Pollers: the ledger's head every 10 ms, the plugin's snapshot seq
    // every 25 ms (through the broker, as `flux jobtap query` asks).
    let stop = Arc::new(AtomicBool::new(false));
    let heads: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let loaded: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let head_poll = {
        let (stop, heads, db) = (stop.clone(), heads.clone(), db.clone());
        std::thread::spawn(move || {
            let c = ro(&db);
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get::<_, i64>(0)) {
                    heads.lock().expect("heads").push((now_us(), s));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // The plugin poller: `flux python`, one handle, `jobtap-query` every
    // 25 ms, printing `<µs since the epoch> <snapshot seq>` lines.
    const POLL: &str = "import flux, sys, time\n\
h = flux.Flux()\n\
while True:\n\
    try:\n\
        q = h.rpc('job-manager.jobtap-query', {'name': 'mf_priority.so'}).get()\n\
        s = (q.get('snapshot') or {}).get('seq')\n\
        if s is not None:\n\
            print(int(time.time() * 1e6), s, flush=True)\n\
    except Exception:\n\
        pass\n\
    time.sleep(0.025)\n";
    let mut poller = inst
        .command(&inst.install.flux)
        .args(["python", "-c", POLL])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("plugin poller");
    let plugin_poll = {
        let loaded = loaded.clone();
        let out = poller.stdout.take().expect("poller stdout");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut w = line.split_whitespace();
                if let (Some(Ok(t)), Some(Ok(s))) = (w.next().map(str::parse), w.next().map(str::parse)) {
                    loaded.lock().expect("loaded").push((t, s));
                }
            }
        })
    };
    let t0 = Instant::now();
    inst.ok(&["submit", "--quiet", &format!("--cc=1-{}", N / 2), "--setattr=system.bank=A", "true"]);
    inst.ok(&["submit", "--quiet", &format!("--cc=1-{}", N / 2), "--setattr=system.bank=B", "true"]);
    inst.ok(&["queue", "idle"]);
    let ran_s = t0.elapsed().as_secs_f64();
    wait_count(&db, N, 120, &f);
    // The last fair-share and snapshot after the last batch.
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Relaxed);
    head_poll.join().expect("head poller");
    let _ = poller.kill();
    let _ = poller.wait();
    plugin_poll.join().expect("plugin poller");
    assert!(f.alive(), "the follower stopped: {}", f.stderr());
    let hwm_kb = f.vm_hwm_kb();
    let cpu_s = f.cpu_s();

    // Every job that ran, recorded exactly once.
    let rec = recorded_payloads(&db);
    assert_eq!(rec.len(), N, "distinct jobs recorded");
    assert!(rec.values().all(|(_, n)| *n == 1), "a job was recorded twice");
    assert_eq!(rec.keys().copied().collect::<BTreeSet<u64>>(), ran_ids(&inst));
    // It kept up: its position is the newest job of the stream.
    let status: Value = serde_json::from_str(&inst.account_ok(&["follow-status", "--json"])).expect("status JSON");
    let newest_clean =
        rec.values().map(|(v, _)| (v["t_inactive"].as_f64().unwrap_or(0.0) * 1e6).round() as i64).max().unwrap_or(0);
    assert_eq!(status["last_clean_us"].as_i64(), Some(newest_clean), "{status}");
    assert!(hwm_kb > 0 && hwm_kb < 100 * 1024, "follower VmHWM {hwm_kb} kB");

    // (a) clean → JobRecorded committed; (b) clean → the plugin holds
    // factors computed with the job (the first fair-share computation after
    // it, loaded by the plugin when its digest changed).
    let c = ro(&db);
    let mut jobs: Vec<(i64, i64)> = Vec::new(); // (seq, clean µs)
    let mut fshares: Vec<(i64, String)> = Vec::new(); // (seq, digest)
    let mut st = c
        .prepare("SELECT seq, kind, CAST(payload AS TEXT) FROM events WHERE kind IN ('JobRecorded', 'FairshareUpdated') ORDER BY seq")
        .expect("prepare");
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)));
    for row in rows.expect("query") {
        let (seq, kind, p) = row.expect("row");
        let v: Value = serde_json::from_str(&p).expect("payload");
        if kind == "JobRecorded" {
            jobs.push((seq, (v["t_inactive"].as_f64().unwrap_or(0.0) * 1e6).round() as i64));
        } else {
            fshares.push((seq, v["digest"].as_str().unwrap_or("").to_string()));
        }
    }
    let heads = heads.lock().expect("heads").clone();
    let loaded = loaded.lock().expect("loaded").clone();
    let first_at = |polls: &[(i64, i64)], seq: i64| polls.iter().find(|(_, s)| *s >= seq).map(|(t, _)| *t);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for &(seq, clean) in &jobs {
        if let Some(t) = first_at(&heads, seq) {
            a.push((t - clean) as f64 / 1e6);
        }
        let Some(i) = fshares.iter().position(|(s, _)| *s > seq) else { continue };
        let changed = i == 0 || fshares[i - 1].1 != fshares[i].1;
        let t = if changed { first_at(&loaded, fshares[i].0) } else { first_at(&heads, fshares[i].0) };
        if let Some(t) = t {
            b.push((t - clean) as f64 / 1e6);
        }
    }
    assert_eq!(a.len(), N, "every record seen by the poller");
    let (a50, a99, amax) = percentiles(a);
    note(&format!(
        "follow suite: {N} jobs ran in {ran_s:.1} s on a --test-size=2 instance; follower VmHWM {:.1} MB, CPU {cpu_s:.1} s, {} batches",
        hwm_kb as f64 / 1024.0,
        status["batches"]
    ));
    note(&format!("follow suite: clean -> JobRecorded committed: p50 {a50:.3} s, p99 {a99:.3} s, max {amax:.3} s"));
    if b.is_empty() {
        note("follow suite: clean -> plugin factors: no fair-share computation observed");
    } else {
        let nb = b.len();
        let (b50, b99, bmax) = percentiles(b);
        note(&format!(
            "follow suite: clean -> plugin holds factors with the job ({nb} jobs): p50 {b50:.3} s, p99 {b99:.3} s, max {bmax:.3} s"
        ));
    }
}

/// The priority of a pending job.
fn priority(inst: &Instance, id: &str) -> i64 {
    inst.ok(&["jobs", "-no", "{priority}", id]).trim().parse().unwrap_or(-1)
}

#[test]
fn priority_reacts_to_a_finished_job_without_cron() {
    let Some(inst) = Instance::start(Setup { size: 2, ..Setup::default() }) else { return };
    ran("priority_reacts_to_a_finished_job_without_cron");
    inst.site();
    inst.load_plugin();
    let db = inst.db();
    let f = Follower::start(&inst, &db, "follow");
    // One node held for the whole test; the big job on the other.
    let blocker = inst.submit(&["-N1", "--exclusive", "--setattr=system.bank=B", "sleep", "300"]);
    inst.wait_event(&blocker, "start");
    let big = inst.submit(&["-N1", "--exclusive", "--setattr=system.bank=A", "sleep", "8"]);
    inst.wait_event(&big, "start");
    // Both pending jobs need both nodes: they wait behind the blocker.
    let pa = inst.submit(&["-N2", "--setattr=system.bank=A", "true"]);
    let pb = inst.submit(&["-N2", "--setattr=system.bank=B", "true"]);
    inst.wait_event(&pa, "priority");
    inst.wait_event(&pb, "priority");
    let (a0, b0) = (priority(&inst, &pa), priority(&inst, &pb));
    let big_running = inst.ok(&["jobs", "-no", "{state}", &big]).trim() == "RUN";
    if big_running {
        assert_eq!(a0, b0, "equal shares, no usage yet");
    } else {
        note("follow suite: the big job ended before the pending jobs' priorities were read (a slow machine)");
    }
    inst.wait_event(&big, "clean");
    let clean_us = inst
        .ok(&["job", "eventlog", "--format=json", &big])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["name"] == "clean")
        .and_then(|e| e["timestamp"].as_f64())
        .map(|t| (t * 1e6) as i64)
        .expect("clean event");
    let t0 = Instant::now();
    let reacted = loop {
        let (a, b) = (priority(&inst, &pa), priority(&inst, &pb));
        if a < b {
            break (now_us() - clean_us) as f64 / 1e6;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "priorities {a} vs {b}; follower: {}", f.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    note(&format!(
        "follow suite: bank A's pending job fell below bank B's {reacted:.2} s after the big job's clean (target 2 s)"
    ));
    inst.ok(&["cancel", "--all"]);
}

/// `flux-account --service ARGS` as the owner (the RPC to the service).
fn through_service(inst: &Instance, args: &[&str]) -> flux_instance::Run {
    inst.command(env!("CARGO_BIN_EXE_flux-account")).arg("--service").args(args).output().expect("flux-account").into()
}

#[test]
fn service_with_follow_answers_while_it_records_jobs_and_refuses_an_old_ledger() {
    let Some(inst) = Instance::start(Setup { size: 1, ..Setup::default() }) else { return };
    ran("service_with_follow_answers_while_it_records_jobs_and_refuses_an_old_ledger");
    site_without_job_limits(&inst);
    inst.load_plugin();
    let db = inst.db();
    let me = owner().1;

    // A ledger that needs an upgrade: refused before anything is written.
    let old = inst.path("old.db");
    inst.site_at(&old);
    {
        let c = rusqlite::Connection::open(&old).expect("open old");
        c.execute("UPDATE projection_meta SET value = 1 WHERE key = 'schema_version'", []).expect("age it");
    }
    let before = std::fs::read(&old).expect("read old");
    let r: flux_instance::Run = inst
        .command(env!("CARGO_BIN_EXE_flux-account-service"))
        .arg("-p")
        .arg(&old)
        .arg("--follow")
        .output()
        .expect("flux-account-service")
        .into();
    assert_ne!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("flux-accounting database out of date") && r.err.contains("update-db"), "{}", r.err);
    assert_eq!(std::fs::read(&old).expect("read old"), before, "the old ledger was changed");

    let err = inst.path("service.err");
    let mut child = inst
        .command(env!("CARGO_BIN_EXE_flux-account-service"))
        .arg("-p")
        .arg(&db)
        .arg("--follow")
        .stderr(std::fs::File::create(&err).expect("service.err"))
        .spawn()
        .expect("flux-account-service");
    let t0 = Instant::now();
    while through_service(&inst, &["list-banks"]).code != 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the service did not register");
        std::thread::sleep(Duration::from_millis(50));
    }
    let local = inst.account_ok(&["view-user", &me]);
    assert!(local.contains(&me), "{local}");
    inst.ok(&["submit", "--quiet", "--cc=1-200", "true"]);
    let mut answered_meanwhile = 0;
    let t0 = Instant::now();
    while count(&db) < 200 {
        let n = count(&db);
        let r = through_service(&inst, &["view-user", &me]);
        assert_eq!(r.code, 0, "view-user through the service: {}", r.err);
        assert!(r.out.contains(&me), "{}", r.out);
        if n > 0 && count(&db) < 200 {
            answered_meanwhile += 1;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "{} of 200 recorded; service: {}",
            count(&db),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
    }
    assert!(answered_meanwhile > 0, "no view-user answered while jobs were being recorded");
    assert!(matches!(child.try_wait(), Ok(None)), "the service stopped");
    let _ = child.kill();
    let _ = child.wait();
    let rec = recorded_payloads(&db);
    assert_eq!(rec.len(), 200);
    assert!(rec.values().all(|(_, n)| *n == 1));
    note(&format!(
        "follow suite: the service answered {answered_meanwhile} view-user while its follower recorded 200 jobs"
    ));
}
