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
        // Banks.
        let local = local_json(db, &["list-banks", "--json"]);
        let centre_rows = centre::read::banks(&mut c, name).unwrap();
        assert_eq!(centre_rows.len(), local.as_array().unwrap().len(), "{name}: banks");
        // Job records: the centre's projection of the events equals the jobs view.
        let l = rusqlite::Connection::open(db).unwrap();
        let mut s = l
            .prepare("SELECT seq, id, userid, username, bank, t_run, t_inactive, nnodes FROM jobs ORDER BY seq")
            .unwrap();
        let local: Vec<(i64, u64, i64, Option<String>, String, f64, f64, i64)> = s
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
    let mut args = report.to_vec();
    args.extend_from_slice(&["--centre", &reader, "--cluster", "all"]);
    let text = ok_at(Path::new("/nonexistent"), NOW, &args);
    assert!(text.starts_with("cluster "), "{text}");
    for (name, _) in &sites {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} in {text}");
    }
    ran("three_clusters_ship_to_one_centre_and_its_projections_equal_theirs");
}
