//! Reading what the metrics show from a read-only open of the ledger.

use std::path::{Path, PathBuf};

use ledger::{Ledger, OpenMode};
use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::Result;

/// The pipeline stages whose last runs are shown, in the order of the
/// hourly chain.
pub const STAGES: &[&str] = &["fetch-job-records", "update-usage", "update-fshare", "priority-update"];

/// One association (an `association_table` row).
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationRow {
    /// User name.
    pub user: String,
    /// Bank.
    pub bank: String,
    /// Decayed job usage as of the last usage update.
    pub usage: f64,
    /// Fair-share as of the last fair-share update.
    pub fairshare: f64,
    /// Shares.
    pub shares: i64,
    /// 1 active, 0 disabled.
    pub active: i64,
    /// Max running jobs.
    pub max_running_jobs: i64,
    /// Max active jobs.
    pub max_active_jobs: i64,
}

/// One bank (a `bank_table` row).
#[derive(Debug, Clone, PartialEq)]
pub struct BankRow {
    /// Name.
    pub bank: String,
    /// Parent bank ("" for the root).
    pub parent: String,
    /// Decayed job usage of the subtree as of the last usage update.
    pub usage: f64,
    /// Shares.
    pub shares: i64,
    /// 1 active, 0 disabled.
    pub active: i64,
    /// Bank priority.
    pub priority: f64,
}

/// One queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// Name.
    pub queue: String,
    /// Priority factor.
    pub priority: i64,
    /// Max running jobs per association.
    pub max_running_jobs: i64,
}

/// One allocation (an `allocation_balance` row); amounts in the unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// Name.
    pub name: String,
    /// Bank.
    pub bank: String,
    /// Project ("" for none).
    pub project: String,
    /// Unit of the amounts.
    pub unit: String,
    /// Allocated.
    pub allocated: f64,
    /// Charged so far.
    pub charged: f64,
    /// Reserved by running jobs.
    pub reserved: f64,
    /// Remaining.
    pub remaining: f64,
    /// Start, epoch seconds.
    pub start_s: i64,
    /// End, epoch seconds.
    pub end_s: i64,
    /// 1 active, 0 not.
    pub active: i64,
}

/// The last runs of one pipeline stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageRun {
    /// The stage's name (one of [`STAGES`]).
    pub stage: &'static str,
    /// The last success, epoch seconds.
    pub last_ok_s: Option<f64>,
    /// The last failure, epoch seconds.
    pub last_error_s: Option<f64>,
    /// The last failure's error line.
    pub last_error: Option<String>,
}

/// The plugin snapshot file beside the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The head seq it reflects.
    pub seq: u64,
    /// Its modification time, epoch seconds.
    pub mtime_s: f64,
}

/// What the journal follower keeps in the bookkeeping (each when present).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Follower {
    /// The last job id it recorded.
    pub last_job_id: Option<i64>,
    /// When it last caught up, microseconds since the epoch.
    pub last_clean_us: Option<i64>,
    /// Its last heartbeat, microseconds since the epoch.
    pub heartbeat_us: Option<i64>,
    /// Its lag behind the journal, microseconds.
    pub lag_us: Option<i64>,
    /// Batches written.
    pub batches: Option<i64>,
}

impl Follower {
    fn is_empty(&self) -> bool {
        *self == Follower::default()
    }
}

