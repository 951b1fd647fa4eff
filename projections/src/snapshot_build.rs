//! Building the plugin snapshot from the projection tables.

use rusqlite::Connection;

use crate::error::Error;
use crate::model::{split_list, State};
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder, Weights};

/// Builds the snapshot of the projections in `conn`, which reflect the
/// ledger up to `head`. Associations are in (userid, bank) order, queues and
/// banks in name order, projects in id order.
pub fn build_snapshot(conn: &Connection, head: LedgerHead) -> Result<Snapshot, Error> {
    let state = State::new(conn);
    let mut b = SnapshotBuilder::new(head);
    let mut assocs = state.associations()?;
    assocs.sort_by(|a, b| (a.userid, &a.bank).cmp(&(b.userid, &b.bank)));
    for a in &assocs {
        b.add_association(&AssociationRecord {
            userid: u32::try_from(a.userid).unwrap_or(u32::MAX),
            username: a.username.clone(),
            bank: a.bank.clone(),
            default_bank: a.default_bank.clone(),
            active: a.active != 0,
            fairshare: a.fairshare,
            limits: a.limits(),
            queues: split_list(&a.queues).into_iter().map(str::to_string).collect(),
            projects: split_list(&a.projects).into_iter().map(str::to_string).collect(),
            default_project: a.default_project.clone(),
        });
    }
    let mut queues = state.queues()?;
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    for q in &queues {
        b.add_queue(&QueueRecord::new(q.queue.clone(), q.limits));
    }
    let mut banks = state.banks()?;
    banks.sort_by(|a, b| a.bank.cmp(&b.bank));
    for bank in &banks {
        b.add_bank(&bank.bank, bank.priority);
    }
    for p in state.projects()? {
        b.add_project(&p.project);
    }
    let mut w = Weights::default();
    for (factor, weight) in state.factors()? {
        w.set(&factor, weight);
    }
    b.weights(w);
    let deny = state.config("deny_unknown_queues")?.map(|v| v.trim().eq_ignore_ascii_case("true")).unwrap_or(false);
    b.deny_unknown_queues(deny);
    add_allocations(conn, &state, &banks, &mut b)?;
    let snap = b.build();
    debug_assert!(
        assocs.windows(2).all(|w| (w[0].userid, &w[0].bank) <= (w[1].userid, &w[1].bank)),
        "associations in (userid, bank) order"
    );
    debug_assert_eq!(snap.associations.len(), assocs.len(), "one snapshot row per association");
    debug_assert!(
        snap.queues.windows(2).all(|w| snap.str(w[0].name) < snap.str(w[1].name)),
        "queues in strictly increasing name order (names are unique)"
    );
    debug_assert!(
        snap.banks.windows(2).all(|w| snap.str(w[0].name) < snap.str(w[1].name)),
        "banks in strictly increasing name order (names are unique)"
    );
    debug_assert_eq!(snap.head, head, "the snapshot reflects the head it was built at");
    Ok(snap)
}

