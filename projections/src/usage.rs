//! The usage projection: job records, per-period usage bins with half-life
//! decay, bank roll-up, and fair-share. Follows
//! `shared/specs/usage-and-fairshare.md`; `docs/usage.md` describes the
//! tables and the incremental algorithm.
//!
//! # Tables
//!
//! * `jobs`: a view over the log, one row per `JobRecorded` (see
//!   `schema::JOBS_VIEW_BODY`); not a table.
//! * `usage_pending (t_inactive, seq, ...)`: jobs with a bank that no usage
//!   update has binned yet (recorded since the last update, or ending after
//!   it), with the fields binning needs, so that an update never reads the
//!   log.
//! * `usage_bins (userid, bank, period, value)`: raw usage of the jobs of
//!   one (userid, bank) that ended in absolute period
//!   `p = floor((t_inactive − T0) / H)`.
//! * `usage_dirty (userid, bank)`: associations whose `job_usage` the next
//!   usage update recomputes although none of their bins changed (new,
//!   reactivated or moved associations).
//! * `usage_state`: `t0`, `as_of` (of the last `UsageUpdated`) and
//!   `recompute_all` (set by a usage configuration change).
//!
//! # Cost
//!
//! `UsageUpdated` bins only the pending jobs that ended by `as_of` (a range
//! scan of `usage_pending`), then recomputes `job_usage` only for the
//! (userid, bank) pairs whose bins changed, the dirty ones, and, when the
//! period of `as_of` differs from the previous update's, every association
//! with a non-zero `job_usage` (its window shifted). The banks of those
//! associations and their ancestors are rolled up again; the other banks
//! keep their totals while these are known exact ([`rollup_banks`]).
//!
//! Everything is ordered explicitly (`ORDER BY`, `BTreeMap`), so a rebuild
//! from the log gives bit-identical floats.
//!
//! # Files
//!
//! * `usage.rs` (this file): the SQL of the usage tables: parameters and
//!   state, bins, binning and re-binning, recomputing `job_usage`, the bank
//!   roll-up, and `UsageUpdated`.
//! * `usage/apply.rs` ([`apply()`]): the usage side of applying each event.
//! * `usage/pending.rs` ([`PendingJob`], [`BankNames`]): the binning fields
//!   of job records.
//! * `usage/tree.rs` ([`fairshare_tree`], [`fairshare_values`],
//!   [`fairshare_digest`]): the fair-share tree loaded from the tables.
//! * The arithmetic (periods, decay, job usage, config durations) needs no
//!   database: `fluxacct_core::usage`, re-exported here ([`Params`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::ctx::ApplyCtx;
use crate::error::Error;

mod apply;
mod pending;
mod tree;

pub use apply::apply;
pub use fluxacct_core::usage::{parse_config_duration, parse_fsd, Params};
pub use pending::{BankNames, PendingJob, JOB_RECORDED_VERSION};
pub(crate) use tree::store_centre_usage;
pub use tree::{
    centre_usage, fairshare_digest, fairshare_tree, fairshare_values, scope_is_centre, CENTRE_USAGE_KEY,
    FAIRSHARE_SCOPE_KEY,
};

/// The config keys whose change affects usage.
pub const USAGE_CONFIG_KEYS: &[&str] = &[
    "priority_decay_half_life",
    "priority_usage_reset_period",
    "decay_factor",
    "node_weight",
    "core_weight",
    "gpu_weight",
];

fn config(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT value FROM config_table WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, String>(0))
        .optional()?)
}

