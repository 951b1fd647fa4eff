//! The live source of `fetch-job-records`: inactive jobs of the running
//! Flux instance, in `t_inactive` order, in windows.
//!
//! 1. One `job-list.list` request lists the id and `t_inactive` of every
//!    inactive job that ended after the newest recorded job (16 bytes per
//!    job are kept, not the records).
//! 2. In ascending `t_inactive` order, windows of [`WINDOW`] jobs are
//!    listed with their attributes (`since` and a `t_inactive <= T`
//!    constraint), and each job's `R` is looked up with `job-info.lookup`,
//!    keeping [`IN_FLIGHT`] requests outstanding on the handle instead of
//!    one round trip per job.
//! 3. Each job is checked like any other record and handed over in batches.
//!
//! Jobs that never ran (no `t_run`) are not records and are skipped.

use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::flux::{Flux, Pending};
use crate::ingest::{checked, Item, Position, SourceError};
use crate::jobs::{self, Embedded, IdField, JobInput, Rejection};

/// Jobs listed per `job-list.list` window.
pub const WINDOW: usize = 2000;
/// `job-info.lookup` requests kept in flight.
pub const IN_FLIGHT: usize = 256;

/// What job-list is asked for each job.
const ATTRS: &[&str] =
    &["userid", "t_submit", "t_run", "t_inactive", "ranks", "bank", "project", "queue", "nnodes", "ncores", "duration"];

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
        let mut jobs: Vec<(u64, f64, &RawValue)> = Vec::with_capacity(listed.jobs.len());
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
            jobs.push((id, j.t_inactive.unwrap_or(0.0), raw));
        }
        // job-list lists newest first.
        jobs.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut inflight: VecDeque<(usize, Pending<'_>)> = VecDeque::with_capacity(IN_FLIGHT);
        let mut sent = 0;
        while sent < jobs.len() || !inflight.is_empty() {
            while sent < jobs.len() && inflight.len() < IN_FLIGHT {
                let req = format!(r#"{{"id":{},"keys":["R"],"flags":3}}"#, jobs[sent].0);
                inflight.push_back((sent, self.flux.rpc_send("job-info.lookup", &req)?));
                sent += 1;
            }
            let Some((i, p)) = inflight.pop_front() else { break };
            let (id, _, raw) = jobs[i];
            // ENOENT: the job's data is gone (recorded without R); any
            // other failure (the broker went away) fails the fetch.
            let resp = match p.get() {
                Ok(r) => r,
                Err((errno, _)) if errno == crate::flux::ENOENT => None,
                Err((_, e)) => return Err(Error::io_msg(format!("job-info.lookup: {e}"))),
            };
            let lookup = resp.as_deref().and_then(|s| serde_json::from_str::<Lookup<'_>>(s).ok());
            let rec = match serde_json::from_str::<JobInput<'_>>(raw.get()) {
                Ok(mut j) => {
                    j.r = lookup.and_then(|l| l.r);
                    jobs::check(&j, self.now)
                }
                Err(e) => Err(Rejection { id: Some(id), reason: format!("invalid job record: {e}") }),
            };
            self.ready.push(checked(Position::Live(id), rec));
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
    env: &crate::flux::FluxEnv,
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
    };
    let out = run(&mut it);
    *never_ran = it.never_ran;
    out
}
