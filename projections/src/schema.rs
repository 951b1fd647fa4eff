//! Projection tables. Column names are flux-accounting's (reference §3) so
//! that admins' SQL and scripts keep working.
//!
//! Projections are disposable: their schema has its own version, kept in
//! `projection_meta`, and a file whose projections are older than the code
//! has them rebuilt from the log when it is opened for writing.

use rusqlite::Connection;

use crate::error::Error;

/// Version of the projection tables' schema.
pub const PROJECTION_SCHEMA_VERSION: i64 = 1;

/// Every projection table, in creation order (the order rebuild and
/// `rebuild --check` walk them).
pub const PROJECTION_TABLES: &[&str] = &[
    "bank_table",
    "association_table",
    "queue_table",
    "project_table",
    "priority_factor_weight_table",
    "config_table",
    "jobs",
    "usage_bins",
    "usage_pending",
    "usage_dirty",
    "usage_state",
    "projection_meta",
];

/// Secondary indexes that no apply needs for correctness, only for speed
/// (`jobs_t_inactive`: the re-binning scans of `usage::rebin`). A bulk
/// rebuild drops them after [`create`], and creates them again (running
/// [`DDL`], whose statements are all `IF NOT EXISTS`) before the first event
/// for which [`crate::usage::may_scan_jobs_by_time`] holds, or at the end.
pub const DEFERRED_INDEXES: &[&str] = &["jobs_t_inactive"];

