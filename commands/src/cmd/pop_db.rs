//! `pop-db`: add banks or associations from a flux-accounting CSV file.

use std::path::PathBuf;

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::migrate::pop::{parse, row_events};

/// Add the rows of a flux-accounting CSV file (`bank_table.csv` or
/// `association_table.csv`, as `export-db` writes them: first line = column
/// names) through the normal write path: each row is validated like
/// `add-bank` / `add-user` and becomes events. Empty cells take the
/// command's default. All or nothing: one bad row and nothing is added.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The CSV file; its name (without `.csv`) names the table.
    #[arg(short = 'c', long = "csv-file", value_name = "FILE")]
    pub csv_file: PathBuf,
    /// Use only these columns of the file (comma list); the others take
    /// their defaults.
    #[arg(short = 'f', long = "fields", value_name = "FIELDS")]
    pub fields: Option<String>,
}

/// Runs `pop-db`.
pub fn cmd_pop_db(ctx: &Context, args: &Args) -> Result<Output> {
    let file_name = args.csv_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = std::fs::read_to_string(&args.csv_file)
        .map_err(|e| Error::invalid(format!("pop-db: {}: {e}", args.csv_file.display())))?;
    let (table, rows) = parse(&file_name, &text, args.fields.as_deref())?;
    let mut ledger = crate::db::open_write(ctx)?;
    let meta = ctx.meta();
    let mut tx = ledger.transaction()?;
    for (line, row) in &rows {
        let events = {
            let state = State::new(tx.conn());
            let uid = row.get("username").and_then(|u| ctx.users.uid_of(u)).map(i64::from);
            row_events(&state, table, row, uid)
                .map_err(|e| Error::invalid(format!("pop-db: {file_name} line {line}: {e}")))?
        };
        projections::append_and_apply(&mut tx, &meta, &events)?;
    }
    tx.commit()?;
    Ok(Output::none())
}