fn state_f64(conn: &Connection, key: &str) -> Result<Option<f64>, Error> {
    Ok(conn
        .prepare_cached("SELECT value FROM usage_state WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, Option<f64>>(0))
        .optional()?
        .flatten())
}

fn set_state(conn: &Connection, key: &str, value: f64) -> Result<(), Error> {
    conn.prepare_cached("INSERT OR REPLACE INTO usage_state(key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

/// The usage parameters in force.
pub fn params(conn: &Connection) -> Result<Params, Error> {
    let num = |key: &str, default: f64| -> Result<f64, Error> {
        Ok(config(conn, key)?.and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite()).unwrap_or(default))
    };
    let dur = |key: &str, default: f64| -> Result<f64, Error> {
        Ok(config(conn, key)?.and_then(|v| parse_config_duration(&v)).unwrap_or(default))
    };
    let decay = num("decay_factor", 0.5)?;
    Ok(Params {
        t0: state_f64(conn, "t0")?.unwrap_or(0.0),
        half_life: dur("priority_decay_half_life", 604800.0)?,
        reset: dur("priority_usage_reset_period", 2419200.0)?,
        decay: if decay > 0.0 && decay < 1.0 { decay } else { 0.5 },
        node_weight: num("node_weight", 1.0)?,
        core_weight: num("core_weight", 0.0)?,
        gpu_weight: num("gpu_weight", 0.0)?,
    })
}

/// The `as_of` of the most recent `UsageUpdated`, if any.
pub fn last_as_of(conn: &Connection) -> Result<Option<f64>, Error> {
    state_f64(conn, "as_of")
}

/// The raw usage `U_0..U_N` (k = 0 is the period of the last update's
/// `as_of`) behind the `job_usage` of the association (userid, bank). All
/// zeros before the first usage update.
pub fn period_usage(conn: &Connection, userid: i64, bank: &str) -> Result<Vec<f64>, Error> {
    let p = params(conn)?;
    match last_as_of(conn)? {
        Some(as_of) => raw_usage(conn, &p, userid, bank, p.period(as_of)),
        None => Ok(vec![0.0; (p.n() + 1) as usize]),
    }
}

/// The raw usage `U_0..U_N` of (userid, bank) counted back from period
/// `now` (k = 0 is `now`), from its bins.
fn raw_usage(conn: &Connection, p: &Params, userid: i64, bank: &str, now: i64) -> Result<Vec<f64>, Error> {
    let n = p.n();
    let mut u = vec![0.0; (n + 1) as usize];
    for (period, value) in bins(conn, userid, bank, now - n, now)? {
        u[(now - period) as usize] = value;
    }
    Ok(u)
}

fn bins(conn: &Connection, userid: i64, bank: &str, lo: i64, hi: i64) -> Result<Vec<(i64, f64)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT period, value FROM usage_bins WHERE userid = ?1 AND bank = ?2 AND period BETWEEN ?3 AND ?4 \
         ORDER BY period DESC",
    )?;
    let rows = stmt.query_map(params![userid, bank, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The decayed usage of (userid, bank) at period `now`.
fn decayed_usage(conn: &Connection, p: &Params, userid: i64, bank: &str, now: i64) -> Result<f64, Error> {
    Ok(p.decayed(&raw_usage(conn, p, userid, bank, now)?))
}

/// The banks with an `ignore_older_than` filter (0 means none: such a
/// bank's jobs all count, whatever their `t_inactive`): `bank_table`'s
/// whole seconds, or the exact time of the `clear-usage` that set it.
fn bank_ignores(conn: &Connection) -> Result<BTreeMap<String, f64>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT bank, ignore_older_than FROM bank_table WHERE ignore_older_than != 0")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as f64)))?;
    let mut out: BTreeMap<String, f64> = rows.collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT substr(key, 14), value FROM usage_state WHERE substr(key, 1, 13) = 'ignore_exact:' ORDER BY key",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))? {
        let (bank, t) = row?;
        if let Some(v) = out.get_mut(&bank) {
            *v = t;
        }
    }
    Ok(out)
}

/// The `usage_state` key of a bank's exact `clear-usage` time.
pub(crate) fn exact_ignore_key(bank: &str) -> String {
    format!("ignore_exact:{bank}")
}

/// Forgets a bank's exact `clear-usage` time (its filter is set again).
pub(crate) fn forget_exact_ignore(conn: &Connection, bank: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM usage_state WHERE key = ?1")?.execute([exact_ignore_key(bank)])?;
    Ok(())
}

/// Usage to add per bin, (userid → bank → period → usage): ordered like
/// the `usage_bins` key, and looked up by `&str` so that binning a job
/// clones its bank name only for a new bin.
#[derive(Debug, Default)]
struct Deltas(BTreeMap<i64, BTreeMap<Arc<str>, BTreeMap<i64, f64>>>);

impl Deltas {
    fn add(&mut self, userid: i64, bank: &Arc<str>, period: i64, u: f64) {
        let banks = self.0.entry(userid).or_default();
        let periods = match banks.get_mut::<str>(bank) {
            Some(p) => p,
            None => banks.entry(bank.clone()).or_default(),
        };
        *periods.entry(period).or_insert(0.0) += u;
    }

    /// The (userid, bank) pairs with a bin.
    fn associations(&self) -> impl Iterator<Item = (i64, String)> + '_ {
        self.0.iter().flat_map(|(u, banks)| banks.keys().map(move |b| (*u, b.to_string())))
    }
}

