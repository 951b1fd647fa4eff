//! `add-bank`: add a bank, or reactivate a disabled one.

use fluxacct_core::events::{AssocRef, BankAdded, BankRef, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a bank to the hierarchy. The first bank, added without
/// `--parent-bank`, is the root; there is only one root. Adding a disabled
/// bank again reactivates it (its sub-banks and users stay disabled);
/// `--restore-subtree BANK` reactivates the bank and every disabled
/// sub-bank and association below it, undoing `delete-bank BANK`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank name.
    pub bank: String,
    /// Shares of the bank among its siblings.
    #[arg(required_unless_present = "restore_subtree", default_value = "", allow_negative_numbers = true, value_parser = shares_arg)]
    pub shares: String,
    /// Reactivate BANK, its disabled sub-banks and their disabled
    /// associations (what `delete-bank BANK` disabled), in one command.
    #[arg(long = "restore-subtree", conflicts_with_all = ["shares", "parent_bank", "priority", "ignore_older_than"])]
    pub restore_subtree: bool,
    /// Parent bank (none for the root bank).
    #[arg(long = "parent-bank", default_value = "")]
    pub parent_bank: String,
    /// Bank priority (used by the priority plugin's bank factor).
    #[arg(long, default_value = "0.0", allow_negative_numbers = true, value_parser = crate::validate::float_arg)]
    pub priority: String,
    /// Jobs of this bank that ended at or before this time (epoch seconds,
    /// or a date in the local time zone) do not count towards usage.
    #[arg(long = "ignore-older-than", default_value = "0", value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub ignore_older_than: String,
}

/// Clap's value parser of `shares`: a non-negative integer, or nothing
/// (the default when `--restore-subtree` stands in its place).
fn shares_arg(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() {
        Ok(String::new())
    } else {
        crate::validate::non_negative_arg(s)
    }
}

/// Pure decision: validates against the current state.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("bank", &args.bank)?;
    if args.restore_subtree {
        return restore_subtree(state, &args.bank);
    }
    let shares = validate::non_negative("shares", &args.shares)?;
    let priority = validate::float("--priority", &args.priority)?;
    let ignore = validate::non_negative("--ignore-older-than", &args.ignore_older_than)?;
    if args.parent_bank.is_empty() {
        if let Some(root) = state.root_bank()? {
            if root.bank != args.bank {
                return Err(Error::invalid("bank_table already has a root bank"));
            }
        }
    } else {
        validate::name("parent bank", &args.parent_bank)?;
        let Some(parent) = state.bank(&args.parent_bank)? else {
            return Err(Error::invalid(format!("parent bank {} not found in bank table", args.parent_bank)));
        };
        if state.has_associations(&parent.bank)? {
            return Err(Error::invalid("banks cannot be added to a bank that currently has associations in it"));
        }
        if parent.active == 0 {
            return Err(Error::invalid(format!("parent bank {} is disabled", args.parent_bank)));
        }
    }
    if let Some(existing) = state.bank(&args.bank)? {
        if existing.active == 1 {
            return Err(Error::invalid(format!("bank {} already exists in bank_table", args.bank)));
        }
        if existing.parent_bank != args.parent_bank {
            return Err(Error::invalid(format!(
                "bank {} already exists in bank_table (disabled, under parent '{}')",
                args.bank, existing.parent_bank
            )));
        }
        return Ok(vec![Event::BankReactivated(BankRef { bank: args.bank.clone() })]);
    }
    Ok(vec![Event::BankAdded(BankAdded {
        bank: args.bank.clone(),
        parent_bank: args.parent_bank.clone(),
        shares,
        priority,
        ignore_older_than: ignore,
    })])
}

/// `--restore-subtree`: reactivates `bank` and every disabled bank below
/// it (from the top down), then every disabled association in them. The
/// parent must be active; a subtree with nothing disabled is refused.
fn restore_subtree(state: &State<'_>, bank: &str) -> Result<Vec<Event>> {
    let Some(top) = state.bank(bank)? else {
        return Err(Error::invalid(format!("bank {bank} not found in bank_table")));
    };
    if !top.parent_bank.is_empty() {
        if let Some(parent) = state.bank(&top.parent_bank)? {
            if parent.active == 0 {
                return Err(Error::invalid(format!(
                    "parent bank {} is disabled; restore it first (add-bank --restore-subtree {})",
                    parent.bank, parent.bank
                )));
            }
        }
    }
    let banks = crate::admin::subtree(state, top)?;
    let mut events: Vec<Event> = banks
        .iter()
        .filter(|b| b.active == 0)
        .map(|b| Event::BankReactivated(BankRef { bank: b.bank.clone() }))
        .collect();
    for b in &banks {
        for a in state.associations_in_bank(&b.bank)? {
            if a.active == 0 {
                events.push(Event::AssociationReactivated(AssocRef { username: a.username, bank: a.bank }));
            }
        }
    }
    if events.is_empty() {
        return Err(Error::invalid(format!("bank {bank} and everything below it are active; nothing to restore")));
    }
    Ok(events)
}

