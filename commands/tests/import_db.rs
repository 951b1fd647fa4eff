//! `import-db`, `export-db` and `pop-db` against real flux-accounting
//! databases (../shared/fixtures/flux-accounting-dbs, read-only) and
//! generated ones with flux-accounting's v0.60 schema. These tests FAIL
//! when ../shared is missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::BIN;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

fn fixtures_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/flux-accounting-dbs");
    assert!(d.is_dir(), "{} is missing: these tests need ../shared beside the workspace", d.display());
    d
}

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("read fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    v.sort();
    assert!(v.len() >= 31, "expected every flux-accounting fixture, found {}", v.len());
    v
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `flux-account -p DB args...` with the clock at `now`.
fn run_at(db: &Path, now: f64, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(args)
        .env("FLUXACCT_NOW", format!("{now}"))
        .output()
        .expect("run flux-account");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_at(db: &Path, now: f64, args: &[&str]) -> String {
    let r = run_at(db, now, args);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

const NOW: f64 = 1_767_225_600.0;

fn import(src: &Path, db: &Path, now: f64) -> Run {
    run_at(db, now, &["import-db", src.to_str().expect("utf8 path")])
}

fn open_ro(p: &Path) -> Connection {
    Connection::open_with_flags(
        format!("file:{}?mode=ro&immutable=1", p.display()),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("open read-only")
}

fn columns(c: &Connection, table: &str) -> Vec<String> {
    let mut s = c.prepare(&format!("PRAGMA table_info({table})")).expect("table_info");
    s.query_map([], |r| r.get::<_, String>(1)).expect("q").collect::<Result<_, _>>().expect("cols")
}

fn text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("{i}"),
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

/// Rows of `table` keyed by `key` columns, each row column → value, with
/// `defaults` for the columns the table lacks.
fn keyed(
    c: &Connection,
    table: &str,
    key: &[&str],
    want: &[(&str, &str)],
) -> BTreeMap<Vec<String>, BTreeMap<String, String>> {
    let have = columns(c, table);
    let mut out = BTreeMap::new();
    if have.is_empty() {
        return out;
    }
    let mut s = c.prepare(&format!("SELECT * FROM {table}")).expect("select");
    let names: Vec<String> = s.column_names().iter().map(|s| s.to_string()).collect();
    let mut q = s.query([]).expect("q");
    while let Some(r) = q.next().expect("row") {
        let mut row = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            row.insert(n.clone(), text(r.get_ref(i).expect("cell")));
        }
        let mut picked = BTreeMap::new();
        for (col, default) in want {
            let v = match row.get(*col) {
                Some(v) => v.clone(),
                None if *default == "=bank" => row["bank"].clone(),
                None => default.to_string(),
            };
            picked.insert(col.to_string(), v);
        }
        out.insert(key.iter().map(|k| row[*k].clone()).collect(), picked);
    }
    out
}

/// flux-accounting's columns with the defaults fluxacct documents for a
/// source whose schema lacks them (docs/migration.md).
const BANK_COLS: &[(&str, &str)] = &[
    ("bank", ""),
    ("active", "1"),
    ("parent_bank", ""),
    ("shares", ""),
    ("job_usage", "0.0"),
    ("priority", "0.0"),
    ("ignore_older_than", "0"),
];
const ASSOC_COLS: &[(&str, &str)] = &[
    ("creation_time", ""),
    ("mod_time", "0"),
    ("active", "1"),
    ("username", ""),
    ("userid", "65534"),
    ("bank", ""),
    ("default_bank", "=bank"),
    ("shares", "1"),
    ("job_usage", "0.0"),
    ("fairshare", "0.5"),
    ("max_running_jobs", "5"),
    ("max_active_jobs", "7"),
    ("max_nodes", "2147483647"),
    ("max_cores", "2147483647"),
    ("queues", ""),
    ("projects", "*"),
    ("default_project", "*"),
    ("max_sched_jobs", "2147483647"),
];
const QUEUE_COLS: &[(&str, &str)] = &[
    ("queue", ""),
    ("min_nodes_per_job", "1"),
    ("max_nodes_per_job", "1"),
    ("max_time_per_job", "60"),
    ("priority", "0"),
    ("max_running_jobs", "100"),
    ("max_nodes_per_assoc", "2147483647"),
    ("max_sched_jobs", "2147483647"),
    ("max_sched_nodes_per_assoc", "2147483647"),
    ("max_sched_cores_per_assoc", "2147483647"),
];

/// Normalises numbers so that an INTEGER 1 and a REAL 1.0 compare equal
/// where SQLite affinity differs between the files.
fn norm(m: BTreeMap<Vec<String>, BTreeMap<String, String>>) -> BTreeMap<Vec<String>, BTreeMap<String, String>> {
    m.into_iter()
        .map(|(k, row)| {
            let row = row
                .into_iter()
                .map(|(c, v)| {
                    let v = match v.parse::<f64>() {
                        Ok(f) if !v.is_empty() && v != "NULL" => format!("{f:?}"),
                        _ if v == "NULL" => String::new(),
                        _ => v,
                    };
                    (c, v)
                })
                .collect();
            (k, row)
        })
        .collect()
}

/// Compares every bank, association, queue, project, factor and config
/// value of `src` with the imported ledger `db`, column by column.
fn assert_same_site(src: &Path, db: &Path) {
    let s = open_ro(src);
    let d = open_ro(db);
    let name = src.display();
    assert_eq!(
        norm(keyed(&s, "bank_table", &["bank"], BANK_COLS)),
        norm(keyed(&d, "bank_table", &["bank"], BANK_COLS)),
        "{name}: banks"
    );
    assert_eq!(
        norm(keyed(&s, "association_table", &["username", "bank"], ASSOC_COLS)),
        norm(keyed(&d, "association_table", &["username", "bank"], ASSOC_COLS)),
        "{name}: associations"
    );
    assert_eq!(
        norm(keyed(&s, "queue_table", &["queue"], QUEUE_COLS)),
        norm(keyed(&d, "queue_table", &["queue"], QUEUE_COLS)),
        "{name}: queues"
    );
    let mut src_projects: Vec<String> =
        keyed(&s, "project_table", &["project"], &[]).into_keys().map(|k| k[0].clone()).collect();
    if !src_projects.iter().any(|p| p == "*") {
        src_projects.push("*".into());
        src_projects.sort();
    }
    let dst_projects: Vec<String> =
        keyed(&d, "project_table", &["project"], &[]).into_keys().map(|k| k[0].clone()).collect();
    assert_eq!(src_projects, dst_projects, "{name}: projects");
    let factors = |c: &Connection| norm(keyed(c, "priority_factor_weight_table", &["factor"], &[("weight", "")]));
    let mut want_factors = factors(&s);
    if want_factors.is_empty() {
        for (f, w) in [("fairshare", "100000"), ("queue", "10000"), ("bank", "0"), ("urgency", "1000")] {
            want_factors.insert(
                vec![f.into()],
                BTreeMap::from([("weight".to_string(), format!("{:?}", w.parse::<f64>().unwrap()))]),
            );
        }
    }
    assert_eq!(want_factors, factors(&d), "{name}: factors");
    let config = |c: &Connection| keyed(c, "config_table", &["key"], &[("value", "")]);
    let mut want_config = BTreeMap::new();
    for (k, v) in [
        ("priority_usage_reset_period", "2419200"),
        ("priority_decay_half_life", "604800"),
        ("decay_factor", "0.5"),
        ("node_weight", "1.0"),
        ("core_weight", "0.0"),
        ("gpu_weight", "0.0"),
        ("deny_unknown_queues", "false"),
    ] {
        want_config.insert(vec![k.to_string()], BTreeMap::from([("value".to_string(), v.to_string())]));
    }
    want_config.extend(config(&s));
    assert_eq!(want_config, config(&d), "{name}: config");
}

fn assert_chain_and_projections_ok(db: &Path) {
    let v = ok_at(db, NOW, &["verify"]);
    assert!(v.starts_with("ok:"), "{v}");
    let r = ok_at(db, NOW, &["rebuild", "--check"]);
    assert!(r.starts_with("ok:"), "{r}");
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let ic: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(ic, "ok");
}

#[test]
fn every_fixture_imports_and_equals_its_source_column_by_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    for src in all_fixtures() {
        let before = std::fs::read(&src).expect("read");
        let db = dir.path().join(format!("{}.ledger", src.file_stem().unwrap().to_string_lossy()));
        let r = import(&src, &db, NOW);
        assert_eq!(r.code, 0, "{}: {}", src.display(), r.stderr);
        assert!(r.stdout.starts_with("imported "), "{}", r.stdout);
        assert_chain_and_projections_ok(&db);
        assert_same_site(&src, &db);
        assert_eq!(std::fs::read(&src).expect("read"), before, "{} changed", src.display());
    }
    // Nothing but the ledgers was written (no temp files, no -wal/-shm).
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.retain(|n| !n.ends_with(".ledger") && !n.ends_with("-wal") && !n.ends_with("-shm"));
    assert!(names.is_empty(), "left behind: {names:?}");
}

#[test]
fn old_schemas_say_what_was_defaulted_one_line_per_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("l.db");
    let r = import(&fixture("FluxAccountingv0-10-0.db"), &db, NOW);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    for kind in [
        "config_table",
        "priority_factor_weight_table",
        "project_table",
        "queue_table",
        "bank_table",
        "association_table",
        "jobs",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&format!("import-db: defaulted: {kind}:"))).count(),
            1,
            "{kind}: {lines:?}"
        );
    }
    let r = import(&fixture("FluxAccountingv0-60-0.db"), &dir.path().join("m.db"), NOW);
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "", "a v0.60 source has every table and column: nothing is defaulted");
}