/// The allocations part, only when the ledger has an allocation not
/// deleted (so a ledger without any gives the snapshot bytes it gave
/// before allocations existed): the site's policy and lien settings, the
/// `charge` weights, the queue charge factors, and each allocation with
/// the banks it covers (its bank and every bank below it, in name order).
fn add_allocations(
    conn: &Connection,
    state: &State<'_>,
    banks: &[crate::model::Bank],
    b: &mut SnapshotBuilder,
) -> Result<(), Error> {
    use fluxacct_core::allocation::{
        Exhausted, Unit, CONFIG_EXHAUSTED, CONFIG_LIENS, CONFIG_LIEN_DEFAULT_DURATION, DEFAULT_LIEN_DURATION_S,
    };
    let allocs: Vec<_> = crate::allocation::allocations(conn)?.into_iter().filter(|a| a.active).collect();
    if allocs.is_empty() {
        return Ok(());
    }
    let site = state.config(CONFIG_EXHAUSTED)?.and_then(|v| Exhausted::parse(&v)).unwrap_or_default();
    let liens = state.config(CONFIG_LIENS)?.map(|v| v.trim().eq_ignore_ascii_case("true")).unwrap_or(false);
    let lien_s = state
        .config(CONFIG_LIEN_DEFAULT_DURATION)?
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|&d| d > 0)
        .unwrap_or(DEFAULT_LIEN_DURATION_S);
    b.allocation_settings(site, liens, lien_s, crate::allocation::resource_weights(conn)?);
    let mut factors: Vec<(String, f64)> = conn
        .prepare("SELECT queue, charge_factor FROM queue_charge_factor ORDER BY queue")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    factors.sort_by(|x, y| x.0.cmp(&y.0));
    for (q, f) in &factors {
        b.add_queue_factor(q, *f);
    }
    let mut children: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for bank in banks {
        children.entry(bank.parent_bank.as_str()).or_default().push(bank.bank.as_str());
    }
    for a in &allocs {
        let mut covered = vec![a.bank.clone()];
        let mut i = 0;
        while i < covered.len() {
            if let Some(kids) = children.get(covered[i].as_str()) {
                for k in kids {
                    if !covered.iter().any(|c| c == k) {
                        covered.push(k.to_string());
                    }
                }
            }
            i += 1;
        }
        covered.sort();
        b.add_allocation(&fluxacct_core::snapshot::AllocationRecord {
            name: a.name.clone(),
            banks: covered,
            project: a.project.clone().unwrap_or_default(),
            unit: Unit::parse(&a.unit).unwrap_or(Unit::Charge),
            allocated_milli: a.allocated_milli,
            remaining_milli: a.remaining_milli,
            start_s: a.start_s,
            end_s: a.end_s,
            exhausted: a.exhausted.as_deref().and_then(Exhausted::parse),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluxacct_core::events::*;
    use fluxacct_core::{Actor, EventMeta};
    use ledger::Ledger;

    #[test]
    fn snapshot_reflects_the_projections_and_round_trips() {
        let mut l = Ledger::in_memory().unwrap();
        crate::schema::create(l.conn()).unwrap();
        let meta = EventMeta { recorded_at_us: 1_000_000, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
        let evs = vec![
            Event::DbCreated(DbCreated::with_defaults(1.0)),
            Event::BankAdded(BankAdded {
                bank: "root".into(),
                parent_bank: String::new(),
                shares: 1,
                priority: 0.0,
                ignore_older_than: 0,
            }),
            Event::BankAdded(BankAdded {
                bank: "giants".into(),
                parent_bank: "root".into(),
                shares: 1,
                priority: 2.5,
                ignore_older_than: 0,
            }),
            Event::ProjectAdded(ProjectRef { project: "shortstops".into() }),
            Event::AssociationAdded(AssociationAdded {
                projects: "shortstops,*".into(),
                default_project: "shortstops".into(),
                ..AssociationAdded::with_defaults("crawford", 5035, "giants")
            }),
            Event::FactorWeightSet(FactorWeightSet { factor: "bank".into(), weight: 7 }),
            Event::ConfigEdited(ConfigSet { key: "deny_unknown_queues".into(), value: "True".into() }),
        ];
        let mut tx = l.transaction().unwrap();
        crate::append_and_apply(&mut tx, &meta, &evs).unwrap();
        let (seq, hash) = tx.head().unwrap();
        tx.commit().unwrap();
        let snap = build_snapshot(l.conn(), LedgerHead { seq, hash }).unwrap();
        assert_eq!(snap.head.seq, seq);
        assert_eq!(snap.associations.len(), 1);
        let a = snap.association_record(&snap.associations[0]);
        assert_eq!((a.userid, a.bank.as_str(), a.default_project.as_str()), (5035, "giants", "shortstops"));
        assert_eq!(a.projects, vec!["shortstops".to_string(), "*".to_string()]);
        assert_eq!(snap.weights.bank, 7);
        assert_eq!(snap.weights.fairshare, 100000);
        assert!(snap.deny_unknown_queues);
        assert_eq!(snap.banks.len(), 2);
        let bytes = snap.encode().unwrap();
        assert_eq!(fluxacct_core::snapshot::Snapshot::decode(&bytes).unwrap(), snap);
    }
}
