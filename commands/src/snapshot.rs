//! The plugin snapshot file: where it lives beside a ledger, and writing
//! it from the projections (`priority-update`, `rebuild`, `demo`).

use std::path::PathBuf;

use fluxacct_core::snapshot::LedgerHead;

use crate::context::Context;
use crate::error::{Error, Result};

/// The default snapshot path for a ledger path.
pub fn default_snapshot_path(db: &std::path::Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".snapshot");
    PathBuf::from(s)
}

/// Builds and writes the snapshot; returns its path and head.
pub fn write_snapshot(ctx: &Context, path: &std::path::Path) -> Result<LedgerHead> {
    // What a killed earlier run left behind goes first.
    crate::litter::sweep_temp_files(path);
    let db = crate::db::open_read(ctx)?;
    let conn = db.conn();
    let head = match db.ledger().head()? {
        Some((seq, hash)) => LedgerHead { seq, hash },
        None => return Err(Error::invalid("the ledger is empty; run create-db first")),
    };
    let snap = projections::snapshot_build::build_snapshot(conn, head)?;
    snap.write_atomic(path).map_err(|e| Error::io_msg(format!("cannot write snapshot {}: {e}", path.display())))?;
    Ok(head)
}

/// Rewrites the plugin snapshot from the rebuilt projections when the
/// default snapshot file (`<db>.snapshot`) exists. Returns a report line.
pub fn rewrite_if_present(ctx: &Context) -> Result<String> {
    let path = default_snapshot_path(&ctx.db_path);
    if !path.exists() {
        return Ok(String::new());
    }
    let head = write_snapshot(ctx, &path)?;
    Ok(format!("rewrote the plugin snapshot {} (seq {})\n", path.display(), head.seq))
}
