//! `man`: the flux-account(1) manual page, generated from the same clap
//! definition as `--help`.

use clap::CommandFactory;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Print the flux-account(1) man page (roff).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// Runs `man`.
pub fn cmd_man(_ctx: &Context, _args: &Args) -> Result<Output> {
    let cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf).map_err(|e| Error::io("cannot render the manual page", e))?;
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_comes_from_the_cli_definition() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let man = cmd_man(&ctx, &Args {}).unwrap().stdout;
        assert!(man.contains("flux\\-account") && man.contains("add\\-user"), "{man}");
    }
}
