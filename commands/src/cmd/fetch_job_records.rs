//! `fetch-job-records`: record finished jobs as `JobRecorded` events.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use ledger::Ledger;
use projections::events::{Event, JobRecorded};
use projections::model::State;
use serde_json::{json, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::jobs;

/// Record finished jobs in the ledger, one `JobRecorded` event per job.
///
/// Sources: `--from-file` (the document `flux jobs -a --json` prints, or
/// JSON lines of job objects), `--copy` (an old flux-core job-archive
/// database), or, by default, the running Flux instance (inactive jobs
/// that ended since the newest job already recorded).
///
/// Jobs already recorded are skipped, so fetching twice changes nothing.
/// Records are appended in batches, one transaction each; a batch holding a
/// malformed record is refused whole and the error names the record.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Read job records from FILE (`-` for stdin).
    #[arg(long = "from-file", value_name = "FILE|-", conflicts_with = "copy")]
    pub from_file: Option<String>,
    /// Copy job records from an old flux-core job-archive database.
    #[arg(short = 'c', long = "copy", value_name = "ARCHIVE_DB")]
    pub copy: Option<PathBuf>,
    /// Records per batch (one transaction each).
    #[arg(long = "batch-size", default_value_t = 100_000, value_name = "N")]
    pub batch_size: usize,
    /// Print how many records were recorded and skipped.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision for one batch: the events for the jobs not yet recorded
/// (nor repeated earlier in the batch), in input order.
pub fn decide(state: &State<'_>, batch: Vec<JobRecorded>) -> Result<Vec<Event>> {
    let ids: Vec<u64> = batch.iter().map(|j| j.id).collect();
    let recorded = state.recorded_among(&ids)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(batch.len());
    for j in batch {
        if !seen.insert(j.id) || recorded.contains(&j.id) {
            continue;
        }
        out.push(Event::JobRecorded(j));
    }
    Ok(out)
}

/// Counts of an ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Records appended.
    pub recorded: u64,
    /// Records skipped (already in the ledger, or repeated).
    pub skipped: u64,
}

/// Appends records in batches of `batch_size`. Each item is
/// `(position, record)`; the first malformed record refuses its batch
/// (earlier batches stay committed) with an error naming its position.
pub fn ingest<I>(
    ctx: &Context,
    ledger: &mut Ledger,
    records: I,
    total: Option<u64>,
    batch_size: usize,
) -> Result<Ingested>
where
    I: IntoIterator<Item = (String, std::result::Result<JobRecorded, String>)>,
{
    let batch_size = batch_size.max(1);
    let meta = ctx.meta();
    let mut counts = Ingested::default();
    ctx.progress.start("recording jobs", total);
    let mut batch: Vec<JobRecorded> = Vec::with_capacity(batch_size.min(1 << 20));
    let mut flush = |batch: &mut Vec<JobRecorded>, counts: &mut Ingested| -> Result<()> {
        let n = batch.len() as u64;
        let jobs = std::mem::take(batch);
        let appended = projections::Writer::run(ledger, &meta, |s| decide(s, jobs))?;
        counts.recorded += appended.len() as u64;
        counts.skipped += n - appended.len() as u64;
        ctx.progress.inc(n);
        Ok(())
    };
    for (pos, rec) in records {
        match rec {
            Ok(j) => batch.push(j),
            Err(e) => {
                ctx.progress.finish();
                return Err(Error::invalid(format!(
                    "{pos}: malformed job record: {e}; nothing from this batch of records was recorded"
                )));
            }
        }
        if batch.len() >= batch_size {
            flush(&mut batch, &mut counts)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut counts)?;
    }
    ctx.progress.finish();
    Ok(counts)
}

fn read_input(path: &str) -> Result<String> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| Error::io(format_args!("cannot read {path}"), e))?;
    }
    Ok(text)
}

