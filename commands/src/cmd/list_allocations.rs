//! `list-allocations`: every allocation with its balance.

use fluxacct_core::allocation::format_milli;
use projections::model::State;

use crate::allocation_view::{allocation_json, time_s};
use crate::context::{Context, Output};
use crate::error::Result;
use crate::format::pipe_lines;

/// List every allocation (deleted ones too) with its balance.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, args: &Args, zone: crate::time::Zone) -> Result<Output> {
    let rows = projections::allocation::allocations(state.conn())?;
    if args.json {
        let v: Vec<_> = rows.iter().map(allocation_json).collect();
        return Ok(Output::line(crate::format::to_pretty_json(&serde_json::Value::Array(v))));
    }
    let header = ["name", "bank", "project", "unit", "allocated", "charged", "remaining", "start", "end", "active"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.bank.clone(),
                a.project.clone().unwrap_or_default(),
                a.unit.clone(),
                format_milli(a.allocated_milli),
                format_milli(a.charged_milli),
                format_milli(a.remaining_milli),
                time_s(a.start_s, zone),
                time_s(a.end_s, zone),
                (a.active as i64).to_string(),
            ]
        })
        .collect();
    let lines = pipe_lines(&header, &cells, crate::format::PipeStyle { rule: true, pad_last: false });
    Ok(Output::text(lines.into_iter().map(|l| l + "\n").collect::<String>()))
}

/// Runs `list-allocations`.
pub fn cmd_list_allocations(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args, ctx.zone)
}
