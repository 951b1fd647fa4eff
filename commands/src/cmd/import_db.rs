//! `import-db`: move a flux-accounting site into a new ledger.
//!
//! The source is read without being changed ([`crate::migrate::source`]);
//! the ledger is written into a temporary file beside `-p` and renamed
//! there at the end (never over an existing file). docs/migration.md
//! describes what is carried over and how usage periods are handed over.

use std::path::{Path, PathBuf};

use ledger::Ledger;
use projections::apply::{Applier, ApplyCtx};
use projections::events::*;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::migrate::events::{site_events, usage_event};
use crate::migrate::jobs::{for_each_job, JobBatch, JOB_BATCH};
use crate::migrate::site::read_site;
use crate::migrate::source::{self as fa, SourceDb};

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

fn refuse_existing(target: &Path) -> Result<()> {
    if target.exists() || target.symlink_metadata().is_ok() {
        return Err(Error::invalid(format!(
            "import-db: {} already exists; import-db writes a new ledger and never overwrites a file",
            target.display()
        )));
    }
    Ok(())
}

/// Runs `import-db`.
pub fn cmd_import_db(ctx: &Context, args: &Args) -> Result<Output> {
    let target = ctx.db_path.clone();
    refuse_existing(&target)?;
    let mut src = SourceDb::open(&args.source)?;
    let (blake3, size) = fa::file_digest(&args.source)?;
    let meta = ctx.meta();
    let site = read_site(&src, meta.recorded_at as f64 / 1e6)?;
    let admin = site_events(&site);
    let njobs = fa::count(src.conn(), "jobs")?;

    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io_msg(format!("{}: {e}", dir.display())))?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "ledger".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.import-"))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::io_msg(format!("{}: {e}", dir.display())))?
        .into_temp_path();
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
            applier.apply(tx.conn(), &ApplyCtx { seq: a.seq.0, recorded_at: a.recorded_at }, ev)?;
            Ok(())
        };
        push(&mut tx, &mut applier, &Event::DbCreated(site.genesis.clone()))?;
        let imported = SiteImported {
            source: std::fs::canonicalize(&args.source).unwrap_or_else(|_| args.source.clone()).display().to_string(),
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
                    let ctx_a = ApplyCtx { seq: a.seq.0, recorded_at: a.recorded_at };
                    applier.apply_job(&ctx_a, batch.pending(i, a.seq.0, &mut banks));
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
    tmp.persist_noclobber(&target).map_err(|e| {
        Error::io_msg(format!("import-db: cannot move the new ledger to {}: {}", target.display(), e.error))
    })?;
    let mut out = Output::line(format!(
        "imported {} banks, {} associations, {} queues, {} projects and {njobs} job records from {} \
         (flux-accounting schema {})",
        site.banks.len(),
        site.associations.len(),
        site.queues.len(),
        site.projects.len() + 1,
        args.source.display(),
        site.schema_version
    ));
    out.notes = site.defaulted.iter().map(|d| format!("import-db: defaulted: {d}")).collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::events::job_event;

    /// A flux-accounting-like source with the given DDL and rows.
    fn source(sql: &str) -> (tempfile::TempDir, SourceDb) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fa.db");
        rusqlite::Connection::open(&p).unwrap().execute_batch(sql).unwrap();
        let db = SourceDb::open(&p).unwrap();
        (dir, db)
    }

    const V60ISH: &str = "
        PRAGMA user_version = 37;
        CREATE TABLE bank_table (bank_id integer PRIMARY KEY AUTOINCREMENT, bank text NOT NULL, active int DEFAULT 1,
            parent_bank text DEFAULT '', shares int NOT NULL, job_usage real DEFAULT 0.0);
        CREATE TABLE association_table (creation_time bigint NOT NULL, mod_time bigint DEFAULT 0, active int DEFAULT 1,
            username tinytext NOT NULL, userid int DEFAULT 65534, bank tinytext NOT NULL, default_bank tinytext NOT NULL,
            job_usage real DEFAULT 0.0, fairshare real DEFAULT 0.5);
        CREATE TABLE job_usage_factor_table (username tinytext, userid int, bank tinytext, last_job_timestamp real);
        CREATE TABLE job_usage_per_association_table (username tinytext, userid int, bank tinytext, period int, value real);
        CREATE TABLE t_half_life_period_table (cluster tinytext DEFAULT 'cluster', end_half_life_period real);
        CREATE TABLE config_table (key text PRIMARY KEY, value text NOT NULL);
        INSERT INTO config_table VALUES ('priority_decay_half_life', '100'), ('decay_factor', '0.5'), ('extra', 'x');
        INSERT INTO t_half_life_period_table VALUES ('cluster', 1000.0);
        INSERT INTO bank_table(bank, active, parent_bank, shares) VALUES ('leaf', 0, 'mid', 2), ('mid', 1, 'root', 3), ('root', 1, '', 1);
        INSERT INTO association_table VALUES (10, 20, 0, 'u', 1001, 'leaf', 'leaf', 14.0, 0.25);
        INSERT INTO job_usage_factor_table VALUES ('u', 1001, 'leaf', 990.0);
        INSERT INTO job_usage_per_association_table VALUES ('u', 1001, 'leaf', 0, 8.0), ('u', 1001, 'leaf', 1, 4.0),
            ('u', 1001, 'leaf', 2, 2.0), ('u', 1001, 'leaf', 3, 0.0);";

    #[test]
    fn given_a_source_when_read_then_parents_come_first_and_bins_are_undecayed() {
        let (_d, db) = source(V60ISH);
        let site = read_site(&db, 1050.0).unwrap();
        let names: Vec<&str> = site.banks.iter().map(|b| b.added.bank.as_str()).collect();
        assert_eq!(names, ["root", "mid", "leaf"]);
        assert!(!site.banks[2].active);
        let a = &site.associations[0];
        assert_eq!(a.carried.bins, vec![8.0, 8.0, 8.0]);
        assert_eq!((a.carried.creation_time, a.carried.mod_time, a.carried.job_usage), (10, 20, 14.0));
        assert_eq!(a.carried.counted_until, 990.0);
        assert_eq!(a.added.max_running_jobs, 5, "a column the schema lacks takes flux-accounting's default");
        assert_eq!(site.genesis.priority_decay_half_life, 100.0);
        assert!(site.defaulted.iter().any(|d| d.starts_with("association_table: columns not in this schema")));
    }

    #[test]
    fn periods_are_anchored_on_the_sources_end_half_life_period() {
        let (_d, db) = source(V60ISH);
        // After E: the current period is [E, E + H).
        assert_eq!(read_site(&db, 1050.0).unwrap().genesis.t0, 1000.0);
        assert_eq!(read_site(&db, 1000.0).unwrap().as_of, 1000.0);
        // Before E (a source that has not rolled over yet): [E − H, E).
        assert_eq!(read_site(&db, 950.0).unwrap().genesis.t0, 900.0);
    }

    #[test]
    fn when_decided_then_rows_come_in_dependency_order_and_disables_last() {
        let (_d, db) = source(V60ISH);
        let site = read_site(&db, 1050.0).unwrap();
        let kinds: Vec<&str> = site_events(&site).iter().map(Event::kind).collect();
        assert_eq!(
            kinds,
            [
                "ConfigEdited",
                "ConfigEdited",
                "ConfigAdded",
                "BankAdded",
                "BankAdded",
                "BankAdded",
                "AssociationAdded",
                "BankDisabled",
                "AssociationDisabled"
            ]
        );
        let Event::UsageImported(u) = usage_event(&site) else { panic!("not UsageImported") };
        assert_eq!(u.as_of, 1000.0);
        assert_eq!(u.banks.len(), 3);
    }

    #[test]
    fn the_streaming_job_reader_gives_what_job_from_json_gives() {
        let r = r#"{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-3","gpu":"0"}}]}}"#;
        let (_d, db) = source(&format!(
            "{V60ISH};
            CREATE TABLE jobs (id char(16) PRIMARY KEY NOT NULL, userid integer NOT NULL, t_submit real NOT NULL,
                t_run real NOT NULL, t_inactive real NOT NULL, ranks text NOT NULL, R text NOT NULL, jobspec text NOT NULL,
                project text, bank text, requested_duration real DEFAULT 0.0, actual_duration real DEFAULT 0.0);
            INSERT INTO jobs VALUES ('100', 1001, 1.0, 2.0, 10.0, '0-1', '{r}',
                '{{\"attributes\":{{\"system\":{{\"bank\":\"specbank\",\"queue\":\"q\",\"duration\":60}}}}}}', NULL, NULL, NULL, 8.0);
            INSERT INTO jobs VALUES ('200', 1002, 1.5, 0.0, 3.0, '', '', '', 'p', 'b', 30.0, 0.0);
            INSERT INTO jobs VALUES ('ƒ2', 1003, 1.0, 2.0, 5.0, '0', '{r}', '{{\"attributes\":\"odd\"}}', '', '', 1.0, 3.0);"
        ));
        let mut fast = Vec::new();
        let n = for_each_job(db.conn(), |j| {
            fast.push(j);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 3);
        let mut slow = Vec::new();
        fa::for_each_row(db.conn(), "jobs", &["id"], |row| {
            slow.push(job_event(&row)?);
            Ok(())
        })
        .unwrap();
        assert_eq!(fast, slow);
        assert_eq!(
            (fast[0].bank.as_str(), fast[0].queue.as_str(), fast[0].requested_duration),
            ("specbank", "q", 60.0)
        );
        assert_eq!((fast[0].nnodes, fast[0].ncores, fast[0].ngpus), (2, 8, 2));
        assert_eq!(fast[2].id, 1);
    }

    #[test]
    fn damaged_rows_are_named_by_table_and_row() {
        let (_d, db) =
            source(&format!("{V60ISH}; INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('root', '', 1);"));
        assert_eq!(
            read_site(&db, 0.0).unwrap_err().to_string(),
            "import-db: bank_table row 4 (bank=root): duplicate bank"
        );
        let (_d, db) =
            source(&format!("{V60ISH}; INSERT INTO bank_table(bank, parent_bank, shares) VALUES ('r2', '', 1);"));
        assert_eq!(
            read_site(&db, 0.0).unwrap_err().to_string(),
            "import-db: bank_table row 4 (bank=r2): a second root bank (the root is root)"
        );
        let (_d, db) = source(&format!("{V60ISH}; INSERT INTO association_table(creation_time, username, bank, default_bank) VALUES (1, 'v', 'nope', 'nope');"));
        assert_eq!(
            read_site(&db, 0.0).unwrap_err().to_string(),
            "import-db: association_table row 2 (username=v, bank=nope): bank nope not found in bank_table"
        );
    }
}
