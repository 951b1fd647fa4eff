//! The journal follower (`flux account follow`, also run by `flux
//! account-service --follow`): holds the job-manager's journal and records
//! every job that ends, in small batches, with its effects.
//!
//! * A reader thread holds `job-manager.events-journal` (`full: true`) on
//!   its own broker handle and hands each response over a bounded channel.
//! * This thread turns responses into checked records
//!   ([`fluxacct_ingest::source::journal::Tracker`]) and commits them in
//!   batches: while catching up (before the backlog's sentinel) a batch
//!   closes after [`Options::max_batch_age`] or [`Options::max_batch`]
//!   jobs; once caught up, as soon as no response is waiting and the last
//!   commit is [`Options::min_commit_gap`] old (so a lone job is committed
//!   at once, and a stream of jobs shares batches).
//! * A batch is one transaction: the records decided as `fetch-job-records`
//!   decides them (`job_ids` dedup, `JobRejected`), a `UsageUpdated` at the
//!   commit time when a job was recorded (binning only the new jobs; period
//!   rollovers as `update-usage`), a `FairshareUpdated` when usage changed
//!   and the last one is [`Options::fshare_every`] old, and the follower's
//!   bookkeeping ([`ledger::follower`]). When the fair-share digest
//!   changed, the plugin snapshot is written and mf_priority.so told to load
//!   it (as `priority-update` does).
//! * A lost stream (broker restart, lost connection) is reconnected with
//!   backoff, asking for the whole backlog again; what the ledger has is
//!   skipped, so nothing is missed or doubled.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use fluxacct_core::events::{Event, FairshareUpdated, UsageUpdated};
use fluxacct_ingest::source::journal::{self, Fed, Finished, Tracker};
use fluxacct_ingest::write::{decide, earlier_rejections, known_jobs, EarlierRejections};
use ledger::Ledger;
use projections::model::State;
use projections::Encoded;

use crate::context::Context;
use crate::error::{Error, Result};

/// The journal's topic.
pub const TOPIC: &str = "job-manager.events-journal";

/// How the follower runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop once the backlog's sentinel is reached (and committed).
    pub once: bool,
    /// One line per batch on stderr.
    pub verbose: bool,
    /// The plugin snapshot written when factors change.
    pub snapshot: PathBuf,
    /// Tell mf_priority.so to load a new snapshot.
    pub notify_plugin: bool,
    /// Longest a batch stays open while jobs arrive.
    pub max_batch_age: Duration,
    /// Most jobs in one batch.
    pub max_batch: usize,
    /// Least time between two commits once caught up (a batch that
    /// opens sooner waits for it, gathering the jobs that end meanwhile).
    pub min_commit_gap: Duration,
    /// Least time between two fair-share computations.
    pub fshare_every: Duration,
    /// Longest time between two heartbeats while connected.
    pub heartbeat_every: Duration,
    /// Longest wait before reconnecting.
    pub max_backoff: Duration,
}

impl Options {
    /// The defaults for a ledger at `db`.
    pub fn new(db: &std::path::Path) -> Options {
        Options {
            once: false,
            verbose: false,
            snapshot: crate::snapshot::default_snapshot_path(db),
            notify_plugin: true,
            max_batch_age: Duration::from_millis(100),
            max_batch: 1000,
            min_commit_gap: Duration::from_millis(50),
            fshare_every: Duration::from_secs(1),
            heartbeat_every: Duration::from_secs(10),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What a follower did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Jobs recorded.
    pub recorded: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Jobs skipped: already in the ledger.
    pub already: u64,
    /// Batches committed.
    pub batches: u64,
    /// Jobs that ended without running (skipped).
    pub never_ran: u64,
    /// Times the journal was lost and reconnected.
    pub reconnects: u64,
}

impl Totals {
    /// The summary line.
    pub fn line(&self) -> String {
        format!(
            "recorded {}, already recorded {}, rejected {}, {} never ran (skipped), in {} batches",
            self.recorded, self.already, self.rejected, self.never_ran, self.batches
        )
    }
}

/// A message from the reader thread.
enum Msg {
    /// The request was sent.
    Connected,
    /// One response.
    Line(String),
    /// The stream ended: `None` normally (ENODATA), else why.
    End(Option<String>),
}

/// Holds the journal on its own handle until the stream ends or the
/// receiver is gone.
fn reader(env: fluxacct_flux::FluxEnv, tx: mpsc::SyncSender<Msg>) {
    let flux = match fluxacct_flux::Flux::open(&env) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Msg::End(Some(e.to_string())));
            return;
        }
    };
    let stream = match flux.rpc_streaming(TOPIC, Some(&journal::request())) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Msg::End(Some(e.to_string())));
            return;
        }
    };
    if tx.send(Msg::Connected).is_err() {
        return;
    }
    for r in stream {
        match r {
            Ok(Some(text)) => {
                if tx.send(Msg::Line(text)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Msg::End(Some(e.to_string())));
                return;
            }
        }
    }
    let _ = tx.send(Msg::End(None));
}

