//! `add-config`: add a config key.

use fluxacct_core::events::{ConfigSet, Event};
use projections::model::State;

use crate::admin::{key_value, text_value};
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a key to the config table (`KEY=VALUE`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `KEY=VALUE`.
    pub pair: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    let (key, value) = key_value(&args.pair)?;
    validate::name("config key", &key)?;
    text_value("config value", &value)?;
    if state.config(&key)?.is_some() {
        return Err(Error::invalid(format!("key {key} already exists in config_table")));
    }
    Ok(vec![Event::ConfigAdded(ConfigSet { key, value })])
}

/// Runs `add-config`.
pub fn cmd_add_config(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn adds_new_keys() {
        let g = given(&[]);
        let a = |p: &str| decide(&g.state(), &Args { pair: p.into() });
        assert_eq!(
            a("site=llnl").unwrap(),
            vec![Event::ConfigAdded(ConfigSet { key: "site".into(), value: "llnl".into() })]
        );
        assert_eq!(a("decay_factor=1").unwrap_err().to_string(), "key decay_factor already exists in config_table");
        assert_eq!(a("nokey").unwrap_err().to_string(), "key-value string must contain exactly one \"=\"");
    }
}
