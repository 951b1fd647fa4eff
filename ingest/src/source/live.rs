//! The live source: inactive jobs of the running
//! Flux instance, in `t_inactive` order, in windows.
//!
//! 1. One `job-list.list` request lists the id and `t_inactive` of every
//!    inactive job that ended after the newest recorded job (16 bytes per
//!    job are kept, not the records).
//! 2. In ascending `t_inactive` order, windows of [`WINDOW`] jobs are
//!    listed with their attributes (`since` and a `t_inactive <= T`
//!    constraint), and each job's `R` is read from the KVS
//!    (`job.<id>.R`, one `flux_kvs_lookup`), keeping [`IN_FLIGHT`]
//!    requests outstanding on the handle instead of one round trip per
//!    job.
//! 3. Each job is checked like any other record and handed over in batches.
//!
//! Jobs that never ran (no `t_run`) are not records and are skipped.
//!
//! Why the KVS and not `job-info.lookup`: job-info reads and parses the
//! job's whole eventlog for every lookup (its access check, and to apply
//! `resource-update` events to `R`), which made the broker, not this
//! process, the bottleneck: 3000 lookups cost the broker about 2 s of CPU
//! time. The `R` read from the KVS is the one the scheduler wrote; the
//! only change a `resource-update` event may make to it (RFC 21) is its
//! `execution.expiration`, which job-list reports with the updates
//! applied. So a job whose `R` expiration differs from job-list's, or
//! whose `R` cannot be read that way, is looked up with job-info (with
//! the updates applied), and so is every job once the KVS refuses the
//! caller (`EPERM`: not the instance owner; job-info lets users read their
//! own jobs).

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::value::RawValue;

use fluxacct_flux::{Flux, FluxEnv, Pending, ENOENT, EPERM};

use super::{checked, Item, Position, SourceError};
use crate::error::{Error, Result};
use crate::record::{self as jobs, Embedded, IdField, JobInput, Rejection};

/// Jobs listed per `job-list.list` window.
pub const WINDOW: usize = 2000;
/// `R` lookups kept in flight.
pub const IN_FLIGHT: usize = 256;

/// What job-list is asked for each job.
const ATTRS: &[&str] = &[
    "userid",
    "t_submit",
    "t_run",
    "t_inactive",
    "ranks",
    "bank",
    "project",
    "queue",
    "nnodes",
    "ncores",
    "duration",
    "expiration",
];

#[derive(Deserialize)]
struct Listed<'a> {
    #[serde(borrow)]
    jobs: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct IndexEntry {
    id: u64,
    #[serde(default)]
    t_inactive: f64,
}

#[derive(Deserialize)]
struct Index {
    jobs: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct Lookup<'a> {
    #[serde(default, borrow, rename = "R")]
    r: Option<Embedded<'a>>,
}

fn list(flux: &Flux, since: f64, upto: Option<f64>, attrs: &[&str]) -> Result<String> {
    let mut and = vec![serde_json::json!({"states": ["inactive"]})];
    if let Some(t) = upto {
        and.push(serde_json::json!({"t_inactive": [format!("<={t}")]}));
    }
    let req = serde_json::json!({"max_entries": 0, "attrs": attrs, "since": since, "constraint": {"and": and}});
    let resp = flux
        .rpc_send("job-list.list", &req.to_string())?
        .get()
        .map_err(|(_, e)| Error::io_msg(format!("job-list.list: {e}")))?;
    resp.ok_or_else(|| Error::io_msg("job-list.list: empty response"))
}

/// The live source as an iterator of batches.
pub struct Batches<'f> {
    flux: &'f Flux,
    /// (t_inactive, id) of every job to fetch, ascending.
    index: Vec<(f64, u64)>,
    next: usize,
    since: f64,
    batch: usize,
    window: usize,
    now: f64,
    ready: Vec<Item>,
    failed: bool,
    /// Inactive jobs that never ran (skipped and counted).
    never_ran: u64,
    /// How `R` is read (job-info once the KVS refused).
    via: Via,
}

/// The KVS key of a job's `R` in the primary namespace
/// (`job.<FLUID dothex>.R`, as `flux_job_kvs_key` writes it).
pub fn r_key(id: u64) -> String {
    format!("{}.R", jobs::show_id(id, jobs::IdForm::Kvs))
}

#[derive(Deserialize)]
struct RExpiration<'a> {
    #[serde(default, borrow)]
    execution: Option<Execution<'a>>,
}

#[derive(Deserialize)]
struct Execution<'a> {
    #[serde(default, borrow)]
    expiration: Option<&'a RawValue>,
}

fn number(v: &RawValue) -> Option<f64> {
    v.get().parse().ok()
}

