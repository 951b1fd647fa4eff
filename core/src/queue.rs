//! A queue's limits: the one list of them, shared by the `QueueAdded`
//! defaults, the snapshot (`snapshot::Queue`, `snapshot::QueueRecord`), the
//! plugin's load-time config and its `plugin.query` answer.

use serde::{Deserialize, Serialize};

use crate::limits::INTEGER_MAX;

/// The limits and priority of one queue that the plugin sees. The field
/// names are flux-accounting's `queue_table` columns (and its `export-json`
/// keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLimits {
    /// Not enforced (reported only).
    pub min_nodes_per_job: i64,
    /// Not enforced (reported only).
    pub max_nodes_per_job: i64,
    /// Not enforced (reported only).
    pub max_time_per_job: i64,
    /// Queue priority (the formula's `queue_priority`).
    pub priority: i64,
    /// Running jobs per association in this queue.
    pub max_running_jobs: i64,
    /// Nodes (running + scheduled) per association in this queue.
    pub max_nodes_per_assoc: i64,
    /// SCHED jobs per association in this queue.
    pub max_sched_jobs: i64,
    /// SCHED nodes per association in this queue.
    pub max_sched_nodes_per_assoc: i64,
    /// SCHED cores per association in this queue.
    pub max_sched_cores_per_assoc: i64,
}

impl Default for QueueLimits {
    /// flux-accounting's `add-queue` (and `queue_table` column) defaults: 1
    /// min and max node per job, 60 max time per job, priority 0, 100
    /// running jobs per association, and no other limit ([`INTEGER_MAX`]).
    fn default() -> Self {
        QueueLimits {
            min_nodes_per_job: 1,
            max_nodes_per_job: 1,
            max_time_per_job: 60,
            priority: 0,
            max_running_jobs: 100,
            max_nodes_per_assoc: INTEGER_MAX,
            max_sched_jobs: INTEGER_MAX,
            max_sched_nodes_per_assoc: INTEGER_MAX,
            max_sched_cores_per_assoc: INTEGER_MAX,
        }
    }
}