/// What one committed batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Jobs recorded.
    pub recorded: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Jobs already in the ledger.
    pub already: u64,
    /// Commit time minus the newest job's `clean` time, µs.
    pub lag_us: Option<i64>,
    /// The fair-share was recomputed.
    pub fshare: bool,
    /// The factors changed (the snapshot is due).
    pub factors_changed: bool,
}

/// The follower's writing side: one ledger, its effects, and when the
/// fair-share was last computed. Separate from the stream so that the
/// bench applies batches without a broker.
pub struct Writer {
    ledger: Ledger,
    earlier: EarlierRejections,
    /// The ledger head after this writer's last commit (another writer
    /// moved it when it differs: earlier rejections are read again).
    head: Option<u64>,
    last_fshare: Option<Instant>,
    /// Usage changed since the last fair-share computation.
    usage_dirty: bool,
    last_digest: Option<String>,
    /// Batches committed.
    pub batches: u64,
}

impl Writer {
    /// Opens the ledger for writing.
    pub fn open(ctx: &Context) -> Result<Writer> {
        let ledger = crate::db::open_write(ctx)?;
        Writer::on(ledger)
    }

    /// A writer on an opened ledger.
    pub fn on(ledger: Ledger) -> Result<Writer> {
        ledger.conn().execute_batch(projections::schema::EVENT_INDEXES_DDL)?;
        let earlier = earlier_rejections(&State::new(ledger.conn()))?;
        let head = ledger.head()?.map(|(s, _)| s.0);
        Ok(Writer { ledger, earlier, head, last_fshare: None, usage_dirty: false, last_digest: None, batches: 0 })
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether a fair-share computation is waiting for its time.
    pub fn fshare_pending(&self) -> bool {
        self.usage_dirty
    }

    /// When the next fair-share computation may run.
    fn fshare_due(&self, every: Duration) -> bool {
        self.last_fshare.is_none_or(|t| t.elapsed() >= every)
    }

    /// Commits one batch of ended jobs (possibly empty: a due fair-share
    /// computation, or a period rollover) at `now_us`.
    pub fn commit(&mut self, ctx: &Context, batch: Vec<Finished>, fshare_every: Duration) -> Result<BatchReport> {
        let mut ids: Vec<u64> = batch
            .iter()
            .filter_map(|f| match f.item.rec.as_ref().map(Encoded::event) {
                Ok(Event::JobRecorded(j)) => Some(j.id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let clean_of: std::collections::HashMap<u64, i64> = batch.iter().map(|f| (f.id, f.clean_us)).collect();
        let fshare_due = self.fshare_due(fshare_every);
        let mut tx = self.ledger.transaction()?;
        // The time is read once the write lock is held: a writer that held
        // it meanwhile (cron's update-usage) has an earlier time.
        let meta = ctx.meta();
        let now_us = meta.recorded_at_us;
        let head_now = tx.head().map(|(s, _)| s.0);
        if head_now != self.head {
            // Another writer (cron's fetch, an admin) appended: it may have
            // rejected records too.
            self.earlier = earlier_rejections(&State::new(tx.conn()))?;
        }
        let items = batch.into_iter().map(|f| f.item).collect();
        let d = {
            let s = State::new(tx.conn());
            let known = known_jobs(&s, &ids)?;
            decide(items, &known, &self.earlier)
        };
        let mut report = BatchReport { already: d.already, ..BatchReport::default() };
        let mut newest: Option<(u64, i64)> = None;
        for e in &d.events {
            match e.event() {
                Event::JobRecorded(j) => {
                    report.recorded += 1;
                    if let Some(&c) = clean_of.get(&j.id) {
                        if newest.is_none_or(|(_, t)| c >= t) {
                            newest = Some((j.id, c));
                        }
                    }
                }
                Event::JobRejected(r) => {
                    report.rejected += 1;
                    if let Some(id) = r.id {
                        self.earlier.ids.insert(id);
                    }
                }
                _ => {}
            }
        }
        let mut events = d.events;
        let (now, rollover) = {
            let conn = tx.conn();
            let p = projections::usage::params(conn)?;
            let last = projections::usage::last_as_of(conn)?;
            // Never before the last update (a clock stepped back would make
            // the update re-bin every job from the log).
            let now = last.map_or(now_us as f64 / 1e6, |t| t.max(now_us as f64 / 1e6));
            (now, last.is_some_and(|t| p.period(t) != p.period(now)))
        };
        if report.recorded > 0 || rollover {
            events.push(Encoded::new(Event::UsageUpdated(UsageUpdated { as_of: now }))?);
            self.usage_dirty = true;
        }
        if !events.is_empty() {
            projections::append_and_apply_encoded(&mut tx, &meta, &events)?;
        }
        if self.usage_dirty && fshare_due {
            let s = State::new(tx.conn());
            if s.root_bank()?.is_some() {
                let values = projections::usage::fairshare_values(tx.conn())?;
                let digest = projections::usage::fairshare_digest(&values);
                let ev = Encoded::new(Event::FairshareUpdated(FairshareUpdated {
                    associations: values.len() as u64,
                    digest: digest.clone(),
                }))?;
                projections::append_and_apply_encoded(&mut tx, &meta, &[ev])?;
                report.fshare = true;
                report.factors_changed = self.last_digest.as_deref() != Some(digest.as_str());
                self.last_digest = Some(digest);
            }
            self.usage_dirty = false;
            self.last_fshare = Some(Instant::now());
        }
        let commit_us = ctx.clock.now_us();
        let wrote = !events.is_empty() || report.fshare;
        if wrote {
            ledger::follower::record_batch(tx.conn(), newest, commit_us)?;
        } else {
            ledger::follower::record_heartbeat(tx.conn(), commit_us)?;
        }
        self.head = tx.head().map(|(s, _)| s.0);
        tx.commit()?;
        if wrote {
            self.batches += 1;
        }
        report.lag_us = newest.map(|(_, c)| commit_us - c);
        Ok(report)
    }

    /// Records a heartbeat (no event).
    pub fn heartbeat(&mut self, now_us: i64) -> Result<()> {
        let tx = self.ledger.transaction()?;
        ledger::follower::record_heartbeat(tx.conn(), now_us)?;
        tx.commit()?;
        Ok(())
    }
}

/// Tells mf_priority.so about new snapshots, on a handle of its own
/// (opened when first needed, dropped after a failure).
struct Plugin {
    flux: Option<fluxacct_flux::Flux>,
    /// The last failure reported (said once).
    said: Option<String>,
}

impl Plugin {
    fn load(&mut self, ctx: &Context, path: &std::path::Path) -> std::result::Result<String, String> {
        if self.flux.is_none() {
            self.flux = Some(fluxacct_flux::Flux::open(&ctx.flux_env).map_err(|e| e.to_string())?);
        }
        let Some(flux) = &self.flux else { return Err("no Flux handle".into()) };
        let payload = serde_json::json!({ "path": path.display().to_string() }).to_string();
        match flux.rpc("job-manager.mf_priority.load_snapshot", Some(&payload)) {
            Ok(reply) => Ok(reply.unwrap_or_default()),
            Err(e) => {
                self.flux = None;
                Err(e.to_string())
            }
        }
    }
}

/// Writes the snapshot and tells the plugin; failures are said once on
/// stderr (the follower goes on: the next change tries again).
fn publish(ctx: &Context, opts: &Options, plugin: &mut Plugin) {
    let path = std::path::absolute(&opts.snapshot).unwrap_or_else(|_| opts.snapshot.clone());
    let outcome = crate::snapshot::write_snapshot(ctx, &path).map_err(|e| e.to_string()).and_then(|_| {
        if opts.notify_plugin {
            plugin.load(ctx, &path).map(|_| ())
        } else {
            Ok(())
        }
    });
    match outcome {
        Ok(()) => plugin.said = None,
        Err(why) => {
            if plugin.said.as_deref() != Some(why.as_str()) {
                ctx.progress.notice(&format!("flux-account follow: the plugin snapshot was not loaded: {why}"));
                plugin.said = Some(why);
            }
        }
    }
}

/// Runs the follower until `stop` is set (or, with `once`, until the
/// backlog is recorded). Progress and reconnections are said on stderr
/// through [`crate::context::Progress::notice`].
pub fn follow(ctx: &Context, opts: &Options, stop: &AtomicBool) -> Result<Totals> {
    let mut w = Writer::open(ctx)?;
    let mut plugin = Plugin { flux: None, said: None };
    let mut totals = Totals::default();
    let mut backoff = Duration::from_millis(250);
    let mut ever_connected = false;
    while !stop.load(Ordering::Relaxed) {
        let (tx, rx) = mpsc::sync_channel::<Msg>(1024);
        let env = ctx.flux_env.clone();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || reader(env, tx))
            .map_err(|e| Error::io_msg(format!("cannot start the journal reader: {e}")))?;
        let mut tracker = Tracker::new();
        let mut pending: Vec<Finished> = Vec::new();
        let mut opened: Option<Instant> = None;
        let mut caught_up = false;
        let mut streaming = false;
        let mut last_beat = Instant::now();
        let mut last_commit = Instant::now() - opts.min_commit_gap;
        let lost: Option<String> = loop {
            if stop.load(Ordering::Relaxed) {
                break None;
            }
            let wait = if opened.is_some() {
                Duration::from_millis(2)
            } else if w.fshare_pending() {
                Duration::from_millis(50)
            } else {
                Duration::from_millis(200)
            };
            let mut ended: Option<Option<String>> = None;
            let mut sentinel = false;
            let mut first = rx.recv_timeout(wait).map_err(|e| match e {
                RecvTimeoutError::Timeout => TryRecvError::Empty,
                RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            });
            // Drain what is waiting, up to the batch's limits.
            loop {
                match first {
                    Ok(Msg::Connected) => {}
                    Ok(Msg::Line(text)) => {
                        if !streaming {
                            // The journal answers: connected for real.
                            if ever_connected {
                                ctx.progress.notice("flux-account follow: reconnected to the job-manager's journal");
                            }
                            ever_connected = true;
                            streaming = true;
                            backoff = Duration::from_millis(250);
                        }
                        match tracker.feed(&text, ctx.clock.now_secs(), &mut pending) {
                            Ok(Fed::Sentinel) => sentinel = true,
                            Ok(Fed::Job) => {}
                            Err(why) => ctx.progress.notice(&format!("flux-account follow: {why}")),
                        }
                    }
                    Ok(Msg::End(why)) => {
                        ended = Some(why);
                        break;
                    }
                    Err(TryRecvError::Disconnected) => {
                        ended = Some(Some("the journal reader stopped".into()));
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                }
                if !pending.is_empty() && opened.is_none() {
                    opened = Some(Instant::now());
                }
                if sentinel
                    || pending.len() >= opts.max_batch
                    || opened.is_some_and(|t| t.elapsed() >= opts.max_batch_age)
                {
                    break;
                }
                first = rx.try_recv();
            }
            if sentinel {
                caught_up = true;
            }
            // Once caught up a batch closes when nothing waits, but not
            // sooner than `min_commit_gap` after the last commit: a lone job
            // is committed at once, a stream shares batches.
            let close = !pending.is_empty()
                && ((caught_up && last_commit.elapsed() >= opts.min_commit_gap)
                    || ended.is_some()
                    || pending.len() >= opts.max_batch
                    || opened.is_some_and(|t| t.elapsed() >= opts.max_batch_age));
            let fshare_now = w.fshare_pending() && w.fshare_due(opts.fshare_every);
            if close || fshare_now {
                let batch = std::mem::take(&mut pending);
                opened = None;
                let r = w.commit(ctx, batch, opts.fshare_every)?;
                last_beat = Instant::now();
                last_commit = Instant::now();
                totals.batches = w.batches;
                totals.recorded += r.recorded;
                totals.rejected += r.rejected;
                totals.already += r.already;
                if opts.verbose && (r.recorded + r.rejected + r.already > 0 || r.fshare) {
                    let lag = r.lag_us.map_or("-".to_string(), |l| format!("{:.3} s", l as f64 / 1e6));
                    let fs = if r.factors_changed {
                        ", fair-share changed"
                    } else if r.fshare {
                        ", fair-share unchanged"
                    } else {
                        ""
                    };
                    ctx.progress.notice(&format!(
                        "flux-account follow: batch {}: {} jobs, {} rejected, {} already recorded, lag {lag}{fs}",
                        w.batches, r.recorded, r.rejected, r.already
                    ));
                }
                if r.factors_changed {
                    publish(ctx, opts, &mut plugin);
                }
            } else if last_beat.elapsed() >= opts.heartbeat_every {
                // Idle: a heartbeat, and a period rollover if one is due.
                let r = w.commit(ctx, Vec::new(), opts.fshare_every)?;
                if r.factors_changed {
                    publish(ctx, opts, &mut plugin);
                }
                last_beat = Instant::now();
            }
            if sentinel && opts.once {
                totals.never_ran += tracker.never_ran;
                return Ok(totals);
            }
            if let Some(why) = ended {
                break Some(why.unwrap_or_else(|| "the job-manager ended the stream".into()));
            }
        };
        totals.never_ran += tracker.never_ran;
        let Some(why) = lost else { break };
        if opts.once {
            return Err(Error::io_msg(format!("{TOPIC}: {why}")));
        }
        totals.reconnects += 1;
        ctx.progress.notice(&format!(
            "flux-account follow: lost the job-manager's journal ({why}); reconnecting in {:.1} s",
            backoff.as_secs_f64()
        ));
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(opts.max_backoff);
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use fluxacct_core::events::JobRecorded;
    use fluxacct_ingest::source::{checked, Position};

    /// t0 of the test ledgers is 1.0; jobs end at 100 s.
    const NOW_US: i64 = 200_000_000;

    fn ended(id: u64, uid: i64) -> Finished {
        let j = JobRecorded {
            id,
            userid: uid,
            username: None,
            bank: "A".into(),
            project: String::new(),
            queue: String::new(),
            t_submit: 10.0,
            t_run: 20.0,
            t_inactive: 100.0,
            nnodes: 1,
            ncores: 1,
            ngpus: 0,
            requested_duration: 0.0,
            ranks: None,
            r: None,
        };
        Finished { item: checked(Position::Live(id), Ok(j)), id, clean_us: 100_000_000 }
    }

    fn kinds(w: &Writer) -> Vec<String> {
        let mut st = w.ledger().conn().prepare("SELECT kind FROM events ORDER BY seq").unwrap();
        st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn given_ended_jobs_when_a_batch_is_committed_then_records_usage_fairshare_and_bookkeeping_are_written() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A")]);
        let ctx = Context::for_tests("/nonexistent", NOW_US);
        let mut w = Writer::on(g.ledger).unwrap();
        let before = kinds(&w).len();
        let r = w.commit(&ctx, vec![ended(7, 1000), ended(8, 1000)], Duration::ZERO).unwrap();
        assert_eq!((r.recorded, r.rejected, r.already), (2, 0, 0));
        assert!(r.fshare && r.factors_changed);
        assert_eq!(r.lag_us, Some(NOW_US - 100_000_000));
        assert_eq!(kinds(&w)[before..], ["JobRecorded", "JobRecorded", "UsageUpdated", "FairshareUpdated"]);
        let usage: f64 = w
            .ledger()
            .conn()
            .query_row("SELECT job_usage FROM association_table WHERE username = 'u1'", [], |r| r.get(0))
            .unwrap();
        assert!(usage > 0.0, "{usage}");
        let st = ledger::follower::read(w.ledger().conn()).unwrap();
        assert_eq!((st.last_job_id, st.last_clean_us, st.batches), (Some(8), Some(100_000_000), Some(1)));
    }

    #[test]
    fn given_recorded_jobs_when_the_backlog_repeats_them_then_nothing_is_appended_twice() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A")]);
        let ctx = Context::for_tests("/nonexistent", NOW_US);
        let mut w = Writer::on(g.ledger).unwrap();
        w.commit(&ctx, vec![ended(7, 1000)], Duration::from_secs(3600)).unwrap();
        let n = kinds(&w).len();
        let r = w.commit(&ctx, vec![ended(7, 1000)], Duration::from_secs(3600)).unwrap();
        assert_eq!((r.recorded, r.already, r.fshare), (0, 1, false));
        assert_eq!(kinds(&w).len(), n, "nothing appended");
        // Only a heartbeat: the batch count is unchanged.
        assert_eq!(ledger::follower::read(w.ledger().conn()).unwrap().batches, Some(1));
    }

    #[test]
    fn given_a_recent_fairshare_when_usage_changes_then_it_waits_for_its_time() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A")]);
        let ctx = Context::for_tests("/nonexistent", NOW_US);
        let mut w = Writer::on(g.ledger).unwrap();
        assert!(w.commit(&ctx, vec![ended(1, 1000)], Duration::from_secs(3600)).unwrap().fshare);
        let r = w.commit(&ctx, vec![ended(2, 1000)], Duration::from_secs(3600)).unwrap();
        assert!(!r.fshare);
        assert!(w.fshare_pending());
    }
}
