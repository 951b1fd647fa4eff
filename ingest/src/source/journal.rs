//! The job-manager's journal (`job-manager.events-journal`, flux-core
//! 0.88): the responses of the streaming RPC turned into job records, one
//! per job that reaches `clean`, as the live source (job-list) would give
//! them.
//!
//! Each response is `{"id": I, "events": [...], "jobspec"?: {...}, "R"?: {...}}`.
//! The backlog (requested with `full: true`) gives every inactive and
//! active job with all its events so far and its current (redacted)
//! jobspec and R; then comes the sentinel `{"id": -1, "events": []}`;
//! then one response per event, the jobspec with `submit` and R with
//! `alloc`. A [`Tracker`] keeps, for each job not yet ended, what its
//! record needs, the way job-list derives its attributes:
//!
//! * `userid`: the `submit` context; `t_submit`: the `submit` time;
//! * `t_run`: the `alloc` time (the job entered RUN); a job without one
//!   never ran and is skipped, as the live source skips it;
//! * `t_inactive`: the `clean` time;
//! * `bank`, `project`, `queue`, `duration`: `attributes.system` of the
//!   jobspec with every `jobspec-update` applied (each key a dotted path);
//! * `R` with every `resource-update` applied (`execution.expiration`),
//!   `ranks` its rank idset as job-list encodes it (`3`, `[0-1,4]`), and
//!   `nnodes`/`ncores`/`ngpus` counted from it by the ingest rules.
//!
//! The record is then checked by [`crate::record::check`] like any other:
//! a malformed R or jobspec is a [`Rejection`] of that job alone.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{checked, Item, Position};
use crate::record::{self, Embedded, IdField, JobInput, Rejection};

/// The events the follower asks the journal for (its `allow` filter).
pub const EVENTS: &[&str] = &["submit", "alloc", "clean", "jobspec-update", "resource-update", "invalidate"];

/// The request payload: every inactive job, then live events, of
/// [`EVENTS`] only.
pub fn request() -> String {
    let allow: Map<String, Value> = EVENTS.iter().map(|e| (e.to_string(), Value::from(1))).collect();
    serde_json::json!({"full": true, "allow": allow}).to_string()
}

#[derive(Deserialize)]
struct Response<'a> {
    id: i64,
    #[serde(default, borrow)]
    events: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    jobspec: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "R")]
    r: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    timestamp: f64,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(default)]
    context: Option<Value>,
}

/// What a job's record needs, gathered from its events.
#[derive(Debug, Default)]
struct Partial {
    userid: Option<f64>,
    t_submit: Option<f64>,
    t_run: Option<f64>,
    jobspec: Option<Value>,
    r: Option<Value>,
    /// Why the job's journal data is unusable (its record is rejected).
    bad: Option<String>,
}

/// A job that reached `clean`: its checked record (or why not) and its
/// `clean` time.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The checked record.
    pub item: Item,
    /// The job id.
    pub id: u64,
    /// The `clean` event's time, in microseconds since the epoch.
    pub clean_us: i64,
}

/// What one response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// A job's events.
    Job,
    /// The end of the backlog.
    Sentinel,
}

/// The jobs of the journal not yet ended, and counts.
#[derive(Debug, Default)]
pub struct Tracker {
    jobs: HashMap<u64, Partial>,
    /// Jobs that ended without running (skipped).
    pub never_ran: u64,
    /// `clean` events of jobs the journal never showed a `submit` of
    /// (skipped).
    pub unknown: u64,
}

/// `jpath_set`: sets the dotted `path` in `obj` to `val`, making the
/// objects on the way (job-manager's `jobspec-update`).
fn jpath_set(obj: &mut Value, path: &str, val: Value) -> Result<(), String> {
    let mut cur = obj;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let Some(map) = cur.as_object_mut() else { return Err(format!("jobspec-update path {path} is not an object")) };
        if parts.peek().is_none() {
            map.insert(p.to_string(), val);
            return Ok(());
        }
        cur = map.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// The ranks of an RFC 20 R as job-list shows them: the idset of every
/// `R_lite` entry's ranks, ranged, bracketed when more than one.
pub fn ranks_of(r: &Value) -> Option<String> {
    let lite = r.get("execution")?.get("R_lite")?.as_array()?;
    let mut ids: BTreeSet<u64> = BTreeSet::new();
    for e in lite {
        let s = e.get("rank")?.as_str()?;
        let s = s.trim();
        let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?),
                None => {
                    let a = part.trim().parse::<u64>().ok()?;
                    (a, a)
                }
            };
            if b < a || b - a > 1 << 20 {
                return None;
            }
            ids.extend(a..=b);
        }
    }
    Some(encode_idset(&ids))
}

