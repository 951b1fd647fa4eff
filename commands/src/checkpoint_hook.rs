//! Checkpoint verification used by `verify --checkpoint` (issue 5 fills
//! this in with the replay crate).

use crate::context::Context;
use crate::error::{Error, Result};

/// Verifies a checkpoint line or file against the ledger.
pub fn verify_checkpoint(_ctx: &Context, _cp: &str) -> Result<String> {
    Err(Error::invalid("verify --checkpoint is not available yet"))
}
