//! `add-user`: add a user/bank association, or reactivate a disabled one.

use fluxacct_core::events::{AssocRef, AssociationAdded, Event, USERID_NOBODY};
use projections::model::{split_list, State};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a user to a bank (an association). A user's first association sets
/// their default bank. Adding a disabled association again reactivates it.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// User name.
    #[arg(short = 'u', long)]
    pub username: String,
    /// Bank.
    #[arg(short = 'B', long)]
    pub bank: String,
    /// Numeric uid (default: looked up from the user name).
    #[arg(short = 'i', long, value_parser = crate::validate::userid_arg)]
    pub userid: Option<String>,
    /// Shares.
    #[arg(long, default_value = "1", allow_negative_numbers = true, value_parser = crate::validate::non_negative_arg)]
    pub shares: String,
    /// Initial fair-share.
    #[arg(long, default_value = "0.5", allow_negative_numbers = true, value_parser = crate::validate::fairshare_arg)]
    pub fairshare: String,
    /// Max running jobs.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-running-jobs", default_value = "5", allow_negative_numbers = true)]
    pub max_running_jobs: String,
    /// Max active jobs.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-active-jobs", default_value = "7", allow_negative_numbers = true)]
    pub max_active_jobs: String,
    /// Max nodes across running jobs.
    #[arg(value_parser = crate::validate::limit_arg, short = 'N', long = "max-nodes", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_nodes: String,
    /// Max cores across running jobs.
    #[arg(value_parser = crate::validate::limit_arg, short = 'c', long = "max-cores", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_cores: String,
    /// Allowed queues (comma list; each must exist).
    #[arg(short = 'q', long, default_value = "")]
    pub queues: String,
    /// Allowed projects (comma list; each must exist; `*` is added).
    #[arg(short = 'P', long, default_value = "*")]
    pub projects: String,
    /// Default project (default: the first listed project).
    #[arg(long = "default-project")]
    pub default_project: Option<String>,
    /// Max jobs in SCHED state.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-jobs", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_sched_jobs: String,
}

/// Pure decision. `userid` is already resolved by the caller (from
/// `--userid`, the passwd database, or 65534 as flux-accounting); without
/// `--userid`, a user who already has associations keeps their uid.
pub fn decide(state: &State<'_>, args: &Args, userid: i64) -> Result<Vec<Event>> {
    validate::name("user", &args.username)?;
    validate::name("bank", &args.bank)?;
    let shares = validate::non_negative("--shares", &args.shares)?;
    let fairshare = validate::fairshare(&args.fairshare)?;
    let max_running_jobs = validate::limit("--max-running-jobs", &args.max_running_jobs)?;
    let max_active_jobs = validate::limit("--max-active-jobs", &args.max_active_jobs)?;
    let max_nodes = validate::limit("--max-nodes", &args.max_nodes)?;
    let max_cores = validate::limit("--max-cores", &args.max_cores)?;
    let max_sched_jobs = validate::limit("--max-sched-jobs", &args.max_sched_jobs)?;

    let existing = state.association(&args.username, &args.bank)?;
    if let Some(a) = &existing {
        if a.active == 1 {
            return Err(Error::invalid(format!(
                "association {},{} already active in association_table",
                args.username, args.bank
            )));
        }
    }
    if state.has_sub_banks(&args.bank)? {
        return Err(Error::invalid("associations cannot be added to the same parent bank as a sub-bank"));
    }
    let Some(bank) = state.bank(&args.bank)? else {
        return Err(Error::invalid(format!("Bank {} does not exist in bank_table", args.bank)));
    };
    if bank.active == 0 {
        return Err(Error::invalid(format!("bank {} is disabled; add it again with add-bank first", args.bank)));
    }
    if existing.is_some() {
        return Ok(vec![Event::AssociationReactivated(AssocRef {
            username: args.username.clone(),
            bank: args.bank.clone(),
        })]);
    }
    validate::queues_exist(state, split_list(&args.queues))?;
    let mut projects: Vec<String> = split_list(&args.projects).into_iter().map(str::to_string).collect();
    validate::projects_exist(state, projects.iter().map(String::as_str))?;
    validate::add_any_project(&mut projects);
    let default_project = match &args.default_project {
        None => projects.first().cloned().unwrap_or_else(|| "*".into()),
        Some(d) => {
            validate::name("project", d)?;
            validate::projects_exist(state, [d.as_str()])?;
            if !projects.iter().any(|p| p == d) {
                projects.push(d.clone());
            }
            d.clone()
        }
    };
    let existing_rows = state.associations_of_user(&args.username)?;
    let default_bank = existing_rows.first().map(|a| a.default_bank.clone()).unwrap_or_else(|| args.bank.clone());
    // One user, one uid: without --userid, a user's further associations
    // take the uid of their existing ones.
    let userid = match (&args.userid, existing_rows.first()) {
        (None, Some(first)) => first.userid,
        _ => userid,
    };
    let queues = split_list(&args.queues).join(",");
    Ok(vec![Event::AssociationAdded(AssociationAdded {
        username: args.username.clone(),
        userid,
        bank: args.bank.clone(),
        default_bank,
        shares,
        fairshare,
        max_running_jobs,
        max_active_jobs,
        max_nodes,
        max_cores,
        queues,
        projects: projects.join(","),
        default_project,
        max_sched_jobs,
    })])
}