/// Whether the `R` text read from the KVS is the current one: its
/// `execution.expiration` (0 when absent, as job-list reads it) equals
/// the expiration job-list reports, which has every `resource-update`
/// event applied (RFC 21 lets those events change nothing else in R).
/// Unreadable values are not current (the caller asks job-info).
fn r_is_current(r: &str, listed: Option<&RawValue>) -> bool {
    let Some(listed) = listed.and_then(number) else { return false };
    let Ok(parsed) = serde_json::from_str::<RExpiration<'_>>(r) else { return false };
    let own = match parsed.execution.and_then(|e| e.expiration) {
        Some(v) => match number(v) {
            Some(x) => x,
            None => return false,
        },
        None => 0.0,
    };
    own == listed
}

/// How a job's `R` is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `flux_kvs_lookup` of `job.<id>.R`: one KVS lookup.
    Kvs,
    /// `job-info.lookup` of `R` with the current flag: job-info also looks
    /// up and parses the job's eventlog (its access check, and the
    /// `resource-update` events).
    JobInfo,
}

fn send(flux: &Flux, id: u64, via: Via) -> Result<Pending<'_>> {
    match via {
        Via::Kvs => Ok(flux.kvs_lookup_send("primary", &r_key(id))?),
        Via::JobInfo => {
            let req = format!(r#"{{"id":{id},"keys":["R"],"flags":3}}"#);
            Ok(flux.rpc_send("job-info.lookup", &req)?)
        }
    }
}

/// `job-info.lookup` of one job's current `R`, waited for: the JSON text
/// of the response (`None`: the job's data is gone, ENOENT).
fn job_info_r(flux: &Flux, id: u64) -> Result<Option<String>> {
    match send(flux, id, Via::JobInfo)?.get() {
        Ok(r) => Ok(r),
        Err((errno, _)) if errno == ENOENT => Ok(None),
        Err((_, e)) => Err(Error::io_msg(format!("job-info.lookup: {e}"))),
    }
}

impl Batches<'_> {
    /// Lists, looks up and checks the next window into `self.ready`.
    fn window(&mut self) -> Result<()> {
        let start = self.next;
        let mut end = (start + self.window).min(self.index.len());
        let t_hi = self.index[end - 1].0;
        while end < self.index.len() && self.index[end].0 <= t_hi {
            end += 1;
        }
        self.next = end;
        let text = list(self.flux, self.since, Some(t_hi), ATTRS)?;
        self.since = t_hi;
        let listed: Listed<'_> =
            serde_json::from_str(&text).map_err(|e| Error::io_msg(format!("job-list.list: bad response: {e}")))?;
        // Each job object is parsed once, borrowing from `text`.
        let mut jobs: Vec<(u64, JobInput<'_>)> = Vec::with_capacity(listed.jobs.len());
        for raw in listed.jobs {
            let Ok(j) = serde_json::from_str::<JobInput<'_>>(raw.get()) else {
                let id = serde_json::from_str::<IndexEntry>(raw.get()).map(|e| e.id).ok();
                let rec = Err(Rejection { id, reason: "job-list returned an unreadable job".into() });
                self.ready.push(Item { pos: Position::Live(id.unwrap_or(0)), rec });
                continue;
            };
            let Some(IdField::Ok(id)) = j.id else { continue };
            if j.t_run.unwrap_or(0.0) <= 0.0 {
                self.never_ran += 1;
                continue;
            }
            jobs.push((id, j));
        }
        // job-list lists newest first.
        let t = |j: &JobInput<'_>| j.t_inactive.unwrap_or(0.0);
        jobs.sort_by(|a, b| t(&a.1).total_cmp(&t(&b.1)).then(a.0.cmp(&b.0)));
        let flux = self.flux;
        let mut inflight: VecDeque<(usize, Via, Pending<'_>)> = VecDeque::with_capacity(IN_FLIGHT);
        let mut sent = 0;
        while sent < jobs.len() || !inflight.is_empty() {
            while sent < jobs.len() && inflight.len() < IN_FLIGHT {
                let via = self.via;
                inflight.push_back((sent, via, send(flux, jobs[sent].0, via)?));
                sent += 1;
            }
            let Some((i, via, p)) = inflight.pop_front() else { break };
            let id = jobs[i].0;
            let mut j: JobInput<'_> = std::mem::take(&mut jobs[i].1);
            // ENOENT: the job's data is gone (recorded without R); any
            // other failure (the broker went away) fails the fetch.
            let (kvs_r, info) = match (via, p.get()) {
                (Via::Kvs, Ok(Some(r))) if r_is_current(&r, j.expiration) => (Some(r), None),
                // R was updated after it was written (or is unreadable):
                // job-info applies the updates.
                (Via::Kvs, Ok(_)) => (None, job_info_r(flux, id)?),
                (_, Err((errno, _))) if errno == ENOENT => (None, None),
                // Not the instance owner: job-info decides what may be read.
                (Via::Kvs, Err((errno, _))) if errno == EPERM => {
                    self.via = Via::JobInfo;
                    (None, job_info_r(flux, id)?)
                }
                (Via::Kvs, Err((_, e))) => return Err(Error::io_msg(format!("kvs lookup of {}: {e}", r_key(id)))),
                (Via::JobInfo, Ok(r)) => (None, r),
                (Via::JobInfo, Err((_, e))) => return Err(Error::io_msg(format!("job-info.lookup: {e}"))),
            };
            j.r = match (&kvs_r, &info) {
                (Some(r), _) => Some(Embedded::Text(r)),
                (None, Some(resp)) => serde_json::from_str::<Lookup<'_>>(resp).ok().and_then(|l| l.r),
                (None, None) => None,
            };
            self.ready.push(checked(Position::Live(id), jobs::check(&j, self.now)));
        }
        Ok(())
    }
}

