//! Row-by-row comparison of two sets of projection tables: a merge join on
//! the primary key, streaming both sides in key order.

use std::cmp::Ordering;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Rows};

use crate::canonical::{cmp_keys, same_value, show_value, TableInfo};
use crate::Result;

/// One difference between side A and side B of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum RowDiff {
    /// A row only side B has.
    Added {
        /// Table.
        table: String,
        /// Primary-key columns and values.
        key: Vec<(String, Value)>,
        /// The whole row (column, value).
        row: Vec<(String, Value)>,
    },
    /// A row only side A has.
    Removed {
        /// Table.
        table: String,
        /// Primary-key columns and values.
        key: Vec<(String, Value)>,
        /// The whole row (column, value).
        row: Vec<(String, Value)>,
    },
    /// A row both sides have, with different values in some columns.
    Changed {
        /// Table.
        table: String,
        /// Primary-key columns and values.
        key: Vec<(String, Value)>,
        /// (column, value on A, value on B) for each differing column.
        columns: Vec<(String, Value, Value)>,
    },
}

impl RowDiff {
    /// The table the row belongs to.
    pub fn table(&self) -> &str {
        match self {
            RowDiff::Added { table, .. } | RowDiff::Removed { table, .. } | RowDiff::Changed { table, .. } => table,
        }
    }

    /// The row's key.
    pub fn key(&self) -> &[(String, Value)] {
        match self {
            RowDiff::Added { key, .. } | RowDiff::Removed { key, .. } | RowDiff::Changed { key, .. } => key,
        }
    }

    /// The key as `col=value, col=value`.
    pub fn key_text(&self) -> String {
        self.key().iter().map(|(c, v)| format!("{c}={}", show_value(v))).collect::<Vec<_>>().join(", ")
    }
}

fn next_row(rows: &mut Rows<'_>, n: usize) -> Result<Option<Vec<Value>>> {
    match rows.next()? {
        None => Ok(None),
        Some(r) => {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(cell_value(r.get_ref(i)?));
            }
            Ok(Some(row))
        }
    }
}

/// A cell as stored, without panicking on bytes that are not what their
/// type says: text that is not UTF-8 comes back as a blob of its bytes, so
/// it differs from any text and is reported as a difference.
pub fn cell_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::Blob(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn named(info: &TableInfo, idx: &[usize], row: &[Value]) -> Vec<(String, Value)> {
    idx.iter().map(|&i| (info.columns[i].clone(), row[i].clone())).collect()
}

/// Compares `tables` (read from `a` and `b`, which must have the same
/// columns) and returns every differing row, table by table in the order
/// given, rows in key order.
pub fn compare(a: &Connection, b: &Connection, tables: &[&str]) -> Result<Vec<RowDiff>> {
    let mut out = Vec::new();
    for t in tables {
        let info = TableInfo::read(a, t)?;
        let info_b = TableInfo::read(b, t)?;
        if info.columns != info_b.columns {
            return Err(crate::Error::invalid(format!("table {t} has different columns on the two sides")));
        }
        let n = info.columns.len();
        let all: Vec<usize> = (0..n).collect();
        // Read every cell from the table's own rows (`NOT INDEXED`): a
        // covering index would otherwise supply key columns from the index
        // and hide a damaged table cell.
        let sql = info.select_ordered().replacen(" ORDER BY ", " NOT INDEXED ORDER BY ", 1);
        let mut sa = a.prepare(&sql)?;
        let mut sb = b.prepare(&sql)?;
        let mut ra = sa.query([])?;
        let mut rb = sb.query([])?;
        let mut x = next_row(&mut ra, n)?;
        let mut y = next_row(&mut rb, n)?;
        loop {
            let ord = match (&x, &y) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(p), Some(q)) => cmp_keys(&info.key(p), &info.key(q)),
            };
            match ord {
                Ordering::Less => {
                    if let Some(p) = x.take() {
                        out.push(RowDiff::Removed {
                            table: t.to_string(),
                            key: named(&info, &info.pk, &p),
                            row: named(&info, &all, &p),
                        });
                    }
                    x = next_row(&mut ra, n)?;
                }
                Ordering::Greater => {
                    if let Some(q) = y.take() {
                        out.push(RowDiff::Added {
                            table: t.to_string(),
                            key: named(&info, &info.pk, &q),
                            row: named(&info, &all, &q),
                        });
                    }
                    y = next_row(&mut rb, n)?;
                }
                Ordering::Equal => {
                    if let (Some(p), Some(q)) = (&x, &y) {
                        let cols: Vec<(String, Value, Value)> = (0..n)
                            .filter(|&i| !same_value(&p[i], &q[i]))
                            .map(|i| (info.columns[i].clone(), p[i].clone(), q[i].clone()))
                            .collect();
                        if !cols.is_empty() {
                            out.push(RowDiff::Changed {
                                table: t.to_string(),
                                key: named(&info, &info.pk, p),
                                columns: cols,
                            });
                        }
                    }
                    x = next_row(&mut ra, n)?;
                    y = next_row(&mut rb, n)?;
                }
            }
        }
    }
    Ok(out)
}

/// The job records of `conn` (a state of the ledger, whose `jobs` view
/// reads the log) recorded after seq `after`, as rows added to `jobs`, in
/// seq order. Job records are insert-only, so between two points of one
/// log this is the whole difference of `jobs`.
pub fn jobs_added_after(conn: &Connection, after: fluxacct_core::Seq) -> Result<Vec<RowDiff>> {
    // A job record whose payload is not JSON (skipped and named by the
    // replay) would fail the view's JSON functions for the whole query.
    let mut stmt = conn.prepare(
        "SELECT * FROM jobs WHERE seq > ?1 AND seq NOT IN (SELECT seq FROM events WHERE kind = 'JobRecorded' \
         AND seq > ?1 AND NOT json_valid(CAST(payload AS TEXT))) ORDER BY seq",
    )?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    let mut rows = stmt.query([after.0 as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            row.push((c.clone(), cell_value(r.get_ref(i)?)));
        }
        let key = row.iter().filter(|(c, _)| c == "id").cloned().collect();
        out.push(RowDiff::Added { table: "jobs".to_string(), key, row });
    }
    Ok(out)
}
