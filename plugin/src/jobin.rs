//! Parsing the job-manager's IN arguments into [`JobIn`], and counting a
//! jobspec's nodes, cores and GPUs.
//!
//! Everything here is total: malformed input becomes a [`PluginError`] or an
//! [`Attr::Invalid`], never a panic.

use serde_json::Value;

use crate::PluginError;

/// A jobspec attribute such as `attributes.system.bank`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Attr {
    /// Not present (or JSON null).
    #[default]
    Missing,
    /// A string.
    Str(String),
    /// Present but not a string.
    Invalid,
}

impl Attr {
    /// The string, if any.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::Str(s) => Some(s),
            _ => None,
        }
    }

    fn from_value(v: Option<&Value>) -> Attr {
        match v {
            None | Some(Value::Null) => Attr::Missing,
            Some(Value::String(s)) => Attr::Str(s.clone()),
            Some(_) => Attr::Invalid,
        }
    }
}

/// Node, core and GPU counts of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// Number of nodes (1 when only cores were requested).
    pub nnodes: i64,
    /// Number of cores.
    pub ncores: i64,
    /// Number of GPUs (0 when none were requested).
    pub ngpus: i64,
}

/// The parts of a job callback's IN arguments the plugin uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobIn {
    /// Job id.
    pub id: u64,
    /// Submitting user.
    pub userid: u32,
    /// Urgency (0..=31 for real jobs).
    pub urgency: i64,
    /// Current state (a `FLUX_JOB_STATE_*` bit).
    pub state: u32,
    /// `attributes.system.bank`.
    pub bank: Attr,
    /// `attributes.system.queue`.
    pub queue: Attr,
    /// `attributes.system.project`.
    pub project: Attr,
    /// Counted resources, `None` when the jobspec cannot be counted.
    pub resources: Option<Resources>,
    /// Whether the job has an `R` (it was allocated).
    pub has_r: bool,
    /// `attributes.system.duration` in seconds (0: none given).
    pub duration_s: f64,
}

fn get_u64(v: &Value, key: &str) -> Result<u64, PluginError> {
    v.get(key).and_then(Value::as_u64).ok_or_else(|| PluginError::Args(format!("missing or invalid \"{key}\"")))
}

impl JobIn {
    /// Parses a callback's IN arguments (a JSON object).
    pub fn from_value(v: &Value) -> Result<JobIn, PluginError> {
        if !v.is_object() {
            return Err(PluginError::Args("arguments are not an object".into()));
        }
        let id = get_u64(v, "id")?;
        let userid =
            u32::try_from(get_u64(v, "userid")?).map_err(|_| PluginError::Args("\"userid\" out of range".into()))?;
        let urgency = v.get("urgency").and_then(Value::as_i64).unwrap_or(16);
        let state = v.get("state").and_then(Value::as_u64).unwrap_or(0);
        let state = u32::try_from(state).unwrap_or(0);
        let jobspec = v.get("jobspec");
        let system = jobspec.and_then(|j| j.get("attributes")).and_then(|a| a.get("system"));
        let attr = |k: &str| Attr::from_value(system.and_then(|s| s.get(k)));
        Ok(JobIn {
            id,
            userid,
            urgency,
            state,
            bank: attr("bank"),
            queue: attr("queue"),
            project: attr("project"),
            resources: jobspec.and_then(count_resources),
            has_r: v.get("R").is_some_and(|r| !r.is_null()),
            duration_s: system
                .and_then(|s| s.get("duration"))
                .and_then(Value::as_f64)
                .filter(|d| d.is_finite() && *d > 0.0)
                .unwrap_or(0.0),
        })
    }

    /// Parses IN arguments given as JSON text.
    pub fn from_json(s: &str) -> Result<JobIn, PluginError> {
        let v: Value = serde_json::from_str(s).map_err(|e| PluginError::Args(format!("bad JSON: {e}")))?;
        JobIn::from_value(&v)
    }
}

/// Counts nodes, cores and GPUs of a jobspec (RFC 14 `resources` tree).
///
/// Counts multiply down the tree; cores and GPUs count inside a `slot`
/// (a GPU is usually a sibling of the slot's cores). Returns `None` if
/// `attributes.system.duration` is not a number, if there is no `slot`, or
/// if a count (of any resource, GPUs included) is not a positive integer or
/// no core is requested. If cores are requested but no nodes, the job
/// counts as one node.
pub fn count_resources(jobspec: &Value) -> Option<Resources> {
    let duration = jobspec.get("attributes")?.get("system")?.get("duration")?;
    if !duration.is_number() {
        return None;
    }
    let mut acc = Acc::default();
    walk(jobspec.get("resources")?, 1, false, &mut acc, 0)?;
    if acc.slots == 0 || acc.cores == 0 {
        return None;
    }
    let nnodes = if acc.nodes == 0 { 1 } else { acc.nodes };
    Some(Resources { nnodes: clamp_i64(nnodes), ncores: clamp_i64(acc.cores), ngpus: clamp_i64(acc.gpus) })
}

#[derive(Default)]
struct Acc {
    nodes: u64,
    slots: u64,
    cores: u64,
    gpus: u64,
}

fn clamp_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

