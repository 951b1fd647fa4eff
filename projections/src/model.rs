//! Rows of the projection tables, and the read model ([`State`]) that
//! write commands' `decide` functions consult.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::Error;
use fluxacct_core::limits::AssocLimits;
use fluxacct_core::queue::QueueLimits;

/// A bank_table row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bank {
    /// Row id.
    pub bank_id: i64,
    /// Name (unique in fluxacct).
    pub bank: String,
    /// 1 active, 0 disabled.
    pub active: i64,
    /// Parent ("" for root).
    pub parent_bank: String,
    /// Shares.
    pub shares: i64,
    /// Usage of the subtree as of the last usage update.
    pub job_usage: f64,
    /// Bank priority.
    pub priority: f64,
    /// Ignore-older-than time.
    pub ignore_older_than: i64,
}

impl Bank {
    /// Columns in table order.
    pub const COLUMNS: &'static [&'static str] =
        &["bank_id", "bank", "active", "parent_bank", "shares", "job_usage", "priority", "ignore_older_than"];

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Bank> {
        Ok(Bank {
            bank_id: r.get(0)?,
            bank: r.get(1)?,
            active: r.get(2)?,
            parent_bank: r.get(3)?,
            shares: r.get(4)?,
            job_usage: r.get(5)?,
            priority: r.get(6)?,
            ignore_older_than: r.get(7)?,
        })
    }
}

/// An association_table row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Association {
    /// Creation time (epoch seconds).
    pub creation_time: i64,
    /// Last modification (epoch seconds).
    pub mod_time: i64,
    /// 1 active, 0 disabled.
    pub active: i64,
    /// User name.
    pub username: String,
    /// Uid.
    pub userid: i64,
    /// Bank.
    pub bank: String,
    /// Default bank.
    pub default_bank: String,
    /// Shares.
    pub shares: i64,
    /// Usage as of the last usage update.
    pub job_usage: f64,
    /// Fair-share.
    pub fairshare: f64,
    /// Max running jobs.
    pub max_running_jobs: i64,
    /// Max active jobs.
    pub max_active_jobs: i64,
    /// Max nodes.
    pub max_nodes: i64,
    /// Max cores.
    pub max_cores: i64,
    /// Queues (comma list).
    pub queues: String,
    /// Projects (comma list).
    pub projects: String,
    /// Default project.
    pub default_project: String,
    /// Max sched jobs.
    pub max_sched_jobs: i64,
}

impl Association {
    /// Columns in table order (flux-accounting's 18).
    pub const COLUMNS: &'static [&'static str] = &[
        "creation_time",
        "mod_time",
        "active",
        "username",
        "userid",
        "bank",
        "default_bank",
        "shares",
        "job_usage",
        "fairshare",
        "max_running_jobs",
        "max_active_jobs",
        "max_nodes",
        "max_cores",
        "queues",
        "projects",
        "default_project",
        "max_sched_jobs",
    ];

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Association> {
        Ok(Association {
            creation_time: r.get(0)?,
            mod_time: r.get(1)?,
            active: r.get(2)?,
            username: r.get(3)?,
            userid: r.get(4)?,
            bank: r.get(5)?,
            default_bank: r.get(6)?,
            shares: r.get(7)?,
            job_usage: r.get(8)?,
            fairshare: r.get(9)?,
            max_running_jobs: r.get(10)?,
            max_active_jobs: r.get(11)?,
            max_nodes: r.get(12)?,
            max_cores: r.get(13)?,
            queues: r.get(14)?,
            projects: r.get(15)?,
            default_project: r.get(16)?,
            max_sched_jobs: r.get(17)?,
        })
    }

    /// The association's job and resource limits, as the snapshot and the
    /// plugin hold them.
    pub fn limits(&self) -> AssocLimits {
        AssocLimits {
            max_running_jobs: self.max_running_jobs,
            max_active_jobs: self.max_active_jobs,
            max_nodes: self.max_nodes,
            max_cores: self.max_cores,
            max_sched_jobs: self.max_sched_jobs,
        }
    }

    /// The queue list, split.
    pub fn queue_list(&self) -> Vec<&str> {
        split_list(&self.queues)
    }

    /// The project list, split.
    pub fn project_list(&self) -> Vec<&str> {
        split_list(&self.projects)
    }
}

pub use fluxacct_core::split_list;

/// A queue_table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// Name.
    pub queue: String,
    /// Priority and per-association limits (the columns between `queue`
    /// and `max_nodes`).
    #[serde(flatten)]
    pub limits: QueueLimits,
    /// Stored only.
    pub max_nodes: i64,
    /// Stored only.
    pub max_cores: i64,
}

