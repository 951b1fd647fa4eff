//! `completions`: generated from the same clap definition as `--help`.

use crate::context::{Context, Output};
use crate::error::Result;

/// Print a shell completion script for flux-account (bash, zsh, fish,
/// elvish or powershell).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Runs `completions` for the command line `cmd` (its clap definition).
pub fn cmd_completions(_ctx: &Context, args: &Args, mut cmd: clap::Command) -> Result<Output> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "flux-account", &mut buf);
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}
