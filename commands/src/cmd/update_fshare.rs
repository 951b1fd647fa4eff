//! `update-fshare`: recompute every active association's fair-share.

use fluxacct_core::events::{Event, FairshareUpdated};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Recompute the fair-share of every active association from the bank
/// tree, the shares and the job usage of the last `update-usage` (weighted
/// tree algorithm), and record it. Inactive associations keep their value.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print one summary line: associations whose fair-share changed, and
    /// the time taken.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision: computes the values and records their count and digest;
/// applying the event recomputes them and checks the digest.
pub fn decide(state: &State<'_>) -> Result<Vec<Event>> {
    if state.root_bank()?.is_none() {
        return Err(Error::invalid("root bank not found, exiting"));
    }
    let values = projections::usage::fairshare_values(state.conn())?;
    Ok(vec![Event::FairshareUpdated(FairshareUpdated {
        associations: values.len() as u64,
        digest: projections::usage::fairshare_digest(&values),
    })])
}

/// Runs `update-fshare`.
pub fn cmd_update_fshare(ctx: &Context, args: &Args) -> Result<Output> {
    use super::update_usage::{association_values, changed, summary};
    let started = std::time::Instant::now();
    let mut before = Default::default();
    let ledger = crate::db::write(ctx, |s| {
        if args.verbose {
            before = association_values(s.conn(), "fairshare")?;
        }
        decide(s)
    })?;
    if !args.verbose {
        return Ok(Output::none());
    }
    let after = association_values(ledger.conn(), "fairshare")?;
    Ok(Output::text(summary(
        "update-fshare",
        "changed fair-share",
        changed(&before, &after),
        after.len(),
        started.elapsed(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn given_no_root_when_updating_then_refused() {
        let g = given(&[]);
        assert_eq!(decide(&g.state()).unwrap_err().to_string(), "root bank not found, exiting");
    }

    #[test]
    fn given_two_users_without_usage_when_updating_then_both_rank_first() {
        let g =
            given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A"), Given::User("u2", "A")]);
        let evs = decide(&g.state()).unwrap();
        assert!(matches!(&evs[0], Event::FairshareUpdated(f) if f.associations == 2));
    }
}
