//! `repair --accept-break`: record a break of the hash chain as an event.

use fluxacct_core::events::{BreakAccepted, Event};
use fluxacct_core::Seq;
use ledger::integrity;
use ledger::VerifyFailure;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Accept a break of the hash chain that `verify` found, so that writes
/// resume: appends a `BreakAccepted` event naming the first bad seq and
/// the reason (which `log` shows to auditors). The edited event stays as
/// it is; `verify` keeps reporting the break, as accepted, with the
/// reason. The other way out is to restore the ledger from a copy.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The first bad seq, as `verify` names it.
    #[arg(long = "accept-break", value_name = "SEQ")]
    pub accept_break: u64,
    /// Why the break is accepted (who checked what); shown by `log`.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Pure decision: a `BreakAccepted` for `args.accept_break` when it is the
/// first break the walk found (`first`), with a reason.
pub fn decide(first: Option<&VerifyFailure>, args: &Args) -> Result<Vec<Event>> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid("--reason must say why the break is accepted"));
    }
    match first {
        None => Err(Error::invalid(format!(
            "the hash chain is intact (apart from breaks already accepted): there is no break at seq {} to accept",
            args.accept_break
        ))),
        Some(f) if f.seq.0 != args.accept_break => Err(Error::invalid(format!(
            "the first break of the hash chain is at seq {} ({}), not at seq {}",
            f.seq, f.reason, args.accept_break
        ))),
        Some(f) => Ok(vec![Event::BreakAccepted(BreakAccepted { seq: f.seq.0, reason: reason.to_string() })]),
    }
}

/// Runs `repair`.
pub fn cmd_repair(ctx: &Context, args: &Args) -> Result<Output> {
    let mut ledger = crate::db::open_write(ctx)?;
    let st = integrity::chain_state(ledger.conn())?;
    let walk = integrity::walk(&ledger, crate::chain::threads(), Seq(1), &st.accepted)?;
    let events = decide(walk.report.failure.as_ref(), args)?;
    let seq = Seq(args.accept_break);
    let mut tx = ledger.transaction_despite_break()?;
    let appended = projections::append_and_apply(&mut tx, &ctx.meta(), &events)?;
    let by = appended.first().map(|a| a.seq).ok_or_else(|| Error::invalid("nothing was appended"))?;
    integrity::record_accepted(tx.conn(), seq, by, args.reason.trim())?;
    tx.commit()?;
    let mut out = format!("recorded BreakAccepted at seq {by}: the break at seq {seq} is accepted\n");
    // Walk on: a later break stays recorded and keeps writes refused.
    let st = integrity::chain_state(ledger.conn())?;
    let walk = integrity::walk(&ledger, crate::chain::threads(), Seq(1), &st.accepted)?;
    match &walk.report.failure {
        Some(f) => {
            integrity::record_broken(ledger.conn(), f)?;
            out.push_str(&format!("the chain is broken again at seq {} ({}); writes stay refused\n", f.seq, f.reason));
        }
        None => {
            if let Some((head, _)) = walk.report.head {
                integrity::record_verified(ledger.conn(), head)?;
            }
            out.push_str("writes resume\n");
        }
    }
    Ok(Output::text(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seq: u64, reason: &str) -> Args {
        crate::testing::parse_args(&["--accept-break", &seq.to_string(), "--reason", reason])
    }

    #[test]
    fn accepts_only_the_first_break_with_a_reason() {
        let f = VerifyFailure { seq: Seq(7), reason: "stored hash does not match".into() };
        // Given a break at seq 7, when it is accepted with a reason, then one event names it.
        let evs = decide(Some(&f), &args(7, "restored payload checked by hand")).unwrap();
        assert_eq!(
            evs,
            vec![Event::BreakAccepted(BreakAccepted { seq: 7, reason: "restored payload checked by hand".into() })]
        );
        // Another seq, no reason, or no break at all: refused.
        assert!(decide(Some(&f), &args(8, "x")).unwrap_err().to_string().contains("seq 7"));
        assert!(decide(Some(&f), &args(7, "  ")).unwrap_err().to_string().contains("--reason"));
        assert!(decide(None, &args(7, "x")).unwrap_err().to_string().contains("intact"));
    }
}
