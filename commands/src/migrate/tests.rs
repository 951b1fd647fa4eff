//! The import's reading of a source, pinned on small hand-made databases.

use fluxacct_core::events::*;

use super::events::{job_event, site_events, usage_event};
use super::jobs::for_each_job;
use super::site::read_site;
use super::source::{self as fa, SourceDb};

/// A flux-accounting-like source with the given DDL and rows.
fn source(sql: &str) -> (tempfile::TempDir, SourceDb) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fa.db");
    rusqlite::Connection::open(&p).unwrap().execute_batch(sql).unwrap();
    let db = SourceDb::open(&p).unwrap();
    (dir, db)
}

const V60ISH: &str = "
    PRAGMA user_version = 37;
    CREATE TABLE bank_table (bank_id integer PRIMARY KEY AUTOINCREMENT, bank text NOT NULL, active int DEFAULT 1,
        parent_bank text DEFAULT '', shares int NOT NULL, job_usage real DEFAULT 0.0);
    CREATE TABLE association_table (creation_time bigint NOT NULL, mod_time bigint DEFAULT 0, active int DEFAULT 1,
        username tinytext NOT NULL, userid int DEFAULT 65534, bank tinytext NOT NULL, default_bank tinytext NOT NULL,
        job_usage real DEFAULT 0.0, fairshare real DEFAULT 0.5);
    CREATE TABLE job_usage_factor_table (username tinytext, userid int, bank tinytext, last_job_timestamp real);
    CREATE TABLE job_usage_per_association_table (username tinytext, userid int, bank tinytext, period int, value real);
    CREATE TABLE t_half_life_period_table (cluster tinytext DEFAULT 'cluster', end_half_life_period real);
    CREATE TABLE config_table (key text PRIMARY KEY, value text NOT NULL);
    INSERT INTO config_table VALUES ('priority_decay_half_life', '100'), ('decay_factor', '0.5'), ('extra', 'x');
    INSERT INTO t_half_life_period_table VALUES ('cluster', 1000.0);
    INSERT INTO bank_table(bank, active, parent_bank, shares) VALUES ('leaf', 0, 'mid', 2), ('mid', 1, 'root', 3), ('root', 1, '', 1);
    INSERT INTO association_table VALUES (10, 20, 0, 'u', 1001, 'leaf', 'leaf', 14.0, 0.25);
    INSERT INTO job_usage_factor_table VALUES ('u', 1001, 'leaf', 990.0);
    INSERT INTO job_usage_per_association_table VALUES ('u', 1001, 'leaf', 0, 8.0), ('u', 1001, 'leaf', 1, 4.0),
        ('u', 1001, 'leaf', 2, 2.0), ('u', 1001, 'leaf', 3, 0.0);";

#[test]
fn given_a_source_when_read_then_parents_come_first_and_bins_are_undecayed() {
    let (_d, db) = source(V60ISH);
    let site = read_site(&db, 1050.0).unwrap();
    let names: Vec<&str> = site.banks.iter().map(|b| b.added.bank.as_str()).collect();
    assert_eq!(names, ["root", "mid", "leaf"]);
    assert!(!site.banks[2].active);
    let a = &site.associations[0];
    assert_eq!(a.carried.bins, vec![8.0, 8.0, 8.0]);
    assert_eq!((a.carried.creation_time, a.carried.mod_time, a.carried.job_usage), (10, 20, 14.0));
    assert_eq!(a.carried.counted_until, 990.0);
    assert_eq!(a.added.max_running_jobs, 5, "a column the schema lacks takes flux-accounting's default");
    assert_eq!(site.genesis.priority_decay_half_life, 100.0);
    assert!(site.defaulted.iter().any(|d| d.starts_with("association_table: columns not in this schema")));
}