/// Records from a `flux jobs --json` document or JSON lines.
pub fn records_from_text(text: &str) -> Vec<(String, std::result::Result<JobRecorded, String>)> {
    jobs::split_input(text).into_iter().map(|(pos, v)| (pos, v.and_then(|v| jobs::job_from_json(&v)))).collect()
}

/// Records from an old flux-core job-archive database (`jobs` table: id,
/// userid, t_submit, t_run, t_inactive, ranks, R, jobspec). Rows with an
/// empty R are skipped.
pub fn records_from_archive(path: &std::path::Path) -> Result<Vec<(String, std::result::Result<JobRecorded, String>)>> {
    if !path.exists() {
        return Err(Error::invalid(format!("job-archive database does not exist: {}", path.display())));
    }
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn
        .prepare("SELECT id, userid, t_submit, t_run, t_inactive, ranks, R, jobspec FROM jobs ORDER BY t_inactive, id")
        .map_err(|e| Error::invalid(format!("{} is not a job-archive database: {e}", path.display())))?;
    let rows = stmt.query_map([], |r| {
        let v = |i: usize| -> rusqlite::Result<Value> {
            Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(x) => json!(x),
                rusqlite::types::ValueRef::Real(x) => json!(x),
                rusqlite::types::ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                rusqlite::types::ValueRef::Blob(_) => Value::Null,
            })
        };
        Ok(json!({
            "id": v(0)?, "userid": v(1)?, "t_submit": v(2)?, "t_run": v(3)?, "t_inactive": v(4)?,
            "ranks": v(5)?, "R": v(6)?, "jobspec": v(7)?,
        }))
    })?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let mut job = row?;
        if job.get("R").and_then(Value::as_str).is_some_and(str::is_empty) {
            continue;
        }
        // Old archives store the decimal id as text.
        if let Some(s) = job.get("id").and_then(Value::as_str).map(str::to_string) {
            job["id"] = match s.trim().parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => Value::String(s),
            };
        }
        let pos = format!("archive row {}", i + 1);
        out.push((pos, jobs::job_from_json(&job)));
    }
    Ok(out)
}

/// The newest `t_inactive` already recorded (0 if none).
pub fn newest_t_inactive(state: &State<'_>) -> Result<f64> {
    // The newest integer microsecond through `job_times`, then the exact
    // float of the records there.
    let v: Option<f64> = state.conn().query_row(
        "SELECT max(json_extract(CAST(e.payload AS TEXT), '$.t_inactive')) FROM job_times j \
         JOIN events e ON e.seq = j.seq WHERE j.t_inactive_us = (SELECT max(t_inactive_us) FROM job_times)",
        [],
        |r| r.get(0),
    )?;
    Ok(v.unwrap_or(0.0))
}

/// Records from the live Flux instance: `job-list.list` for inactive jobs
/// that ended after `since`, and `job-info.lookup` for each job's R and
/// jobspec. Jobs that never ran (no `t_run`, or no R) are skipped, as
/// flux-accounting skips them, and counted (the second value).
#[allow(clippy::type_complexity)]
fn records_from_flux(
    env: &crate::flux::FluxEnv,
    since: f64,
) -> Result<(Vec<(String, std::result::Result<JobRecorded, String>)>, u64)> {
    let flux = crate::flux::Flux::open(env).map_err(|e| {
        Error::invalid(format!("{e}; to read job records without Flux use --from-file FILE or --copy ARCHIVE_DB"))
    })?;
    let request = json!({
        "max_entries": 0,
        "attrs": ["userid", "t_submit", "t_run", "t_inactive", "ranks", "bank", "project", "queue", "nnodes",
                  "ncores", "duration"],
        "since": since,
        "constraint": {"and": [{"states": [64]}]},
    })
    .to_string();
    let mut listed: Vec<Value> = Vec::new();
    flux.rpc_stream("job-list.list", &request, |resp| {
        let v: Value = serde_json::from_str(resp).map_err(|e| Error::io_msg(format!("job-list.list: {e}")))?;
        if let Some(Value::Array(js)) = v.get("jobs") {
            listed.extend(js.iter().cloned());
        }
        Ok(())
    })?;
    let mut out = Vec::with_capacity(listed.len());
    let mut never_ran = 0;
    for mut job in listed {
        let Some(id) = job.get("id").and_then(Value::as_u64) else { continue };
        if job.get("t_run").is_none() {
            never_ran += 1;
            continue;
        }
        let req = json!({"id": id, "keys": ["R", "jobspec"], "flags": 2}).to_string();
        // ENOENT: the job has no R (it never ran, or its data was purged).
        // Any other failure (the broker went away) fails the fetch.
        let Some(Some(resp)) = flux.rpc_unless("job-info.lookup", Some(&req), crate::flux::ENOENT)? else {
            never_ran += 1;
            continue;
        };
        let Ok(info) = serde_json::from_str::<Value>(&resp) else { continue };
        for k in ["R", "jobspec"] {
            if let Some(v) = info.get(k) {
                job[k] = v.clone();
            }
        }
        out.push((format!("job {}", jobs::f58(id)), jobs::job_from_json(&job)));
    }
    Ok((out, never_ran))
}

