//! `pop-db`: load the tables `export-db` writes back into a ledger.

use std::path::PathBuf;

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::migrate::pop::{disabled_later, existing, parse, row_events, CsvRow, Table};

/// Add the rows of flux-accounting CSV files (`bank_table.csv`,
/// `queue_table.csv`, `project_table.csv`, `association_table.csv`,
/// `config_table.csv`, `priority_factor_weight_table.csv`, as `export-db`
/// writes them: first line = column names) through the normal write path:
/// each row is validated like the command that adds it (`add-bank`,
/// `add-queue`, `add-project`, `add-user`, `add-config`/`edit-config`,
/// `edit-factor`) and becomes events. Empty cells take the command's
/// default. Several files (or a directory, for every such file in it) are
/// loaded in dependency order. All or nothing: one bad row and nothing is
/// added. A row already in the ledger with the same values is skipped, so
/// loading the same files again changes nothing.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A CSV file (its name without `.csv` names the table), or a
    /// directory of them; repeat for several.
    #[arg(short = 'c', long = "csv-file", value_name = "FILE|DIR", required = true)]
    pub csv_file: Vec<PathBuf>,
    /// Use only these columns of the files (comma list); the others take
    /// their defaults.
    #[arg(short = 'f', long = "fields", value_name = "FIELDS")]
    pub fields: Option<String>,
}

/// One file read: its name, table and numbered rows.
type Loaded = (String, Table, Vec<(usize, CsvRow)>);

fn read(path: &std::path::Path, fields: Option<&str>) -> Result<Loaded> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| Error::invalid(format!("pop-db: {}: {e}", path.display())))?;
    let (table, rows) = parse(&file_name, &text, fields)?;
    Ok((file_name, table, rows))
}

/// Runs `pop-db`.
pub fn cmd_pop_db(ctx: &Context, args: &Args) -> Result<Output> {
    let mut files: Vec<Loaded> = Vec::new();
    for path in &args.csv_file {
        if path.is_dir() {
            let mut found = false;
            for t in Table::LOAD_ORDER {
                let p = path.join(format!("{}.csv", t.name()));
                if p.is_file() {
                    files.push(read(&p, args.fields.as_deref())?);
                    found = true;
                }
            }
            if !found {
                return Err(Error::invalid(format!("pop-db: {}: no table files in this directory", path.display())));
            }
        } else {
            files.push(read(path, args.fields.as_deref())?);
        }
    }
    // Dependency order; files of one table in the order given.
    files.sort_by_key(|(_, t, _)| *t);
    let mut ledger = crate::db::open_write(ctx)?;
    let meta = ctx.meta();
    let mut tx = ledger.transaction()?;
    let mut later = Vec::new();
    for (file_name, table, rows) in &files {
        let before = existing(ctx, &State::new(tx.conn()), *table)?;
        for (line, row) in rows {
            let events = {
                let state = State::new(tx.conn());
                let uid = row.get("username").and_then(|u| ctx.users.uid_of(u)).map(i64::from);
                row_events(&state, *table, row, uid, &before)
                    .map_err(|e| Error::invalid(format!("pop-db: {file_name} line {line}: {e}")))?
            };
            if !events.is_empty() {
                projections::append_and_apply(&mut tx, &meta, &events)?;
                later.extend(disabled_later(*table, row));
            }
        }
    }
    if !later.is_empty() {
        projections::append_and_apply(&mut tx, &meta, &later)?;
    }
    tx.commit()?;
    Ok(Output::none())
}
