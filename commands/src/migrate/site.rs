//! The site of a flux-accounting database as `import-db` carries it over:
//! config, factors, projects, queues, banks and associations with their
//! usage, read from any released schema.

use std::collections::{BTreeMap, BTreeSet};

use fluxacct_core::events::*;
use fluxacct_core::limits::INTEGER_MAX;
use projections::apply::DEFAULT_FACTORS;

use super::source::{self as fa, Row, SourceDb};
use crate::error::{Error, Result};

/// flux-accounting's config keys at creation, with their default values.
pub const DEFAULT_CONFIG: &[(&str, &str)] = &[
    ("priority_usage_reset_period", "2419200"),
    ("priority_decay_half_life", "604800"),
    ("decay_factor", "0.5"),
    ("node_weight", "1.0"),
    ("core_weight", "0.0"),
    ("gpu_weight", "0.0"),
    ("deny_unknown_queues", "false"),
];

/// One imported bank (in an order where parents come first).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteBank {
    /// The bank as added.
    pub added: BankAdded,
    /// Its `active` flag.
    pub active: bool,
    /// Its `job_usage`.
    pub job_usage: f64,
}

/// One imported association.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteAssociation {
    /// The association as added.
    pub added: AssociationAdded,
    /// Its `active` flag.
    pub active: bool,
    /// Carried state.
    pub carried: ImportedAssociation,
}

/// Everything of a flux-accounting site except its job records, as read
/// from the source with flux-accounting's defaults for what its schema
/// lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The source's schema version.
    pub schema_version: i64,
    /// The usage configuration (genesis), anchored as docs/migration.md says.
    pub genesis: DbCreated,
    /// The carried usage's as-of time.
    pub as_of: f64,
    /// The source's `end_half_life_period` (0 if none).
    pub end_half_life_period: f64,
    /// config_table rows, in source order.
    pub config: Vec<(String, String)>,
    /// priority_factor_weight_table rows, in source order.
    pub factors: Vec<(String, i64)>,
    /// Projects other than `*`, in source order.
    pub projects: Vec<String>,
    /// Queues, in source order.
    pub queues: Vec<QueueAdded>,
    /// Banks, parents first.
    pub banks: Vec<SiteBank>,
    /// Associations, in source order.
    pub associations: Vec<SiteAssociation>,
    /// One line per kind of defaulted value.
    pub defaulted: Vec<String>,
}

fn missing_columns(have: &[String], want: &[(&str, &str)]) -> Vec<String> {
    want.iter().filter(|(c, _)| !have.iter().any(|h| h == c)).map(|(c, d)| format!("{c} = {d}")).collect()
}

