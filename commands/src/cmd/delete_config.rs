//! `delete-config`: remove a config key.

use fluxacct_core::events::{ConfigRef, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Keys that cannot be removed.
pub const PROTECTED: &[&str] = &[
    "priority_usage_reset_period",
    "priority_decay_half_life",
    "decay_factor",
    "node_weight",
    "core_weight",
    "gpu_weight",
    "deny_unknown_queues",
];

/// Remove a config key (the usage and plugin keys are protected).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Key.
    pub key: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("config key", &args.key)?;
    if PROTECTED.contains(&args.key.as_str()) {
        return Err(Error::invalid("key-value pair is not allowed to be removed from config_table"));
    }
    if state.config(&args.key)?.is_none() {
        return Err(Error::invalid(format!("key {} not found in config_table", args.key)));
    }
    Ok(vec![Event::ConfigDeleted(ConfigRef { key: args.key.clone() })])
}

/// Runs `delete-config`.
pub fn cmd_delete_config(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use fluxacct_core::events::ConfigSet;

    #[test]
    fn protected_and_unknown_keys() {
        let g = given(&[Given::Event(Event::ConfigAdded(ConfigSet { key: "site".into(), value: "x".into() }))]);
        let d = |k: &str| decide(&g.state(), &Args { key: k.into() });
        assert_eq!(d("site").unwrap(), vec![Event::ConfigDeleted(ConfigRef { key: "site".into() })]);
        assert_eq!(
            d("decay_factor").unwrap_err().to_string(),
            "key-value pair is not allowed to be removed from config_table"
        );
        assert_eq!(d("nope").unwrap_err().to_string(), "key nope not found in config_table");
    }
}
