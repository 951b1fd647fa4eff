//! Acceptance point 6: rebuild equals incremental. Random sequences of
//! admin commands, valid and invalid, go through the library (each
//! command's `decide` inside `projections::Writer::run`); then
//! `projections::replay` replays the log from genesis into a fresh
//! in-memory connection, and every projection table must equal the live
//! one (all rows ordered by every column, all columns).

mod common;

use clap::Parser;
use fluxacct_commands::cli::{Cli, Command};
use fluxacct_commands::cmd;
use fluxacct_commands::Result;
use fluxacct_core::events::Event;
use fluxacct_core::{Actor, EventMeta};
use ledger::Ledger;
use projections::model::State;
use proptest::prelude::*;

/// The events an admin write command decides on, or `None` for the other
/// commands.
fn decide(state: &State<'_>, c: &Command) -> Option<Result<Vec<Event>>> {
    Some(match c {
        Command::AddBank(a) => cmd::add_bank::decide(state, a),
        Command::AddUser(a) => cmd::add_user::decide(state, a, 1000),
        Command::EditBank(a) => {
            cmd::edit_bank::decide(state, a, 1_767_225_600_000_000, fluxacct_commands::time::Zone::Utc)
        }
        Command::DeleteBank(a) => cmd::delete_bank::decide(state, a),
        Command::EditUser(a) => cmd::edit_user::decide(state, a),
        Command::EditAllUsers(a) => cmd::edit_all_users::decide(state, a),
        Command::DeleteUser(a) => cmd::delete_user::decide(state, a),
        Command::AddQueue(a) => cmd::add_queue::decide(state, a),
        Command::EditQueue(a) => cmd::edit_queue::decide(state, a),
        Command::DeleteQueue(a) => cmd::delete_queue::decide(state, a),
        Command::AddProject(a) => cmd::add_project::decide(state, a),
        Command::DeleteProject(a) => cmd::delete_project::decide(state, a),
        Command::EditFactor(a) => cmd::edit_factor::decide(state, a),
        Command::ResetFactors(a) => cmd::reset_factors::decide(state, a),
        Command::AddConfig(a) => cmd::add_config::decide(state, a),
        Command::EditConfig(a) => cmd::edit_config::decide(state, a),
        Command::DeleteConfig(a) => cmd::delete_config::decide(state, a),
        Command::AddAllocation(a) => cmd::add_allocation::decide(
            state,
            &cmd::add_allocation::Resolved { args: a.clone(), start_s: 1_767_225_600, end_s: 1_775_000_000 },
        ),
        Command::EditAllocation(a) => cmd::edit_allocation::decide(
            state,
            &cmd::edit_allocation::Resolved {
                args: a.clone(),
                start_s: None,
                end_s: a.end.as_ref().map(|_| 1_780_000_000),
            },
        ),
        Command::DeleteAllocation(a) => cmd::delete_allocation::decide(state, a),
        // Writes this test does not generate (they need a file, job
        // records or a clock), and every read command. Exhaustive: a new
        // command does not compile until it is sorted in here.
        Command::CreateDb(_)
        | Command::FetchJobRecords(_)
        | Command::Follow(_)
        | Command::UpdateUsage(_)
        | Command::ClearUsage(_)
        | Command::UpdateFshare(_)
        | Command::Demo(_)
        | Command::ScrubOldJobs(_)
        | Command::SyncUserids(_)
        | Command::Repair(_)
        | Command::ImportDb(_)
        | Command::UpdateDb(_)
        | Command::PopDb(_)
        | Command::Rebuild(_)
        | Command::PriorityUpdate(_)
        | Command::Service(_)
        | Command::Ship(_) => return None,
        Command::ViewBank(_)
        | Command::FollowStatus(_)
        | Command::Log(_)
        | Command::Verify(_)
        | Command::Diff(_)
        | Command::Checkpoint(_)
        | Command::Shares(_)
        | Command::ViewJobRecords(_)
        | Command::ViewUsageReport(_)
        | Command::ShowUsage(_)
        | Command::Metrics(_)
        | Command::ListBanks(_)
        | Command::BankInfo(_)
        | Command::ViewUser(_)
        | Command::ListUsers(_)
        | Command::ViewQueue(_)
        | Command::ListQueues(_)
        | Command::ViewProject(_)
        | Command::ListProjects(_)
        | Command::ViewFactor(_)
        | Command::ListFactors(_)
        | Command::ViewConfig(_)
        | Command::ListConfigs(_)
        | Command::Completions(_)
        | Command::ExportJson(_)
        | Command::ExportDb(_)
        | Command::FairshareEmulate(_)
        | Command::Jobs(_)
        | Command::ListAllocations(_)
        | Command::ViewAllocation(_)
        | Command::AllocationStatement(_)
        | Command::Man(_) => return None,
    })
}

