//! `edit-bank`: change a bank's shares, parent, priority or ignore-older-than.

use std::collections::HashSet;

use fluxacct_core::events::{BankEdited, Event};
use projections::model::{Bank, State};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Edit a bank. Only the options given change. Moving a bank
/// (`--parent-bank`) keeps the tree rules: the new parent must exist, must
/// not hold users, and must not be the bank itself or below it.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank name.
    pub bank: String,
    /// New shares (> 0).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::validate::positive_arg)]
    pub shares: Option<String>,
    /// New parent bank.
    #[arg(long = "parent-bank")]
    pub parent_bank: Option<String>,
    /// New bank priority.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::validate::float_arg)]
    pub priority: Option<String>,
    /// Jobs that ended at or before this time (epoch seconds or a date) do
    /// not count towards usage.
    #[arg(long = "ignore-older-than", value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub ignore_older_than: Option<String>,
}

/// Pure decision. `now_us` resolves relative times in --ignore-older-than.
pub fn decide(state: &State<'_>, args: &Args, now_us: i64, zone: crate::time::Zone) -> Result<Vec<Event>> {
    validate::name("bank", &args.bank)?;
    let shares = match &args.shares {
        Some(s) => {
            let v = validate::int("--shares", s)?;
            if v <= 0 {
                return Err(Error::invalid("new shares amount must be > 0"));
            }
            Some(v)
        }
        None => None,
    };
    let priority = args.priority.as_deref().map(|p| validate::float("--priority", p)).transpose()?;
    let ignore_older_than = match &args.ignore_older_than {
        Some(s) => {
            let t = crate::time::parse_time_in(s, now_us, zone)?.div_euclid(1_000_000);
            if t < 0 {
                return Err(Error::invalid("--ignore-older-than: value must not be negative"));
            }
            Some(t)
        }
        None => None,
    };
    if shares.is_none() && args.parent_bank.is_none() && priority.is_none() && ignore_older_than.is_none() {
        return Err(Error::invalid("no fields provided for update"));
    }
    let Some(bank) = state.bank(&args.bank)? else {
        return Err(Error::invalid(format!("bank {} not found in bank_table", args.bank)));
    };
    if let Some(p) = &args.parent_bank {
        validate::name("parent bank", p)?;
        let Some(parent) = state.bank(p)? else {
            return Err(Error::invalid(format!("parent bank {p} not found in bank table")));
        };
        if bank.parent_bank.is_empty() {
            return Err(Error::invalid("the root bank cannot be given a parent bank"));
        }
        if is_at_or_below(state, parent, &bank.bank)? {
            return Err(Error::invalid(format!("bank {} cannot be moved under itself or its sub-bank {p}", bank.bank)));
        }
        if state.has_associations(p)? {
            return Err(Error::invalid("banks cannot be added to a bank that currently has associations in it"));
        }
    }
    Ok(vec![Event::BankEdited(BankEdited {
        bank: bank.bank,
        shares,
        parent_bank: args.parent_bank.clone(),
        priority,
        ignore_older_than,
    })])
}

/// Whether bank `start` is `ancestor` itself or lies below it: walks up the
/// parent chain from `start`, one query per level. Stops at the root, at a
/// parent that has no row, or at a bank already visited.
fn is_at_or_below(state: &State<'_>, start: Bank, ancestor: &str) -> Result<bool> {
    let mut visited: HashSet<String> = HashSet::new();
    let mut cur = Some(start);
    while let Some(b) = cur {
        if b.bank == ancestor {
            return Ok(true);
        }
        if b.parent_bank.is_empty() || !visited.insert(b.bank) {
            break;
        }
        cur = state.bank(&b.parent_bank)?;
    }
    Ok(false)
}

/// Runs `edit-bank`.
pub fn cmd_edit_bank(ctx: &Context, args: &Args) -> Result<Output> {
    let now = ctx.clock.now_us();
    crate::db::write(ctx, |s| decide(s, args, now, ctx.zone))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    fn args(bank: &str) -> Args {
        Args { bank: bank.into(), shares: None, parent_bank: None, priority: None, ignore_older_than: None }
    }

    #[test]
    fn edits_only_given_fields() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root")]);
        let evs =
            decide(&g.state(), &Args { shares: Some("3".into()), ..args("A") }, 0, crate::time::Zone::Utc).unwrap();
        assert_eq!(
            evs,
            vec![Event::BankEdited(BankEdited { bank: "A".into(), shares: Some(3), ..Default::default() })]
        );
    }

    #[test]
    fn rules() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("A1", "A"),
            Given::Bank("B", "root"),
            Given::User("u", "B"),
        ]);
        let err = |a: Args| decide(&g.state(), &a, 0, crate::time::Zone::Utc).unwrap_err().to_string();
        assert_eq!(err(args("A")), "no fields provided for update");
        assert_eq!(err(Args { shares: Some("0".into()), ..args("A") }), "new shares amount must be > 0");
        assert_eq!(err(Args { shares: Some("x".into()), ..args("A") }), "--shares: invalid integer value: 'x'");
        assert_eq!(err(Args { shares: Some("2".into()), ..args("Z") }), "bank Z not found in bank_table");
        assert_eq!(
            err(Args { parent_bank: Some("nope".into()), ..args("A") }),
            "parent bank nope not found in bank table"
        );
        assert!(err(Args { parent_bank: Some("A1".into()), ..args("A") }).contains("cannot be moved under"));
        assert_eq!(
            err(Args { parent_bank: Some("B".into()), ..args("A") }),
            "banks cannot be added to a bank that currently has associations in it"
        );
    }
}
