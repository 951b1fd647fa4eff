//! `edit-config`: change config values.

use fluxacct_core::events::{ConfigSet, Event};
use projections::model::State;

use crate::admin::{key_value, text_value};
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::py_float;
use crate::validate;

/// Change one or more config values (`KEY=VALUE ...`). The usage keys are
/// checked: weights are floats, the reset period and half-life are Flux
/// Standard Durations (a bare number is seconds, as `list-configs` shows
/// them: `604800`, `15m`, `2w`; stored as seconds) and the reset period may
/// not be shorter than the half-life, decay_factor is within [0, 1], and
/// deny_unknown_queues is true or false.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `KEY=VALUE` pairs.
    #[arg(required = true, value_parser = pair_arg)]
    pub pairs: Vec<String>,
}

const RESET: &str = "priority_usage_reset_period";
const HALF_LIFE: &str = "priority_decay_half_life";

/// Clap's value parser of a `KEY=VALUE` pair: a pair that is not one, or
/// a value malformed for its key, is a usage error (whether the key
/// exists is the ledger's to say).
fn pair_arg(s: &str) -> std::result::Result<String, String> {
    let (key, value) = key_value(s).map_err(|e| e.to_string())?;
    check_value(&key, &value).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// The value stored for `key`, after its checks.
pub fn check_value(key: &str, value: &str) -> Result<String> {
    match key {
        "node_weight" | "core_weight" | "gpu_weight" => {
            let v = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| Error::invalid(format!("could not convert string to float: '{value}'")))?;
            if v < 0.0 {
                return Err(Error::invalid(format!("{key} must not be negative")));
            }
            Ok(value.trim().to_string())
        }
        "priority_usage_reset_period" | "priority_decay_half_life" => {
            let secs = projections::usage::parse_config_duration(value)
                .ok_or_else(|| Error::invalid("invalid Flux standard duration"))?;
            // A bare number is seconds already: kept as typed, so that
            // what list-configs prints goes back unchanged.
            let t = value.trim();
            Ok(if t.parse::<f64>().is_ok() { t.to_string() } else { py_float(secs) })
        }
        "decay_factor" => match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(value.trim().to_string()),
            _ => Err(Error::invalid("decay_factor must be a floating-point value between 0 and 1")),
        },
        "deny_unknown_queues" => {
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                Ok(value.to_string())
            } else {
                Err(Error::invalid("deny_unknown_queues must be 'true' or 'false'"))
            }
        }
        _ => {
            text_value("config value", value)?;
            Ok(value.to_string())
        }
    }
}

/// Pure decision: one `ConfigEdited` per pair.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for p in &args.pairs {
        let (key, value) = key_value(p)?;
        validate::name("config key", &key)?;
        let value = check_value(&key, &value)?;
        if state.config(&key)?.is_none() {
            return Err(Error::invalid(format!("key {key} not found in config_table")));
        }
        events.push(Event::ConfigEdited(ConfigSet { key, value }));
    }
    // The two durations as they will be, edited or not.
    let after = |key: &str| -> Result<Option<f64>> {
        let edited = events.iter().rev().find_map(|e| match e {
            Event::ConfigEdited(c) if c.key == key => Some(c.value.clone()),
            _ => None,
        });
        let value = match edited {
            Some(v) => Some(v),
            None => state.config(key)?,
        };
        Ok(value.as_deref().and_then(projections::usage::parse_config_duration))
    };
    if let (Some(reset), Some(half)) = (after(RESET)?, after(HALF_LIFE)?) {
        validate::reset_not_shorter_than_half_life(RESET, reset, HALF_LIFE, half)?;
    }
    Ok(events)
}

/// Runs `edit-config`.
pub fn cmd_edit_config(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn given_a_bare_number_when_editing_a_duration_then_it_is_seconds() {
        let g = given(&[]);
        let d = |p: &[&str]| decide(&g.state(), &Args { pairs: p.iter().map(|s| s.to_string()).collect() });
        assert_eq!(
            d(&["priority_decay_half_life=604800"]).unwrap(),
            vec![Event::ConfigEdited(ConfigSet { key: "priority_decay_half_life".into(), value: "604800".into() })]
        );
        assert_eq!(d(&["priority_decay_half_life=0"]).unwrap_err().to_string(), "invalid Flux standard duration");
        assert_eq!(d(&["priority_usage_reset_period=foo"]).unwrap_err().to_string(), "invalid Flux standard duration");
    }

    #[test]
    fn checks_known_keys() {
        let g = given(&[]);
        let d = |p: &[&str]| decide(&g.state(), &Args { pairs: p.iter().map(|s| s.to_string()).collect() });
        assert_eq!(
            d(&["priority_decay_half_life=900s", "deny_unknown_queues=True"]).unwrap(),
            vec![
                Event::ConfigEdited(ConfigSet { key: "priority_decay_half_life".into(), value: "900.0".into() }),
                Event::ConfigEdited(ConfigSet { key: "deny_unknown_queues".into(), value: "True".into() }),
            ]
        );
        assert_eq!(d(&["node_weight=x"]).unwrap_err().to_string(), "could not convert string to float: 'x'");
        assert_eq!(
            d(&["decay_factor=2"]).unwrap_err().to_string(),
            "decay_factor must be a floating-point value between 0 and 1"
        );
        assert_eq!(
            d(&["deny_unknown_queues=yes"]).unwrap_err().to_string(),
            "deny_unknown_queues must be 'true' or 'false'"
        );
        assert_eq!(
            d(&["priority_decay_half_life=5w"]).unwrap_err().to_string(),
            "priority_usage_reset_period (2419200s) is shorter than priority_decay_half_life (3024000s): \
             the reset period must be at least one half-life"
        );
        // Both at once: checked as they will be.
        assert!(d(&["priority_decay_half_life=5w", "priority_usage_reset_period=10w"]).is_ok());
        assert_eq!(d(&["nope=1"]).unwrap_err().to_string(), "key nope not found in config_table");
        assert_eq!(d(&["a=b=c"]).unwrap_err().to_string(), "key-value string must contain exactly one \"=\"");
    }
}
