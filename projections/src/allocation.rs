//! Allocations and charges: a projection of the allocation events, the
//! queues' charge factors and `JobRecorded` (docs/allocations.md).
//!
//! * `allocation_table`: one row per allocation ever added (deleted ones
//!   stay, `active` 0), with its allocated and charged milli-units.
//! * `allocation_transactions`: one row per allocation event (added,
//!   deposit, withdrawal, period, policy, deleted), at the event's
//!   recording time: the statements' deposits.
//! * `allocation_charges`: one row per charged job record (its seq), the
//!   allocation it was charged to and the amount.
//! * `queue_charge_factor`: queues whose charge factor is not 1.0.
//! * the view `allocation_balance`: the fixed contract other readers use.
//!
//! A job is charged when its record is applied, with the allocations,
//! bank tree, charge factors and weights as of that seq, so a rebuild and
//! every as-of view reproduce each balance exactly.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::ctx::ApplyCtx;
use crate::error::Error;
use fluxacct_core::allocation::{charge_milli, elapsed_s, JobResources, ResourceWeights, Unit};
use fluxacct_core::events::Event;

/// The allocation projection tables, in creation order.
pub const TABLES: &[&str] =
    &["allocation_table", "allocation_transactions", "allocation_charges", "queue_charge_factor"];

fn missing(ctx: &ApplyCtx, name: &str) -> Error {
    Error::Apply { seq: ctx.seq, what: format!("no allocation named {name}") }
}

fn transaction(conn: &Connection, ctx: &ApplyCtx, name: &str, kind: &str, amount: i64) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO allocation_transactions(seq, allocation, kind, amount_milli, at_s) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ctx.seq as i64, name, kind, amount, ctx.secs()])?;
    Ok(())
}

fn update(conn: &Connection, ctx: &ApplyCtx, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<(), Error> {
    let n = conn.prepare_cached(sql)?.execute(params![name, value])?;
    if n == 0 {
        return Err(missing(ctx, name));
    }
    Ok(())
}

/// Applies the allocation side of an event: the allocation events, and
/// the charge factor of queue events. `JobRecorded` is charged by
/// [`Charger::charge`].
pub fn apply(conn: &Connection, ctx: &ApplyCtx, ev: &Event) -> Result<(), Error> {
    match ev {
        Event::AllocationAdded(a) => {
            conn.prepare_cached(
                "INSERT INTO allocation_table(name, bank, project, unit, allocated_milli, start_s, end_s, exhausted, \
                 added_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                a.name,
                a.bank,
                a.project,
                a.unit,
                a.amount_milli,
                a.start_s,
                a.end_s,
                a.exhausted,
                ctx.seq as i64
            ])?;
            transaction(conn, ctx, &a.name, "added", a.amount_milli)?;
        }
        Event::AllocationDeposited(a) => {
            let sql = "UPDATE allocation_table SET allocated_milli = allocated_milli + ?2 WHERE name = ?1";
            update(conn, ctx, &a.name, sql, &a.amount_milli)?;
            transaction(conn, ctx, &a.name, "deposit", a.amount_milli)?;
        }
        Event::AllocationWithdrawn(a) => {
            let sql = "UPDATE allocation_table SET allocated_milli = allocated_milli - ?2 WHERE name = ?1";
            update(conn, ctx, &a.name, sql, &a.amount_milli)?;
            transaction(conn, ctx, &a.name, "withdrawal", -a.amount_milli)?;
        }
        Event::AllocationPeriodChanged(a) => {
            let n = conn
                .prepare_cached("UPDATE allocation_table SET start_s = ?2, end_s = ?3 WHERE name = ?1")?
                .execute(params![a.name, a.start_s, a.end_s])?;
            if n == 0 {
                return Err(missing(ctx, &a.name));
            }
            transaction(conn, ctx, &a.name, "period", 0)?;
        }
        Event::AllocationPolicySet(a) => {
            update(conn, ctx, &a.name, "UPDATE allocation_table SET exhausted = ?2 WHERE name = ?1", &a.exhausted)?;
            transaction(conn, ctx, &a.name, "policy", 0)?;
        }
        Event::AllocationDeleted(a) => {
            update(conn, ctx, &a.name, "UPDATE allocation_table SET active = ?2 WHERE name = ?1", &0)?;
            transaction(conn, ctx, &a.name, "deleted", 0)?;
        }
        Event::QueueAdded(q) => set_factor(conn, &q.queue, q.charge_factor)?,
        Event::QueueEdited(q) => {
            if q.charge_factor.is_some() {
                set_factor(conn, &q.queue, q.charge_factor)?
            }
        }
        Event::QueueDeleted(q) => set_factor(conn, &q.queue, None)?,
        Event::DbCreated(_)
        | Event::BankAdded(_)
        | Event::BankReactivated(_)
        | Event::BankEdited(_)
        | Event::BankDisabled(_)
        | Event::BankDeleted(_)
        | Event::AssociationAdded(_)
        | Event::AssociationReactivated(_)
        | Event::AssociationEdited(_)
        | Event::AssociationDisabled(_)
        | Event::AssociationDeleted(_)
        | Event::DefaultBankChanged(_)
        | Event::ProjectAdded(_)
        | Event::ProjectDeleted(_)
        | Event::FactorWeightSet(_)
        | Event::ConfigAdded(_)
        | Event::ConfigEdited(_)
        | Event::ConfigDeleted(_)
        | Event::JobRecorded(_)
        | Event::UsageUpdated(_)
        | Event::UsageCleared(_)
        | Event::FairshareUpdated(_)
        | Event::JobsScrubbed(_)
        | Event::BreakAccepted(_)
        | Event::SiteImported(_)
        | Event::UsageImported(_)
        | Event::JobRejected(_)
        | Event::CentreUsageFetched(_) => {}
    }
    Ok(())
}

