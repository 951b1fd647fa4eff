//! Opening the ledger for commands.

use ledger::{Ledger, OpenMode};
use projections::schema;

use crate::context::Context;
use crate::error::{Error, Result};

/// Opens the ledger read-write and makes sure the projection tables are
/// present and current (rebuilding them from the log in one transaction
/// when they are missing or older than the code).
pub fn open_write(ctx: &Context) -> Result<Ledger> {
    let mut ledger = Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?;
    ensure_projections(&mut ledger)?;
    Ok(ledger)
}

/// Opens the ledger for reading. Falls back to a read-write open when the
/// projections need rebuilding.
pub fn open_read(ctx: &Context) -> Result<Ledger> {
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    match schema::stored_version(ledger.conn())? {
        Some(v) if v == schema::PROJECTION_SCHEMA_VERSION => Ok(ledger),
        Some(v) if v > schema::PROJECTION_SCHEMA_VERSION => Err(Error::Projection(projections::Error::TooNew {
            found: v,
            supported: schema::PROJECTION_SCHEMA_VERSION,
        })),
        _ => {
            drop(ledger);
            open_write(ctx)
        }
    }
}

/// Rebuilds the projections from the log if they are missing or stale.
pub fn ensure_projections(ledger: &mut Ledger) -> Result<()> {
    let current = schema::stored_version(ledger.conn())?;
    if current == Some(schema::PROJECTION_SCHEMA_VERSION) {
        return Ok(());
    }
    if let Some(v) = current {
        if v > schema::PROJECTION_SCHEMA_VERSION {
            return Err(Error::Projection(projections::Error::TooNew {
                found: v,
                supported: schema::PROJECTION_SCHEMA_VERSION,
            }));
        }
    }
    ledger.conn().execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<()> {
        schema::drop_all(ledger.conn())?;
        projections::rebuild_into(ledger, ledger.conn(), None)?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            ledger.conn().execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = ledger.conn().execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
