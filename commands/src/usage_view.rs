//! Association usage seen from the commands: the per-period usage of a
//! user (`view-user -J`), and the `-v` summary of the commands that change
//! usage, fair-share or the snapshot.

use projections::model::State;
use serde_json::json;

use crate::error::Result;
use crate::format::Rows;

/// `column` of every association, by (userid, bank).
pub fn association_values(
    conn: &rusqlite::Connection,
    column: &str,
) -> Result<std::collections::BTreeMap<(i64, String), f64>> {
    let mut stmt = conn.prepare(&format!("SELECT userid, bank, {column} FROM association_table"))?;
    let rows = stmt.query_map([], |r| Ok(((r.get::<_, i64>(0)?, r.get::<_, String>(1)?), r.get::<_, f64>(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many entries of `after` differ from (or are missing in) `before`.
pub fn changed(
    before: &std::collections::BTreeMap<(i64, String), f64>,
    after: &std::collections::BTreeMap<(i64, String), f64>,
) -> usize {
    after.iter().filter(|(k, v)| before.get(*k).is_none_or(|b| b.to_bits() != v.to_bits())).count()
}

/// The `-v` summary line of update-usage, update-fshare and priority-update.
pub fn summary(command: &str, what: &str, n: usize, of: usize, took: std::time::Duration) -> String {
    format!("{command}: {n} of {of} associations {what} in {:.3} s\n", took.as_secs_f64())
}

/// The per-period usage behind each `job_usage` of `username`
/// (`view-user -J/--job-usage`), in flux-accounting 0.60's layout of
/// `job_usage_per_association_table`: columns `username`, `userid`, `bank`,
/// `period`, `value`; one row per association and period, period 0 being
/// the period of the last usage update and period k the k-th before it.
/// `value` is the period's usage with its decay applied (`D^k · U_k`), so
/// an association's values add up to its `job_usage`, as the 0.60 bins do.
pub fn usage_rows(state: &State<'_>, username: &str) -> Result<Rows> {
    let p = projections::usage::params(state.conn())?;
    let mut rows = Rows::new(&["username", "userid", "bank", "period", "value"]);
    for a in state.associations_of_user(username)? {
        let mut factor = 1.0;
        for (k, raw) in projections::usage::period_usage(state.conn(), a.userid, &a.bank)?.into_iter().enumerate() {
            rows.push(vec![json!(a.username), json!(a.userid), json!(a.bank), json!(k), json!(raw * factor)]);
            factor *= p.decay;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn changed_counts_new_and_different_values() {
        let a = [((1, "A".to_string()), 1.0), ((2, "A".to_string()), 2.0)].into_iter().collect();
        let b = [((1, "A".to_string()), 1.0), ((2, "A".to_string()), 3.0), ((3, "A".to_string()), 0.0)]
            .into_iter()
            .collect();
        assert_eq!(changed(&a, &b), 2);
    }

    #[test]
    fn usage_rows_have_one_row_per_association_and_period() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
        ]);
        let rows = usage_rows(&g.state(), "u").unwrap();
        assert_eq!(rows.columns, ["username", "userid", "bank", "period", "value"]);
        assert_eq!(rows.rows.len(), 2 * 5, "N + 1 periods per association");
        assert_eq!(rows.rows[0][2], json!("A"));
        assert_eq!(rows.rows[4][3], json!(4));
        assert_eq!(rows.rows[5][2], json!("B"));
        assert_eq!(rows.rows[9][4], json!(0.0));
    }
}
