//! `edit-user`: change fields of a user's associations.

use fluxacct_core::events::{AssociationEdited, Event};
use fluxacct_core::limits::INTEGER_MAX;
use projections::model::{split_list, Association, State};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate::{self, int_field};

/// Edit a user's associations: the one in `--bank`, or every one of them.
/// `-1` or `unlimited` resets a field to its default (queues to none,
/// projects to `*`); the default bank cannot be reset.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// User name.
    pub username: String,
    /// Only the association with this bank (default: all of the user's).
    #[arg(short = 'B', long)]
    pub bank: Option<String>,
    #[command(flatten)]
    pub fields: Fields,
    /// Add a queue (comma list) to the current ones.
    #[arg(long = "add-queue")]
    pub add_queue: Option<String>,
    /// Remove a queue (comma list) from the current ones.
    #[arg(long = "delete-queue")]
    pub delete_queue: Option<String>,
}

/// The association fields that `edit-user` and `edit-all-users` set.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Fields {
    /// New uid.
    #[arg(short = 'i', long, allow_negative_numbers = true)]
    pub userid: Option<String>,
    /// New default bank (one of the user's banks).
    #[arg(long = "default-bank", allow_negative_numbers = true)]
    pub default_bank: Option<String>,
    /// Shares.
    #[arg(long, allow_negative_numbers = true)]
    pub shares: Option<String>,
    /// Fair-share (0..1).
    #[arg(long, allow_negative_numbers = true)]
    pub fairshare: Option<String>,
    /// Max running jobs.
    #[arg(long = "max-running-jobs", allow_negative_numbers = true)]
    pub max_running_jobs: Option<String>,
    /// Max active jobs.
    #[arg(long = "max-active-jobs", allow_negative_numbers = true)]
    pub max_active_jobs: Option<String>,
    /// Max nodes.
    #[arg(short = 'N', long = "max-nodes", allow_negative_numbers = true)]
    pub max_nodes: Option<String>,
    /// Max cores.
    #[arg(short = 'c', long = "max-cores", allow_negative_numbers = true)]
    pub max_cores: Option<String>,
    /// Allowed queues (comma list; replaces the current list).
    #[arg(short = 'q', long, allow_negative_numbers = true)]
    pub queues: Option<String>,
    /// Allowed projects (comma list; `*` is added).
    #[arg(short = 'P', long, allow_negative_numbers = true)]
    pub projects: Option<String>,
    /// Default project (must exist).
    #[arg(long = "default-project", allow_negative_numbers = true)]
    pub default_project: Option<String>,
    /// Max jobs in SCHED state.
    #[arg(long = "max-sched-jobs", allow_negative_numbers = true)]
    pub max_sched_jobs: Option<String>,
}

/// Field values resolved from the command line (resets already turned into
/// default values). `None` = unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// See [`AssociationEdited`].
    pub userid: Option<i64>,
    /// See [`AssociationEdited`].
    pub default_bank: Option<String>,
    /// See [`AssociationEdited`].
    pub shares: Option<i64>,
    /// See [`AssociationEdited`].
    pub fairshare: Option<f64>,
    /// See [`AssociationEdited`].
    pub max_running_jobs: Option<i64>,
    /// See [`AssociationEdited`].
    pub max_active_jobs: Option<i64>,
    /// See [`AssociationEdited`].
    pub max_nodes: Option<i64>,
    /// See [`AssociationEdited`].
    pub max_cores: Option<i64>,
    /// Full queue list.
    pub queues: Option<Vec<String>>,
    /// Full project list (before `*` is added).
    pub projects: Option<Vec<String>>,
    /// See [`AssociationEdited`].
    pub default_project: Option<String>,
    /// See [`AssociationEdited`].
    pub max_sched_jobs: Option<i64>,
    /// Queues to add.
    pub add_queues: Vec<String>,
    /// Queues to remove.
    pub delete_queues: Vec<String>,
}

impl Resolved {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == Resolved::default()
    }
}

fn is_reset(s: &str, unlimited: bool) -> bool {
    s.trim() == "-1" || (unlimited && s.trim().eq_ignore_ascii_case("unlimited"))
}

fn list(opt: &str, s: &str) -> Result<Vec<String>> {
    let items: Vec<String> = split_list(s).into_iter().map(str::to_string).collect();
    for i in &items {
        validate::name(opt, i)?;
    }
    Ok(items)
}

