//! `list-configs`: list the config table.

use projections::model::State;

use crate::admin::{pair_rows, ListOutput};
use crate::context::{Context, Output};
use crate::error::Result;

/// List every config key and value as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output options.
    #[command(flatten)]
    pub out: ListOutput,
}

/// Read-only: renders the list. Keys are in the order they were added;
/// with `--fields=key` alone, sorted by key, as flux-accounting lists them
/// then (its query reads the key index only).
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let mut configs = state.configs()?;
    let only_key = a.out.fields.as_deref().is_some_and(|f| f.split(',').all(|c| c.trim() == "key"));
    if only_key {
        configs.sort_by(|x, y| x.0.cmp(&y.0));
    }
    let rows = pair_rows("key", "value", &configs);
    a.out.render(rows)
}

/// Runs `list-configs`.
pub fn cmd_list_configs(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn given_fields_key_alone_when_listing_then_keys_are_sorted_as_flux_accounting_lists_them() {
        let g = given(&[]);
        let out = view(&g.state(), &Args { out: ListOutput { fields: Some("key".into()), ..Default::default() } })
            .unwrap()
            .stdout;
        assert_eq!(out.lines().count(), 9);
        let keys: Vec<&str> = out.lines().skip(2).map(str::trim_end).collect();
        assert_eq!(
            keys,
            [
                "core_weight",
                "decay_factor",
                "deny_unknown_queues",
                "gpu_weight",
                "node_weight",
                "priority_decay_half_life",
                "priority_usage_reset_period"
            ]
        );
    }
}