/// Runs `fetch-job-records`.
pub fn cmd_fetch_job_records(ctx: &Context, args: &Args) -> Result<Output> {
    let mut ledger = crate::db::open_write(ctx)?;
    // Large ingests touch many index pages: give SQLite a bigger page cache.
    ledger.conn().pragma_update(None, "cache_size", -262_144)?;
    let mut never_ran = None;
    let records = if let Some(path) = &args.from_file {
        records_from_text(&read_input(path)?)
    } else if let Some(archive) = &args.copy {
        records_from_archive(archive)?
    } else {
        let since = newest_t_inactive(&State::new(ledger.conn()))?;
        let (records, skipped) = records_from_flux(&ctx.flux_env, since)?;
        never_ran = Some(skipped);
        records
    };
    let total = records.len() as u64;
    let counts = ingest(ctx, &mut ledger, records, Some(total), args.batch_size)?;
    if args.verbose {
        let never = never_ran.map(|n| format!(", {n} never ran (skipped)")).unwrap_or_default();
        return Ok(Output::line(format!(
            "{} job records recorded, {} already recorded{never}",
            counts.recorded, counts.skipped
        )));
    }
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn job(id: u64) -> JobRecorded {
        JobRecorded {
            id,
            userid: 1,
            username: None,
            bank: "A".into(),
            project: String::new(),
            queue: String::new(),
            t_submit: 1.0,
            t_run: 2.0,
            t_inactive: 3.0,
            nnodes: 1,
            ncores: 0,
            ngpus: 0,
            requested_duration: 0.0,
            ranks: None,
            r: None,
        }
    }

    #[test]
    fn given_recorded_job_when_fetched_again_then_skipped() {
        let g = given(&[projections_given(job(1))]);
        let evs = decide(&g.state(), vec![job(1), job(2), job(2)]).unwrap();
        assert_eq!(evs, vec![Event::JobRecorded(job(2))]);
    }

    fn projections_given(j: JobRecorded) -> crate::testing::Given<'static> {
        crate::testing::Given::Event(Event::JobRecorded(j))
    }

    #[test]
    fn malformed_record_refuses_batch() {
        let mut g = given(&[]);
        let ctx = Context::for_tests(":memory:", 10_000_000);
        let before = g.ledger.count().unwrap();
        let recs = records_from_text(
            "{\"id\":1,\"userid\":5,\"t_inactive\":3}\n{\"id\":2,\"userid\":5}\n{\"id\":3,\"userid\":5,\"t_inactive\":3}\n",
        );
        let e = ingest(&ctx, &mut g.ledger, recs, None, 1000).unwrap_err().to_string();
        assert!(e.starts_with("line 2: malformed job record: job 2: missing t_inactive"), "{e}");
        assert_eq!(g.ledger.count().unwrap(), before);
    }
}
