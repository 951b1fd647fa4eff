//! `completions` and `man`: generated from the same clap definition as
//! `--help`.

use clap::CommandFactory;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Print a shell completion script for flux-account (bash, zsh, fish,
/// elvish or powershell).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Runs `completions`.
pub fn cmd_completions(_ctx: &Context, args: &Args) -> Result<Output> {
    let mut cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "flux-account", &mut buf);
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}

/// Print the flux-account(1) man page (roff).
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {}

/// Runs `man`.
pub fn cmd_man(_ctx: &Context, _args: &ManArgs) -> Result<Output> {
    let cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf).map_err(|e| Error::io("cannot render the manual page", e))?;
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_and_completions_come_from_the_cli_definition() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let man = cmd_man(&ctx, &ManArgs {}).unwrap().stdout;
        assert!(man.contains("flux\\-account") && man.contains("add\\-user"), "{man}");
        let bash = cmd_completions(&ctx, &Args { shell: clap_complete::Shell::Bash }).unwrap().stdout;
        assert!(bash.contains("view-job-records") && bash.contains("--parent-bank"));
    }
}
