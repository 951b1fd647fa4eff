//! `add-bank`: add a bank, or reactivate a disabled one.

use fluxacct_core::events::{BankAdded, BankRef, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a bank to the hierarchy. The first bank, added without
/// `--parent-bank`, is the root; there is only one root. Adding a disabled
/// bank again reactivates it (its sub-banks and users stay disabled).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank name.
    pub bank: String,
    /// Shares of the bank among its siblings.
    #[arg(allow_negative_numbers = true, value_parser = crate::validate::non_negative_arg)]
    pub shares: String,
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

/// Pure decision: validates against the current state.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("bank", &args.bank)?;
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

/// Runs `add-bank`.
pub fn cmd_add_bank(ctx: &Context, args: &Args) -> Result<Output> {
    let mut args = args.clone();
    let t = args.ignore_older_than.trim();
    if !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        // A date (or fractional epoch seconds): whole epoch seconds.
        args.ignore_older_than = ctx.parse_time_us(t)?.div_euclid(1_000_000).to_string();
    }
    let args = &args;
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
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
        }
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
