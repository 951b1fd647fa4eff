//! `view-project`: show one project.

use projections::model::State;

use crate::admin::{project_rows, render, DefaultFormat};
use crate::context::{Context, Output};
use crate::error::Result;

/// Show a project: JSON by default, a table with `--parsable`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Project name.
    pub project: String,
    /// A table instead of JSON.
    #[arg(long)]
    pub parsable: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let p: Vec<_> = state.project(&args.project)?.into_iter().collect();
    let empty = format!("project {} not found in project_table", args.project);
    let text =
        render(project_rows(&p), None, args.format.as_deref(), false, args.parsable, DefaultFormat::Json, &empty)?;
    Ok(Output::line(text))
}

/// Runs `view-project`.
pub fn cmd_view_project(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn views() {
        let g = given(&[Given::Project("p1")]);
        let out = view(&g.state(), &Args { project: "p1".into(), parsable: true, format: None }).unwrap().stdout;
        assert_eq!(out, "project_id | project | usage\n-----------+---------+------\n2          | p1      | 0.0  \n");
        let e = view(&g.state(), &Args { project: "x".into(), parsable: false, format: None }).unwrap_err();
        assert_eq!(e.to_string(), "project x not found in project_table");
    }
}