/// DDL of the projection tables.
pub const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS bank_table (
    bank_id           INTEGER PRIMARY KEY,
    bank              TEXT    NOT NULL UNIQUE,
    active            INTEGER NOT NULL DEFAULT 1,
    parent_bank       TEXT    NOT NULL DEFAULT '',
    shares            INTEGER NOT NULL,
    job_usage         REAL    NOT NULL DEFAULT 0.0,
    priority          REAL    NOT NULL DEFAULT 0.0,
    ignore_older_than INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bank_table_parent ON bank_table(parent_bank);
CREATE TABLE IF NOT EXISTS association_table (
    creation_time    INTEGER NOT NULL,
    mod_time         INTEGER NOT NULL DEFAULT 0,
    active           INTEGER NOT NULL DEFAULT 1,
    username         TEXT    NOT NULL,
    userid           INTEGER NOT NULL,
    bank             TEXT    NOT NULL,
    default_bank     TEXT    NOT NULL,
    shares           INTEGER NOT NULL DEFAULT 1,
    job_usage        REAL    NOT NULL DEFAULT 0.0,
    fairshare        REAL    NOT NULL DEFAULT 0.5,
    max_running_jobs INTEGER NOT NULL DEFAULT 5,
    max_active_jobs  INTEGER NOT NULL DEFAULT 7,
    max_nodes        INTEGER NOT NULL DEFAULT 2147483647,
    max_cores        INTEGER NOT NULL DEFAULT 2147483647,
    queues           TEXT    NOT NULL DEFAULT '',
    projects         TEXT    NOT NULL DEFAULT '*',
    default_project  TEXT    NOT NULL DEFAULT '*',
    max_sched_jobs   INTEGER NOT NULL DEFAULT 2147483647,
    PRIMARY KEY (username, bank)
);
CREATE INDEX IF NOT EXISTS association_table_bank ON association_table(bank);
CREATE INDEX IF NOT EXISTS association_table_userid ON association_table(userid, bank);
CREATE TABLE IF NOT EXISTS queue_table (
    queue                     TEXT    NOT NULL PRIMARY KEY,
    min_nodes_per_job         INTEGER NOT NULL DEFAULT 1,
    max_nodes_per_job         INTEGER NOT NULL DEFAULT 1,
    max_time_per_job          INTEGER NOT NULL DEFAULT 60,
    priority                  INTEGER NOT NULL DEFAULT 0,
    max_running_jobs          INTEGER NOT NULL DEFAULT 100,
    max_nodes_per_assoc       INTEGER NOT NULL DEFAULT 2147483647,
    max_sched_jobs            INTEGER NOT NULL DEFAULT 2147483647,
    max_sched_nodes_per_assoc INTEGER NOT NULL DEFAULT 2147483647,
    max_sched_cores_per_assoc INTEGER NOT NULL DEFAULT 2147483647,
    max_nodes                 INTEGER NOT NULL DEFAULT 2147483647,
    max_cores                 INTEGER NOT NULL DEFAULT 2147483647
);
CREATE TABLE IF NOT EXISTS project_table (
    project_id INTEGER PRIMARY KEY,
    project    TEXT NOT NULL UNIQUE,
    usage      REAL NOT NULL DEFAULT 0.0
);
CREATE TABLE IF NOT EXISTS priority_factor_weight_table (
    factor TEXT    NOT NULL PRIMARY KEY,
    weight INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS config_table (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL,
    userid             INTEGER NOT NULL,
    username           TEXT,
    t_submit           REAL    NOT NULL,
    t_run              REAL    NOT NULL,
    t_inactive         REAL    NOT NULL,
    ranks              TEXT    NOT NULL DEFAULT '',
    R                  TEXT,
    project            TEXT    NOT NULL DEFAULT '',
    bank               TEXT    NOT NULL DEFAULT '',
    queue              TEXT    NOT NULL DEFAULT '',
    nnodes             INTEGER NOT NULL DEFAULT 0,
    ncores             INTEGER NOT NULL DEFAULT 0,
    ngpus              INTEGER NOT NULL DEFAULT 0,
    requested_duration REAL    NOT NULL DEFAULT 0.0,
    actual_duration    REAL    NOT NULL DEFAULT 0.0
);
-- Usage projection (projections/src/usage.rs, docs/usage.md).
-- Raw usage per (job userid, job bank) and absolute period p = floor((t - T0) / H).
CREATE INDEX IF NOT EXISTS jobs_t_inactive ON jobs(t_inactive);
CREATE TABLE IF NOT EXISTS usage_bins (
    userid INTEGER NOT NULL,
    bank   TEXT    NOT NULL,
    period INTEGER NOT NULL,
    value  REAL    NOT NULL DEFAULT 0.0,
    PRIMARY KEY (userid, bank, period)
) WITHOUT ROWID;
-- Jobs with a bank that no usage update has binned yet.
CREATE TABLE IF NOT EXISTS usage_pending (
    t_inactive REAL    NOT NULL,
    id         INTEGER NOT NULL,
    PRIMARY KEY (t_inactive, id)
) WITHOUT ROWID;
-- Associations (userid, bank) whose job_usage the next usage update recomputes.
CREATE TABLE IF NOT EXISTS usage_dirty (
    userid INTEGER NOT NULL,
    bank   TEXT    NOT NULL,
    PRIMARY KEY (userid, bank)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_state (
    key   TEXT NOT NULL PRIMARY KEY,
    value
);
CREATE TABLE IF NOT EXISTS projection_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value
);
"#;

/// Creates the projection tables (if missing) and records the schema
/// version. Refuses projections written by a newer fluxacct.
pub fn create(conn: &Connection) -> Result<(), Error> {
    if let Some(found) = stored_version(conn)? {
        if found > PROJECTION_SCHEMA_VERSION {
            return Err(Error::TooNew { found, supported: PROJECTION_SCHEMA_VERSION });
        }
    }
    conn.execute_batch(DDL)?;
    conn.execute(
        "INSERT OR REPLACE INTO projection_meta(key, value) VALUES ('schema_version', ?1)",
        [PROJECTION_SCHEMA_VERSION],
    )?;
    Ok(())
}

/// The projection schema version stored in the file, if any.
pub fn stored_version(conn: &Connection) -> Result<Option<i64>, Error> {
    let exists: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='projection_meta'", [], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })?;
    if !exists {
        return Ok(None);
    }
    let v =
        conn.query_row("SELECT value FROM projection_meta WHERE key='schema_version'", [], |r| r.get::<_, i64>(0)).ok();
    Ok(v)
}

/// Drops every projection table (the log is untouched).
pub fn drop_all(conn: &Connection) -> Result<(), Error> {
    for t in PROJECTION_TABLES.iter().rev() {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {t};"))?;
    }
    Ok(())
}
