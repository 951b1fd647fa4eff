//! `view-queue`: show one queue.

use projections::model::State;

use crate::admin::{queue_rows, render, DefaultFormat};
use crate::context::{Context, Output};
use crate::error::Result;

/// Show a queue: JSON by default, a table with `--parsable`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Queue name.
    pub queue: String,
    /// A table instead of JSON.
    #[arg(long)]
    pub parsable: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let q: Vec<_> = state.queue(&args.queue)?.into_iter().collect();
    let empty = format!("queue {} not found in queue_table", args.queue);
    let text = render(queue_rows(&q), None, args.format.as_deref(), false, args.parsable, DefaultFormat::Json, &empty)?;
    Ok(Output::line(text))
}

/// Runs `view-queue`.
pub fn cmd_view_queue(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn json_by_default() {
        let g = given(&[Given::Queue("gold")]);
        let out = view(&g.state(), &Args { queue: "gold".into(), parsable: false, format: None }).unwrap().stdout;
        assert!(out.starts_with("[\n  {\n    \"queue\": \"gold\""), "{out}");
        let e = view(&g.state(), &Args { queue: "x".into(), parsable: true, format: None }).unwrap_err();
        assert_eq!(e.to_string(), "queue x not found in queue_table");
    }
}