/// Resolves the uid for `args` (option, then passwd, then unknown).
pub fn resolve_userid(ctx: &Context, args: &Args) -> Result<i64> {
    match &args.userid {
        Some(s) => validate::userid(s),
        None => Ok(ctx.users.uid_of(&args.username).map(i64::from).unwrap_or(USERID_NOBODY)),
    }
}

/// Runs `add-user`.
pub fn cmd_add_user(ctx: &Context, args: &Args) -> Result<Output> {
    let userid = resolve_userid(ctx, args)?;
    crate::db::write(ctx, |s| decide(s, args, userid))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};

    fn args(extra: &[&str]) -> Args {
        parse_args(extra)
    }

    #[test]
    fn defaults_match_flux_accounting() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("giants", "root")]);
        let evs = decide(&g.state(), &args(&["--username=crawford", "--bank=giants"]), 5035).unwrap();
        let Event::AssociationAdded(a) = &evs[0] else { panic!() };
        assert_eq!((a.shares, a.fairshare, a.max_running_jobs, a.max_active_jobs), (1, 0.5, 5, 7));
        assert_eq!((a.projects.as_str(), a.default_project.as_str(), a.default_bank.as_str()), ("*", "*", "giants"));
        assert_eq!(a.userid, 5035);
    }

    #[test]
    fn projects_and_default_project() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("giants", "root"), Given::Project("shortstops")]);
        let evs = decide(&g.state(), &args(&["-u", "c", "-B", "giants", "-P", "shortstops"]), 1).unwrap();
        let Event::AssociationAdded(a) = &evs[0] else { panic!() };
        assert_eq!((a.projects.as_str(), a.default_project.as_str()), ("shortstops,*", "shortstops"));
        let evs =
            decide(&g.state(), &args(&["-u", "c", "-B", "giants", "--default-project", "shortstops"]), 1).unwrap();
        let Event::AssociationAdded(a) = &evs[0] else { panic!() };
        assert_eq!((a.projects.as_str(), a.default_project.as_str()), ("*,shortstops", "shortstops"));
    }

    #[test]
    fn rules_in_flux_accounting_order() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
        ]);
        let err = |a: &[&str]| decide(&g.state(), &args(a), 1).unwrap_err().to_string();
        assert_eq!(err(&["-u", "u", "-B", "A"]), "association u,A already active in association_table");
        assert_eq!(
            err(&["-u", "v", "-B", "root"]),
            "associations cannot be added to the same parent bank as a sub-bank"
        );
        assert_eq!(err(&["-u", "v", "-B", "nope"]), "Bank nope does not exist in bank_table");
        assert_eq!(err(&["-u", "v", "-B", "A", "-q", "gold"]), "queue gold does not exist in queue_table");
        assert_eq!(err(&["-u", "v", "-B", "A", "-P", "p1"]), "project p1 does not exist in project_table");
        // Out of range: a usage error, before the command runs.
        let e = crate::testing::usage_error::<Args>(&["-u", "v", "-B", "A", "--max-active-jobs", "-3"]);
        assert!(e.contains("invalid value '-3' for '--max-active-jobs"), "{e}");
    }

    #[test]
    fn second_bank_keeps_default_and_disabled_is_reactivated() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
            Given::DisableUser("u", "B"),
        ]);
        let evs = decide(&g.state(), &args(&["-u", "u", "-B", "B"]), 1).unwrap();
        assert_eq!(evs, vec![Event::AssociationReactivated(AssocRef { username: "u".into(), bank: "B".into() })]);
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
        ]);
        let evs = decide(&g.state(), &args(&["-u", "u", "-B", "B"]), 1).unwrap();
        let Event::AssociationAdded(a) = &evs[0] else { panic!() };
        assert_eq!(a.default_bank, "A");
        assert_eq!(a.userid, 1000, "a second bank keeps the user's uid");
        let evs = decide(&g.state(), &args(&["-u", "u", "-B", "B", "--userid", "77"]), 77).unwrap();
        let Event::AssociationAdded(a) = &evs[0] else { panic!() };
        assert_eq!(a.userid, 77, "an explicit --userid wins");
    }
}
