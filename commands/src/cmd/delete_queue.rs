//! `delete-queue`: remove a queue.

use fluxacct_core::events::{Event, QueueRef};
use projections::model::State;

use crate::admin;
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::validate;

/// The warning printed when associations still list a deleted queue.
pub const WARNING: &str = "WARNING: user(s) in the association_table still reference this queue. Make sure to edit \
                           user rows to account for this deleted queue.";

/// Remove a queue. Associations that still list it are not changed; a
/// warning says so.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Queue name.
    pub queue: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    validate::name("queue", &args.queue)?;
    if state.queue(&args.queue)?.is_none() {
        return Err(Error::invalid(format!("queue {} not found in queue_table", args.queue)));
    }
    Ok(vec![Event::QueueDeleted(QueueRef { queue: args.queue.clone() })])
}

/// Runs `delete-queue`: warns when associations still list the queue.
pub fn cmd_delete_queue(ctx: &Context, args: &Args) -> Result<Output> {
    let ledger = crate::db::write(ctx, |s| decide(s, args))?;
    let q = args.queue.as_str();
    admin::warn_if_referenced(&State::new(ledger.conn()), WARNING, |a| a.queue_list().contains(&q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    #[test]
    fn deletes_known_queues_only() {
        let g = given(&[Given::Queue("gold")]);
        let evs = decide(&g.state(), &Args { queue: "gold".into() }).unwrap();
        assert_eq!(evs, vec![Event::QueueDeleted(QueueRef { queue: "gold".into() })]);
        let e = decide(&g.state(), &Args { queue: "x".into() }).unwrap_err();
        assert_eq!(e.to_string(), "queue x not found in queue_table");
    }
}
