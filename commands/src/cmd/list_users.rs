//! `list-users`: list associations, with filters.

use projections::model::{Association, State};

use crate::admin::{assoc_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List associations as a table. Filters combine with AND; a comma in a
/// filter value means any of several values. `--queues`, `--projects` and
/// `--default-project` match list members; the others match exactly.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
    /// Filter: active (1) or disabled (0).
    #[arg(long)]
    pub active: Option<String>,
    /// Filter: bank.
    #[arg(short = 'B', long)]
    pub bank: Option<String>,
    /// Filter: shares.
    #[arg(long)]
    pub shares: Option<String>,
    /// Filter: max running jobs.
    #[arg(long = "max-running-jobs")]
    pub max_running_jobs: Option<String>,
    /// Filter: max active jobs.
    #[arg(long = "max-active-jobs")]
    pub max_active_jobs: Option<String>,
    /// Filter: max nodes.
    #[arg(short = 'N', long = "max-nodes")]
    pub max_nodes: Option<String>,
    /// Filter: max cores.
    #[arg(short = 'c', long = "max-cores")]
    pub max_cores: Option<String>,
    /// Filter: allowed queue.
    #[arg(short = 'q', long)]
    pub queues: Option<String>,
    /// Filter: allowed project.
    #[arg(short = 'P', long)]
    pub projects: Option<String>,
    /// Filter: default project.
    #[arg(long = "default-project")]
    pub default_project: Option<String>,
    /// Filter: max sched jobs.
    #[arg(long = "max-sched-jobs")]
    pub max_sched_jobs: Option<String>,
    /// The accounting centre instead of the ledger.
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

fn values(f: &Option<String>) -> Option<Vec<String>> {
    f.as_ref().map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
}

fn exact(f: &Option<String>, v: &str) -> bool {
    values(f).into_iter().all(|vs| vs.iter().any(|x| x == v))
}

fn member(f: &Option<String>, list: &[&str]) -> bool {
    values(f).into_iter().all(|vs| vs.iter().any(|x| list.contains(&x.as_str())))
}

fn keep(a: &Association, f: &Args) -> bool {
    exact(&f.active, &a.active.to_string())
        && exact(&f.bank, &a.bank)
        && exact(&f.shares, &a.shares.to_string())
        && exact(&f.max_running_jobs, &a.max_running_jobs.to_string())
        && exact(&f.max_active_jobs, &a.max_active_jobs.to_string())
        && exact(&f.max_nodes, &a.max_nodes.to_string())
        && exact(&f.max_cores, &a.max_cores.to_string())
        && exact(&f.max_sched_jobs, &a.max_sched_jobs.to_string())
        && member(&f.queues, &a.queue_list())
        && member(&f.projects, &a.project_list())
        && exact(&f.default_project, &a.default_project)
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let rows: Vec<Association> = state.associations()?.into_iter().filter(|a| keep(a, args)).collect();
    args.out.render(assoc_rows(&rows))
}

/// Read-only: the list over the centre's clusters (one cluster: the
/// local list; several: with a `cluster` column).
fn view_centre(client: &mut postgres::Client, names: &[String], args: &Args) -> Result<Output> {
    let views = crate::centre_view::views(client, names)?;
    if let [one] = views.as_slice() {
        return view(&one.state(), args);
    }
    let mut parts = Vec::new();
    for v in &views {
        let rows: Vec<Association> = v.state().associations()?.into_iter().filter(|a| keep(a, args)).collect();
        parts.push((v.name.clone(), assoc_rows(&rows)));
    }
    args.out.render(crate::centre_view::with_cluster_column(parts))
}

/// Runs `list-users`.
pub fn cmd_list_users(ctx: &Context, args: &Args) -> Result<Output> {
    if let Some((mut client, names)) = crate::centre_view::open(&args.centre)? {
        return view_centre(&mut client, &names, args);
    }
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};

    #[test]
    fn filters() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("v", "B"),
            Given::DisableUser("v", "B"),
        ]);
        let run = |a: &[&str]| {
            let mut v = vec!["--fields", "username"];
            v.extend_from_slice(a);
            view(&g.state(), &parse_args(&v)).map(|o| o.stdout)
        };
        assert_eq!(run(&[]).unwrap(), "username\n--------\nu       \nv       \n");
        assert_eq!(run(&["-B", "B"]).unwrap(), "username\n--------\nv       \n");
        assert_eq!(run(&["--active", "1", "-B", "A,B"]).unwrap(), "username\n--------\nu       \n");
        assert_eq!(run(&["-B", "Z"]).unwrap(), "username\n--------\n");
    }
}