impl Queue {
    /// Columns in table order.
    pub const COLUMNS: &'static [&'static str] = &[
        "queue",
        "min_nodes_per_job",
        "max_nodes_per_job",
        "max_time_per_job",
        "priority",
        "max_running_jobs",
        "max_nodes_per_assoc",
        "max_sched_jobs",
        "max_sched_nodes_per_assoc",
        "max_sched_cores_per_assoc",
        "max_nodes",
        "max_cores",
    ];

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Queue> {
        let limits = QueueLimits {
            min_nodes_per_job: r.get("min_nodes_per_job")?,
            max_nodes_per_job: r.get("max_nodes_per_job")?,
            max_time_per_job: r.get("max_time_per_job")?,
            priority: r.get("priority")?,
            max_running_jobs: r.get("max_running_jobs")?,
            max_nodes_per_assoc: r.get("max_nodes_per_assoc")?,
            max_sched_jobs: r.get("max_sched_jobs")?,
            max_sched_nodes_per_assoc: r.get("max_sched_nodes_per_assoc")?,
            max_sched_cores_per_assoc: r.get("max_sched_cores_per_assoc")?,
        };
        Ok(Queue { queue: r.get("queue")?, limits, max_nodes: r.get("max_nodes")?, max_cores: r.get("max_cores")? })
    }
}

/// A project_table row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// Row id.
    pub project_id: i64,
    /// Name.
    pub project: String,
    /// Never updated (as in flux-accounting).
    pub usage: f64,
}

impl Project {
    /// Columns in table order.
    pub const COLUMNS: &'static [&'static str] = &["project_id", "project", "usage"];
}

/// The read model over the projection tables. Borrowed from a connection
/// (inside the command's transaction for write commands).
#[derive(Clone, Copy)]
pub struct State<'c> {
    conn: &'c Connection,
}

const BANK_SELECT: &str =
    "SELECT bank_id, bank, active, parent_bank, shares, job_usage, priority, ignore_older_than FROM bank_table";
const ASSOC_SELECT: &str = "SELECT creation_time, mod_time, active, username, userid, bank, default_bank, shares, \
     job_usage, fairshare, max_running_jobs, max_active_jobs, max_nodes, max_cores, queues, projects, \
     default_project, max_sched_jobs FROM association_table";
const QUEUE_SELECT: &str = "SELECT queue, min_nodes_per_job, max_nodes_per_job, max_time_per_job, priority, \
     max_running_jobs, max_nodes_per_assoc, max_sched_jobs, max_sched_nodes_per_assoc, \
     max_sched_cores_per_assoc, max_nodes, max_cores FROM queue_table";

impl<'c> State<'c> {
    /// Wraps a connection.
    pub fn new(conn: &'c Connection) -> Self {
        State { conn }
    }

    /// The connection.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// One bank by name.
    pub fn bank(&self, bank: &str) -> Result<Option<Bank>, Error> {
        Ok(self
            .conn
            .prepare_cached(&format!("{BANK_SELECT} WHERE bank = ?1"))?
            .query_row([bank], Bank::from_row)
            .optional()?)
    }