/// Stores a queue's charge factor (1.0 or none: no row).
fn set_factor(conn: &Connection, queue: &str, factor: Option<f64>) -> Result<(), Error> {
    match factor {
        Some(f) if f != 1.0 => {
            conn.prepare_cached("INSERT OR REPLACE INTO queue_charge_factor(queue, charge_factor) VALUES (?1, ?2)")?
                .execute(params![queue, f])?;
        }
        _ => {
            conn.prepare_cached("DELETE FROM queue_charge_factor WHERE queue = ?1")?.execute([queue])?;
        }
    }
    Ok(())
}

/// The charge factor of queue `queue` (1.0 when it has none).
pub fn charge_factor(conn: &Connection, queue: &str) -> Result<f64, Error> {
    Ok(conn
        .prepare_cached("SELECT charge_factor FROM queue_charge_factor WHERE queue = ?1")?
        .query_row([queue], |r| r.get::<_, f64>(0))
        .optional()?
        .unwrap_or(1.0))
}

/// The weights of the `charge` unit, from `config_table`.
pub fn resource_weights(conn: &Connection) -> Result<ResourceWeights, Error> {
    let get = |key: &str, default: f64| -> Result<f64, Error> {
        let v: Option<String> = conn
            .prepare_cached("SELECT CAST(value AS TEXT) FROM config_table WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(v.and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(default))
    };
    Ok(ResourceWeights { node: get("node_weight", 1.0)?, core: get("core_weight", 0.0)?, gpu: get("gpu_weight", 0.0)? })
}

/// A job record, as charging reads it.
#[derive(Debug, Clone, Copy)]
pub struct ChargeJob<'a> {
    /// Seq of its `JobRecorded`.
    pub seq: u64,
    /// Job id.
    pub id: u64,
    /// Userid.
    pub userid: i64,
    /// Bank.
    pub bank: &'a str,
    /// Project.
    pub project: &'a str,
    /// Queue.
    pub queue: &'a str,
    /// Run time.
    pub t_run: f64,
    /// Inactive time.
    pub t_inactive: f64,
    /// Resources.
    pub res: JobResources,
}

#[derive(Debug, Clone)]
struct Cached {
    name: String,
    bank: String,
    project: Option<String>,
    unit: Unit,
    remaining: i64,
    start_s: i64,
    end_s: i64,
}