/// The ledger's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Head seq (0 for an empty log).
    pub head_seq: u64,
    /// The head event's time, epoch seconds.
    pub head_time_s: Option<f64>,
    /// The last verified seq.
    pub verified_seq: Option<u64>,
    /// The first bad seq of a recorded (not accepted) break.
    pub broken_seq: Option<u64>,
    /// Breaks accepted by `repair --accept-break`.
    pub accepted_breaks: u64,
    /// Job records in the log (`JobRecorded` events).
    pub jobs_recorded: u64,
    /// Rejected job records in the log (`JobRejected` events).
    pub jobs_rejected: u64,
    /// The usage projection's `as_of` (the last `UsageUpdated`), epoch seconds.
    pub usage_as_of_s: Option<f64>,
    /// Each stage's last runs, in [`STAGES`] order.
    pub stages: Vec<StageRun>,
    /// The plugin snapshot, when its file is readable.
    pub snapshot: Option<Snapshot>,
    /// Size of the ledger file, bytes.
    pub file_size_bytes: u64,
    /// Size of its write-ahead log, bytes.
    pub wal_size_bytes: u64,
    /// The journal follower, when it has written anything.
    pub follower: Option<Follower>,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// When it was gathered, epoch seconds.
    pub now_s: f64,
    /// Associations, by bank then user.
    pub associations: Vec<AssociationRow>,
    /// Banks, by name.
    pub banks: Vec<BankRow>,
    /// Queues, by name.
    pub queues: Vec<QueueRow>,
    /// Priority factor weights, by factor.
    pub factors: Vec<(String, i64)>,
    /// Allocations, by name; `None` when the ledger keeps none.
    pub allocations: Option<Vec<Allocation>>,
    /// The ledger's health.
    pub health: Health,
}

/// Reads a [`Scrape`] of the ledger at `db` (read-only; it never writes)
/// at `now_us`. `snapshot` is the plugin snapshot's path.
pub fn gather(db: &Path, snapshot: &Path, now_us: i64) -> Result<Scrape> {
    let ledger = Ledger::open(db, OpenMode::ReadOnly)?;
    let conn = ledger.conn();
    match projections::schema::stored_version(conn)? {
        Some(v) if v == projections::schema::PROJECTION_SCHEMA_VERSION => {}
        Some(v) if v > projections::schema::PROJECTION_SCHEMA_VERSION => {
            return Err(projections::Error::TooNew {
                found: v,
                supported: projections::schema::PROJECTION_SCHEMA_VERSION,
            }
            .into())
        }
        _ => {
            return Err(Error::Invalid(
                "the ledger's projections need rebuilding, which only its owner can do: run `flux account rebuild`"
                    .into(),
            ))
        }
    }
    // One read transaction: every number comes from the same commit.
    conn.execute_batch("BEGIN DEFERRED")?;
    let scrape = read_all(conn, now_us);
    conn.execute_batch("COMMIT")?;
    let mut scrape = scrape?;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    scrape.health.file_size_bytes = size(db.to_path_buf());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    scrape.health.wal_size_bytes = size(PathBuf::from(wal));
    scrape.health.snapshot = read_snapshot(snapshot);
    Ok(scrape)
}

fn read_all(conn: &Connection, now_us: i64) -> Result<Scrape> {
    Ok(Scrape {
        now_s: now_us as f64 / 1e6,
        associations: associations(conn)?,
        banks: banks(conn)?,
        queues: queues(conn)?,
        factors: factors(conn)?,
        allocations: allocations(conn)?,
        health: health(conn)?,
    })
}

