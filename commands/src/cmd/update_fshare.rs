//! `update-fshare`: recompute every active association's fair-share.

use fluxacct_core::events::{CentreUsage, CentreUsageFetched, Event, FairshareUpdated};
use projections::model::State;

use crate::centre_view::CENTRE_URL_KEY;
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::usage_view::{association_values, changed, summary};

/// Recompute the fair-share of every active association from the bank
/// tree, the shares and the job usage of the last `update-usage` (weighted
/// tree algorithm), and record it. Inactive associations keep their value.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print one summary line: associations whose fair-share changed, and
    /// the time taken.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision: computes the values and records their count and digest;
/// applying the event recomputes them and checks the digest.
pub fn decide(state: &State<'_>) -> Result<Vec<Event>> {
    if state.root_bank()?.is_none() {
        return Err(Error::invalid("root bank not found, exiting"));
    }
    let values = projections::usage::fairshare_values(state.conn())?;
    Ok(vec![Event::FairshareUpdated(FairshareUpdated {
        associations: values.len() as u64,
        digest: projections::usage::fairshare_digest(&values),
    })])
}

/// The columns the fair-share computation reads
/// ([`projections::usage::fairshare_values`]).
const INPUTS: &[(&str, &[&str])] = projections::seal::INPUTS;

/// Pure decision on a drift check: the differences between the live rows
/// (side A) and the rows the log implies (side B) that touch what the
/// fair-share computation reads. Any is a refusal naming the first:
/// recording a digest of values the log does not imply would bake a hand
/// edit into the log.
pub fn refuse_drift(diffs: &[replay::RowDiff]) -> Result<()> {
    let touches = |d: &&replay::RowDiff| {
        let Some((_, cols)) = INPUTS.iter().find(|(t, _)| *t == d.table()) else { return false };
        match d {
            replay::RowDiff::Changed { columns, .. } => columns.iter().any(|(c, _, _)| cols.contains(&c.as_str())),
            replay::RowDiff::Added { .. } | replay::RowDiff::Removed { .. } => true,
        }
    };
    let relevant: Vec<&replay::RowDiff> = diffs.iter().filter(touches).collect();
    let Some(first) = relevant.first() else { return Ok(()) };
    let what = crate::format::render_check(std::slice::from_ref(*first));
    Err(Error::invalid(format!(
        "update-fshare: the live projections differ from the log in {} place(s) the fair-share depends on \
         (first: {}); refusing to record fair-share computed from them: run `flux account rebuild --check` \
         to see them and `flux account rebuild` to repair them",
        relevant.len(),
        what.lines().next().unwrap_or_default()
    )))
}

