//! Black-box tests of job ingest, usage, fair-share and the usage reports
//! through the `flux-account` binary.
//! Time is fixed with `FLUXACCT_NOW`; nothing sleeps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_flux-account");
/// T0 of every test ledger.
const T0: f64 = 1_600_000_000.0;
/// One week: the default half-life.
const H: f64 = 604_800.0;

struct Site {
    _dir: tempfile::TempDir,
    db: PathBuf,
    dir: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_at(db: &Path, now: f64, args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.arg("-p").arg(db).args(args).env("FLUXACCT_NOW", format!("{now}"));
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn flux-account");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    let o = child.wait_with_output().expect("wait");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("acct.db");
        let s = Site { db, dir: dir.path().to_path_buf(), _dir: dir };
        s.ok(T0, &["create-db"]);
        s
    }

    fn run(&self, now: f64, args: &[&str]) -> Out {
        run_at(&self.db, now, args, None)
    }

    fn ok(&self, now: f64, args: &[&str]) -> String {
        let o = self.run(now, args);
        assert_eq!(o.code, 0, "{args:?} failed: {}{}", o.stdout, o.stderr);
        o.stdout
    }

    fn bank(&self, bank: &str, parent: &str, shares: i64) {
        let shares = shares.to_string();
        if parent.is_empty() {
            self.ok(T0, &["add-bank", bank, &shares]);
        } else {
            self.ok(T0, &["add-bank", bank, &shares, "--parent-bank", parent]);
        }
    }

    fn user(&self, user: &str, bank: &str, uid: i64, shares: i64) {
        let (uid, shares) = (uid.to_string(), shares.to_string());
        self.ok(T0, &["add-user", "--username", user, "--bank", bank, "--userid", &uid, "--shares", &shares]);
    }

    /// Writes JSON lines and ingests them with `--from-file`.
    fn ingest(&self, now: f64, jobs: &[Value]) -> Out {
        let path = self.dir.join(format!("jobs-{}.jsonl", jobs.first().and_then(|j| j["id"].as_u64()).unwrap_or(0)));
        let text: String = jobs.iter().map(|j| format!("{j}\n")).collect();
        std::fs::write(&path, text).expect("write jobs");
        self.run(now, &["fetch-job-records", "--from-file", path.to_str().expect("utf8 path")])
    }

    fn ingest_ok(&self, now: f64, jobs: &[Value]) {
        let o = self.ingest(now, jobs);
        assert_eq!(o.code, 0, "ingest failed: {}", o.stderr);
    }

    fn assoc(&self, now: f64, user: &str) -> Value {
        let text = self.ok(now, &["view-user", user]);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("view-user JSON: {e}: {text}"));
        v[0].clone()
    }

    fn job_usage(&self, now: f64, user: &str) -> f64 {
        self.assoc(now, user)["job_usage"].as_f64().expect("job_usage")
    }

    fn fairshare(&self, now: f64, user: &str) -> f64 {
        self.assoc(now, user)["fairshare"].as_f64().expect("fairshare")
    }

    fn bank_usage(&self, now: f64, bank: &str) -> f64 {
        let text = self.ok(now, &["view-bank", bank]);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("view-bank JSON: {e}: {text}"));
        v[0]["job_usage"].as_f64().expect("bank job_usage")
    }

    fn event_count(&self) -> i64 {
        let c = rusqlite::Connection::open(&self.db).expect("open db");
        c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count")
    }
}

/// A job of `nnodes` nodes that ran `elapsed` seconds and ended at `end`.
fn job(id: u64, uid: i64, bank: &str, nnodes: i64, elapsed: f64, end: f64) -> Value {
    json!({"id": id, "userid": uid, "bank": bank, "t_submit": end - elapsed - 10.0, "t_run": end - elapsed,
           "t_inactive": end, "nnodes": nnodes})
}

/// Middle of absolute period p.
fn mid(p: i64) -> f64 {
    T0 + p as f64 * H + H / 2.0
}

