//! `fetch-job-records`: record finished jobs as `JobRecorded` events, and
//! records that break an ingest rule as `JobRejected` events.

use std::path::PathBuf;

use fluxacct_ingest::source::{archive, live, read_json};
use fluxacct_ingest::write::{self, pipeline, Options, Summary};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Record finished jobs in the ledger, one `JobRecorded` event per job.
///
/// Sources: `--from-file` (the document `flux jobs -a --json` prints, or
/// JSON lines of job objects; `-` reads stdin), `--copy` (an old
/// flux-core job-archive database), or, by default, the running Flux
/// instance (inactive jobs that ended since the newest job already
/// recorded). Input is read, checked and committed in batches, so memory
/// does not grow with the input.
///
/// Every record is checked (docs/ingest.md). A record that breaks a rule
/// is recorded as a `JobRejected` event instead (see `view-job-records
/// --rejected`) and does not stop the others. Jobs already recorded with
/// the same content are skipped, so fetching twice changes nothing.
///
/// Prints one summary line. Exit status: 0 when no record was rejected, 3
/// when some were (the others are recorded), 1 when the input could not be
/// read or split into records (the message says what was committed).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Read job records from FILE (`-` for stdin).
    #[arg(long = "from-file", value_name = "FILE|-", conflicts_with = "copy")]
    pub from_file: Option<String>,
    /// Copy job records from an old flux-core job-archive database.
    #[arg(short = 'c', long = "copy", value_name = "ARCHIVE_DB")]
    pub copy: Option<PathBuf>,
    /// Records per batch (one transaction each).
    #[arg(long = "batch-size", default_value_t = 20_000, value_name = "N")]
    pub batch_size: usize,
    /// Log flux-accounting's INFO lines on stderr (`beginning INSERT of
    /// newly found jobs …`, `… complete`) and list every rejected record
    /// there too.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Live source: jobs listed per job-list window (tests use small ones).
    #[arg(long = "live-window", hide = true, default_value_t = live::WINDOW, value_name = "N")]
    pub live_window: usize,
}

/// flux-accounting's INFO line as the insert starts (`-v`).
pub const BEGINNING: &str = "beginning INSERT of newly found jobs into flux-accounting DB";
/// flux-accounting's INFO line when it is done (`-v`).
pub const COMPLETE: &str = "INSERT of newly found jobs into flux-accounting DB complete";

/// Exit status when some records were rejected.
pub const EXIT_REJECTED: i32 = 3;

fn open_input(path: &str) -> Result<Box<dyn std::io::BufRead + Send>> {
    const BUF: usize = 1 << 20;
    if path == "-" {
        return Ok(Box::new(std::io::BufReader::with_capacity(BUF, std::io::stdin())));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io_msg(format!("cannot read {path}: {e}")))?;
    Ok(Box::new(std::io::BufReader::with_capacity(BUF, f)))
}

/// Runs `fetch-job-records`.
pub fn cmd_fetch_job_records(ctx: &Context, args: &Args) -> Result<Output> {
    let mut ledger = crate::db::open_write(ctx)?;
    // The log's index of rejections (new ledgers have it already).
    ledger.conn().execute_batch(projections::schema::EVENT_INDEXES_DDL)?;
    let now = ctx.clock.now_secs();
    let batch = args.batch_size.max(1);
    let progress = |n: u64| ctx.progress.inc(n);
    let opts = Options { meta: ctx.meta(), verbose: args.verbose, progress: &progress };
    let beginning = args.verbose.then(|| ctx.info(BEGINNING));
    let summary: Result<Summary> = if let Some(path) = &args.from_file {
        let input = open_input(path)?;
        ctx.progress.start("recording jobs", None);
        pipeline(&opts, &mut ledger, move |sink| read_json(input, batch, now, sink)).map_err(Error::from)
    } else if let Some(path) = &args.copy {
        let conn = archive::open(path)?;
        let total: i64 = conn.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))?;
        ctx.progress.start("recording jobs", Some(total as u64));
        pipeline(&opts, &mut ledger, move |sink| archive::read_archive(&conn, batch, now, sink)).map_err(Error::from)
    } else {
        let since = write::newest_t_inactive(&State::new(ledger.conn()))?;
        ctx.progress.start("recording jobs", None);
        let mut never_ran = 0;
        let s = live::fetch(&ctx.flux_env, since, batch, args.live_window, now, &mut never_ran, |batches| {
            write::ingest(&opts, &mut ledger, batches, &mut drop)
        });
        s.map(|s| Summary { never_ran, ..s }).map_err(Error::from)
    };
    ctx.progress.finish();
    let summary = summary?;
    let mut out = Output::line(summary.line());
    out.notes.extend(beginning);
    out.notes.extend(summary.all_reasons.iter().cloned());
    if args.verbose {
        out.notes.push(ctx.info(COMPLETE));
    }
    if summary.rejected > 0 {
        out.exit_code = EXIT_REJECTED;
    }
    Ok(out)
}