/// Adds per-bin deltas to `usage_bins`.
fn add_bins(conn: &Connection, deltas: &Deltas) -> Result<(), Error> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO usage_bins(userid, bank, period, value) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(userid, bank, period) DO UPDATE SET value = value + excluded.value",
    )?;
    for (userid, banks) in &deltas.0 {
        for (bank, periods) in banks {
            for (period, v) in periods {
                stmt.execute(params![userid, &**bank, period, v])?;
            }
        }
    }
    Ok(())
}

/// Bins one job into `deltas` if it counts (bank filter, window).
fn bin_job(p: &Params, lo: i64, ignores: &BTreeMap<String, f64>, j: &PendingJob, deltas: &mut Deltas) {
    if j.bank.is_empty() {
        return;
    }
    if let Some(&ts) = ignores.get(&*j.bank) {
        if j.t_inactive <= ts {
            return;
        }
    }
    let period = p.period(j.t_inactive);
    if period < lo {
        return;
    }
    let u = p.job_usage(j.t_run, j.t_inactive, j.nnodes, j.ncores, j.ngpus);
    deltas.add(j.userid, &j.bank, period, u);
}

/// Re-bins, from the log, the already binned jobs (those no longer
/// pending) of `bank` (or of every bank) recorded before `seq`, for the
/// window of `as_of`. The log is read through `job_times` (integer
/// microseconds, a superset of the window); the exact window test runs on
/// the decoded record, so no result depends on SQLite's reading of JSON
/// numbers.
fn rebin(
    conn: &Connection,
    seq: u64,
    p: &Params,
    as_of: f64,
    bank: Option<&str>,
    buffered: &mut Vec<PendingJob>,
) -> Result<(), Error> {
    // Which jobs are pending is read from the table: write the buffer first.
    store_pending(conn, &std::mem::take(buffered))?;
    match bank {
        Some(b) => conn.prepare_cached("DELETE FROM usage_bins WHERE bank = ?1")?.execute([b])?,
        None => conn.prepare_cached("DELETE FROM usage_bins")?.execute([])?,
    };
    let lo = p.period(as_of) - p.n();
    // After the clock went back, jobs binned by the later update stay binned.
    let to = as_of.max(state_f64(conn, "as_of_high")?.unwrap_or(as_of));
    let from = p.period_start(lo);
    let ignores = bank_ignores(conn)?;
    let mut deltas = Deltas::default();
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.version, e.payload FROM job_times j JOIN events e ON e.seq = j.seq \
         WHERE j.seq < ?1 AND j.t_inactive_us >= ?2 AND j.t_inactive_us <= ?3 ORDER BY j.seq",
    )?;
    // Jobs still pending are binned by the next update, not here.
    let pending: BTreeSet<i64> =
        conn.prepare_cached("SELECT seq FROM usage_pending")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut banks = BankNames::default();
    let (from_us, to_us) = (crate::schema::t_us(from), crate::schema::t_us(to));
    let mut rows = stmt.query(params![seq as i64, from_us, to_us])?;
    while let Some(r) = rows.next()? {
        let job_seq: i64 = r.get(0)?;
        let version = u32::try_from(r.get::<_, i64>(1)?)
            .map_err(|_| Error::Apply { seq, what: format!("event {job_seq}: version out of range") })?;
        // A job record whose payload cannot be read was skipped (and
        // reported) by the replay at its own seq: it has no usage here either.
        let payload = match r.get_ref(2)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b,
            _ => continue,
        };
        let Ok(Some(job)) = PendingJob::decode(job_seq as u64, version, payload, &mut banks) else { continue };
        if job.t_inactive < from || job.t_inactive > to || bank.is_some_and(|b| b != &*job.bank) {
            continue;
        }
        if pending.contains(&job.seq) {
            continue;
        }
        bin_job(p, lo, &ignores, &job, &mut deltas);
    }
    add_bins(conn, &deltas)
}