/// Parses the fields. `unlimited` (any case) counts as a reset when
/// `unlimited_resets` (edit-user; not edit-all-users).
pub fn resolve(f: &Fields, unlimited_resets: bool) -> Result<Resolved> {
    let u = unlimited_resets;
    let userid = f.userid.as_deref().map(validate::userid).transpose()?;
    let default_bank = match &f.default_bank {
        None => None,
        Some(s) if is_reset(s, u) => {
            return Err(Error::invalid("default bank cannot be reset with -1; please specify a value"))
        }
        Some(s) => {
            validate::name("bank", s)?;
            Some(s.clone())
        }
    };
    let fairshare = match &f.fairshare {
        None => None,
        Some(s) if is_reset(s, u) => Some(0.5),
        Some(s) => Some(validate::fairshare(s)?),
    };
    let queues = match &f.queues {
        None => None,
        Some(s) if is_reset(s, u) => Some(Vec::new()),
        Some(s) => Some(list("queue", s)?),
    };
    let projects = match &f.projects {
        None => None,
        Some(s) if is_reset(s, u) => Some(vec!["*".to_string()]),
        Some(s) => Some(list("project", s)?),
    };
    let default_project = match &f.default_project {
        None => None,
        Some(s) if is_reset(s, u) => Some("*".to_string()),
        Some(s) => {
            validate::name("project", s)?;
            Some(s.clone())
        }
    };
    Ok(Resolved {
        userid,
        default_bank,
        shares: int_field("--shares", &f.shares, 1, u)?,
        fairshare,
        max_running_jobs: int_field("--max-running-jobs", &f.max_running_jobs, 5, u)?,
        max_active_jobs: int_field("--max-active-jobs", &f.max_active_jobs, 7, u)?,
        max_nodes: int_field("--max-nodes", &f.max_nodes, INTEGER_MAX, u)?,
        max_cores: int_field("--max-cores", &f.max_cores, INTEGER_MAX, u)?,
        queues,
        projects,
        default_project,
        max_sched_jobs: int_field("--max-sched-jobs", &f.max_sched_jobs, INTEGER_MAX, u)?,
        add_queues: Vec::new(),
        delete_queues: Vec::new(),
    })
}

/// Checks that the queues and projects named in `r` exist.
pub fn check_exists(state: &State<'_>, r: &Resolved) -> Result<()> {
    validate::queues_exist(state, r.queues.iter().flatten().chain(&r.add_queues).map(String::as_str))?;
    validate::projects_exist(state, r.projects.iter().flatten().chain(r.default_project.iter()).map(String::as_str))
}

/// The edit event for one association row. `new_bank` moves it.
pub fn row_edit(row: &Association, r: &Resolved, new_bank: Option<String>) -> AssociationEdited {
    let queues = if let Some(q) = &r.queues {
        Some(q.join(","))
    } else if !r.add_queues.is_empty() || !r.delete_queues.is_empty() {
        let mut q: Vec<String> = row.queue_list().into_iter().map(str::to_string).collect();
        for a in &r.add_queues {
            if !q.contains(a) {
                q.push(a.clone());
            }
        }
        q.retain(|x| !r.delete_queues.contains(x));
        Some(q.join(","))
    } else {
        None
    };
    let mut projects: Option<Vec<String>> = r.projects.clone().map(|mut p| {
        validate::add_any_project(&mut p);
        p
    });
    if let Some(d) = &r.default_project {
        let current: Vec<String> =
            projects.clone().unwrap_or_else(|| row.project_list().into_iter().map(str::to_string).collect());
        if !current.contains(d) {
            let mut p = current;
            p.push(d.clone());
            projects = Some(p);
        }
    }
    AssociationEdited {
        username: row.username.clone(),
        bank: row.bank.clone(),
        new_bank,
        userid: r.userid,
        default_bank: r.default_bank.clone(),
        shares: r.shares,
        fairshare: r.fairshare,
        max_running_jobs: r.max_running_jobs,
        max_active_jobs: r.max_active_jobs,
        max_nodes: r.max_nodes,
        max_cores: r.max_cores,
        queues,
        projects: projects.map(|p| p.join(",")),
        default_project: r.default_project.clone(),
        max_sched_jobs: r.max_sched_jobs,
    }
}