#[derive(Debug, Default)]
struct Loaded {
    allocs: Vec<Cached>,
    /// Job bank → the allocations on it or an ancestor (indices into
    /// `allocs`, in their (end, name) order), filled as banks come.
    covering: HashMap<String, Vec<usize>>,
    parents: HashMap<String, String>,
    factors: HashMap<String, f64>,
    weights: ResourceWeights,
}

/// A charge not written yet: (job seq, cached allocation index, job id,
/// userid, t_inactive, amount).
type PendingCharge = (u64, usize, u64, i64, f64, i64);

/// Charges job records, with what it read of the tables kept between jobs
/// (a bulk ingest charges a million in a row) and the charges buffered
/// until [`Charger::flush`] writes them (one row each, and one update of
/// each allocation's total). Any event other than a job record may change
/// what it keeps: flush, then [`Charger::invalidate`].
#[derive(Debug, Default)]
pub struct Charger {
    loaded: Option<Loaded>,
    pending: Vec<PendingCharge>,
}

impl Charger {
    /// Forgets what was read (call [`Charger::flush`] first: buffered
    /// charges are dropped).
    pub fn invalidate(&mut self) {
        self.loaded = None;
        self.pending.clear();
    }

    /// Drops the buffered charge of the job record at `seq` (its apply was
    /// rolled back), giving its amount back to the cached balance.
    pub fn undo(&mut self, seq: u64) {
        if let Some(pos) = self.pending.iter().rposition(|c| c.0 == seq) {
            let (_, i, _, _, _, amount) = self.pending.remove(pos);
            if let Some(a) = self.loaded.as_mut().and_then(|l| l.allocs.get_mut(i)) {
                a.remaining = a.remaining.saturating_add(amount);
            }
        }
    }

