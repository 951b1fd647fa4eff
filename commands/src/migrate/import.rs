//! Writing an imported site into a new ledger: the site's events, then
//! its job records streamed from a reading thread to the appending one,
//! then its usage, in one transaction of a private file renamed into place.

use std::path::{Path, PathBuf};

use fluxacct_core::events::*;
use ledger::Ledger;
use projections::apply::Applier;
use projections::ctx::ApplyCtx;

use super::events::{site_events, usage_event};
use super::jobs::{for_each_job, JobBatch, JOB_BATCH};
use super::site::read_site;
use super::source::{self as fa, SourceDb};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

fn refuse_existing(target: &Path) -> Result<()> {
    if target.exists() || target.symlink_metadata().is_ok() {
        return Err(Error::invalid(format!(
            "import-db: {} already exists; import-db writes a new ledger and never overwrites a file",
            target.display()
        )));
    }
    Ok(())
}

/// An exclusive `flock` on the temporary file of a running import (its
/// own open file description, so SQLite's POSIX locks are not involved).
fn hold(file: &std::fs::File) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let f = file.try_clone()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Error::io_msg(format!("import-db: cannot lock its temporary file: {e}")))
}

/// Removes the temporary files (`.<name>.import-*.tmp`, with their
/// `-wal`, `-shm` and `-journal`) of imports that were killed: those no
/// running import holds locked. Best effort: what cannot be removed stays.
fn remove_stale_imports(dir: &Path, name: &str) {
    let prefix = format!(".{name}.import-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    for n in &names {
        let Some(main) = ["-wal", "-shm", "-journal", ""]
            .iter()
            .find_map(|side| n.strip_suffix(&format!(".tmp{side}")).map(|stem| format!("{stem}.tmp")))
        else {
            continue;
        };
        let main_path = dir.join(&main);
        let stale = match std::fs::File::open(&main_path) {
            // Locked by a running import: leave it.
            Ok(f) => nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok(),
            // Its import has ended (renamed or removed): a leftover side file.
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if stale {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
}

/// Imports the flux-accounting database at `source` into a new ledger at
/// `ctx.db_path` (what `import-db` does): written into a temporary file
/// beside it and renamed there at the end, never over an existing file.
pub fn import(ctx: &Context, source: &Path) -> Result<Output> {
    import_into(ctx, source, &ctx.db_path, Replace::No)
}

/// Whether [`import_into`] may put the new ledger in place of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Never: an existing target is refused before anything is read.
    No,
    /// Yes, atomically (a rename) once the ledger is complete: `update-db`
    /// replaces the flux-accounting database it has backed up.
    Yes,
}

/// Imports the flux-accounting database at `source` into a new ledger at
/// `target`, written beside it into a temporary file and renamed there at
/// the end; over an existing file only with [`Replace::Yes`].
pub fn import_into(ctx: &Context, source: &Path, target: &Path, replace: Replace) -> Result<Output> {
    let target = target.to_path_buf();
    if replace == Replace::No {
        refuse_existing(&target)?;
    }
    let mut src = SourceDb::open(source)?;
    let (blake3, size) = fa::file_digest(source)?;
    let meta = ctx.meta();
    let site = read_site(&src, meta.recorded_at_us as f64 / 1e6)?;
    let admin = site_events(&site);
    let njobs = fa::count(src.conn(), "jobs")?;

    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io_msg(format!("{}: {e}", dir.display())))?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "ledger".into());
    // What killed imports left beside the target (no import holds them).
    remove_stale_imports(&dir, &name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.import-"))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::io_msg(format!("{}: {e}", dir.display())))?;
    // Held until the file is renamed or removed: the mark of a running
    // import, which the next import's sweep leaves alone.
    let _held = hold(tmp.as_file())?;
    let tmp = tmp.into_temp_path();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    }
    let result = (|| -> Result<()> {
        let mut ledger = Ledger::create(&tmp)?;
        // A private file until the rename: no journal while it is built (a
        // failed import discards the file), WAL again before it is closed.
        ledger.conn().pragma_update(None, "journal_mode", "OFF")?;
        ledger.conn().pragma_update(None, "synchronous", "OFF")?;
        let mut tx = ledger.transaction()?;
        projections::schema::create(tx.conn())?;
        let mut applier = Applier::new();
        let push = |tx: &mut ledger::Tx<'_>, applier: &mut Applier, ev: &Event| -> Result<()> {
            let payload = ev.encode()?;
            let a = tx.append(&meta, ev.kind(), ev.version(), &payload)?;
            applier.apply(tx.conn(), &ApplyCtx { seq: a.seq.0, recorded_at_us: a.recorded_at_us }, ev)?;
            Ok(())
        };
        push(&mut tx, &mut applier, &Event::DbCreated(site.genesis.clone()))?;
        let imported = SiteImported {
            source: std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf()).display().to_string(),
            blake3,
            size,
            wal_blake3: src.wal.as_ref().map(|w| w.0.clone()),
            wal_size: src.wal.as_ref().map(|w| w.1),
            schema_version: site.schema_version,
            fluxacct_version: env!("CARGO_PKG_VERSION").to_string(),
            defaulted: site.defaulted.clone(),
            events: admin.len() as u64 + njobs + 1,
        };
        push(&mut tx, &mut applier, &Event::SiteImported(imported))?;
        for ev in &admin {
            push(&mut tx, &mut applier, ev)?;
        }
        ctx.progress.start("importing job records", Some(njobs));
        // The job rows are read, converted and encoded on a second thread
        // while this one appends them (hash chain, log indexes, projections).
        let mut seen = 0u64;
        let src_conn = src.conn_mut();
        // `job_times` and `job_ids` rows, written in key order after the
        // bulk append (nothing the import applies reads them).
        let mut job_index = projections::schema::JobIndexRows {
            times: Vec::with_capacity(njobs as usize),
            ids: Vec::with_capacity(njobs as usize),
        };
        std::thread::scope(|scope| -> Result<()> {
            let (send, recv) = std::sync::mpsc::sync_channel::<Result<JobBatch>>(16);
            scope.spawn(move || {
                let mut batch = JobBatch::default();
                let read = for_each_job(src_conn, |job| {
                    batch.push(&job)?;
                    if batch.len() == JOB_BATCH {
                        // The receiver is gone only when the import failed.
                        send.send(Ok(std::mem::take(&mut batch))).map_err(|_| Error::invalid("import-db: stopped"))?;
                    }
                    Ok(())
                });
                let _ = send.send(read.map(|_| batch));
            });
            let mut banks = projections::usage::BankNames::default();
            let job_index = &mut job_index;
            for msg in recv {
                let batch = msg?;
                for i in 0..batch.len() {
                    let a =
                        tx.append(&meta, "JobRecorded", projections::usage::JOB_RECORDED_VERSION, batch.payload(i))?;
                    job_index.times.push((projections::schema::t_us(batch.fields[i].2), a.seq.0 as i64));
                    job_index.ids.push((projections::schema::id_key(batch.ids[i]), a.seq.0 as i64));
                    let ctx_a = ApplyCtx { seq: a.seq.0, recorded_at_us: a.recorded_at_us };
                    applier.apply_job(tx.conn(), &ctx_a, batch.pending(i, a.seq.0, &mut banks))?;
                    seen += 1;
                    if seen.is_multiple_of(10_000) {
                        ctx.progress.inc(10_000);
                    }
                }
            }
            Ok(())
        })?;
        ctx.progress.finish();
        if seen != njobs {
            return Err(Error::invalid(format!(
                "import-db: the jobs table changed while it was read ({njobs} then {seen} rows)"
            )));
        }
        push(&mut tx, &mut applier, &usage_event(&site))?;
        applier.sync(tx.conn())?;
        job_index.times.sort_unstable();
        job_index.ids.sort_unstable();
        projections::schema::write_job_index(tx.conn(), &job_index)?;
        tx.commit()?;
        ledger.conn().pragma_update(None, "synchronous", "NORMAL")?;
        ledger.conn().pragma_update(None, "journal_mode", "WAL")?;
        drop(ledger);
        Ok(())
    })();
    // The ledger's writers keep `-wal`/`-shm` beside the file (so that other
    // users can read it); the private file's are empty after a clean close
    // and are not part of the ledger: remove them, on success and failure.
    for side in ["-wal", "-shm"] {
        let mut p = std::ffi::OsString::from(tmp.as_os_str());
        p.push(side);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    result?;
    let persisted = match replace {
        Replace::No => tmp.persist_noclobber(&target),
        Replace::Yes => tmp.persist(&target),
    };
    persisted.map_err(|e| {
        Error::io_msg(format!("import-db: cannot move the new ledger to {}: {}", target.display(), e.error))
    })?;
    let mut out = Output::line(format!(
        "imported {} banks, {} associations, {} queues, {} projects and {njobs} job records from {} \
         (flux-accounting schema {})",
        site.banks.len(),
        site.associations.len(),
        site.queues.len(),
        site.projects.len() + 1,
        source.display(),
        site.schema_version
    ));
    out.notes = site.defaulted.iter().map(|d| format!("import-db: defaulted: {d}")).collect();
    Ok(out)
}
