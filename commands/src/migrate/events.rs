//! The events of an imported site: its rows, its closing usage, and the
//! record of each source job.

use fluxacct_core::events::*;

use super::site::{Site, DEFAULT_CONFIG};
#[cfg(test)]
use super::{site::r_err, source::Row};
#[cfg(test)]
use crate::error::Result;

/// Pure: the events that establish `site` after its genesis and the
/// `SiteImported` event, except the job records and the closing
/// `UsageImported` ([`usage_event`]).
pub fn site_events(site: &Site) -> Vec<Event> {
    let mut ev = Vec::new();
    for (k, v) in &site.config {
        let set = ConfigSet { key: k.clone(), value: v.clone() };
        if DEFAULT_CONFIG.iter().any(|(d, _)| d == k) {
            ev.push(Event::ConfigEdited(set));
        } else {
            ev.push(Event::ConfigAdded(set));
        }
    }
    for (f, w) in &site.factors {
        ev.push(Event::FactorWeightSet(FactorWeightSet { factor: f.clone(), weight: *w }));
    }
    for p in &site.projects {
        ev.push(Event::ProjectAdded(ProjectRef { project: p.clone() }));
    }
    for q in &site.queues {
        ev.push(Event::QueueAdded(q.clone()));
    }
    for b in &site.banks {
        ev.push(Event::BankAdded(b.added.clone()));
    }
    for a in &site.associations {
        ev.push(Event::AssociationAdded(a.added.clone()));
    }
    // Disabled rows after every row exists (a disabled bank's users may be
    // added after it).
    for b in site.banks.iter().filter(|b| !b.active) {
        ev.push(Event::BankDisabled(BankRef { bank: b.added.bank.clone() }));
    }
    for a in site.associations.iter().filter(|a| !a.active) {
        ev.push(Event::AssociationDisabled(AssocRef {
            username: a.added.username.clone(),
            bank: a.added.bank.clone(),
        }));
    }
    ev
}

/// Pure: the closing `UsageImported` event of `site`.
pub fn usage_event(site: &Site) -> Event {
    Event::UsageImported(UsageImported {
        as_of: site.as_of,
        end_half_life_period: site.end_half_life_period,
        banks: site.banks.iter().map(|b| ImportedBank { bank: b.added.bank.clone(), job_usage: b.job_usage }).collect(),
        associations: site.associations.iter().map(|a| a.carried.clone()).collect(),
    })
}

/// Pure: the job record of one source `jobs` row.
/// The straightforward reading that pins the streaming one of the jobs
/// module (a unit test compares the two), hence test-only.
#[cfg(test)]
pub(crate) fn job_event(r: &Row) -> Result<JobRecorded> {
    let id = match r.json("id") {
        serde_json::Value::String(s) => match s.trim().parse::<u64>() {
            Ok(n) => serde_json::json!(n),
            Err(_) => serde_json::Value::String(s),
        },
        v => v,
    };
    let mut job = serde_json::Map::new();
    job.insert("id".into(), id);
    for c in
        ["userid", "t_submit", "t_run", "t_inactive", "ranks", "R", "jobspec", "project", "bank", "requested_duration"]
    {
        if r.has(c) {
            job.insert(c.into(), r.json(c));
        }
    }
    for c in ["userid", "t_inactive"] {
        if matches!(job.get(c), Some(serde_json::Value::Null)) {
            return Err(r_err(r, &format!("NULL in column {c}")));
        }
    }
    // A jobspec of another shape carries no bank, project or queue (as the
    // streaming reader reads it).
    let spec = match job.get("jobspec") {
        Some(serde_json::Value::String(t)) => serde_json::from_str(t).ok(),
        other => other.cloned(),
    };
    if spec.as_ref().and_then(|j: &serde_json::Value| j.get("attributes")).is_some_and(|a| !a.is_object()) {
        job.remove("jobspec");
    }
    let bytes = serde_json::to_vec(&serde_json::Value::Object(job)).map_err(|e| r_err(r, &e.to_string()))?;
    // Imported history has no "too far in the future" bound.
    fluxacct_ingest::record::parse(&bytes)
        .and_then(|j| fluxacct_ingest::record::check(&j, f64::INFINITY))
        .map_err(|e| r_err(r, &e.reason))
}