    /// Writes the buffered charges: their rows, and each allocation's new total.
    pub fn flush(&mut self, conn: &Connection) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(l) = self.loaded.as_ref() else {
            self.pending.clear();
            return Ok(());
        };
        let mut totals = vec![0i64; l.allocs.len()];
        for &(_, i, _, _, _, amount) in &self.pending {
            totals[i] = totals[i].saturating_add(amount);
        }
        crate::schema::insert_many(
            conn,
            "main.allocation_charges(seq, allocation, jobid, userid, ended_us, amount_milli)",
            6,
            64,
            &self.pending,
            |stmt, at, &(seq, i, id, userid, t_inactive, amount)| {
                stmt.raw_bind_parameter(at, seq as i64)?;
                stmt.raw_bind_parameter(at + 1, l.allocs[i].name.as_str())?;
                stmt.raw_bind_parameter(at + 2, crate::schema::id_key(id))?;
                stmt.raw_bind_parameter(at + 3, userid)?;
                stmt.raw_bind_parameter(at + 4, crate::schema::t_us(t_inactive))?;
                stmt.raw_bind_parameter(at + 5, amount)
            },
        )?;
        let mut stmt =
            conn.prepare_cached("UPDATE allocation_table SET charged_milli = charged_milli + ?2 WHERE name = ?1")?;
        for (a, total) in l.allocs.iter().zip(totals) {
            if total != 0 {
                stmt.execute(params![a.name, total])?;
            }
        }
        self.pending.clear();
        Ok(())
    }

    fn load(conn: &Connection) -> Result<Loaded, Error> {
        let mut stmt = conn.prepare_cached(
            "SELECT name, bank, project, unit, allocated_milli - charged_milli, start_s, end_s FROM allocation_table \
             WHERE active = 1 ORDER BY end_s, name",
        )?;
        let allocs = stmt
            .query_map([], |r| {
                let unit: String = r.get(3)?;
                Ok(Cached {
                    name: r.get(0)?,
                    bank: r.get(1)?,
                    project: r.get(2)?,
                    unit: Unit::parse(&unit).unwrap_or(Unit::Charge),
                    remaining: r.get(4)?,
                    start_s: r.get(5)?,
                    end_s: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if allocs.is_empty() {
            return Ok(Loaded::default());
        }
        let parents = conn
            .prepare_cached("SELECT bank, parent_bank FROM bank_table")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        let factors = conn
            .prepare_cached("SELECT queue, charge_factor FROM queue_charge_factor")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(Loaded { allocs, covering: HashMap::new(), parents, factors, weights: resource_weights(conn)? })
    }

    /// Charges one job record: to the covering allocation (its bank or an
    /// ancestor, its project or any, the job's end within the period) that
    /// has a balance left and ends first; if none has a balance left, to
    /// the one that ends first. A job that costs nothing in an
    /// allocation's unit is not charged to it.
    pub fn charge(&mut self, conn: &Connection, j: &ChargeJob<'_>) -> Result<(), Error> {
        if self.loaded.is_none() {
            self.loaded = Some(Charger::load(conn)?);
        }
        let Some(l) = self.loaded.as_mut() else { return Ok(()) };
        if l.allocs.is_empty() || j.bank.is_empty() {
            return Ok(());
        }
        if !l.covering.contains_key(j.bank) {
            let mut banks: Vec<&str> = vec![j.bank];
            while let Some(p) = l.parents.get(*banks.last().unwrap_or(&"")) {
                if p.is_empty() || banks.len() > 64 || banks.contains(&p.as_str()) {
                    break;
                }
                banks.push(p);
            }
            let idx: Vec<usize> = (0..l.allocs.len()).filter(|&i| banks.contains(&l.allocs[i].bank.as_str())).collect();
            l.covering.insert(j.bank.to_string(), idx);
        }
        let Some(idx) = l.covering.get(j.bank) else { return Ok(()) };
        if idx.is_empty() {
            return Ok(());
        }
        let factor = if l.factors.is_empty() { 1.0 } else { l.factors.get(j.queue).copied().unwrap_or(1.0) };
        let seconds = elapsed_s(j.t_run, j.t_inactive);
        let mut best: Option<(bool, usize, i64)> = None;
        for &i in idx {
            let a = &l.allocs[i];
            if a.project.as_deref().is_some_and(|p| p != j.project)
                || j.t_inactive < a.start_s as f64
                || j.t_inactive >= a.end_s as f64
            {
                continue;
            }
            let amount = charge_milli(a.unit, l.weights, factor, j.res, seconds);
            if amount == 0 {
                continue;
            }
            // Allocations are in (end_s, name) order: the first with a
            // balance wins, else the first of all.
            let spent = a.remaining <= 0;
            match best {
                None => best = Some((spent, i, amount)),
                Some((true, _, _)) if !spent => best = Some((spent, i, amount)),
                _ => {}
            }
            if !spent {
                break;
            }
        }
        let Some((_, i, amount)) = best else { return Ok(()) };
        let a = &mut l.allocs[i];
        a.remaining = a.remaining.saturating_sub(amount);
        self.pending.push((j.seq, i, j.id, j.userid, j.t_inactive, amount));
        Ok(())
    }
}

/// One allocation as `allocation_balance` shows it, with its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRow {
    /// Name.
    pub name: String,
    /// Bank.
    pub bank: String,
    /// Project, if limited to one.
    pub project: Option<String>,
    /// Unit name.
    pub unit: String,
    /// Allocated (all deposits − withdrawals), milli-units.
    pub allocated_milli: i64,
    /// Charged, milli-units.
    pub charged_milli: i64,
    /// Reserved by liens the ledger knows of (0: liens live in the plugin).
    pub reserved_milli: i64,
    /// allocated − charged − reserved.
    pub remaining_milli: i64,
    /// Period start.
    pub start_s: i64,
    /// Period end (exclusive).
    pub end_s: i64,
    /// False once deleted.
    pub active: bool,
    /// Own exhausted policy, if any.
    pub exhausted: Option<String>,
}

const ROW_SQL: &str =
    "SELECT b.name, b.bank, b.project, b.unit, b.allocated_milli, b.charged_milli, b.reserved_milli, \
    b.remaining_milli, b.start_s, b.end_s, b.active, t.exhausted FROM allocation_balance b \
    JOIN allocation_table t ON t.name = b.name";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AllocationRow> {
    Ok(AllocationRow {
        name: r.get(0)?,
        bank: r.get(1)?,
        project: r.get(2)?,
        unit: r.get(3)?,
        allocated_milli: r.get(4)?,
        charged_milli: r.get(5)?,
        reserved_milli: r.get(6)?,
        remaining_milli: r.get(7)?,
        start_s: r.get(8)?,
        end_s: r.get(9)?,
        active: r.get::<_, i64>(10)? != 0,
        exhausted: r.get(11)?,
    })
}

/// Every allocation (deleted ones too), in name order.
pub fn allocations(conn: &Connection) -> Result<Vec<AllocationRow>, Error> {
    let sql = format!("{ROW_SQL} ORDER BY b.name");
    let rows = conn.prepare_cached(&sql)?.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The allocation named `name`.
pub fn allocation(conn: &Connection, name: &str) -> Result<Option<AllocationRow>, Error> {
    let sql = format!("{ROW_SQL} WHERE b.name = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([name], row).optional()?)
}

/// A window bound in epoch seconds as `ended_us` compares it: microseconds
/// (`crate::schema::t_us`), the infinities as the ends of i64.
fn bound_us(t: f64) -> i64 {
    if t == f64::NEG_INFINITY {
        i64::MIN
    } else if t == f64::INFINITY {
        i64::MAX
    } else {
        crate::schema::t_us(t)
    }
}

/// One charge: a job record charged to an allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRow {
    /// Seq of the job's `JobRecorded`.
    pub seq: i64,
    /// Allocation.
    pub allocation: String,
    /// Job id.
    pub jobid: u64,
    /// Userid.
    pub userid: i64,
    /// When the job ended (epoch seconds, to the microsecond).
    pub t_inactive: f64,
    /// Amount, milli-units.
    pub amount_milli: i64,
}

fn charge_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChargeRow> {
    Ok(ChargeRow {
        seq: r.get(0)?,
        allocation: r.get(1)?,
        jobid: r.get::<_, i64>(2)? as u64,
        userid: r.get(3)?,
        t_inactive: r.get::<_, i64>(4)? as f64 / 1e6,
        amount_milli: r.get(5)?,
    })
}

/// The charges of allocation `name` of jobs that ended in [`from`, `to`),
/// in (end time, seq) order.
pub fn charges(conn: &Connection, name: &str, from: f64, to: f64) -> Result<Vec<ChargeRow>, Error> {
    let rows = conn
        .prepare_cached(
            "SELECT seq, allocation, jobid, userid, ended_us, amount_milli FROM allocation_charges \
             WHERE allocation = ?1 AND ended_us >= ?2 AND ended_us < ?3 ORDER BY ended_us, seq",
        )?
        .query_map(params![name, bound_us(from), bound_us(to)], charge_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The charge of the job record at `seq`, if it was charged.
pub fn charge_of(conn: &Connection, seq: i64) -> Result<Option<ChargeRow>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, allocation, jobid, userid, ended_us, amount_milli FROM allocation_charges WHERE seq = ?1",
        )?
        .query_row([seq], charge_row)
        .optional()?)
}

/// One allocation event as the statement lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// Seq of the event.
    pub seq: i64,
    /// `added`, `deposit`, `withdrawal`, `period`, `policy`, `deleted`.
    pub kind: String,
    /// Signed amount, milli-units (0 for those that move none).
    pub amount_milli: i64,
    /// When it was recorded (epoch seconds).
    pub at_s: i64,
}

/// Charges of one user in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCharges {
    /// Userid.
    pub userid: i64,
    /// User name (from the associations; "" if none has this uid).
    pub username: String,
    /// Number of jobs.
    pub jobs: i64,
    /// Sum, milli-units.
    pub amount_milli: i64,
}

