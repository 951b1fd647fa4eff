//! `diff`: what changed between two points of history.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use fluxacct_core::Event;
use fluxacct_core::StoredEvent;
use replay::RowDiff;
use rusqlite::types::Value;

use crate::context::{Context, Output};
use crate::db::{open_read_live, replay_err, resolve_point};
use crate::error::{Error, Result};
use crate::format::row_text;

/// List what changed in the projections between two points of history
/// (each a seq, or a time: epoch seconds with a fraction, or a date): rows
/// added, removed and changed, each with the events in (FROM, TO] that
/// touched it, then those events grouped by the tables they affect.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The earlier point (SEQ or TIME; 0 is the empty state). A plain
    /// integer of 1000000000 or more is epoch seconds, a smaller one a seq;
    /// `seq:N` and `@EPOCH` force either reading.
    #[arg(value_parser = crate::time::TimeArg::point(), allow_hyphen_values = true)]
    pub from: String,
    /// The later point (SEQ or TIME).
    #[arg(value_parser = crate::time::TimeArg::point(), allow_hyphen_values = true)]
    pub to: String,
}

/// Whether event `ev` names the row identified by `ident` (natural-key
/// columns and values): every identifying field the payload carries is
/// equal, and it carries at least one.
fn names_row(payload: &serde_json::Value, ident: &[(String, Value)]) -> bool {
    let mut seen = false;
    for (col, v) in ident {
        let Some(p) = payload.get(col) else { continue };
        seen = true;
        let same = match (p, v) {
            (serde_json::Value::String(a), Value::Text(b)) => a == b,
            (serde_json::Value::Number(a), Value::Integer(b)) => a.as_i64() == Some(*b),
            _ => false,
        };
        if !same {
            return false;
        }
    }
    seen
}

/// Identifying column names, in [`NATURAL`] order.
type Columns = Vec<&'static str>;

/// Events (indices) by the values they carry in some columns.
type ByValue = HashMap<Vec<String>, Vec<usize>>;

/// The events on each table, grouped by the identifying columns their
/// payloads carry, with lookups by value built on first use. An event names
/// a row ([`names_row`]) exactly when it carries some of the row's
/// identifying columns, all with the row's values: so within a group, the
/// candidates are the events whose values on the shared columns are the
/// row's, found by one lookup instead of a scan of every event.
#[derive(Default)]
struct EventIndex<'a> {
    /// table → carried columns → events.
    groups: BTreeMap<&'a str, BTreeMap<Columns, Vec<usize>>>,
    /// (table, carried columns, looked-up columns) → values → events.
    lookups: HashMap<(&'a str, Columns, Columns), ByValue>,
}

impl<'a> EventIndex<'a> {
    fn add(&mut self, table: &'a str, payload: &serde_json::Value, i: usize) {
        let carried: Columns = NATURAL.iter().copied().filter(|c| payload.get(*c).is_some()).collect();
        if !carried.is_empty() {
            self.groups.entry(table).or_default().entry(carried).or_default().push(i);
        }
    }

    /// The events on `table` that can name the row identified by `ident`,
    /// in order.
    fn candidates(
        &mut self,
        table: &'a str,
        ident: &[(String, Value)],
        events: &[(StoredEvent, serde_json::Value)],
    ) -> Vec<usize> {
        let mut found = Vec::new();
        let Some(groups) = self.groups.get(table) else { return found };
        for (carried, members) in groups {
            let shared: Columns = carried.iter().copied().filter(|c| ident.iter().any(|(i, _)| i == c)).collect();
            if shared.is_empty() {
                continue;
            }
            let want: Option<Vec<String>> =
                shared.iter().map(|c| ident.iter().find(|(i, _)| i == c).and_then(|(_, v)| value_key(v))).collect();
            let Some(want) = want else { continue };
            let lookup = self.lookups.entry((table, carried.clone(), shared.clone())).or_insert_with(|| {
                let mut m = ByValue::new();
                for &i in members {
                    let key: Option<Vec<String>> =
                        shared.iter().map(|c| events[i].1.get(*c).and_then(json_key)).collect();
                    if let Some(key) = key {
                        m.entry(key).or_default().push(i);
                    }
                }
                m
            });
            found.extend(lookup.get(&want).into_iter().flatten());
        }
        found.sort_unstable();
        found
    }
}

/// The key of a payload value that [`names_row`] can find equal to a row's.
fn json_key(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(format!("s{s}")),
        serde_json::Value::Number(n) => n.as_i64().map(|n| format!("i{n}")),
        _ => None,
    }
}

/// The key of a row value, matching [`json_key`].
fn value_key(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(format!("s{s}")),
        Value::Integer(n) => Some(format!("i{n}")),
        _ => None,
    }
}