/// Below this many (userid, bank) pairs, [`recompute`] looks the
/// associations up by index instead of reading them all (either way gives
/// the same values: only the cost differs).
const FEW_ASSOCIATIONS: usize = 1000;

/// Sets `job_usage` of the associations (userid, bank) of `touched` to
/// their decayed usage at period `now` ([`decayed_usage`]), in bulk: a few
/// associations are looked up by index, many are read in one pass (rows
/// whose value does not change are not written, and the others are written
/// by rowid), and when many are touched the window's bins are read in one
/// pass too.
fn recompute(conn: &Connection, p: &Params, now: i64, touched: &BTreeSet<(i64, String)>) -> Result<(), Error> {
    if touched.is_empty() {
        return Ok(());
    }
    // (userid, bank) → the rows (rowid, job_usage) of its associations.
    let mut rows: BTreeMap<(i64, String), Vec<(i64, f64)>> = BTreeMap::new();
    let mut total = usize::MAX;
    if touched.len() >= FEW_ASSOCIATIONS {
        total = 0;
        let mut stmt = conn.prepare_cached("SELECT rowid, userid, bank, job_usage FROM association_table")?;
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            total += 1;
            let key = (r.get::<_, i64>(1)?, r.get::<_, String>(2)?);
            if touched.contains(&key) {
                rows.entry(key).or_default().push((r.get(0)?, r.get(3)?));
            }
        }
    } else {
        // A few: looked up by the (userid, bank) index, not a scan.
        let mut stmt =
            conn.prepare_cached("SELECT rowid, job_usage FROM association_table WHERE userid = ?1 AND bank = ?2")?;
        for key in touched {
            let found = stmt
                .query_map(params![key.0, key.1], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            if !found.is_empty() {
                rows.insert(key.clone(), found);
            }
        }
    }
    let n = p.n();
    let window: Option<BTreeMap<(i64, String), Vec<f64>>> = if touched.len() * 8 >= total {
        let mut w: BTreeMap<(i64, String), Vec<f64>> = BTreeMap::new();
        let mut stmt =
            conn.prepare_cached("SELECT userid, bank, period, value FROM usage_bins WHERE period BETWEEN ?1 AND ?2")?;
        let mut q = stmt.query(params![now - n, now])?;
        while let Some(r) = q.next()? {
            let key = (r.get::<_, i64>(0)?, r.get::<_, String>(1)?);
            if rows.contains_key(&key) {
                let period: i64 = r.get(2)?;
                w.entry(key).or_insert_with(|| vec![0.0; (n + 1) as usize])[(now - period) as usize] = r.get(3)?;
            }
        }
        Some(w)
    } else {
        None
    };
    let mut update = conn.prepare_cached("UPDATE association_table SET job_usage = ?2 WHERE rowid = ?1")?;
    let unused = p.decayed(&vec![0.0; (n + 1) as usize]);
    for (key, assocs) in &rows {
        let v = match &window {
            Some(w) => w.get(key).map_or(unused, |u| p.decayed(u)),
            None => decayed_usage(conn, p, key.0, &key.1, now)?,
        };
        for &(rowid, old) in assocs {
            if old.to_bits() != v.to_bits() {
                update.execute(params![rowid, v])?;
            }
        }
    }
    Ok(())
}

