//! flux-accounting's CSV files (`bank_table.csv`, `association_table.csv`)
//! read back as rows, and each row as the events of `add-bank` /
//! `add-user` (for `pop-db`).

use std::collections::BTreeMap;

use fluxacct_core::events::{AssocRef, BankRef, Event};
use projections::model::State;

use crate::cmd::{add_bank, add_user};
use crate::error::{Error, Result};

/// The tables pop-db fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// bank_table.
    Banks,
    /// association_table.
    Associations,
}

/// One CSV row: column → non-empty value.
pub type CsvRow = BTreeMap<String, String>;

/// Pure: the events for one row, against the state so far. `passwd_uid`
/// is the uid of the row's user name in the passwd database, used when the
/// row has no `userid`.
pub fn row_events(state: &State<'_>, table: Table, row: &CsvRow, passwd_uid: Option<i64>) -> Result<Vec<Event>> {
    let get = |k: &str| row.get(k).cloned();
    let active = match get("active") {
        None => true,
        Some(v) => {
            v.trim().parse::<i64>().map_err(|_| Error::invalid(format!("active: invalid integer value: '{v}'")))? != 0
        }
    };
    match table {
        Table::Banks => {
            let args = add_bank::Args {
                bank: get("bank").ok_or_else(|| Error::invalid("no bank"))?,
                shares: get("shares").unwrap_or_else(|| "1".into()),
                parent_bank: get("parent_bank").unwrap_or_default(),
                priority: get("priority").unwrap_or_else(|| "0.0".into()),
                ignore_older_than: get("ignore_older_than").unwrap_or_else(|| "0".into()),
            };
            let mut ev = add_bank::decide(state, &args)?;
            if !active {
                ev.push(Event::BankDisabled(BankRef { bank: args.bank.clone() }));
            }
            Ok(ev)
        }
        Table::Associations => {
            let d = |k: &str, v: &str| get(k).unwrap_or_else(|| v.to_string());
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
    }
}

/// The tables of a flux-accounting 0.60 database: a CSV named after
/// anything else names no table (flux-accounting's message for it).
const FA_TABLES: &[&str] = &[
    "association_table",
    "bank_table",
    "config_table",
    "job_usage_factor_table",
    "job_usage_per_association_table",
    "jobs",
    "priority_factor_weight_table",
    "project_table",
    "queue_table",
    "t_half_life_period_table",
];

/// Parses the CSV text: the table named by `file_name`, and its rows (with
/// empty cells left out, and only `fields` if given).
pub fn parse(file_name: &str, text: &str, fields: Option<&str>) -> Result<(Table, Vec<(usize, CsvRow)>)> {
    let name = file_name.strip_suffix(".csv").unwrap_or(file_name);
    let (table, known) = match name {
        "bank_table" => (Table::Banks, projections::model::Bank::COLUMNS),
        "association_table" => (Table::Associations, projections::model::Association::COLUMNS),
        other if !FA_TABLES.contains(&other) => {
            return Err(Error::invalid(format!("pop-db: table \"{other}\" does not exist in the database")))
        }
        other => {
            return Err(Error::invalid(format!(
                "pop-db: table \"{other}\" cannot be loaded (only bank_table and association_table)"
            )))
        }
    };
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
        let ev = row_events(&g.state(), t, &rows[0].1, None).unwrap();
        assert!(matches!(&ev[..], [Event::BankAdded(b)] if b.bank == "root" && b.parent_bank.is_empty()));
    }

    #[test]
    fn rows_are_validated_like_add_user() {
        let (t, rows) = parse("association_table.csv", "username,bank\nu,nope\n", None).unwrap();
        let g = given(&[Given::Bank("root", "")]);
        assert_eq!(
            row_events(&g.state(), t, &rows[0].1, None).unwrap_err().to_string(),
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
            parse("foo.csv", "a\n1\n", None).unwrap_err().to_string(),
            "pop-db: table \"foo\" does not exist in the database"
        );
        assert_eq!(parse("bank_table.csv", "bank\nx\n", Some("nope")).unwrap_err().to_string(), "invalid fields: nope");
    }
}
