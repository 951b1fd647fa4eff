//! `clear-usage`: reset the usage of banks.

use fluxacct_core::events::{Event, UsageCleared};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::time::{parse_time_in, Zone};

/// Reset the job usage of the associations of each named bank: jobs of
/// those associations that ended at or before `--ignore-older-than` (default:
/// now) no longer count, and their fair-share goes back to 0.5 until the
/// next `update-fshare`. Sub-banks are not touched. An unknown bank is
/// refused (nothing is cleared).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Banks to clear.
    #[arg(required = true, value_name = "BANK")]
    pub banks: Vec<String>,
    /// Only jobs that ended after this time count (epoch seconds or a date).
    #[arg(long = "ignore-older-than", value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub ignore_older_than: Option<String>,
}

/// Pure decision: one `UsageCleared` per bank; an unknown bank refuses
/// the whole command, like every other unknown target. `now_us` and `zone`
/// read `--ignore-older-than`.
pub fn decide(state: &State<'_>, args: &Args, now_us: i64, zone: Zone) -> Result<Vec<Event>> {
    // The exact time (the current one by default, not truncated: a job that
    // ended earlier in the same second must not count).
    let exact_us = match &args.ignore_older_than {
        Some(t) => parse_time_in(t, now_us, zone)?,
        None => now_us,
    };
    let ts = exact_us.div_euclid(1_000_000);
    let at = (exact_us.rem_euclid(1_000_000) != 0).then(|| exact_us as f64 / 1e6);
    let mut events = Vec::new();
    for bank in &args.banks {
        if state.bank(bank)?.is_none() {
            return Err(Error::invalid(format!("bank {bank} not found in bank_table")));
        }
        events.push(Event::UsageCleared(UsageCleared { bank: bank.clone(), ignore_older_than: ts, at }));
    }
    Ok(events)
}

/// Runs `clear-usage`.
pub fn cmd_clear_usage(ctx: &Context, args: &Args) -> Result<Output> {
    let now = ctx.clock.now_us();
    crate::db::write(ctx, |s| decide(s, args, now, ctx.zone))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn given_banks_when_cleared_then_one_event_per_bank() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root")]);
        let args = Args { banks: vec!["A".into()], ignore_older_than: Some("1000".into()) };
        let evs = decide(&g.state(), &args, 5_000_500_000, Zone::Utc).unwrap();
        assert_eq!(
            evs,
            vec![Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 1000, at: None })]
        );
        let args = Args { banks: vec!["A".into()], ignore_older_than: None };
        let evs = decide(&g.state(), &args, 5_000_500_000, Zone::Utc).unwrap();
        assert_eq!(
            evs,
            vec![Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 5000, at: Some(5000.5) })]
        );
    }

    #[test]
    fn given_an_unknown_bank_when_cleared_then_refused() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root")]);
        let args = Args { banks: vec!["A".into(), "nosuch".into()], ignore_older_than: None };
        let e = decide(&g.state(), &args, 0, Zone::Utc).unwrap_err().to_string();
        assert_eq!(e, "bank nosuch not found in bank_table");
    }
}