/// Recomputes every bank's `job_usage` as the sum over its subtree of its
/// associations' `job_usage` (active or not). Sums run in name order.
pub fn rollup(conn: &Connection) -> Result<(), Error> {
    let mut banks: Vec<(String, String, f64)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached("SELECT bank, parent_bank, job_usage FROM bank_table ORDER BY bank")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            banks.push(row?);
        }
    }
    let mut own: BTreeMap<String, f64> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached("SELECT bank, job_usage FROM association_table ORDER BY bank, username")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
        for row in rows {
            let (b, u) = row?;
            *own.entry(b).or_insert(0.0) += u;
        }
    }
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (b, parent, _) in &banks {
        if !parent.is_empty() {
            children.entry(parent.as_str()).or_default().push(b.as_str());
        }
    }
    fn total<'a>(
        b: &'a str,
        own: &BTreeMap<String, f64>,
        children: &BTreeMap<&'a str, Vec<&'a str>>,
        memo: &mut BTreeMap<&'a str, f64>,
        depth: usize,
    ) -> f64 {
        if let Some(v) = memo.get(b) {
            return *v;
        }
        let mut t = own.get(b).copied().unwrap_or(0.0);
        if depth < 10_000 {
            for c in children.get(b).map(|v| v.as_slice()).unwrap_or(&[]) {
                t += total(c, own, children, memo, depth + 1);
            }
        }
        memo.insert(b, t);
        t
    }
    let mut memo = BTreeMap::new();
    let mut stmt = conn.prepare_cached("UPDATE bank_table SET job_usage = ?2 WHERE bank = ?1")?;
    for (b, _, old) in &banks {
        let t = total(b, &own, &children, &mut memo, 0);
        if t.to_bits() != old.to_bits() {
            stmt.execute(params![b, t])?;
        }
    }
    conn.prepare_cached("INSERT OR REPLACE INTO projection_meta(key, value) VALUES (?1, 1)")?
        .execute([ROLLUP_EXACT_KEY])?;
    Ok(())
}

/// The `projection_meta` key saying that every bank's `job_usage` is what
/// [`rollup`] would compute: written by a roll-up, removed by every event
/// that may change what it sums ([`forget_rollup`]). While it is there, a
/// usage update rolls up only the banks whose associations it changed and
/// their ancestors ([`rollup_banks`]); without it (an old ledger, a
/// checkpoint, an admin event since), the next update rolls up every bank.
/// `projection_meta` is not part of the canonical state, and the key only
/// chooses between two ways of computing the same values.
const ROLLUP_EXACT_KEY: &str = "bank_rollup_exact";

/// Above this many changed banks (or this deep a bank), [`rollup_banks`]
/// rolls up every bank: one pass costs less than a query per bank.
const MANY_BANKS: usize = 200;

/// Forgets that the banks' `job_usage` are exact (see [`ROLLUP_EXACT_KEY`]).
pub(crate) fn forget_rollup(conn: &Connection) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM projection_meta WHERE key = ?1")?.execute([ROLLUP_EXACT_KEY])?;
    Ok(())
}

