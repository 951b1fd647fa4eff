//! flux-accounting's `flux account export-json` object (the load-time
//! `config=` conf key), turned into a [`Snapshot`].
//!
//! Shapes (each key optional): `associations` (the 13 `rec_update` keys),
//! `queues` (the 10 `rec_q_update` keys), `projects` (`[{project}]`),
//! `banks` (`[{bank, priority}]`), `priority_factors` (`[{factor, weight}]`)
//! and `config` (`{deny_unknown_queues}`). Unlike flux-accounting, the
//! factor weights given here take effect.

use fluxacct_core::limits::AssocLimits;
use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder, Weights};
use serde::Deserialize;
use serde_json::Value;

use crate::PluginError;

#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    associations: Vec<Assoc>,
    #[serde(default)]
    queues: Vec<Q>,
    #[serde(default)]
    projects: Vec<Project>,
    #[serde(default)]
    banks: Vec<Bank>,
    #[serde(default)]
    priority_factors: Vec<Factor>,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize)]
struct Assoc {
    userid: u32,
    bank: String,
    def_bank: String,
    fairshare: f64,
    max_running_jobs: i64,
    max_active_jobs: i64,
    queues: String,
    active: i64,
    projects: String,
    def_project: String,
    max_nodes: i64,
    max_cores: i64,
    max_sched_jobs: i64,
}

#[derive(Deserialize)]
struct Q {
    queue: String,
    #[serde(flatten)]
    limits: QueueLimits,
}

#[derive(Deserialize)]
struct Project {
    project: String,
}

#[derive(Deserialize)]
struct Bank {
    bank: String,
    priority: f64,
}

#[derive(Deserialize)]
struct Factor {
    factor: String,
    weight: i64,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    deny_unknown_queues: bool,
}

fn split(s: &str) -> Vec<String> {
    fluxacct_core::split_list(s).into_iter().map(str::to_string).collect()
}

/// Builds a snapshot (ledger head zero) from an export-json object.
pub fn snapshot_from_export(v: &Value) -> Result<Snapshot, PluginError> {
    let e: Export = serde_json::from_value(v.clone()).map_err(|err| PluginError::Config(format!("config: {err}")))?;
    let mut b = SnapshotBuilder::new(LedgerHead::default());
    for a in &e.associations {
        b.add_association(&AssociationRecord {
            userid: a.userid,
            // export-json carries no user names.
            username: a.userid.to_string(),
            bank: a.bank.clone(),
            default_bank: a.def_bank.clone(),
            active: a.active != 0,
            fairshare: a.fairshare,
            limits: AssocLimits {
                max_running_jobs: a.max_running_jobs,
                max_active_jobs: a.max_active_jobs,
                max_nodes: a.max_nodes,
                max_cores: a.max_cores,
                max_sched_jobs: a.max_sched_jobs,
            },
            queues: split(&a.queues),
            projects: split(&a.projects),
            default_project: a.def_project.clone(),
        });
    }
    for q in &e.queues {
        b.add_queue(&QueueRecord { name: q.queue.clone(), limits: q.limits });
    }
    for p in &e.projects {
        b.add_project(&p.project);
    }
    for bank in &e.banks {
        b.add_bank(&bank.bank, bank.priority);
    }
    let mut w = Weights::default();
    for f in &e.priority_factors {
        w.set(&f.factor, f.weight);
    }
    b.weights(w);
    b.deny_unknown_queues(e.config.is_some_and(|c| c.deny_unknown_queues));
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_export_json() {
        let v = json!({
            "associations": [{"userid": 5035, "bank": "giants", "def_bank": "giants", "fairshare": 0.5,
                "max_running_jobs": 5, "max_active_jobs": 7, "queues": "orange,blue", "active": 1,
                "projects": "*,shortstops", "def_project": "shortstops", "max_nodes": 10,
                "max_cores": 20, "max_sched_jobs": 30}],
            "queues": [{"queue": "orange", "min_nodes_per_job": 1, "max_nodes_per_job": 1,
                "max_time_per_job": 60, "priority": 100, "max_running_jobs": 100,
                "max_nodes_per_assoc": 5, "max_sched_jobs": 6, "max_sched_nodes_per_assoc": 7,
                "max_sched_cores_per_assoc": 8}],
            "projects": [{"project": "*"}, {"project": "shortstops"}],
            "banks": [{"bank": "giants", "priority": 2.5}],
            "config": {"deny_unknown_queues": true},
            "priority_factors": [{"factor": "bank", "weight": 3}]
        });
        let s = snapshot_from_export(&v).unwrap();
        let a = s.association_record(&s.associations[0]);
        assert_eq!(a.queues, vec!["orange", "blue"]);
        assert_eq!(a.projects, vec!["*", "shortstops"]);
        assert_eq!(s.queues[0].limits.priority, 100);
        assert_eq!(s.weights.bank, 3);
        assert!(s.deny_unknown_queues);
        assert!(snapshot_from_export(&json!({"associations": [{"userid": "x"}]})).is_err());
        assert!(snapshot_from_export(&json!({})).unwrap().associations.is_empty());
    }
}
