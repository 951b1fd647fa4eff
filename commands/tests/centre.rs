//! The accounting centre against a real PostgreSQL: three clusters shipped
//! to one centre, exactly-once under faults, forks and tampering refused,
//! row-level security between clusters. Each test starts its own
//! throwaway server (`centre::testing::Server`); with no PostgreSQL on the
//! machine they skip with a notice. Each test that ran appends its name to
//! `FLUXACCT_CENTRE_LOG` (`.ci/run` counts them).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use centre::testing::{ran, Server};
use common::{BIN, NOW};
use fixtures::site::{generate, SiteSpec};

fn server(test: &str) -> Option<Server> {
    match Server::start() {
        Ok(s) => {
            s.create_db("centre").expect("create the centre database");
            Some(s)
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "notice: {test} skipped: no PostgreSQL server ({why})");
            None
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn fa_at(db: &Path, now: &str, args: &[&str]) -> Run {
    let out = Command::new(BIN).arg("-p").arg(db).args(args).env("FLUXACCT_NOW", now).output().expect("run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_at(db: &Path, now: &str, args: &[&str]) -> String {
    let r = fa_at(db, now, args);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

/// A synthetic cluster: a site with jobs, its usage and fair-share updated
/// at the end of its span. Sites share user and bank names by index
/// (`user000003`, `bank0001`), so different sizes give shared and
/// unshared ones.
fn cluster_site(dir: &Path, name: &str, spec: SiteSpec) -> (PathBuf, String) {
    let db = dir.join(format!("{name}.db"));
    let site = generate(&db, &spec).expect("site");
    let now = format!("{}", site.end as i64);
    ok_at(&db, &now, &["update-usage"]);
    ok_at(&db, &now, &["update-fshare"]);
    (db, now)
}

fn spec(banks: usize, associations: usize, jobs: usize, seed: u64) -> SiteSpec {
    SiteSpec { banks, associations, jobs, weeks: 2, seed }
}

fn ship(db: &Path, url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["ship", "--to", url];
    args.extend_from_slice(extra);
    fa_at(db, NOW, &args)
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

fn local_events(db: &Path) -> Vec<(i64, Vec<u8>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT seq, hash FROM events ORDER BY seq").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

fn centre_events(url: &str, cluster: &str) -> Vec<(i64, Vec<u8>)> {
    client(url)
        .query("SELECT seq, hash FROM events WHERE cluster = $1 ORDER BY seq", &[&cluster])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every event once, in order, and the centre's chain links.
fn assert_exactly_once(url: &str, cluster: &str, db: &Path) {
    assert_eq!(centre_events(url, cluster), local_events(db), "{cluster}: the centre's copy equals the ledger");
    let n = local_events(db).len() as u64;
    assert_eq!(centre::ship::verify_centre_chain(&mut client(url), cluster).unwrap(), Ok(n));
    let dup: i64 = client(url)
        .query_one("SELECT count(*) - count(DISTINCT seq) FROM events WHERE cluster = $1", &[&cluster])
        .unwrap()
        .get(0);
    assert_eq!(dup, 0);
}

fn local_json(db: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok_at(db, NOW, args)).expect("json")
}

/// seq, id, userid, username, bank, t_run, t_inactive, nnodes.
type JobTuple = (i64, u64, i64, Option<String>, String, f64, f64, i64);

#[test]
fn three_clusters_ship_to_one_centre_and_its_projections_equal_theirs() {
    let Some(pg) = server("three_clusters_ship_to_one_centre_and_its_projections_equal_theirs") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sites = [
        ("east", cluster_site(dir.path(), "east", spec(3, 12, 1500, 1)).0),
        ("west", cluster_site(dir.path(), "west", spec(2, 8, 1200, 2)).0),
        ("north", cluster_site(dir.path(), "north", spec(4, 16, 900, 3)).0),
    ];
    let admin = pg.admin_url("centre");
    for (name, db) in &sites {
        let role = format!("ship_{name}");
        let r = ship(db, &admin, &["--cluster", name, "--register", &role]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        // Each cluster ships as its own role, in small batches.
        let r = ship(db, &pg.url("centre", &role), &["--cluster", name, "--batch-events", "500", "-v"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with(&format!("ship: cluster {name}: ")), "{}", r.stdout);
    }
    let mut c = client(&admin);
    assert_eq!(ship(&sites[0].1, &admin, &["--add-reader", "reports"]).code, 0);
    let reader = pg.url("centre", "reports");
    let report = ["view-usage-report", "-s", "2023-01-01", "-e", "2024-01-01", "-S", "1,4,8"];
    for (name, db) in &sites {
        assert_exactly_once(&admin, name, db);
        // Associations: the centre's list-users is the cluster's.
        let local = ok_at(db, NOW, &["list-users", "--json"]);
        let at_centre = ok_at(db, NOW, &["list-users", "--json", "--centre", &reader, "--cluster", name]);
        assert_eq!(at_centre, local, "{name}: associations");
        let local = ok_at(db, NOW, &["list-users"]);
        let at_centre = ok_at(Path::new("/nonexistent"), NOW, &["list-users", "--centre", &reader, "--cluster", name]);
        assert_eq!(at_centre, local, "{name}: associations, as a table");
        // Usage report: the centre's sums equal the cluster's.
        let local = ok_at(db, NOW, &report);
        let mut args = report.to_vec();
        args.extend_from_slice(&["--centre", &reader, "--cluster", name]);
        assert_eq!(ok_at(db, NOW, &args), local, "{name}: usage report");
        // Job records, shares and the bank tree: the cluster's own output.
        for cmd in [
            &["view-job-records"][..],
            &["view-job-records", "-o", "{jobid} {username} {bank} {actual_duration}"][..],
            &["shares"][..],
            &["shares", "--json"][..],
            &["view-bank", "root", "--tree"][..],
        ] {
            let local = ok_at(db, NOW, cmd);
            let mut args = cmd.to_vec();
            args.extend_from_slice(&["--centre", &reader, "--cluster", name]);
            assert_eq!(ok_at(db, NOW, &args), local, "{name}: {cmd:?}");
        }
        // Banks.
        let local = local_json(db, &["list-banks", "--json"]);
        let centre_rows = centre::read::banks(&mut c, name).unwrap();
        assert_eq!(centre_rows.len(), local.as_array().unwrap().len(), "{name}: banks");
        // Job records: the centre's projection of the events equals the jobs view.
        let l = rusqlite::Connection::open(db).unwrap();
        let mut s = l
            .prepare("SELECT seq, id, userid, username, bank, t_run, t_inactive, nnodes FROM jobs ORDER BY seq")
            .unwrap();
        let local: Vec<JobTuple> = s
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let centre_jobs: Vec<_> = centre::read::job_records(&mut c, name)
            .unwrap()
            .into_iter()
            .map(|j| (j.seq, j.id, j.userid, j.username, j.bank, j.t_run, j.t_inactive, j.nnodes))
            .collect();
        assert_eq!(centre_jobs, local, "{name}: job records");
    }
    // Cross-cluster usage per user is the sum of the clusters' own figures.
    let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
    for (_, db) in &sites {
        for a in local_json(db, &["list-users", "--json"]).as_array().unwrap() {
            *sums.entry(a["username"].as_str().unwrap().to_string()).or_default() += a["job_usage"].as_f64().unwrap();
        }
    }
    let centre_sums = centre::read::usage_by_user(&mut c).unwrap();
    assert_eq!(centre_sums.len(), sums.len());
    for (user, usage) in centre_sums {
        let want = sums[&user];
        assert!((usage - want).abs() <= 1e-9 * want.abs().max(1.0), "{user}: centre {usage}, clusters {want}");
    }
    assert!(sums.values().any(|&u| u > 0.0), "the sites have usage");
    // Every cluster at once: a cluster column, each cluster's rows.
    let all = ok_at(Path::new("/nonexistent"), NOW, &["list-users", "--json", "--centre", &reader, "--cluster", "all"]);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    let n: usize =
        sites.iter().map(|(_, db)| local_json(db, &["list-users", "--json"]).as_array().unwrap().len()).sum();
    assert_eq!(all.as_array().unwrap().len(), n);
    assert_eq!(all[0]["cluster"], "east");
    let jobs = ok_at(Path::new("/nonexistent"), NOW, &["view-job-records", "--centre", &reader, "--cluster", "all"]);
    assert!(jobs.starts_with("cluster"), "{}", &jobs[..200]);
    assert_eq!(jobs.lines().count(), 1 + 1500 + 1200 + 900);
    // Shares over every cluster: one tree, the root's usage summed.
    let root_usage = |j: &serde_json::Value| j["usage"].as_f64();
    let summed: f64 = sites.iter().map(|(_, db)| root_usage(&local_json(db, &["shares", "--json"])).unwrap()).sum();
    let all: serde_json::Value = serde_json::from_str(&ok_at(
        Path::new("/nonexistent"),
        NOW,
        &["shares", "--json", "--centre", &reader, "--cluster", "all"],
    ))
    .unwrap();
    let got = root_usage(&all).unwrap();
    assert!((got - summed).abs() <= 1e-9 * summed, "root usage over clusters: {got} vs {summed}");
    let mut args = report.to_vec();
    args.extend_from_slice(&["--centre", &reader, "--cluster", "all"]);
    let text = ok_at(Path::new("/nonexistent"), NOW, &args);
    assert!(text.starts_with("cluster "), "{text}");
    for (name, _) in &sites {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} in {text}");
    }
    ran("three_clusters_ship_to_one_centre_and_its_projections_equal_theirs");
}

#[test]
fn the_shippers_job_records_and_day_usage_equal_their_projection_from_the_payloads() {
    let name = "the_shippers_job_records_and_day_usage_equal_their_projection_from_the_payloads";
    let Some(pg) = server(name) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = cluster_site(dir.path(), "east", spec(3, 12, 1500, 4));
    let admin = pg.admin_url("centre");
    let r = ship(&db, &admin, &["--cluster", "east", "--batch-events", "700"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut c = client(&admin);
    let rows = |c: &mut postgres::Client, sql: &str| -> Vec<String> {
        c.query(&format!("SELECT t::text FROM ({sql}) t ORDER BY t.seq"), &[&"east"])
            .unwrap()
            .into_iter()
            .map(|r| r.get(0))
            .collect()
    };
    let shipped = rows(
        &mut c,
        "SELECT cluster, seq, id, userid, username, bank, project, queue, t_submit, t_run, t_inactive, nnodes, \
         ncores, ngpus, requested_duration FROM job_records WHERE cluster = $1",
    );
    let projected = rows(&mut c, centre::ship::PROJECT_JOBS_SQL);
    assert_eq!(shipped.len(), 1500);
    assert_eq!(shipped, projected);
    // The per-day usage kept batch by batch is the job records' regrouped.
    let days = |c: &mut postgres::Client, sql: &str| -> Vec<(String, f64)> {
        c.query(sql, &[&"east"]).unwrap().into_iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let kept = days(
        &mut c,
        "SELECT concat_ws(' ', inactive_day, run_day, userid, bank, nnodes, username), usage FROM usage_days \
         WHERE cluster = $1 ORDER BY inactive_day, run_day, userid, bank, nnodes",
    );
    let regrouped = days(
        &mut c,
        "SELECT concat_ws(' ', floor(t_inactive / 86400)::bigint, floor(t_run / 86400)::bigint, userid, bank, nnodes, \
         max(username)), sum(nnodes * (t_inactive - t_run)) FROM job_records WHERE cluster = $1 \
         GROUP BY floor(t_inactive / 86400)::bigint, floor(t_run / 86400)::bigint, userid, bank, nnodes \
         ORDER BY 1",
    );
    let mut kept_sorted = kept.clone();
    kept_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut regrouped = regrouped;
    regrouped.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(kept_sorted.len(), regrouped.len());
    for (k, r) in kept_sorted.iter().zip(&regrouped) {
        assert_eq!(k.0, r.0);
        assert!((k.1 - r.1).abs() <= 1e-9 * r.1.abs().max(1.0), "{}: {} vs {}", k.0, k.1, r.1);
    }
    // Reports over windows cut mid-way through the records (whole days
    // from the per-day usage, the edges from the records) equal the
    // cluster's own.
    for (from, to) in [("2023-11-01", "2023-12-01"), ("2023-11-16", "2023-11-25"), ("2023-11-20", "2023-11-22")] {
        let report = ["view-usage-report", "-s", from, "-e", to, "-S", "1,2,4,8"];
        let local = ok_at(&db, NOW, &report);
        assert!(local.lines().count() > 4, "a report with rows over {from}..{to}: {local}");
        let mut args = report.to_vec();
        args.extend_from_slice(&["--centre", &admin, "--cluster", "east"]);
        assert_eq!(ok_at(&db, NOW, &args), local, "usage report {from}..{to}");
    }
    ran(name);
}

fn shipped_seq(url: &str, cluster: &str) -> i64 {
    client(url)
        .query_opt("SELECT shipped_seq FROM clusters WHERE name = $1", &[&cluster])
        .unwrap()
        .map_or(0, |r| r.get(0))
}

fn spawn_ship(db: &Path, url: &str, cluster: &str, batch: &str) -> std::process::Child {
    Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(["ship", "--to", url, "--cluster", cluster, "--batch-events", batch])
        .env("FLUXACCT_NOW", NOW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ship")
}

/// Waits until the centre holds some but not all of the cluster's events,
/// or the shipper has ended.
fn wait_mid_ship(url: &str, cluster: &str, child: &mut std::process::Child, total: i64) {
    for _ in 0..400 {
        let n = client(url)
            .query_one("SELECT count(*) FROM events WHERE cluster = $1", &[&cluster])
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if (n > 0 && n < total) || child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn every_event_is_stored_once_despite_kills_outages_reruns_and_concurrent_shippers() {
    let test = "every_event_is_stored_once_despite_kills_outages_reruns_and_concurrent_shippers";
    let Some(pg) = server(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    generate(&db, &spec(4, 40, 120_000, 5)).unwrap();
    let total = local_events(&db).len() as i64;
    let url = pg.admin_url("centre");

    // kill -9 in the middle of a large batch: what was committed stays,
    // the batch in flight is gone, the next run catches up.
    let mut child = spawn_ship(&db, &url, "big", "20000");
    wait_mid_ship(&url, "big", &mut child, total);
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = shipped_seq(&url, "big");
    assert!(after_kill < total, "killed before the end ({after_kill} of {total})");
    assert_eq!(centre::ship::verify_centre_chain(&mut client(&url), "big").unwrap(), Ok(after_kill as u64));

    // The server stops like a crash in the middle of a ship: the shipper
    // fails, the server restarts, the next run catches up.
    let mut child = spawn_ship(&db, &url, "big", "5000");
    wait_mid_ship(&url, "big", &mut child, total);
    pg.stop_immediate().unwrap();
    let out = child.wait_with_output().unwrap();
    pg.pg_start().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let mid = shipped_seq(&url, "big");
    assert!(mid >= after_kill);

    // Two shippers at once, then a third run: every event once.
    let a = spawn_ship(&db, &url, "big", "7000");
    let b = spawn_ship(&db, &url, "big", "3000");
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_exactly_once(&url, "big", &db);
    let again = ship(&db, &url, &["-v"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains(": 0 event(s) in 0 batch(es)"), "{}", again.stdout);
    assert_exactly_once(&url, "big", &db);
    ran(test);
}

/// Rewrites the payload of event `seq` and every hash from it on: a
/// forged history whose own chain is consistent.
fn rewrite_history_from(db: &Path, seq: i64) {
    let ledger = ledger::Ledger::open(db, ledger::OpenMode::ReadOnly).unwrap();
    let mut events: Vec<fluxacct_core::StoredEvent> =
        ledger.stream(fluxacct_core::Seq(seq as u64)).map(Result::unwrap).collect();
    drop(ledger);
    let mut prev = {
        let c = rusqlite::Connection::open(db).unwrap();
        let h: Vec<u8> = c.query_row("SELECT hash FROM events WHERE seq = ?1", [seq - 1], |r| r.get(0)).unwrap();
        fluxacct_core::EventHash(h.try_into().unwrap())
    };
    events[0].argv.push("--edited".into());
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update").unwrap();
    for ev in &mut events {
        ev.prev_hash = prev;
        ev.hash = ev.compute_hash();
        prev = ev.hash;
        c.execute(
            "UPDATE events SET argv = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
            rusqlite::params![
                ev.seq.0 as i64,
                serde_json::to_string(&ev.argv).unwrap(),
                &ev.prev_hash.0[..],
                &ev.hash.0[..]
            ],
        )
        .unwrap();
    }
}

#[test]
fn rewritten_or_forked_histories_are_refused_at_the_first_differing_seq() {
    let test = "rewritten_or_forked_histories_are_refused_at_the_first_differing_seq";
    let Some(pg) = server(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.admin_url("centre");

    // An event edited after shipping (the chain re-hashed from it on).
    let db = dir.path().join("east.db");
    generate(&db, &spec(2, 6, 300, 7)).unwrap();
    assert_eq!(ship(&db, &url, &["--cluster", "east"]).code, 0);
    rewrite_history_from(&db, 20);
    let r = ship(&db, &url, &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("cluster east: event seq 20 refused by the centre: "), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);

    // A ledger restored from an old backup, then extended differently.
    let db = dir.path().join("west.db");
    generate(&db, &spec(2, 6, 300, 8)).unwrap();
    let backup = dir.path().join("west-backup.db");
    std::fs::copy(&db, &backup).unwrap();
    let n = local_events(&db).len() as i64;
    ok_at(&db, NOW, &["add-bank", "--parent-bank", "root", "later1", "1"]);
    ok_at(&db, NOW, &["add-bank", "--parent-bank", "root", "later2", "1"]);
    assert_eq!(ship(&db, &url, &["--cluster", "west"]).code, 0);
    std::fs::copy(&backup, &db).unwrap();
    for f in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{f}", db.display()));
    }
    ok_at(&db, NOW, &["add-bank", "--parent-bank", "root", "other", "2"]);
    // The centre holds more than the restored ledger: refused, named.
    let r = ship(&db, &url, &["--cluster", "west"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("cluster west: event seq {} refused by the centre: ", n + 1)), "{}", r.stderr);
    ok_at(&db, NOW, &["add-bank", "--parent-bank", "root", "other2", "2"]);
    ok_at(&db, NOW, &["add-bank", "--parent-bank", "root", "other3", "2"]);
    let r = ship(&db, &url, &["--cluster", "west"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("cluster west: event seq {} refused by the centre: ", n + 1)), "{}", r.stderr);
    assert_eq!(shipped_seq(&url, "west"), n + 2, "nothing after it is stored");

    // A link broken inside a batch (each event matches its own hash, but
    // seq 10 does not follow seq 9): the centre's check refuses it, keeps
    // seqs 1-9 and nothing after.
    let db = dir.path().join("north.db");
    generate(&db, &spec(2, 6, 300, 10)).unwrap();
    {
        let ledger = ledger::Ledger::open(&db, ledger::OpenMode::ReadOnly).unwrap();
        let mut ev = ledger.event(fluxacct_core::Seq(10)).unwrap().unwrap();
        drop(ledger);
        ev.prev_hash = fluxacct_core::EventHash([7; 32]);
        ev.hash = ev.compute_hash();
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("DROP TRIGGER events_no_update").unwrap();
        c.execute(
            "UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![10, &ev.prev_hash.0[..], &ev.hash.0[..]],
        )
        .unwrap();
    }
    let r = ship(&db, &url, &["--cluster", "north"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cluster north: event seq 10 refused by the centre: its prev_hash is not the hash"),
        "{}",
        r.stderr
    );
    assert_eq!(shipped_seq(&url, "north"), 9);
    assert_eq!(centre_events(&url, "north").len(), 9);

    // Another ledger claiming a name already bound to a chain.
    let db = dir.path().join("impostor.db");
    ok_at(&db, NOW, &["create-db"]);
    let r = ship(&db, &url, &["--cluster", "east"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cluster east: the centre holds that name for another ledger"), "{}", r.stderr);
    // And a ledger keeps its name.
    let r = ship(&dir.path().join("west.db"), &url, &["--cluster", "south"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ships as cluster west"), "{}", r.stderr);
    ran(test);
}

#[test]
fn a_cluster_role_cannot_write_another_clusters_rows() {
    let test = "a_cluster_role_cannot_write_another_clusters_rows";
    let Some(pg) = server(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let admin = pg.admin_url("centre");
    for (name, seed) in [("east", 11), ("west", 12)] {
        let db = dir.path().join(format!("{name}.db"));
        generate(&db, &spec(2, 4, 50, seed)).unwrap();
        let role = format!("ship_{name}");
        assert_eq!(ship(&db, &admin, &["--cluster", name, "--register", &role]).code, 0);
        let r = ship(&db, &pg.url("centre", &role), &["--cluster", name]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let mut east = client(&pg.url("centre", "ship_east"));
    let denied = |r: Result<u64, postgres::Error>| {
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    };
    denied(east.execute(
        "INSERT INTO events (cluster, seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash) \
         VALUES ('west', 999999, 0, 0, 'x', '[]', 'BankAdded', 1, '\\x7b7d', '\\x00', '\\x00')",
        &[],
    ));
    denied(east.execute(
        "INSERT INTO associations (cluster, username, bank, userid, shares, active, job_usage, fairshare, row_json) \
         VALUES ('west', 'mallory', 'root', 1, 1, 1, 0, 1, '{}')",
        &[],
    ));
    denied(east.execute("UPDATE clusters SET name = 'x' WHERE name = 'west'", &[]));
    denied(east.execute("DELETE FROM events WHERE cluster = 'west'", &[]));
    // West's rows are not even visible to east's role, so not deletable.
    assert_eq!(east.execute("DELETE FROM associations WHERE cluster = 'west'", &[]).unwrap(), 0);
    assert_eq!(east.query_one("SELECT count(*) FROM events WHERE cluster = 'west'", &[]).unwrap().get::<_, i64>(0), 0);
    let mut c = client(&admin);
    assert!(c.query_one("SELECT count(*) FROM associations WHERE cluster = 'west'", &[]).unwrap().get::<_, i64>(0) > 0);
    // Nor can the report role write at all.
    assert_eq!(ship(&dir.path().join("east.db"), &admin, &["--add-reader", "reports"]).code, 0);
    let mut reader = client(&pg.url("centre", "reports"));
    denied(reader.execute("DELETE FROM associations", &[]));
    assert!(reader.query_one("SELECT count(*) FROM events", &[]).unwrap().get::<_, i64>(0) > 0);
    ran(test);
}

fn fairshare_of(db: &Path, now: &str, user: &str) -> f64 {
    let all = local_json(db, &["list-users", "--json"]);
    let _ = now;
    all.as_array().unwrap().iter().find(|a| a["username"] == user).unwrap()["fairshare"].as_f64().unwrap()
}

#[test]
fn heavy_use_on_one_cluster_lowers_fairshare_on_another_only_with_centre_scope() {
    let test = "heavy_use_on_one_cluster_lowers_fairshare_on_another_only_with_centre_scope";
    let Some(pg) = server(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.admin_url("centre");
    // Same banks and users on both clusters; on A, user000000 runs a lot more.
    let a = dir.path().join("a.db");
    let site = generate(&a, &spec(2, 6, 600, 31)).unwrap();
    {
        let mut l = ledger::Ledger::open(&a, ledger::OpenMode::ReadWrite).unwrap();
        let mut rng = fixtures::site::Rng::new(5);
        let mut heavy = site.clone();
        heavy.users.retain(|u| u.0 == "user000000");
        let jobs = fixtures::site::sorted_jobs(&heavy, &mut rng, site.next_job_id, 3000, site.t0, site.end - 1.0);
        fixtures::site::append_batched(&mut l, site.end - 1.0, jobs).unwrap();
    }
    let a_now = format!("{}", site.end as i64);
    ok_at(&a, &a_now, &["update-usage"]);
    assert_eq!(ship(&a, &url, &["--cluster", "a"]).code, 0);

    let (b, b_now) = cluster_site(dir.path(), "b", spec(2, 6, 600, 32));
    let local_scope = dir.path().join("b-local.db");
    std::fs::copy(&b, &local_scope).unwrap();
    let before = fairshare_of(&b, &b_now, "user000000");
    ok_at(&b, &b_now, &["add-config", "fairshare_scope=centre"]);
    ok_at(&b, &b_now, &["add-config", &format!("centre_url={url}")]);
    assert_eq!(ship(&b, &url, &["--cluster", "b"]).code, 0);

    ok_at(&b, &b_now, &["update-fshare"]);
    ok_at(&local_scope, &b_now, &["update-fshare"]);
    let centre_scope = fairshare_of(&b, &b_now, "user000000");
    assert!(centre_scope < before, "centre scope: {centre_scope} < {before}");
    assert_eq!(fairshare_of(&local_scope, &b_now, "user000000"), before, "default scope: unchanged");
    let fetched: i64 = rusqlite::Connection::open(&b)
        .unwrap()
        .query_row("SELECT count(*) FROM events WHERE kind = 'CentreUsageFetched'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fetched, 1);
    // The fetched figures are in the log: a rebuild gives the same tables, offline.
    drop(pg);
    ok_at(&b, &b_now, &["rebuild", "--check"]);
    let list = ok_at(&b, &b_now, &["list-users", "--json"]);
    ok_at(&b, &b_now, &["rebuild"]);
    assert_eq!(ok_at(&b, &b_now, &["list-users", "--json"]), list);
    // The centre unreachable: the last figures stay in force, and it says so.
    let r = fa_at(&b, &b_now, &["update-fshare"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cannot fetch the usage from the centre"), "{}", r.stderr);
    assert!(r.stderr.contains("stays in force"), "{}", r.stderr);
    assert_eq!(fairshare_of(&b, &b_now, "user000000"), centre_scope);
    ran(test);
}

#[test]
fn the_centre_schema_migrates_once_and_refuses_a_newer_one() {
    let test = "the_centre_schema_migrates_once_and_refuses_a_newer_one";
    let Some(pg) = server(test) else { return };
    let mut c = client(&pg.admin_url("centre"));
    assert_eq!(centre::schema::version(&mut c).unwrap(), 0);
    assert_eq!(centre::schema::migrate(&mut c).unwrap(), centre::schema::SCHEMA_VERSION);
    // Again: nothing to do, nothing fails.
    assert_eq!(centre::schema::migrate(&mut c).unwrap(), centre::schema::SCHEMA_VERSION);
    centre::schema::ensure(&mut c).unwrap();
    // The centre's events are write-once, even for the owner.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    generate(&db, &spec(1, 2, 5, 41)).unwrap();
    assert_eq!(ship(&db, &pg.admin_url("centre"), &["--cluster", "one"]).code, 0);
    let e = c.execute("UPDATE events SET kind = 'x' WHERE seq = 1", &[]).unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
    assert!(msg.contains("write-once"), "{msg}");
    // A schema from a newer fluxacct is refused, by name.
    c.execute("UPDATE centre_meta SET value = '99' WHERE key = 'schema_version'", &[]).unwrap();
    let r = ship(&db, &pg.admin_url("centre"), &[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the centre's schema is version 99"), "{}", r.stderr);
    ran(test);
}