/// Acceptance 1: seed 003's worked example through the CLI: 16000
/// node-seconds in the current period plus 128, 64, 64, 16 in the four past
/// ones give job_usage 16089.
#[test]
fn seed_003_job_usage_16089() {
    let s = Site::new();
    s.bank("root", "", 1);
    s.bank("C", "root", 1);
    s.user("user1002", "C", 1002, 1);
    let now = mid(4) + 3000.0;
    let mut jobs = Vec::new();
    // The five jobs of the current period, as in the seed (2, 2, 2, 1, 1 nodes, 2000 s).
    for (i, n) in [2, 2, 2, 1, 1].iter().enumerate() {
        let end = mid(4) + i as f64;
        let mut j = job(102 + i as u64, 1002, "C", *n, 2000.0, end);
        // R agrees with nnodes (the ingest rejects a record whose counts
        // contradict its R).
        let ranks = if *n == 1 { "0" } else { "0-1" };
        j["R"] = json!({"version": 1, "execution": {"R_lite": [{"rank": ranks, "children": {"core": "0"}}]}});
        j["ncores"] = json!(n);
        jobs.push(j);
    }
    // Past periods: raw usage 128, 64, 64, 16 (k = 1..4), one from R only.
    jobs.push(job(201, 1002, "C", 1, 128.0, mid(3)));
    jobs.push(job(202, 1002, "C", 2, 32.0, mid(2)));
    let mut r_only = job(203, 1002, "C", 0, 32.0, mid(1));
    r_only.as_object_mut().expect("object").remove("nnodes");
    r_only["R"] = json!({"version": 1, "execution": {"R_lite": [{"rank": "0-1", "children": {"core": "0-3"}}]}});
    jobs.push(r_only);
    jobs.push(job(204, 1002, "C", 1, 16.0, mid(0)));
    s.ingest_ok(now, &jobs);
    assert_eq!(s.job_usage(now, "user1002"), 0.0, "no usage before the first update-usage");
    s.ok(now, &["update-usage"]);
    assert_eq!(s.job_usage(now, "user1002"), 16089.0);
    assert_eq!(s.bank_usage(now, "C"), 16089.0);
    assert_eq!(s.bank_usage(now, "root"), 16089.0);
    // view-user -J: 0.60's per-period rows, decayed values adding up to job_usage.
    let j: Value = serde_json::from_str(&s.ok(now, &["view-user", "-J", "user1002"])).expect("-J json");
    let rows = j.as_array().expect("a list");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1], json!({"username": "user1002", "userid": 1002, "bank": "C", "period": 1, "value": 64.0}));
    let periods: Vec<f64> = rows.iter().map(|r| r["value"].as_f64().expect("period value")).collect();
    assert_eq!(periods, vec![16000.0, 64.0, 16.0, 8.0, 1.0]);
    assert_eq!(periods.iter().sum::<f64>(), 16089.0);
    let t = s.ok(now, &["view-user", "--job-usage", "--parsable", "user1002"]);
    assert_eq!(t.lines().next(), Some("username | userid | bank | period | value  "));
    assert_eq!(t.lines().nth(2), Some("user1002 | 1002   | C    | 0      | 16000.0"));
    let f = s.ok(now, &["view-user", "-J", "-o", "{bank}:{period}={value}", "user1002"]);
    assert_eq!(f.lines().nth(2), Some("C:1=64.0"));
    let e = s.run(now, &["view-user", "-J", "--fields", "bank", "user1002"]);
    assert!(e.code != 0 && e.stderr.contains("--fields"), "-J with --fields is a usage error: {}", e.stderr);
    // The drop-in executable does the same (idempotent update in the same period).
    let alias = Path::new(BIN).with_file_name("flux-account-update-usage");
    let o = Command::new(alias)
        .arg("-p")
        .arg(&s.db)
        .env("FLUXACCT_NOW", format!("{}", now + 1.0))
        .output()
        .expect("run alias");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.job_usage(now, "user1002"), 16089.0);
    // An update earlier than the last one (the clock went back) is recorded
    // with a note, and computes as of its own time: the same period here.
    let o = s.run(now - 10.0, &["update-usage"]);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("behind the last usage update"), "{}", o.stderr);
    assert_eq!(s.job_usage(now, "user1002"), 16089.0);
}