impl Iterator for Batches<'_> {
    type Item = std::result::Result<Vec<Item>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while self.ready.len() < self.batch && self.next < self.index.len() {
            if let Err(e) = self.window() {
                self.failed = true;
                return Some(Err(SourceError::Other(e)));
            }
        }
        if self.ready.is_empty() {
            return None;
        }
        let n = self.ready.len().min(self.batch);
        let rest = self.ready.split_off(n);
        Some(Ok(std::mem::replace(&mut self.ready, rest)))
    }
}

/// Opens the instance, lists the inactive jobs that ended after `since`,
/// and runs `run` over the batches of checked records (`window` jobs
/// listed per job-list request; [`WINDOW`] by default).
#[allow(clippy::too_many_arguments)]
pub fn fetch<T>(
    env: &FluxEnv,
    since: f64,
    batch: usize,
    window: usize,
    now: f64,
    never_ran: &mut u64,
    run: impl FnOnce(&mut dyn Iterator<Item = std::result::Result<Vec<Item>, SourceError>>) -> Result<T>,
) -> Result<T> {
    let flux = Flux::open(env).map_err(|e| {
        Error::invalid(format!(
            "{e}; no Flux instance could be reached: read job records with --from-file FILE or --copy ARCHIVE_DB"
        ))
    })?;
    let text = list(&flux, since, None, &["t_inactive"])?;
    let listed: Index =
        serde_json::from_str(&text).map_err(|e| Error::io_msg(format!("job-list.list: bad response: {e}")))?;
    drop(text);
    let mut index: Vec<(f64, u64)> = listed.jobs.into_iter().map(|j| (j.t_inactive, j.id)).collect();
    index.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut it = Batches {
        flux: &flux,
        index,
        next: 0,
        since,
        batch: batch.max(1),
        window: window.max(1),
        now,
        ready: Vec::new(),
        failed: false,
        never_ran: 0,
        via: Via::Kvs,
    };
    let out = run(&mut it);
    *never_ran = it.never_ran;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_key_is_the_fluid_dothex_path() {
        assert_eq!(r_key(0), "job.0000.0000.0000.0000.R");
        // `flux job id --to=dothex 13861017092096`.
        assert_eq!(r_key(13_861_017_092_096), "job.0000.0c9b.4500.0000.R");
        assert_eq!(r_key(u64::MAX), "job.ffff.ffff.ffff.ffff.R");
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn r_is_current_when_its_expiration_is_job_lists() {
        let r = r#"{"version":1,"execution":{"R_lite":[],"starttime":1.5,"expiration":1796517067.6021335}}"#;
        assert!(r_is_current(r, Some(&raw("1796517067.6021335"))));
        assert!(r_is_current(r, Some(&raw("1.7965170676021335e9"))));
        // A resource-update event moved it: job-info is asked.
        assert!(!r_is_current(r, Some(&raw("1796516467.6021335"))));
        // No expiration in R reads as 0, as job-list reads it.
        let r0 = r#"{"version":1,"execution":{"R_lite":[]}}"#;
        assert!(r_is_current(r0, Some(&raw("0.0"))));
        assert!(r_is_current(r#"{"version":1,"execution":{"expiration":0}}"#, Some(&raw("0.0"))));
        // Anything unclear is not current.
        assert!(!r_is_current(r, None));
        assert!(!r_is_current(r, Some(&raw("null"))));
        assert!(!r_is_current("not json", Some(&raw("0.0"))));
        assert!(!r_is_current(r#"{"execution":{"expiration":"soon"}}"#, Some(&raw("0.0"))));
    }
}
