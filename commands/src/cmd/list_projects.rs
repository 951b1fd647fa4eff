//! `list-projects`: list the projects.

use projections::model::State;

use crate::cmd::shared::{project_rows, render, Default};
use crate::context::{Context, Output};
use crate::error::Result;

/// List the projects as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these columns (project_id, project, usage).
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
    let rows = project_rows(&state.projects()?);
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
        let a = Args { fields: Some("project".into()), json: false, format: None };
        assert_eq!(view(&g.state(), &a).unwrap().stdout, "project\n-------\n*      \np1     \n");
    }
}
