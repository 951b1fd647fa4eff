//! `delete-project`: remove a project.

use fluxacct_core::events::{Event, ProjectRef};
use projections::model::State;

use crate::admin;
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// The warning printed when associations still list a deleted project.
pub const WARNING: &str = "WARNING: user(s) in the association_table still reference this project. Make sure to \
                           edit user rows to account for this deleted project.";

/// Remove a project. Associations that still list it are not changed; a
/// warning says so. The `*` project cannot be removed.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Project name.
    pub project: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("project", &args.project)?;
    if args.project == "*" {
        return Err(Error::invalid("project * cannot be removed from project_table"));
    }
    if state.project(&args.project)?.is_none() {
        return Err(Error::invalid(format!("project {} not found in project_table", args.project)));
    }
    Ok(vec![Event::ProjectDeleted(ProjectRef { project: args.project.clone() })])
}

/// Runs `delete-project`: warns when associations still list the project
/// or have it as their default project.
pub fn cmd_delete_project(ctx: &Context, args: &Args) -> Result<Output> {
    let ledger = crate::db::write(ctx, |s| decide(s, args))?;
    let p = args.project.as_str();
    admin::warn_if_referenced(&State::new(ledger.conn()), WARNING, |a| {
        a.project_list().contains(&p) || a.default_project == p
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn deletes_known_projects_only() {
        let g = given(&[Given::Project("p1")]);
        assert_eq!(
            decide(&g.state(), &Args { project: "p1".into() }).unwrap(),
            vec![Event::ProjectDeleted(ProjectRef { project: "p1".into() })]
        );
        let e = decide(&g.state(), &Args { project: "p2".into() }).unwrap_err();
        assert_eq!(e.to_string(), "project p2 not found in project_table");
        assert!(decide(&g.state(), &Args { project: "*".into() }).is_err());
    }
}
