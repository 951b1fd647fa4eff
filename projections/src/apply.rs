//! Applying events to the projection tables.
//!
//! This is the one code path that turns events into projection rows: the
//! live command path and every rebuild use it, which is what makes a
//! rebuild come out identical to the incrementally kept tables. It uses
//! only the event and its envelope (seq, recorded_at): no clock, no
//! randomness, no hash-map iteration.

use rusqlite::{named_params, params, Connection};

use crate::ctx::ApplyCtx;
use crate::error::Error;
use fluxacct_core::events::*;

/// Default factor weights (fairshare, queue, bank, urgency): those of
/// [`fluxacct_core::snapshot::Weights::DEFAULT`].
pub const DEFAULT_FACTORS: &[(&str, i64)] = &fluxacct_core::snapshot::Weights::DEFAULT.factors();

/// Formats a float the way config_table stores numbers: integers without a
/// fraction (`604800`), others in shortest round-trip form (`0.5`).
pub fn config_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Formats a float as Python's `str()` does for the values flux-accounting
/// writes as floats (`decay_factor`, the resource weights): `1.0`, `0.5`.
pub fn config_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn changed(n: usize, ctx: &ApplyCtx, what: &str) -> Result<(), Error> {
    if n == 0 {
        Err(Error::Apply { seq: ctx.seq, what: what.to_string() })
    } else {
        Ok(())
    }
}

/// Applies a run of events to the projection tables on one connection,
/// with one difference from writing each event's rows as it comes: the
/// `usage_pending` rows of `JobRecorded` events (the bulk of any log) are
/// buffered in memory: a `UsageUpdated`
/// bins the buffered jobs that ended by its `as_of` together with the
/// stored ones (in the same (t_inactive, seq) order, so the floats come out
/// identical) and keeps the rest, and a re-binning, the only other reader
/// of `usage_pending`, writes the buffer first (see [`crate::usage::apply`]).
/// So a long replay does not insert and delete a row per job.
///
/// Call [`Applier::sync`] before reading the tables and before the
/// transaction ends: the buffer is not written on drop.
#[derive(Debug, Default)]
pub struct Applier {
    pending: Vec<crate::usage::PendingJob>,
    /// Seq of the last event applied.
    last: Option<u64>,
    /// A replay's applier: digest mismatches are noted, not errors.
    replaying: bool,
    /// The events a replay skipped or carried (in seq order).
    skipped: Vec<Skipped>,
    /// The fair-share inputs seal ([`crate::seal`]): `None` until an event
    /// that can change its columns is applied; then, on the live path,
    /// what [`Applier::sync`] does with it (move a stored seal by the rows
    /// the transaction changed, reseal a first-form one that matched, or
    /// nothing when none matched). A
    /// replaying applier leaves it to its caller (`rebuild` seals the
    /// state once, at the end).
    seal: Option<crate::seal::Tracking>,
    /// Charges job records against allocations ([`crate::allocation`]).
    charger: crate::allocation::Charger,
}

/// An event a replay could not apply as recorded and went on past, with
/// its seq: an unreadable payload (skipped) or a recorded digest the
/// replayed state does not reproduce (carried: the replayed values are
/// applied). What a replay does with it depends on the log alone, so the
/// rebuilt projections stay a function of the log (docs/integrity.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The event's seq.
    pub seq: u64,
    /// What was wrong and what the replay did.
    pub what: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.what)
    }
}

impl Applier {
    /// An applier with an empty buffer, for the live command path: a
    /// recorded digest that does not match is an error.
    pub fn new() -> Self {
        Applier::default()
    }

    /// An applier for a replay of the log (rebuild, `--check`, as-of views,
    /// checkpoints): a recorded digest that the replayed state does not
    /// reproduce is noted ([`Applier::skipped`]) and the replayed values
    /// are kept, so a ledger carrying such an event still replays.
    pub fn replaying() -> Self {
        Applier { replaying: true, ..Applier::default() }
    }