fn template() -> PathBuf {
    fixture("FluxAccountingv0-60-0.db")
}

fn generated(dir: &Path, spec: &fixtures::flux_accounting::Spec) -> PathBuf {
    let p = dir.join("fa-generated.db");
    fixtures::flux_accounting::generate(&template(), &p, spec).expect("generate");
    p
}

/// 200 associations, 5 000 jobs, usage and fair-share set.
fn spec() -> fixtures::flux_accounting::Spec {
    fixtures::flux_accounting::Spec::new(6, 200, 5000)
}

fn assoc_values(c: &Connection, col: &str) -> BTreeMap<(String, String), f64> {
    let mut s = c.prepare(&format!("SELECT username, bank, {col} FROM association_table")).expect("prep");
    s.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?))).expect("q").collect::<Result<_, _>>().expect("rows")
}

fn bank_values(c: &Connection) -> BTreeMap<String, f64> {
    let mut s = c.prepare("SELECT bank, job_usage FROM bank_table").expect("prep");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("q").collect::<Result<_, _>>().expect("rows")
}

#[test]
fn usage_and_fairshare_carry_over_to_views_and_the_plugin_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sp = spec();
    let src = generated(dir.path(), &sp);
    let db = dir.path().join("l.db");
    let t = sp.end_half_life_period + sp.half_life * 0.75;
    let r = import(&src, &db, t);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("200 associations") && r.stdout.contains("5000 job records"), "{}", r.stdout);
    assert_chain_and_projections_ok(&db);
    assert_same_site(&src, &db);
    let (s, d) = (open_ro(&src), open_ro(&db));
    let src_usage = assoc_values(&s, "job_usage");
    assert!(src_usage.values().filter(|v| **v > 0.0).count() > 150, "usage is non-trivial");
    assert_eq!(src_usage, assoc_values(&d, "job_usage"));
    assert_eq!(assoc_values(&s, "fairshare"), assoc_values(&d, "fairshare"));
    assert_eq!(bank_values(&s), bank_values(&d));
    let jobs: i64 = d.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0)).unwrap();
    assert_eq!(jobs, 5000);

    // view-user shows the source's usage.
    let v = ok_at(&db, t, &["view-user", "user00003", "-o", "{job_usage}"]);
    let shown: f64 = v.lines().nth(1).expect("a row").trim().parse().expect("a number");
    assert_eq!(shown, src_usage[&("user00003".to_string(), "bank003".to_string())]);

    // The plugin snapshot carries the source's fair-share.
    let snap_path = dir.path().join("l.snapshot");
    ok_at(&db, t, &["priority-update", "--no-flux", "--snapshot", snap_path.to_str().unwrap()]);
    let snap = fluxacct_core::snapshot::Snapshot::decode(&std::fs::read(&snap_path).unwrap()).expect("decode");
    let want = assoc_values(&s, "fairshare");
    assert_eq!(snap.associations.len(), want.len());
    for a in &snap.associations {
        let rec = snap.association_record(a);
        assert_eq!(rec.fairshare, want[&(rec.username.clone(), rec.bank.clone())], "{}", rec.username);
    }
}