const BANKS: &[&str] = &["root", "A", "B", "C", "A1", "A2"];
const USERS: &[&str] = &["u", "v", "w"];
const QUEUES: &[&str] = &["gold", "silver"];
const PROJECTS: &[&str] = &["p1", "p2"];
const VALUES: &[&str] = &["0", "1", "3", "-1", "-2", "x", "unlimited", "2147483647"];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(xs).prop_map(str::to_string)
}

/// One random admin command line (without program name and path).
fn command() -> impl Strategy<Value = Vec<String>> {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    prop_oneof![
        (pick(BANKS), pick(BANKS), pick(VALUES)).prop_map(move |(b, p, s)| {
            if b == "root" {
                v(&["add-bank", "root", "1"])
            } else {
                vec!["add-bank".into(), format!("--parent-bank={p}"), b, s]
            }
        }),
        (pick(USERS), pick(BANKS)).prop_map(move |(u, b)| v(&["add-user", "-u", &u, "-B", &b])),
        (pick(USERS), pick(BANKS)).prop_map(move |(u, b)| v(&["add-user", "-u", &u, "-B", &b, "-q", "gold"])),
        (pick(USERS), pick(BANKS), any::<bool>()).prop_map(move |(u, b, f)| {
            let mut c = v(&["delete-user", &u, &b]);
            if f {
                c.push("--force".into());
            }
            c
        }),
        (pick(BANKS), any::<bool>()).prop_map(move |(b, f)| {
            let mut c = v(&["delete-bank", &b]);
            if f {
                c.push("--force".into());
            }
            c
        }),
        pick(BANKS).prop_map(move |b| v(&["add-bank", "--restore-subtree", &b])),
        (pick(BANKS), pick(VALUES)).prop_map(move |(b, s)| v(&["edit-bank", &b, "--shares", &s])),
        (pick(BANKS), pick(BANKS)).prop_map(move |(b, p)| v(&["edit-bank", &b, "--parent-bank", &p])),
        (pick(USERS), pick(VALUES), any::<bool>(), pick(BANKS)).prop_map(move |(u, x, one, b)| {
            let mut c = v(&["edit-user", &u, "--max-active-jobs", &x, "--max-nodes", &x]);
            if one {
                c.extend(v(&["-B", &b]));
            }
            c
        }),
        (pick(USERS), pick(QUEUES), any::<bool>()).prop_map(move |(u, q, add)| {
            v(&["edit-user", &u, if add { "--add-queue" } else { "--delete-queue" }, &q])
        }),
        (pick(USERS), pick(BANKS)).prop_map(move |(u, b)| v(&["edit-user", &u, "--default-bank", &b])),
        (pick(USERS), pick(PROJECTS)).prop_map(move |(u, p)| v(&["edit-user", &u, "--projects", &p])),
        pick(VALUES).prop_map(move |x| v(&["edit-all-users", "--fairshare", &x, "--shares", &x])),
        pick(BANKS).prop_map(move |b| v(&["edit-all-users", "--bank", &b])),
        pick(QUEUES).prop_map(move |q| v(&["add-queue", &q])),
        (pick(QUEUES), pick(VALUES)).prop_map(move |(q, x)| v(&["edit-queue", &q, "--priority", &x])),
        pick(QUEUES).prop_map(move |q| v(&["delete-queue", &q])),
        pick(PROJECTS).prop_map(move |p| v(&["add-project", &p])),
        pick(PROJECTS).prop_map(move |p| v(&["delete-project", &p])),
        pick(VALUES).prop_map(move |x| v(&["edit-factor", "--factor", "queue", "--weight", &x])),
        Just(v(&["reset-factors"])),
        pick(VALUES).prop_map(move |x| vec!["add-config".into(), format!("k{x}=v")]),
        pick(VALUES).prop_map(move |x| vec!["edit-config".into(), format!("decay_factor={x}")]),
        pick(VALUES).prop_map(move |x| vec!["delete-config".into(), format!("k{x}")]),
        (pick(BANKS), pick(VALUES)).prop_map(move |(b, x)| {
            v(&[
                "add-allocation",
                "--bank",
                &b,
                "--amount",
                &x,
                "--unit",
                "node-hours",
                "--start",
                "s",
                "--end",
                "e",
                "--name",
                &format!("a{b}"),
            ])
        }),
        (pick(BANKS), pick(VALUES)).prop_map(move |(b, x)| v(&[
            "edit-allocation",
            &format!("a{b}"),
            "--deposit",
            &x,
            "--end",
            "e"
        ])),
        pick(BANKS).prop_map(move |b| v(&["delete-allocation", &format!("a{b}")])),
        (pick(QUEUES), pick(VALUES)).prop_map(move |(q, x)| v(&["edit-queue", &q, "--charge-factor", &x])),
    ]
}

