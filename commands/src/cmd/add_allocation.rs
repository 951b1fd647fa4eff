//! `add-allocation`: give a bank (or a project in it) a budget for a period.

use fluxacct_core::allocation::{parse_milli, Exhausted, Unit};
use fluxacct_core::events::{AllocationAdded, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add an allocation: AMOUNT units for the jobs of BANK and its sub-banks
/// (or only those of PROJECT) that end between START and END. Jobs are
/// charged as they are recorded (docs/allocations.md).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank the allocation covers (with its sub-banks).
    #[arg(long)]
    pub bank: String,
    /// Limit it to the jobs of this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Amount (up to three decimals).
    #[arg(long)]
    pub amount: String,
    /// Unit: node-hours, core-hours, gpu-hours or charge (weighted resources × hours).
    #[arg(long, value_parser = ["node-hours", "core-hours", "gpu-hours", "charge"])]
    pub unit: String,
    /// Start of the period (a date, a time, or seconds since the epoch).
    #[arg(long)]
    pub start: String,
    /// End of the period (exclusive).
    #[arg(long)]
    pub end: String,
    /// Name (default: BANK[-PROJECT]-START, as YYYYMMDD).
    #[arg(long)]
    pub name: Option<String>,
    /// What the plugin does once it is spent: hold, deny or lowpriority
    /// (default: the site's `allocation_exhausted`, else hold).
    #[arg(long, value_parser = ["hold", "deny", "lowpriority"])]
    pub exhausted: Option<String>,
}

/// [`Args`] with the period resolved to epoch seconds.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The arguments.
    pub args: Args,
    /// Period start.
    pub start_s: i64,
    /// Period end.
    pub end_s: i64,
}

/// The default name: `BANK[-PROJECT]-YYYYMMDD` of the start (UTC).
fn default_name(bank: &str, project: Option<&str>, start_s: i64) -> String {
    let day = chrono::DateTime::from_timestamp(start_s, 0).map(|t| t.format("%Y%m%d").to_string()).unwrap_or_default();
    match project {
        Some(p) => format!("{bank}-{p}-{day}"),
        None => format!("{bank}-{day}"),
    }
}

/// Pure decision.
pub fn decide(state: &State<'_>, r: &Resolved) -> Result<Vec<Event>> {
    let a = &r.args;
    let unit = Unit::parse(&a.unit).ok_or_else(|| Error::invalid(format!("unknown unit {}", a.unit)))?;
    let amount_milli = parse_milli(&a.amount).ok_or_else(|| {
        Error::invalid(format!("--amount: {} is not a non-negative amount with at most three decimals", a.amount))
    })?;
    if r.end_s <= r.start_s {
        return Err(Error::invalid("--end must be after --start"));
    }
    if state.bank(&a.bank)?.is_none_or(|b| b.active == 0) {
        return Err(Error::invalid(format!("bank {} not found in bank_table", a.bank)));
    }
    if let Some(p) = &a.project {
        if state.project(p)?.is_none() {
            return Err(Error::invalid(format!("project {p} not found in project_table")));
        }
    }
    let name = a.name.clone().unwrap_or_else(|| default_name(&a.bank, a.project.as_deref(), r.start_s));
    validate::name("allocation", &name)?;
    if projections::allocation::allocation(state.conn(), &name)?.is_some() {
        return Err(Error::invalid(format!("allocation {name} already exists (names are never reused)")));
    }
    let exhausted = a.exhausted.as_deref().map(|p| Exhausted::parse(p).map(|p| p.as_str().to_string()));
    let exhausted = match exhausted {
        Some(None) => return Err(Error::invalid("--exhausted must be hold, deny or lowpriority")),
        Some(Some(p)) => Some(p),
        None => None,
    };
    Ok(vec![Event::AllocationAdded(AllocationAdded {
        name,
        bank: a.bank.clone(),
        project: a.project.clone(),
        unit: unit.as_str().to_string(),
        amount_milli,
        start_s: r.start_s,
        end_s: r.end_s,
        exhausted,
    })])
}

/// Runs `add-allocation`.
pub fn cmd_add_allocation(ctx: &Context, args: &Args) -> Result<Output> {
    let start_s = ctx.parse_time_us(&args.start)?.div_euclid(1_000_000);
    let end_s = ctx.parse_time_us(&args.end)?.div_euclid(1_000_000);
    let r = Resolved { args: args.clone(), start_s, end_s };
    crate::db::write(ctx, |s| decide(s, &r))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};

    fn resolved(argv: &[&str]) -> Resolved {
        Resolved { args: parse_args(argv), start_s: 1_700_000_000, end_s: 1_710_000_000 }
    }

    #[test]
    fn an_allocation_of_an_existing_bank_is_added_with_its_amount_in_milli_units() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("physics", "root"), Given::Project("p1")]);
        let r =
            resolved(&["--bank", "physics", "--amount", "100.5", "--unit", "node-hours", "--start", "x", "--end", "y"]);
        let evs = decide(&g.state(), &r).unwrap();
        assert_eq!(
            evs,
            vec![Event::AllocationAdded(AllocationAdded {
                name: "physics-20231114".into(),
                bank: "physics".into(),
                project: None,
                unit: "node-hours".into(),
                amount_milli: 100_500,
                start_s: 1_700_000_000,
                end_s: 1_710_000_000,
                exhausted: None,
            })]
        );
    }

    #[test]
    fn bad_banks_projects_amounts_and_periods_are_refused() {
        let g = given(&[Given::Bank("root", ""), Given::Project("p1")]);
        let base = ["--amount", "1", "--unit", "node-hours", "--start", "x", "--end", "y"];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            resolved(&v)
        };
        let e = decide(&g.state(), &with(&["--bank", "nope"])).unwrap_err();
        assert_eq!(e.to_string(), "bank nope not found in bank_table");
        let e = decide(&g.state(), &with(&["--bank", "root", "--project", "p9"])).unwrap_err();
        assert_eq!(e.to_string(), "project p9 not found in project_table");
        let mut r = with(&["--bank", "root"]);
        r.end_s = r.start_s;
        assert_eq!(decide(&g.state(), &r).unwrap_err().to_string(), "--end must be after --start");
        let mut r = with(&["--bank", "root"]);
        r.args.amount = "1.0001".into();
        assert!(decide(&g.state(), &r).unwrap_err().to_string().starts_with("--amount: 1.0001"));
    }
}