#[test]
fn an_update_inside_the_current_period_keeps_the_sources_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sp = spec();
    let src = generated(dir.path(), &sp);
    let db = dir.path().join("l.db");
    let t = sp.end_half_life_period + sp.half_life * 0.6;
    assert_eq!(import(&src, &db, t).code, 0);
    // Inside the source's current period [E, E + H).
    ok_at(&db, t + 3600.0, &["update-usage"]);
    assert_chain_and_projections_ok(&db);
    let s = open_ro(&src);
    // What the source's bins give: flux-accounting's bins hold D^k·U_k.
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut q = s.prepare("SELECT username, bank, value FROM job_usage_per_association_table").unwrap();
    for row in q.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get::<_, f64>(2)?))).unwrap() {
        let (k, v) = row.unwrap();
        *want.entry(k).or_insert(0.0) += v;
    }
    // Plus the jobs the source had not counted yet (after last_job_timestamp).
    let mut q = s
        .prepare(
            "SELECT a.username, a.bank, j.ranks, j.t_inactive - j.t_run FROM jobs j \
             JOIN association_table a ON a.userid = j.userid AND a.bank = j.bank \
             JOIN job_usage_factor_table f ON f.username = a.username AND f.bank = a.bank \
             WHERE j.t_inactive > f.last_job_timestamp",
        )
        .unwrap();
    let mut uncounted = 0;
    for row in q.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get::<_, String>(2)?, r.get::<_, f64>(3)?))).unwrap() {
        let (k, ranks, dur) = row.unwrap();
        let nnodes = match ranks.split_once('-') {
            Some((a, b)) => b.parse::<f64>().unwrap() - a.parse::<f64>().unwrap() + 1.0,
            None => 1.0,
        };
        *want.entry(k).or_insert(0.0) += nnodes * dur;
        uncounted += 1;
    }
    assert!(uncounted > 500, "some jobs are not counted by the source yet: {uncounted}");
    let got = assoc_values(&open_ro(&db), "job_usage");
    assert_eq!(want.len(), got.len());
    let mut nonzero = 0;
    for (k, w) in &want {
        let g = got[k];
        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{k:?}: {g} != {w}");
        if *w > 0.0 {
            nonzero += 1;
        }
    }
    assert!(nonzero > 150);
    // And one period later everything is decayed once (D = 0.5), no more.
    ok_at(&db, t + sp.half_life, &["update-usage"]);
    let got = assoc_values(&open_ro(&db), "job_usage");
    for (k, w) in want.iter().take(40) {
        // Window of N + 1 = 5 periods: every bin stays, decayed once more.
        let w = w * 0.5;
        assert!((got[k] - w).abs() <= 1e-9 * w.max(1.0), "{k:?}: {} != {w}", got[k]);
    }
}

