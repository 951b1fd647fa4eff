//! The payload mapping of `flux account-service`: flux-accounting's
//! argparse dicts become the same command lines, and back.

use clap::{CommandFactory, Parser};
use fluxacct_commands::service::*;
use fluxacct_commands::Output;

fn cli() -> clap::Command {
    fluxacct_commands::cli::Cli::command()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn every_endpoint_but_shutdown_is_a_subcommand() {
    let cli = cli();
    for e in READ_ENDPOINTS.iter().chain(OWNER_ENDPOINTS) {
        if *e != "shutdown_service" {
            assert!(cli.find_subcommand(e.replace('_', "-")).is_some(), "{e}");
        }
    }
    assert_eq!(READ_ENDPOINTS.len() + OWNER_ENDPOINTS.len(), 41);
}

#[test]
fn an_argparse_payload_becomes_the_command_line() {
    let p = serde_json::json!({
        "path": "/elsewhere.db", "func": "add_user", "subcommand": "add-user",
        "username": "alice", "bank": "A", "userid": 5011, "shares": 1, "fairshare": 0.5,
        "max_running_jobs": null, "max_active_jobs": null, "max_nodes": null, "max_cores": null,
        "queues": "q1,q2", "projects": null, "default_project": null, "max_sched_jobs": null,
        "unknown_key": "ignored"
    });
    let argv = payload_to_argv(&cli(), "add_user", &p).unwrap();
    assert!(fluxacct_commands::cli::Cli::try_parse_from(&argv).is_ok(), "{argv:?}");
    assert!(argv.contains(&"--username=alice".to_string()) || argv.contains(&"alice".to_string()), "{argv:?}");
    assert!(!argv.iter().any(|a| a.contains("elsewhere")), "{argv:?}");
}

#[test]
fn a_missing_required_key_is_named_as_flux_accounting_names_it() {
    let e = payload_to_argv(&cli(), "view_user", &serde_json::json!({"parsable": false})).unwrap_err();
    assert_eq!(e.to_string(), "view-user: missing key in payload: 'username'");
}

#[test]
fn a_command_line_round_trips_through_its_payload() {
    for line in [
        "flux-account view-user alice --parsable",
        "flux-account add-bank sub 1 --parent-bank=root",
        "flux-account list-users --bank=A --json",
        "flux-account edit-config a=1 b=2",
        "flux-account scrub-old-jobs 4",
        "flux-account view-job-records -u alice",
        "flux-account edit-user bob --max-running-jobs=-1",
    ] {
        let argv = words(line);
        let (endpoint, payload) = argv_to_payload(&cli(), &argv).unwrap().unwrap();
        let back = payload_to_argv(&cli(), &endpoint, &payload).unwrap();
        let a = format!("{:?}", cli().try_get_matches_from(&argv).unwrap().subcommand().unwrap().1);
        let b = format!("{:?}", cli().try_get_matches_from(&back).unwrap().subcommand().unwrap().1);
        // Same values (value sources may differ: compare the parsed Args).
        let pa = fluxacct_commands::cli::Cli::try_parse_from(&argv).map(|c| format!("{:?}", c.command)).unwrap();
        let pb = fluxacct_commands::cli::Cli::try_parse_from(&back).map(|c| format!("{:?}", c.command)).unwrap();
        assert_eq!(pa, pb, "{line}: {back:?} ({a} / {b})");
    }
}

#[test]
fn an_answer_puts_the_endpoint_first_and_prints_as_the_local_command() {
    let out = Output { stdout: "hello\n".into(), ..Output::default() };
    let a = answer("view_user", &out);
    assert!(a.starts_with("{\"view_user\":\"hello\""), "{a}");
    assert_eq!(output_of_answer("view_user", Some(&a)).unwrap().stdout, "hello\n");
    let quiet = answer("add_user", &Output::default());
    assert!(quiet.starts_with("{\"add_user\":0"), "{quiet}");
    // flux-accounting's own answers.
    assert_eq!(output_of_answer("view_user", Some("{\"view_user\":\"x\"}")).unwrap().stdout, "x\n");
    assert_eq!(output_of_answer("add_user", Some("{\"add_user\":0}")).unwrap().stdout, "");
}

#[test]
fn the_service_refuses_a_ledger_that_needs_an_upgrade_with_flux_accountings_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let missing = check_ledger(&db).unwrap_err().to_string();
    assert_eq!(missing, format!("Database file does not exist: {}", db.display()));
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_flux-account"))
        .arg("-p")
        .arg(&db)
        .arg("create-db")
        .status()
        .unwrap();
    assert!(st.success());
    check_ledger(&db).expect("a fresh ledger is served");
    // Projections of an older schema: the ledger needs `rebuild` first.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE projection_meta SET value = 1 WHERE key = 'schema_version'", []).unwrap();
    drop(conn);
    let e = check_ledger(&db).unwrap_err().to_string();
    assert!(e.starts_with(OUT_OF_DATE) && e.contains("rebuild"), "{e}");
}
