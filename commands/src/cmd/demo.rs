//! `demo`: build a small sample site in a new ledger, run the whole
//! accounting pipeline on it, and show the result.

use crate::context::{Context, Output};
use crate::error::Result;

/// Create a new ledger at `-p/--path` holding a small sample site (a root
/// bank, a few banks, users, a queue and a project), built through the same
/// commands an admin would run; then run the whole pipeline on it (a few
/// hundred synthetic job records over the last four weeks, update-usage,
/// update-fshare, priority-update without Flux) and print the bank tree with
/// usage and fair-share, the top-usage chart, the chain status, a checkpoint
/// line, and where the plugin snapshot and an SVG chart were written
/// (`<db>.snapshot`, `<db>.usage.svg`). Refuses to touch an existing file.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// Runs `demo`.
pub fn cmd_demo(ctx: &Context, _args: &Args) -> Result<Output> {
    crate::demo_site::run(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_site::DEMO_JOBS;

    #[test]
    fn builds_the_sample_site_and_runs_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::for_tests(dir.path().join("demo.db"), 1_767_225_600_000_000);
        let out = cmd_demo(&ctx, &Args {}).unwrap().stdout;
        assert!(out.contains("crawford"), "{out}");
        assert!(out.contains(&format!("{DEMO_JOBS} job records")), "{out}");
        assert!(out.contains("snapshot: ") && out.contains("demo.db.snapshot"), "{out}");
        assert!(dir.path().join("demo.db.snapshot").is_file());
        assert!(dir.path().join("demo.db.usage.svg").is_file());
        assert!(cmd_demo(&ctx, &Args {}).is_err());
    }
}
