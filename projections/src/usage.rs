//! The usage projection: job records, per-period usage bins with half-life
//! decay, bank roll-up, and fair-share. Follows
//! `shared/specs/usage-and-fairshare.md`.

use rusqlite::{params, Connection};

use crate::apply::ApplyCtx;
use crate::error::Error;
use crate::events::Event;

/// Applies the usage side of an event (called for every event, after the
/// admin tables are updated).
pub fn apply(conn: &Connection, _ctx: &ApplyCtx, ev: &Event) -> Result<(), Error> {
    if let Event::JobRecorded(j) = ev {
        let r = match &j.r {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| Error::Encode(e.to_string()))?),
            None => None,
        };
        conn.prepare_cached(
            "INSERT INTO jobs(id, seq, userid, username, t_submit, t_run, t_inactive, ranks, R, project, bank, queue, \
             nnodes, ncores, ngpus, requested_duration, actual_duration) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
        )?
        .execute(params![
            j.id as i64,
            _ctx.seq as i64,
            j.userid,
            j.username,
            j.t_submit,
            j.t_run,
            j.t_inactive,
            j.ranks.clone().unwrap_or_default(),
            r,
            j.project,
            j.bank,
            j.queue,
            j.nnodes,
            j.ncores,
            j.ngpus,
            j.requested_duration,
            if j.t_run > 0.0 && j.t_inactive >= j.t_run { j.t_inactive - j.t_run } else { 0.0 }
        ])?;
    }
    Ok(())
}