fn associations(conn: &Connection) -> Result<Vec<AssociationRow>> {
    let mut stmt = conn.prepare(
        "SELECT username, bank, job_usage, fairshare, shares, active, max_running_jobs, max_active_jobs \
         FROM association_table ORDER BY bank, username",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(AssociationRow {
            user: r.get(0)?,
            bank: r.get(1)?,
            usage: r.get(2)?,
            fairshare: r.get(3)?,
            shares: r.get(4)?,
            active: r.get(5)?,
            max_running_jobs: r.get(6)?,
            max_active_jobs: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn banks(conn: &Connection) -> Result<Vec<BankRow>> {
    let mut stmt =
        conn.prepare("SELECT bank, parent_bank, job_usage, shares, active, priority FROM bank_table ORDER BY bank")?;
    let rows = stmt.query_map([], |r| {
        Ok(BankRow {
            bank: r.get(0)?,
            parent: r.get(1)?,
            usage: r.get(2)?,
            shares: r.get(3)?,
            active: r.get(4)?,
            priority: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn queues(conn: &Connection) -> Result<Vec<QueueRow>> {
    let mut stmt = conn.prepare("SELECT queue, priority, max_running_jobs FROM queue_table ORDER BY queue")?;
    let rows =
        stmt.query_map([], |r| Ok(QueueRow { queue: r.get(0)?, priority: r.get(1)?, max_running_jobs: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn factors(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT factor, weight FROM priority_factor_weight_table ORDER BY factor")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether `name` is a table or a view (`allocation_balance` is a view over
/// the allocation projection).
fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM main.sqlite_master WHERE type IN ('table', 'view') AND name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

fn allocations(conn: &Connection) -> Result<Option<Vec<Allocation>>> {
    if !has_table(conn, "allocation_balance")? {
        return Ok(None);
    }
    let mut stmt = conn.prepare(
        "SELECT name, bank, coalesce(project, ''), unit, allocated_milli, charged_milli, reserved_milli, \
         remaining_milli, start_s, end_s, active FROM allocation_balance ORDER BY name",
    )?;
    let unit = |m: i64| m as f64 / 1000.0;
    let rows = stmt.query_map([], |r| {
        Ok(Allocation {
            name: r.get(0)?,
            bank: r.get(1)?,
            project: r.get(2)?,
            unit: r.get(3)?,
            allocated: unit(r.get(4)?),
            charged: unit(r.get(5)?),
            reserved: unit(r.get(6)?),
            remaining: unit(r.get(7)?),
            start_s: r.get(8)?,
            end_s: r.get(9)?,
            active: r.get(10)?,
        })
    })?;
    Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
}

fn health(conn: &Connection) -> Result<Health> {
    let head: Option<(i64, i64)> = conn
        .query_row("SELECT seq, recorded_at FROM events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let chain = ledger::integrity::chain_state(conn)?;
    // Both are counts of log rows through indexes kept with the log:
    // `job_ids` has one row per job record, and the partial index
    // `events_job_rejected` one per rejected record.
    let count = |sql: &str| -> Result<u64> { Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?.max(0) as u64) };
    let jobs_recorded = count("SELECT count(*) FROM job_ids")?;
    let jobs_rejected = count("SELECT count(*) FROM events WHERE kind = 'JobRejected'")?;
    let usage_as_of_s = projections::usage::last_as_of(conn)?;
    let mut stages = Vec::with_capacity(STAGES.len());
    for &stage in STAGES {
        let runs = ledger::runs::stage_runs(conn, stage)?;
        let mut last_ok_s = runs.last_ok_us.map(|t| t as f64 / 1e6);
        if stage == "update-usage" {
            // The log says when usage was last updated, whatever the
            // bookkeeping kept.
            last_ok_s = match (last_ok_s, usage_as_of_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        stages.push(StageRun {
            stage,
            last_ok_s,
            last_error_s: runs.last_error_us.map(|t| t as f64 / 1e6),
            last_error: runs.last_error,
        });
    }
    let mut follower = Follower::default();
    for (key, value) in ledger::runs::integers_with_prefix(conn, "follower.")? {
        let slot = match key.as_str() {
            "follower.last_job_id" => &mut follower.last_job_id,
            "follower.last_clean_us" => &mut follower.last_clean_us,
            "follower.heartbeat_us" => &mut follower.heartbeat_us,
            "follower.lag_us" => &mut follower.lag_us,
            "follower.batches" => &mut follower.batches,
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(Health {
        head_seq: head.map(|(s, _)| s.max(0) as u64).unwrap_or(0),
        head_time_s: head.map(|(_, t)| t as f64 / 1e6),
        verified_seq: chain.verified.map(|s| s.0),
        broken_seq: chain.broken.map(|f| f.seq.0),
        accepted_breaks: chain.accepted.len() as u64,
        jobs_recorded,
        jobs_rejected,
        usage_as_of_s,
        stages,
        snapshot: None,
        file_size_bytes: 0,
        wal_size_bytes: 0,
        follower: (!follower.is_empty()).then_some(follower),
    })
}

fn read_snapshot(path: &Path) -> Option<Snapshot> {
    let mtime_s =
        std::fs::metadata(path).ok()?.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    let snap = fluxacct_core::snapshot::Snapshot::read(path).ok()?;
    Some(Snapshot { seq: snap.head.seq.0, mtime_s })
}
