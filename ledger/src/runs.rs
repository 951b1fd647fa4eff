//! When each pipeline stage last ran, kept in the ledger's bookkeeping
//! table `ledger_state` (outside the event log, not hashed), for what the
//! log cannot say: a failed run appends nothing, and some successful runs
//! append nothing either (`fetch-job-records` with no new jobs,
//! `priority-update`'s snapshot write).
//!
//! Keys per stage (`fetch-job-records`, `update-usage`, …):
//! `run.<stage>.last_ok_us` and `run.<stage>.last_error_us` (INTEGER,
//! microseconds since the epoch, from the command's clock) and
//! `run.<stage>.last_error` (TEXT, the error's one line). Other writers
//! keep their own INTEGER keys beside them (the journal follower's
//! `follower.*`), which [`integers_with_prefix`] reads.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use crate::integrity::LEDGER_STATE_DDL;
use crate::Result;

/// What the bookkeeping says about one stage's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageRuns {
    /// The last successful run's time, microseconds since the epoch.
    pub last_ok_us: Option<i64>,
    /// The last failed run's time, microseconds since the epoch.
    pub last_error_us: Option<i64>,
    /// The last failed run's error line.
    pub last_error: Option<String>,
}

fn key(stage: &str, what: &str) -> String {
    format!("run.{stage}.{what}")
}

fn has_table(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'ledger_state'", [], |_| Ok(()))
        .optional()?
        .is_some())
}

fn put(conn: &Connection, key: &str, value: Value) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO main.ledger_state(key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![key, value])?;
    Ok(())
}

/// Records that `stage` succeeded at `now_us`.
pub fn record_ok(conn: &Connection, stage: &str, now_us: i64) -> Result<()> {
    conn.execute_batch(LEDGER_STATE_DDL)?;
    put(conn, &key(stage, "last_ok_us"), Value::Integer(now_us))
}

/// Records that `stage` failed at `now_us` with `error` (one line).
pub fn record_error(conn: &Connection, stage: &str, now_us: i64, error: &str) -> Result<()> {
    conn.execute_batch(LEDGER_STATE_DDL)?;
    conn.execute_batch("SAVEPOINT run_error")?;
    let done = put(conn, &key(stage, "last_error_us"), Value::Integer(now_us))
        .and_then(|()| put(conn, &key(stage, "last_error"), Value::Text(error.to_string())));
    match done {
        Ok(()) => Ok(conn.execute_batch("RELEASE run_error")?),
        Err(e) => {
            conn.execute_batch("ROLLBACK TO run_error; RELEASE run_error")?;
            Err(e)
        }
    }
}

/// Reads what the bookkeeping says about `stage` (nothing when the file
/// has no bookkeeping yet). A value of the wrong type counts as absent.
pub fn stage_runs(conn: &Connection, stage: &str) -> Result<StageRuns> {
    if !has_table(conn)? {
        return Ok(StageRuns::default());
    }
    let get = |what: &str| -> Result<Option<Value>> {
        Ok(conn
            .prepare_cached("SELECT value FROM main.ledger_state WHERE key = ?1")?
            .query_row([key(stage, what)], |r| r.get(0))
            .optional()?)
    };
    let int = |v: Option<Value>| match v {
        Some(Value::Integer(i)) => Some(i),
        _ => None,
    };
    Ok(StageRuns {
        last_ok_us: int(get("last_ok_us")?),
        last_error_us: int(get("last_error_us")?),
        last_error: match get("last_error")? {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        },
    })
}

/// The INTEGER values of the bookkeeping keys that start with `prefix`, in
/// key order (other types are left out).
pub fn integers_with_prefix(conn: &Connection, prefix: &str) -> Result<Vec<(String, i64)>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM main.ledger_state WHERE substr(key, 1, length(?1)) = ?1 \
         AND typeof(value) = 'integer' ORDER BY key",
    )?;
    let rows = stmt.query_map([prefix], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_keeps_its_last_success_and_its_last_failure() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(stage_runs(&conn, "update-usage").unwrap(), StageRuns::default());
        record_ok(&conn, "update-usage", 10).unwrap();
        record_error(&conn, "update-usage", 20, "sqlite: disk I/O error").unwrap();
        record_ok(&conn, "update-usage", 30).unwrap();
        assert_eq!(
            stage_runs(&conn, "update-usage").unwrap(),
            StageRuns {
                last_ok_us: Some(30),
                last_error_us: Some(20),
                last_error: Some("sqlite: disk I/O error".into())
            }
        );
        assert_eq!(stage_runs(&conn, "update-fshare").unwrap(), StageRuns::default());
    }

    #[test]
    fn integer_keys_are_read_by_prefix_in_key_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(LEDGER_STATE_DDL).unwrap();
        conn.execute_batch(
            "INSERT INTO ledger_state VALUES ('follower.lag_us', 5), ('follower.batches', 2), \
             ('follower.note', 'text'), ('followers', 9), ('verified_seq', 3)",
        )
        .unwrap();
        assert_eq!(
            integers_with_prefix(&conn, "follower.").unwrap(),
            vec![("follower.batches".to_string(), 2), ("follower.lag_us".to_string(), 5)]
        );
    }
}