/// Acceptance 2: a lone job of usage 100 decays 100, 50, 25, 12.5 (and
/// 6.25 with N = 4) and is gone once older than N periods.
#[test]
fn decay_by_period() {
    let s = Site::new();
    s.bank("root", "", 1);
    s.bank("A", "root", 1);
    s.user("u", "A", 5001, 1);
    s.ingest_ok(mid(0), &[job(1, 5001, "A", 1, 100.0, mid(0) - 10.0)]);
    let expected = [100.0, 50.0, 25.0, 12.5, 6.25, 0.0, 0.0];
    for (p, want) in expected.iter().enumerate() {
        let now = mid(p as i64);
        s.ok(now, &["update-usage"]);
        assert_eq!(s.job_usage(now, "u"), *want, "period {p}");
        assert_eq!(s.bank_usage(now, "A"), *want, "bank, period {p}");
    }
}

/// Acceptance 3: clear-usage zeroes a bank's associations, jobs older than
/// --ignore-older-than stay out; with core_weight 1 and node_weight 0 usage
/// is core-seconds.
#[test]
fn clear_usage_and_weights() {
    let s = Site::new();
    s.bank("root", "", 1);
    s.bank("A", "root", 1);
    s.bank("B", "root", 1);
    s.user("ua", "A", 6001, 1);
    s.user("ub", "B", 6002, 1);
    let now = mid(0);
    s.ingest_ok(now, &[job(1, 6001, "A", 2, 100.0, now - 1000.0), job(2, 6002, "B", 1, 50.0, now - 1000.0)]);
    s.ok(now, &["update-usage"]);
    assert_eq!(s.job_usage(now, "ua"), 200.0);
    s.ok(now, &["clear-usage", "A"]);
    assert_eq!(s.job_usage(now, "ua"), 0.0);
    assert_eq!(s.bank_usage(now, "A"), 0.0);
    assert_eq!(s.job_usage(now, "ub"), 50.0, "other banks are untouched");
    assert_eq!(s.bank_usage(now, "root"), 50.0);
    assert_eq!(s.fairshare(now, "ua"), 0.5);

    // --ignore-older-than: a late-recorded job that ended before TS stays out,
    // one that ended after counts.
    let later = now + 100.0;
    let ts = format!("{}", (now - 500.0) as i64);
    s.ok(later, &["clear-usage", "A", "--ignore-older-than", &ts]);
    s.ingest_ok(later, &[job(3, 6001, "A", 1, 10.0, now - 600.0), job(4, 6001, "A", 1, 7.0, now - 400.0)]);
    s.ok(later, &["update-usage"]);
    assert_eq!(s.job_usage(later, "ua"), 7.0);
    assert_eq!(s.bank_usage(later, "root"), 57.0);

    // Weights: core-seconds.
    let w = Site::new();
    w.bank("root", "", 1);
    w.bank("A", "root", 1);
    w.user("u", "A", 7001, 1);
    let now = mid(0);
    let mut j = job(1, 7001, "A", 2, 100.0, now - 1000.0);
    j["ncores"] = json!(16);
    w.ingest_ok(now, &[j]);
    w.ok(now, &["update-usage"]);
    assert_eq!(w.job_usage(now, "u"), 200.0, "node-seconds by default");
    w.ok(now, &["edit-config", "core_weight=1"]);
    w.ok(now, &["edit-config", "node_weight=0"]);
    w.ok(now + 1.0, &["update-usage"]);
    assert_eq!(w.job_usage(now + 1.0, "u"), 1600.0, "core-seconds");
}

