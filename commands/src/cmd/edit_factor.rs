//! `edit-factor`: set a priority factor's weight.

use fluxacct_core::events::{Event, FactorWeightSet};
use projections::apply::DEFAULT_FACTORS;
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Set the integer weight of a priority factor (fairshare, queue, bank or
/// urgency). The plugin sees it after the next `priority-update`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Factor.
    #[arg(long)]
    pub factor: String,
    /// Weight (a non-negative integer).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::validate::non_negative_arg)]
    pub weight: String,
}

/// Pure decision.
pub fn decide(_state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    if !DEFAULT_FACTORS.iter().any(|(f, _)| *f == args.factor) {
        let names: Vec<&str> = DEFAULT_FACTORS.iter().map(|(f, _)| *f).collect();
        return Err(Error::invalid(format!(
            "factor {} not found in priority_factor_weight_table; available factors are {}",
            args.factor,
            names.join(",")
        )));
    }
    let weight = validate::non_negative("--weight", &args.weight)?;
    Ok(vec![Event::FactorWeightSet(FactorWeightSet { factor: args.factor.clone(), weight })])
}

/// Runs `edit-factor`.
pub fn cmd_edit_factor(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn known_factors_only() {
        let g = given(&[]);
        let a = |f: &str, w: &str| Args { factor: f.into(), weight: w.into() };
        assert_eq!(
            decide(&g.state(), &a("bank", "10")).unwrap(),
            vec![Event::FactorWeightSet(FactorWeightSet { factor: "bank".into(), weight: 10 })]
        );
        assert!(decide(&g.state(), &a("foo", "1")).unwrap_err().to_string().starts_with("factor foo not found"));
        assert!(decide(&g.state(), &a("bank", "-1")).is_err());
        assert!(decide(&g.state(), &a("bank", "x")).is_err());
    }
}