fn blake3_hex(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap()).to_hex().to_string()
}

#[test]
fn the_import_event_names_the_source_and_its_hash_and_causes_every_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("site.db");
    std::fs::copy(fixture("FluxAccountingv0-60-0.db"), &src).unwrap();
    let db = dir.path().join("a.db");
    assert_eq!(import(&src, &db, NOW).code, 0);
    let out = ok_at(&db, NOW, &["log", "--kind", "SiteImported", "--json"]);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().expect("one event")).unwrap();
    assert_eq!(ev["seq"], 2);
    let p = &ev["payload"];
    assert_eq!(p["blake3"], blake3_hex(&src));
    assert_eq!(p["size"], std::fs::metadata(&src).unwrap().len());
    assert_eq!(p["schema_version"], 37);
    assert_eq!(p["source"], std::fs::canonicalize(&src).unwrap().to_str().unwrap());
    assert!(p["fluxacct_version"].as_str().is_some_and(|v| !v.is_empty()));
    // Every event after it names it as the cause.
    let all = ok_at(&db, NOW, &["log", "--json"]);
    let events: Vec<serde_json::Value> = all.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(p["events"].as_u64().unwrap() as usize, events.len() - 2);
    for e in &events[2..] {
        assert_eq!(e["cause"], 2, "{e}");
    }
    assert!(events[..2].iter().all(|e| e.get("cause").is_none()));
    assert!(ok_at(&db, NOW, &["log"]).lines().last().unwrap().ends_with("(cause: seq 2)"));

    // One byte changed in the source: another hash.
    let mut bytes = std::fs::read(&src).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&src, &bytes).unwrap();
    let db2 = dir.path().join("b.db");
    assert_eq!(import(&src, &db2, NOW).code, 0);
    let out = ok_at(&db2, NOW, &["log", "--kind", "SiteImported", "--json"]);
    let ev2: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(ev2["payload"]["blake3"], blake3_hex(&src));
    assert_ne!(ev2["payload"]["blake3"], p["blake3"]);
}