/// Builds a tree through the CLI, gives each association its usage (one
/// one-node job of `usage` seconds), runs update-usage and update-fshare,
/// and returns each user's fair-share.
fn fairshare_via_cli(banks: &[(&str, &str, i64)], users: &[(&str, &str, i64, f64)]) -> Vec<(String, f64)> {
    let s = Site::new();
    for (b, p, sh) in banks {
        s.bank(b, p, *sh);
    }
    let now = mid(0);
    let mut jobs = Vec::new();
    for (i, (u, b, sh, usage)) in users.iter().enumerate() {
        let uid = 10_000 + i as i64;
        s.user(u, b, uid, *sh);
        if *usage > 0.0 {
            jobs.push(job(i as u64 + 1, uid, b, 1, *usage, now - 5000.0));
        }
    }
    s.ingest_ok(now, &jobs);
    s.ok(now, &["update-usage"]);
    for (u, _, _, usage) in users {
        assert_eq!(s.job_usage(now, u), *usage, "{u}");
    }
    s.ok(now, &["update-fshare"]);
    // The drop-in executable gives the same values.
    let alias = Path::new(BIN).with_file_name("flux-account-update-fshare");
    let o = Command::new(alias).arg("-p").arg(&s.db).env("FLUXACCT_NOW", format!("{now}")).output().expect("alias");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    users.iter().map(|(u, ..)| (u.to_string(), s.fairshare(now, u))).collect()
}

fn small_banks() -> Vec<(&'static str, &'static str, i64)> {
    vec![("root", "", 1000), ("account1", "root", 1000), ("account2", "root", 100), ("account3", "root", 10)]
}

fn check(got: Vec<(String, f64)>, expected: &[(&str, f64)]) {
    for (u, want) in expected {
        let v = got.iter().find(|g| g.0 == *u).map(|g| g.1);
        assert_eq!(v, Some(*want), "{u} in {got:?}");
    }
}

/// Acceptance 4: the spec's small_no_tie tree, exactly.
#[test]
fn fairshare_small_no_tie_cli() {
    let got = fairshare_via_cli(
        &small_banks(),
        &[
            ("leaf.1.1", "account1", 10000, 100.0),
            ("leaf.1.2", "account1", 1000, 11.0),
            ("leaf.1.3", "account1", 100000, 10.0),
            ("leaf.2.1", "account2", 100000, 8.0),
            ("leaf.2.2", "account2", 10000, 3.0),
            ("leaf.3.1", "account3", 100, 0.0),
            ("leaf.3.2", "account3", 10, 1.0),
        ],
    );
    check(
        got,
        &[
            ("leaf.3.1", 1.0),
            ("leaf.3.2", 0.857143),
            ("leaf.2.1", 0.714286),
            ("leaf.2.2", 0.571429),
            ("leaf.1.3", 0.428571),
            ("leaf.1.1", 0.285714),
            ("leaf.1.2", 0.142857),
        ],
    );
}

/// Acceptance 4: small_tie (account1 and account2 tie).
#[test]
fn fairshare_small_tie_cli() {
    let got = fairshare_via_cli(
        &small_banks(),
        &[
            ("leaf.1.1", "account1", 10000, 100.0),
            ("leaf.1.2", "account1", 1000, 10.0),
            ("leaf.1.3", "account1", 100000, 10.0),
            ("leaf.2.1", "account2", 10000, 10.0),
            ("leaf.2.2", "account2", 1000, 1.0),
            ("leaf.2.3", "account2", 100000, 1.0),
            ("leaf.3.1", "account3", 100, 0.0),
            ("leaf.3.2", "account3", 10, 1.0),
        ],
    );
    check(
        got,
        &[
            ("leaf.3.1", 1.0),
            ("leaf.3.2", 0.875),
            ("leaf.1.3", 0.75),
            ("leaf.2.3", 0.75),
            ("leaf.1.1", 0.5),
            ("leaf.1.2", 0.5),
            ("leaf.2.1", 0.5),
            ("leaf.2.2", 0.5),
        ],
    );
}

