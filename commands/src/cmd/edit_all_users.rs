//! `edit-all-users`: change fields of every association at once.

use std::collections::HashSet;

use fluxacct_core::events::Event;
use projections::model::State;

use crate::assoc_edit::{check_exists, resolve, row_edit, Fields};
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Edit every association. `-1` resets a field to its default (`unlimited`
/// is not special here). `--bank` moves every association to that bank.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("userid", |a| a.hide(true)))]
pub struct Args {
    /// Move every association to this bank.
    #[arg(long)]
    pub bank: Option<String>,
    #[command(flatten)]
    pub fields: Fields,
}

/// Pure decision: one `AssociationEdited` per association.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    if args.fields.userid.is_some() {
        return Err(Error::invalid("edit-all-users cannot set --userid"));
    }
    let r = resolve(&args.fields, false)?;
    if r.is_empty() && args.bank.is_none() {
        return Err(Error::invalid("no fields provided for update"));
    }
    if let Some(b) = &args.bank {
        validate::name("bank", b)?;
        let Some(bank) = state.bank(b)? else {
            return Err(Error::invalid(format!("Bank {b} does not exist in bank_table")));
        };
        if bank.active == 0 {
            return Err(Error::invalid(format!("bank {b} is disabled; add it again with add-bank first")));
        }
        if state.has_sub_banks(b)? {
            return Err(Error::invalid("associations cannot be added to the same parent bank as a sub-bank"));
        }
    }
    check_exists(state, &r)?;
    let rows = state.associations()?;
    if rows.is_empty() {
        return Err(Error::invalid("no results found in query"));
    }
    // `seen` keeps the (username, final bank) pairs in row order; `seen_set`
    // answers membership.
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(rows.len());
    let mut seen_set: HashSet<(&str, &str)> = HashSet::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for a in &rows {
        let final_bank = args.bank.as_deref().unwrap_or(&a.bank);
        let key = (a.username.as_str(), final_bank);
        if !seen_set.insert(key) {
            return Err(Error::invalid(format!("association {},{} already exists in association_table", key.0, key.1)));
        }
        seen.push(key);
        let new_bank = args.bank.clone().filter(|b| b != &a.bank);
        events.push(Event::AssociationEdited(row_edit(a, &r, new_bank)));
    }
    if let Some(d) = &r.default_bank {
        let users_in_d: HashSet<&str> = seen.iter().filter(|(_, b)| b == d).map(|(u, _)| *u).collect();
        if let Some((u, _)) = seen.iter().find(|(u, _)| !users_in_d.contains(u)) {
            return Err(Error::invalid(format!("user {u} does not belong to bank {d}")));
        }
    }
    Ok(events)
}

/// Runs `edit-all-users`.
pub fn cmd_edit_all_users(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn edits_every_row_and_moves_banks() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("v", "A"),
        ]);
        let a = Args { bank: None, fields: Fields { max_active_jobs: Some("-1".into()), ..Default::default() } };
        let evs = decide(&g.state(), &a).unwrap();
        assert_eq!(evs.len(), 2);
        assert!(evs.iter().all(|e| matches!(e, Event::AssociationEdited(x) if x.max_active_jobs == Some(7))));
        let a = Args { bank: Some("B".into()), fields: Fields::default() };
        let evs = decide(&g.state(), &a).unwrap();
        assert!(evs.iter().all(|e| matches!(e, Event::AssociationEdited(x) if x.new_bank.as_deref() == Some("B"))));
        let a = Args { bank: None, fields: Fields::default() };
        assert_eq!(decide(&g.state(), &a).unwrap_err().to_string(), "no fields provided for update");
    }

    #[test]
    fn moving_two_rows_of_a_user_into_one_bank_is_refused() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
        ]);
        let a = Args { bank: Some("B".into()), fields: Fields::default() };
        assert_eq!(
            decide(&g.state(), &a).unwrap_err().to_string(),
            "association u,B already exists in association_table"
        );
    }
}
