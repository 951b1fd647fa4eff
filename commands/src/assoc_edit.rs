//! Editing associations: the fields `edit-user` and `edit-all-users` set,
//! their parsing (resets included), and the edit event of one row.

use fluxacct_core::events::AssociationEdited;
use fluxacct_core::limits::INTEGER_MAX;
use projections::model::{split_list, Association, State};

use crate::error::{Error, Result};
use crate::validate::{self, int_field};

/// The association fields that `edit-user` and `edit-all-users` set.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Fields {
    /// New uid.
    #[arg(short = 'i', long, allow_negative_numbers = true, value_parser = crate::validate::userid_arg)]
    pub userid: Option<String>,
    /// New default bank (one of the user's banks).
    #[arg(long = "default-bank", allow_negative_numbers = true)]
    pub default_bank: Option<String>,
    /// Shares.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::validate::limit_arg)]
    pub shares: Option<String>,
    /// Fair-share (0..1).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::validate::fairshare_arg)]
    pub fairshare: Option<String>,
    /// Max running jobs.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-running-jobs", allow_negative_numbers = true)]
    pub max_running_jobs: Option<String>,
    /// Max active jobs.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-active-jobs", allow_negative_numbers = true)]
    pub max_active_jobs: Option<String>,
    /// Max nodes.
    #[arg(value_parser = crate::validate::limit_arg, short = 'N', long = "max-nodes", allow_negative_numbers = true)]
    pub max_nodes: Option<String>,
    /// Max cores.
    #[arg(value_parser = crate::validate::limit_arg, short = 'c', long = "max-cores", allow_negative_numbers = true)]
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
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-jobs", allow_negative_numbers = true)]
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

/// A comma list of names (queues or projects), each validated as `opt`.
pub fn list(opt: &str, s: &str) -> Result<Vec<String>> {
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