/// Reads the site (everything but job rows) from the source; `now` is the
/// import time (seconds), used only when the source has no
/// `end_half_life_period`.
pub fn read_site(db: &SourceDb, now: f64) -> Result<Site> {
    let conn = db.conn();
    let mut defaulted = Vec::new();

    // config_table (v0.58+).
    let config: Vec<(String, String)> = match fa::rows(conn, "config_table", &["key"])? {
        Some(rows) => {
            let mut v = Vec::new();
            for r in rows {
                v.push((r.text("key")?, r.text("value")?));
            }
            let missing: Vec<String> = DEFAULT_CONFIG
                .iter()
                .filter(|(k, _)| !v.iter().any(|(key, _)| key == k))
                .map(|(k, d)| format!("{k} = {d}"))
                .collect();
            if !missing.is_empty() {
                defaulted.push(format!("config_table: keys not in the source, defaulted: {}", missing.join(", ")));
            }
            v
        }
        None => {
            let all: Vec<String> = DEFAULT_CONFIG.iter().map(|(k, d)| format!("{k} = {d}")).collect();
            defaulted.push(format!("config_table: not in this schema, defaulted: {}", all.join(", ")));
            Vec::new()
        }
    };
    let cfg = |k: &str| config.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let bad_cfg =
        |k: &str, v: &str| Error::invalid(format!("import-db: config_table row (key={k}): invalid value {v:?}"));
    let dur = |k: &str, d: f64| -> Result<f64> {
        match cfg(k) {
            None => Ok(d),
            Some(v) => projections::usage::parse_config_duration(v).ok_or_else(|| bad_cfg(k, v)),
        }
    };
    let num = |k: &str, d: f64| -> Result<f64> {
        match cfg(k) {
            None => Ok(d),
            Some(v) => v.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad_cfg(k, v)),
        }
    };
    let half_life = dur("priority_decay_half_life", 604800.0)?;
    let reset = dur("priority_usage_reset_period", 2419200.0)?;
    let decay = num("decay_factor", 0.5)?;
    if !(decay > 0.0 && decay < 1.0) {
        return Err(bad_cfg("decay_factor", cfg("decay_factor").unwrap_or("")));
    }
    let (node_weight, core_weight, gpu_weight) =
        (num("node_weight", 1.0)?, num("core_weight", 0.0)?, num("gpu_weight", 0.0)?);

    // Periods: the source's current period is [E, E + H) once it has
    // rolled over, [E − H, E + H) before: anchor T0 so that the import
    // time falls in period 0 (docs/migration.md).
    let end = fa::end_half_life_period(conn)?;
    let t0 = match end {
        Some(e) if now >= e => e,
        Some(e) => e - half_life,
        None => {
            defaulted.push(
                "t_half_life_period_table: no end_half_life_period, usage periods anchored at the import time".into(),
            );
            now
        }
    };
    let genesis = DbCreated {
        format: 1,
        t0,
        priority_decay_half_life: half_life,
        priority_usage_reset_period: reset,
        decay_factor: decay,
        node_weight,
        core_weight,
        gpu_weight,
    };

    // priority_factor_weight_table (v0.47+).
    let factors = match fa::rows(conn, "priority_factor_weight_table", &["factor"])? {
        Some(rows) => rows.iter().map(|r| Ok((r.text("factor")?, r.int("weight")?))).collect::<Result<Vec<_>>>()?,
        None => {
            let all: Vec<String> = DEFAULT_FACTORS.iter().map(|(f, w)| format!("{f} = {w}")).collect();
            defaulted.push(format!("priority_factor_weight_table: not in this schema, defaulted: {}", all.join(", ")));
            Vec::new()
        }
    };

    // project_table (v0.25+).
    let mut projects = Vec::new();
    match fa::rows(conn, "project_table", &["project"])? {
        Some(rows) => {
            let mut seen = BTreeSet::from(["*".to_string()]);
            for r in rows {
                let p = r.text("project")?;
                if p == "*" {
                    continue;
                }
                if !seen.insert(p.clone()) {
                    return Err(Error::invalid(format!(
                        "import-db: project_table row {} (project={p}): duplicate project",
                        r.n
                    )));
                }
                projects.push(p);
            }
        }
        None => defaulted.push("project_table: not in this schema, only project * exists".into()),
    }

    // queue_table (v0.12+).
    let mut queues = Vec::new();
    let queue_defaults: &[(&str, &str)] = &[
        ("min_nodes_per_job", "1"),
        ("max_nodes_per_job", "1"),
        ("max_time_per_job", "60"),
        ("priority", "0"),
        ("max_running_jobs", "100"),
        ("max_nodes_per_assoc", "2147483647"),
        ("max_sched_jobs", "2147483647"),
        ("max_sched_nodes_per_assoc", "2147483647"),
        ("max_sched_cores_per_assoc", "2147483647"),
        ("max_nodes", "2147483647"),
        ("max_cores", "2147483647"),
    ];
    match fa::rows(conn, "queue_table", &["queue"])? {
        Some(rows) => {
            let missing = missing_columns(&fa::columns(conn, "queue_table")?, queue_defaults);
            if !missing.is_empty() && !rows.is_empty() {
                defaulted.push(format!("queue_table: columns not in this schema, defaulted: {}", missing.join(", ")));
            }
            let mut seen = BTreeSet::new();
            for r in rows {
                let d = QueueAdded::with_defaults(r.text("queue")?);
                if !seen.insert(d.queue.clone()) {
                    return Err(r_err(&r, "duplicate queue"));
                }
                let l = d.limits;
                queues.push(QueueAdded {
                    limits: fluxacct_core::queue::QueueLimits {
                        min_nodes_per_job: r.int_or("min_nodes_per_job", l.min_nodes_per_job)?,
                        max_nodes_per_job: r.int_or("max_nodes_per_job", l.max_nodes_per_job)?,
                        max_time_per_job: r.int_or("max_time_per_job", l.max_time_per_job)?,
                        priority: r.int_or("priority", l.priority)?,
                        max_running_jobs: r.int_or("max_running_jobs", l.max_running_jobs)?,
                        max_nodes_per_assoc: r.int_or("max_nodes_per_assoc", l.max_nodes_per_assoc)?,
                        max_sched_jobs: r.int_or("max_sched_jobs", l.max_sched_jobs)?,
                        max_sched_nodes_per_assoc: r
                            .int_or("max_sched_nodes_per_assoc", l.max_sched_nodes_per_assoc)?,
                        max_sched_cores_per_assoc: r
                            .int_or("max_sched_cores_per_assoc", l.max_sched_cores_per_assoc)?,
                    },
                    max_nodes: r.int_or("max_nodes", d.max_nodes)?,
                    max_cores: r.int_or("max_cores", d.max_cores)?,
                    charge_factor: None,
                    queue: d.queue,
                });
            }
        }
        None => defaulted.push("queue_table: not in this schema, no queues".into()),
    }

    let banks = read_banks(conn, &mut defaulted)?;
    let associations = read_associations(conn, &genesis, &banks, &mut defaulted)?;
    if fa::columns(conn, "jobs")?.is_empty() {
        defaulted.push("jobs: not in this schema, no job records".into());
    } else {
        let missing = missing_columns(
            &fa::columns(conn, "jobs")?,
            &[("project", "''"), ("bank", "''"), ("requested_duration", "0.0")],
        );
        if !missing.is_empty() {
            defaulted.push(format!(
                "jobs: columns not in this schema, taken from each jobspec or defaulted: {}",
                missing.join(", ")
            ));
        }
    }
    Ok(Site {
        schema_version: db.user_version,
        genesis,
        as_of: t0,
        end_half_life_period: end.unwrap_or(0.0),
        config,
        factors,
        projects,
        queues,
        banks,
        associations,
        defaulted,
    })
}

