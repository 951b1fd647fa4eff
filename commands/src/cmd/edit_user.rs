//! `edit-user`: change fields of a user's associations.

use fluxacct_core::events::Event;
use projections::model::{Association, State};

use crate::assoc_edit::{check_exists, list, resolve, row_edit, Fields};
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

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
    use fluxacct_core::events::AssociationEdited;
    use fluxacct_core::limits::INTEGER_MAX;

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
        // Malformed or out of range: usage errors, before the command runs.
        for bad in ["-5", "abc"] {
            let e = crate::testing::usage_error::<Args>(&["u", "--shares", bad]);
            assert!(e.contains(&format!("invalid value '{bad}' for '--shares")), "{e}");
        }
    }
}
