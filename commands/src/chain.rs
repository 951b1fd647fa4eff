//! The broken-chain rules of the write path: the incremental
//! chain check of `update-usage`, and the error that refuses writes.

use fluxacct_core::Seq;
use ledger::integrity;
use ledger::{Ledger, VerifyFailure};

use crate::error::{Error, Result};

/// The refusal of every write while the chain is broken at `f`.
pub fn broken(f: VerifyFailure) -> Error {
    Error::Ledger(ledger::Error::ChainBroken { seq: f.seq, reason: f.reason })
}

/// Worker threads for chain walks: all cores.
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Verifies the chain from the last verified seq to the head (stepping over
/// accepted breaks) and records the result in the ledger's bookkeeping:
/// the new verified seq, or the first bad seq, which is then refused
/// (as is a break recorded earlier).
pub fn verify_incrementally(ledger: &Ledger) -> Result<()> {
    let st = integrity::chain_state(ledger.conn())?;
    if let Some(f) = st.broken {
        return Err(broken(f));
    }
    let from = st.verified.map(|s| s.next()).unwrap_or(Seq(1));
    let walk = integrity::walk(ledger, threads(), from, &st.accepted)?;
    match walk.report.failure {
        Some(f) => {
            integrity::record_broken(ledger.conn(), &f)?;
            Err(broken(f))
        }
        None => {
            if let Some((head, _)) = walk.report.head {
                integrity::record_verified(ledger.conn(), head)?;
            }
            Ok(())
        }
    }
}
