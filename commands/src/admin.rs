//! Helpers shared by the admin commands: result rows for each projection
//! table (bank_table's for `view-bank` and `list-banks`), output
//! selection (`--fields`, `-o/--format`, `--json`, tables), and the
//! user-removal cascade (disable or delete associations, then fix
//! up default banks) used by `delete-user` and `delete-bank`, and the
//! still-referenced warning of `delete-queue` and `delete-project`.

use std::collections::HashSet;

use fluxacct_core::events::{AssocRef, DefaultBankChanged, Event};
use projections::model::{Association, Bank, Project, Queue, State};
use serde_json::{json, Value};

use crate::context::Output;
use crate::error::{Error, Result};
use crate::format::{self, Rows};

/// association_table rows.
pub fn assoc_rows(assocs: &[Association]) -> Rows {
    let mut rows = Rows::new(Association::COLUMNS);
    for a in assocs {
        rows.push(vec![
            json!(a.creation_time),
            json!(a.mod_time),
            json!(a.active),
            json!(a.username),
            json!(a.userid),
            json!(a.bank),
            json!(a.default_bank),
            json!(a.shares),
            json!(a.job_usage),
            json!(a.fairshare),
            json!(a.max_running_jobs),
            json!(a.max_active_jobs),
            json!(a.max_nodes),
            json!(a.max_cores),
            json!(a.queues),
            json!(a.projects),
            json!(a.default_project),
            json!(a.max_sched_jobs),
        ]);
    }
    rows
}

/// The bank_table columns as result rows.
pub fn bank_rows(banks: &[Bank]) -> Rows {
    let mut rows = Rows::new(Bank::COLUMNS);
    for b in banks {
        rows.push(vec![
            json!(b.bank_id),
            json!(b.bank),
            json!(b.active),
            json!(b.parent_bank),
            json!(b.shares),
            json!(b.job_usage),
            json!(b.priority),
            json!(b.ignore_older_than),
        ]);
    }
    rows
}

/// queue_table rows: each row's columns in table order, from its
/// serialized form (the column names are its field names).
pub fn queue_rows(queues: &[Queue]) -> Rows {
    let mut rows = Rows::new(Queue::COLUMNS);
    for q in queues {
        let v = serde_json::to_value(q).unwrap_or(Value::Null);
        rows.push(Queue::COLUMNS.iter().map(|c| v[*c].clone()).collect());
    }
    rows
}

/// project_table rows.
pub fn project_rows(projects: &[Project]) -> Rows {
    let mut rows = Rows::new(Project::COLUMNS);
    for p in projects {
        rows.push(vec![json!(p.project_id), json!(p.project), json!(p.usage)]);
    }
    rows
}

/// Two-column rows (`factor | weight`, `key | value`).
pub fn pair_rows<V: Into<Value> + Clone>(a: &str, b: &str, pairs: &[(String, V)]) -> Rows {
    let mut rows = Rows::new(&[a, b]);
    for (k, v) in pairs {
        rows.push(vec![json!(k), v.clone().into()]);
    }
    rows
}

/// How a view or list command prints when no format is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFormat {
    /// A table (list-* commands, view-factor, view-config).
    Table,
    /// JSON (view-user, view-queue, view-project).
    Json,
}

/// Renders `rows` as flux-accounting does: `-o/--format` first, then
/// `--fields` selection, then JSON when asked for (or by default), else a
/// table. An empty result is the error `empty` (flux-accounting fails on
/// empty results).
pub fn render(
    rows: Rows,
    fields: Option<&str>,
    fmt: Option<&str>,
    json: bool,
    parsable: bool,
    default: DefaultFormat,
    empty: &str,
) -> Result<String> {
    if rows.rows.is_empty() {
        return Err(Error::invalid(empty));
    }
    render_rows(rows, fields, fmt, json, parsable, default)
}

/// [`render`] without the empty check: an empty result is the header (the
/// table's, or the format applied to the column names) or `[]`.
fn render_rows(
    rows: Rows,
    fields: Option<&str>,
    fmt: Option<&str>,
    json: bool,
    parsable: bool,
    default: DefaultFormat,
) -> Result<String> {
    let rows = match fields {
        Some(f) => rows.select(f)?,
        None => rows,
    };
    if let Some(f) = fmt {
        return format::as_format(&rows, f);
    }
    let as_json = json || (default == DefaultFormat::Json && !parsable);
    Ok(if as_json { format::as_json(&rows) } else { format::as_table(&rows) })
}

/// The output options every `list-*` command shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListOutput {
    /// Only these columns (comma list).
    #[arg(short = 'f', long)]
    pub fields: Option<String>,
    /// JSON instead of a table.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
}

impl ListOutput {
    /// Renders a list: a table by default. An empty list is the header
    /// alone (`[]` with `--json`) and a success, as `flux jobs` does;
    /// flux-accounting's `no results found in query` (its error) stays as a
    /// note on stderr.
    pub fn render(&self, rows: Rows) -> Result<Output> {
        let empty = rows.rows.is_empty();
        let text =
            render_rows(rows, self.fields.as_deref(), self.format.as_deref(), self.json, false, DefaultFormat::Table)?;
        let mut out = Output::line(text);
        if empty {
            out.notes.push("no results found in query".to_string());
        }
        Ok(out)
    }
}

