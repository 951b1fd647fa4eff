//! `view-job-records`: list recorded jobs, with filters.

use projections::model::State;
use serde_json::{json, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::{self, Rows};
use crate::names::{user_uids, UserNames};
use fluxacct_ingest::record::{self as jobs, IdForm};

/// List recorded jobs. Filters are AND-ed. Duration expressions are
/// `"<op> <number>"` with op one of `<`, `<=`, `=`, `>=`, `>` (seconds).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only jobs of this user (name, or uid).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Only this job (any FLUID form: decimal, hex, dothex, kvs, f58).
    #[arg(short = 'j', long = "jobid")]
    pub jobid: Option<String>,
    /// Only jobs that started after this time.
    #[arg(short = 'a', long = "after-start-time", value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub after_start_time: Option<String>,
    /// Only jobs that ended before this time.
    #[arg(short = 'b', long = "before-end-time", value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub before_end_time: Option<String>,
    /// Only jobs of this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Only jobs of this bank.
    #[arg(short = 'B', long)]
    pub bank: Option<String>,
    /// Requested duration expressions.
    #[arg(short = 'd', long = "requested-duration", num_args = 1.., value_name = "EXPR")]
    pub requested_duration: Vec<String>,
    /// Actual duration expressions.
    #[arg(short = 'e', long = "actual-duration", num_args = 1.., value_name = "EXPR")]
    pub actual_duration: Vec<String>,
    /// Expressions on requested minus actual duration.
    #[arg(short = 'D', long = "duration-delta", num_args = 1.., value_name = "EXPR")]
    pub duration_delta: Vec<String>,
    /// Output format (Python format string over the job fields).
    #[arg(short = 'o', long)]
    pub format: Option<String>,
    /// List the records `fetch-job-records` rejected instead (seq, time,
    /// job id, where the record was, and why); `--jobid` still applies.
    #[arg(long, conflicts_with = "format")]
    pub rejected: bool,
    /// Only the recorded jobs that match no association (their bank is
    /// empty or unknown, or their uid has no association in it): recorded,
    /// as flux-accounting records them, but charged to nobody.
    #[arg(long, conflicts_with = "rejected")]
    pub orphans: bool,
    /// The accounting centre instead of the ledger.
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

/// Read-only: the `JobRejected` events, oldest first, as a table.
pub fn rejected(ctx: &Context, state: &State<'_>, jobid: Option<u64>) -> Result<String> {
    let mut stmt = state
        .conn()
        .prepare("SELECT seq, recorded_at, version, payload FROM events WHERE kind = 'JobRejected' ORDER BY seq")?;
    let mut q = stmt.query([])?;
    let head = ["seq", "recorded_at", "jobid", "position", "reason"];
    let mut cells: Vec<Vec<String>> = Vec::new();
    while let Some(r) = q.next()? {
        let seq: i64 = r.get(0)?;
        let at: i64 = r.get(1)?;
        let payload: Vec<u8> = r.get(3)?;
        let fluxacct_core::Event::JobRejected(e) = fluxacct_core::Event::decode("JobRejected", r.get(2)?, &payload)?
        else {
            continue;
        };
        if jobid.is_some() && e.id != jobid {
            continue;
        }
        let when = crate::time::table_time(at, ctx.zone);
        cells.push(vec![
            seq.to_string(),
            when,
            e.id.map(|id| ctx.jobid(id)).unwrap_or_else(|| "-".into()),
            e.position,
            e.reason,
        ]);
    }
    // The last column (the reason) is not padded.
    Ok(lines(&head, &cells, false))
}

/// The lines of a listing, each ending in a newline.
fn lines(head: &[&str], cells: &[Vec<String>], pad_last: bool) -> String {
    let mut out = String::new();
    for l in format::pipe_lines(head, cells, format::PipeStyle { rule: false, pad_last }) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A comparison `<op> <number>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expr {
    op: &'static str,
    value: f64,
}

impl Expr {
    /// Parses `"<op> <number>"` (flux-accounting's messages on error).
    pub fn parse(s: &str) -> Result<Expr> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        if parts.len() != 2 {
            return Err(Error::invalid("expression expects one operator and one value"));
        }
        let op = match parts[0] {
            "<" => "<",
            "<=" => "<=",
            "=" => "=",
            ">=" => ">=",
            ">" => ">",
            _ => return Err(Error::invalid("expression must start with <, <=, =, >=, or >")),
        };
        let value = parts[1]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Error::invalid("expression expects to be compared with a number"))?;
        Ok(Expr { op, value })
    }

    /// Whether `x` satisfies the comparison.
    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            "<" => x < self.value,
            "<=" => x <= self.value,
            "=" => x == self.value,
            ">=" => x >= self.value,
            _ => x > self.value,
        }
    }
}

/// The fields `-o` may use.
pub const FIELDS: &[&str] = &[
    "jobid",
    "username",
    "userid",
    "t_submit",
    "t_run",
    "t_inactive",
    "nnodes",
    "resources",
    "project",
    "bank",
    "requested_duration",
    "actual_duration",
    "duration_delta",
    "jobid.dec",
    "jobid.hex",
    "jobid.dothex",
    "jobid.kvs",
    "jobid.f58",
    "jobid.f58plain",
    "jobid.words",
];

/// The default columns.
pub const COLUMNS: &[&str] = &[
    "jobid",
    "username",
    "userid",
    "t_submit",
    "t_run",
    "t_inactive",
    "nnodes",
    "project",
    "bank",
    "requested_duration",
    "actual_duration",
    "duration_delta",
];

/// The job id of the `JobRecorded` event at `seq`, decoded from its payload.
fn exact_id(conn: &rusqlite::Connection, seq: i64) -> Result<u64> {
    let (version, payload): (i64, Vec<u8>) =
        conn.query_row("SELECT version, payload FROM events WHERE seq = ?1", [seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let version = u32::try_from(version).map_err(|_| Error::invalid(format!("event {seq}: bad version")))?;
    Ok(projections::schema::job_key(version, &payload)?.0)
}

/// Read-only: the matching jobs as rows of every field.
///
/// A job record whose payload is not valid JSON (a damaged or edited
/// record) fails SQLite's JSON functions for the whole query: then the bad
/// records are looked for, each named on stderr with its seq, and the
/// query runs again without them.
pub fn rows(ctx: &Context, state: &State<'_>, args: &Args) -> Result<Rows> {
    crate::db::without_unreadable_jobs(ctx, state.conn(), |skip| rows_without(ctx, state, args, skip))
}

fn rows_without(ctx: &Context, state: &State<'_>, args: &Args, skip: Option<String>) -> Result<Rows> {
    let exprs = |v: &[String]| v.iter().map(|s| Expr::parse(s)).collect::<Result<Vec<_>>>();
    let (dreq, dact, ddelta) =
        (exprs(&args.requested_duration)?, exprs(&args.actual_duration)?, exprs(&args.duration_delta)?);
    // The uids of --user, as a JSON array for the query.
    let uids = match &args.user {
        Some(u) => Some(serde_json::to_string(&user_uids(ctx, state, u)?).map_err(|e| Error::io_msg(e.to_string()))?),
        None => None,
    };
    let mut names = UserNames::new(ctx, state)?;
    let orphans = if args.orphans { Some(fluxacct_ingest::write::Orphans::read(state)?) } else { None };
    let jobid = match &args.jobid {
        Some(j) => Some(projections::schema::id_key(
            jobs::parse_jobid(j).ok_or_else(|| Error::invalid(format!("invalid job id: {j}")))?,
        )),
        None => None,
    };
    let after = args.after_start_time.as_deref().map(|t| ctx.parse_time_secs(t)).transpose()?;
    let before = args.before_end_time.as_deref().map(|t| ctx.parse_time_secs(t)).transpose()?;
    let mut stmt = state.conn().prepare(
        "SELECT id, userid, username, t_submit, t_run, t_inactive, nnodes, ncores, ngpus, project, bank, \
         requested_duration, actual_duration, seq FROM jobs \
         WHERE (?8 IS NULL OR seq NOT IN (SELECT value FROM json_each(?8))) AND (?1 IS NULL OR userid IN (SELECT value FROM json_each(?1))) AND (?2 IS NULL OR seq IN (SELECT seq FROM job_ids WHERE id = ?2)) AND (?3 IS NULL OR t_run > ?3) \
         AND (?4 IS NULL OR t_inactive < ?4) AND (?5 IS NULL OR project = ?5) AND (?6 IS NULL OR bank = ?6) \
         AND (?7 IS NULL OR t_inactive >= ?7) ORDER BY seq",
    )?;
    // Records before the last scrub-old-jobs cut are no longer listed.
    let scrubbed = state.jobs_scrubbed_before()?;
    let mut out = Rows::new(FIELDS);
    let mut q = stmt.query(rusqlite::params![uids, jobid, after, before, args.project, args.bank, scrubbed, skip])?;
    while let Some(r) = q.next()? {
        let id = match r.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(i) => i as u64,
            // An id from 2^63 up, which SQLite's JSON reader gives as a
            // float: read exactly from the record.
            _ => exact_id(state.conn(), r.get(13)?)?,
        };
        let userid: i64 = r.get(1)?;
        let req: f64 = r.get(11)?;
        let act: f64 = r.get(12)?;
        let delta = req - act;
        let bank: String = r.get(10)?;
        if orphans.as_ref().is_some_and(|o| o.why(userid, &bank).is_none()) {
            continue;
        }
        if !dreq.iter().all(|e| e.holds(req))
            || !dact.iter().all(|e| e.holds(act))
            || !ddelta.iter().all(|e| e.holds(delta))
        {
            continue;
        }
        let f58 = ctx.jobid(id);
        out.push(vec![
            json!(f58),
            json!(names.name(userid, r.get(2)?)),
            json!(userid),
            json!(r.get::<_, f64>(3)?),
            json!(r.get::<_, f64>(4)?),
            json!(r.get::<_, f64>(5)?),
            json!(r.get::<_, i64>(6)?),
            json!({"nnodes": r.get::<_, i64>(6)?, "ncores": r.get::<_, i64>(7)?, "ngpus": r.get::<_, i64>(8)?}),
            json!(r.get::<_, String>(9)?),
            json!(bank),
            json!(req),
            json!(act),
            json!(delta),
            json!(id),
            json!(ctx.jobid_as(id, IdForm::Hex)),
            json!(ctx.jobid_as(id, IdForm::Dothex)),
            json!(ctx.jobid_as(id, IdForm::Kvs)),
            json!(f58),
            json!(ctx.jobid_as(id, IdForm::F58Plain)),
            json!(ctx.jobid_as(id, IdForm::Words)),
        ]);
    }
    Ok(out)
}

/// Renders the default table: columns left-aligned to the widest cell,
/// floats with 2 decimals.
pub fn table(rows: &Rows) -> String {
    // Rows of several clusters lead with a `cluster` column.
    let several = rows.columns.first().is_some_and(|c| c == "cluster");
    let columns: Vec<&str> = several.then_some("cluster").into_iter().chain(COLUMNS.iter().copied()).collect();
    let idx: Vec<usize> = columns.iter().map(|c| rows.columns.iter().position(|x| x == c).unwrap_or(0)).collect();
    let cell = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
            other => other.to_string(),
        }
    };
    let cells: Vec<Vec<String>> = rows.rows.iter().map(|r| idx.iter().map(|&i| cell(&r[i])).collect()).collect();
    lines(&columns, &cells, true)
}

/// Read-only: renders the listing.
pub fn view(ctx: &Context, state: &State<'_>, args: &Args) -> Result<Output> {
    if args.rejected {
        let jobid = match &args.jobid {
            Some(j) => Some(jobs::parse_jobid(j).ok_or_else(|| Error::invalid(format!("invalid job id: {j}")))?),
            None => None,
        };
        return Ok(Output::text(rejected(ctx, state, jobid)?));
    }
    if let Some(fmt) = &args.format {
        for f in crate::format::format_fields(fmt)? {
            if !FIELDS.contains(&f.as_str()) {
                return Err(Error::invalid(format!("Unknown format field: {f}")));
            }
        }
        let rows = rows(ctx, state, args)?;
        return Ok(Output::line(crate::format::as_format(&rows, fmt)?));
    }
    Ok(Output::text(table(&rows(ctx, state, args)?)))
}

/// Read-only: the listing over the centre's clusters (one cluster: the
/// local listing; several: with a `cluster` column, also a `--format` field).
fn view_centre(ctx: &Context, client: &mut postgres::Client, names: &[String], args: &Args) -> Result<Output> {
    let views = crate::centre_view::job_views(client, names)?;
    if let [one] = views.as_slice() {
        return view(ctx, &one.state(), args);
    }
    if args.rejected {
        return Err(Error::invalid("--rejected reads one cluster at a time: give --cluster NAME"));
    }
    let mut parts = Vec::new();
    for v in &views {
        parts.push((v.name.clone(), rows(ctx, &v.state(), args)?));
    }
    let all = crate::centre_view::with_cluster_column(parts);
    if let Some(fmt) = &args.format {
        for f in crate::format::format_fields(fmt)? {
            if f != "cluster" && !FIELDS.contains(&f.as_str()) {
                return Err(Error::invalid(format!("Unknown format field: {f}")));
            }
        }
        return Ok(Output::line(crate::format::as_format(&all, fmt)?));
    }
    Ok(Output::text(table(&all)))
}

/// Runs `view-job-records`.
pub fn cmd_view_job_records(ctx: &Context, args: &Args) -> Result<Output> {
    if let Some((mut client, names)) = crate::centre_view::open(&args.centre)? {
        return view_centre(ctx, &mut client, &names, args);
    }
    let db = crate::db::open_read(ctx)?;
    view(ctx, &State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        assert!(Expr::parse("< 10").unwrap().holds(9.0));
        assert!(!Expr::parse(">= 10").unwrap().holds(9.0));
        assert!(Expr::parse("= 10").unwrap().holds(10.0));
        assert_eq!(Expr::parse("<10").unwrap_err().to_string(), "expression expects one operator and one value");
        assert_eq!(Expr::parse("~ 10").unwrap_err().to_string(), "expression must start with <, <=, =, >=, or >");
        assert_eq!(Expr::parse("< x").unwrap_err().to_string(), "expression expects to be compared with a number");
    }
}