/// Makes sure the fair-share inputs of the live projections are what the
/// log implies. First the seal ([`projections::seal`]): when the rows still
/// match the seal the apply path left, they are (one read of the bank and
/// association tables, whatever the length of the log). Otherwise (a hand
/// edit, a ledger sealed by no earlier version) the rows are compared with
/// the state the log implies, replayed from the nearest projection
/// checkpoint; a difference is a refusal, none re-seals the rows.
fn check_inputs(ctx: &Context) -> Result<()> {
    let ledger = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
    if projections::schema::stored_version(ledger.conn())? != Some(projections::schema::PROJECTION_SCHEMA_VERSION) {
        // The write rebuilds the projections from the log first.
        return Ok(());
    }
    ledger.conn().execute_batch("BEGIN")?;
    let sealed = projections::seal::intact(ledger.conn());
    if !matches!(sealed, Ok(false)) {
        let _ = ledger.conn().execute_batch("COMMIT");
        return sealed.map(|_| ()).map_err(Error::from);
    }
    let result = (|| -> Result<(Vec<replay::RowDiff>, Option<replay::AsOf>, String)> {
        let seal = projections::seal::compute(ledger.conn())?;
        let Some((head, _)) = ledger.head()? else { return Ok((Vec::new(), None, seal)) };
        let replayed = replay::state_at(&ledger, head).map_err(crate::db::replay_err)?;
        // What the replay skipped or carried is for `rebuild --check` to
        // report, not for the hourly cron line.
        let tables: Vec<&str> = INPUTS.iter().map(|(t, _)| *t).collect();
        let diffs = replay::compare(ledger.conn(), replayed.conn(), &tables).map_err(crate::db::replay_err)?;
        Ok((diffs, Some(replayed), seal))
    })();
    let _ = ledger.conn().execute_batch("COMMIT");
    let hash = ledger.head()?;
    drop(ledger);
    let (diffs, replayed, seal) = result?;
    refuse_drift(&diffs)?;
    // The rows are what the log implies: seal them (unless they changed
    // since they were compared), so that the next run reads only them. The
    // check replayed from the nearest projection checkpoint: when that was
    // far behind (a ledger never rebuilt), store one at the head too.
    let l = crate::db::open_write(ctx)?;
    l.conn().execute_batch("BEGIN IMMEDIATE")?;
    let saved = (|| -> Result<()> {
        if projections::seal::compute(l.conn())? == seal {
            projections::seal::store(l.conn(), &seal)?;
        }
        if let (Some(view), Some((head, hash))) = (replayed, hash) {
            let far = head.0 - view.checkpoint().map_or(0, |s| s.0) >= replay::history::DEFAULT_CHECKPOINT_EVERY;
            if far && view.seq() == head {
                replay::history::save_checkpoint(l.conn(), view.conn(), head, hash).map_err(crate::db::replay_err)?;
            }
        }
        Ok(())
    })();
    l.conn().execute_batch(if saved.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    saved
}

/// Pure decision: the figures fetched from the centre, kept for this
/// cluster's associations, as an event when they differ from the ones in
/// force (an unchanged fetch records nothing).
pub fn decide_centre_usage(
    state: &State<'_>,
    cluster: &str,
    fetched: Vec<(String, String, f64)>,
) -> Result<Vec<Event>> {
    let local: std::collections::BTreeSet<(String, String)> =
        state.associations()?.into_iter().map(|a| (a.username, a.bank)).collect();
    let figures: Vec<CentreUsage> = fetched
        .into_iter()
        .filter(|(u, b, _)| local.contains(&(u.clone(), b.clone())))
        .map(|(username, bank, usage)| CentreUsage { username, bank, usage })
        .collect();
    let in_force = projections::usage::centre_usage(state.conn())?;
    let same = figures.len() == in_force.len()
        && figures.iter().all(|f| in_force.get(&(f.username.clone(), f.bank.clone())) == Some(&f.usage));
    if same
        && state
            .conn()
            .query_row("SELECT 1 FROM usage_state WHERE key = ?1", [projections::usage::CENTRE_USAGE_KEY], |_| Ok(()))
            .is_ok()
    {
        return Ok(Vec::new());
    }
    Ok(vec![Event::CentreUsageFetched(CentreUsageFetched { cluster: cluster.to_string(), associations: figures })])
}

/// With `fairshare_scope = centre`: fetches the usage of this cluster's
/// associations on the centre's other clusters and records it before the
/// fair-share is computed. When the centre cannot be asked, the figures
/// last fetched stay in force, and the returned note says so.
fn fetch_centre_usage(ctx: &Context) -> Result<Option<String>> {
    let ledger = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
    if !projections::usage::scope_is_centre(ledger.conn())? {
        return Ok(None);
    }
    let last: Option<i64> =
        ledger.conn().query_row("SELECT max(seq) FROM events WHERE kind = 'CentreUsageFetched'", [], |r| r.get(0))?;
    let in_force = match last {
        Some(seq) => format!("the centre's usage fetched at seq {seq} stays in force"),
        None => "no centre usage was ever fetched: this cluster's usage alone counts".to_string(),
    };
    let url = State::new(ledger.conn()).config(CENTRE_URL_KEY)?;
    let cluster = ledger::integrity::centre_cluster(ledger.conn())?;
    let (Some(url), Some(cluster)) = (url, cluster) else {
        return Ok(Some(format!(
            "update-fshare: fairshare_scope = centre, but the config key {CENTRE_URL_KEY} or the cluster name              (given to the first `flux account ship --cluster`) is missing; {in_force}"
        )));
    };
    drop(ledger);
    let fetched = centre::connect(&url).and_then(|mut c| centre::read::usage_elsewhere(&mut c, &cluster));
    match fetched {
        Ok(rows) => {
            crate::db::write(ctx, |s| decide_centre_usage(s, &cluster, rows.clone()))?;
            Ok(None)
        }
        Err(e) => Ok(Some(format!("update-fshare: cannot fetch the usage from the centre ({e}); {in_force}"))),
    }
}

/// Runs `update-fshare`.
pub fn cmd_update_fshare(ctx: &Context, args: &Args) -> Result<Output> {
    let started = std::time::Instant::now();
    let centre_note = fetch_centre_usage(ctx)?;
    check_inputs(ctx)?;
    let mut before = Default::default();
    let ledger = crate::db::write(ctx, |s| {
        if args.verbose {
            before = association_values(s.conn(), "fairshare")?;
        }
        decide(s)
    })?;
    let mut out = Output::none();
    out.notes.extend(centre_note);
    if !args.verbose {
        return Ok(out);
    }
    let after = association_values(ledger.conn(), "fairshare")?;
    out.stdout =
        summary("update-fshare", "changed fair-share", changed(&before, &after), after.len(), started.elapsed());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn given_no_root_when_updating_then_refused() {
        let g = given(&[]);
        assert_eq!(decide(&g.state()).unwrap_err().to_string(), "root bank not found, exiting");
    }

    #[test]
    fn given_two_users_without_usage_when_updating_then_both_rank_first() {
        let g =
            given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A"), Given::User("u2", "A")]);
        let evs = decide(&g.state()).unwrap();
        assert!(matches!(&evs[0], Event::FairshareUpdated(f) if f.associations == 2));
    }

    fn fetched(rows: &[(&str, &str, f64)]) -> Vec<(String, String, f64)> {
        rows.iter().map(|(u, b, x)| (u.to_string(), b.to_string(), *x)).collect()
    }

    fn two_users() -> Vec<Given<'static>> {
        vec![Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A"), Given::User("u2", "A")]
    }

    #[test]
    fn given_centre_figures_when_deciding_then_only_this_clusters_associations_are_kept() {
        let g = given(&two_users());
        let evs =
            decide_centre_usage(&g.state(), "east", fetched(&[("u1", "A", 10.0), ("zz", "A", 5.0), ("u2", "B", 1.0)]))
                .unwrap();
        assert_eq!(
            evs,
            vec![Event::CentreUsageFetched(CentreUsageFetched {
                cluster: "east".into(),
                associations: vec![CentreUsage { username: "u1".into(), bank: "A".into(), usage: 10.0 }],
            })]
        );
    }

    #[test]
    fn given_the_same_figures_in_force_when_deciding_then_nothing_is_recorded() {
        let mut steps = two_users();
        steps.push(Given::Event(Event::CentreUsageFetched(CentreUsageFetched {
            cluster: "east".into(),
            associations: vec![CentreUsage { username: "u1".into(), bank: "A".into(), usage: 10.0 }],
        })));
        let g = given(&steps);
        assert!(decide_centre_usage(&g.state(), "east", fetched(&[("u1", "A", 10.0)])).unwrap().is_empty());
        assert_eq!(decide_centre_usage(&g.state(), "east", fetched(&[("u1", "A", 11.0)])).unwrap().len(), 1);
    }

    #[test]
    fn given_centre_scope_and_usage_elsewhere_when_updating_then_that_user_ranks_lower() {
        let fetched_event = Event::CentreUsageFetched(CentreUsageFetched {
            cluster: "east".into(),
            associations: vec![CentreUsage { username: "u1".into(), bank: "A".into(), usage: 1000.0 }],
        });
        let scope = Event::ConfigAdded(fluxacct_core::events::ConfigSet {
            key: projections::usage::FAIRSHARE_SCOPE_KEY.into(),
            value: "centre".into(),
        });
        let fs = |steps: Vec<Given<'static>>| {
            let g = given(&steps);
            let values = projections::usage::fairshare_values(g.state().conn()).unwrap();
            let of = |u: &str| values.iter().find(|v| v.username == u).unwrap().fairshare;
            (of("u1"), of("u2"))
        };
        let mut local = two_users();
        local.push(Given::Event(fetched_event.clone()));
        let (u1, u2) = fs(local);
        assert_eq!(u1, u2, "the default scope ignores the centre's figures");
        let mut centre = two_users();
        centre.push(Given::Event(scope));
        centre.push(Given::Event(fetched_event));
        let (u1, u2) = fs(centre);
        assert!(u1 < u2, "centre scope: {u1} < {u2}");
    }
}
