//! `delete-allocation`: stop charging an allocation (its history stays).

use fluxacct_core::events::{AllocationRef, Event};
use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Delete an allocation: no job is charged to it any more and the plugin
/// stops enforcing it. Its charges and events stay in the log and in
/// `view-allocation` and `allocation-statement`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Allocation name.
    pub name: String,
}

/// Pure decision.
pub fn decide(state: &State<'_>, args: &Args) -> Result<Vec<Event>> {
    match projections::allocation::allocation(state.conn(), &args.name)? {
        None => Err(Error::invalid(format!("allocation {} not found", args.name))),
        Some(a) if !a.active => Err(Error::invalid(format!("allocation {} was already deleted", args.name))),
        Some(_) => Ok(vec![Event::AllocationDeleted(AllocationRef { name: args.name.clone() })]),
    }
}

/// Runs `delete-allocation`.
pub fn cmd_delete_allocation(ctx: &Context, args: &Args) -> Result<Output> {
    crate::db::write(ctx, |s| decide(s, args))?;
    Ok(Output::none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};
    use fluxacct_core::events::AllocationAdded;

    #[test]
    fn an_allocation_is_deleted_once() {
        let add = Event::AllocationAdded(AllocationAdded {
            name: "q1".into(),
            bank: "root".into(),
            project: None,
            unit: "charge".into(),
            amount_milli: 1,
            start_s: 0,
            end_s: 1,
            exhausted: None,
        });
        let g = given(&[Given::Bank("root", ""), Given::Event(add)]);
        let evs = decide(&g.state(), &Args { name: "q1".into() }).unwrap();
        assert_eq!(evs, vec![Event::AllocationDeleted(AllocationRef { name: "q1".into() })]);
        assert_eq!(decide(&g.state(), &Args { name: "x".into() }).unwrap_err().to_string(), "allocation x not found");
    }
}
