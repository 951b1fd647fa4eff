//! `reset-factors`: set every priority factor weight back to its default.

use fluxacct_core::events::{Event, FactorWeightSet};
use projections::apply::DEFAULT_FACTORS;
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::Result;

/// Reset the factor weights: fairshare 100000, queue 10000, bank 0,
/// urgency 1000.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// Pure decision: one `FactorWeightSet` per factor.
pub fn decide(_state: &State<'_>, _args: &Args) -> Result<Vec<Event>> {
    Ok(DEFAULT_FACTORS
        .iter()
        .map(|(f, w)| Event::FactorWeightSet(FactorWeightSet { factor: f.to_string(), weight: *w }))
        .collect())
}

/// Runs `reset-factors`.
pub fn cmd_reset_factors(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn four_defaults() {
        let g = given(&[]);
        let evs = decide(&g.state(), &Args {}).unwrap();
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0], Event::FactorWeightSet(FactorWeightSet { factor: "fairshare".into(), weight: 100000 }));
    }
}