#[test]
fn committed_wal_contents_are_read_and_nothing_is_written_beside_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srcdir = dir.path().join("src");
    std::fs::create_dir(&srcdir).unwrap();
    let src = srcdir.join("FluxAccounting.db");
    std::fs::copy(fixture("FluxAccountingv0-60-0.db"), &src).unwrap();
    // flux-accounting 0.60 style: WAL mode, a committed change still in the -wal.
    let writer = Connection::open(&src).unwrap();
    writer.pragma_update(None, "journal_mode", "WAL").unwrap();
    writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    writer
        .execute_batch(
            "INSERT INTO bank_table(bank, active, parent_bank, shares, job_usage, priority, ignore_older_than) \
             VALUES ('walbank', 1, 'root', 3, 0.0, 0.0, 0);",
        )
        .unwrap();
    let wal = srcdir.join("FluxAccounting.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    // The writer stays open (as a running flux-accounting would); every
    // file beside the source must be unchanged by the import.
    let listing = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&srcdir);
    let db = dir.path().join("l.db");
    let r = import(&src, &db, NOW);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(listing(&srcdir), before, "the source directory changed");
    let d = open_ro(&db);
    let shares: i64 = d.query_row("SELECT shares FROM bank_table WHERE bank = 'walbank'", [], |r| r.get(0)).unwrap();
    assert_eq!(shares, 3);
    let out = ok_at(&db, NOW, &["log", "--kind", "SiteImported", "--json"]);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(ev["payload"]["wal_blake3"], blake3_hex(&wal));
    // Closed cleanly, the file stays in WAL mode without a -wal: read as is.
    drop(writer);
    assert!(!wal.exists());
    let before = listing(&srcdir);
    let db2 = dir.path().join("l2.db");
    assert_eq!(import(&src, &db2, NOW).code, 0);
    assert_eq!(listing(&srcdir), before, "the source directory changed");
    let n: i64 =
        open_ro(&db2).query_row("SELECT count(*) FROM bank_table WHERE bank = 'walbank'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

/// Builds a flux-accounting-shaped database at `p` from the v0.60
/// template and runs `sql` on it.
fn damaged(p: &Path, sql: &str) {
    let c = fixtures::flux_accounting::copy_schema(&template(), p).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn refusals_leave_nothing_behind_and_never_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let notsqlite = d.join("notsqlite.db");
    std::fs::write(&notsqlite, b"this is not a database, just text that is long enough to have a header ....").unwrap();
    let foreign = d.join("foreign.db");
    Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    let newer = d.join("newer.db");
    damaged(&newer, "PRAGMA user_version = 99; INSERT INTO bank_table(bank, shares) VALUES ('root', 1);");
    // A NULL where a value is required: a table without the NOT NULL.
    let null_row = d.join("null.db");
    {
        let c = Connection::open(&null_row).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 37;
             CREATE TABLE bank_table (bank_id integer PRIMARY KEY AUTOINCREMENT, bank text, active int, parent_bank text, shares int, job_usage real, priority real, ignore_older_than bigint);
             CREATE TABLE association_table (creation_time bigint, mod_time bigint, active int, username tinytext, userid int, bank tinytext, default_bank tinytext, shares int);
             INSERT INTO bank_table(bank, active, parent_bank, shares, job_usage, priority, ignore_older_than) VALUES ('root', 1, '', 1, 0.0, 0.0, 0);
             INSERT INTO bank_table(bank, active, parent_bank, shares, job_usage, priority, ignore_older_than) VALUES ('A', 1, 'root', 1, 0.0, 0.0, 0);
             INSERT INTO association_table VALUES (1, 1, 1, 'alice', 1001, 'A', 'A', 1);
             INSERT INTO association_table VALUES (1, 1, 1, 'bob', 1002, 'A', 'A', NULL);",
        )
        .unwrap();
    }
    let orphan = d.join("orphan.db");
    damaged(
        &orphan,
        "INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('root', '', 1);
         INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('lost', 'nowhere', 1);",
    );
    let duplicate = d.join("dup.db");
    {
        let c = Connection::open(&duplicate).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 37;
             CREATE TABLE bank_table (bank_id integer PRIMARY KEY AUTOINCREMENT, bank text NOT NULL, active int DEFAULT 1, parent_bank text DEFAULT '', shares int NOT NULL);
             CREATE TABLE association_table (creation_time bigint NOT NULL, username tinytext NOT NULL, userid int, bank tinytext NOT NULL, default_bank tinytext NOT NULL);
             INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('root', '', 1), ('A', 'root', 1);
             INSERT INTO association_table VALUES (1, 'alice', 1001, 'A', 'A'), (2, 'alice', 1001, 'A', 'A');",
        )
        .unwrap();
    }
    // A bad job row after many good ones: found while the ledger is written.
    let badjob = d.join("badjob.db");
    {
        let mut sp = spec();
        sp.associations = 20;
        sp.jobs = 3000;
        fixtures::flux_accounting::generate(&template(), &badjob, &sp).unwrap();
        Connection::open(&badjob)
            .unwrap()
            .execute_batch("UPDATE jobs SET R = '{not json' WHERE rowid = 2500;")
            .unwrap();
    }
    let cases: &[(&Path, &str)] = &[
        (&badjob, "jobs row 2500 (id="),
        (&notsqlite, "is not a SQLite database"),
        (&foreign, "is not a flux-accounting database"),
        (&newer, "schema version 99, newer than any known"),
        (&null_row, "association_table row 2 (username=bob, bank=A): NULL in column shares"),
        (&orphan, "bank_table row 2 (bank=lost): parent bank nowhere not found in bank_table"),
        (&duplicate, "association_table row 2 (username=alice, bank=A): duplicate association"),
        (&d.join("missing.db"), "missing.db"),
    ];
    for (src, want) in cases {
        let target = d.join("target.db");
        let r = import(src, &target, NOW);
        assert_eq!(r.code, 1, "{}: {}", src.display(), r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}: {:?}", src.display(), r.stderr);
        assert!(r.stderr.contains(want), "{}: {:?}", src.display(), r.stderr);
        assert!(!target.exists(), "{}: a ledger was left at -p", src.display());
        let litter: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("target") || n.contains(".import-"))
            .collect();
        assert!(litter.is_empty(), "{}: left {litter:?}", src.display());
    }
    // An existing ledger at -p is never overwritten.
    let existing = d.join("existing.db");
    common::ok(&existing, &["create-db"]);
    common::ok(&existing, &["add-bank", "root", "1"]);
    let before = std::fs::read(&existing).unwrap();
    let r = import(&fixture("FluxAccountingv0-60-0.db"), &existing, NOW);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(std::fs::read(&existing).unwrap(), before);
}

