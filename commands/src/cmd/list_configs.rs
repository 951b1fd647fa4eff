//! `list-configs`: list the config table.

use projections::model::State;

use crate::cmd::shared::{pair_rows, render, Default};
use crate::context::{Context, Output};
use crate::error::Result;

/// List every config key and value as a table.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these columns (key, value).
    #[arg(long)]
    pub fields: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the list.
pub fn view(state: &State<'_>, a: &Args) -> Result<Output> {
    let rows = pair_rows("key", "value", &state.configs()?);
    let text = render(
        rows,
        a.fields.as_deref(),
        a.format.as_deref(),
        a.json,
        false,
        Default::Table,
        "no results found in query",
    )?;
    Ok(Output::line(text))
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
        let out = view(&g.state(), &Args { fields: Some("key".into()), json: false, format: None }).unwrap().stdout;
        assert_eq!(out.lines().count(), 9);
        assert!(out.contains("deny_unknown_queues"));
    }
}
