//! `scrub-old-jobs`: hide old job records from listings and reports.

use fluxacct_core::events::{Event, JobsScrubbed};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Seconds in a week.
const WEEK: f64 = 604_800.0;

/// Hide job records that ended more than WEEKS weeks ago (default 26; `0`:
/// every finished job) from `view-job-records` and `view-usage-report`.
/// Unlike flux-accounting, nothing is deleted: the command appends a
/// `JobsScrubbed` event, the records stay in the hash-chained log, and
/// `--as-of` a point before the event still shows them. Usage already
/// computed is not changed.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Age in weeks: records that ended earlier are hidden.
    #[arg(value_name = "WEEKS", default_value_t = 26)]
    pub weeks: u64,
    /// Print how many records are now hidden.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision: one `JobsScrubbed` with the cut `now − WEEKS weeks`.
pub fn decide(_state: &State<'_>, args: &Args, now_secs: f64) -> Result<Vec<Event>> {
    let age = (args.weeks as f64) * WEEK;
    if !age.is_finite() || age > now_secs.abs() + 1e12 {
        return Err(Error::invalid(format!("scrub-old-jobs: {} weeks is too many", args.weeks)));
    }
    Ok(vec![Event::JobsScrubbed(JobsScrubbed { before: now_secs - age, weeks: args.weeks })])
}

/// Runs `scrub-old-jobs`.
pub fn cmd_scrub_old_jobs(ctx: &Context, args: &Args) -> Result<Output> {
    let now = ctx.clock.now_secs();
    let ledger = crate::db::write(ctx, |s| decide(s, args, now))?;
    if !args.verbose {
        return Ok(Output::none());
    }
    let state = State::new(ledger.conn());
    let cut = state.jobs_scrubbed_before()?.unwrap_or(f64::NEG_INFINITY);
    let hidden: i64 =
        ledger.conn().query_row("SELECT count(*) FROM jobs WHERE t_inactive < ?1", [cut], |r| r.get(0))?;
    Ok(Output::line(format!(
        "{hidden} job records that ended before {} are hidden (they stay in the log)",
        crate::time::table_time((cut * 1e6) as i64, ctx.zone)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args};

    #[test]
    fn given_default_age_when_scrubbing_then_the_cut_is_26_weeks_back() {
        let g = given(&[]);
        let args: Args = parse_args(&[]);
        assert_eq!(
            decide(&g.state(), &args, 100_000_000.0).unwrap(),
            vec![Event::JobsScrubbed(JobsScrubbed { before: 100_000_000.0 - 26.0 * WEEK, weeks: 26 })]
        );
        let args: Args = parse_args(&["0"]);
        assert_eq!(
            decide(&g.state(), &args, 5.0).unwrap(),
            vec![Event::JobsScrubbed(JobsScrubbed { before: 5.0, weeks: 0 })]
        );
    }

    #[test]
    fn given_an_absurd_age_when_scrubbing_then_refused() {
        let g = given(&[]);
        let args: Args = parse_args(&["18446744073709551615"]);
        assert!(decide(&g.state(), &args, 5.0).is_err());
    }
}