/// Pure decision: one `AssociationEdited` per affected row.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("user", &args.username)?;
    if let Some(b) = &args.bank {
        validate::name("bank", b)?;
    }
    let mut r = resolve(&args.fields, true)?;
    if r.queues.is_some() && (args.add_queue.is_some() || args.delete_queue.is_some()) {
        return Err(Error::invalid(
            "cannot specify --queues with --add-queue or --delete-queue; use either full replacement (--queues) or \
             incremental operations (--add-queue/--delete-queue)",
        ));
    }
    r.add_queues = args.add_queue.as_deref().map(|s| list("queue", s)).transpose()?.unwrap_or_default();
    r.delete_queues = args.delete_queue.as_deref().map(|s| list("queue", s)).transpose()?.unwrap_or_default();
    if r.add_queues.iter().any(|q| r.delete_queues.contains(q)) {
        return Err(Error::invalid("cannot pass queue to both --add-queue and --delete-queue"));
    }
    if r.is_empty() {
        return Err(Error::invalid("no fields provided for update"));
    }
    let all = state.associations_of_user(&args.username)?;
    let rows: Vec<&Association> = all.iter().filter(|a| args.bank.as_ref().into_iter().all(|b| &a.bank == b)).collect();
    if rows.is_empty() {
        return Err(Error::invalid(match &args.bank {
            Some(b) if state.bank(b)?.is_none() => format!("bank {b} not found in bank_table"),
            Some(b) if !all.is_empty() => format!("user {} does not belong to bank {b}", args.username),
            _ => format!("user {} not found in association_table", args.username),
        }));
    }
    check_exists(state, &r)?;
    if let Some(d) = &r.default_bank {
        if !all.iter().any(|a| &a.bank == d) {
            return Err(Error::invalid(format!("user {} does not belong to bank {d}", args.username)));
        }
    }
    Ok(rows.into_iter().map(|a| Event::AssociationEdited(row_edit(a, &r, None))).collect())
}

/// Runs `edit-user`.
pub fn cmd_edit_user(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given, World};

    fn args(extra: &[&str]) -> Args {
        parse_args(extra)
    }

    fn world() -> World {
        given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::Queue("gold"),
            Given::Queue("silver"),
            Given::Project("p1"),
            Given::User("u", "A"),
            Given::User("u", "B"),
        ])
    }

    fn edits(w: &World, a: &[&str]) -> Vec<AssociationEdited> {
        decide(&w.state(), &args(a))
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Event::AssociationEdited(x) => x,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn without_bank_every_row_is_edited() {
        let w = world();
        let e = edits(&w, &["u", "--max-active-jobs", "10"]);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].bank.as_str(), e[1].bank.as_str()), ("A", "B"));
        assert!(e.iter().all(|x| x.max_active_jobs == Some(10) && x.shares.is_none()));
        assert_eq!(edits(&w, &["u", "-B", "B", "--shares", "3"]).len(), 1);
    }

    #[test]
    fn resets_resolve_to_defaults() {
        let w = world();
        let e = edits(&w, &["u", "-B", "A", "--max-active-jobs", "-1", "--max-nodes", "unlimited", "--queues", "-1"]);
        assert_eq!(e[0].max_active_jobs, Some(7));
        assert_eq!(e[0].max_nodes, Some(INTEGER_MAX));
        assert_eq!(e[0].queues.as_deref(), Some(""));
        let e = edits(&w, &["u", "-B", "A", "--projects", "-1", "--fairshare", "UNLIMITED"]);
        assert_eq!((e[0].projects.as_deref(), e[0].fairshare), (Some("*"), Some(0.5)));
    }

    #[test]
    fn incremental_queues() {
        let w = world();
        let e = edits(&w, &["u", "-B", "A", "--add-queue", "gold"]);
        assert_eq!(e[0].queues.as_deref(), Some("gold"));
        let e = edits(&w, &["u", "-B", "A", "--queues", "gold,silver"]);
        assert_eq!(e[0].queues.as_deref(), Some("gold,silver"));
        let e = edits(&w, &["u", "-B", "A", "--projects", "p1"]);
        assert_eq!(e[0].projects.as_deref(), Some("p1,*"));
    }

    #[test]
    fn errors() {
        let w = world();
        let err = |a: &[&str]| decide(&w.state(), &args(a)).unwrap_err().to_string();
        assert_eq!(err(&["u"]), "no fields provided for update");
        assert_eq!(err(&["nobody", "--shares", "2"]), "user nobody not found in association_table");
        assert_eq!(err(&["u", "-B", "Z", "--shares", "2"]), "bank Z not found in bank_table");
        assert_eq!(err(&["u", "--default-bank", "-1"]), "default bank cannot be reset with -1; please specify a value");
        assert!(err(&["u", "--queues", "gold", "--add-queue", "silver"]).starts_with("cannot specify --queues"));
        assert_eq!(
            err(&["u", "--add-queue", "gold", "--delete-queue", "gold"]),
            "cannot pass queue to both --add-queue and --delete-queue"
        );
        assert_eq!(err(&["u", "--add-queue", "bronze"]), "queue bronze does not exist in queue_table");
        assert_eq!(err(&["u", "--default-project", "p9"]), "project p9 does not exist in project_table");
        assert_eq!(
            err(&["u", "--shares", "-5"]),
            "--shares: value must be a non-negative integer or -1 to reset to default"
        );
        assert_eq!(err(&["u", "--shares", "abc"]), "--shares: invalid integer value: 'abc'");
    }
}