pub(super) fn r_err(r: &Row, what: &str) -> Error {
    let label = if r.label.is_empty() { String::new() } else { format!(" ({})", r.label) };
    Error::invalid(format!("import-db: {} row {}{label}: {what}", r.table, r.n))
}

fn read_banks(conn: &rusqlite::Connection, defaulted: &mut Vec<String>) -> Result<Vec<SiteBank>> {
    let rows = fa::rows(conn, "bank_table", &["bank"])?.unwrap_or_default();
    let missing = missing_columns(
        &fa::columns(conn, "bank_table")?,
        &[("active", "1"), ("job_usage", "0.0"), ("priority", "0.0"), ("ignore_older_than", "0")],
    );
    if !missing.is_empty() && !rows.is_empty() {
        defaulted.push(format!("bank_table: columns not in this schema, defaulted: {}", missing.join(", ")));
    }
    let mut read = Vec::new();
    let mut names = BTreeSet::new();
    let mut root: Option<String> = None;
    for r in &rows {
        let bank = r.text("bank")?;
        if bank.is_empty() {
            return Err(r_err(r, "empty bank name"));
        }
        if !names.insert(bank.clone()) {
            return Err(r_err(r, "duplicate bank"));
        }
        let parent = r.text_or("parent_bank", "", true)?;
        if parent.is_empty() {
            if let Some(other) = &root {
                return Err(r_err(r, &format!("a second root bank (the root is {other})")));
            }
            root = Some(bank.clone());
        }
        let b = SiteBank {
            added: BankAdded {
                bank,
                parent_bank: parent,
                shares: r.int("shares")?,
                priority: r.real_or("priority", 0.0)?,
                ignore_older_than: r.int_or("ignore_older_than", 0)?,
            },
            active: r.int_or("active", 1)? != 0,
            job_usage: r.real_or("job_usage", 0.0)?,
        };
        read.push((r, b));
    }
    for (r, b) in &read {
        if !b.added.parent_bank.is_empty() && !names.contains(&b.added.parent_bank) {
            return Err(r_err(r, &format!("parent bank {} not found in bank_table", b.added.parent_bank)));
        }
    }
    // Parents before children, otherwise in source order.
    let mut out: Vec<SiteBank> = Vec::with_capacity(read.len());
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut left: Vec<(&Row, SiteBank)> = read;
    while !left.is_empty() {
        let before = left.len();
        let mut rest = Vec::new();
        for (r, b) in left {
            if b.added.parent_bank.is_empty() || placed.contains(&b.added.parent_bank) {
                placed.insert(b.added.bank.clone());
                out.push(b);
            } else {
                rest.push((r, b));
            }
        }
        if rest.len() == before {
            let (r, b) = &rest[0];
            return Err(r_err(r, &format!("bank {} is its own ancestor (a cycle of parent banks)", b.added.bank)));
        }
        left = rest;
    }
    Ok(out)
}

/// Period bins and `last_job_timestamp` per (username, bank).
type Bins = BTreeMap<(String, String), (Vec<f64>, f64)>;