#[test]
fn periods_are_anchored_on_the_sources_end_half_life_period() {
    let (_d, db) = source(V60ISH);
    // After E: the current period is [E, E + H).
    assert_eq!(read_site(&db, 1050.0).unwrap().genesis.t0, 1000.0);
    assert_eq!(read_site(&db, 1000.0).unwrap().as_of, 1000.0);
    // Before E (a source that has not rolled over yet): [E − H, E).
    assert_eq!(read_site(&db, 950.0).unwrap().genesis.t0, 900.0);
}

#[test]
fn when_decided_then_rows_come_in_dependency_order_and_disables_last() {
    let (_d, db) = source(V60ISH);
    let site = read_site(&db, 1050.0).unwrap();
    let kinds: Vec<&str> = site_events(&site).iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "ConfigEdited",
            "ConfigEdited",
            "ConfigAdded",
            "BankAdded",
            "BankAdded",
            "BankAdded",
            "AssociationAdded",
            "BankDisabled",
            "AssociationDisabled"
        ]
    );
    let Event::UsageImported(u) = usage_event(&site) else { panic!("not UsageImported") };
    assert_eq!(u.as_of, 1000.0);
    assert_eq!(u.banks.len(), 3);
}

#[test]
fn the_streaming_job_reader_gives_what_job_from_json_gives() {
    let r = r#"{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-3","gpu":"0"}}]}}"#;
    let (_d, db) = source(&format!(
        "{V60ISH};
        CREATE TABLE jobs (id char(16) PRIMARY KEY NOT NULL, userid integer NOT NULL, t_submit real NOT NULL,
            t_run real NOT NULL, t_inactive real NOT NULL, ranks text NOT NULL, R text NOT NULL, jobspec text NOT NULL,
            project text, bank text, requested_duration real DEFAULT 0.0, actual_duration real DEFAULT 0.0);
        INSERT INTO jobs VALUES ('100', 1001, 1700000001.0, 1700000002.0, 1700000010.0, '0-1', '{r}',
            '{{\"attributes\":{{\"system\":{{\"bank\":\"specbank\",\"queue\":\"q\",\"duration\":60}}}}}}', NULL, NULL, NULL, 8.0);
        INSERT INTO jobs VALUES ('200', 1002, 1700000001.5, 0.0, 1700000003.0, '', '', '', 'p', 'b', 30.0, 0.0);
        INSERT INTO jobs VALUES ('ƒ2', 1003, 1700000001.0, 1700000002.0, 1700000005.0, '0', '{r}', '{{\"attributes\":\"odd\"}}', '', '', 1.0, 3.0);"
    ));
    let mut fast = Vec::new();
    let n = for_each_job(db.conn(), |j| {
        fast.push(j);
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 3);
    let mut slow = Vec::new();
    fa::for_each_row(db.conn(), "jobs", &["id"], |row| {
        slow.push(job_event(&row)?);
        Ok(())
    })
    .unwrap();
    assert_eq!(fast, slow);
    assert_eq!((fast[0].bank.as_str(), fast[0].queue.as_str(), fast[0].requested_duration), ("specbank", "q", 60.0));
    assert_eq!((fast[0].nnodes, fast[0].ncores, fast[0].ngpus), (2, 8, 2));
    assert_eq!(fast[2].id, 1);
}

#[test]
fn damaged_rows_are_named_by_table_and_row() {
    let (_d, db) =
        source(&format!("{V60ISH}; INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('root', '', 1);"));
    assert_eq!(read_site(&db, 0.0).unwrap_err().to_string(), "import-db: bank_table row 4 (bank=root): duplicate bank");
    let (_d, db) =
        source(&format!("{V60ISH}; INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('r2', '', 1);"));
    assert_eq!(
        read_site(&db, 0.0).unwrap_err().to_string(),
        "import-db: bank_table row 4 (bank=r2): a second root bank (the root is root)"
    );
    let (_d, db) = source(&format!("{V60ISH}; INSERT INTO association_table(creation_time, username, bank, default_bank) VALUES (1, 'v', 'nope', 'nope');"));
    assert_eq!(
        read_site(&db, 0.0).unwrap_err().to_string(),
        "import-db: association_table row 2 (username=v, bank=nope): bank nope not found in bank_table"
    );
}
