//! `list-factors`: list the priority factor weights.

use projections::model::State;

use crate::cmd::shared::{pair_rows, render, Default};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the priority factor weights as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these columns (factor, weight).
    #[arg(long)]
    pub fields: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = pair_rows("factor", "weight", &state.factors()?);
    let text = render(
        rows,
        a.fields.as_deref(),
        a.format.as_deref(),
        a.json,
        false,
        Default::Table,
        "no results found in query",
    )?;
    Ok(Output::line(text))
}

/// Runs `list-factors`.
pub fn cmd_list_factors(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn lists_defaults() {
        let g = given(&[]);
        let out = view(&g.state(), &Args { fields: None, json: false, format: None }).unwrap().stdout;
        assert_eq!(
            out,
            "factor    | weight\n----------+-------\nfairshare | 100000\nqueue     | 10000 \nbank      | 0     \nurgency   | 1000  \n"
        );
    }
}
