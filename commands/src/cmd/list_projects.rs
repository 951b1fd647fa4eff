//! `list-projects`: list the projects.

use projections::model::State;

use crate::admin::{project_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the projects as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = project_rows(&state.projects()?);
    a.out.render(rows)
}

/// Runs `list-projects`.
pub fn cmd_list_projects(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn lists() {
        let g = given(&[Given::Project("p1")]);
        let a = Args { out: ListOutput { fields: Some("project".into()), ..Default::default() } };
        assert_eq!(view(&g.state(), &a).unwrap().stdout, "project\n-------\n*      \np1     \n");
    }
}
