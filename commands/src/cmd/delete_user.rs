//! `delete-user`: disable (or, with `--force`, delete) an association.

use fluxacct_core::events::Event;
use projections::model::State;

use crate::admin;
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Disable a user's association with a bank; with `--force`, delete it.
/// When it was the user's default bank, the new default is the bank of the
/// user's earliest-created association that is still active. `add-user`
/// with the same user and bank reactivates a disabled association.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// User name.
    pub username: String,
    /// Bank.
    pub bank: String,
    /// Delete the row instead of disabling it.
    #[arg(long)]
    pub force: bool,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("user", &args.username)?;
    validate::name("bank", &args.bank)?;
    if state.association(&args.username, &args.bank)?.is_none() {
        return Err(Error::invalid(format!(
            "association {},{} not found in association_table",
            args.username, args.bank
        )));
    }
    admin::remove_user_events(state, &args.username, std::slice::from_ref(&args.bank), args.force).map(|mut v| {
        if v.is_empty() {
            // Already disabled: record the request anyway.
            v.push(Event::AssociationDisabled(fluxacct_core::events::AssocRef {
                username: args.username.clone(),
                bank: args.bank.clone(),
            }));
        }
        v
    })
}

/// Runs `delete-user`.
pub fn cmd_delete_user(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use fluxacct_core::events::{AssocRef, DefaultBankChanged};

    #[test]
    fn disabling_the_default_bank_moves_the_default() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
        ]);
        let evs = decide(&g.state(), &Args { username: "u".into(), bank: "A".into(), force: false }).unwrap();
        assert_eq!(
            evs,
            vec![
                Event::AssociationDisabled(AssocRef { username: "u".into(), bank: "A".into() }),
                Event::DefaultBankChanged(DefaultBankChanged { username: "u".into(), default_bank: "B".into() }),
            ]
        );
    }

    #[test]
    fn unknown_association_is_an_error() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root")]);
        let e = decide(&g.state(), &Args { username: "u".into(), bank: "A".into(), force: true }).unwrap_err();
        assert_eq!(e.to_string(), "association u,A not found in association_table");
    }
}
