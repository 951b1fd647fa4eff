//! `demo`: build a small sample site in a new ledger and show it.

use ledger::Ledger;
use projections::events::Event;

use crate::cmd::{add_bank, add_project, add_queue, add_user, create_db, verify, view_bank};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Create a new ledger at `-p/--path` holding a small sample site (a root
/// bank, a few banks, users, a queue and a project), built through the same
/// commands an admin would run; then print the bank tree and the chain
/// status. Refuses to touch an existing file.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// The sample site as command lines (without the program name).
pub const SCRIPT: &[&[&str]] = &[
    &["add-bank", "root", "1"],
    &["add-bank", "--parent-bank=root", "giants", "1"],
    &["add-bank", "--parent-bank=root", "dodgers", "2"],
    &["add-bank", "--parent-bank=dodgers", "infield", "1"],
    &["add-bank", "--parent-bank=dodgers", "outfield", "1"],
    &["add-queue", "orange", "--priority=100"],
    &["add-project", "shortstops"],
    &["add-user", "--username=crawford", "--bank=giants", "--projects=shortstops", "--queues=orange"],
    &["add-user", "--username=posey", "--bank=giants"],
    &["add-user", "--username=betts", "--bank=infield", "--shares=2"],
    &["add-user", "--username=freeman", "--bank=infield"],
    &["add-user", "--username=ohtani", "--bank=outfield", "--max-active-jobs=20"],
    &["add-user", "--username=crawford", "--bank=outfield"],
];

fn parse<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> Result<A> {
    let cmd = A::augment_args(clap::Command::new("demo").no_binary_name(true));
    let m = cmd.try_get_matches_from(&argv[1..]).map_err(|e| Error::invalid(e.to_string()))?;
    A::from_arg_matches(&m).map_err(|e| Error::invalid(e.to_string()))
}

/// The events of one script line, decided against `state`.
fn decide(state: &projections::model::State<'_>, argv: &[&str], uid: i64) -> Result<Vec<Event>> {
    match argv[0] {
        "add-bank" => add_bank::decide(state, &parse(argv)?),
        "add-queue" => add_queue::decide(state, &parse(argv)?),
        "add-project" => add_project::decide(state, &parse(argv)?),
        "add-user" => add_user::decide(state, &parse(argv)?, uid),
        other => Err(Error::invalid(format!("demo: unknown step {other}"))),
    }
}

/// Runs `demo`.
pub fn cmd_demo(ctx: &Context, _args: &Args) -> Result<Output> {
    if ctx.db_path.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; demo only creates new ledgers (pass -p NEW.db)",
            ctx.db_path.display()
        )));
    }
    let cargs = create_db::Args {
        priority_decay_half_life: "1w".into(),
        priority_usage_reset_period: "4w".into(),
        decay_factor: "0.5".into(),
    };
    create_db::cmd_create_db(ctx, &cargs)?;
    let mut ledger = Ledger::open(&ctx.db_path, ledger::OpenMode::ReadWrite)?;
    for (i, step) in SCRIPT.iter().enumerate() {
        let mut meta = ctx.meta();
        meta.argv = std::iter::once("flux-account").chain(step.iter().copied()).map(str::to_string).collect();
        let uid = 5000 + i as i64;
        projections::Writer::run(&mut ledger, &meta, |s| decide(s, step, uid))?;
    }
    drop(ledger);
    let view = view_bank::Args {
        bank: "root".into(),
        tree: true,
        users: false,
        parsable: false,
        fields: None,
        format: None,
        concise: false,
        active: false,
    };
    let mut out = view_bank::cmd_view_bank(ctx, &view)?.stdout;
    out.push_str(
        &verify::cmd_verify(ctx, &verify::Args { threads: None, checkpoint: None, file: false, full: false })?.stdout,
    );
    Ok(Output::text(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_sample_site() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::for_tests(dir.path().join("demo.db"), 1_767_225_600_000_000);
        let out = cmd_demo(&ctx, &Args {}).unwrap().stdout;
        assert!(out.contains("crawford"), "{out}");
        assert!(out.contains("ok: 14 events"), "{out}");
        assert!(cmd_demo(&ctx, &Args {}).is_err());
    }
}
