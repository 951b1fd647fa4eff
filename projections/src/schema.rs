//! Projection tables. Column names are flux-accounting's (reference §3) so
//! that admins' SQL and scripts keep working.
//!
//! Projections are disposable: their schema has its own version, kept in
//! `projection_meta`, and a file whose projections are older than the code
//! has them rebuilt from the log when it is opened for writing.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;

/// Version of the projection tables' schema. 2: `jobs` is a view over the
/// log instead of a table, and `usage_pending` carries what binning needs.
/// 3: `config_table` shows `decay_factor` and the weights as
/// flux-accounting does (`1.0`, `0.5`).
/// 4: the expression index `events_job_t_inactive` (over a JSON float, not
/// stable across SQLite versions) is replaced by the table `job_times`.
/// 5: the log's expression index `events_job_id` (a `json_extract` of
/// every job record's payload on each append) is replaced by the table
/// `job_ids`.
/// 6: allocations (`allocation_table`, `allocation_transactions`,
/// `allocation_charges`, `queue_charge_factor`, the view
/// `allocation_balance`).
pub const PROJECTION_SCHEMA_VERSION: i64 = 6;

/// Every projection table, in creation order (the order rebuild and
/// `rebuild --check` walk them).
pub const PROJECTION_TABLES: &[&str] = &[
    "bank_table",
    "association_table",
    "queue_table",
    "project_table",
    "priority_factor_weight_table",
    "config_table",
    "usage_bins",
    "usage_pending",
    "usage_dirty",
    "usage_state",
    "allocation_table",
    "allocation_transactions",
    "allocation_charges",
    "queue_charge_factor",
    "projection_meta",
];

/// The job records are not copied into a projection table: the log holds
/// them (one `JobRecorded` event each, hash-chained and write-once), and
/// `jobs` is a view over it with flux-accounting's column names. So a
/// rebuild has nothing to rewrite for them, and a job record cannot be
/// edited by hand without breaking the chain.
pub const PROJECTION_VIEWS: &[&str] = &["jobs", "allocation_balance"];

/// The view `jobs`: one row per `JobRecorded` event of `events`. Every
/// column is read from the event's JSON payload; `actual_duration` is
/// derived as the apply path derived it.
pub const JOBS_VIEW_BODY: &str = "SELECT
    json_extract(CAST(payload AS TEXT), '$.id')                 AS id,
    seq                                                         AS seq,
    json_extract(CAST(payload AS TEXT), '$.userid')             AS userid,
    json_extract(CAST(payload AS TEXT), '$.username')           AS username,
    json_extract(CAST(payload AS TEXT), '$.t_submit')           AS t_submit,
    json_extract(CAST(payload AS TEXT), '$.t_run')              AS t_run,
    json_extract(CAST(payload AS TEXT), '$.t_inactive')         AS t_inactive,
    coalesce(json_extract(CAST(payload AS TEXT), '$.ranks'), '') AS ranks,
    CAST(payload AS TEXT) -> '$.r'                              AS R,
    json_extract(CAST(payload AS TEXT), '$.project')            AS project,
    json_extract(CAST(payload AS TEXT), '$.bank')               AS bank,
    json_extract(CAST(payload AS TEXT), '$.queue')              AS queue,
    json_extract(CAST(payload AS TEXT), '$.nnodes')             AS nnodes,
    json_extract(CAST(payload AS TEXT), '$.ncores')             AS ncores,
    json_extract(CAST(payload AS TEXT), '$.ngpus')              AS ngpus,
    json_extract(CAST(payload AS TEXT), '$.requested_duration') AS requested_duration,
    CASE WHEN json_extract(CAST(payload AS TEXT), '$.t_run') > 0
          AND json_extract(CAST(payload AS TEXT), '$.t_inactive') >= json_extract(CAST(payload AS TEXT), '$.t_run')
         THEN json_extract(CAST(payload AS TEXT), '$.t_inactive') - json_extract(CAST(payload AS TEXT), '$.t_run')
         ELSE 0.0 END                                           AS actual_duration
FROM events WHERE kind = 'JobRecorded'";