/// What [`rollup`] does, for the banks `changed` (those of associations
/// whose `job_usage` may have changed) and their ancestors alone, when the
/// other banks' `job_usage` are known exact: the same sums in the same
/// order (own associations in username order, then the children in name
/// order, an untouched child by its stored total). Falls back to [`rollup`]
/// when they are not known exact or the ancestry has a cycle.
fn rollup_banks(conn: &Connection, changed: &BTreeSet<String>) -> Result<(), Error> {
    let exact = conn
        .prepare_cached("SELECT 1 FROM projection_meta WHERE key = ?1")?
        .query_row([ROLLUP_EXACT_KEY], |_| Ok(()))
        .optional()?
        .is_some();
    if !exact || changed.len() > MANY_BANKS {
        return rollup(conn);
    }
    // The banks to roll up: `changed` and their ancestors (existing banks only).
    let mut parent_of = conn.prepare_cached("SELECT parent_bank FROM bank_table WHERE bank = ?1")?;
    let mut todo: BTreeSet<String> = BTreeSet::new();
    for b in changed {
        let mut chain: BTreeSet<String> = BTreeSet::new();
        let mut at = b.clone();
        loop {
            let Some(parent) = parent_of.query_row([&at], |r| r.get::<_, String>(0)).optional()? else { break };
            if !chain.insert(at.clone()) || chain.len() > MANY_BANKS {
                return rollup(conn);
            }
            if todo.contains(&at) || parent.is_empty() {
                todo.insert(at);
                break;
            }
            todo.insert(at);
            at = parent;
        }
    }
    let mut own_of =
        conn.prepare_cached("SELECT job_usage FROM association_table WHERE bank = ?1 ORDER BY username")?;
    let mut children_of =
        conn.prepare_cached("SELECT bank, job_usage FROM bank_table WHERE parent_bank = ?1 ORDER BY bank")?;
    let mut stored_of = conn.prepare_cached("SELECT job_usage FROM bank_table WHERE bank = ?1")?;
    let mut update = conn.prepare_cached("UPDATE bank_table SET job_usage = ?2 WHERE bank = ?1")?;
    // Children before parents: a bank's total once all of its rolled-up children have theirs.
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    while totals.len() < todo.len() {
        let before = totals.len();
        for b in &todo {
            if totals.contains_key(b) {
                continue;
            }
            let children: Vec<(String, f64)> =
                children_of.query_map([b], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            if children.iter().any(|(c, _)| todo.contains(c) && !totals.contains_key(c)) {
                continue;
            }
            let mut t = 0.0;
            for u in own_of.query_map([b], |r| r.get::<_, f64>(0))? {
                t += u?;
            }
            for (c, stored) in &children {
                t += totals.get(c).copied().unwrap_or(*stored);
            }
            let old: f64 = stored_of.query_row([b], |r| r.get(0))?;
            if t.to_bits() != old.to_bits() {
                update.execute(params![b, t])?;
            }
            totals.insert(b.clone(), t);
        }
        if totals.len() == before {
            return rollup(conn);
        }
    }
    Ok(())
}

fn mark_dirty(conn: &Connection, username: &str, bank: &str) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO usage_dirty(userid, bank) \
         SELECT userid, bank FROM association_table WHERE username = ?1 AND bank = ?2",
    )?
    .execute(params![username, bank])?;
    Ok(())
}

