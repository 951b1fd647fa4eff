//! End to end without Flux: a site built with `flux-account` commands, its
//! snapshot written by `priority-update`, loaded by the real
//! `mf_priority.so` (the file that gets installed) through the jobtap host
//! harness; then an edit, a second `priority-update`, and a
//! `load_snapshot` reload that reprioritizes the pending job.

mod plugin_harness;

use std::path::Path;

use clap::Parser;
use commands::cli::{self, Cli};
use commands::Context;
use plugin_harness::{jobspec, Host};
use serde_json::json;

const CRAWFORD: u32 = 5035;

fn run(db: &Path, now: i64, args: &[&str]) -> String {
    let mut argv = vec!["flux-account".to_string(), "-p".into(), db.display().to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let mut ctx = Context::for_tests(db, now * 1_000_000);
    ctx.argv = argv.clone();
    cli::run(&ctx, &cli.command).unwrap_or_else(|e| panic!("{argv:?}: {e}")).stdout
}

#[test]
fn ledger_to_snapshot_to_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("FluxAccounting.db");
    let snap = dir.path().join("FluxAccounting.db.snapshot");
    let t = 1_767_225_600;
    run(&db, t, &["create-db"]);
    run(&db, t + 1, &["add-bank", "root", "1"]);
    run(&db, t + 2, &["add-bank", "--parent-bank=root", "giants", "1"]);
    run(&db, t + 3, &["add-queue", "orange"]);
    run(&db, t + 4, &["add-project", "shortstops"]);
    run(&db, t + 5, &["add-user", "--username=crawford", "--bank=giants", "--userid=5035", "--projects=shortstops"]);
    let out = run(&db, t + 6, &["priority-update", "--no-flux"]);
    assert!(out.contains(&snap.display().to_string()), "{out}");

    let host = Host::load(Some(json!({ "snapshot": snap.display().to_string() }))).expect("plugin loads");
    let q = host.query();
    assert_eq!(q["snapshot"]["seq"], 6, "snapshot reflects the ledger head: {q}");

    // A job with no bank or project: defaults posted, priority 50000.
    let a = host.submit(CRAWFORD, jobspec(0, 1, &[]), 16).expect("accepted");
    let job = host.job(a);
    assert_eq!(
        job.events_named("jobspec-update"),
        vec![json!({"attributes.system.bank": "giants", "attributes.system.project": "shortstops"})]
    );
    assert_eq!(job.priority, 50_000);

    // Unknown users are rejected once data is present.
    assert!(host.submit(4242, jobspec(0, 1, &[]), 16).is_err());

    // Edit the fair-share in the ledger, publish, reload: the pending job is
    // reprioritized.
    run(&db, t + 7, &["edit-user", "crawford", "--fairshare", "0.25"]);
    run(&db, t + 8, &["priority-update", "--no-flux"]);
    let reply = host.service("load_snapshot", Some(json!({ "path": snap.display().to_string() }))).expect("loaded");
    assert_eq!(reply["seq"], 7, "{reply}");
    assert_eq!(host.job(a).priority, 25_000);
    host.assert_clean();
}