/// The partial index of `JobRejected` events on the log (the ids
/// `fetch-job-records` does not reject twice, `view-job-records
/// --rejected`); it indexes the log and is kept by SQLite with it, in the
/// same transaction as each append.
///
/// Two log indexes of earlier schemas are dropped: `events_job_t_inactive`
/// (projection schema 3) and `events_job_id` (schema 5), both expression
/// indexes over the JSON payload. SQLite parsed every job record's whole
/// payload for each on every append (about a fifth of a bulk ingest's
/// writer thread), and one over a JSON *float* (`t_inactive`) is not even
/// stable across SQLite versions (3.40 reports `row N missing from index`,
/// later ones `stores an imprecise floating-point value`), so it failed
/// `PRAGMA integrity_check`. Job ids go through [`JOB_IDS_DDL`] and ranges
/// of `t_inactive` through [`JOB_TIMES_DDL`] instead: integer tables
/// written from the decoded record ([`JobIndexWriter`]).
pub const EVENT_INDEXES_DDL: &str = "
DROP INDEX IF EXISTS main.events_job_id;
DROP INDEX IF EXISTS main.events_job_t_inactive;
CREATE INDEX IF NOT EXISTS main.events_job_rejected ON events(seq) WHERE kind = 'JobRejected';
";

/// `job_ids`: one row per `JobRecorded` event, its job id ([`id_key`]) and
/// its seq, for lookups by job id (duplicate checks of
/// `fetch-job-records`, `view-job-records --jobid`). Kept like
/// [`JOB_TIMES_DDL`]: derived from the log alone, written with each job
/// record, filled from the log when new ([`fill_job_index`], the upgrade
/// from projection schema 4), compared with the log and rewritten by
/// `rebuild`.
pub const JOB_IDS_DDL: &str = "
CREATE TABLE IF NOT EXISTS main.job_ids (
    id  INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (id, seq)
) WITHOUT ROWID;
";

/// A job id as stored in `job_ids`: its 64 bits as a signed integer, so
/// that every id is exact (ids from 2^63 up, which a JSON reader such as
/// `json_extract` gives as a float, come out negative). Ranges of ids are
/// ranges of keys only below 2^63.
pub fn id_key(id: u64) -> i64 {
    id as i64
}

/// `job_times`: one row per `JobRecorded` event, its `t_inactive` as
/// integer microseconds ([`t_us`], computed in Rust from the decoded
/// record) and its seq. Integers compare exactly in every SQLite version,
/// and [`t_us`] is monotone, so `t_inactive_us BETWEEN t_us(a) AND t_us(b)`
/// selects every job with `a <= t_inactive <= b` (and possibly a few just
/// outside, which readers drop after decoding the record).
///
/// Like the log's indexes it is derived from the log alone, kept with the
/// log and not part of the canonical projection state: the append path
/// writes a row with each job record ([`JobIndexWriter`]), so a projection
/// rebuild leaves it alone; [`create`] fills it when it is new
/// ([`fill_job_index`], the upgrade from projection schema 2), and the
/// `rebuild` command rewrites it when it differs from the log.
pub const JOB_TIMES_DDL: &str = "
CREATE TABLE IF NOT EXISTS main.job_times (
    t_inactive_us INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (t_inactive_us, seq)
) WITHOUT ROWID;
";

/// A time in epoch seconds as integer microseconds, rounded down
/// (saturating; NaN gives 0). Monotone: `a <= b` implies `t_us(a) <= t_us(b)`.
pub fn t_us(t: f64) -> i64 {
    (t * 1e6).floor() as i64
}

/// The job id and `t_inactive` of a stored `JobRecorded` payload: read
/// straight from a version-1 payload without building the whole record,
/// older or newer versions through [`fluxacct_core::events::Event::decode`].
pub fn job_key(version: u32, payload: &[u8]) -> Result<(u64, f64), Error> {
    /// The fields needed.
    #[derive(serde::Deserialize)]
    struct Key {
        id: u64,
        t_inactive: f64,
    }
    if version == 1 {
        if let Ok(k) = serde_json::from_slice::<Key>(payload) {
            return Ok((k.id, k.t_inactive));
        }
    }
    match fluxacct_core::events::Event::decode("JobRecorded", version, payload)? {
        fluxacct_core::events::Event::JobRecorded(j) => Ok((j.id, j.t_inactive)),
        other => Err(Error::Event(fluxacct_core::EventError::Decode {
            kind: "JobRecorded".into(),
            version,
            what: format!("decoded as {}", other.kind()),
        })),
    }
}