/// A statement of an allocation over [`from`, `to`) (Gold's
/// `gstatement`): opening balance, the allocation events, the charges per
/// user, closing balance. closing = opening + Σ transactions − Σ charges,
/// exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The allocation.
    pub allocation: AllocationRow,
    /// Window start (epoch seconds; `f64::NEG_INFINITY` for none).
    pub from: f64,
    /// Window end (`f64::INFINITY` for none).
    pub to: f64,
    /// Balance before the window.
    pub opening_milli: i64,
    /// Allocation events in the window.
    pub transactions: Vec<TransactionRow>,
    /// Σ of their amounts.
    pub transactions_milli: i64,
    /// Charges per user (uid order).
    pub users: Vec<UserCharges>,
    /// Σ of charges in the window.
    pub charged_milli: i64,
    /// Liens the ledger knows of (always 0: liens are the plugin's).
    pub liens_milli: i64,
    /// Balance at the end of the window.
    pub closing_milli: i64,
}

/// The statement of allocation `name` over [`from`, `to`): events by the
/// time they were recorded, charges by the time the job ended.
pub fn statement(conn: &Connection, name: &str, from: f64, to: f64) -> Result<Option<Statement>, Error> {
    let Some(allocation) = allocation(conn, name)? else { return Ok(None) };
    let sum = |sql: &str, a: f64, b: f64| -> Result<i64, Error> {
        Ok(conn.prepare_cached(sql)?.query_row(params![name, a, b], |r| r.get::<_, i64>(0))?)
    };
    let tx_sql = "SELECT coalesce(sum(amount_milli), 0) FROM allocation_transactions \
                  WHERE allocation = ?1 AND at_s >= ?2 AND at_s < ?3";
    let ch_sql = "SELECT coalesce(sum(amount_milli), 0) FROM allocation_charges \
                  WHERE allocation = ?1 AND ended_us >= ?2 AND ended_us < ?3";
    let opening_milli = if from == f64::NEG_INFINITY {
        0
    } else {
        let charged: i64 =
            conn.prepare_cached(ch_sql)?.query_row(params![name, i64::MIN, bound_us(from)], |r| r.get(0))?;
        sum(tx_sql, f64::NEG_INFINITY, from)? - charged
    };
    let transactions = conn
        .prepare_cached(
            "SELECT seq, kind, amount_milli, at_s FROM allocation_transactions \
             WHERE allocation = ?1 AND at_s >= ?2 AND at_s < ?3 ORDER BY seq",
        )?
        .query_map(params![name, from, to], |r| {
            Ok(TransactionRow { seq: r.get(0)?, kind: r.get(1)?, amount_milli: r.get(2)?, at_s: r.get(3)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let transactions_milli = transactions.iter().map(|t| t.amount_milli).sum();
    // One pass over the charges (a table in seq order, without a secondary
    // index: each job record charged costs one appended row, no index
    // insert), summed here: no sort of the window's rows.
    let mut per_user: std::collections::BTreeMap<i64, (i64, i64)> = std::collections::BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT userid, amount_milli FROM allocation_charges WHERE allocation = ?1 AND ended_us >= ?2 AND ended_us < ?3",
        )?;
        let mut rows = stmt.query(params![name, bound_us(from), bound_us(to)])?;
        while let Some(r) = rows.next()? {
            let e = per_user.entry(r.get(0)?).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(r.get(1)?);
        }
    }
    let mut users: Vec<UserCharges> = per_user
        .into_iter()
        .map(|(userid, (jobs, amount_milli))| UserCharges { userid, username: String::new(), jobs, amount_milli })
        .collect();
    let mut uname =
        conn.prepare_cached("SELECT username FROM association_table WHERE userid = ?1 ORDER BY bank LIMIT 1")?;
    for u in &mut users {
        u.username = uname.query_row([u.userid], |r| r.get(0)).optional()?.unwrap_or_default();
    }
    let charged_milli = users.iter().map(|u| u.amount_milli).sum();
    let closing_milli = opening_milli + transactions_milli - charged_milli;
    Ok(Some(Statement {
        allocation,
        from,
        to,
        opening_milli,
        transactions,
        transactions_milli,
        users,
        charged_milli,
        liens_milli: 0,
        closing_milli,
    }))
}
