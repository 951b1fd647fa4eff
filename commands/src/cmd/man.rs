//! `man`: the flux-account(1) manual page, generated from the same clap
//! definition as `--help`.

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Print the flux-account(1) man page (roff).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// Runs `man` for the command line `cmd` (its clap definition).
pub fn cmd_man(_ctx: &Context, _args: &Args, cmd: clap::Command) -> Result<Output> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf).map_err(|e| Error::io("cannot render the manual page", e))?;
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}
