//! The journal follower's position and heartbeat, kept in the ledger's
//! bookkeeping (`ledger_state`, outside the event log, not hashed): where
//! the follower is and when it last did something, so that an admin (and
//! the metrics) can see a stalled follower. Every value is an INTEGER.

use rusqlite::{Connection, OptionalExtension};

use crate::integrity::LEDGER_STATE_DDL;
use crate::Result;

/// Numeric id of the newest job the follower recorded.
pub const LAST_JOB_ID: &str = "follower.last_job_id";
/// That job's `clean` time, microseconds since the epoch.
pub const LAST_CLEAN_US: &str = "follower.last_clean_us";
/// Wall time of the follower's last batch or idle tick, microseconds.
pub const HEARTBEAT_US: &str = "follower.heartbeat_us";
/// Commit time minus `clean` time of the last batch's newest job, µs.
pub const LAG_US: &str = "follower.lag_us";
/// Batches committed (monotonic).
pub const BATCHES: &str = "follower.batches";

/// The follower's bookkeeping; `None`: never written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowerState {
    /// [`LAST_JOB_ID`] (stored as the id's two's-complement i64).
    pub last_job_id: Option<u64>,
    /// [`LAST_CLEAN_US`].
    pub last_clean_us: Option<i64>,
    /// [`HEARTBEAT_US`].
    pub heartbeat_us: Option<i64>,
    /// [`LAG_US`].
    pub lag_us: Option<i64>,
    /// [`BATCHES`].
    pub batches: Option<i64>,
}

fn has_table(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'ledger_state'", [], |_| Ok(()))
        .optional()?
        .is_some())
}

fn get(conn: &Connection, key: &str) -> Result<Option<i64>> {
    let v: Option<rusqlite::types::Value> = conn
        .prepare_cached("SELECT value FROM main.ledger_state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(match v {
        Some(rusqlite::types::Value::Integer(i)) => Some(i),
        _ => None,
    })
}

fn set(conn: &Connection, key: &str, value: i64) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO main.ledger_state(key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![key, value])?;
    Ok(())
}

/// Reads the follower's bookkeeping (all `None` when there is none).
pub fn read(conn: &Connection) -> Result<FollowerState> {
    if !has_table(conn)? {
        return Ok(FollowerState::default());
    }
    Ok(FollowerState {
        last_job_id: get(conn, LAST_JOB_ID)?.map(|v| v as u64),
        last_clean_us: get(conn, LAST_CLEAN_US)?,
        heartbeat_us: get(conn, HEARTBEAT_US)?,
        lag_us: get(conn, LAG_US)?,
        batches: get(conn, BATCHES)?,
    })
}

/// Records a committed batch (inside its transaction): its newest job
/// (id and `clean` time) when it recorded one, the heartbeat, the lag and
/// one more batch.
pub fn record_batch(conn: &Connection, newest: Option<(u64, i64)>, now_us: i64) -> Result<()> {
    conn.execute_batch(LEDGER_STATE_DDL)?;
    if let Some((id, clean_us)) = newest {
        set(conn, LAST_JOB_ID, id as i64)?;
        set(conn, LAST_CLEAN_US, clean_us)?;
        set(conn, LAG_US, now_us - clean_us)?;
    }
    set(conn, HEARTBEAT_US, now_us)?;
    let n = get(conn, BATCHES)?.unwrap_or(0);
    set(conn, BATCHES, n + 1)
}

/// Records an idle tick: the heartbeat alone.
pub fn record_heartbeat(conn: &Connection, now_us: i64) -> Result<()> {
    conn.execute_batch(LEDGER_STATE_DDL)?;
    set(conn, HEARTBEAT_US, now_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_heartbeats_are_kept_as_integers_under_the_follower_keys() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(read(&conn).unwrap(), FollowerState::default());
        record_batch(&conn, Some((u64::MAX, 1_000)), 1_500).unwrap();
        record_batch(&conn, None, 2_000).unwrap();
        record_heartbeat(&conn, 3_000).unwrap();
        let s = read(&conn).unwrap();
        assert_eq!(
            s,
            FollowerState {
                last_job_id: Some(u64::MAX),
                last_clean_us: Some(1_000),
                heartbeat_us: Some(3_000),
                lag_us: Some(500),
                batches: Some(2),
            }
        );
        let t: String =
            conn.query_row("SELECT typeof(value) FROM ledger_state WHERE key = ?1", [BATCHES], |r| r.get(0)).unwrap();
        assert_eq!(t, "integer");
    }
}