    /// Applies one event to the tables on `conn`.
    ///
    /// A replaying applier applies each event inside a savepoint: an event
    /// the rest of the log contradicts (an edited payload under an accepted
    /// break: no such bank, a duplicate row) is rolled back and noted as
    /// skipped, so that a replay goes on. The live path fails instead.
    pub fn apply(&mut self, conn: &Connection, ctx: &ApplyCtx, ev: &Event) -> Result<(), Error> {
        if !matches!(ev, Event::JobRecorded(_)) {
            // Buffered charges are written before anything that may read or
            // change what the charger keeps (and outside any savepoint).
            self.charger.flush(conn)?;
        }
        if !self.replaying
            && self.seal.is_none()
            && crate::seal::touches(tables_touched(ev), matches!(ev, Event::FairshareUpdated(_)))
        {
            self.seal = Some(crate::seal::Tracking::begin(conn)?);
        }
        if !self.replaying {
            apply_admin(conn, ctx, ev)?;
            crate::usage::apply(conn, ctx, ev, &mut self.pending)?;
            self.apply_allocations(conn, ctx, ev)?;
            self.advance(ctx.seq);
            return Ok(());
        }
        if !may_be_contradicted(ev) {
            // Nothing to roll back: skip the savepoint (whose statement
            // journal copies every page such an event writes).
            let result = apply_admin(conn, ctx, ev)
                .and_then(|()| crate::usage::apply(conn, ctx, ev, &mut self.pending))
                .and_then(|()| self.apply_allocations(conn, ctx, ev));
            return match result {
                Ok(()) => {
                    self.advance(ctx.seq);
                    Ok(())
                }
                Err(Error::DigestMismatch { seq, what }) => {
                    self.skipped.push(Skipped {
                        seq,
                        what: format!("{what}; carried: the fair-share values the log implies were applied"),
                    });
                    self.advance(ctx.seq);
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        conn.prepare_cached("SAVEPOINT replay_event")?.execute([])?;
        let pending = self.pending.len();
        let result = apply_admin(conn, ctx, ev)
            .and_then(|()| crate::usage::apply(conn, ctx, ev, &mut self.pending))
            .and_then(|()| self.apply_allocations(conn, ctx, ev));
        if result.is_err() {
            // This event's charge, if any, is rolled back with it.
            self.charger.undo(ctx.seq);
        }
        match result {
            Ok(()) => {}
            Err(Error::DigestMismatch { seq, what }) => self.skipped.push(Skipped {
                seq,
                what: format!("{what}; carried: the fair-share values the log implies were applied"),
            }),
            Err(e) if contradiction(&e) && self.pending.len() >= pending => {
                conn.prepare_cached("ROLLBACK TO replay_event")?.execute([])?;
                self.pending.truncate(pending);
                self.skipped.push(Skipped {
                    seq: ctx.seq,
                    what: format!("{} does not apply ({e}); skipped (see `verify` and `repair`)", ev.kind()),
                });
            }
            Err(e) => {
                conn.prepare_cached("RELEASE replay_event")?.execute([])?;
                return Err(e);
            }
        }
        conn.prepare_cached("RELEASE replay_event")?.execute([])?;
        self.advance(ctx.seq);
        Ok(())
    }

    /// Passes over the event at `ctx` without applying it (its payload
    /// cannot be read), noting why.
    pub fn skip(&mut self, ctx: &ApplyCtx, why: String) {
        self.skipped.push(Skipped { seq: ctx.seq, what: format!("{why}; skipped (see `verify` and `repair`)") });
        self.advance(ctx.seq);
    }

    /// The events skipped or carried so far.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Applies the `JobRecorded` event at `ctx` given as its binning fields,
    /// `job` (what [`crate::usage::PendingJob::of`] or, straight from the
    /// stored payload, [`crate::usage::PendingJob::decode`] gives): the
    /// whole effect of a `JobRecorded` on the projections, as [`Applier::apply`]
    /// has it.
    pub fn apply_job(
        &mut self,
        conn: &Connection,
        ctx: &ApplyCtx,
        job: Option<crate::usage::PendingJob>,
    ) -> Result<(), Error> {
        if let Some(mut job) = job {
            job.seq = ctx.seq as i64;
            self.charger.charge(
                conn,
                &crate::allocation::ChargeJob {
                    seq: ctx.seq,
                    id: job.id,
                    userid: job.userid,
                    bank: &job.bank,
                    project: &job.project,
                    queue: &job.queue,
                    t_run: job.t_run,
                    t_inactive: job.t_inactive,
                    res: fluxacct_core::allocation::JobResources {
                        nnodes: job.nnodes,
                        ncores: job.ncores,
                        ngpus: job.ngpus,
                    },
                },
            )?;
            self.pending.push(job);
        }
        self.advance(ctx.seq);
        Ok(())
    }

    /// The allocation side of an event: charges a job record; applies an
    /// allocation or queue event (and forgets what the charger read, which
    /// any event but a job record may change).
    fn apply_allocations(&mut self, conn: &Connection, ctx: &ApplyCtx, ev: &Event) -> Result<(), Error> {
        match ev {
            Event::JobRecorded(j) => self.charger.charge(
                conn,
                &crate::allocation::ChargeJob {
                    seq: ctx.seq,
                    id: j.id,
                    userid: j.userid,
                    bank: &j.bank,
                    project: &j.project,
                    queue: &j.queue,
                    t_run: j.t_run,
                    t_inactive: j.t_inactive,
                    res: fluxacct_core::allocation::JobResources { nnodes: j.nnodes, ncores: j.ncores, ngpus: j.ngpus },
                },
            ),
            _ => {
                self.charger.invalidate();
                crate::allocation::apply(conn, ctx, ev)
            }
        }
    }

    /// Records `seq` as applied. Events are applied in log order: seqs start
    /// at 1 and, within one applier, each is the previous one plus one (no
    /// event skipped, none applied twice).
    fn advance(&mut self, seq: u64) {
        debug_assert!(seq >= 1, "seq {seq}: the log starts at seq 1");
        debug_assert!(
            self.last.is_none_or(|last| seq == last + 1),
            "seq {seq} applied after seq {:?}: events must be applied in strictly increasing seq order, without gaps",
            self.last
        );
        self.last = Some(seq);
    }

    /// Brings the tables on `conn` up to every event applied: writes the
    /// buffered `usage_pending` rows and records the last event's seq as
    /// applied ([`mark_applied`]).
    pub fn sync(&mut self, conn: &Connection) -> Result<(), Error> {
        self.charger.flush(conn)?;
        let jobs = std::mem::take(&mut self.pending);
        crate::usage::store_pending(conn, &jobs)?;
        if let Some(seal) = self.seal.take() {
            seal.end(conn)?;
        }
        match self.last {
            Some(seq) => mark_applied(conn, seq),
            None => Ok(()),
        }
    }
}

/// Whether applying `ev` can fail because the rest of the log contradicts
/// it ([`contradiction`]), so that a replay must be able to roll it back.
/// A usage update bins what the log holds (an unreadable job record was
/// skipped at its own seq) and a fair-share update recomputes from the
/// tables (a digest that differs is carried, not rolled back): neither
/// refers to a row that may be missing, and they are the events that
/// write every association, the costly ones to journal.
fn may_be_contradicted(ev: &Event) -> bool {
    !matches!(ev, Event::UsageUpdated(_) | Event::FairshareUpdated(_))
}

/// Whether `e` says the event contradicts the state the log built (rather
/// than that SQLite or the file failed).
fn contradiction(e: &Error) -> bool {
    match e {
        Error::Apply { .. } => true,
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => f.code == rusqlite::ErrorCode::ConstraintViolation,
        _ => false,
    }
}

/// Records `seq` as the last event reflected by the projection tables.
pub fn mark_applied(conn: &Connection, seq: u64) -> Result<(), Error> {
    conn.prepare_cached("INSERT OR REPLACE INTO projection_meta(key, value) VALUES ('applied_seq', ?1)")?
        .execute([seq as i64])?;
    Ok(())
}

/// The projection tables applying `ev` can change (through
/// [`Applier::apply`]: the admin rows here and the usage side in
/// [`crate::usage::apply`]), plus `jobs`, the view over the log that a
/// `JobRecorded` adds a row to. `diff` names an event as the cause of a row
/// change through this. An exhaustive match: a new event kind does not
/// compile until it says which tables it touches.
pub fn tables_touched(ev: &Event) -> &'static [&'static str] {
    /// A bank's `ignore_older_than` changed: its jobs are re-binned and its
    /// associations' usage recomputed (`usage::bank_filter_changed`).
    const BANK_FILTER: &[&str] = &["bank_table", "usage_bins", "usage_pending", "usage_state", "association_table"];
    match ev {
        Event::DbCreated(_) => &["config_table", "priority_factor_weight_table", "project_table", "usage_state"],
        Event::BankAdded(e) if e.ignore_older_than != 0 => BANK_FILTER,
        Event::BankEdited(e) if e.ignore_older_than.is_some() => BANK_FILTER,
        Event::BankAdded(_)
        | Event::BankEdited(_)
        | Event::BankReactivated(_)
        | Event::BankDisabled(_)
        | Event::BankDeleted(_) => &["bank_table"],
        Event::AssociationAdded(_)
        | Event::AssociationReactivated(_)
        | Event::AssociationEdited(_)
        | Event::AssociationDisabled(_)
        | Event::AssociationDeleted(_) => &["association_table", "usage_dirty"],
        Event::DefaultBankChanged(_) => &["association_table"],
        Event::QueueAdded(_) | Event::QueueEdited(_) | Event::QueueDeleted(_) => {
            &["queue_table", "queue_charge_factor"]
        }
        Event::AllocationAdded(_)
        | Event::AllocationDeposited(_)
        | Event::AllocationWithdrawn(_)
        | Event::AllocationPeriodChanged(_)
        | Event::AllocationPolicySet(_)
        | Event::AllocationDeleted(_) => &["allocation_table", "allocation_transactions"],
        Event::ProjectAdded(_) | Event::ProjectDeleted(_) => &["project_table"],
        Event::FactorWeightSet(_) => &["priority_factor_weight_table"],
        Event::ConfigAdded(_) | Event::ConfigEdited(_) | Event::ConfigDeleted(_) => {
            // A usage key re-bins the jobs (`usage::config_changed`).
            &["config_table", "usage_state", "usage_bins", "usage_pending"]
        }
        Event::JobRecorded(_) => &["jobs", "usage_pending", "allocation_charges", "allocation_table"],
        Event::UsageUpdated(_) => {
            &["usage_bins", "usage_pending", "usage_dirty", "usage_state", "association_table", "bank_table"]
        }
        Event::UsageCleared(_) => {
            &["usage_bins", "usage_pending", "usage_dirty", "usage_state", "association_table", "bank_table"]
        }
        Event::FairshareUpdated(_) => &["association_table"],
        Event::JobsScrubbed(_) => &["usage_state"],
        Event::CentreUsageFetched(_) => &["usage_state"],
        // Records for auditors: no projection changes.
        Event::BreakAccepted(_) | Event::SiteImported(_) | Event::JobRejected(_) => &[],
        Event::UsageImported(_) => {
            &["usage_bins", "usage_pending", "usage_dirty", "usage_state", "association_table", "bank_table"]
        }
    }
}

fn apply_admin(conn: &Connection, ctx: &ApplyCtx, ev: &Event) -> Result<(), Error> {
    match ev {
        Event::DbCreated(e) => {
            let rows: [(&str, String); 7] = [
                ("priority_usage_reset_period", config_number(e.priority_usage_reset_period)),
                ("priority_decay_half_life", config_number(e.priority_decay_half_life)),
                ("decay_factor", config_float(e.decay_factor)),
                ("node_weight", config_float(e.node_weight)),
                ("core_weight", config_float(e.core_weight)),
                ("gpu_weight", config_float(e.gpu_weight)),
                ("deny_unknown_queues", "false".to_string()),
            ];
            for (k, v) in rows {
                conn.prepare_cached("INSERT INTO config_table(key, value) VALUES (?1, ?2)")?.execute(params![k, v])?;
            }
            for (f, w) in DEFAULT_FACTORS {
                conn.prepare_cached("INSERT INTO priority_factor_weight_table(factor, weight) VALUES (?1, ?2)")?
                    .execute(params![f, w])?;
            }
            conn.prepare_cached("INSERT INTO project_table(project_id, project, usage) VALUES (1, '*', 0.0)")?
                .execute([])?;
        }
        Event::BankAdded(e) => {
            conn.prepare_cached(
                "INSERT INTO bank_table(bank, active, parent_bank, shares, job_usage, priority, ignore_older_than) \
                 VALUES (?1, 1, ?2, ?3, 0.0, ?4, ?5)",
            )?
            .execute(params![e.bank, e.parent_bank, e.shares, e.priority, e.ignore_older_than])?;
        }
        Event::BankReactivated(e) => {
            let n = conn.prepare_cached("UPDATE bank_table SET active = 1 WHERE bank = ?1")?.execute([&e.bank])?;
            changed(n, ctx, "no such bank")?;
        }
        Event::BankEdited(e) => {
            let mut stmt = conn.prepare_cached(
                "UPDATE bank_table SET shares = coalesce(?2, shares), parent_bank = coalesce(?3, parent_bank), \
                 priority = coalesce(?4, priority), ignore_older_than = coalesce(?5, ignore_older_than) WHERE bank = ?1",
            )?;
            let n = stmt.execute(params![e.bank, e.shares, e.parent_bank, e.priority, e.ignore_older_than])?;
            changed(n, ctx, "no such bank")?;
        }
        Event::BankDisabled(e) => {
            let n = conn.prepare_cached("UPDATE bank_table SET active = 0 WHERE bank = ?1")?.execute([&e.bank])?;
            changed(n, ctx, "no such bank")?;
        }
        Event::BankDeleted(e) => {
            let n = conn.prepare_cached("DELETE FROM bank_table WHERE bank = ?1")?.execute([&e.bank])?;
            changed(n, ctx, "no such bank")?;
        }
        Event::AssociationAdded(e) => {
            conn.prepare_cached(
                "INSERT INTO association_table(creation_time, mod_time, active, username, userid, bank, default_bank, \
                 shares, job_usage, fairshare, max_running_jobs, max_active_jobs, max_nodes, max_cores, queues, \
                 projects, default_project, max_sched_jobs) \
                 VALUES (:t, :t, 1, :username, :userid, :bank, :default_bank, :shares, 0.0, :fairshare, \
                 :max_running_jobs, :max_active_jobs, :max_nodes, :max_cores, :queues, :projects, :default_project, \
                 :max_sched_jobs)",
            )?
            .execute(named_params! {
                ":t": ctx.secs(),
                ":username": e.username,
                ":userid": e.userid,
                ":bank": e.bank,
                ":default_bank": e.default_bank,
                ":shares": e.shares,
                ":fairshare": e.fairshare,
                ":max_running_jobs": e.max_running_jobs,
                ":max_active_jobs": e.max_active_jobs,
                ":max_nodes": e.max_nodes,
                ":max_cores": e.max_cores,
                ":queues": e.queues,
                ":projects": e.projects,
                ":default_project": e.default_project,
                ":max_sched_jobs": e.max_sched_jobs,
            })?;
        }
        Event::AssociationReactivated(e) => {
            let n = conn
                .prepare_cached(
                    "UPDATE association_table SET active = 1, mod_time = ?3 WHERE username = ?1 AND bank = ?2",
                )?
                .execute(params![e.username, e.bank, ctx.secs()])?;
            changed(n, ctx, "no such association")?;
        }
        Event::AssociationEdited(e) => {
            let n = conn
                .prepare_cached(
                    "UPDATE association_table SET \
                 bank = coalesce(:new_bank, bank), userid = coalesce(:userid, userid), \
                 default_bank = coalesce(:default_bank, default_bank), shares = coalesce(:shares, shares), \
                 fairshare = coalesce(:fairshare, fairshare), \
                 max_running_jobs = coalesce(:max_running_jobs, max_running_jobs), \
                 max_active_jobs = coalesce(:max_active_jobs, max_active_jobs), \
                 max_nodes = coalesce(:max_nodes, max_nodes), max_cores = coalesce(:max_cores, max_cores), \
                 queues = coalesce(:queues, queues), projects = coalesce(:projects, projects), \
                 default_project = coalesce(:default_project, default_project), \
                 max_sched_jobs = coalesce(:max_sched_jobs, max_sched_jobs), \
                 mod_time = :t WHERE username = :username AND bank = :bank",
                )?
                .execute(named_params! {
                    ":username": e.username,
                    ":bank": e.bank,
                    ":new_bank": e.new_bank,
                    ":userid": e.userid,
                    ":default_bank": e.default_bank,
                    ":shares": e.shares,
                    ":fairshare": e.fairshare,
                    ":max_running_jobs": e.max_running_jobs,
                    ":max_active_jobs": e.max_active_jobs,
                    ":max_nodes": e.max_nodes,
                    ":max_cores": e.max_cores,
                    ":queues": e.queues,
                    ":projects": e.projects,
                    ":default_project": e.default_project,
                    ":max_sched_jobs": e.max_sched_jobs,
                    ":t": ctx.secs(),
                })?;
            changed(n, ctx, "no such association")?;
        }
        Event::AssociationDisabled(e) => {
            let n = conn
                .prepare_cached(
                    "UPDATE association_table SET active = 0, mod_time = ?3 WHERE username = ?1 AND bank = ?2",
                )?
                .execute(params![e.username, e.bank, ctx.secs()])?;
            changed(n, ctx, "no such association")?;
        }
        Event::AssociationDeleted(e) => {
            let n = conn
                .prepare_cached("DELETE FROM association_table WHERE username = ?1 AND bank = ?2")?
                .execute(params![e.username, e.bank])?;
            changed(n, ctx, "no such association")?;
        }
        Event::DefaultBankChanged(e) => {
            conn.prepare_cached("UPDATE association_table SET default_bank = ?2, mod_time = ?3 WHERE username = ?1")?
                .execute(params![e.username, e.default_bank, ctx.secs()])?;
        }
        Event::QueueAdded(e) => {
            conn.prepare_cached(
                "INSERT INTO queue_table(queue, min_nodes_per_job, max_nodes_per_job, max_time_per_job, priority, \
                 max_running_jobs, max_nodes_per_assoc, max_sched_jobs, max_sched_nodes_per_assoc, \
                 max_sched_cores_per_assoc, max_nodes, max_cores) VALUES (:queue, :min_nodes_per_job, \
                 :max_nodes_per_job, :max_time_per_job, :priority, :max_running_jobs, :max_nodes_per_assoc, \
                 :max_sched_jobs, :max_sched_nodes_per_assoc, :max_sched_cores_per_assoc, :max_nodes, :max_cores)",
            )?
            .execute(named_params! {
                ":queue": e.queue,
                ":min_nodes_per_job": e.limits.min_nodes_per_job,
                ":max_nodes_per_job": e.limits.max_nodes_per_job,
                ":max_time_per_job": e.limits.max_time_per_job,
                ":priority": e.limits.priority,
                ":max_running_jobs": e.limits.max_running_jobs,
                ":max_nodes_per_assoc": e.limits.max_nodes_per_assoc,
                ":max_sched_jobs": e.limits.max_sched_jobs,
                ":max_sched_nodes_per_assoc": e.limits.max_sched_nodes_per_assoc,
                ":max_sched_cores_per_assoc": e.limits.max_sched_cores_per_assoc,
                ":max_nodes": e.max_nodes,
                ":max_cores": e.max_cores,
            })?;
        }
        Event::QueueEdited(e) => {
            let mut stmt = conn.prepare_cached(
                "UPDATE queue_table SET min_nodes_per_job = coalesce(:min_nodes_per_job, min_nodes_per_job), \
                 max_nodes_per_job = coalesce(:max_nodes_per_job, max_nodes_per_job), \
                 max_time_per_job = coalesce(:max_time_per_job, max_time_per_job), \
                 priority = coalesce(:priority, priority), \
                 max_running_jobs = coalesce(:max_running_jobs, max_running_jobs), \
                 max_nodes_per_assoc = coalesce(:max_nodes_per_assoc, max_nodes_per_assoc), \
                 max_sched_jobs = coalesce(:max_sched_jobs, max_sched_jobs), \
                 max_sched_nodes_per_assoc = coalesce(:max_sched_nodes_per_assoc, max_sched_nodes_per_assoc), \
                 max_sched_cores_per_assoc = coalesce(:max_sched_cores_per_assoc, max_sched_cores_per_assoc), \
                 max_nodes = coalesce(:max_nodes, max_nodes), max_cores = coalesce(:max_cores, max_cores) \
                 WHERE queue = :queue",
            )?;
            let n = stmt.execute(named_params! {
                ":queue": e.queue,
                ":min_nodes_per_job": e.min_nodes_per_job,
                ":max_nodes_per_job": e.max_nodes_per_job,
                ":max_time_per_job": e.max_time_per_job,
                ":priority": e.priority,
                ":max_running_jobs": e.max_running_jobs,
                ":max_nodes_per_assoc": e.max_nodes_per_assoc,
                ":max_sched_jobs": e.max_sched_jobs,
                ":max_sched_nodes_per_assoc": e.max_sched_nodes_per_assoc,
                ":max_sched_cores_per_assoc": e.max_sched_cores_per_assoc,
                ":max_nodes": e.max_nodes,
                ":max_cores": e.max_cores,
            })?;
            changed(n, ctx, "no such queue")?;
        }
        Event::QueueDeleted(e) => {
            let n = conn.prepare_cached("DELETE FROM queue_table WHERE queue = ?1")?.execute([&e.queue])?;
            changed(n, ctx, "no such queue")?;
        }
        Event::ProjectAdded(e) => {
            conn.prepare_cached("INSERT INTO project_table(project, usage) VALUES (?1, 0.0)")?.execute([&e.project])?;
        }
        Event::ProjectDeleted(e) => {
            let n = conn.prepare_cached("DELETE FROM project_table WHERE project = ?1")?.execute([&e.project])?;
            changed(n, ctx, "no such project")?;
        }
        Event::FactorWeightSet(e) => {
            conn.prepare_cached(
                "INSERT INTO priority_factor_weight_table(factor, weight) VALUES (?1, ?2) \
                 ON CONFLICT(factor) DO UPDATE SET weight = excluded.weight",
            )?
            .execute(params![e.factor, e.weight])?;
        }
        Event::ConfigAdded(e) => {
            conn.prepare_cached("INSERT INTO config_table(key, value) VALUES (?1, ?2)")?
                .execute(params![e.key, e.value])?;
        }
        Event::ConfigEdited(e) => {
            let n = conn
                .prepare_cached("UPDATE config_table SET value = ?2 WHERE key = ?1")?
                .execute(params![e.key, e.value])?;
            changed(n, ctx, "no such config key")?;
        }
        Event::ConfigDeleted(e) => {
            conn.prepare_cached("DELETE FROM config_table WHERE key = ?1")?.execute([&e.key])?;
        }
        Event::JobRecorded(_)
        | Event::UsageUpdated(_)
        | Event::UsageCleared(_)
        | Event::FairshareUpdated(_)
        | Event::SiteImported(_)
        | Event::UsageImported(_)
        | Event::BreakAccepted(_)
        | Event::JobRejected(_)
        | Event::AllocationAdded(_)
        | Event::AllocationDeposited(_)
        | Event::AllocationWithdrawn(_)
        | Event::AllocationPeriodChanged(_)
        | Event::AllocationPolicySet(_)
        | Event::AllocationDeleted(_)
        | Event::CentreUsageFetched(_) => {}
        Event::JobsScrubbed(e) => {
            // The cut only moves forward.
            conn.prepare_cached(
                "INSERT INTO usage_state(key, value) VALUES ('jobs_scrubbed_before', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute([e.before])?;
        }
    }
    Ok(())
}
