//! `update-usage`: bring every association's job usage up to now.

use fluxacct_core::events::{Event, UsageUpdated};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::Result;
use crate::usage_view::{association_values, changed, summary};

/// Update the job usage of every association and bank as of now: bins the
/// jobs recorded since the last update (and those that had not ended yet),
/// applies the half-life decay per period, and rolls usage up the bank
/// tree. Run `fetch-job-records` first to record finished jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Accepted for compatibility with flux-accounting's cron line and
    /// ignored: jobs come from `fetch-job-records`.
    #[arg(long = "job-archive_db_path", alias = "job-archive-db-path", value_name = "PATH", hide = true)]
    pub job_archive_db_path: Option<String>,
    /// Accepted for compatibility and ignored: the half-life is a ledger
    /// setting (`edit-config`).
    #[arg(long = "priority-decay-half-life", value_name = "WEEKS", hide = true)]
    pub priority_decay_half_life: Option<String>,
    /// Log flux-accounting's INFO lines on stderr (`beginning job-usage
    /// update …`, `… now complete`) and print one summary line:
    /// associations whose job usage changed, and the time taken.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// flux-accounting's INFO line as an update starts (`-v`).
pub const BEGINNING: &str = "beginning job-usage update for flux-accounting DB; slow response times may occur";
/// flux-accounting's INFO line when it is done (`-v`).
pub const COMPLETE: &str = "job-usage update for flux-accounting DB now complete";

/// Pure decision: a usage update as of `now` (epoch seconds). When the
/// previous update is later (the clock was stepped back), the update is
/// still recorded and usage is computed as of `now`: the log shows that
/// time went backwards ([`went_back`] words it).
pub fn decide(_state: &State<'_>, now: f64) -> Result<Vec<Event>> {
    Ok(vec![Event::UsageUpdated(UsageUpdated { as_of: now })])
}

/// The note printed when the clock is earlier than the last usage update.
pub fn went_back(state: &State<'_>, now: f64, zone: crate::time::Zone) -> Result<Option<String>> {
    let show = |t: f64| crate::time::table_time((t * 1e6).round() as i64, zone);
    Ok(projections::usage::last_as_of(state.conn())?.filter(|prev| *prev > now).map(|prev| {
        format!(
            "flux-account: warning: the clock ({}) is {:.3} s behind the last usage update ({}); \
             usage is computed as of now",
            show(now),
            prev - now,
            show(prev)
        )
    }))
}

/// Runs `update-usage`.
pub fn cmd_update_usage(ctx: &Context, args: &Args) -> Result<Output> {
    let started = std::time::Instant::now();
    let now = ctx.clock.now_secs();
    let mut before = Default::default();
    let mut note = None;
    let mut out = Output::none();
    if args.verbose {
        out.notes.push(ctx.info(BEGINNING));
    }
    // Cron runs this hourly: it also verifies the chain from the last
    // verified seq to the head, and refuses to build on a break.
    let mut ledger = crate::db::open_write(ctx)?;
    crate::chain::verify_incrementally(&ledger)?;
    crate::db::write_on(ctx, &mut ledger, |s| {
        note = went_back(s, now, ctx.zone)?;
        if args.verbose {
            before = association_values(s.conn(), "job_usage")?;
        }
        decide(s, now)
    })?;
    out.notes.extend(note);
    if args.verbose {
        out.notes.push(ctx.info(COMPLETE));
        let after = association_values(ledger.conn(), "job_usage")?;
        out.stdout =
            summary("update-usage", "changed job usage", changed(&before, &after), after.len(), started.elapsed());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use crate::time::Zone;

    #[test]
    fn given_later_update_when_updating_earlier_then_recorded_with_a_note() {
        let g = given(&[Given::Event(Event::UsageUpdated(UsageUpdated { as_of: 100.0 }))]);
        assert_eq!(decide(&g.state(), 50.0).unwrap(), vec![Event::UsageUpdated(UsageUpdated { as_of: 50.0 })]);
        let note = went_back(&g.state(), 50.0, Zone::Utc).unwrap().unwrap();
        assert!(
            note.contains(
                "(1970-01-01T00:00:50.000000+00:00) is 50.000 s behind the last usage update (1970-01-01T00:01:40"
            ),
            "{note}"
        );
        assert_eq!(went_back(&g.state(), 100.0, Zone::Utc).unwrap(), None);
    }
}