/// Applies a `UsageUpdated`. `buffered` holds pending jobs not yet written
/// to `usage_pending` (see [`crate::apply::Applier`]): they are binned like
/// the stored ones, and those ending after `as_of` stay in it.
pub fn usage_updated(conn: &Connection, seq: u64, as_of: f64, buffered: &mut Vec<PendingJob>) -> Result<(), Error> {
    let p = params(conn)?;
    let prev = last_as_of(conn)?;
    // The clock went back (it had been stepped forward): usage is computed
    // as of this update's own time. Every job is re-binned from the log for
    // its window (jobs a too-late window had dropped come back; those that
    // ended after `as_of` but were binned stay binned, in their periods),
    // and every association is recomputed.
    let went_back = prev.is_some_and(|x| x > as_of);
    if let (true, Some(x)) = (went_back, prev) {
        let high = state_f64(conn, "as_of_high")?.unwrap_or(x).max(x);
        set_state(conn, "as_of_high", high)?;
        rebin(conn, seq, &p, as_of, None, buffered)?;
    }
    let now = p.period(as_of);
    let n = p.n();
    let lo = now - n;
    let ignores = bank_ignores(conn)?;

    // 1. Bin the pending jobs that ended by as_of, stored and buffered, in
    //    (t_inactive, seq) order whichever way they were kept.
    let mut deltas = Deltas::default();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT t_inactive, seq, userid, bank, t_run, nnodes, ncores, ngpus FROM usage_pending \
             WHERE t_inactive <= ?1 ORDER BY t_inactive, seq",
        )?;
        let mut due = stmt.query_map([as_of], PendingJob::from_sql)?.collect::<Result<Vec<_>, _>>()?;
        let order = |a: &PendingJob, b: &PendingJob| a.t_inactive.total_cmp(&b.t_inactive).then(a.seq.cmp(&b.seq));
        // A stable sort takes one pass over a slice already in order.
        buffered.sort_by(order);
        let later = buffered.split_off(buffered.partition_point(|j| j.t_inactive <= as_of));
        let now_due = std::mem::replace(buffered, later);
        if due.is_empty() {
            due = now_due;
        } else if !now_due.is_empty() {
            due.extend(now_due);
            due.sort_by(order);
        }
        for j in &due {
            bin_job(&p, lo, &ignores, j, &mut deltas);
        }
    }
    conn.prepare_cached("DELETE FROM usage_pending WHERE t_inactive <= ?1")?.execute([as_of])?;
    add_bins(conn, &deltas)?;

    // 2. Which associations to recompute.
    let mut touched: BTreeSet<(i64, String)> = deltas.associations().collect();
    {
        let mut stmt = conn.prepare_cached("SELECT userid, bank FROM usage_dirty")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            touched.insert(row?);
        }
    }
    conn.prepare_cached("DELETE FROM usage_dirty")?.execute([])?;
    let recompute_all = went_back || state_f64(conn, "recompute_all")?.unwrap_or(0.0) != 0.0;
    let rollover = prev.map(|x| p.period(x)) != Some(now);
    if recompute_all || rollover {
        let sql = if recompute_all {
            "SELECT DISTINCT userid, bank FROM association_table"
        } else {
            "SELECT DISTINCT userid, bank FROM association_table WHERE job_usage != 0"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            touched.insert(row?);
        }
    }
    if rollover {
        // Periods before the window never count again (unless the clock
        // goes back: then the re-binning above reads them from the log).
        conn.prepare_cached("DELETE FROM usage_bins WHERE period < ?1")?.execute([lo])?;
    }

    // 3. Recompute them, then the banks.
    recompute(conn, &p, now, &touched)?;
    if recompute_all {
        rollup(conn)?;
    } else {
        rollup_banks(conn, &touched.iter().map(|(_, b)| b.clone()).collect())?;
    }
    set_state(conn, "as_of", as_of)?;
    set_state(conn, "recompute_all", 0.0)?;
    Ok(())
}

