//! `list-banks`: list the banks.

use projections::model::State;

use crate::admin::{bank_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the active banks (all banks with `--inactive`) as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Include disabled banks.
    #[arg(long)]
    pub inactive: bool,
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let banks: Vec<_> = state.banks()?.into_iter().filter(|b| args.inactive || b.active != 0).collect();
    args.out.render(bank_rows(&banks))
}

/// Runs `list-banks`.
pub fn cmd_list_banks(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn active_only_by_default() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::DisableBank("A")]);
        let a = Args { inactive: false, out: ListOutput { fields: Some("bank".into()), ..Default::default() } };
        assert_eq!(view(&g.state(), &a).unwrap().stdout, "bank\n----\nroot\n");
        let out = view(&g.state(), &Args { inactive: true, ..a }).unwrap().stdout;
        assert_eq!(out, "bank\n----\nroot\nA   \n");
    }
}
