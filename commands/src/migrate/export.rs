//! The ledger's state in flux-accounting's own formats: one CSV file per
//! flux-accounting 0.60 table, and the bank/association hierarchy that
//! `fairshare-emulate` reads.

use std::path::{Path, PathBuf};

use projections::model::State;
use rusqlite::types::ValueRef;
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};

/// The tables flux-accounting 0.60 creates, in its `sqlite_master` order.
pub const TABLES: &[&str] = &[
    "association_table",
    "bank_table",
    "sqlite_sequence",
    "job_usage_factor_table",
    "t_half_life_period_table",
    "queue_table",
    "project_table",
    "jobs",
    "priority_factor_weight_table",
    "config_table",
    "job_usage_per_association_table",
];

/// A float as Python's `repr` writes it (`0.0`, `1.5`, `1e-05`, `1e+16`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Shortest round-trip digits and exponent.
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

fn cell(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => py_float(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

/// `jobs` as flux-accounting has it. The id is the record's own JSON
/// number (`->`), exact for every id: SQLite's JSON reader gives ids from
/// 2^63 up as floats. `?1` is the seqs of unreadable records to leave out
/// ([`crate::db::without_unreadable_jobs`]).
const JOBS_SQL: &str =
    "SELECT (SELECT CAST(e.payload AS TEXT) -> '$.id' FROM events e WHERE e.seq = jobs.seq) AS id, userid, \
     t_submit, t_run, t_inactive, ranks, coalesce(R, '') AS R, \
     json_object('attributes', json_object('system', json_object('bank', bank, 'project', project, \
     'queue', queue, 'duration', requested_duration))) AS jobspec, project, bank, requested_duration, \
     actual_duration FROM jobs WHERE (?1 IS NULL OR seq NOT IN (SELECT value FROM json_each(?1))) ORDER BY seq";

/// Header and rows of flux-accounting table `table`, from the projections.
/// Job records that are not readable JSON are named on stderr (by seq)
/// and left out.
pub fn table_rows(ctx: &Context, state: &State<'_>, table: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let conn = state.conn();
    let sql = match table {
        "association_table" => {
            "SELECT creation_time, mod_time, active, username, userid, bank, default_bank, shares, job_usage, \
             fairshare, max_running_jobs, max_active_jobs, max_nodes, max_cores, queues, projects, default_project, \
             max_sched_jobs FROM association_table ORDER BY rowid"
        }
        "bank_table" => {
            "SELECT bank_id, bank, active, parent_bank, shares, job_usage, priority, ignore_older_than \
             FROM bank_table ORDER BY bank_id"
        }
        "sqlite_sequence" => {
            "SELECT 'project_table' AS name, max(project_id) AS seq FROM project_table \
             UNION ALL SELECT 'bank_table', max(bank_id) FROM bank_table HAVING count(*) > 0"
        }
        "queue_table" => {
            "SELECT queue, min_nodes_per_job, max_nodes_per_job, max_time_per_job, priority, max_running_jobs, \
             max_nodes_per_assoc, max_sched_jobs, max_sched_nodes_per_assoc, max_sched_cores_per_assoc \
             FROM queue_table ORDER BY rowid"
        }
        "project_table" => "SELECT project_id, project, usage FROM project_table ORDER BY project_id",
        "jobs" => {
            return crate::db::without_unreadable_jobs(ctx, conn, |skip| {
                let mut stmt = conn.prepare(JOBS_SQL)?;
                let q = stmt.query([skip])?;
                collect(q)
            })
        }
        "priority_factor_weight_table" => "SELECT factor, weight FROM priority_factor_weight_table ORDER BY rowid",
        "config_table" => "SELECT key, value FROM config_table ORDER BY rowid",
        "job_usage_factor_table" => return usage_factor_rows(ctx, state),
        "t_half_life_period_table" => {
            let p = projections::usage::params(conn)?;
            let end = match projections::usage::last_as_of(conn)? {
                Some(a) => p.period_start(p.period(a)),
                None => p.t0 + p.half_life,
            };
            return Ok((
                vec!["cluster".into(), "end_half_life_period".into()],
                vec![vec!["cluster".into(), py_float(end)]],
            ));
        }
        "job_usage_per_association_table" => return per_association_rows(state),
        other => return Err(Error::invalid(format!("export-db: unknown table {other}"))),
    };
    let mut stmt = conn.prepare(sql)?;
    let q = stmt.query([])?;
    collect(q)
}

/// The column names and every row of a query, as CSV cells.
fn collect(mut q: rusqlite::Rows<'_>) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let header: Vec<String> = match q.as_ref() {
        Some(stmt) => stmt.column_names().iter().map(|s| s.to_string()).collect(),
        None => Vec::new(),
    };
    let n = header.len();
    let mut rows = Vec::new();
    while let Some(r) = q.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(cell(r.get_ref(i)?));
        }
        rows.push(row);
    }
    Ok((header, rows))
}

