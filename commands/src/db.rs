//! Opening the ledger for commands.

use fluxacct_core::Seq;
use ledger::{Ledger, OpenMode};
use projections::schema;

use crate::context::Context;
use crate::error::{Error, Result};

/// Opens the ledger read-write and makes sure the projection tables are
/// present and current (rebuilding them from the log in one transaction
/// when they are missing or older than the code).
pub fn open_write(ctx: &Context) -> Result<Ledger> {
    check_owner(ctx)?;
    let mut ledger = Ledger::open(&ctx.db_path, OpenMode::ReadWrite)?;
    ensure_projections(&mut ledger)?;
    Ok(ledger)
}

/// Refuses a write by anyone but the ledger file's owner (or root), in one
/// line and before SQLite is asked: other local users may read a ledger
/// whose mode allows it, never change it. A missing file passes (the open
/// reports it).
pub fn check_owner(ctx: &Context) -> Result<()> {
    match other_owner(ctx) {
        None => Ok(()),
        Some(name) => Err(Error::invalid(format!("only the ledger's owner ({name}) can change it"))),
    }
}

/// The name of the ledger file's owner when the caller may not write it
/// (neither the owner nor root).
fn other_owner(ctx: &Context) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&ctx.db_path).ok()?.uid();
    if ctx.actor.uid == 0 || ctx.actor.uid == owner {
        return None;
    }
    Some(ctx.users.name_of(owner).unwrap_or_else(|| format!("uid {owner}")))
}

