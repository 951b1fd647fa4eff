//! flux-accounting's CSV files, as `export-db` writes them, read back as
//! rows, and each row as the events of the command that adds it
//! (`add-bank`, `add-user`, `add-queue`, `add-project`, `add-config` /
//! `edit-config`, `edit-factor`), for `pop-db`.

use std::collections::{BTreeMap, HashMap};

use fluxacct_core::events::{AssocRef, BankRef, Event};
use projections::model::State;

use crate::cmd::{add_bank, add_config, add_project, add_queue, add_user, edit_config, edit_factor};
use crate::error::{Error, Result};

/// The tables pop-db fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// bank_table.
    Banks,
    /// queue_table.
    Queues,
    /// project_table.
    Projects,
    /// association_table (its banks, queues and projects first).
    Associations,
    /// config_table.
    Config,
    /// priority_factor_weight_table.
    Factors,
}

impl Table {
    /// Every table pop-db fills, in the order it fills them (what a row
    /// refers to comes first).
    pub const LOAD_ORDER: [Table; 6] =
        [Table::Banks, Table::Queues, Table::Projects, Table::Associations, Table::Config, Table::Factors];

    /// The flux-accounting table name (its file is `<name>.csv`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Banks => "bank_table",
            Table::Queues => "queue_table",
            Table::Projects => "project_table",
            Table::Associations => "association_table",
            Table::Config => "config_table",
            Table::Factors => "priority_factor_weight_table",
        }
    }

    /// The table named `name`, if pop-db fills it.
    pub fn of_name(name: &str) -> Option<Table> {
        Table::LOAD_ORDER.into_iter().find(|t| t.name() == name)
    }

    /// The columns a file of this table may have.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Banks => projections::model::Bank::COLUMNS,
            Table::Associations => projections::model::Association::COLUMNS,
            Table::Queues => projections::model::Queue::COLUMNS,
            Table::Projects => projections::model::Project::COLUMNS,
            Table::Config => &["key", "value"],
            Table::Factors => &["factor", "weight"],
        }
    }

    /// The columns that name a row.
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Banks => &["bank"],
            Table::Associations => &["username", "bank"],
            Table::Queues => &["queue"],
            Table::Projects => &["project"],
            Table::Config => &["key"],
            Table::Factors => &["factor"],
        }
    }
}

/// Columns the ledger sets itself (ids, times, usage, fair-share): a row
/// already in the ledger is the same row whatever they say.
const DERIVED: &[&str] = &["bank_id", "project_id", "creation_time", "mod_time", "job_usage", "usage", "fairshare"];

/// One CSV row: column → non-empty value.
pub type CsvRow = BTreeMap<String, String>;

/// The rows of a table already in the ledger, by key, as `export-db`
/// writes them.
pub type Existing = HashMap<String, CsvRow>;

fn key_of(table: Table, row: &CsvRow) -> String {
    table.key_columns().iter().map(|k| row.get(*k).map(String::as_str).unwrap_or("")).collect::<Vec<_>>().join(",")
}

/// Read-only: the rows of `table` in the ledger, by key.
pub fn existing(ctx: &crate::context::Context, state: &State<'_>, table: Table) -> Result<Existing> {
    let (header, rows) = crate::migrate::export::table_rows(ctx, state, table.name())?;
    let mut out = Existing::new();
    for r in rows {
        let row: CsvRow = header.iter().zip(r).filter(|(_, v)| !v.is_empty()).map(|(h, v)| (h.clone(), v)).collect();
        out.insert(key_of(table, &row), row);
    }
    Ok(out)
}

