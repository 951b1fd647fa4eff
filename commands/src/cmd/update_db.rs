//! `update-db`: bring a database up to date, under flux-accounting's name
//! for it (`flux account-update-db`).
//!
//! Given a flux-accounting database, it is imported into a ledger (what
//! `import-db` does): in its place by default, the database kept as
//! `PATH.backup` (flux-accounting's backup name), or into a new ledger at
//! `--new-db`. Given a fluxacct ledger, any pending schema upgrade (of the
//! ledger's tables and of its projections) is applied now rather than on
//! the next write. docs/migration.md describes both.

use std::path::{Path, PathBuf};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::migrate::import::{import_into, Replace};

/// Bring the database at `-p` up to date. A flux-accounting database (any
/// released schema) becomes a ledger: in its place, the original kept as
/// `PATH.backup`, or, with `--new-db NEW`, a new ledger at NEW with the
/// original left as it is. A fluxacct ledger gets any pending schema
/// upgrade now (otherwise done on its next write). Prints what it did.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Write the ledger to NEW (a new file) instead of in place of the
    /// flux-accounting database, which is then left untouched.
    #[arg(short = 'n', long = "new-db", value_name = "NEW")]
    pub new_db: Option<PathBuf>,
    /// Log flux-accounting's INFO lines on stderr.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// What kind of file is at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fluxacct ledger (its SQLite `application_id`).
    Ledger,
    /// Anything else SQLite opens: taken for a flux-accounting database
    /// (the import says what is missing if it is not one).
    Other,
}

/// Which kind of database `path` holds.
pub fn kind_of(path: &Path) -> Result<Kind> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(Error::invalid(format!("update-db: {}: database file does not exist", path.display())));
    }
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    Ok(if app_id == ledger::APPLICATION_ID { Kind::Ledger } else { Kind::Other })
}

/// `PATH.backup`, flux-accounting's name for the copy it keeps.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".backup");
    PathBuf::from(p)
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Runs `update-db`.
pub fn cmd_update_db(ctx: &Context, args: &Args) -> Result<Output> {
    let path = ctx.db_path.clone();
    let mut info = vec![ctx.info(&format!("starting database update for {}", path.display()))];
    let mut out = match kind_of(&path)? {
        Kind::Ledger => upgrade_ledger(ctx, args, &path, &mut info)?,
        Kind::Other => import_site(ctx, args, &path, &mut info)?,
    };
    info.push(ctx.info("database update complete"));
    if args.verbose > 0 {
        info.append(&mut out.notes);
        out.notes = info;
    }
    Ok(out)
}

fn upgrade_ledger(ctx: &Context, args: &Args, path: &Path, info: &mut Vec<String>) -> Result<Output> {
    if let Some(new) = &args.new_db {
        return Err(Error::invalid(format!(
            "update-db: {} is already a fluxacct ledger; --new-db ({}) is for bringing a flux-accounting \
             database into a new ledger",
            path.display(),
            new.display()
        )));
    }
    let versions = |conn: &rusqlite::Connection| -> Result<(i64, Option<i64>)> {
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok((v, projections::schema::stored_version(conn)?))
    };
    let (ledger_before, proj_before) = {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        versions(&conn)?
    };
    let ledger = crate::db::open_write(ctx)?;
    let (ledger_after, proj_after) = versions(ledger.conn())?;
    let mut done = Vec::new();
    if ledger_after != ledger_before {
        done.push(format!("ledger schema {ledger_before} -> {ledger_after}"));
        info.push(ctx.info(&format!("updated database schema version to {ledger_after}")));
    }
    if proj_after != proj_before {
        let shown = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        done.push(format!("projections rebuilt (schema {} -> {})", shown(proj_before), shown(proj_after)));
        info.push(ctx.info("replaced the projection tables with the updated schema"));
    }
    if done.is_empty() {
        info.push(ctx.info("no schema changes needed"));
        return Ok(Output::line(format!(
            "{}: the ledger is up to date (ledger schema {ledger_after}, projection schema {})",
            path.display(),
            proj_after.unwrap_or_default()
        )));
    }
    Ok(Output::line(format!("{}: upgraded: {}", path.display(), done.join(", "))))
}

fn import_site(ctx: &Context, args: &Args, path: &Path, info: &mut Vec<String>) -> Result<Output> {
    if let Some(new) = &args.new_db {
        let out = import_into(ctx, path, new, Replace::No)?;
        info.push(ctx.info(&format!("updated database schema version to {}", ledger::SCHEMA_VERSION)));
        return Ok(out);
    }
    // In place: the ledger replaces the database, kept as PATH.backup.
    let wal = side_file(path, "-wal");
    let journal = side_file(path, "-journal");
    for side in [&wal, &journal] {
        if std::fs::metadata(side).is_ok_and(|m| m.len() > 0) {
            return Err(Error::invalid(format!(
                "update-db: {} is in use ({} exists): stop flux-accounting's service first, or write the \
                 ledger elsewhere with --new-db NEW",
                path.display(),
                side.display()
            )));
        }
    }
    let backup = backup_path(path);
    if std::fs::symlink_metadata(&backup).is_ok() {
        return Err(Error::invalid(format!(
            "update-db: {} already exists: move it away (update-db keeps the flux-accounting database \
             there), or write the ledger elsewhere with --new-db NEW",
            backup.display()
        )));
    }
    std::fs::copy(path, &backup).map_err(|e| {
        Error::io_msg(format!("update-db: cannot back up {} to {}: {e}", path.display(), backup.display()))
    })?;
    info.push(ctx.info(&format!("created backup at {}", backup.display())));
    match import_into(ctx, &backup, path, Replace::Yes) {
        Ok(mut out) => {
            info.push(ctx.info(&format!("updated database schema version to {}", ledger::SCHEMA_VERSION)));
            out.stdout.push_str(&format!("update-db: the flux-accounting database is kept at {}\n", backup.display()));
            Ok(out)
        }
        Err(e) => {
            // Nothing changed: the database is still in place.
            let _ = std::fs::remove_file(&backup);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_path_then_its_backup_is_flux_accountings_name() {
        assert_eq!(
            backup_path(Path::new("/var/lib/flux/FluxAccounting.db")),
            Path::new("/var/lib/flux/FluxAccounting.db.backup")
        );
    }

    #[test]
    fn given_no_file_when_updating_then_refused_naming_it() {
        let e = kind_of(Path::new("/nonexistent/fa.db")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/fa.db: database file does not exist"), "{e}");
    }
}
