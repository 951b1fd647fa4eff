//! `edit-queue`: change a queue's limits.

use fluxacct_core::events::{Event, QueueAdded, QueueEdited};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate::{self, int_field};

/// Edit a queue's limits. Only the options given change; `-1` resets a
/// limit to its default.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Queue name.
    pub queue: String,
    /// Min nodes per job.
    #[arg(value_parser = crate::validate::limit_arg, long = "min-nodes-per-job", allow_negative_numbers = true)]
    pub min_nodes_per_job: Option<String>,
    /// Max nodes per job.
    #[arg(value_parser = crate::validate::limit_arg, short = 'N', long = "max-nodes-per-job", allow_negative_numbers = true)]
    pub max_nodes_per_job: Option<String>,
    /// Max time per job.
    #[arg(value_parser = crate::validate::limit_arg, short = 't', long = "max-time-per-job", allow_negative_numbers = true)]
    pub max_time_per_job: Option<String>,
    /// Queue priority.
    #[arg(short = 'P', long, allow_negative_numbers = true, value_parser = crate::validate::limit_arg)]
    pub priority: Option<String>,
    /// Max running jobs per association.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-running-jobs", allow_negative_numbers = true)]
    pub max_running_jobs: Option<String>,
    /// Max nodes per association.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-nodes-per-assoc", allow_negative_numbers = true)]
    pub max_nodes_per_assoc: Option<String>,
    /// Max SCHED jobs per association.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-jobs", allow_negative_numbers = true)]
    pub max_sched_jobs: Option<String>,
    /// Max SCHED nodes per association (also `-msn`).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-nodes-per-assoc", allow_negative_numbers = true)]
    pub max_sched_nodes_per_assoc: Option<String>,
    /// Max SCHED cores per association (also `-msc`).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-cores-per-assoc", allow_negative_numbers = true)]
    pub max_sched_cores_per_assoc: Option<String>,
    /// Queue-wide max nodes.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-nodes", allow_negative_numbers = true)]
    pub max_nodes: Option<String>,
    /// Queue-wide max cores.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-cores", allow_negative_numbers = true)]
    pub max_cores: Option<String>,
    /// New charge factor against allocations.
    #[arg(long = "charge-factor", value_parser = crate::validate::charge_factor_arg)]
    pub charge_factor: Option<f64>,
}

/// Pure decision.
pub fn decide(state: &State<'_>, a: &Args) -> Result<Vec<Event>> {
    validate::name("queue", &a.queue)?;
    // A reset restores the add-queue default.
    let d = QueueAdded::with_defaults(a.queue.as_str());
    let e = QueueEdited {
        queue: a.queue.clone(),
        min_nodes_per_job: int_field("--min-nodes-per-job", &a.min_nodes_per_job, d.limits.min_nodes_per_job, false)?,
        max_nodes_per_job: int_field("--max-nodes-per-job", &a.max_nodes_per_job, d.limits.max_nodes_per_job, false)?,
        max_time_per_job: int_field("--max-time-per-job", &a.max_time_per_job, d.limits.max_time_per_job, false)?,
        priority: int_field("--priority", &a.priority, d.limits.priority, false)?,
        max_running_jobs: int_field("--max-running-jobs", &a.max_running_jobs, d.limits.max_running_jobs, false)?,
        max_nodes_per_assoc: int_field(
            "--max-nodes-per-assoc",
            &a.max_nodes_per_assoc,
            d.limits.max_nodes_per_assoc,
            false,
        )?,
        max_sched_jobs: int_field("--max-sched-jobs", &a.max_sched_jobs, d.limits.max_sched_jobs, false)?,
        max_sched_nodes_per_assoc: int_field(
            "--max-sched-nodes-per-assoc",
            &a.max_sched_nodes_per_assoc,
            d.limits.max_sched_nodes_per_assoc,
            false,
        )?,
        max_sched_cores_per_assoc: int_field(
            "--max-sched-cores-per-assoc",
            &a.max_sched_cores_per_assoc,
            d.limits.max_sched_cores_per_assoc,
            false,
        )?,
        max_nodes: int_field("--max-nodes", &a.max_nodes, d.max_nodes, false)?,
        max_cores: int_field("--max-cores", &a.max_cores, d.max_cores, false)?,
        charge_factor: a.charge_factor,
    };
    if e == (QueueEdited { queue: a.queue.clone(), ..Default::default() }) {
        return Err(Error::invalid("no fields provided for update"));
    }
    if state.queue(&a.queue)?.is_none() {
        return Err(Error::invalid(format!("queue {} not found in queue_table", a.queue)));
    }
    Ok(vec![Event::QueueEdited(e)])
}

/// Runs `edit-queue`.
pub fn cmd_edit_queue(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};

    #[test]
    fn edits_and_resets() {
        let g = given(&[Given::Queue("gold")]);
        let d = |v: &[&str]| decide(&g.state(), &parse_args(v));
        let evs = d(&["gold", "--priority", "5", "--max-running-jobs", "-1"]).unwrap();
        assert_eq!(
            evs,
            vec![Event::QueueEdited(QueueEdited {
                queue: "gold".into(),
                priority: Some(5),
                max_running_jobs: Some(100),
                ..Default::default()
            })]
        );
        assert_eq!(d(&["gold"]).unwrap_err().to_string(), "no fields provided for update");
        assert_eq!(d(&["nope", "-P", "1"]).unwrap_err().to_string(), "queue nope not found in queue_table");
        // Out of range: a usage error, before the command runs.
        let e = crate::testing::usage_error::<Args>(&["gold", "-P", "-2"]);
        assert!(e.contains("invalid value '-2' for '--priority"), "{e}");
    }
}
