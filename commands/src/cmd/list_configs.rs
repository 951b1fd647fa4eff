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

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = pair_rows("key", "value", &state.configs()?);
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
    fn lists_seven_keys() {
        let g = given(&[]);
        let out = view(&g.state(), &Args { out: ListOutput { fields: Some("key".into()), ..Default::default() } })
            .unwrap()
            .stdout;
        assert_eq!(out.lines().count(), 9);
        assert!(out.contains("deny_unknown_queues"));
    }
}