/// Runs a write command: opens the ledger with [`open_write`], then runs
/// `decide` and appends and applies its events in one `BEGIN IMMEDIATE`
/// transaction ([`projections::Writer::run`]). When `decide` fails nothing
/// is written. Returns the ledger, for commands that report on the result.
pub fn write<F>(ctx: &Context, decide: F) -> Result<Ledger>
where
    F: FnOnce(&projections::model::State<'_>) -> Result<Vec<fluxacct_core::Event>>,
{
    let mut ledger = open_write(ctx)?;
    write_on(ctx, &mut ledger, decide)?;
    Ok(ledger)
}

/// [`write`] on a ledger the caller has already opened with [`open_write`]
/// (for a command that checks something on it first).
pub fn write_on<F>(ctx: &Context, ledger: &mut Ledger, decide: F) -> Result<()>
where
    F: FnOnce(&projections::model::State<'_>) -> Result<Vec<fluxacct_core::Event>>,
{
    wait_for_write_lock(ctx, ledger)?;
    projections::Writer::run(ledger, &ctx.meta(), decide)?;
    Ok(())
}

/// How long a writer waits for another writer's lock in all.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until the ledger's write lock is free. After a second it says
/// once, through [`crate::Progress::notice`], what it is waiting for (and
/// who holds the lock, when the system can tell); after [`LOCK_WAIT`] it
/// gives up with one line naming the holder.
fn wait_for_write_lock(ctx: &Context, ledger: &Ledger) -> Result<()> {
    let conn = ledger.conn();
    let held = |e: &rusqlite::Error| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
    let by = || ctx.processes.lock_holder(&ctx.db_path).map(|w| format!(", held by {w}")).unwrap_or_default();
    conn.busy_timeout(std::time::Duration::from_secs(1))?;
    let first = conn.execute_batch("BEGIN IMMEDIATE");
    let outcome = match first {
        Err(e) if held(&e) => {
            ctx.progress.notice(&format!("flux-account: waiting for the ledger's write lock{}", by()));
            conn.busy_timeout(LOCK_WAIT - std::time::Duration::from_secs(1))?;
            match conn.execute_batch("BEGIN IMMEDIATE") {
                Err(e) if held(&e) => Err(Error::invalid(format!(
                    "gave up after {} s waiting for the ledger's write lock{}",
                    LOCK_WAIT.as_secs(),
                    by()
                ))),
                other => other.map_err(Error::from),
            }
        }
        other => other.map_err(Error::from),
    };
    conn.busy_timeout(LOCK_WAIT)?;
    outcome?;
    conn.execute_batch("ROLLBACK")?;
    Ok(())
}

/// A ledger opened for a read-only command: the live projections, or (with
/// `--as-of`) the projections as they stood at a past seq. Read commands
/// take their connection from [`ReadDb::conn`].
#[derive(Debug)]
pub enum ReadDb {
    /// The live ledger and its projections.
    Live(Ledger),
    /// The state as of a past seq (replayed into memory), with the ledger it
    /// came from.
    AsOf {
        /// The ledger.
        ledger: Ledger,
        /// The replayed state.
        view: replay::AsOf,
    },
}

impl ReadDb {
    /// The connection read commands query: projection tables (and, for
    /// as-of views of file ledgers, an `events` view cut at the as-of seq).
    pub fn conn(&self) -> &rusqlite::Connection {
        match self {
            ReadDb::Live(l) => l.conn(),
            ReadDb::AsOf { view, .. } => view.conn(),
        }
    }

    /// The underlying ledger (the whole log, whatever the as-of point).
    pub fn ledger(&self) -> &Ledger {
        match self {
            ReadDb::Live(l) | ReadDb::AsOf { ledger: l, .. } => l,
        }
    }
}

/// Maps a replay error onto the commands' error.
pub fn replay_err(e: replay::Error) -> Error {
    match e {
        replay::Error::Invalid(m) => Error::Invalid(m),
        replay::Error::Ledger(e) => Error::Ledger(e),
        replay::Error::Projection(e) => Error::Projection(e),
        replay::Error::Sqlite(e) => Error::Sqlite(e),
    }
}

/// Plain integers from this value on are epoch seconds (a time after
/// 2001-09-09), below it seqs.
pub const EPOCH_FROM: u64 = 1_000_000_000;

/// Resolves a point of history to a seq. `seq:N` is always a seq and
/// `@EPOCH` always epoch seconds; a plain integer is a seq below
/// [`EPOCH_FROM`] and epoch seconds from it on; anything else is a time
/// (epoch seconds with a fraction such as `1741284758.0`, a date or an
/// offset such as `-1h`: see [`crate::time::parse_time_in`], read in
/// `zone`). A time maps to the last event recorded at or before it.
/// Refuses seqs beyond the head and times before the first event.
pub fn resolve_point(ledger: &Ledger, point: &str, now_us: i64, zone: crate::time::Zone) -> Result<Seq> {
    let p = point.trim();
    let head = ledger.head()?.map(|(s, _)| s).unwrap_or(Seq(0));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (seq_text, time_text) = if let Some(n) = p.strip_prefix("seq:") {
        if !digits(n) {
            return Err(Error::invalid(format!("invalid seq '{n}' in '{p}'")));
        }
        (Some(n), None)
    } else if let Some(t) = p.strip_prefix('@') {
        (None, Some(t))
    } else if digits(p) && p.parse::<u64>().is_ok_and(|n| n < EPOCH_FROM) {
        (Some(p), None)
    } else {
        (None, Some(p))
    };
    if let Some(p) = seq_text {
        let seq: u64 = p.parse().map_err(|_| Error::invalid(format!("invalid seq '{p}'")))?;
        if seq > head.0 {
            return Err(Error::invalid(format!("seq {seq} is beyond the ledger's head (seq {head})")));
        }
        return Ok(Seq(seq));
    }
    let t = crate::time::parse_time_in(time_text.unwrap_or(p), now_us, zone)?;
    match ledger.seq_at_time(t)? {
        Some(s) => Ok(s),
        None => Err(Error::invalid(format!("no event was recorded at or before {}", crate::time::table_time(t, zone)))),
    }
}

/// The seq `--as-of` names, if it was given.
pub fn as_of_seq(ctx: &Context, ledger: &Ledger) -> Result<Option<Seq>> {
    match &ctx.as_of {
        None => Ok(None),
        Some(p) => resolve_point(ledger, p, ctx.clock.now_us(), ctx.zone).map(Some),
    }
}

/// Opens the ledger for reading. Falls back to a read-write open when the
/// projections need rebuilding. With `--as-of`, returns the state as it
/// stood at that point (replayed from the nearest projection checkpoint).
pub fn open_read(ctx: &Context) -> Result<ReadDb> {
    let ledger = open_read_live(ctx)?;
    match as_of_seq(ctx, &ledger)? {
        None => Ok(ReadDb::Live(ledger)),
        Some(seq) => {
            let view = replay::state_at(&ledger, seq).map_err(replay_err)?;
            report_skipped(ctx, view.skipped());
            Ok(ReadDb::AsOf { ledger, view })
        }
    }
}

/// Reports, one line each on stderr, the events a replay skipped (an
/// unreadable payload) or carried (a recorded digest it did not reproduce).
pub fn report_skipped(ctx: &Context, skipped: &[projections::apply::Skipped]) {
    for s in skipped {
        ctx.progress.notice(&format!("flux-account: warning: replay: {s}"));
    }
}

/// Runs `query`, a reader of the `jobs` view given the seqs to leave out
/// (a JSON list, for `seq NOT IN (SELECT value FROM json_each(?))`, placed
/// first in its WHERE), with none; when a job record's payload is not
/// valid JSON (SQLite's `malformed JSON` fails the whole query), names each
/// such record by its seq on stderr and runs `query` again without them.
pub fn without_unreadable_jobs<T>(
    ctx: &Context,
    conn: &rusqlite::Connection,
    query: impl Fn(Option<String>) -> Result<T>,
) -> Result<T> {
    match query(None) {
        Err(Error::Sqlite(e)) if e.to_string().contains("malformed JSON") => {
            let bad = projections::schema::unreadable_job_records(conn)?;
            if bad.is_empty() {
                return Err(Error::Sqlite(e));
            }
            for seq in &bad {
                ctx.progress.notice(&format!(
                    "flux-account: warning: the job record at seq {seq} is unreadable (malformed JSON) and is \
                     left out; see `flux account verify` and `repair`"
                ));
            }
            query(Some(serde_json::Value::from(bad).to_string()))
        }
        other => other,
    }
}

/// Opens the live ledger for reading, ignoring `--as-of`.
pub fn open_read_live(ctx: &Context) -> Result<Ledger> {
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    match schema::stored_version(ledger.conn())? {
        Some(v) if v == schema::PROJECTION_SCHEMA_VERSION => Ok(ledger),
        Some(v) if v > schema::PROJECTION_SCHEMA_VERSION => Err(too_new(v)),
        _ => {
            drop(ledger);
            if let Some(name) = other_owner(ctx) {
                return Err(Error::invalid(format!(
                    "the ledger's projections need rebuilding, which only its owner ({name}) can do: \
                     run `flux account rebuild` as {name}"
                )));
            }
            open_write(ctx)
        }
    }
}

/// Rebuilds the projections from the log if they are missing or stale,
/// with the same rebuild as `flux-account rebuild` (one transaction).
pub fn ensure_projections(ledger: &mut Ledger) -> Result<()> {
    match schema::stored_version(ledger.conn())? {
        Some(v) if v == schema::PROJECTION_SCHEMA_VERSION => Ok(()),
        Some(v) if v > schema::PROJECTION_SCHEMA_VERSION => Err(too_new(v)),
        _ => replay::rebuild_live(ledger, replay::history::DEFAULT_CHECKPOINT_EVERY, &mut |_| {})
            .map(|_| ())
            .map_err(replay_err),
    }
}

/// The error for projections written by a newer fluxacct.
fn too_new(found: i64) -> Error {
    Error::Projection(projections::Error::TooNew { found, supported: schema::PROJECTION_SCHEMA_VERSION })
}
