//! Flux job states and results as flux-core numbers them
//! (`FLUX_JOB_STATE_*`, `FLUX_JOB_RESULT_*` in `src/common/libjob/job.h`):
//! one bit each, so that a set of states is their OR (job-list's
//! `states` constraint). Shared by the priority plugin (the state a
//! jobtap callback reports) and the Flux client (job-list queries).

/// NEW.
pub const NEW: u32 = 1;
/// DEPEND.
pub const DEPEND: u32 = 2;
/// PRIORITY.
pub const PRIORITY: u32 = 4;
/// SCHED.
pub const SCHED: u32 = 8;
/// RUN.
pub const RUN: u32 = 16;
/// CLEANUP.
pub const CLEANUP: u32 = 32;
/// INACTIVE.
pub const INACTIVE: u32 = 64;
/// DEPEND | PRIORITY | SCHED.
pub const PENDING: u32 = DEPEND | PRIORITY | SCHED;
/// RUN | CLEANUP.
pub const RUNNING: u32 = RUN | CLEANUP;
/// Every state but INACTIVE (and NEW).
pub const ACTIVE: u32 = PENDING | RUNNING;

/// Flux job result bits (`FLUX_JOB_RESULT_*`).
pub mod result {
    /// COMPLETED.
    pub const COMPLETED: u32 = 1;
    /// FAILED.
    pub const FAILED: u32 = 2;
    /// CANCELED.
    pub const CANCELED: u32 = 4;
    /// TIMEOUT.
    pub const TIMEOUT: u32 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_flux_cores_bits() {
        assert_eq!([NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE], [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!((PENDING, RUNNING, ACTIVE), (14, 48, 62));
        assert_eq!([result::COMPLETED, result::FAILED, result::CANCELED, result::TIMEOUT], [1, 2, 4, 8]);
    }
}
