//! `list-queues`: list the queues.

use projections::model::State;

use crate::cmd::shared::{queue_rows, render, Default};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the queues as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these columns (comma list).
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
    let rows = queue_rows(&state.queues()?);
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

/// Runs `list-queues`.
pub fn cmd_list_queues(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn table_and_empty() {
        let a = Args { fields: Some("queue,priority".into()), json: false, format: None };
        let g = given(&[Given::Queue("gold")]);
        assert_eq!(view(&g.state(), &a).unwrap().stdout, "queue | priority\n------+---------\ngold  | 0       \n");
        let g = given(&[]);
        assert_eq!(view(&g.state(), &a).unwrap_err().to_string(), "no results found in query");
    }
}