/// bank_table.csv of an import of FluxAccountingv0-60-0.db, in
/// flux-accounting 0.60's format (reference §2.1, §7.5).
const EXPECTED_BANK_CSV: &str = "bank_id,bank,active,parent_bank,shares,job_usage,priority,ignore_older_than\r\n\
1,root,1,,1,0.0,0.0,0\r\n\
2,A,1,root,1,0.0,0.0,0\r\n";

/// association_table.csv of the same import.
const EXPECTED_ASSOC_CSV: &str = "creation_time,mod_time,active,username,userid,bank,default_bank,shares,job_usage,\
fairshare,max_running_jobs,max_active_jobs,max_nodes,max_cores,queues,projects,default_project,max_sched_jobs\r\n\
1785874447,1785874447,1,testuser,65534,A,A,1,0.0,0.5,5,7,2147483647,2147483647,,*,*,2147483647\r\n";

#[test]
fn export_db_writes_flux_accounting_csv_and_pop_db_reads_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("l.db");
    assert_eq!(import(&fixture("FluxAccountingv0-60-0.db"), &db, NOW).code, 0);
    let out = dir.path().join("csv");
    std::fs::create_dir(&out).unwrap();
    ok_at(&db, NOW, &["export-db", "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("bank_table.csv")).unwrap(), EXPECTED_BANK_CSV);
    assert_eq!(std::fs::read_to_string(out.join("association_table.csv")).unwrap(), EXPECTED_ASSOC_CSV);
    for t in [
        "association_table",
        "bank_table",
        "sqlite_sequence",
        "job_usage_factor_table",
        "t_half_life_period_table",
        "queue_table",
        "project_table",
        "jobs",
        "priority_factor_weight_table",
        "config_table",
        "job_usage_per_association_table",
    ] {
        let text = std::fs::read_to_string(out.join(format!("{t}.csv"))).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(header, columns(&open_ro(&template()), t).join(","), "{t}");
    }

    // pop-db into a fresh ledger reproduces banks and associations.
    let fresh = dir.path().join("fresh.db");
    ok_at(&fresh, NOW, &["create-db"]);
    ok_at(&fresh, NOW, &["pop-db", "-c", out.join("bank_table.csv").to_str().unwrap()]);
    ok_at(&fresh, NOW, &["pop-db", "-c", out.join("association_table.csv").to_str().unwrap()]);
    let keep_assoc: Vec<(&str, &str)> =
        ASSOC_COLS.iter().copied().filter(|(c, _)| !["creation_time", "mod_time", "job_usage"].contains(c)).collect();
    let (a, b) = (open_ro(&db), open_ro(&fresh));
    assert_eq!(keyed(&a, "bank_table", &["bank"], BANK_COLS), keyed(&b, "bank_table", &["bank"], BANK_COLS));
    assert_eq!(
        keyed(&a, "association_table", &["username", "bank"], &keep_assoc),
        keyed(&b, "association_table", &["username", "bank"], &keep_assoc)
    );
    assert_chain_and_projections_ok(&fresh);
}

#[test]
fn pop_db_is_all_or_nothing_per_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("l.db");
    ok_at(&db, NOW, &["create-db"]);
    let csv = dir.path().join("bank_table.csv");
    std::fs::write(&csv, "bank,parent_bank,shares\nroot,,1\nA,root,1\nB,nowhere,1\n").unwrap();
    let before = std::fs::read(&db).unwrap();
    let r = run_at(&db, NOW, &["pop-db", "-c", csv.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stderr.contains("bank_table.csv line 4: parent bank nowhere not found"), "{}", r.stderr);
    let c = open_ro(&db);
    let n: i64 = c.query_row("SELECT count(*) FROM bank_table", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
    let events: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 1);
    drop(c);
    let _ = before;
}

#[test]
fn round_trip_through_a_flux_accounting_shaped_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sp = spec();
    let src = generated(dir.path(), &sp);
    let db = dir.path().join("l.db");
    let t = sp.end_half_life_period + sp.half_life * 0.75;
    assert_eq!(import(&src, &db, t).code, 0);
    let out = dir.path().join("csv");
    std::fs::create_dir(&out).unwrap();
    ok_at(&db, t, &["export-db", "--out", out.to_str().unwrap()]);
    // Load the CSVs into a fresh flux-accounting v0.60 schema.
    let back = dir.path().join("back.db");
    let c = fixtures::flux_accounting::copy_schema(&template(), &back).unwrap();
    for table in [
        "bank_table",
        "association_table",
        "queue_table",
        "project_table",
        "priority_factor_weight_table",
        "config_table",
        "jobs",
    ] {
        let mut rdr = csv::Reader::from_path(out.join(format!("{table}.csv"))).unwrap();
        let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            header.join(","),
            (1..=header.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
        );
        let mut stmt = c.prepare(&sql).unwrap();
        for rec in rdr.records() {
            let rec = rec.unwrap();
            let vals: Vec<Option<String>> = rec.iter().map(|v| (!v.is_empty()).then(|| v.to_string())).collect();
            stmt.execute(rusqlite::params_from_iter(vals)).unwrap();
        }
    }
    drop(c);
    assert_same_site(&src, &back);
    let (s, b) = (open_ro(&src), open_ro(&back));
    assert_eq!(assoc_values(&s, "job_usage"), assoc_values(&b, "job_usage"));
    let jobs = |c: &Connection| -> Vec<(String, i64, f64, f64, String)> {
        let mut q =
            c.prepare("SELECT id, userid, t_run, t_inactive, bank FROM jobs ORDER BY CAST(id AS INTEGER)").unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(jobs(&s), jobs(&b));
}

#[test]
fn export_db_fairshare_emulate_prints_the_hierarchy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("l.db");
    assert_eq!(import(&fixture("small_no_tie.db"), &db, NOW).code, 0);
    let out = ok_at(&db, NOW, &["export-db", "-F"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let root = &v["root"];
    assert_eq!(root["bank"], "root");
    assert_eq!(root["shares"], 1000);
    let kids = root["children"].as_array().unwrap();
    assert_eq!(
        kids.iter().map(|k| k["bank"].as_str().unwrap()).collect::<Vec<_>>(),
        ["account1", "account2", "account3"]
    );
    assert_eq!(kids[0]["children"][0], serde_json::json!({"username": "leaf.1.1", "shares": 10000, "usage": 100.0}));
    assert!(out.starts_with("{\n  \"root\": {\n    \"bank\": \"root\",\n    \"shares\": 1000,\n    \"usage\": 0.0,\n    \"children\": ["), "{out}");
}