fn walk(list: &Value, mult: u64, in_slot: bool, acc: &mut Acc, depth: u32) -> Option<()> {
    if depth > 16 {
        return None;
    }
    for r in list.as_array()? {
        let count = match r.get("count")? {
            Value::Number(n) => n.as_u64().filter(|&c| c > 0)?,
            // RFC 14 ranges: use the minimum.
            Value::Object(o) => o.get("min").and_then(Value::as_u64).filter(|&c| c > 0)?,
            _ => return None,
        };
        let total = mult.saturating_mul(count);
        let mut slot_here = in_slot;
        match r.get("type").and_then(Value::as_str)? {
            "node" => acc.nodes = acc.nodes.saturating_add(total),
            "slot" => {
                acc.slots = acc.slots.saturating_add(total);
                slot_here = true;
            }
            "core" if in_slot => acc.cores = acc.cores.saturating_add(total),
            "gpu" if in_slot => acc.gpus = acc.gpus.saturating_add(total),
            _ => {}
        }
        if let Some(with) = r.get("with") {
            walk(with, total, slot_here, acc, depth + 1)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(resources: Value) -> Value {
        json!({"resources": resources, "attributes": {"system": {"duration": 0}}})
    }

    #[test]
    fn counts_cores_only() {
        let r = count_resources(&spec(json!([
            {"type": "slot", "count": 4, "label": "task", "with": [{"type": "core", "count": 2}]}
        ])));
        assert_eq!(r, Some(Resources { nnodes: 1, ncores: 8, ngpus: 0 }));
    }

    #[test]
    fn counts_nodes() {
        let r = count_resources(&spec(json!([{"type": "node", "count": 2, "with": [
            {"type": "slot", "count": 3, "label": "task", "with": [{"type": "core", "count": 4}]}
        ]}])));
        assert_eq!(r, Some(Resources { nnodes: 2, ncores: 24, ngpus: 0 }));
    }

    #[test]
    fn counts_gpus_beside_the_cores_of_each_slot_times_the_nodes() {
        let r = count_resources(&spec(json!([{"type": "node", "count": 2, "with": [
            {"type": "slot", "count": 3, "label": "task", "with": [
                {"type": "core", "count": 4}, {"type": "gpu", "count": 2}]}
        ]}])));
        assert_eq!(r, Some(Resources { nnodes: 2, ncores: 24, ngpus: 12 }));
        let no_nodes = count_resources(&spec(json!([
            {"type": "slot", "count": 2, "label": "task", "with": [
                {"type": "core", "count": 1}, {"type": "gpu", "count": {"min": 1, "max": 4}}]}
        ])));
        assert_eq!(no_nodes, Some(Resources { nnodes: 1, ncores: 2, ngpus: 2 }));
    }

    #[test]
    fn a_malformed_gpu_count_makes_the_jobspec_uncountable() {
        for bad in [json!(0), json!(-2), json!("2"), json!(1.5), json!({"max": 2}), json!(null)] {
            let r = count_resources(&spec(json!([
                {"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}, {"type": "gpu", "count": bad}]}
            ])));
            assert_eq!(r, None, "gpu count {bad}");
        }
        let huge = spec(json!([{"type": "node", "count": u64::MAX, "with": [
            {"type": "slot", "count": 2, "with": [{"type": "core", "count": 1}, {"type": "gpu", "count": u64::MAX}]}]}]));
        assert_eq!(count_resources(&huge).map(|r| r.ngpus), Some(i64::MAX));
    }

    #[test]
    fn refuses_bad_jobspecs() {
        assert_eq!(count_resources(&json!({})), None);
        let no_duration = json!({"resources": [{"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}]}]});
        assert_eq!(count_resources(&no_duration), None);
        assert_eq!(count_resources(&spec(json!([{"type": "node", "count": 1}]))), None);
        assert_eq!(
            count_resources(&spec(json!([{"type": "slot", "count": 0, "with": [{"type": "core", "count": 1}]}]))),
            None
        );
        assert_eq!(count_resources(&spec(json!([{"type": "slot", "count": -1, "with": []}]))), None);
        assert_eq!(count_resources(&spec(json!("x"))), None);
        let huge = spec(json!([{"type": "node", "count": u64::MAX, "with": [
            {"type": "slot", "count": u64::MAX, "with": [{"type": "core", "count": u64::MAX}]}]}]));
        assert_eq!(count_resources(&huge), Some(Resources { nnodes: i64::MAX, ncores: i64::MAX, ngpus: 0 }));
    }

    #[test]
    fn parses_args() {
        let v = json!({"id": 7, "userid": 5035, "urgency": 20, "state": 1,
            "jobspec": {"attributes": {"system": {"bank": "giants", "queue": 3, "duration": 0}},
                        "resources": [{"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}]}]}});
        let j = JobIn::from_value(&v).unwrap();
        assert_eq!(j.id, 7);
        assert_eq!(j.bank, Attr::Str("giants".into()));
        assert_eq!(j.queue, Attr::Invalid);
        assert_eq!(j.project, Attr::Missing);
        assert_eq!(j.resources, Some(Resources { nnodes: 1, ncores: 1, ngpus: 0 }));
        assert!(JobIn::from_value(&json!({"id": 1})).is_err());
        assert!(JobIn::from_value(&json!({"id": 1, "userid": -1})).is_err());
        assert!(JobIn::from_value(&json!([])).is_err());
        assert!(JobIn::from_json("{").is_err());
    }
}