/// The rows of `job_times` and `job_ids` that the log of `conn` produces
/// for its events with `seq <= upto`, each list in its table's key order:
/// (`t_inactive_us`, `seq`) and (`id`, `seq`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobIndexRows {
    /// `job_times` rows.
    pub times: Vec<(i64, i64)>,
    /// `job_ids` rows.
    pub ids: Vec<(i64, i64)>,
}

/// The seqs of the job records whose payload SQLite's JSON functions
/// cannot read (so that any query over the `jobs` view fails with
/// `malformed JSON`), in seq order: a reader of `jobs` names them and
/// excludes them (`seq NOT IN (SELECT value FROM json_each(?))`). A full
/// scan of the log's job records: for the error path only.
pub fn unreadable_job_records(conn: &Connection) -> Result<Vec<i64>, Error> {
    let mut stmt = conn.prepare(
        "SELECT seq FROM events WHERE kind = 'JobRecorded' AND NOT json_valid(CAST(payload AS TEXT)) ORDER BY seq",
    )?;
    let seqs = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
    Ok(seqs)
}

/// The [`JobIndexRows`] of the log of `conn` up to `upto`, in one read of
/// the log.
pub fn job_index_of_log(conn: &Connection, upto: i64) -> Result<JobIndexRows, Error> {
    let mut out = JobIndexRows::default();
    let mut stmt = conn.prepare(
        "SELECT seq, version, payload FROM main.events WHERE kind = 'JobRecorded' AND seq <= ?1 ORDER BY seq",
    )?;
    let mut q = stmt.query([upto])?;
    while let Some(r) = q.next()? {
        let seq: i64 = r.get(0)?;
        let version = u32::try_from(r.get::<_, i64>(1)?)
            .map_err(|_| Error::Apply { seq: seq as u64, what: "version out of range".into() })?;
        // A record whose payload cannot be read has no index rows: the
        // replay skips it and names its seq (`replay::history`), and so do
        // the re-binnings that read jobs through this index.
        let payload = match r.get_ref(2)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b,
            _ => continue,
        };
        let Ok((id, t)) = job_key(version, payload) else { continue };
        out.times.push((t_us(t), seq));
        out.ids.push((id_key(id), seq));
    }
    out.times.sort_unstable();
    out.ids.sort_unstable();
    Ok(out)
}

/// Rewrites `job_times` and `job_ids` from the log of `conn` (every
/// `JobRecorded` event); returns the number of job records.
pub fn fill_job_index(conn: &Connection) -> Result<u64, Error> {
    replace_job_index(conn, &job_index_of_log(conn, i64::MAX)?)
}

/// Replaces the rows of `job_times` and `job_ids` by `rows` (as
/// [`job_index_of_log`] gives them); returns the number of job records.
pub fn replace_job_index(conn: &Connection, rows: &JobIndexRows) -> Result<u64, Error> {
    conn.execute("DELETE FROM main.job_times", [])?;
    conn.execute("DELETE FROM main.job_ids", [])?;
    write_job_index(conn, rows)?;
    Ok(rows.ids.len() as u64)
}

/// Inserts `rows` (in key order, as [`job_index_of_log`] gives them).
pub fn write_job_index(conn: &Connection, rows: &JobIndexRows) -> Result<(), Error> {
    insert_pairs(conn, "job_times", "t_inactive_us", &rows.times)?;
    insert_pairs(conn, "job_ids", "id", &rows.ids)
}

/// Writes the `job_times` and `job_ids` rows of the job records appended
/// in a transaction: buffered, then inserted many rows per statement by
/// [`JobIndexWriter::flush`], which must run before anything reads those
/// tables and before the commit.
pub struct JobIndexWriter<'c> {
    conn: &'c Connection,
    rows: JobIndexRows,
}

impl<'c> JobIndexWriter<'c> {
    /// A writer on `conn` (the transaction's connection).
    pub fn new(conn: &'c Connection) -> Self {
        JobIndexWriter { conn, rows: JobIndexRows::default() }
    }