    /// Every bank in bank_id order.
    pub fn banks(&self) -> Result<Vec<Bank>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!("{BANK_SELECT} ORDER BY bank_id"))?;
        let rows = stmt.query_map([], Bank::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The root bank (empty parent), if any.
    pub fn root_bank(&self) -> Result<Option<Bank>, Error> {
        Ok(self
            .conn
            .prepare_cached(&format!("{BANK_SELECT} WHERE parent_bank = '' ORDER BY bank_id LIMIT 1"))?
            .query_row([], Bank::from_row)
            .optional()?)
    }

    /// Direct sub-banks of `bank` (active or not), by name.
    pub fn sub_banks(&self, bank: &str) -> Result<Vec<Bank>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!("{BANK_SELECT} WHERE parent_bank = ?1 ORDER BY bank"))?;
        let rows = stmt.query_map([bank], Bank::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `bank` has any sub-bank rows.
    pub fn has_sub_banks(&self, bank: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM bank_table WHERE parent_bank = ?1 LIMIT 1")?
            .query_row([bank], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Whether `bank` holds any associations (active or not).
    pub fn has_associations(&self, bank: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM association_table WHERE bank = ?1 LIMIT 1")?
            .query_row([bank], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// One association.
    pub fn association(&self, username: &str, bank: &str) -> Result<Option<Association>, Error> {
        Ok(self
            .conn
            .prepare_cached(&format!("{ASSOC_SELECT} WHERE username = ?1 AND bank = ?2"))?
            .query_row(params![username, bank], Association::from_row)
            .optional()?)
    }

    /// Every association of a user, in creation order.
    pub fn associations_of_user(&self, username: &str) -> Result<Vec<Association>, Error> {
        let mut stmt =
            self.conn.prepare_cached(&format!("{ASSOC_SELECT} WHERE username = ?1 ORDER BY creation_time, rowid"))?;
        let rows = stmt.query_map([username], Association::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every association in a bank, by username.
    pub fn associations_in_bank(&self, bank: &str) -> Result<Vec<Association>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!("{ASSOC_SELECT} WHERE bank = ?1 ORDER BY username"))?;
        let rows = stmt.query_map([bank], Association::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every association, in insertion (rowid) order.
    pub fn associations(&self) -> Result<Vec<Association>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!("{ASSOC_SELECT} ORDER BY rowid"))?;
        let rows = stmt.query_map([], Association::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One queue.
    pub fn queue(&self, queue: &str) -> Result<Option<Queue>, Error> {
        Ok(self
            .conn
            .prepare_cached(&format!("{QUEUE_SELECT} WHERE queue = ?1"))?
            .query_row([queue], Queue::from_row)
            .optional()?)
    }

    /// Every queue, by rowid.
    pub fn queues(&self) -> Result<Vec<Queue>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!("{QUEUE_SELECT} ORDER BY rowid"))?;
        let rows = stmt.query_map([], Queue::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One project.
    pub fn project(&self, project: &str) -> Result<Option<Project>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT project_id, project, usage FROM project_table WHERE project = ?1")?
            .query_row([project], |r| Ok(Project { project_id: r.get(0)?, project: r.get(1)?, usage: r.get(2)? }))
            .optional()?)
    }

    /// Every project, by id.
    pub fn projects(&self) -> Result<Vec<Project>, Error> {
        let mut stmt =
            self.conn.prepare_cached("SELECT project_id, project, usage FROM project_table ORDER BY project_id")?;
        let rows =
            stmt.query_map([], |r| Ok(Project { project_id: r.get(0)?, project: r.get(1)?, usage: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A config value.
    pub fn config(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM config_table WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, String>(0))
            .optional()?)
    }

    /// Every config row, in insertion order.
    pub fn configs(&self) -> Result<Vec<(String, String)>, Error> {
        let mut stmt = self.conn.prepare_cached("SELECT key, value FROM config_table ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A config value parsed as f64 (falls back to `default`).
    pub fn config_f64(&self, key: &str, default: f64) -> Result<f64, Error> {
        Ok(self.config(key)?.and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(default))
    }

    /// A factor weight.
    pub fn factor(&self, factor: &str) -> Result<Option<i64>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT weight FROM priority_factor_weight_table WHERE factor = ?1")?
            .query_row([factor], |r| r.get(0))
            .optional()?)
    }

    /// Every factor weight, in insertion order.
    pub fn factors(&self) -> Result<Vec<(String, i64)>, Error> {
        let mut stmt =
            self.conn.prepare_cached("SELECT factor, weight FROM priority_factor_weight_table ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The cut of the last `scrub-old-jobs` (`JobsScrubbed`): job records
    /// that ended before it are left out of job listings and reports.
    /// `None` when no scrub has run.
    pub fn jobs_scrubbed_before(&self) -> Result<Option<f64>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM usage_state WHERE key = 'jobs_scrubbed_before'")?
            .query_row([], |r| r.get::<_, f64>(0))
            .optional()?)
    }

    /// Which of `ids` are already recorded, with one range scan of
    /// `job_ids` (or a lookup per id when they cross 2^63, where the keys
    /// wrap).
    pub fn recorded_among(&self, ids: &[u64]) -> Result<std::collections::BTreeSet<u64>, Error> {
        use crate::schema::id_key;
        let mut out = std::collections::BTreeSet::new();
        let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(out);
        };
        let wanted: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        if id_key(lo) <= id_key(hi) {
            let mut stmt = self.conn.prepare_cached("SELECT id FROM job_ids WHERE id BETWEEN ?1 AND ?2")?;
            let mut rows = stmt.query(params![id_key(lo), id_key(hi)])?;
            while let Some(r) = rows.next()? {
                let id = r.get::<_, i64>(0)? as u64;
                if wanted.contains(&id) {
                    out.insert(id);
                }
            }
        } else {
            let mut stmt = self.conn.prepare_cached("SELECT 1 FROM job_ids WHERE id = ?1 LIMIT 1")?;
            for &id in &wanted {
                if stmt.exists([id_key(id)])? {
                    out.insert(id);
                }
            }
        }
        Ok(out)
    }
}
