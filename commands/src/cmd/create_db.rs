//! `create-db`: create a new ledger and write its genesis event.

use fluxacct_core::events::{DbCreated, Event};
use ledger::Ledger;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Create the fluxacct ledger (a SQLite file) and write its genesis event,
/// which carries the usage configuration.
///
/// Durations are weeks as an integer (`2`; at most 10 years' worth, so that
/// seconds typed by habit, `604800`, are refused with a hint) or a Flux
/// Standard Duration (`2w`, `30d`, `3600s`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Length of one usage period (half-life).
    #[arg(long = "priority-decay-half-life", default_value = "1w", value_name = "DURATION", value_parser = crate::validate::duration_arg)]
    pub priority_decay_half_life: String,
    /// Usage reset period: jobs older than floor(reset / half-life) past
    /// periods no longer count.
    #[arg(long = "priority-usage-reset-period", default_value = "4w", value_name = "DURATION", value_parser = crate::validate::duration_arg)]
    pub priority_usage_reset_period: String,
    /// Decay factor applied per past period (0 < D < 1).
    #[arg(long = "decay-factor", default_value = "0.5", value_name = "FLOAT", value_parser = crate::validate::float_arg)]
    pub decay_factor: String,
}

/// Pure: the genesis event for these arguments at time `now` (seconds).
pub fn decide(args: &Args, now: f64) -> Result<Vec<Event>> {
    let half_life = validate::duration("--priority-decay-half-life", &args.priority_decay_half_life)?;
    let reset = validate::duration("--priority-usage-reset-period", &args.priority_usage_reset_period)?;
    validate::reset_not_shorter_than_half_life(
        "--priority-usage-reset-period",
        reset,
        "--priority-decay-half-life",
        half_life,
    )?;
    let d = validate::float("--decay-factor", &args.decay_factor)?;
    if !(d > 0.0 && d < 1.0) {
        return Err(Error::invalid(format!("Value must be between 0.0 and 1.0, but got {}", args.decay_factor)));
    }
    Ok(vec![Event::DbCreated(DbCreated {
        priority_decay_half_life: half_life,
        priority_usage_reset_period: reset,
        decay_factor: d,
        ..DbCreated::with_defaults(now)
    })])
}

/// Runs `create-db`.
pub fn cmd_create_db(ctx: &Context, args: &Args) -> Result<Output> {
    let meta = ctx.meta();
    let events = decide(args, meta.recorded_at_us as f64 / 1e6)?;
    let mut ledger = Ledger::create(&ctx.db_path)?;
    let mut tx = ledger.transaction()?;
    projections::schema::create(tx.conn())?;
    projections::append_and_apply(&mut tx, &meta, &events)?;
    tx.commit()?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(h: &str, r: &str, d: &str) -> Args {
        Args { priority_decay_half_life: h.into(), priority_usage_reset_period: r.into(), decay_factor: d.into() }
    }

    #[test]
    fn genesis_carries_the_configuration() {
        let evs = decide(&args("2", "8", "0.25"), 100.0).unwrap();
        let Event::DbCreated(g) = &evs[0] else { panic!("not genesis") };
        assert_eq!(g.priority_decay_half_life, 1209600.0);
        assert_eq!(g.priority_usage_reset_period, 4838400.0);
        assert_eq!(g.decay_factor, 0.25);
        assert_eq!(g.t0, 100.0);
        assert_eq!((g.node_weight, g.core_weight, g.gpu_weight), (1.0, 0.0, 0.0));
    }

    #[test]
    fn given_a_reset_period_shorter_than_the_half_life_then_refused_naming_both() {
        let e = decide(&args("2w", "1w", "0.5"), 0.0).unwrap_err().to_string();
        assert_eq!(
            e,
            "--priority-usage-reset-period (604800s) is shorter than --priority-decay-half-life (1209600s): \
             the reset period must be at least one half-life"
        );
        assert!(decide(&args("1w", "1w", "0.5"), 0.0).is_ok());
    }

    #[test]
    fn decay_factor_must_be_strictly_between_0_and_1() {
        for bad in ["0", "1", "1.5", "-0.1", "x"] {
            assert!(decide(&args("1w", "4w", bad), 0.0).is_err(), "{bad}");
        }
        let e = decide(&args("1w", "4w", "1.5"), 0.0).unwrap_err().to_string();
        assert_eq!(e, "Value must be between 0.0 and 1.0, but got 1.5");
    }
}
