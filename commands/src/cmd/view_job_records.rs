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
    #[arg(short = 'j', long = "jobid", value_parser = crate::validate::jobid_arg)]
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
    #[arg(short = 'd', long = "requested-duration", num_args = 1.., value_name = "EXPR", value_parser = expr_arg)]
    pub requested_duration: Vec<String>,
    /// Actual duration expressions.
    #[arg(short = 'e', long = "actual-duration", num_args = 1.., value_name = "EXPR", value_parser = expr_arg)]
    pub actual_duration: Vec<String>,
    /// Expressions on requested minus actual duration.
    #[arg(short = 'D', long = "duration-delta", num_args = 1.., value_name = "EXPR", value_parser = expr_arg)]
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
    /// Add what each job was charged and to which allocation (columns
    /// `allocation` and `charge`, in the allocation's unit; empty when the
    /// job was charged to none).
    #[arg(long, conflicts_with = "rejected")]
    pub charges: bool,
    /// The accounting centre instead of the ledger.
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

/// Read-only: the `JobRejected` events, oldest first, as a table.
///
/// A rejection whose payload cannot be decoded (a damaged or hand-edited
/// event) does not stop the listing: it is shown with what can be read
/// (its seq and time, the job id and position when the bytes are still
/// JSON) and `unreadable rejection: …` as its reason, and a notice names
/// it on stderr.
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
        let decoded = u32::try_from(r.get::<_, i64>(2)?)
            .map_err(|_| "version out of range".to_string())
            .and_then(|v| fluxacct_core::Event::decode("JobRejected", v, &payload).map_err(|e| e.to_string()));
        let (id, position, reason) = match decoded {
            Ok(fluxacct_core::Event::JobRejected(e)) => (e.id, e.position, e.reason),
            Ok(_) => continue,
            Err(why) => {
                ctx.progress.notice(&format!(
                    "flux-account: warning: the rejection at seq {seq} is unreadable ({why}); listed with what \
                     can be read; see `flux account verify`"
                ));
                let loose: Option<Value> = serde_json::from_slice(&payload).ok();
                let field = |k: &str| loose.as_ref().and_then(|v| v.get(k).cloned());
                let id = field("id").and_then(|v| v.as_u64());
                let position = field("position").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or("?".into());
                (id, position, format!("unreadable rejection: {why}"))
            }
        };
        if jobid.is_some() && id != jobid {
            continue;
        }
        let when = crate::time::table_time(at, ctx.zone);
        cells.push(vec![
            seq.to_string(),
            when,
            id.map(|id| ctx.jobid(id)).unwrap_or_else(|| "-".into()),
            position,
            reason,
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

/// Clap's value parser of a duration expression (`-d`, `-e`, `-D`).
fn expr_arg(s: &str) -> std::result::Result<String, String> {
    Expr::parse(s).map(|_| s.to_string()).map_err(|e| e.to_string())
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
    "allocation",
    "charge",
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

/// One listed job record: the fields of its `JobRecorded` payload that the
/// listing shows, read once per record.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// The job id.
    pub id: u64,
    /// The uid the job ran as.
    pub userid: i64,
    /// The name the record carried, if any.
    pub username: Option<String>,
    /// Submit, run and inactive times (seconds since the epoch).
    pub t_submit: f64,
    /// When the job started running.
    pub t_run: f64,
    /// When the job became inactive.
    pub t_inactive: f64,
    /// Nodes, cores and GPUs.
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
    /// The project.
    pub project: String,
    /// The bank.
    pub bank: String,
    /// The requested duration (seconds).
    pub requested_duration_s: f64,
    /// Seq of the `JobRecorded` event (0 until [`records`] sets it).
    pub seq: i64,
}

impl JobRow {
    /// Reads the listed fields of a stored `JobRecorded` payload: straight
    /// from a version-1 payload, other versions through
    /// [`fluxacct_core::Event::decode`] (which upcasts them).
    fn decode(version: u32, payload: &[u8]) -> std::result::Result<JobRow, String> {
        /// The fields listed, borrowed from the payload where they need
        /// no unescaping.
        #[derive(serde::Deserialize)]
        struct Listed<'a> {
            id: u64,
            userid: i64,
            #[serde(default, borrow)]
            username: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            bank: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            project: std::borrow::Cow<'a, str>,
            t_submit: f64,
            t_run: f64,
            t_inactive: f64,
            nnodes: i64,
            ncores: i64,
            ngpus: i64,
            requested_duration: f64,
        }
        if version == 1 {
            if let Ok(l) = serde_json::from_slice::<Listed<'_>>(payload) {
                return Ok(JobRow {
                    id: l.id,
                    userid: l.userid,
                    username: l.username.map(|u| u.into_owned()),
                    t_submit: l.t_submit,
                    t_run: l.t_run,
                    t_inactive: l.t_inactive,
                    nnodes: l.nnodes,
                    ncores: l.ncores,
                    ngpus: l.ngpus,
                    project: l.project.into_owned(),
                    bank: l.bank.into_owned(),
                    requested_duration_s: l.requested_duration,
                    seq: 0,
                });
            }
        }
        match fluxacct_core::Event::decode("JobRecorded", version, payload) {
            Ok(fluxacct_core::Event::JobRecorded(j)) => Ok(JobRow {
                id: j.id,
                userid: j.userid,
                username: j.username,
                t_submit: j.t_submit,
                t_run: j.t_run,
                t_inactive: j.t_inactive,
                nnodes: j.nnodes,
                ncores: j.ncores,
                ngpus: j.ngpus,
                project: j.project,
                bank: j.bank,
                requested_duration_s: j.requested_duration,
                seq: 0,
            }),
            Ok(other) => Err(format!("decoded as {}", other.kind())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The run time, derived as the apply path derives it: inactive minus
    /// run time when the job ran, else 0.
    pub fn actual_duration_s(&self) -> f64 {
        if self.t_run > 0.0 && self.t_inactive >= self.t_run {
            self.t_inactive - self.t_run
        } else {
            0.0
        }
    }

    /// Requested minus actual duration.
    pub fn duration_delta_s(&self) -> f64 {
        self.requested_duration_s - self.actual_duration_s()
    }
}

/// Read-only: the matching job records, in log order, each with its
/// display user name.
///
/// Each payload is read once, in Rust. A job record whose payload is not
/// valid JSON or not a job record (a damaged or edited record) is named on
/// stderr with its seq and left out: one bad record does not stop the
/// listing.
pub fn records(ctx: &Context, state: &State<'_>, args: &Args) -> Result<Vec<(JobRow, String)>> {
    let exprs = |v: &[String]| v.iter().map(|s| Expr::parse(s)).collect::<Result<Vec<_>>>();
    let (dreq, dact, ddelta) =
        (exprs(&args.requested_duration)?, exprs(&args.actual_duration)?, exprs(&args.duration_delta)?);
    let uids: Option<std::collections::HashSet<i64>> = match &args.user {
        Some(u) => Some(user_uids(ctx, state, u)?.into_iter().collect()),
        None => None,
    };
    let mut names = UserNames::new(ctx, state)?;
    let orphans = if args.orphans { Some(fluxacct_ingest::write::Orphans::read(state)?) } else { None };
    let jobid = match &args.jobid {
        Some(j) => Some(jobs::parse_jobid(j).ok_or_else(|| Error::invalid(format!("invalid job id: {j}")))?),
        None => None,
    };
    let after = args.after_start_time.as_deref().map(|t| ctx.parse_time_secs(t)).transpose()?;
    let before = args.before_end_time.as_deref().map(|t| ctx.parse_time_secs(t)).transpose()?;
    // Records before the last scrub-old-jobs cut are no longer listed.
    let scrubbed = state.jobs_scrubbed_before()?;
    let mut stmt = state.conn().prepare(
        "SELECT seq, version, payload FROM events WHERE kind = 'JobRecorded' \
         AND (?1 IS NULL OR seq IN (SELECT seq FROM job_ids WHERE id = ?1)) ORDER BY seq",
    )?;
    let mut q = stmt.query([jobid.map(projections::schema::id_key)])?;
    let mut out = Vec::new();
    while let Some(r) = q.next()? {
        let seq: i64 = r.get(0)?;
        let payload = r.get_ref(2)?.as_bytes().map_err(rusqlite::Error::from)?;
        let job = match u32::try_from(r.get::<_, i64>(1)?) {
            Ok(version) => JobRow::decode(version, payload),
            Err(_) => Err("version out of range".into()),
        };
        let job = match job {
            Ok(j) => JobRow { seq, ..j },
            Err(why) => {
                let why = if serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_err() {
                    "malformed JSON".to_string()
                } else {
                    why
                };
                ctx.progress.notice(&format!(
                    "flux-account: warning: the job record at seq {seq} is unreadable ({why}) and is left out; \
                     see `flux account verify` and `repair`"
                ));
                continue;
            }
        };
        let keep = jobid.is_none_or(|id| id == job.id)
            && uids.as_ref().is_none_or(|u| u.contains(&job.userid))
            && after.is_none_or(|t| job.t_run > t)
            && before.is_none_or(|t| job.t_inactive < t)
            && args.project.as_ref().is_none_or(|p| *p == job.project)
            && args.bank.as_ref().is_none_or(|b| *b == job.bank)
            && scrubbed.is_none_or(|t| job.t_inactive >= t)
            && orphans.as_ref().is_none_or(|o| o.why(job.userid, &job.bank).is_some());
        if !keep {
            continue;
        }
        let (req, act, delta) = (job.requested_duration_s, job.actual_duration_s(), job.duration_delta_s());
        if !dreq.iter().all(|e| e.holds(req))
            || !dact.iter().all(|e| e.holds(act))
            || !ddelta.iter().all(|e| e.holds(delta))
        {
            continue;
        }
        let name = names.name(job.userid, job.username.clone());
        out.push((job, name));
    }
    Ok(out)
}

/// Read-only: the matching jobs as rows of every field ([`FIELDS`]).
pub fn rows(ctx: &Context, state: &State<'_>, args: &Args) -> Result<Rows> {
    let mut out = Rows::new(FIELDS);
    for (job, name) in records(ctx, state, args)? {
        let id = job.id;
        let f58 = ctx.jobid(id);
        let (allocation, charge) = if args.charges || args.format.is_some() {
            match projections::allocation::charge_of(state.conn(), job.seq)? {
                Some(c) => (json!(c.allocation), json!(fluxacct_core::allocation::format_milli(c.amount_milli))),
                None => (json!(""), json!("")),
            }
        } else {
            (json!(""), json!(""))
        };
        out.push(vec![
            json!(f58),
            json!(name),
            json!(job.userid),
            json!(job.t_submit),
            json!(job.t_run),
            json!(job.t_inactive),
            json!(job.nnodes),
            json!({"nnodes": job.nnodes, "ncores": job.ncores, "ngpus": job.ngpus}),
            json!(job.project),
            json!(job.bank),
            json!(job.requested_duration_s),
            json!(job.actual_duration_s()),
            json!(job.duration_delta_s()),
            json!(id),
            json!(ctx.jobid_as(id, IdForm::Hex)),
            json!(ctx.jobid_as(id, IdForm::Dothex)),
            json!(ctx.jobid_as(id, IdForm::Kvs)),
            json!(f58),
            json!(ctx.jobid_as(id, IdForm::F58Plain)),
            json!(ctx.jobid_as(id, IdForm::Words)),
            allocation,
            charge,
        ]);
    }
    Ok(out)
}

/// Renders the default table ([`COLUMNS`]): columns left-aligned to the
/// widest cell, floats with 2 decimals.
pub fn table(ctx: &Context, jobs: &[(JobRow, String)]) -> String {
    let cells: Vec<Vec<String>> = jobs
        .iter()
        .map(|(j, name)| {
            vec![
                ctx.jobid(j.id),
                name.clone(),
                j.userid.to_string(),
                format!("{:.2}", j.t_submit),
                format!("{:.2}", j.t_run),
                format!("{:.2}", j.t_inactive),
                j.nnodes.to_string(),
                j.project.clone(),
                j.bank.clone(),
                format!("{:.2}", j.requested_duration_s),
                format!("{:.2}", j.actual_duration_s()),
                format!("{:.2}", j.duration_delta_s()),
            ]
        })
        .collect();
    lines(COLUMNS, &cells, true)
}

/// The listing with the columns `columns` (`--charges`, the centre's
/// rows), from [`rows`]; rows of several clusters lead with a `cluster`
/// column.
fn table_of(rows: &Rows, columns: &[&str]) -> String {
    let several = rows.columns.first().is_some_and(|c| c == "cluster");
    let columns: Vec<&str> = several.then_some("cluster").into_iter().chain(columns.iter().copied()).collect();
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
    if args.charges {
        let mut columns = COLUMNS.to_vec();
        columns.extend(["allocation", "charge"]);
        return Ok(Output::text(table_of(&rows(ctx, state, args)?, &columns)));
    }
    Ok(Output::text(table(ctx, &records(ctx, state, args)?)))
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
    Ok(Output::text(table_of(&all, COLUMNS)))
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
