//! `import-db`: move a flux-accounting site into a new ledger.
//!
//! The source is read without being changed ([`crate::flux_accounting`]);
//! the ledger is written into a temporary file beside `-p` and renamed
//! there at the end (never over an existing file). docs/migration.md
//! describes what is carried over and how usage periods are handed over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluxacct_core::events::*;
use fluxacct_core::limits::INTEGER_MAX;
use ledger::Ledger;
use projections::apply::{Applier, DEFAULT_FACTORS};
use projections::ctx::ApplyCtx;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::flux_accounting::{self as fa, Row, SourceDb};

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

fn r_err(r: &Row, what: &str) -> Error {
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

/// Pure: the events that establish `site` after its genesis and the
/// `SiteImported` event, except the job records and the closing
/// `UsageImported` ([`usage_event`]).
pub fn decide(site: &Site) -> Vec<Event> {
    let mut ev = Vec::new();
    for (k, v) in &site.config {
        let set = ConfigSet { key: k.clone(), value: v.clone() };
        if DEFAULT_CONFIG.iter().any(|(d, _)| d == k) {
            ev.push(Event::ConfigEdited(set));
        } else {
            ev.push(Event::ConfigAdded(set));
        }
    }
    for (f, w) in &site.factors {
        ev.push(Event::FactorWeightSet(FactorWeightSet { factor: f.clone(), weight: *w }));
    }
    for p in &site.projects {
        ev.push(Event::ProjectAdded(ProjectRef { project: p.clone() }));
    }
    for q in &site.queues {
        ev.push(Event::QueueAdded(q.clone()));
    }
    for b in &site.banks {
        ev.push(Event::BankAdded(b.added.clone()));
    }
    for a in &site.associations {
        ev.push(Event::AssociationAdded(a.added.clone()));
    }
    // Disabled rows after every row exists (a disabled bank's users may be
    // added after it).
    for b in site.banks.iter().filter(|b| !b.active) {
        ev.push(Event::BankDisabled(BankRef { bank: b.added.bank.clone() }));
    }
    for a in site.associations.iter().filter(|a| !a.active) {
        ev.push(Event::AssociationDisabled(AssocRef {
            username: a.added.username.clone(),
            bank: a.added.bank.clone(),
        }));
    }
    ev
}

/// Pure: the closing `UsageImported` event of `site`.
pub fn usage_event(site: &Site) -> Event {
    Event::UsageImported(UsageImported {
        as_of: site.as_of,
        end_half_life_period: site.end_half_life_period,
        banks: site.banks.iter().map(|b| ImportedBank { bank: b.added.bank.clone(), job_usage: b.job_usage }).collect(),
        associations: site.associations.iter().map(|a| a.carried.clone()).collect(),
    })
}

/// Pure: the job record of one source `jobs` row.
pub fn job_event(r: &Row) -> Result<JobRecorded> {
    let id = match r.json("id") {
        serde_json::Value::String(s) => match s.trim().parse::<u64>() {
            Ok(n) => serde_json::json!(n),
            Err(_) => serde_json::Value::String(s),
        },
        v => v,
    };
    let mut job = serde_json::Map::new();
    job.insert("id".into(), id);
    for c in
        ["userid", "t_submit", "t_run", "t_inactive", "ranks", "R", "jobspec", "project", "bank", "requested_duration"]
    {
        if r.has(c) {
            job.insert(c.into(), r.json(c));
        }
    }
    for c in ["userid", "t_inactive"] {
        if matches!(job.get(c), Some(serde_json::Value::Null)) {
            return Err(r_err(r, &format!("NULL in column {c}")));
        }
    }
    // A jobspec of another shape carries no bank, project or queue (as the
    // streaming reader reads it).
    let spec = match job.get("jobspec") {
        Some(serde_json::Value::String(t)) => serde_json::from_str(t).ok(),
        other => other.cloned(),
    };
    if spec.as_ref().and_then(|j: &serde_json::Value| j.get("attributes")).is_some_and(|a| !a.is_object()) {
        job.remove("jobspec");
    }
    let bytes = serde_json::to_vec(&serde_json::Value::Object(job)).map_err(|e| r_err(r, &e.to_string()))?;
    // Imported history has no "too far in the future" bound.
    crate::jobs::parse(&bytes).and_then(|j| crate::jobs::check(&j, f64::INFINITY)).map_err(|e| r_err(r, &e.reason))
}

/// The parts of a jobspec the import reads (`attributes.system`).
#[derive(serde::Deserialize, Default)]
struct SpecView<'a> {
    #[serde(default, borrow)]
    attributes: Option<AttrsView<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct AttrsView<'a> {
    #[serde(default, borrow)]
    system: Option<SystemView<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct SystemView<'a> {
    #[serde(default, borrow)]
    bank: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    project: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    queue: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    duration: Option<serde_json::Value>,
}

