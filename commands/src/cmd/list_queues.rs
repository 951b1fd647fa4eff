//! `list-queues`: list the queues.

use projections::model::State;

use crate::admin::{queue_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the queues as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = queue_rows(&state.queues()?);
    a.out.render(rows)
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
        let a = Args { out: ListOutput { fields: Some("queue,priority".into()), ..Default::default() } };
        let g = given(&[Given::Queue("gold")]);
        assert_eq!(view(&g.state(), &a).unwrap().stdout, "queue | priority\n------+---------\ngold  | 0       \n");
        let g = given(&[]);
        // An empty table: the header, and flux-accounting's text as a note.
        let empty = view(&g.state(), &a).unwrap();
        assert_eq!(empty.stdout, "queue | priority\n------+---------\n");
        assert_eq!(empty.notes, ["no results found in query"]);
    }
}
