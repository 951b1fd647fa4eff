//! `edit-allocation`: deposit, withdraw, extend or move the end, change the policy.

use fluxacct_core::allocation::{parse_milli, Exhausted};
use fluxacct_core::events::{AllocationAmount, AllocationPeriodChanged, AllocationPolicySet, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Change an allocation: each option is one event in the log (history is
/// kept; `allocation-statement` lists them).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Allocation name.
    pub name: String,
    /// Add this amount.
    #[arg(long)]
    pub deposit: Option<String>,
    /// Take this amount away.
    #[arg(long)]
    pub withdraw: Option<String>,
    /// New start of the period.
    #[arg(long)]
    pub start: Option<String>,
    /// New end of the period (later: extend; earlier: move it in).
    #[arg(long)]
    pub end: Option<String>,
    /// New exhausted policy: hold, deny, lowpriority, or site (the site's).
    #[arg(long, value_parser = ["hold", "deny", "lowpriority", "site"])]
    pub exhausted: Option<String>,
}

/// [`Args`] with times resolved to epoch seconds.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The arguments.
    pub args: Args,
    /// `--start`, resolved.
    pub start_s: Option<i64>,
    /// `--end`, resolved.
    pub end_s: Option<i64>,
}

fn amount(opt: &str, s: &str) -> Result<i64> {
    match parse_milli(s) {
        Some(m) if m > 0 => Ok(m),
        _ => Err(Error::invalid(format!("{opt}: {s} is not a positive amount with at most three decimals"))),
    }
}

/// Pure decision.
pub fn decide(state: &State<'_>, r: &Resolved) -> Result<Vec<Event>> {
    let a = &r.args;
    let Some(cur) = projections::allocation::allocation(state.conn(), &a.name)? else {
        return Err(Error::invalid(format!("allocation {} not found", a.name)));
    };
    if !cur.active {
        return Err(Error::invalid(format!("allocation {} was deleted", a.name)));
    }
    let mut evs = Vec::new();
    if let Some(d) = &a.deposit {
        evs.push(Event::AllocationDeposited(AllocationAmount {
            name: a.name.clone(),
            amount_milli: amount("--deposit", d)?,
        }));
    }
    if let Some(w) = &a.withdraw {
        evs.push(Event::AllocationWithdrawn(AllocationAmount {
            name: a.name.clone(),
            amount_milli: amount("--withdraw", w)?,
        }));
    }
    if r.start_s.is_some() || r.end_s.is_some() {
        let (start_s, end_s) = (r.start_s.unwrap_or(cur.start_s), r.end_s.unwrap_or(cur.end_s));
        if end_s <= start_s {
            return Err(Error::invalid("the period's end must be after its start"));
        }
        evs.push(Event::AllocationPeriodChanged(AllocationPeriodChanged { name: a.name.clone(), start_s, end_s }));
    }
    if let Some(p) = &a.exhausted {
        let exhausted = match p.as_str() {
            "site" => None,
            p => Some(Exhausted::parse(p).ok_or_else(|| Error::invalid("bad --exhausted"))?.as_str().to_string()),
        };
        evs.push(Event::AllocationPolicySet(AllocationPolicySet { name: a.name.clone(), exhausted }));
    }
    if evs.is_empty() {
        return Err(Error::invalid("no fields provided for update"));
    }
    Ok(evs)
}

/// Runs `edit-allocation`.
pub fn cmd_edit_allocation(ctx: &Context, args: &Args) -> Result<Output> {
    let secs = |s: &Option<String>| -> Result<Option<i64>> {
        s.as_deref().map(|s| ctx.parse_time_us(s).map(|us| us.div_euclid(1_000_000))).transpose()
    };
    let r = Resolved { args: args.clone(), start_s: secs(&args.start)?, end_s: secs(&args.end)? };
    crate::db::write(ctx, |s| decide(s, &r))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};
    use fluxacct_core::events::{AllocationAdded, AllocationRef};

    fn added() -> Event {
        Event::AllocationAdded(AllocationAdded {
            name: "q1".into(),
            bank: "root".into(),
            project: None,
            unit: "node-hours".into(),
            amount_milli: 100_000,
            start_s: 0,
            end_s: 100,
            exhausted: None,
        })
    }

    #[test]
    fn each_change_is_its_own_event() {
        let g = given(&[Given::Bank("root", ""), Given::Event(added())]);
        let r = Resolved {
            args: parse_args(&["q1", "--deposit", "5", "--withdraw", "0.5", "--exhausted", "deny"]),
            start_s: None,
            end_s: Some(200),
        };
        assert_eq!(
            decide(&g.state(), &r).unwrap(),
            vec![
                Event::AllocationDeposited(AllocationAmount { name: "q1".into(), amount_milli: 5000 }),
                Event::AllocationWithdrawn(AllocationAmount { name: "q1".into(), amount_milli: 500 }),
                Event::AllocationPeriodChanged(AllocationPeriodChanged { name: "q1".into(), start_s: 0, end_s: 200 }),
                Event::AllocationPolicySet(AllocationPolicySet { name: "q1".into(), exhausted: Some("deny".into()) }),
            ]
        );
    }

    #[test]
    fn unknown_deleted_or_empty_edits_are_refused() {
        let g = given(&[Given::Bank("root", ""), Given::Event(added())]);
        let r = |argv: &[&str]| Resolved { args: parse_args(argv), start_s: None, end_s: None };
        assert_eq!(
            decide(&g.state(), &r(&["nope", "--deposit", "1"])).unwrap_err().to_string(),
            "allocation nope not found"
        );
        assert_eq!(decide(&g.state(), &r(&["q1"])).unwrap_err().to_string(), "no fields provided for update");
        assert!(decide(&g.state(), &r(&["q1", "--deposit", "0"])).is_err());
        let g = given(&[
            Given::Bank("root", ""),
            Given::Event(added()),
            Given::Event(Event::AllocationDeleted(AllocationRef { name: "q1".into() })),
        ]);
        assert_eq!(
            decide(&g.state(), &r(&["q1", "--deposit", "1"])).unwrap_err().to_string(),
            "allocation q1 was deleted"
        );
    }
}
