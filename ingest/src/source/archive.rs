//! The job-archive source: the `jobs` table of an old flux-core
//! job-archive database.

use std::borrow::Cow;

use super::{checked, Batcher, Position, Sink, SourceError};
use crate::record::{self as jobs, Embedded, IdField, JobInput, Rejection};

/// Reads an old flux-core job-archive database (`jobs` table: id, userid,
/// t_submit, t_run, t_inactive, ranks, R, jobspec) in `t_inactive` order,
/// checking every row at ingest time `now`. Rows with an empty `R` (jobs
/// that never ran) are skipped, as flux-accounting skips them.
pub fn read_archive(
    conn: &rusqlite::Connection,
    batch: usize,
    now: f64,
    sink: &mut Sink<'_>,
) -> Result<(), SourceError> {
    use rusqlite::types::ValueRef;
    let mut b = Batcher::new(batch, sink);
    let mut stmt = conn
        .prepare("SELECT id, userid, t_submit, t_run, t_inactive, ranks, R, jobspec FROM jobs ORDER BY t_inactive, id")
        .map_err(|e| SourceError::Other(crate::Error::invalid(format!("not a job-archive database: {e}"))))?;
    let mut rows = stmt.query([]).map_err(|e| SourceError::Other(e.into()))?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(|e| SourceError::Other(e.into()))? {
        n += 1;
        let pos = Position::ArchiveRow(n);
        let v = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
        let mut bad: Option<String> = None;
        let num = |i: usize, k: &str, bad: &mut Option<String>| -> Option<f64> {
            match v(i) {
                ValueRef::Null => None,
                ValueRef::Integer(x) => Some(x as f64),
                ValueRef::Real(x) => Some(x),
                ValueRef::Text(t) => match std::str::from_utf8(t).ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(x) => Some(x),
                    None => {
                        bad.get_or_insert(format!("{k} is not a number"));
                        None
                    }
                },
                ValueRef::Blob(_) => {
                    bad.get_or_insert(format!("{k} is not a number"));
                    None
                }
            }
        };
        let text = |i: usize, k: &str, bad: &mut Option<String>| -> Option<&str> {
            match v(i) {
                ValueRef::Null => None,
                ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        bad.get_or_insert(format!("{k} is not UTF-8 text"));
                        None
                    }
                },
                _ => {
                    bad.get_or_insert(format!("{k} is not text"));
                    None
                }
            }
        };
        let r = text(6, "R", &mut bad);
        if r.is_none_or(|s| s.trim().is_empty()) && bad.is_none() {
            continue;
        }
        let id = match v(0) {
            ValueRef::Integer(x) => {
                Some(u64::try_from(x).map(IdField::Ok).unwrap_or_else(|_| IdField::Bad(format!("id {x} is negative"))))
            }
            ValueRef::Text(t) => {
                let s = String::from_utf8_lossy(t);
                Some(
                    jobs::parse_jobid(s.trim())
                        .map(IdField::Ok)
                        .unwrap_or_else(|| IdField::Bad(format!("id {s:?} is not a job id"))),
                )
            }
            ValueRef::Null => None,
            _ => Some(IdField::Bad("id is not a job id".into())),
        };
        let input = JobInput {
            id,
            userid: num(1, "userid", &mut bad),
            t_submit: num(2, "t_submit", &mut bad),
            t_run: num(3, "t_run", &mut bad),
            t_inactive: num(4, "t_inactive", &mut bad),
            ranks: text(5, "ranks", &mut bad).map(Cow::Borrowed),
            r: r.map(Embedded::Text),
            jobspec: text(7, "jobspec", &mut bad).map(Embedded::Text),
            ..JobInput::default()
        };
        let rec = match bad {
            Some(why) => {
                let id = match input.id {
                    Some(IdField::Ok(id)) => Some(id),
                    _ => None,
                };
                Err(Rejection { id, reason: why })
            }
            None => jobs::check(&input, now),
        };
        if !b.push(n, checked(pos, rec)) {
            return Ok(());
        }
    }
    b.flush();
    Ok(())
}

/// Opens a job-archive database read-only, refusing a missing file and a
/// database without a readable `jobs` table.
pub fn open(path: &std::path::Path) -> crate::Result<rusqlite::Connection> {
    use crate::Error;
    if !path.exists() {
        return Err(Error::invalid(format!("job-archive database does not exist: {}", path.display())));
    }
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::invalid(format!("{} is not a job-archive database: {e}", path.display())))?;
    Ok(conn)
}