/// `job_usage_factor_table`: one row per association; `last_job_timestamp`
/// is the newest `t_inactive` of its (userid, bank) jobs binned by the last
/// usage update.
fn usage_factor_rows(ctx: &Context, state: &State<'_>) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let conn = state.conn();
    let as_of = projections::usage::last_as_of(conn)?;
    type Last = std::collections::BTreeMap<(i64, String), f64>;
    let last: Last = match as_of {
        Some(a) => crate::db::without_unreadable_jobs(ctx, conn, |skip| {
            let mut last = Last::new();
            let mut stmt = conn.prepare(
                "SELECT userid, bank, max(t_inactive) FROM jobs WHERE (?2 IS NULL OR seq NOT IN \
                 (SELECT value FROM json_each(?2))) AND t_inactive <= ?1 AND bank != '' GROUP BY userid, bank",
            )?;
            let rows = stmt.query_map(rusqlite::params![a, skip], |r| {
                Ok(((r.get::<_, i64>(0)?, r.get::<_, String>(1)?), r.get::<_, f64>(2)?))
            })?;
            for row in rows {
                let (k, v) = row?;
                last.insert(k, v);
            }
            Ok(last)
        })?,
        None => Last::new(),
    };
    let header = ["username", "userid", "bank", "last_job_timestamp"].map(String::from).to_vec();
    let mut rows = Vec::new();
    for a in state.associations()? {
        let t = last.get(&(a.userid, a.bank.clone())).copied().unwrap_or(0.0);
        rows.push(vec![a.username, a.userid.to_string(), a.bank, py_float(t)]);
    }
    Ok((header, rows))
}

/// `job_usage_per_association_table`: flux-accounting's N bins per
/// association (period 0 = current), holding decayed values `D^k · U_k`.
fn per_association_rows(state: &State<'_>) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let conn = state.conn();
    let p = projections::usage::params(conn)?;
    let header = ["username", "userid", "bank", "period", "value"].map(String::from).to_vec();
    let mut rows = Vec::new();
    for a in state.associations()? {
        let u = projections::usage::period_usage(conn, a.userid, &a.bank)?;
        let mut f = 1.0;
        for (k, x) in u.iter().take(p.n() as usize).enumerate() {
            rows.push(vec![a.username.clone(), a.userid.to_string(), a.bank.clone(), k.to_string(), py_float(f * x)]);
            f *= p.decay;
        }
    }
    Ok((header, rows))
}

/// Writes `<table>.csv` for every table into `dir`; returns the paths.
pub fn write_csvs(ctx: &Context, state: &State<'_>, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for t in TABLES {
        let (header, rows) = table_rows(ctx, state, t)?;
        let path = dir.join(format!("{t}.csv"));
        let io = |e: csv::Error| Error::io_msg(format!("{}: {e}", path.display()));
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_path(&path).map_err(io)?;
        w.write_record(&header).map_err(io)?;
        for r in &rows {
            w.write_record(r).map_err(io)?;
        }
        w.flush().map_err(|e| Error::io_msg(format!("{}: {e}", path.display())))?;
        out.push(path);
    }
    Ok(out)
}

