//! `delete-bank`: disable (or, with `--force`, delete) a bank and
//! everything below it.

use std::collections::HashSet;

use fluxacct_core::events::{BankRef, Event};
use projections::model::State;

use crate::admin;
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Disable a bank, its sub-banks and their users. With `--force`, delete
/// the rows instead. Users whose default bank goes away get a new default
/// bank: their earliest-created association that is still active. Adding
/// the bank again with `add-bank` reactivates it (only the bank itself);
/// `add-bank --restore-subtree BANK` reactivates the whole subtree. Says
/// how many sub-banks and associations it disabled.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank name.
    pub bank: String,
    /// Delete the rows instead of disabling them.
    #[arg(long)]
    pub force: bool,
}

/// Pure decision. Emits one event per association and per bank affected
/// (associations first, then banks from the leaves up), plus the
/// default-bank fix-ups.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("bank", &args.bank)?;
    let Some(root) = state.bank(&args.bank)? else {
        return Err(Error::invalid(format!("bank {} not found in bank_table", args.bank)));
    };
    let banks = admin::subtree(state, root)?;
    let names: Vec<String> = banks.iter().map(|b| b.bank.clone()).collect();
    // `users` keeps first-seen order; `seen` answers membership.
    let mut users: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for b in &names {
        for a in state.associations_in_bank(b)? {
            if seen.insert(a.username.clone()) {
                users.push(a.username);
            }
        }
    }
    let mut events = Vec::new();
    for u in &users {
        events.extend(admin::remove_user_events(state, u, &names, args.force)?);
    }
    for b in banks.iter().rev() {
        let r = BankRef { bank: b.bank.clone() };
        if args.force {
            events.push(Event::BankDeleted(r));
        } else if b.bank == args.bank || b.active != 0 {
            events.push(Event::BankDisabled(r));
        }
    }
    Ok(events)
}

/// What `delete-bank` did, in one line, when it reached below the bank
/// (sub-banks or associations); `None` for a bank alone.
pub fn summary(bank: &str, force: bool, events: &[Event]) -> Option<String> {
    let banks =
        events.iter().filter(|e| matches!(e, Event::BankDisabled(b) | Event::BankDeleted(b) if b.bank != bank)).count();
    let assocs =
        events.iter().filter(|e| matches!(e, Event::AssociationDisabled(_) | Event::AssociationDeleted(_))).count();
    if banks == 0 && assocs == 0 {
        return None;
    }
    let counts = format!(
        "{}, {} and {}",
        bank,
        crate::format::count_of(banks, "sub-bank", "sub-banks"),
        crate::format::count_of(assocs, "association", "associations")
    );
    Some(if force {
        format!("deleted bank {counts}")
    } else {
        format!("disabled bank {counts} (`flux account add-bank --restore-subtree {bank}` brings them back)")
    })
}

/// Runs `delete-bank`.
pub fn cmd_delete_bank(ctx: &Context, args: &Args) -> Result<Output> {
    let mut line = None;
    crate::db::write(ctx, |s| {
        let events = decide(s, args)?;
        line = summary(&args.bank, args.force, &events);
        Ok(events)
    })?;
    Ok(line.map(Output::line).unwrap_or_else(Output::none))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use fluxacct_core::events::{AssocRef, DefaultBankChanged};

    #[test]
    fn cascade_disables_subtree_fixes_default_banks_and_says_what_it_disabled() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("A1", "A"),
            Given::Bank("B", "root"),
            Given::User("u", "A1"),
            Given::User("u", "B"),
        ]);
        let evs = decide(&g.state(), &Args { bank: "A".into(), force: false }).unwrap();
        assert_eq!(
            evs,
            vec![
                Event::AssociationDisabled(AssocRef { username: "u".into(), bank: "A1".into() }),
                Event::DefaultBankChanged(DefaultBankChanged { username: "u".into(), default_bank: "B".into() }),
                Event::BankDisabled(BankRef { bank: "A1".into() }),
                Event::BankDisabled(BankRef { bank: "A".into() }),
            ]
        );
        assert_eq!(
            summary("A", false, &evs).unwrap(),
            "disabled bank A, 1 sub-bank and 1 association (`flux account add-bank --restore-subtree A` brings \
             them back)"
        );
        let evs = decide(&g.state(), &Args { bank: "A".into(), force: true }).unwrap();
        assert_eq!(summary("A", true, &evs).unwrap(), "deleted bank A, 1 sub-bank and 1 association");
        assert!(matches!(&evs[0], Event::AssociationDeleted(_)));
        assert!(matches!(evs.last(), Some(Event::BankDeleted(b)) if b.bank == "A"));
    }

    #[test]
    fn unknown_bank_is_an_error() {
        let g = given(&[Given::Bank("root", "")]);
        let e = decide(&g.state(), &Args { bank: "x".into(), force: false }).unwrap_err();
        assert_eq!(e.to_string(), "bank x not found in bank_table");
    }
}