/// Acceptance 4: small_tie_all (all three banks tie).
#[test]
fn fairshare_small_tie_all_cli() {
    let mut banks = small_banks();
    banks[3].2 = 10000;
    let got = fairshare_via_cli(
        &banks,
        &[
            ("leaf.1.1", "account1", 10000, 100.0),
            ("leaf.1.2", "account1", 1000, 10.0),
            ("leaf.1.3", "account1", 100000, 10.0),
            ("leaf.2.1", "account2", 10000, 10.0),
            ("leaf.2.2", "account2", 1000, 1.0),
            ("leaf.2.3", "account2", 100000, 1.0),
            ("leaf.3.1", "account3", 10000, 1000.0),
            ("leaf.3.2", "account3", 1000, 100.0),
            ("leaf.3.3", "account3", 100000, 100.0),
        ],
    );
    let t = 0.666667;
    check(
        got,
        &[
            ("leaf.1.3", 1.0),
            ("leaf.2.3", 1.0),
            ("leaf.3.3", 1.0),
            ("leaf.1.1", t),
            ("leaf.1.2", t),
            ("leaf.2.1", t),
            ("leaf.2.2", t),
            ("leaf.3.1", t),
            ("leaf.3.2", t),
        ],
    );
}

/// Acceptance 4: flux-accounting's t1053 multi-level tree.
#[test]
fn fairshare_t1053_cli() {
    let got = fairshare_via_cli(
        &[("root", "", 1), ("A", "root", 1), ("B", "root", 1), ("C", "root", 1), ("D", "C", 1), ("E", "C", 1)],
        &[
            ("u1", "A", 1, 20.0),
            ("u2", "A", 1, 20.0),
            ("u3", "A", 1, 10.0),
            ("u4", "B", 1, 13.0),
            ("u5", "B", 1, 12.0),
            ("u6", "D", 1, 25.0),
            ("u7", "E", 1, 10.0),
        ],
    );
    check(
        got,
        &[
            ("u5", 1.0),
            ("u4", 0.857143),
            ("u7", 0.714286),
            ("u6", 0.571429),
            ("u3", 0.428571),
            ("u1", 0.285714),
            ("u2", 0.285714),
        ],
    );
}