fn read_bins(conn: &rusqlite::Connection, defaulted: &mut Vec<String>) -> Result<Bins> {
    let mut bins: Bins = BTreeMap::new();
    let factor_cols = fa::columns(conn, "job_usage_factor_table")?;
    if let Some(rows) = fa::rows(conn, "job_usage_factor_table", &["username", "bank"])? {
        for r in rows {
            let key = (r.text("username")?, r.text("bank")?);
            let last =
                if r.has("last_job_timestamp") { r.real_or("last_job_timestamp", 0.0).unwrap_or(0.0) } else { 0.0 };
            let mut v = Vec::new();
            for k in 0.. {
                let c = format!("usage_factor_period_{k}");
                if !factor_cols.contains(&c) {
                    break;
                }
                v.push(r.real(&c)?);
            }
            bins.insert(key, (v, last));
        }
    }
    if let Some(rows) = fa::rows(conn, "job_usage_per_association_table", &["username", "bank", "period"])? {
        for r in rows {
            let key = (r.text("username")?, r.text("bank")?);
            let period = r.int("period")?;
            if !(0..10_000).contains(&period) {
                return Err(r_err(&r, "period out of range"));
            }
            let value = r.real_or("value", 0.0)?;
            let e = bins.entry(key).or_insert((Vec::new(), 0.0));
            if e.0.len() <= period as usize {
                e.0.resize(period as usize + 1, 0.0);
            }
            e.0[period as usize] = value;
        }
    } else if !factor_cols.iter().any(|c| c.starts_with("usage_factor_period_")) {
        defaulted
            .push("job_usage_per_association_table: no period bins in the source, usage history starts empty".into());
    }
    Ok(bins)
}

fn read_associations(
    conn: &rusqlite::Connection,
    genesis: &DbCreated,
    banks: &[SiteBank],
    defaulted: &mut Vec<String>,
) -> Result<Vec<SiteAssociation>> {
    let rows = fa::rows(conn, "association_table", &["username", "bank"])?.unwrap_or_default();
    let imax = INTEGER_MAX.to_string();
    let missing = missing_columns(
        &fa::columns(conn, "association_table")?,
        &[
            ("mod_time", "0"),
            ("active", "1"),
            ("userid", "65534"),
            ("default_bank", "the association's bank"),
            ("shares", "1"),
            ("job_usage", "0.0"),
            ("fairshare", "0.5"),
            ("max_running_jobs", "5"),
            ("max_active_jobs", "7"),
            ("max_nodes", &imax),
            ("max_cores", &imax),
            ("queues", "''"),
            ("projects", "*"),
            ("default_project", "*"),
            ("max_sched_jobs", &imax),
        ],
    );
    if !missing.is_empty() && !rows.is_empty() {
        defaulted.push(format!("association_table: columns not in this schema, defaulted: {}", missing.join(", ")));
    }
    let bins = read_bins(conn, defaulted)?;
    let bank_names: BTreeSet<&str> = banks.iter().map(|b| b.added.bank.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let username = r.text("username")?;
        let bank = r.text("bank")?;
        if username.is_empty() {
            return Err(r_err(r, "empty username"));
        }
        if !bank_names.contains(bank.as_str()) {
            return Err(r_err(r, &format!("bank {bank} not found in bank_table")));
        }
        if !seen.insert((username.clone(), bank.clone())) {
            return Err(r_err(r, "duplicate association"));
        }
        let added = AssociationAdded {
            userid: r.int_or("userid", 65534)?,
            default_bank: if r.has("default_bank") { r.text("default_bank")? } else { bank.clone() },
            shares: r.int_or("shares", 1)?,
            fairshare: r.real_or("fairshare", 0.5)?,
            max_running_jobs: r.int_or("max_running_jobs", 5)?,
            max_active_jobs: r.int_or("max_active_jobs", 7)?,
            max_nodes: r.int_or("max_nodes", INTEGER_MAX)?,
            max_cores: r.int_or("max_cores", INTEGER_MAX)?,
            queues: r.text_or("queues", "", false)?,
            projects: r.text_or("projects", "*", false)?,
            default_project: r.text_or("default_project", "*", false)?,
            max_sched_jobs: r.int_or("max_sched_jobs", INTEGER_MAX)?,
            username: username.clone(),
            bank: bank.clone(),
        };
        let (source_bins, counted_until) = bins.get(&(username.clone(), bank.clone())).cloned().unwrap_or_default();
        let mut raw = Vec::with_capacity(source_bins.len());
        let mut f = 1.0;
        for b in &source_bins {
            raw.push(b / f);
            f *= genesis.decay_factor;
        }
        while raw.last() == Some(&0.0) {
            raw.pop();
        }
        out.push(SiteAssociation {
            carried: ImportedAssociation {
                username,
                bank,
                creation_time: r.int("creation_time")?,
                mod_time: r.int_or("mod_time", 0)?,
                job_usage: r.real_or("job_usage", 0.0)?,
                fairshare: added.fairshare,
                bins: raw,
                counted_until,
            },
            active: r.int_or("active", 1)? != 0,
            added,
        });
    }
    Ok(out)
}
