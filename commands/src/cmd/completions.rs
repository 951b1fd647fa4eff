//! `completions`: generated from the same clap definition as `--help`.

use clap::CommandFactory;

use crate::context::{Context, Output};
use crate::error::Result;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_come_from_the_cli_definition() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let bash = cmd_completions(&ctx, &Args { shell: clap_complete::Shell::Bash }).unwrap().stdout;
        assert!(bash.contains("view-job-records") && bash.contains("--parent-bank"));
    }
}
