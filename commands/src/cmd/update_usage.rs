//! `update-usage`: bring every association's job usage up to now.

use projections::events::{Event, UsageUpdated};
use projections::model::State;
use serde_json::json;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::Rows;

/// Update the job usage of every association and bank as of now: bins the
/// jobs recorded since the last update (and those that had not ended yet),
/// applies the half-life decay per period, and rolls usage up the bank
/// tree. Run `fetch-job-records` first to record finished jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Accepted for compatibility with flux-accounting's cron line and
    /// ignored: jobs come from `fetch-job-records`.
    #[arg(long = "job-archive_db_path", alias = "job-archive-db-path", value_name = "PATH", hide = true)]
    pub job_archive_db_path: Option<String>,
    /// Accepted for compatibility and ignored: the half-life is a ledger
    /// setting (`edit-config`).
    #[arg(long = "priority-decay-half-life", value_name = "WEEKS", hide = true)]
    pub priority_decay_half_life: Option<String>,
}

/// Pure decision: a usage update as of `now` (epoch seconds), refused when
/// the previous update is later.
pub fn decide(state: &State<'_>, now: f64) -> Result<Vec<Event>> {
    if let Some(prev) = projections::usage::last_as_of(state.conn())? {
        if prev > now {
            return Err(Error::invalid(format!(
                "cannot update usage as of {now}: the previous usage update was as of {prev}, which is later"
            )));
        }
    }
    Ok(vec![Event::UsageUpdated(UsageUpdated { as_of: now })])
}

/// Runs `update-usage`.
pub fn cmd_update_usage(ctx: &Context, _args: &Args) -> Result<Output> {
    let now = ctx.clock.now_secs();
    // Cron runs this hourly: it also verifies the chain from the last
    // verified seq to the head, and refuses to build on a break.
    crate::chain::verify_incrementally(&crate::db::open_write(ctx)?)?;
    crate::db::write(ctx, |s| decide(s, now))?;
    Ok(Output::none())
}

/// The per-period raw usage behind each `job_usage` of `username`
/// (`view-user -J/--job-usage`): columns `username`, `userid`, `bank`,
/// `usage_factor_period_0` (the period of the last usage update) …
/// `usage_factor_period_N`, one row per association.
pub fn usage_rows(state: &State<'_>, username: &str) -> Result<Rows> {
    let p = projections::usage::params(state.conn())?;
    let mut cols: Vec<String> = vec!["username".into(), "userid".into(), "bank".into()];
    for k in 0..=p.n() {
        cols.push(format!("usage_factor_period_{k}"));
    }
    let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut rows = Rows::new(&col_refs);
    for a in state.associations_of_user(username)? {
        let mut row = vec![json!(a.username), json!(a.userid), json!(a.bank)];
        for v in projections::usage::period_usage(state.conn(), a.userid, &a.bank)? {
            row.push(json!(v));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn given_later_update_when_updating_earlier_then_refused() {
        let g = given(&[Given::Event(Event::UsageUpdated(UsageUpdated { as_of: 100.0 }))]);
        let e = decide(&g.state(), 50.0).unwrap_err().to_string();
        assert!(e.contains("previous usage update was as of 100"), "{e}");
        assert_eq!(decide(&g.state(), 100.0).unwrap(), vec![Event::UsageUpdated(UsageUpdated { as_of: 100.0 })]);
    }

    #[test]
    fn usage_rows_have_one_column_per_period() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u", "A")]);
        let rows = usage_rows(&g.state(), "u").unwrap();
        assert_eq!(rows.columns.len(), 3 + 5);
        assert_eq!(rows.rows[0][7], json!(0.0));
    }
}