/// Acceptance 5: ingest is idempotent, and a malformed record is rejected
/// alone, naming the line.
#[test]
fn idempotent_ingest_and_bad_records_rejected_alone() {
    let s = Site::new();
    s.bank("root", "", 1);
    s.bank("A", "root", 1);
    let now = mid(0);
    let jobs: Vec<Value> = (1..=5).map(|i| job(i, 1, "A", 1, 10.0, now - 100.0)).collect();
    s.ingest_ok(now, &jobs);
    let n = s.event_count();
    s.ingest_ok(now, &jobs);
    assert_eq!(s.event_count(), n, "a second ingest of the same jobs appends nothing");
    // The same jobs as a `flux jobs --json` document on stdin: still nothing new.
    let doc = json!({ "jobs": jobs }).to_string();
    let o = run_at(&s.db, now, &["fetch-job-records", "--from-file", "-", "-v"], Some(&doc));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "recorded 0, already recorded 5, rejected 0\n");
    assert_eq!(s.event_count(), n);

    // Line 3 lacks t_inactive: it alone is rejected (one JobRejected), the
    // others are recorded, and the exit status is 3.
    let path = s.dir.join("bad.jsonl");
    let good1 = job(10, 1, "A", 1, 10.0, now - 100.0);
    let good2 = job(12, 1, "A", 1, 10.0, now - 100.0);
    std::fs::write(&path, format!("{good1}\n\n{{\"id\": 11, \"userid\": 1}}\n{good2}\n")).expect("write");
    let o = s.run(now, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert_eq!(o.stdout, "recorded 2, already recorded 0, rejected 1: line 3: missing t_inactive; 2 records match no association: uid 1 ×2\n");
    assert_eq!(s.event_count(), n + 3);
    // Not JSON at all: rejected alone too (the line cannot name a job).
    std::fs::write(&path, format!("{good1}\nnot json\n")).expect("write");
    let o = s.run(now, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stdout.starts_with("recorded 0, already recorded 1, rejected 1: line 2: invalid JSON"), "{}", o.stdout);
    let n = s.event_count();

    // The job-archive copy path, and the drop-in executable.
    let archive = s.dir.join("archive.sqlite");
    let c = rusqlite::Connection::open(&archive).expect("archive");
    c.execute_batch(
        "CREATE TABLE jobs (id char(16), userid int, t_submit real, t_run real, t_inactive real, ranks text, \
         R text, jobspec text);",
    )
    .expect("ddl");
    let r = r#"{"version":1,"execution":{"R_lite":[{"rank":"0-2","children":{"core":"0-1"}}]}}"#;
    let spec = r#"{"attributes":{"system":{"bank":"A","duration":60}}}"#;
    // Times before the ingest's clock (`now`): later ones are refused.
    let (t_submit, t_run, t_inactive) = (now - 100.0, now - 99.0, now - 89.0);
    c.execute(
        "INSERT INTO jobs VALUES ('77', 9, ?3, ?4, ?5, '0-2', ?1, ?2)",
        rusqlite::params![r, spec, t_submit, t_run, t_inactive],
    )
    .expect("row");
    c.execute(
        "INSERT INTO jobs VALUES ('78', 9, ?2, 0.0, ?3, '', '', ?1)",
        rusqlite::params![spec, t_submit, t_inactive],
    )
    .expect("row");
    drop(c);
    let alias = Path::new(BIN).with_file_name("flux-account-fetch-job-records");
    let o = Command::new(alias)
        .arg("-p")
        .arg(&s.db)
        .arg("--copy")
        .arg(&archive)
        .env("FLUXACCT_NOW", format!("{now}"))
        .output()
        .expect("alias");
    assert!(
        o.status.success(),
        "{:?}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(s.event_count(), n + 1, "the row with an empty R is skipped");
    let rec = s.ok(now, &["view-job-records", "-j", "77", "-o", "{jobid.dec}|{nnodes}|{bank}|{requested_duration}"]);
    assert_eq!(rec, "jobid.dec|nnodes|bank|requested_duration\n77|3|A|60.0\n");

    // Without Flux and without a source: one line naming the two others.
    let o = s.run(now, &["fetch-job-records"]);
    if o.code != 0 {
        assert_eq!(o.code, 1);
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
        assert!(o.stderr.contains("--from-file") && o.stderr.contains("--copy"), "{}", o.stderr);
    }
}

/// Acceptance 6: view-usage-report on the reference §7.3 data.
#[test]
fn view_usage_report_reference_totals() {
    let s = Site::new();
    // 2024-12-10 12:00 UTC, well inside the report window.
    let t = 1_733_832_000.0;
    s.ingest_ok(
        t,
        &[
            job(1, 50001, "A", 1, 180.0, t),
            job(2, 50001, "A", 2, 60.0, t + 1000.0),
            job(3, 50001, "A", 4, 60.0, t + 2000.0),
            job(4, 50002, "A", 1, 420.0, t + 3000.0),
            job(5, 50003, "B", 1, 300.0, t + 4000.0),
            job(6, 50003, "", 1, 999.0, t + 5000.0),
            job(7, 50001, "A", 0, 5.0, t + 6000.0),
        ],
    );
    let now = 1_735_732_800.0; // 2025-01-01 12:00 UTC
    let rep = |args: &[&str]| {
        let mut a = vec!["view-usage-report", "--start", "12/01/24"];
        a.extend_from_slice(args);
        s.ok(now, &a)
    };
    assert_eq!(
        rep(&[]),
        "association(nodesec)              total\n\
         A:50001                          540.00\n\
         A:50002                          420.00\n\
         B:50003                          300.00\n\
         TOTAL                           1260.00\n"
    );
    assert_eq!(
        rep(&["--report-type", "byuser"]),
        "user(nodesec)                     total\n\
         50001                            540.00\n\
         50002                            420.00\n\
         50003                            300.00\n\
         TOTAL                           1260.00\n"
    );
    assert_eq!(
        rep(&["--report-type", "bybank"]),
        "bank(nodesec)                     total\n\
         A                                960.00\n\
         B                                300.00\n\
         TOTAL                           1260.00\n"
    );
    assert_eq!(
        rep(&["--time-unit", "hour"]),
        "association(nodehour)             total\n\
         A:50001                            0.15\n\
         A:50002                            0.12\n\
         B:50003                            0.08\n\
         TOTAL                              0.35\n"
    );
    assert_eq!(
        rep(&["-u", "50001", "--job-size-bins=1,2,3,4"]),
        "association(nodesec)                 1+             2+             3+             4+\n\
         A:50001                          180.00         120.00           0.00         240.00\n\
         TOTAL                            180.00         120.00           0.00         240.00\n"
    );
    // A job smaller than the smallest bin is counted, not a crash.
    assert_eq!(
        rep(&["-u", "50001", "-S", "2,4"]),
        "association(nodesec)                 2+             4+\n\
         A:50001                          300.00         240.00\n\
         TOTAL                            300.00         240.00\n"
    );
    // Jobs that ended before --start are out.
    assert_eq!(
        s.ok(now, &["view-usage-report", "--start", "12/11/24", "-r", "bybank"]),
        "bank(nodesec)                     total\nTOTAL                              0.00\n"
    );
}

/// view-job-records filters and the shares table after an update.
#[test]
fn job_records_and_shares() {
    let s = Site::new();
    s.bank("root", "", 1);
    s.bank("A", "root", 1);
    s.user("u", "A", 8001, 1);
    let now = mid(0);
    let mut j1 = job(1, 8001, "A", 1, 100.0, now - 1000.0);
    j1["requested_duration"] = json!(120.0);
    let j2 = job(2, 8001, "A", 2, 50.0, now - 500.0);
    s.ingest_ok(now, &[j1, j2]);
    let out = s.ok(now, &["view-job-records"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("jobid | username | userid | t_submit"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("ƒ2 "), "{out}");
    let one = |args: &[&str]| {
        let mut a = vec!["view-job-records", "-o", "{jobid.dec}"];
        a.extend_from_slice(args);
        s.ok(now, &a)
    };
    assert_eq!(one(&["-d", "> 100"]), "jobid.dec\n1\n");
    assert_eq!(one(&["-e", "< 80"]), "jobid.dec\n2\n");
    assert_eq!(one(&["-D", ">= 20"]), "jobid.dec\n1\n");
    assert_eq!(one(&["-j", "ƒ3"]), "jobid.dec\n2\n");
    assert_eq!(one(&["-u", "u"]), "jobid.dec\n1\n2\n");
    assert_eq!(one(&["-u", "nobody"]), "jobid.dec\n");
    let after = format!("{}", now - 800.0);
    assert_eq!(one(&["-a", &after]), "jobid.dec\n2\n");
    let o = s.run(now, &["view-job-records", "-o", "{nope}"]);
    assert!(o.stderr.contains("Unknown format field: nope"), "{}", o.stderr);
    let o = s.run(now, &["view-job-records", "-d", "<100"]);
    assert!(o.stderr.contains("expression expects one operator and one value"), "{}", o.stderr);

    s.ok(now, &["update-usage"]);
    s.ok(now, &["update-fshare"]);
    let sh = s.ok(now, &["shares", "--parsable"]);
    assert_eq!(sh, "Account|Username|RawShares|RawUsage|Fairshare\nroot||1|200|\n A||1|200|\n  A|u|1|200|1\n");
    let chart = s.ok(now, &["show-usage", "associations"]);
    assert!(chart.starts_with("u / A | █"), "{chart}");
    let svg = s.dir.join("chart.svg");
    s.ok(now, &["show-usage", "banks", "--svg", svg.to_str().expect("utf8")]);
    assert!(std::fs::read_to_string(&svg).expect("svg").starts_with("<svg"));
}