    /// Records the job record at `seq`: job `id`, ended at `t_inactive`.
    pub fn add(&mut self, seq: u64, id: u64, t_inactive: f64) {
        self.rows.times.push((t_us(t_inactive), seq as i64));
        self.rows.ids.push((id_key(id), seq as i64));
    }

    /// Inserts the rows added so far.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.rows.ids.is_empty() {
            return Ok(());
        }
        self.rows.times.sort_unstable();
        self.rows.ids.sort_unstable();
        write_job_index(self.conn, &self.rows)?;
        self.rows.times.clear();
        self.rows.ids.clear();
        Ok(())
    }
}

/// Inserts (`key`, `seq`) rows into `table`.
fn insert_pairs(conn: &Connection, table: &str, key: &str, rows: &[(i64, i64)]) -> Result<(), Error> {
    insert_many(conn, &format!("main.{table}({key}, seq)"), 2, 128, rows, |stmt, at, (k, seq)| {
        stmt.raw_bind_parameter(at, k)?;
        stmt.raw_bind_parameter(at + 1, seq)
    })
}

/// Inserts `rows` into `into` (`table(col, …)`, `cols` columns), `per`
/// rows per INSERT statement and the rest one by one: for narrow tables,
/// running a statement costs more than the row it adds. `bind(stmt, at,
/// row)` binds a row's `cols` values from parameter `at` on.
pub(crate) fn insert_many<T>(
    conn: &Connection,
    into: &str,
    cols: usize,
    per: usize,
    rows: &[T],
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> Result<(), Error> {
    let sql = |n: usize| {
        let one = format!("({})", vec!["?"; cols].join(", "));
        format!("INSERT INTO {into} VALUES {}", vec![one; n].join(", "))
    };
    let mut chunks = rows.chunks_exact(per);
    if rows.len() >= per {
        let mut stmt = conn.prepare_cached(&sql(per))?;
        for chunk in chunks.by_ref() {
            for (i, row) in chunk.iter().enumerate() {
                bind(&mut stmt, i * cols + 1, row)?;
            }
            stmt.raw_execute()?;
        }
    }
    let mut stmt = conn.prepare_cached(&sql(1))?;
    for row in chunks.remainder() {
        bind(&mut stmt, 1, row)?;
        stmt.raw_execute()?;
    }
    Ok(())
}

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
-- Usage projection (projections/src/usage.rs, docs/usage.md).
-- Raw usage per (job userid, job bank) and absolute period p = floor((t - T0) / H).
CREATE TABLE IF NOT EXISTS usage_bins (
    userid INTEGER NOT NULL,
    bank   TEXT    NOT NULL,
    period INTEGER NOT NULL,
    value  REAL    NOT NULL DEFAULT 0.0,
    PRIMARY KEY (userid, bank, period)
) WITHOUT ROWID;
-- Jobs with a bank that no usage update has binned yet, with what binning
-- needs (seq: of the job's JobRecorded event).
CREATE TABLE IF NOT EXISTS usage_pending (
    t_inactive REAL    NOT NULL,
    seq        INTEGER NOT NULL,
    userid     INTEGER NOT NULL,
    bank       TEXT    NOT NULL,
    t_run      REAL    NOT NULL,
    nnodes     INTEGER NOT NULL,
    ncores     INTEGER NOT NULL,
    ngpus      INTEGER NOT NULL,
    PRIMARY KEY (t_inactive, seq)
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

/// DDL of the allocation tables and the `allocation_balance` view
/// (`crate::allocation` keeps and reads them; docs/allocations.md).
pub const ALLOCATION_DDL: &str = "
CREATE TABLE IF NOT EXISTS allocation_table (
    name            TEXT    NOT NULL PRIMARY KEY,
    bank            TEXT    NOT NULL,
    project         TEXT,
    unit            TEXT    NOT NULL,
    allocated_milli INTEGER NOT NULL,
    charged_milli   INTEGER NOT NULL DEFAULT 0,
    start_s         INTEGER NOT NULL,
    end_s           INTEGER NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    exhausted       TEXT,
    added_seq       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS allocation_transactions (
    seq          INTEGER NOT NULL PRIMARY KEY,
    allocation   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    amount_milli INTEGER NOT NULL,
    at_s         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS allocation_transactions_by_name ON allocation_transactions(allocation, seq);
CREATE TABLE IF NOT EXISTS allocation_charges (
    seq          INTEGER NOT NULL PRIMARY KEY,
    allocation   TEXT    NOT NULL,
    jobid        INTEGER NOT NULL,
    userid       INTEGER NOT NULL,
    ended_us     INTEGER NOT NULL,
    amount_milli INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_charge_factor (
    queue         TEXT NOT NULL PRIMARY KEY,
    charge_factor REAL NOT NULL
);
CREATE VIEW IF NOT EXISTS allocation_balance AS
    SELECT name, bank, project, unit, allocated_milli, charged_milli, 0 AS reserved_milli,
           allocated_milli - charged_milli AS remaining_milli, start_s, end_s, active
    FROM allocation_table;
";

/// Creates the projection tables (if missing) and records the schema
/// version. Refuses projections written by a newer fluxacct.
pub fn create(conn: &Connection) -> Result<(), Error> {
    if let Some(found) = stored_version(conn)? {
        if found > PROJECTION_SCHEMA_VERSION {
            return Err(Error::TooNew { found, supported: PROJECTION_SCHEMA_VERSION });
        }
    }
    conn.execute_batch(DDL)?;
    conn.execute_batch(ALLOCATION_DDL)?;
    // The log's indexes and the `jobs` view over it, where `main` holds the
    // log. A replay connection reads the log through a temporary view
    // `events`, and `crate::write::scratch` gives it a temporary `jobs`.
    if object_type(conn, "main", "events")?.as_deref() == Some("table") {
        conn.execute_batch(EVENT_INDEXES_DDL)?;
        let existed =
            object_type(conn, "main", "job_times")?.is_some() && object_type(conn, "main", "job_ids")?.is_some();
        conn.execute_batch(JOB_TIMES_DDL)?;
        conn.execute_batch(JOB_IDS_DDL)?;
        if !existed {
            // A ledger from before projection schema 5 (or whose log was
            // written without the append path): fill them from the log, once.
            fill_job_index(conn)?;
        }
        conn.execute_batch(&format!("CREATE VIEW IF NOT EXISTS main.jobs AS {JOBS_VIEW_BODY}"))?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO projection_meta(key, value) VALUES ('schema_version', ?1)",
        [PROJECTION_SCHEMA_VERSION],
    )?;
    Ok(())
}

/// The type (`table`, `view`, ...) of the object `name` in `schema`.
pub fn object_type(conn: &Connection, schema: &str, name: &str) -> Result<Option<String>, Error> {
    let sql = format!("SELECT type FROM {schema}.sqlite_master WHERE name = ?1");
    Ok(conn.query_row(&sql, [name], |r| r.get::<_, String>(0)).optional()?)
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
    Ok(conn
        .query_row("SELECT value FROM projection_meta WHERE key='schema_version'", [], |r| r.get::<_, i64>(0))
        .optional()?)
}

/// Drops every projection table and view of the `main` schema (the log
/// and its indexes are untouched). Also drops a `jobs` table left by
/// projection schema 1.
pub fn drop_all(conn: &Connection) -> Result<(), Error> {
    for v in PROJECTION_VIEWS {
        match object_type(conn, "main", v)?.as_deref() {
            Some("view") => conn.execute_batch(&format!("DROP VIEW main.{v};"))?,
            Some("table") => conn.execute_batch(&format!("DROP TABLE main.{v};"))?,
            _ => {}
        }
    }
    for t in PROJECTION_TABLES.iter().rev() {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS main.{t};"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_version_reports_a_failing_read_instead_of_absent() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(stored_version(&conn).unwrap(), None);
        create(&conn).unwrap();
        assert_eq!(stored_version(&conn).unwrap(), Some(PROJECTION_SCHEMA_VERSION));
        // A value that is not a version is an error, not "no projections".
        conn.execute("UPDATE projection_meta SET value = 'x' WHERE key = 'schema_version'", []).unwrap();
        assert!(stored_version(&conn).is_err());
    }
}