/// Calls `f` with the job record of every source `jobs` row, in rowid
/// order, streaming; returns the number of rows. The same record as
/// [`job_event`] gives (a unit test pins the two together), read straight
/// from the columns: `jobs` is the bulk of a site.
pub fn for_each_job<F>(conn: &rusqlite::Connection, mut f: F) -> Result<u64>
where
    F: FnMut(JobRecorded) -> Result<()>,
{
    use rusqlite::types::ValueRef as V;
    let cols = fa::columns(conn, "jobs")?;
    if cols.is_empty() {
        return Ok(0);
    }
    let opt = |c: &str| if cols.iter().any(|x| x == c) { format!("\"{c}\"") } else { "NULL".to_string() };
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM jobs ORDER BY rowid",
        opt("id"),
        opt("userid"),
        opt("t_submit"),
        opt("t_run"),
        opt("t_inactive"),
        opt("ranks"),
        opt("R"),
        opt("jobspec"),
        opt("project"),
        opt("bank"),
        opt("requested_duration")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut q = stmt.query([])?;
    let mut n = 0u64;
    while let Some(r) = q.next()? {
        n += 1;
        let txt = |v: V<'_>| -> Option<String> {
            match v {
                V::Text(t) | V::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
                V::Integer(i) => Some(i.to_string()),
                V::Real(x) => Some(x.to_string()),
                V::Null => None,
            }
        };
        let id_cell = r.get_ref(0)?;
        let id_text = txt(id_cell).unwrap_or_default();
        let err = |what: String| Error::invalid(format!("import-db: jobs row {n} (id={id_text}): {what}"));
        let id = match id_cell {
            V::Integer(i) if i >= 0 => i as u64,
            V::Text(_) | V::Blob(_) => {
                crate::jobs::parse_jobid(&id_text).ok_or_else(|| err(format!("id {id_text:?} is not a job id")))?
            }
            V::Null => return Err(err("missing id".into())),
            _ => return Err(err("id is not a non-negative integer".into())),
        };
        let num = |i: usize, name: &str| -> Result<Option<f64>> {
            let v = match r.get_ref(i)? {
                V::Null => return Ok(None),
                V::Integer(x) => x as f64,
                V::Real(x) => x,
                V::Text(t) | V::Blob(t) => std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| err(format!("job {id}: {name} is not a number")))?,
            };
            if v.is_finite() {
                Ok(Some(v))
            } else {
                Err(err(format!("job {id}: {name} is not finite")))
            }
        };
        let userid = match r.get_ref(1)? {
            V::Null => return Err(err("NULL in column userid".into())),
            V::Integer(x) => x,
            _ => match num(1, "userid")? {
                Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => x as i64,
                _ => return Err(err(format!("job {id}: userid is not an integer"))),
            },
        };
        let t_inactive = num(4, "t_inactive")?.ok_or_else(|| err("NULL in column t_inactive".into()))?;
        let t_run = num(3, "t_run")?.unwrap_or(0.0);
        let t_submit = num(2, "t_submit")?.unwrap_or(t_run);
        let ranks = txt(r.get_ref(5)?);
        let (rv, counts) = match r.get_ref(6)? {
            V::Text(t) | V::Blob(t) if !t.is_empty() => {
                let text = std::str::from_utf8(t).map_err(|e| err(format!("job {id}: R is not valid UTF-8: {e}")))?;
                let (c, n) = crate::jobs::canonical_r(text).map_err(|e| err(format!("job {id}: {e}")))?;
                (Some(c), Some(n))
            }
            _ => (None, None),
        };
        let spec_bytes: Option<&[u8]> = match r.get_ref(7)? {
            V::Text(t) | V::Blob(t) if !t.is_empty() => Some(t),
            _ => None,
        };
        let mut spec_value: Option<serde_json::Value> = None;
        let spec: SpecView<'_> = match spec_bytes {
            Some(t) => match serde_json::from_slice(t) {
                Ok(v) => v,
                Err(e) if e.classify() == serde_json::error::Category::Data => {
                    // Valid JSON of another shape: read it as job_from_json does.
                    spec_value = serde_json::from_slice(t).ok();
                    SpecView::default()
                }
                Err(e) => return Err(err(format!("job {id}: jobspec is not valid JSON: {e}"))),
            },
            None => SpecView::default(),
        };
        let mut system = spec.attributes.and_then(|a| a.system).unwrap_or_default();
        if let Some(sys) = spec_value.as_ref().and_then(|v| v.get("attributes")).and_then(|a| a.get("system")) {
            let s = |k: &str| {
                sys.get(k).and_then(serde_json::Value::as_str).map(|x| std::borrow::Cow::Owned(x.to_string()))
            };
            system = SystemView {
                bank: s("bank"),
                project: s("project"),
                queue: s("queue"),
                duration: sys.get("duration").cloned(),
            };
        }
        let pick = |i: usize, from_spec: Option<std::borrow::Cow<'_, str>>| -> Result<String> {
            Ok(match txt(r.get_ref(i)?) {
                Some(s) => s,
                None => from_spec.map(|c| c.into_owned()).unwrap_or_default(),
            })
        };
        let bank = pick(9, system.bank)?;
        let project = pick(8, system.project)?;
        let queue = system.queue.map(|c| c.into_owned()).unwrap_or_default();
        let requested_duration = match num(10, "duration")? {
            Some(d) => d,
            None => system.duration.as_ref().and_then(serde_json::Value::as_f64).unwrap_or(0.0),
        };
        if !requested_duration.is_finite() {
            return Err(err(format!("job {id}: duration is not finite")));
        }
        let c = counts.unwrap_or_default();
        f(JobRecorded {
            id,
            userid,
            username: None,
            bank,
            project,
            queue,
            t_submit,
            t_run,
            t_inactive,
            nnodes: c.nnodes,
            ncores: c.ncores,
            ngpus: c.ngpus,
            requested_duration,
            ranks,
            r: rv,
        })?;
    }
    Ok(n)
}