/// A node of the `-F` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Node {
    /// A bank.
    Bank {
        /// Name.
        bank: String,
        /// Shares.
        shares: i64,
        /// `bank_table.job_usage`.
        usage: f64,
        /// Written only when false: a disabled bank, which `fairshare-emulate`
        /// leaves out as `update-fshare` does.
        #[serde(skip_serializing_if = "is_true")]
        active: bool,
        /// Its associations, then its sub-banks.
        children: Vec<Node>,
    },
    /// An association.
    User {
        /// User name.
        username: String,
        /// Shares.
        shares: i64,
        /// `job_usage`.
        usage: f64,
        /// Written only when false: a disabled association, or one of a
        /// bank that has sub-banks (whose own associations fair-share
        /// ignores); `fairshare-emulate` leaves it out as `update-fshare`
        /// does.
        #[serde(skip_serializing_if = "is_true")]
        active: bool,
    },
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The root of the `-F` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hierarchy {
    /// The root bank.
    pub root: Node,
}

/// Pure: the hierarchy of every bank and association (active or not):
/// each bank's children are its associations, then its sub-banks, in table
/// order. Rows that the ledger's fair-share leaves out (disabled banks and
/// associations, associations of a bank with sub-banks) say
/// `"active": false`, so that `fairshare-emulate` agrees with
/// `update-fshare`.
pub fn hierarchy(state: &State<'_>) -> Result<Hierarchy> {
    let banks = state.banks()?;
    let assocs = state.associations()?;
    let Some(root) = banks.iter().find(|b| b.parent_bank.is_empty()) else {
        return Err(Error::invalid("No root bank found in database"));
    };
    fn node(
        b: &projections::model::Bank,
        banks: &[projections::model::Bank],
        assocs: &[projections::model::Association],
        depth: usize,
    ) -> Node {
        let has_sub_banks = banks.iter().any(|s| s.parent_bank == b.bank && s.bank != b.bank);
        let mut children: Vec<Node> = assocs
            .iter()
            .filter(|a| a.bank == b.bank)
            .map(|a| Node::User {
                username: a.username.clone(),
                shares: a.shares,
                usage: a.job_usage,
                active: a.active != 0 && !has_sub_banks,
            })
            .collect();
        if depth < 10_000 {
            for s in banks.iter().filter(|s| s.parent_bank == b.bank && s.bank != b.bank) {
                children.push(node(s, banks, assocs, depth + 1));
            }
        }
        Node::Bank { bank: b.bank.clone(), shares: b.shares, usage: b.job_usage, active: b.active != 0, children }
    }
    Ok(Hierarchy { root: node(root, &banks, &assocs, 0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn floats_are_written_as_python_repr() {
        for (x, s) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456.789, "123456.789"),
            (-2.5, "-2.5"),
            (1.5e300, "1.5e+300"),
            (2419200.0, "2419200.0"),
        ] {
            assert_eq!(py_float(x), s, "{x}");
        }
    }

    #[test]
    fn hierarchy_lists_associations_then_sub_banks() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
        ]);
        let h = hierarchy(&g.state()).unwrap();
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["root"]["bank"], "root");
        assert_eq!(v["root"]["children"][0]["bank"], "A");
        assert_eq!(v["root"]["children"][0]["children"][0]["username"], "u");
        assert_eq!(v["root"]["children"][1]["bank"], "B");
        let text = serde_json::to_string_pretty(&h).unwrap();
        assert!(
            text.starts_with("{\n  \"root\": {\n    \"bank\": \"root\",\n    \"shares\": 1,\n    \"usage\": 0.0,"),
            "{text}"
        );
    }

    #[test]
    fn no_root_bank_is_an_error() {
        let g = given(&[]);
        assert_eq!(hierarchy(&g.state()).unwrap_err().to_string(), "No root bank found in database");
    }
}
