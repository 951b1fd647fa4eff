//! The jobs a usage update bins: a `usage_pending` row per job record,
//! built from the event or read straight from its stored payload.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Error;
use fluxacct_core::events::{Event, JobRecorded};

/// One job as binning needs it: a `usage_pending` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJob {
    /// Seq of the job's `JobRecorded` event.
    pub seq: i64,
    /// Job userid.
    pub userid: i64,
    /// Job bank (never empty: jobs without a bank are not binned). Shared:
    /// a replay hands out one allocation per bank name.
    pub bank: Arc<str>,
    /// Run time.
    pub t_run: f64,
    /// Inactive time.
    pub t_inactive: f64,
    /// Nodes.
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
    /// Job id (for charging; 0 in rows read back from `usage_pending`).
    pub id: u64,
    /// Job project (for charging; "" in rows read back from `usage_pending`).
    pub project: Arc<str>,
    /// Job queue (for charging; "" in rows read back from `usage_pending`).
    pub queue: Arc<str>,
}

/// The fields of a `JobRecorded` payload that binning reads, borrowed from
/// the payload (see [`PendingJob::decode`]).
#[derive(serde::Deserialize)]
struct JobFields<'a> {
    id: u64,
    userid: i64,
    #[serde(borrow)]
    bank: std::borrow::Cow<'a, str>,
    t_run: f64,
    t_inactive: f64,
    nnodes: i64,
    ncores: i64,
    ngpus: i64,
    #[serde(borrow)]
    project: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    queue: std::borrow::Cow<'a, str>,
}

/// The current version of `JobRecorded` (pinned to the catalogue by a
/// test): the one [`PendingJob::decode`] reads directly.
pub const JOB_RECORDED_VERSION: u32 = 1;

/// Bank (and project and queue) names shared by the [`PendingJob`]s of one replay.
#[derive(Debug, Default)]
pub struct BankNames(BTreeSet<Arc<str>>);

impl BankNames {
    /// The shared name equal to `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(a) = self.0.get(name) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(name);
        self.0.insert(a.clone());
        a
    }
}

impl PendingJob {
    /// The binning fields of a job record (`None` for a job without a bank,
    /// which never counts).
    pub fn of(seq: u64, j: &JobRecorded) -> Option<PendingJob> {
        (!j.bank.is_empty()).then(|| PendingJob {
            seq: seq as i64,
            userid: j.userid,
            bank: Arc::from(j.bank.as_str()),
            t_run: j.t_run,
            t_inactive: j.t_inactive,
            nnodes: j.nnodes,
            ncores: j.ncores,
            ngpus: j.ngpus,
            id: j.id,
            project: Arc::from(j.project.as_str()),
            queue: Arc::from(j.queue.as_str()),
        })
    }

    /// What [`PendingJob::of`] gives for the `JobRecorded` event at `seq`
    /// stored as (`version`, `payload`), read straight from the payload
    /// without building the whole record: only the binning fields are
    /// decoded, the bank borrowed and interned in `banks`. Payloads of an
    /// older version go through [`Event::decode`] (and its upcasting).
    /// Replays use it for the bulk of the log; a proptest pins it to
    /// [`PendingJob::of`].
    pub fn decode(seq: u64, version: u32, payload: &[u8], banks: &mut BankNames) -> Result<Option<PendingJob>, Error> {
        if version != JOB_RECORDED_VERSION {
            return match Event::decode("JobRecorded", version, payload)? {
                Event::JobRecorded(j) => Ok(PendingJob::of(seq, &j)),
                _ => Ok(None),
            };
        }
        let f: JobFields<'_> = serde_json::from_slice(payload).map_err(|e| fluxacct_core::EventError::Decode {
            kind: "JobRecorded".to_string(),
            version,
            what: e.to_string(),
        })?;
        Ok((!f.bank.is_empty()).then(|| PendingJob {
            seq: seq as i64,
            userid: f.userid,
            bank: banks.get(&f.bank),
            t_run: f.t_run,
            t_inactive: f.t_inactive,
            nnodes: f.nnodes,
            ncores: f.ncores,
            ngpus: f.ngpus,
            id: f.id,
            project: banks.get(&f.project),
            queue: banks.get(&f.queue),
        }))
    }

    pub(super) fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingJob> {
        Ok(PendingJob {
            t_inactive: r.get(0)?,
            seq: r.get(1)?,
            userid: r.get(2)?,
            bank: Arc::from(r.get_ref(3)?.as_str()?),
            t_run: r.get(4)?,
            nnodes: r.get(5)?,
            ncores: r.get(6)?,
            ngpus: r.get(7)?,
            id: 0,
            project: Arc::from(""),
            queue: Arc::from(""),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_recorded_version_is_the_catalogue_one() {
        assert!(Event::catalogue().contains(&("JobRecorded", JOB_RECORDED_VERSION)));
    }
}