/// Job records per message from the reading thread.
const JOB_BATCH: usize = 1024;

/// Encoded job records passed from the reading thread to the appending
/// one: flat buffers (a few allocations per batch, each freed by the
/// thread that receives it), the payloads and what binning needs.
#[derive(Default)]
struct JobBatch {
    payloads: Vec<u8>,
    ends: Vec<usize>,
    banks: String,
    bank_ends: Vec<usize>,
    /// userid, t_run, t_inactive, nnodes, ncores, ngpus.
    fields: Vec<(i64, f64, f64, i64, i64, i64)>,
    /// Job ids.
    ids: Vec<u64>,
}

impl JobBatch {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, job: &JobRecorded) -> Result<()> {
        serde_json::to_writer(&mut self.payloads, job).map_err(|e| Error::io_msg(e.to_string()))?;
        self.ends.push(self.payloads.len());
        self.banks.push_str(&job.bank);
        self.bank_ends.push(self.banks.len());
        self.fields.push((job.userid, job.t_run, job.t_inactive, job.nnodes, job.ncores, job.ngpus));
        self.ids.push(job.id);
        Ok(())
    }

    fn payload(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.payloads[from..self.ends[i]]
    }

    /// What `PendingJob::of` gives for record `i` at `seq`.
    fn pending(
        &self,
        i: usize,
        seq: u64,
        names: &mut projections::usage::BankNames,
    ) -> Option<projections::usage::PendingJob> {
        let from = if i == 0 { 0 } else { self.bank_ends[i - 1] };
        let bank = &self.banks[from..self.bank_ends[i]];
        if bank.is_empty() {
            return None;
        }
        let (userid, t_run, t_inactive, nnodes, ncores, ngpus) = self.fields[i];
        Some(projections::usage::PendingJob {
            seq: seq as i64,
            userid,
            bank: names.get(bank),
            t_run,
            t_inactive,
            nnodes,
            ncores,
            ngpus,
        })
    }
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
    let site = read_site(&src, meta.recorded_at_us as f64 / 1e6)?;
    let admin = decide(&site);
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
            applier.apply(tx.conn(), &ApplyCtx { seq: a.seq.0, recorded_at_us: a.recorded_at_us }, ev)?;
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
                    let ctx_a = ApplyCtx { seq: a.seq.0, recorded_at_us: a.recorded_at_us };
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
        let kinds: Vec<&str> = decide(&site).iter().map(Event::kind).collect();
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
