//! `allocation-statement`: opening balance, deposits, charges per user
//! (and per job), liens, closing balance; exact.

use fluxacct_core::allocation::format_milli;
use projections::model::State;
use serde_json::json;

use crate::allocation_view::{charge_json, charge_line, time_s};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Print the statement of an allocation: the balance before START, the
/// allocation's events (by when they were recorded) and its charges per
/// user (by when the job ended) until END, liens, and the closing
/// balance. The numbers add up exactly (integer thousandths of the unit).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Allocation name.
    pub name: String,
    /// Start of the statement (default: the beginning).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the statement, exclusive (default: now and after).
    #[arg(long)]
    pub end: Option<String>,
    /// Also list every charged job.
    #[arg(long)]
    pub jobs: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Read-only: renders the statement over [`from`, `to`) (epoch seconds).
pub fn view(state: &State<'_>, args: &Args, from: f64, to: f64, ctx: &Context) -> Result<Output> {
    let conn = state.conn();
    let Some(s) = projections::allocation::statement(conn, &args.name, from, to)? else {
        return Err(Error::invalid(format!("allocation {} not found", args.name)));
    };
    let jobs = if args.jobs { projections::allocation::charges(conn, &args.name, from, to)? } else { Vec::new() };
    let a = &s.allocation;
    let bound = |t: f64| if t.is_finite() { Some(t) } else { None };
    if args.json {
        let mut v = json!({
            "allocation": a.name,
            "bank": a.bank,
            "project": a.project,
            "unit": a.unit,
            "start": bound(s.from),
            "end": bound(s.to),
            "opening": format_milli(s.opening_milli),
            "opening_milli": s.opening_milli,
            "transactions": s.transactions.iter().map(|t| json!({
                "seq": t.seq, "kind": t.kind, "at": t.at_s,
                "amount": format_milli(t.amount_milli), "amount_milli": t.amount_milli,
            })).collect::<Vec<_>>(),
            "deposited": format_milli(s.transactions_milli),
            "deposited_milli": s.transactions_milli,
            "charges": s.users.iter().map(|u| json!({
                "userid": u.userid, "username": u.username, "jobs": u.jobs,
                "amount": format_milli(u.amount_milli), "amount_milli": u.amount_milli,
            })).collect::<Vec<_>>(),
            "charged": format_milli(s.charged_milli),
            "charged_milli": s.charged_milli,
            "liens": format_milli(s.liens_milli),
            "liens_milli": s.liens_milli,
            "closing": format_milli(s.closing_milli),
            "closing_milli": s.closing_milli,
        });
        if args.jobs {
            v["jobs"] = jobs.iter().map(|c| charge_json(c, ctx.jobid(c.jobid))).collect();
        }
        return Ok(Output::line(crate::format::to_pretty_json(&v)));
    }
    let t = |x: f64| if x.is_finite() { time_s(x.floor() as i64, ctx.zone) } else { "-".to_string() };
    let mut out = String::new();
    out.push_str(&format!(
        "statement of allocation {} (bank {}{}, {})\n",
        a.name,
        a.bank,
        a.project.as_deref().map(|p| format!(", project {p}")).unwrap_or_default(),
        a.unit
    ));
    out.push_str(&format!("from {} to {}\n", t(s.from), t(s.to)));
    out.push_str(&format!("opening balance {:>24}\n", format_milli(s.opening_milli)));
    out.push_str("allocation events\n");
    for tr in &s.transactions {
        out.push_str(&format!(
            "  {:<11} {:<33} {:>14}\n",
            tr.kind,
            time_s(tr.at_s, ctx.zone),
            format!("{}{}", if tr.amount_milli >= 0 { "+" } else { "" }, format_milli(tr.amount_milli))
        ));
    }
    out.push_str(&format!("  total {:>34}\n", format_milli(s.transactions_milli)));
    out.push_str("charges\n");
    for u in &s.users {
        let who =
            if u.username.is_empty() { format!("uid {}", u.userid) } else { format!("{} ({})", u.username, u.userid) };
        let n = crate::format::count_of(u.jobs as usize, "job", "jobs");
        out.push_str(&format!("  {who:<24} {n:>10} {:>14}\n", format!("-{}", format_milli(u.amount_milli))));
    }
    out.push_str(&format!("  total {:>34}\n", format!("-{}", format_milli(s.charged_milli))));
    if args.jobs {
        out.push_str("jobs\n");
        for c in &jobs {
            out.push_str(&charge_line(c, &ctx.jobid(c.jobid)));
            out.push('\n');
        }
    }
    out.push_str(&format!("liens {:>34}\n", format_milli(s.liens_milli)));
    out.push_str(&format!("closing balance {:>24}\n", format_milli(s.closing_milli)));
    Ok(Output::text(out))
}

/// Runs `allocation-statement`.
pub fn cmd_allocation_statement(ctx: &Context, args: &Args) -> Result<Output> {
    let from = args.start.as_deref().map(|s| ctx.parse_time_secs(s)).transpose()?.unwrap_or(f64::NEG_INFINITY);
    let to = args.end.as_deref().map(|s| ctx.parse_time_secs(s)).transpose()?.unwrap_or(f64::INFINITY);
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args, from, to, ctx)
}
