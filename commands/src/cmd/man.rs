//! `man`: the flux-account(1) manual page and one page per subcommand
//! (flux-account-add-user(1), …), generated from the same clap definition
//! as `--help`.

use std::path::PathBuf;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Print the flux-account(1) man page (roff), or a subcommand's
/// (`man add-user` prints flux-account-add-user(1)); with `--all --out DIR`,
/// write every page into DIR (flux-account.1, flux-account-add-user.1, …).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// The subcommand whose page to print.
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "all")]
    pub subcommand: Option<String>,
    /// Write every page (the main one and one per subcommand) into --out.
    #[arg(long, requires = "out")]
    pub all: bool,
    /// The directory --all writes the pages into (it must exist).
    #[arg(long, value_name = "DIR", requires = "all")]
    pub out: Option<PathBuf>,
}

/// Runs `man` for the command line `cmd` (its clap definition).
pub fn cmd_man(_ctx: &Context, args: &Args, cmd: clap::Command) -> Result<Output> {
    let mut root = cmd.disable_help_subcommand(true);
    root.build();
    let source = format!("flux-account {}", root.get_version().unwrap_or_default());
    if let Some(dir) = &args.out {
        if !dir.is_dir() {
            return Err(Error::invalid(format!("--out: {} is not a directory", dir.display())));
        }
        let pages = std::iter::once(root.clone()).chain(root.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        for page in pages {
            clap_mangen::Man::new(page)
                .source(source.clone())
                .generate_to(dir)
                .map_err(|e| Error::io(format!("cannot write the manual pages into {}", dir.display()), e))?;
        }
        return Ok(Output::none());
    }
    let page = match &args.subcommand {
        None => root.clone(),
        Some(name) => match root.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = root.get_subcommands().map(clap::Command::get_name).collect();
                return Err(Error::invalid(format!("no subcommand '{name}' (one of: {})", names.join(", "))));
            }
        },
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .source(source)
        .render(&mut buf)
        .map_err(|e| Error::io("cannot render the manual page", e))?;
    Ok(Output::text(String::from_utf8_lossy(&buf).into_owned()))
}