const NATURAL: &[&str] = &["username", "bank", "userid", "queue", "project", "factor", "key", "id"];

fn identity(d: &RowDiff) -> Vec<(String, Value)> {
    let mut cols: Vec<(String, Value)> = match d {
        RowDiff::Added { row, .. } | RowDiff::Removed { row, .. } => row.clone(),
        RowDiff::Changed { key, .. } => key.clone(),
    };
    cols.retain(|(c, _)| NATURAL.contains(&c.as_str()));
    cols
}

/// Runs `diff`.
pub fn cmd_diff(ctx: &Context, args: &Args) -> Result<Output> {
    if ctx.as_of.is_some() {
        return Err(Error::invalid("diff takes its two points as arguments; --as-of cannot be used with it"));
    }
    let ledger = open_read_live(ctx)?;
    let now = ctx.clock.now_us();
    let from = resolve_point(&ledger, &args.from, now, ctx.zone)?;
    let to = resolve_point(&ledger, &args.to, now, ctx.zone)?;
    if from > to {
        return Err(Error::invalid(format!("FROM (seq {from}) is after TO (seq {to})")));
    }
    let a = replay::state_at(&ledger, from).map_err(replay_err)?;
    let b = replay::state_at(&ledger, to).map_err(replay_err)?;
    let mut skipped: Vec<_> = a.skipped().iter().chain(b.skipped()).cloned().collect();
    skipped.sort_by_key(|s| s.seq);
    skipped.dedup();
    crate::db::report_skipped(ctx, &skipped);
    let tables = replay::canonical::state_tables();
    let mut diffs = replay::compare(a.conn(), b.conn(), &tables).map_err(replay_err)?;
    diffs.extend(replay::jobs_added_after(b.conn(), from).map_err(replay_err)?);
    let mut events: Vec<(StoredEvent, serde_json::Value)> = Vec::new();
    if from < to {
        for ev in ledger.stream_range(from.next(), to) {
            let ev = ev?;
            let payload = serde_json::from_slice(&ev.payload).unwrap_or(serde_json::Value::Null);
            events.push((ev, payload));
        }
    }
    // The events on each table, and an index of them by identifying value,
    // built once: a range with many job records has as many row diffs.
    let label = |i: usize| format!("{} {}", events[i].0.seq, events[i].0.kind);
    let mut by_table: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut index = EventIndex::default();
    for (i, (ev, payload)) in events.iter().enumerate() {
        // Every stored event decodes (old versions are upcast); one that
        // does not is named on no table.
        let decoded = Event::decode(&ev.kind, ev.version, &ev.payload).ok();
        for &t in decoded.as_ref().map_or(&[][..], projections::apply::tables_touched) {
            by_table.entry(t).or_default().push(i);
            index.add(t, payload, i);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "diff seq {from} -> seq {to}: {} events, {} rows differ", events.len(), diffs.len());
    for d in &diffs {
        let what = match d {
            RowDiff::Added { row, .. } => format!("added   {} [{}]: {}", d.table(), d.key_text(), row_text(row)),
            RowDiff::Removed { row, .. } => format!("removed {} [{}]: {}", d.table(), d.key_text(), row_text(row)),
            RowDiff::Changed { columns, .. } => {
                let cols: Vec<String> = columns
                    .iter()
                    .map(|(c, x, y)| {
                        format!("{c} {} -> {}", replay::canonical::show_value(x), replay::canonical::show_value(y))
                    })
                    .collect();
                format!("changed {} [{}]: {}", d.table(), d.key_text(), cols.join(", "))
            }
        };
        let ident = identity(d);
        let touching: &[usize] = by_table.get(d.table()).map_or(&[], Vec::as_slice);
        let named: Vec<String> = index
            .candidates(d.table(), &ident, &events)
            .into_iter()
            .filter(|&i| names_row(&events[i].1, &ident))
            .map(&label)
            .collect();
        let by = if named.is_empty() {
            let all: Vec<String> = touching.iter().map(|&i| label(i)).collect();
            if all.is_empty() {
                String::new()
            } else {
                format!("  (events on {}: {})", d.table(), all.join(", "))
            }
        } else {
            format!("  (events: {})", named.join(", "))
        };
        let _ = writeln!(out, "{what}{by}");
    }
    if !by_table.is_empty() {
        out.push_str("events by table:\n");
        // `jobs` is a view over the log, not a state table, but job records
        // are rows it gains.
        for t in tables.iter().chain(&["jobs"]) {
            if let Some(list) = by_table.get(t) {
                let list: Vec<String> = list.iter().map(|&i| label(i)).collect();
                let _ = writeln!(out, "  {t}: {}", list.join(", "));
            }
        }
    }
    Ok(Output::text(out))
}