/// A bank's `ignore_older_than` changed: re-bin its jobs and recompute its
/// associations as of the last update.
fn bank_filter_changed(
    conn: &Connection,
    ctx: &ApplyCtx,
    bank: &str,
    buffered: &mut Vec<PendingJob>,
) -> Result<(), Error> {
    let Some(as_of) = last_as_of(conn)? else {
        return Ok(());
    };
    let p = params(conn)?;
    rebin(conn, ctx.seq, &p, as_of, Some(bank), buffered)?;
    let touched: BTreeSet<(i64, String)> = {
        let mut stmt = conn.prepare_cached("SELECT DISTINCT userid, bank FROM association_table WHERE bank = ?1")?;
        let rows = stmt.query_map([bank], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    recompute(conn, &p, p.period(as_of), &touched)?;
    rollup(conn)
}

/// Writes pending jobs to `usage_pending`.
pub fn store_pending(conn: &Connection, jobs: &[PendingJob]) -> Result<(), Error> {
    crate::schema::insert_many(
        conn,
        "usage_pending(t_inactive, seq, userid, bank, t_run, nnodes, ncores, ngpus)",
        8,
        64,
        jobs,
        |stmt, at, j| {
            let bank: &str = &j.bank;
            let values: [&dyn rusqlite::ToSql; 8] =
                [&j.t_inactive, &j.seq, &j.userid, &bank, &j.t_run, &j.nnodes, &j.ncores, &j.ngpus];
            for (i, v) in values.into_iter().enumerate() {
                stmt.raw_bind_parameter(at + i, v)?;
            }
            Ok(())
        },
    )
}

/// Applies a `UsageImported` (see docs/migration.md): the imported
/// associations get the source's times, `job_usage` and fair-share, and
/// banks their `job_usage`; each association's bins are stored at absolute
/// periods `p(as_of) − k`; the imported jobs already counted in them
/// (ended by the association's `counted_until` and by `as_of`) leave the
/// pending jobs; the next usage update recomputes every association.
pub fn usage_imported(
    conn: &Connection,
    ctx: &ApplyCtx,
    u: &fluxacct_core::events::UsageImported,
    buffered: &mut Vec<PendingJob>,
) -> Result<(), Error> {
    let p = params(conn)?;
    let now = p.period(u.as_of);
    // userid → bank → counted_until.
    let mut counted: BTreeMap<i64, BTreeMap<String, f64>> = BTreeMap::new();
    {
        let mut assoc = conn.prepare_cached(
            "UPDATE association_table SET creation_time = ?3, mod_time = ?4, job_usage = ?5, fairshare = ?6 \
             WHERE username = ?1 AND bank = ?2 RETURNING userid",
        )?;
        let mut bin = conn.prepare_cached(
            "INSERT INTO usage_bins(userid, bank, period, value) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(userid, bank, period) DO UPDATE SET value = excluded.value",
        )?;
        for a in &u.associations {
            let userid: i64 = assoc
                .query_row(params![a.username, a.bank, a.creation_time, a.mod_time, a.job_usage, a.fairshare], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| Error::Apply {
                    seq: ctx.seq,
                    what: format!("no association {} in bank {}", a.username, a.bank),
                })?;
            for (k, v) in a.bins.iter().enumerate() {
                if *v != 0.0 {
                    bin.execute(params![userid, a.bank, now - k as i64, v])?;
                }
            }
            let c = counted.entry(userid).or_default().entry(a.bank.clone()).or_insert(f64::NEG_INFINITY);
            *c = c.max(a.counted_until);
        }
    }
    {
        let mut bank = conn.prepare_cached("UPDATE bank_table SET job_usage = ?2 WHERE bank = ?1")?;
        for b in &u.banks {
            bank.execute(params![b.bank, b.job_usage])?;
        }
    }
    // Jobs already counted by the source leave the pending jobs.
    let is_counted = |j: &PendingJob| {
        counted.get(&j.userid).and_then(|b| b.get(&*j.bank)).is_some_and(|&until| j.t_inactive <= until)
    };
    buffered.retain(|j| !is_counted(j));
    {
        let mut del =
            conn.prepare_cached("DELETE FROM usage_pending WHERE userid = ?1 AND bank = ?2 AND t_inactive <= ?3")?;
        for (userid, banks) in &counted {
            for (bank, until) in banks {
                del.execute(params![userid, bank, until])?;
            }
        }
    }
    conn.prepare_cached("DELETE FROM usage_dirty")?.execute([])?;
    set_state(conn, "as_of", u.as_of)?;
    set_state(conn, "recompute_all", 1.0)
}