/// Splits `KEY=VALUE`, refusing anything but exactly one `=`.
pub fn key_value(s: &str) -> Result<(String, String)> {
    let mut it = s.splitn(3, '=');
    match (it.next(), it.next(), it.next()) {
        (Some(k), Some(v), None) => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::invalid("key-value string must contain exactly one \"=\"")),
    }
}

/// Checks a free-text value (config values, filters): at most 4096 bytes,
/// no control characters.
pub fn text_value(what: &str, s: &str) -> Result<()> {
    if s.len() > 4096 {
        return Err(Error::invalid(format!("{what} is longer than 4096 bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{what} must not contain control characters")));
    }
    Ok(())
}

/// Events that remove (disable, or delete with `force`) the associations of
/// `username` in `banks`, followed by the default-bank fix-up of reference
/// §2.2: when the user's default bank is one of the removed banks, the new
/// default is the bank of the earliest-created association that is still
/// active (as `DefaultBankChanged`). With no active association left, the
/// default bank is left as it is. Already disabled rows are not disabled
/// again.
pub fn remove_user_events(state: &State<'_>, username: &str, banks: &[String], force: bool) -> Result<Vec<Event>> {
    let rows = state.associations_of_user(username)?;
    let mut events = Vec::new();
    for a in rows.iter().filter(|a| banks.contains(&a.bank)) {
        let r = AssocRef { username: a.username.clone(), bank: a.bank.clone() };
        if force {
            events.push(Event::AssociationDeleted(r));
        } else if a.active != 0 {
            events.push(Event::AssociationDisabled(r));
        }
    }
    let current_default = rows.first().map(|a| a.default_bank.clone()).unwrap_or_default();
    if banks.contains(&current_default) {
        // rows are in creation order.
        if let Some(next) = rows.iter().find(|a| a.active != 0 && !banks.contains(&a.bank)) {
            events.push(Event::DefaultBankChanged(DefaultBankChanged {
                username: username.to_string(),
                default_bank: next.bank.clone(),
            }));
        }
    }
    Ok(events)
}

/// The output of a delete command (`delete-queue`, `delete-project`):
/// `warning` when any association still references the deleted name, as
/// told by `references`; nothing otherwise.
pub fn warn_if_referenced(
    state: &State<'_>,
    warning: &str,
    references: impl Fn(&Association) -> bool,
) -> Result<Output> {
    let mut out = Output::none();
    if state.associations()?.iter().any(references) {
        out.warnings.push(warning.to_string());
    }
    Ok(out)
}

/// Every bank row in the subtree of `root` (`root` itself first, then
/// breadth-first, each bank's direct sub-banks by name), active or not.
/// A bank already listed is not listed again.
pub fn subtree(state: &State<'_>, root: Bank) -> Result<Vec<Bank>> {
    let mut names: HashSet<String> = HashSet::from([root.bank.clone()]);
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let subs = state.sub_banks(&out[i].bank)?;
        for s in subs {
            if names.insert(s.bank.clone()) {
                out.push(s);
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn queue_rows_are_every_column_in_table_order() {
        let limits = fluxacct_core::queue::QueueLimits { priority: 7, ..Default::default() };
        let q = Queue { queue: "gold".into(), limits, max_nodes: 8, max_cores: 9 };
        let rows = queue_rows(&[q]);
        assert_eq!(rows.rows.len(), 1);
        let want = [json!("gold"), json!(1), json!(1), json!(60), json!(7), json!(100)];
        assert_eq!(rows.rows[0][..6], want);
        assert_eq!(rows.rows[0].len(), Queue::COLUMNS.len());
        assert_eq!(rows.rows[0][10..], [json!(8), json!(9)]);
        assert!(rows.rows[0].iter().all(|v| !v.is_null()));
    }

    #[test]
    fn key_values() {
        assert_eq!(key_value("a=b").unwrap(), ("a".into(), "b".into()));
        assert!(key_value("ab").is_err());
        assert!(key_value("a=b=c").is_err());
    }

    #[test]
    fn default_bank_fix_up_picks_earliest_active_row() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::Bank("C", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
            Given::User("u", "C"),
            Given::DisableUser("u", "B"),
        ]);
        let evs = remove_user_events(&g.state(), "u", &["A".into()], false).unwrap();
        assert_eq!(
            evs,
            vec![
                Event::AssociationDisabled(AssocRef { username: "u".into(), bank: "A".into() }),
                Event::DefaultBankChanged(DefaultBankChanged { username: "u".into(), default_bank: "C".into() }),
            ]
        );
        // Not the default bank: no fix-up.
        let evs = remove_user_events(&g.state(), "u", &["C".into()], true).unwrap();
        assert_eq!(evs, vec![Event::AssociationDeleted(AssocRef { username: "u".into(), bank: "C".into() })]);
    }
}
