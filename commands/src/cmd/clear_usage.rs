//! `clear-usage`: reset the usage of banks.

use projections::events::{Event, UsageCleared};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::Result;

/// Reset the job usage of the associations of each named bank: jobs of
/// those associations that ended at or before `--ignore-older-than` (default:
/// now) no longer count, and their fair-share goes back to 0.5 until the
/// next `update-fshare`. Sub-banks are not touched. Unknown banks are
/// ignored with a warning.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Banks to clear.
    #[arg(required = true, value_name = "BANK")]
    pub banks: Vec<String>,
    /// Only jobs that ended after this time count (epoch seconds or a date).
    #[arg(long = "ignore-older-than", value_name = "TIME")]
    pub ignore_older_than: Option<String>,
}

/// Pure decision: one `UsageCleared` per known bank, and a warning per
/// unknown one.
pub fn decide(state: &State<'_>, args: &Args, now_secs: f64) -> Result<(Vec<Event>, Vec<String>)> {
    let ts = match &args.ignore_older_than {
        Some(t) => crate::time::parse_time_secs(t, now_secs)?,
        None => now_secs,
    }
    .floor() as i64;
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    for bank in &args.banks {
        if state.bank(bank)?.is_none() {
            warnings.push(format!("clear-usage: bank {bank} not found in bank_table; ignored"));
            continue;
        }
        events.push(Event::UsageCleared(UsageCleared { bank: bank.clone(), ignore_older_than: ts }));
    }
    Ok((events, warnings))
}

/// Runs `clear-usage`.
pub fn cmd_clear_usage(ctx: &Context, args: &Args) -> Result<Output> {
    let now = ctx.clock.now_secs();
    let mut warnings = Vec::new();
    crate::db::write(ctx, |s| {
        let (evs, w) = decide(s, args, now)?;
        warnings = w;
        Ok(evs)
    })?;
    Ok(Output { warnings, ..Output::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn given_banks_when_cleared_then_one_event_per_known_bank() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root")]);
        let args = Args { banks: vec!["A".into(), "nope".into()], ignore_older_than: Some("1000".into()) };
        let (evs, warnings) = decide(&g.state(), &args, 5000.5).unwrap();
        assert_eq!(evs, vec![Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 1000 })]);
        assert_eq!(warnings.len(), 1);
        let args = Args { banks: vec!["A".into()], ignore_older_than: None };
        let (evs, _) = decide(&g.state(), &args, 5000.5).unwrap();
        assert_eq!(evs, vec![Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 5000 })]);
    }
}
