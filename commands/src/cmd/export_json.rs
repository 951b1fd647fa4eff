//! `export-json`: the plugin-config JSON object of flux-accounting's
//! `flux account export-json` (reference §2.1), for
//! `flux jobtap load mf_priority.so "config=$(flux account export-json)"`.

use projections::model::State;
use serde::Serialize;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::py_float;

/// Print the priority plugin's load-time configuration as one line of
/// JSON: every association (inactive ones too), the queues, projects,
/// banks, the deny_unknown_queues setting and the priority factor weights,
/// in flux-accounting's shapes. Load it with
/// `flux jobtap load mf_priority.so "config=$(flux account export-json)"`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// One `rec_update` association, keys in flux-accounting's order.
#[derive(Debug, Serialize)]
struct Assoc<'a> {
    userid: i64,
    bank: &'a str,
    def_bank: &'a str,
    fairshare: f64,
    max_running_jobs: i64,
    max_active_jobs: i64,
    queues: &'a str,
    active: i64,
    projects: &'a str,
    def_project: &'a str,
    max_nodes: i64,
    max_cores: i64,
    max_sched_jobs: i64,
}

/// One `rec_q_update` queue, keys in flux-accounting's order.
#[derive(Debug, Serialize)]
struct Queue<'a> {
    queue: &'a str,
    /// In `QueueLimits`' field order, which is the reference's key order.
    #[serde(flatten)]
    limits: fluxacct_core::queue::QueueLimits,
}

#[derive(Debug, Serialize)]
struct Project<'a> {
    project: &'a str,
}

#[derive(Debug, Serialize)]
struct Bank<'a> {
    bank: &'a str,
    priority: f64,
}

#[derive(Debug, Serialize)]
struct Config {
    deny_unknown_queues: bool,
}

#[derive(Debug, Serialize)]
struct Factor<'a> {
    factor: &'a str,
    weight: i64,
}

/// The whole object, keys in the reference's order.
#[derive(Debug, Serialize)]
struct Export<'a> {
    associations: Vec<Assoc<'a>>,
    queues: Vec<Queue<'a>>,
    projects: Vec<Project<'a>>,
    banks: Vec<Bank<'a>>,
    config: Config,
    priority_factors: Vec<Factor<'a>>,
}

/// Python's `json.dumps` defaults: `", "` and `": "` separators, floats as
/// `repr`, non-ASCII escaped as `\uXXXX`.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, value: f64) -> std::io::Result<()> {
        // Python writes NaN and Infinity bare; the plugin could not read
        // them, and the ledger holds none.
        let s = py_float(value);
        w.write_all(match s.as_str() {
            "nan" => b"NaN",
            "inf" => b"Infinity",
            "-inf" => b"-Infinity",
            _ => s.as_bytes(),
        })
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Read-only: the export-json line (with its newline).
pub fn view(state: &State<'_>) -> Result<Output> {
    let assocs = state.associations()?;
    let queues = state.queues()?;
    let projects = state.projects()?;
    let banks = state.banks()?;
    let factors = state.factors()?;
    let deny = state.config("deny_unknown_queues")?.is_some_and(|v| v.to_lowercase() == "true");
    let export = Export {
        associations: assocs
            .iter()
            .map(|a| Assoc {
                userid: a.userid,
                bank: &a.bank,
                def_bank: &a.default_bank,
                fairshare: a.fairshare,
                max_running_jobs: a.max_running_jobs,
                max_active_jobs: a.max_active_jobs,
                queues: &a.queues,
                active: a.active,
                projects: &a.projects,
                def_project: &a.default_project,
                max_nodes: a.max_nodes,
                max_cores: a.max_cores,
                max_sched_jobs: a.max_sched_jobs,
            })
            .collect(),
        queues: queues.iter().map(|q| Queue { queue: &q.queue, limits: q.limits }).collect(),
        projects: projects.iter().map(|p| Project { project: &p.project }).collect(),
        banks: banks.iter().map(|b| Bank { bank: &b.bank, priority: b.priority }).collect(),
        config: Config { deny_unknown_queues: deny },
        priority_factors: factors.iter().map(|(f, w)| Factor { factor: f, weight: *w }).collect(),
    };
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    export.serialize(&mut ser).map_err(|e| Error::io_msg(format!("export-json: {e}")))?;
    let text = String::from_utf8(out).map_err(|e| Error::io_msg(format!("export-json: {e}")))?;
    Ok(Output::line(text))
}

/// Runs `export-json`.
pub fn cmd_export_json(ctx: &Context, _args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn export_json_has_the_reference_keys_in_order() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("giants", "root"),
            Given::User("crawford", "giants"),
            Given::DisableUser("crawford", "giants"),
            Given::Queue("orange"),
            Given::Project("shortstops"),
        ]);
        let out = view(&g.state()).unwrap().stdout;
        assert!(out.ends_with("}\n") && out.lines().count() == 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let keys =
            |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect::<Vec<_>>() };
        // serde_json's map is sorted; check the order on the text instead.
        let pos = |k: &str| out.find(&format!("\"{k}\": ")).unwrap_or_else(|| panic!("{k} missing"));
        let top = ["associations", "queues", "projects", "banks", "config", "priority_factors"];
        assert!(top.windows(2).all(|w| pos(w[0]) < pos(w[1])), "{out}");
        assert_eq!(keys(&v).len(), 6);
        assert!(out.starts_with(
            "{\"associations\": [{\"userid\": 1000, \"bank\": \"giants\", \"def_bank\": \"giants\", \"fairshare\": 0.5, \
             \"max_running_jobs\": 5, \"max_active_jobs\": 7, \"queues\": \"\", \"active\": 0, \"projects\": \"*\", \
             \"def_project\": \"*\", \"max_nodes\": 2147483647, \"max_cores\": 2147483647, \"max_sched_jobs\": 2147483647}], "
        ), "{out}");
        assert!(out.contains(
            "\"queues\": [{\"queue\": \"orange\", \"min_nodes_per_job\": 1, \"max_nodes_per_job\": 1, \
             \"max_time_per_job\": 60, \"priority\": 0, \"max_running_jobs\": 100, \"max_nodes_per_assoc\": 2147483647, \
             \"max_sched_jobs\": 2147483647, \"max_sched_nodes_per_assoc\": 2147483647, \
             \"max_sched_cores_per_assoc\": 2147483647}]"
        ), "{out}");
        assert!(out.contains("\"projects\": [{\"project\": \"*\"}, {\"project\": \"shortstops\"}]"), "{out}");
        assert!(out.contains(
            "\"banks\": [{\"bank\": \"root\", \"priority\": 0.0}, {\"bank\": \"giants\", \"priority\": 0.0}]"
        ));
        assert!(out.contains("\"config\": {\"deny_unknown_queues\": false}"), "{out}");
        assert!(out.ends_with(
            "\"priority_factors\": [{\"factor\": \"fairshare\", \"weight\": 100000}, {\"factor\": \"queue\", \"weight\": 10000}, \
             {\"factor\": \"bank\", \"weight\": 0}, {\"factor\": \"urgency\", \"weight\": 1000}]}\n"
        ), "{out}");
    }
}
