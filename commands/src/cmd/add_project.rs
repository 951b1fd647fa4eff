//! `add-project`: add a project.

use fluxacct_core::events::{Event, ProjectRef};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a project that associations may then be allowed to charge.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Project name.
    pub project: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("project", &args.project)?;
    if args.project.contains(',') {
        return Err(Error::invalid("project name must not contain ','"));
    }
    if state.project(&args.project)?.is_some() {
        return Err(Error::invalid(format!("project {} already exists in project_table", args.project)));
    }
    Ok(vec![Event::ProjectAdded(ProjectRef { project: args.project.clone() })])
}

/// Runs `add-project`.
pub fn cmd_add_project(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn adds_new_projects_only() {
        let g = given(&[Given::Project("p1")]);
        let evs = decide(&g.state(), &Args { project: "shortstops".into() }).unwrap();
        assert_eq!(evs, vec![Event::ProjectAdded(ProjectRef { project: "shortstops".into() })]);
        let e = decide(&g.state(), &Args { project: "p1".into() }).unwrap_err();
        assert_eq!(e.to_string(), "project p1 already exists in project_table");
        let e = decide(&g.state(), &Args { project: "*".into() }).unwrap_err();
        assert_eq!(e.to_string(), "project * already exists in project_table");
    }
}
