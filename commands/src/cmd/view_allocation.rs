//! `view-allocation`: one allocation's balance (and what was charged to it).

use projections::model::State;

use crate::allocation_view::{allocation_json, allocation_text, charge_json, charge_line};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Show an allocation: allocated, charged, reserved in liens, remaining,
/// period and policy (Gold's balance view).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Allocation name.
    pub name: String,
    /// Also list every job charged to it.
    #[arg(long)]
    pub jobs: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Read-only: renders the view. `jobid` formats a job id.
pub fn view(state: &State<'_>, args: &Args, ctx: &Context) -> Result<Output> {
    let conn = state.conn();
    let Some(a) = projections::allocation::allocation(conn, &args.name)? else {
        return Err(Error::invalid(format!("allocation {} not found", args.name)));
    };
    let charges = if args.jobs {
        projections::allocation::charges(conn, &a.name, f64::NEG_INFINITY, f64::INFINITY)?
    } else {
        Vec::new()
    };
    if args.json {
        let mut v = allocation_json(&a);
        if args.jobs {
            v["jobs"] = charges.iter().map(|c| charge_json(c, ctx.jobid(c.jobid))).collect();
        }
        return Ok(Output::line(crate::format::to_pretty_json(&v)));
    }
    let mut out = allocation_text(&a, ctx.zone);
    if args.jobs {
        out.push_str(&format!("  jobs charged ({})\n", charges.len()));
        for c in &charges {
            out.push_str(&charge_line(c, &ctx.jobid(c.jobid)));
            out.push('\n');
        }
    }
    Ok(Output::text(out))
}

/// Runs `view-allocation`.
pub fn cmd_view_allocation(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args, ctx)
}
