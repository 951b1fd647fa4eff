//! flux-accounting's "no limit" value and an association's limits: the one
//! list of them, shared by the snapshot, the projection model and the
//! plugin. (A queue's limits are [`crate::queue::QueueLimits`].)

/// `INTEGER_MAX` of flux-accounting: the value shown as `unlimited`.
pub const INTEGER_MAX: i64 = 2_147_483_647;

/// The job and resource limits of one association (user in a bank). The
/// field names are flux-accounting's `association_table` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssocLimits {
    /// Maximum running jobs (soft, hold).
    pub max_running_jobs: i64,
    /// Maximum active jobs (hard, reject); ≤ 0 means no limit.
    pub max_active_jobs: i64,
    /// Maximum nodes across running jobs.
    pub max_nodes: i64,
    /// Maximum cores across running jobs.
    pub max_cores: i64,
    /// Maximum jobs in SCHED state.
    pub max_sched_jobs: i64,
}