/// `idset_encode(IDSET_FLAG_RANGE | IDSET_FLAG_BRACKETS)`.
fn encode_idset(ids: &BTreeSet<u64>) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &i in ids {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == i => *hi = i,
            _ => ranges.push((i, i)),
        }
    }
    let body: Vec<String> =
        ranges.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    if ids.len() > 1 {
        format!("[{}]", body.join(","))
    } else {
        body.join(",")
    }
}

impl Tracker {
    /// A tracker that knows no job (at each (re)connection: the backlog
    /// gives every job again).
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Jobs seen and not yet ended.
    pub fn active(&self) -> usize {
        self.jobs.len()
    }

    /// Feeds one response; the jobs it ends are pushed onto `out`, checked
    /// at ingest time `now` (epoch seconds). A response that is not the
    /// journal's shape is an error (the stream is not the journal).
    pub fn feed(&mut self, text: &str, now: f64, out: &mut Vec<Finished>) -> Result<Fed, String> {
        let resp: Response<'_> =
            serde_json::from_str(text).map_err(|e| format!("unreadable job-manager.events-journal response: {e}"))?;
        if resp.id < 0 {
            return Ok(Fed::Sentinel);
        }
        let id = resp.id as u64;
        let job = self.jobs.entry(id).or_default();
        if let Some(js) = resp.jobspec {
            match serde_json::from_str::<Value>(js.get()) {
                Ok(v) => job.jobspec = Some(v),
                Err(e) => job.bad = Some(format!("jobspec is not valid JSON: {e}")),
            }
        }
        if let Some(r) = resp.r {
            match serde_json::from_str::<Value>(r.get()) {
                Ok(v) => job.r = Some(v),
                Err(e) => job.bad = Some(format!("R is not valid JSON: {e}")),
            }
        }
        for raw in resp.events {
            let e: Entry<'_> = match serde_json::from_str(raw.get()) {
                Ok(e) => e,
                Err(e) => {
                    job.bad.get_or_insert_with(|| format!("unreadable journal event: {e}"));
                    continue;
                }
            };
            match e.name.as_ref() {
                "submit" => {
                    job.t_submit = Some(e.timestamp);
                    job.userid = e.context.as_ref().and_then(|c| c.get("userid")).and_then(Value::as_f64);
                }
                "alloc" => job.t_run = Some(e.timestamp),
                "jobspec-update" => {
                    let updates = e.context.and_then(|c| match c {
                        Value::Object(m) => Some(m),
                        _ => None,
                    });
                    match (updates, job.jobspec.as_mut()) {
                        (Some(m), Some(spec)) => {
                            for (k, v) in m {
                                if let Err(why) = jpath_set(spec, &k, v) {
                                    job.bad.get_or_insert(why);
                                }
                            }
                        }
                        _ => {
                            job.bad.get_or_insert_with(|| "jobspec-update without a jobspec or context".into());
                        }
                    }
                }
                "resource-update" => {
                    let exp = e.context.as_ref().and_then(|c| c.get("expiration")).cloned();
                    match (exp, job.r.as_mut()) {
                        (Some(x), Some(r)) => {
                            if let Err(why) = jpath_set(r, "execution.expiration", x) {
                                job.bad.get_or_insert(why.replace("jobspec-update", "resource-update"));
                            }
                        }
                        _ => {
                            job.bad.get_or_insert_with(|| "resource-update without R or expiration".into());
                        }
                    }
                }
                "invalidate" => {
                    self.jobs.remove(&id);
                    return Ok(Fed::Job);
                }
                "clean" => {
                    let Some(job) = self.jobs.remove(&id) else { return Ok(Fed::Job) };
                    let clean_us = (e.timestamp * 1e6).round() as i64;
                    if job.t_submit.is_none() && job.bad.is_none() {
                        self.unknown += 1;
                        return Ok(Fed::Job);
                    }
                    if job.t_run.is_none() {
                        self.never_ran += 1;
                        return Ok(Fed::Job);
                    }
                    let rec = record_of(id, &job, e.timestamp, now);
                    out.push(Finished { item: checked(Position::Live(id), rec), id, clean_us });
                    return Ok(Fed::Job);
                }
                _ => {}
            }
        }
        Ok(Fed::Job)
    }
}