/// What `--restore-subtree` did, in one line.
fn restored_line(bank: &str, events: &[Event]) -> String {
    let banks = events.iter().filter(|e| matches!(e, Event::BankReactivated(b) if b.bank != bank)).count();
    let assocs = events.iter().filter(|e| matches!(e, Event::AssociationReactivated(_))).count();
    format!(
        "restored bank {bank}, {} and {}",
        crate::format::count_of(banks, "sub-bank", "sub-banks"),
        crate::format::count_of(assocs, "association", "associations")
    )
}

/// Runs `add-bank`.
pub fn cmd_add_bank(ctx: &Context, args: &Args) -> Result<Output> {
    let mut args = args.clone();
    let t = args.ignore_older_than.trim();
    if !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        // A date (or fractional epoch seconds): whole epoch seconds.
        args.ignore_older_than = ctx.parse_time_us(t)?.div_euclid(1_000_000).to_string();
    }
    let args = &args;
    let mut restored = None;
    crate::db::write(ctx, |s| {
        let events = decide(s, args)?;
        if args.restore_subtree {
            restored = Some(restored_line(&args.bank, &events));
        }
        Ok(events)
    })?;
    Ok(restored.map(Output::line).unwrap_or_else(Output::none))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    fn args(bank: &str, parent: &str) -> Args {
        Args {
            bank: bank.into(),
            shares: "1".into(),
            parent_bank: parent.into(),
            priority: "0.0".into(),
            ignore_older_than: "0".into(),
            restore_subtree: false,
        }
    }

    #[test]
    fn restore_subtree_reactivates_what_delete_bank_disabled_top_down() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("A1", "A"),
            Given::Bank("A2", "A"),
            Given::Bank("B", "root"),
            Given::User("u", "A1"),
            Given::User("u", "B"),
            Given::User("v", "A2"),
            Given::DisableUser("u", "A1"),
            Given::DisableUser("v", "A2"),
            Given::DisableBank("A2"),
            Given::DisableBank("A1"),
            Given::DisableBank("A"),
        ]);
        let restore = Args { restore_subtree: true, shares: String::new(), ..args("A", "") };
        let evs = decide(&g.state(), &restore).unwrap();
        let bank = |b: &str| Event::BankReactivated(BankRef { bank: b.into() });
        let assoc = |u: &str, b: &str| Event::AssociationReactivated(AssocRef { username: u.into(), bank: b.into() });
        assert_eq!(evs, vec![bank("A"), bank("A1"), bank("A2"), assoc("u", "A1"), assoc("v", "A2")]);
        assert_eq!(restored_line("A", &evs), "restored bank A, 2 sub-banks and 2 associations");
        // A disabled parent comes first.
        let sub = Args { restore_subtree: true, shares: String::new(), ..args("A1", "") };
        assert_eq!(
            decide(&g.state(), &sub).unwrap_err().to_string(),
            "parent bank A is disabled; restore it first (add-bank --restore-subtree A)"
        );
        // Nothing disabled: refused.
        let b = Args { restore_subtree: true, shares: String::new(), ..args("B", "") };
        assert_eq!(
            decide(&g.state(), &b).unwrap_err().to_string(),
            "bank B and everything below it are active; nothing to restore"
        );
    }

    #[test]
    fn root_then_child() {
        let g = given(&[]);
        let evs = decide(&g.state(), &args("root", "")).unwrap();
        assert!(matches!(&evs[0], Event::BankAdded(b) if b.bank == "root" && b.parent_bank.is_empty()));
        let g = given(&[Given::Bank("root", "")]);
        let evs = decide(&g.state(), &args("giants", "root")).unwrap();
        assert!(matches!(&evs[0], Event::BankAdded(b) if b.parent_bank == "root"));
    }

    #[test]
    fn rules() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u", "A")]);
        let err = |a: Args| decide(&g.state(), &a).unwrap_err().to_string();
        assert_eq!(err(args("other", "")), "bank_table already has a root bank");
        assert_eq!(err(args("x", "nope")), "parent bank nope not found in bank table");
        assert_eq!(err(args("x", "A")), "banks cannot be added to a bank that currently has associations in it");
        assert_eq!(err(args("A", "root")), "bank A already exists in bank_table");
        assert_eq!(
            err(Args { shares: "-1".into(), ..args("x", "root") }),
            "shares: value must be a non-negative integer, got -1"
        );
        assert_eq!(err(Args { shares: "abc".into(), ..args("x", "root") }), "shares: invalid integer value: 'abc'");
        assert_eq!(err(args("", "root")), "bank name must not be empty");
    }

    #[test]
    fn disabled_bank_is_reactivated() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::DisableBank("A")]);
        let evs = decide(&g.state(), &args("A", "root")).unwrap();
        assert_eq!(evs, vec![Event::BankReactivated(BankRef { bank: "A".into() })]);
    }
}