fn new_ledger() -> Ledger {
    let mut l = Ledger::in_memory().expect("ledger");
    let meta = EventMeta { recorded_at_us: 1_000_000, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
    let genesis = cmd::create_db::decide(
        &cmd::create_db::Args {
            priority_decay_half_life: "1w".into(),
            priority_usage_reset_period: "4w".into(),
            decay_factor: "0.5".into(),
        },
        1.0,
    )
    .expect("genesis");
    let mut tx = l.transaction().expect("tx");
    projections::schema::create(tx.conn()).expect("schema");
    projections::append_and_apply(&mut tx, &meta, &genesis).expect("apply");
    tx.commit().expect("commit");
    l
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn rebuild_from_genesis_equals_live_projections(cmds in proptest::collection::vec(command(), 1..60)) {
        let mut ledger = new_ledger();
        let mut accepted = 0;
        let setup: Vec<Vec<String>> = [
            &["add-bank", "root", "1"][..],
            &["add-bank", "--parent-bank=root", "A", "1"],
            &["add-bank", "--parent-bank=root", "B", "2"],
            &["add-queue", "gold"],
            &["add-project", "p1"],
            &["add-user", "-u", "u", "-B", "A"],
        ]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
        for (i, argv) in setup.iter().chain(cmds.iter()).enumerate() {
            let mut full = vec!["flux-account".to_string()];
            full.extend(argv.iter().cloned());
            let Ok(cli) = Cli::try_parse_from(&full) else { continue };
            let meta = EventMeta {
                recorded_at_us: 2_000_000 + i as i64 * 1_000_000,
                actor: Actor { uid: 0, name: "root".into() },
                argv: full.clone(),
            };
            let before = ledger.count().expect("count");
            let r: Result<_> = projections::Writer::run(&mut ledger, &meta, |s| {
                decide(s, &cli.command).expect("write command")
            });
            match r {
                Ok(_) => accepted += 1,
                Err(_) => prop_assert_eq!(ledger.count().expect("count"), before, "rejected {:?} appended", argv),
            }
        }
        let fresh = projections::replay(&ledger, None).expect("rebuild");
        let live = common::dump_projections(ledger.conn());
        let rebuilt = common::dump_projections(&fresh);
        prop_assert!(accepted >= setup.len());
        prop_assert_eq!(live, rebuilt, "after {} accepted commands", accepted);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// The fair-share inputs seal kept incrementally by the apply path
    /// (moved by the rows each transaction changed) equals the seal
    /// computed from scratch over the live tables and over the tables a
    /// rebuild makes from the log, after any sequence of admin commands,
    /// valid or not.
    #[test]
    fn the_incremental_seal_equals_the_seal_computed_from_scratch(cmds in proptest::collection::vec(command(), 1..60)) {
        let mut ledger = new_ledger();
        projections::seal::store(ledger.conn(), &projections::seal::compute(ledger.conn()).expect("seal"))
            .expect("store");
        let setup: Vec<Vec<String>> = [
            &["add-bank", "root", "1"][..],
            &["add-bank", "--parent-bank=root", "A", "1"],
            &["add-bank", "--parent-bank=root", "B", "2"],
            &["add-user", "-u", "u", "-B", "A"],
        ]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
        for (i, argv) in setup.iter().chain(cmds.iter()).enumerate() {
            let mut full = vec!["flux-account".to_string()];
            full.extend(argv.iter().cloned());
            let Ok(cli) = Cli::try_parse_from(&full) else { continue };
            let meta = EventMeta {
                recorded_at_us: 2_000_000 + i as i64 * 1_000_000,
                actor: Actor { uid: 0, name: "root".into() },
                argv: full.clone(),
            };
            let r: Result<_> =
                projections::Writer::run(&mut ledger, &meta, |s| decide(s, &cli.command).expect("write command"));
            if i < setup.len() {
                prop_assert!(r.is_ok(), "setup {:?}: {:?}", argv, r.err());
            }
            let stored = projections::seal::stored(ledger.conn()).expect("stored");
            let scratch = projections::seal::compute(ledger.conn()).expect("compute");
            prop_assert_eq!(stored.as_deref(), Some(scratch.as_str()), "after {:?}", argv);
        }
        let fresh = projections::replay(&ledger, None).expect("rebuild");
        let stored = projections::seal::stored(ledger.conn()).expect("stored");
        prop_assert_eq!(stored, Some(projections::seal::compute(&fresh).expect("compute")));
    }
}
