//! `add-queue`: add a queue with its limits.

use fluxacct_core::events::{Event, QueueAdded};
use fluxacct_core::queue::QueueLimits;
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// Add a queue. Limits are per association unless noted; the per-job and
/// queue-wide node/core limits are stored only.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Queue name.
    pub queue: String,
    /// Min nodes per job (stored only).
    #[arg(value_parser = crate::validate::limit_arg, long = "min-nodes-per-job", default_value = "1", allow_negative_numbers = true)]
    pub min_nodes_per_job: String,
    /// Max nodes per job (stored only).
    #[arg(value_parser = crate::validate::limit_arg, short = 'N', long = "max-nodes-per-job", default_value = "1", allow_negative_numbers = true)]
    pub max_nodes_per_job: String,
    /// Max time per job (stored only).
    #[arg(value_parser = crate::validate::limit_arg, short = 't', long = "max-time-per-job", default_value = "60", allow_negative_numbers = true)]
    pub max_time_per_job: String,
    /// Queue priority.
    #[arg(short = 'P', long, default_value = "0", allow_negative_numbers = true, value_parser = crate::validate::non_negative_arg)]
    pub priority: String,
    /// Max running jobs per association in this queue.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-running-jobs", default_value = "100", allow_negative_numbers = true)]
    pub max_running_jobs: String,
    /// Max nodes per association in this queue.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-nodes-per-assoc", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_nodes_per_assoc: String,
    /// Max SCHED jobs per association in this queue.
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-jobs", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_sched_jobs: String,
    /// Max SCHED nodes per association in this queue (also `-msn`).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-nodes-per-assoc", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_sched_nodes_per_assoc: String,
    /// Max SCHED cores per association in this queue (also `-msc`).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-sched-cores-per-assoc", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_sched_cores_per_assoc: String,
    /// Queue-wide max nodes (stored only).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-nodes", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_nodes: String,
    /// Queue-wide max cores (stored only).
    #[arg(value_parser = crate::validate::limit_arg, long = "max-cores", default_value = "2147483647", allow_negative_numbers = true)]
    pub max_cores: String,
    /// What jobs of this queue are charged against allocations, as a
    /// factor of resources × elapsed time (default 1.0).
    #[arg(long = "charge-factor", value_parser = crate::validate::charge_factor_arg)]
    pub charge_factor: Option<f64>,
}

fn nn(opt: &str, s: &str) -> Result<i64> {
    validate::limit(opt, s)
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("queue", &args.queue)?;
    let limits = QueueLimits {
        min_nodes_per_job: nn("--min-nodes-per-job", &args.min_nodes_per_job)?,
        max_nodes_per_job: nn("--max-nodes-per-job", &args.max_nodes_per_job)?,
        max_time_per_job: nn("--max-time-per-job", &args.max_time_per_job)?,
        priority: nn("--priority", &args.priority)?,
        max_running_jobs: nn("--max-running-jobs", &args.max_running_jobs)?,
        max_nodes_per_assoc: nn("--max-nodes-per-assoc", &args.max_nodes_per_assoc)?,
        max_sched_jobs: nn("--max-sched-jobs", &args.max_sched_jobs)?,
        max_sched_nodes_per_assoc: nn("--max-sched-nodes-per-assoc", &args.max_sched_nodes_per_assoc)?,
        max_sched_cores_per_assoc: nn("--max-sched-cores-per-assoc", &args.max_sched_cores_per_assoc)?,
    };
    let q = QueueAdded {
        queue: args.queue.clone(),
        limits,
        max_nodes: nn("--max-nodes", &args.max_nodes)?,
        max_cores: nn("--max-cores", &args.max_cores)?,
        charge_factor: args.charge_factor,
    };
    if state.queue(&args.queue)?.is_some() {
        return Err(Error::invalid(format!("queue {} already exists in queue_table", args.queue)));
    }
    Ok(vec![Event::QueueAdded(q)])
}

/// Runs `add-queue`.
pub fn cmd_add_queue(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, queue, Given};

    #[test]
    fn defaults_and_duplicates() {
        let g = given(&[Given::Queue("gold")]);
        let evs = decide(&g.state(), &parse_args(&["orange"])).unwrap();
        assert_eq!(evs, vec![Event::QueueAdded(queue("orange"))]);
        let e = decide(&g.state(), &parse_args(&["gold"])).unwrap_err();
        assert_eq!(e.to_string(), "queue gold already exists in queue_table");
        // Out of range: a usage error, before the command runs.
        let e = crate::testing::usage_error::<Args>(&["q", "--priority", "-3"]);
        assert!(e.contains("invalid value '-3' for '--priority"), "{e}");
    }
}
