//! Allocation enforcement (docs/allocations.md): what the snapshot's
//! allocations say about a job, and the liens the plugin takes itself.
//!
//! The snapshot carries each allocation's remaining balance as of the
//! ledger head. With liens on, the plugin also reserves, for every job it
//! lets past DEPEND, the job's requested duration × resources × rate
//! against the allocation it will be charged to; a finished job's lien is
//! kept until the next snapshot load (which carries its charge). A job whose
//! lien would overdraw is held.

use std::collections::{BTreeMap, HashMap};

use fluxacct_core::allocation::{charge_milli, exhausted_message, Exhausted, JobResources, ResourceWeights, Unit};
use fluxacct_core::snapshot::Snapshot;

use crate::jobin::Resources;

/// One allocation, names spelled out.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    project: String,
    unit: Unit,
    allocated_milli: i64,
    remaining_milli: i64,
    start_s: i64,
    end_s: i64,
    policy: Exhausted,
}

/// The allocations of a loaded snapshot, indexed by bank.
#[derive(Debug, Clone, Default)]
pub(super) struct AllocIndex {
    entries: Vec<Entry>,
    /// Bank → the entries covering it, in (end, name) order.
    by_bank: HashMap<String, Vec<usize>>,
    factors: HashMap<String, f64>,
    weights: ResourceWeights,
    /// Whether liens are on.
    pub(super) liens: bool,
    lien_default_s: i64,
}

/// A job as the allocations see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ask<'a> {
    /// The association's bank.
    pub bank: &'a str,
    /// The job's project ("" for none).
    pub project: &'a str,
    /// The job's queue.
    pub queue: Option<&'a str>,
    /// Its resources.
    pub res: Resources,
    /// Requested duration (0: the site default).
    pub duration_s: f64,
    /// The time now, if known (allocations outside their period do not count).
    pub now_s: Option<i64>,
}

/// What the allocations say about a job.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// No allocation covers it: nothing to enforce.
    Free,
    /// An allocation has room; with liens on, the lien to take (allocation, milli-units).
    Fits(Option<(String, i64)>),
    /// Every covering allocation is spent (or, with liens, too low for its lien).
    Exhausted {
        /// The policy of the allocation that ends first.
        policy: Exhausted,
        /// "allocation NAME exhausted: X of Y UNIT left".
        message: String,
    },
}

impl AllocIndex {
    /// The allocations of `snap`, if it has any.
    pub(super) fn new(snap: &Snapshot) -> Option<AllocIndex> {
        let a = snap.allocations.as_ref()?;
        let site = Exhausted::from_code(a.site_exhausted);
        let mut entries: Vec<(Entry, Vec<String>)> = a
            .entries
            .iter()
            .map(|e| {
                let entry = Entry {
                    name: snap.str(e.name).to_string(),
                    project: snap.str(e.project).to_string(),
                    unit: Unit::from_code(e.unit),
                    allocated_milli: e.allocated_milli,
                    remaining_milli: e.remaining_milli,
                    start_s: e.start_s,
                    end_s: e.end_s,
                    policy: e.exhausted.map(Exhausted::from_code).unwrap_or(site),
                };
                (entry, snap.list_names(e.banks))
            })
            .collect();
        entries.sort_by(|x, y| (x.0.end_s, &x.0.name).cmp(&(y.0.end_s, &y.0.name)));
        let mut by_bank: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (_, banks)) in entries.iter().enumerate() {
            for b in banks {
                by_bank.entry(b.clone()).or_default().push(i);
            }
        }
        Some(AllocIndex {
            entries: entries.into_iter().map(|(e, _)| e).collect(),
            by_bank,
            factors: a.queue_factors.iter().map(|&(q, f)| (snap.str(q).to_string(), f)).collect(),
            weights: a.weights,
            liens: a.liens,
            lien_default_s: a.lien_default_duration_s,
        })
    }

    /// What the allocations say about `ask`, with `reserved` (allocation →
    /// milli-units held by liens) already taken, less `own` (the lien the
    /// job itself holds, if any). With `want_lien` (and liens on) an
    /// allocation must have room for the job's lien; else it must have a
    /// balance left.
    pub(super) fn judge(
        &self,
        ask: &Ask<'_>,
        reserved: &BTreeMap<String, i64>,
        own: Option<&(String, i64)>,
        want_lien: bool,
    ) -> Verdict {
        let Some(idx) = self.by_bank.get(ask.bank) else { return Verdict::Free };
        let factor = ask.queue.and_then(|q| self.factors.get(q)).copied().unwrap_or(1.0);
        let seconds = if ask.duration_s > 0.0 { ask.duration_s } else { self.lien_default_s as f64 };
        let res = JobResources { nnodes: ask.res.nnodes, ncores: ask.res.ncores, ngpus: ask.res.ngpus };
        let mut first: Option<(usize, i64)> = None;
        for &i in idx {
            let e = &self.entries[i];
            if !e.project.is_empty() && e.project != ask.project {
                continue;
            }
            if ask.now_s.is_some_and(|now| now < e.start_s || now >= e.end_s) {
                continue;
            }
            let lien = charge_milli(e.unit, self.weights, factor, res, seconds);
            if lien == 0 {
                // The job uses nothing this allocation counts.
                continue;
            }
            let held = if self.liens {
                let mine = own.filter(|(n, _)| *n == e.name).map_or(0, |(_, m)| *m);
                reserved.get(&e.name).copied().unwrap_or(0).saturating_sub(mine)
            } else {
                0
            };
            let left = e.remaining_milli.saturating_sub(held);
            first.get_or_insert((i, left));
            let take = self.liens && want_lien;
            if left > 0 && (!take || left >= lien) {
                return Verdict::Fits(take.then(|| (e.name.clone(), lien)));
            }
        }
        match first {
            None => Verdict::Free,
            Some((i, left)) => {
                let e = &self.entries[i];
                Verdict::Exhausted {
                    policy: e.policy,
                    message: exhausted_message(&e.name, left, e.allocated_milli, e.unit),
                }
            }
        }
    }
}