/// The columns in which `row` differs from the ledger's `have` (numbers
/// compared as numbers; derived columns left out).
fn differences(row: &CsvRow, have: &CsvRow) -> Vec<String> {
    let same = |a: &str, b: &str| {
        a == b || matches!((a.trim().parse::<f64>(), b.trim().parse::<f64>()), (Ok(x), Ok(y)) if x == y)
    };
    row.iter()
        .filter(|(k, _)| !DERIVED.contains(&k.as_str()))
        .filter(|(k, v)| !have.get(*k).is_some_and(|h| same(v, h)))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Pure: the events for one row, against the state so far and the rows of
/// its table that were in the ledger before (`existing`): none for a row
/// already there (so loading the same files again changes nothing), an
/// edit for a config value or factor weight that differs, and an error for
/// any other row that is there with other values. `passwd_uid` is the uid
/// of the row's user name in the passwd database, used when the row has no
/// `userid`.
pub fn row_events(
    state: &State<'_>,
    table: Table,
    row: &CsvRow,
    passwd_uid: Option<i64>,
    existing: &Existing,
) -> Result<Vec<Event>> {
    let get = |k: &str| row.get(k).cloned();
    let key = key_of(table, row);
    let differs = match existing.get(&key) {
        Some(have) => {
            let diff = differences(row, have);
            if diff.is_empty() {
                return Ok(Vec::new());
            }
            Some(diff)
        }
        None => None,
    };
    if let Some(diff) = &differs {
        if !matches!(table, Table::Config | Table::Factors) {
            return Err(Error::invalid(format!(
                "{} {key} already exists in {} with a different {}",
                table.key_columns().join(","),
                table.name(),
                diff.join(", ")
            )));
        }
    }
    let active = match get("active") {
        None => true,
        Some(v) => {
            v.trim().parse::<i64>().map_err(|_| Error::invalid(format!("active: invalid integer value: '{v}'")))? != 0
        }
    };
    let d = |k: &str, v: &str| get(k).unwrap_or_else(|| v.to_string());
    match table {
        Table::Banks => {
            let args = add_bank::Args {
                bank: get("bank").ok_or_else(|| Error::invalid("no bank"))?,
                shares: d("shares", "1"),
                parent_bank: get("parent_bank").unwrap_or_default(),
                priority: d("priority", "0.0"),
                ignore_older_than: d("ignore_older_than", "0"),
                restore_subtree: false,
            };
            // A disabled bank is disabled after its associations are
            // loaded ([`disabled_later`]).
            add_bank::decide(state, &args)
        }
        Table::Associations => {
            let args = add_user::Args {
                username: get("username").ok_or_else(|| Error::invalid("no username"))?,
                bank: get("bank").ok_or_else(|| Error::invalid("no bank"))?,
                userid: get("userid"),
                shares: d("shares", "1"),
                fairshare: d("fairshare", "0.5"),
                max_running_jobs: d("max_running_jobs", "5"),
                max_active_jobs: d("max_active_jobs", "7"),
                max_nodes: d("max_nodes", "2147483647"),
                max_cores: d("max_cores", "2147483647"),
                queues: d("queues", ""),
                projects: d("projects", "*"),
                default_project: get("default_project"),
                max_sched_jobs: d("max_sched_jobs", "2147483647"),
            };
            let userid = match &args.userid {
                Some(s) => crate::validate::userid(s)?,
                None => passwd_uid.unwrap_or(fluxacct_core::events::USERID_NOBODY),
            };
            let mut ev = add_user::decide(state, &args, userid)?;
            if let (Some(db), Some(Event::AssociationAdded(a))) = (get("default_bank"), ev.first_mut()) {
                if db != a.default_bank {
                    if state.bank(&db)?.is_none() && db != a.bank {
                        return Err(Error::invalid(format!("default bank {db} does not exist in bank_table")));
                    }
                    a.default_bank = db;
                }
            }
            if !active {
                ev.push(Event::AssociationDisabled(AssocRef {
                    username: args.username.clone(),
                    bank: args.bank.clone(),
                }));
            }
            Ok(ev)
        }
        Table::Queues => {
            let args = add_queue::Args {
                queue: get("queue").ok_or_else(|| Error::invalid("no queue"))?,
                min_nodes_per_job: d("min_nodes_per_job", "1"),
                max_nodes_per_job: d("max_nodes_per_job", "1"),
                max_time_per_job: d("max_time_per_job", "60"),
                priority: d("priority", "0"),
                max_running_jobs: d("max_running_jobs", "100"),
                max_nodes_per_assoc: d("max_nodes_per_assoc", "2147483647"),
                max_sched_jobs: d("max_sched_jobs", "2147483647"),
                max_sched_nodes_per_assoc: d("max_sched_nodes_per_assoc", "2147483647"),
                max_sched_cores_per_assoc: d("max_sched_cores_per_assoc", "2147483647"),
                max_nodes: d("max_nodes", "2147483647"),
                max_cores: d("max_cores", "2147483647"),
                charge_factor: None,
            };
            add_queue::decide(state, &args)
        }
        Table::Projects => add_project::decide(
            state,
            &add_project::Args { project: get("project").ok_or_else(|| Error::invalid("no project"))? },
        ),
        Table::Config => {
            let key = get("key").ok_or_else(|| Error::invalid("no key"))?;
            let mut value = d("value", "");
            // The durations are stored (and exported) as seconds.
            if matches!(key.as_str(), "priority_usage_reset_period" | "priority_decay_half_life")
                && value.trim().parse::<f64>().is_ok()
            {
                value = format!("{}s", value.trim());
            }
            let pair = format!("{key}={value}");
            if differs.is_some() {
                edit_config::decide(state, &edit_config::Args { pairs: vec![pair] })
            } else {
                add_config::decide(state, &add_config::Args { pair })
            }
        }
        Table::Factors => edit_factor::decide(
            state,
            &edit_factor::Args {
                factor: get("factor").ok_or_else(|| Error::invalid("no factor"))?,
                weight: get("weight").ok_or_else(|| Error::invalid("no weight"))?,
            },
        ),
    }
}

/// Pure: the events that wait until every row is loaded: a bank row
/// that says `active` 0 and was added disables the bank last, so that
/// the associations of a disabled bank can be loaded first.
pub fn disabled_later(table: Table, row: &CsvRow) -> Vec<Event> {
    match (table, row.get("bank"), row.get("active").map(|v| v.trim().parse::<i64>())) {
        (Table::Banks, Some(bank), Some(Ok(0))) => vec![Event::BankDisabled(BankRef { bank: bank.clone() })],
        _ => Vec::new(),
    }
}

/// Parses the CSV text: the table named by `file_name`, and its rows (with
/// empty cells left out, and only `fields` if given).
pub fn parse(file_name: &str, text: &str, fields: Option<&str>) -> Result<(Table, Vec<(usize, CsvRow)>)> {
    let name = file_name.strip_suffix(".csv").unwrap_or(file_name);
    let table = match Table::of_name(name) {
        Some(t) => t,
        None if crate::migrate::export::TABLES.contains(&name) => {
            return Err(Error::invalid(format!(
                "pop-db: table \"{name}\" cannot be loaded: the ledger derives it from the job records and usage"
            )))
        }
        None => return Err(Error::invalid(format!("pop-db: table \"{name}\" does not exist in the database"))),
    };
    let known = table.columns();
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::invalid(format!("pop-db: {file_name}: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let unknown: Vec<&str> = header.iter().map(String::as_str).filter(|h| !known.contains(h)).collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(format!("pop-db: {file_name}: unknown columns: {}", unknown.join(", "))));
    }
    let selected: Option<Vec<String>> =
        fields.map(|f| f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    if let Some(sel) = &selected {
        let bad: Vec<&str> = sel.iter().map(String::as_str).filter(|f| !header.iter().any(|h| h == f)).collect();
        if !bad.is_empty() {
            return Err(Error::invalid(format!("invalid fields: {}", bad.join(", "))));
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| Error::invalid(format!("pop-db: {file_name} line {line}: {e}")))?;
        let mut row = CsvRow::new();
        for (h, v) in header.iter().zip(rec.iter()) {
            if v.is_empty() || selected.as_ref().is_some_and(|s| !s.contains(h)) {
                continue;
            }
            row.insert(h.clone(), v.to_string());
        }
        rows.push((line, row));
    }
    Ok((table, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn bank_rows_become_add_bank_events() {
        let (t, rows) = parse(
            "bank_table.csv",
            "bank_id,bank,active,parent_bank,shares,job_usage,priority,ignore_older_than\r\n1,root,1,,1,0.0,0.0,0\r\n",
            None,
        )
        .unwrap();
        assert_eq!(t, Table::Banks);
        let g = given(&[]);
        let ev = row_events(&g.state(), t, &rows[0].1, None, &Existing::new()).unwrap();
        assert!(matches!(&ev[..], [Event::BankAdded(b)] if b.bank == "root" && b.parent_bank.is_empty()));
    }

    #[test]
    fn rows_are_validated_like_add_user() {
        let (t, rows) = parse("association_table.csv", "username,bank\nu,nope\n", None).unwrap();
        let g = given(&[Given::Bank("root", "")]);
        assert_eq!(
            row_events(&g.state(), t, &rows[0].1, None, &Existing::new()).unwrap_err().to_string(),
            "Bank nope does not exist in bank_table"
        );
    }

    #[test]
    fn fields_select_columns_and_unknown_tables_are_refused() {
        let (_, rows) = parse("bank_table.csv", "bank,shares,priority\nroot,3,2.5\n", Some("bank,shares")).unwrap();
        assert_eq!(rows[0].1.get("priority"), None);
        assert_eq!(rows[0].1.get("shares").map(String::as_str), Some("3"));
        assert!(parse("jobs.csv", "id\n1\n", None).unwrap_err().to_string().contains("cannot be loaded"));
        assert_eq!(
            parse("foo.csv", "id\n1\n", None).unwrap_err().to_string(),
            "pop-db: table \"foo\" does not exist in the database"
        );
        assert_eq!(parse("bank_table.csv", "bank\nx\n", Some("nope")).unwrap_err().to_string(), "invalid fields: nope");
    }
}
