//! `list-factors`: list the priority factor weights.

use projections::model::State;

use crate::admin::{pair_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the priority factor weights as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = pair_rows("factor", "weight", &state.factors()?);
    a.out.render(rows)
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
        let out = view(&g.state(), &Args { out: ListOutput { fields: None, ..Default::default() } }).unwrap().stdout;
        assert_eq!(
            out,
            "factor    | weight\n----------+-------\nfairshare | 100000\nqueue     | 10000 \nbank      | 0     \nurgency   | 1000  \n"
        );
    }
}
