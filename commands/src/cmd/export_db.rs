//! `export-db`: the ledger's state in flux-accounting's own formats.

use std::path::PathBuf;

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::migrate::export::{hierarchy, write_csvs};

/// Write one `<table>.csv` per flux-accounting 0.60 table (header = column
/// names, then every row, NULL as an empty cell, numbers as flux-accounting
/// writes them) into `--out DIR`. With `-F/--fairshare-emulate`, print the
/// bank/association hierarchy as the JSON document that
/// `fairshare-emulate` reads instead.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print the hierarchy (shares and usage) as `{"root": ...}` JSON.
    #[arg(short = 'F', long = "fairshare-emulate")]
    pub fairshare_emulate: bool,
    /// Directory to write the CSV files into.
    #[arg(long = "out", value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Runs `export-db`.
pub fn cmd_export_db(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    let state = State::new(db.conn());
    if args.fairshare_emulate {
        let h = hierarchy(&state)?;
        let text = serde_json::to_string_pretty(&h).map_err(|e| Error::io_msg(e.to_string()))?;
        return Ok(Output::line(text));
    }
    if !args.out.is_dir() {
        return Err(Error::invalid(format!("export-db: {} is not a directory", args.out.display())));
    }
    write_csvs(ctx, &state, &args.out)?;
    Ok(Output::none())
}
