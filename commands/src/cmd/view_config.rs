//! `view-config`: show one config key.

use projections::model::State;

use crate::admin::{pair_rows, render, DefaultFormat};
use crate::context::{Context, Output};
use crate::error::Result;

/// Show a config key and its value (a table by default).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Key.
    pub key: String,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

/// Read-only: renders the view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let pairs: Vec<(String, String)> = state.config(&args.key)?.map(|v| (args.key.clone(), v)).into_iter().collect();
    let empty = format!("key {} not found in config_table", args.key);
    let text = render(
        pair_rows("key", "value", &pairs),
        None,
        args.format.as_deref(),
        args.json,
        false,
        DefaultFormat::Table,
        &empty,
    )?;
    Ok(Output::line(text))
}

/// Runs `view-config`.
pub fn cmd_view_config(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    #[test]
    fn views() {
        let g = given(&[]);
        let out = view(&g.state(), &Args { key: "decay_factor".into(), json: true, format: None }).unwrap().stdout;
        assert_eq!(out, "[\n  {\n    \"key\": \"decay_factor\",\n    \"value\": \"0.5\"\n  }\n]\n");
        let e = view(&g.state(), &Args { key: "x".into(), json: false, format: None }).unwrap_err();
        assert_eq!(e.to_string(), "key x not found in config_table");
    }
}