/// The checked record of an ended job.
fn record_of(
    id: u64,
    job: &Partial,
    t_inactive: f64,
    now: f64,
) -> Result<fluxacct_core::events::JobRecorded, Rejection> {
    if let Some(why) = &job.bad {
        return Err(Rejection { id: Some(id), reason: why.clone() });
    }
    // Only attributes.system's four keys matter to the record: a small
    // jobspec with them is checked (their types), not the whole one.
    let system = job.jobspec.as_ref().and_then(|s| s.get("attributes")).and_then(|a| a.get("system"));
    let mut small = Map::new();
    if let Some(Value::Object(sys)) = system {
        for k in ["bank", "project", "queue", "duration"] {
            if let Some(v) = sys.get(k) {
                small.insert(k.to_string(), v.clone());
            }
        }
    } else if system.is_some() {
        return Err(Rejection {
            id: Some(id),
            reason: "jobspec is not valid: attributes.system is not an object".into(),
        });
    }
    let spec_text = serde_json::json!({"attributes": {"system": small}}).to_string();
    let r_text = job.r.as_ref().map(Value::to_string);
    let ranks = job.r.as_ref().and_then(ranks_of);
    let input = JobInput {
        id: Some(IdField::Ok(id)),
        userid: job.userid,
        t_submit: job.t_submit,
        t_run: job.t_run,
        t_inactive: Some(t_inactive),
        ranks: ranks.map(Into::into),
        r: r_text.as_deref().map(Embedded::Text),
        jobspec: Some(Embedded::Text(&spec_text)),
        ..JobInput::default()
    };
    record::check(&input, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxacct_core::events::Event;

    const R: &str = r#"{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-3"}}],"starttime":1.7e9,"expiration":1.8e9,"nodelist":["n[0-1]"]}}"#;

    fn submit(id: u64, t: f64, bank: &str) -> String {
        format!(
            r#"{{"id":{id},"events":[{{"timestamp":{t},"name":"submit","context":{{"userid":1001,"urgency":16,"flags":0,"version":1}}}}],"jobspec":{{"version":1,"attributes":{{"system":{{"duration":60.0,"bank":"{bank}"}}}},"tasks":[]}}}}"#
        )
    }

    fn ev(id: u64, t: f64, name: &str, ctx: &str) -> String {
        format!(r#"{{"id":{id},"events":[{{"timestamp":{t},"name":"{name}","context":{ctx}}}]}}"#)
    }

    fn alloc(id: u64, t: f64, r: &str) -> String {
        format!(r#"{{"id":{id},"events":[{{"timestamp":{t},"name":"alloc","context":{{}}}}],"R":{r}}}"#)
    }

    fn run(lines: &[String]) -> (Tracker, Vec<Finished>) {
        let mut t = Tracker::new();
        let mut out = Vec::new();
        for l in lines {
            t.feed(l, 1.9e9, &mut out).unwrap();
        }
        (t, out)
    }

    fn recorded(f: &Finished) -> fluxacct_core::events::JobRecorded {
        match f.item.rec.as_ref().map(|e| e.event().clone()) {
            Ok(Event::JobRecorded(j)) => j,
            other => panic!("not recorded: {other:?}"),
        }
    }

    #[test]
    fn given_a_streamed_job_when_it_is_cleaned_then_its_record_has_job_lists_fields() {
        let (t, out) = run(&[
            submit(7, 1.7e9, "A"),
            ev(7, 1.7e9 + 1.0, "jobspec-update", r#"{"attributes.system.project":"p1"}"#),
            alloc(7, 1.7e9 + 2.0, R),
            ev(7, 1.7e9 + 3.0, "resource-update", r#"{"expiration":1.75e9}"#),
            ev(7, 1.7e9 + 9.0, "clean", "{}"),
        ]);
        assert_eq!(t.active(), 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].clean_us, 1_700_000_009_000_000);
        let j = recorded(&out[0]);
        assert_eq!((j.id, j.userid, j.bank.as_str(), j.project.as_str()), (7, 1001, "A", "p1"));
        assert_eq!((j.t_submit, j.t_run, j.t_inactive), (1.7e9, 1.7e9 + 2.0, 1.7e9 + 9.0));
        assert_eq!((j.nnodes, j.ncores, j.requested_duration), (2, 8, 60.0));
        assert_eq!(j.ranks.as_deref(), Some("[0-1]"));
        assert!(j.r.as_ref().unwrap().as_str().contains("1750000000"), "{:?}", j.r);
    }

    #[test]
    fn given_the_backlog_when_read_then_inactive_jobs_end_at_once_and_the_sentinel_is_seen() {
        let backlog = format!(
            r#"{{"id":9,"events":[{{"timestamp":1.7e9,"name":"submit","context":{{"userid":5}}}},{{"timestamp":1.7e9,"name":"alloc"}},{{"timestamp":1.7e9,"name":"clean"}}],"jobspec":{{"attributes":{{"system":{{"duration":0}}}}}},"R":{R}}}"#
        );
        let mut t = Tracker::new();
        let mut out = Vec::new();
        assert_eq!(t.feed(&backlog, 1.9e9, &mut out), Ok(Fed::Job));
        assert_eq!(t.feed(r#"{"id":-1,"events":[]}"#, 1.9e9, &mut out), Ok(Fed::Sentinel));
        assert_eq!(out.len(), 1);
        assert_eq!(recorded(&out[0]).ranks.as_deref(), Some("[0-1]"));
    }

    #[test]
    fn given_a_job_that_never_ran_when_cleaned_then_skipped_and_counted() {
        let (t, out) = run(&[submit(3, 1.7e9, "A"), ev(3, 1.7e9 + 1.0, "clean", "{}")]);
        assert!(out.is_empty());
        assert_eq!(t.never_ran, 1);
    }

    #[test]
    fn given_malformed_r_or_jobspec_when_cleaned_then_that_job_alone_is_rejected() {
        let (_, out) = run(&[
            submit(1, 1.7e9, "A"),
            alloc(1, 1.7e9 + 1.0, r#""not an R""#),
            submit(2, 1.7e9, "A"),
            ev(2, 1.7e9, "jobspec-update", r#"{"attributes.system.bank":42}"#),
            alloc(2, 1.7e9 + 1.0, R),
            submit(3, 1.7e9, "A"),
            alloc(3, 1.7e9 + 1.0, R),
            ev(1, 1.7e9 + 2.0, "clean", "{}"),
            ev(2, 1.7e9 + 2.0, "clean", "{}"),
            ev(3, 1.7e9 + 2.0, "clean", "{}"),
        ]);
        assert_eq!(out.len(), 3);
        let r1 = out[0].item.rec.as_ref().unwrap_err();
        assert_eq!(r1.id, Some(1));
        assert!(r1.reason.contains("R"), "{}", r1.reason);
        let r2 = out[1].item.rec.as_ref().unwrap_err();
        assert!(r2.reason.contains("jobspec is not valid"), "{}", r2.reason);
        assert_eq!(recorded(&out[2]).id, 3);
    }

    #[test]
    fn given_an_invalidated_job_when_it_goes_then_nothing_is_kept() {
        let (t, out) = run(&[submit(4, 1.7e9, "A"), ev(4, 1.7e9, "invalidate", "{}")]);
        assert!(out.is_empty());
        assert_eq!(t.active(), 0);
    }

    #[test]
    fn ranks_are_encoded_as_job_list_encodes_them() {
        let r = |s: &str| serde_json::json!({"execution": {"R_lite": [{"rank": s}]}});
        assert_eq!(ranks_of(&r("3")).as_deref(), Some("3"));
        assert_eq!(ranks_of(&r("0-1,4")).as_deref(), Some("[0-1,4]"));
        assert_eq!(ranks_of(&r("0,1,2")).as_deref(), Some("[0-2]"));
        assert_eq!(ranks_of(&r("x")), None);
    }

    #[test]
    fn the_request_asks_for_the_whole_backlog_and_the_needed_events() {
        let v: Value = serde_json::from_str(&request()).unwrap();
        assert_eq!(v["full"], true);
        assert_eq!(v["allow"]["clean"], 1);
    }
}
