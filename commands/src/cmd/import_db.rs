//! `import-db`: move a flux-accounting site into a new ledger.
//!
//! The source is read without being changed ([`crate::migrate`]);
//! the ledger is written into a temporary file beside `-p` and renamed
//! there at the end (never over an existing file). docs/migration.md
//! describes what is carried over and how usage periods are handed over.

use std::path::PathBuf;

use crate::context::{Context, Output};
use crate::error::Result;

/// Import a flux-accounting database (any released schema, v0.10 to
/// v0.60) into a new ledger at `-p`: config, priority factors, projects,
/// queues, banks, associations, job records, and the usage and fair-share
/// values of every association. The source is only read. The import is
/// recorded as a `SiteImported` event (source path, blake3, size, schema
/// version) that is the cause of every event after it. An existing file at
/// `-p` is never overwritten.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The flux-accounting database to import.
    #[arg(value_name = "FLUX_ACCOUNTING_DB")]
    pub source: PathBuf,
}

/// Runs `import-db`.
pub fn cmd_import_db(ctx: &Context, args: &Args) -> Result<Output> {
    crate::migrate::import::import(ctx, &args.source)
}
