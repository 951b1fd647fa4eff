//! `view-factor`: show one priority factor weight.

use projections::model::State;

use crate::admin::{pair_rows, render, DefaultFormat};
use crate::context::{Context, Output};
use crate::error::Result;

/// Show a priority factor's weight (a table by default).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Factor: fairshare, queue, bank or urgency.
    pub factor: String,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let pairs: Vec<(String, i64)> = state.factor(&args.factor)?.map(|w| (args.factor.clone(), w)).into_iter().collect();
    let empty = format!("factor {} not found in priority_factor_weight_table", args.factor);
    let rows = pair_rows("factor", "weight", &pairs);
    let text = render(rows, None, args.format.as_deref(), args.json, false, DefaultFormat::Table, &empty)?;
    Ok(Output::line(text))
}

/// Runs `view-factor`.
pub fn cmd_view_factor(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn views() {
        let g = given(&[]);
        let out = view(&g.state(), &Args { factor: "bank".into(), json: false, format: None }).unwrap().stdout;
        assert_eq!(out, "factor | weight\n-------+-------\nbank   | 0     \n");
        let e = view(&g.state(), &Args { factor: "x".into(), json: false, format: None }).unwrap_err();
        assert_eq!(e.to_string(), "factor x not found in priority_factor_weight_table");
    }
}
