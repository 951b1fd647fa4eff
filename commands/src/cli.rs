//! The `flux-account` command line: one clap definition from which help,
//! the man page and completions are generated.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::context::{Context, Output};
use crate::error::Result;

/// Default ledger path (as flux-accounting's).
pub const DEFAULT_DB: &str = "/var/lib/flux/FluxAccounting.db";

/// fluxacct: an auditable accounting ledger for Flux. Banks, associations,
/// queues, projects and limits; job usage with half-life decay; fair-share;
/// and a snapshot for the mf_priority.so priority plugin. Every change is an
/// event in a hash-chained, append-only log.
#[derive(Debug, Parser)]
#[command(name = "flux-account", version, max_term_width = 100, infer_long_args = true)]
pub struct Cli {
    /// Path of the ledger (a SQLite file).
    #[arg(short = 'p', long = "path", global = true, default_value = DEFAULT_DB, value_name = "DB")]
    pub path: PathBuf,
    /// Run a read-only command on the state as it stood after this seq, or
    /// at this time (a date in the local time zone, `-2d`, or epoch
    /// seconds). A plain integer of 1000000000 or more (a time after 2001)
    /// is epoch seconds, a smaller one a seq; `seq:N` and `@EPOCH` force
    /// either reading. Read commands take it after their name too.
    #[arg(long = "as-of", value_name = "SEQ|TIME", value_parser = crate::time::TimeArg::point(), allow_hyphen_values = true)]
    pub as_of: Option<String>,
    /// Send the command to the instance's `accounting` service (`flux
    /// account-service`) instead of opening the ledger file.
    #[arg(long = "service", global = true, conflicts_with = "local")]
    pub service: bool,
    /// Open the ledger file even when it is not readable here and an
    /// `accounting` service could answer.
    #[arg(long = "local", global = true)]
    pub local: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the ledger and write its genesis event.
    CreateDb(cmd::create_db::Args),
    /// Add a bank (or reactivate a disabled one).
    AddBank(cmd::add_bank::Args),
    /// Show a bank, its users, or its subtree.
    ViewBank(cmd::view_bank::Args),
    /// Add a user to a bank (or reactivate a disabled association).
    AddUser(cmd::add_user::Args),
    /// List the ledger's events.
    Log(cmd::log::Args),
    /// Verify the hash chain.
    Verify(cmd::verify::Args),
    /// Rebuild every projection from the log (or check them with --check).
    Rebuild(cmd::rebuild::Args),
    /// Accept a break of the hash chain (recorded as an event) so writes resume.
    Repair(cmd::repair::Args),
    /// List what changed between two points of history.
    Diff(cmd::diff::Args),
    /// Print a checkpoint line (head seq and hash, state hash, time).
    Checkpoint(cmd::checkpoint::Args),
    /// Write the priority plugin snapshot and tell mf_priority.so to load it.
    PriorityUpdate(cmd::priority_update::Args),
    /// Record finished jobs (from a file, an old job-archive DB, or Flux).
    FetchJobRecords(cmd::fetch_job_records::Args),
    /// Record jobs as they end, from the job-manager's journal (runs until killed).
    Follow(cmd::follow::Args),
    /// Show the journal follower's position, lag and heartbeat.
    FollowStatus(cmd::follow_status::Args),
    /// Update job usage (half-life decay) of every association and bank.
    UpdateUsage(cmd::update_usage::Args),
    /// Reset the job usage of banks.
    ClearUsage(cmd::clear_usage::Args),
    /// Recompute fair-share from shares and job usage.
    UpdateFshare(cmd::update_fshare::Args),
    /// Show the hierarchy with shares, usage and fair-share.
    Shares(cmd::shares::Args),
    /// List recorded jobs, with filters.
    ViewJobRecords(cmd::view_job_records::Args),
    /// Report node usage by association, user or bank.
    ViewUsageReport(cmd::view_usage_report::Args),
    /// Bar chart of the top job usage by association or bank.
    ShowUsage(cmd::show_usage::Args),
    /// Print the ledger's state as OpenMetrics text (or serve it for Prometheus).
    Metrics(cmd::metrics::Args),
    /// Edit a bank's shares, parent, priority or ignore-older-than.
    EditBank(cmd::edit_bank::Args),
    /// Disable (or --force delete) a bank, its sub-banks and their users.
    DeleteBank(cmd::delete_bank::Args),
    /// List the banks.
    ListBanks(cmd::list_banks::Args),
    /// Show normalized shares, usage and fair-share (like sshare).
    BankInfo(cmd::bank_info::Args),
    /// Edit a user's associations.
    EditUser(cmd::edit_user::Args),
    /// Edit every association at once.
    EditAllUsers(cmd::edit_all_users::Args),
    /// Disable (or --force delete) an association.
    DeleteUser(cmd::delete_user::Args),
    /// Show a user's associations.
    ViewUser(cmd::view_user::Args),
    /// List associations, with filters.
    ListUsers(cmd::list_users::Args),
    /// Add a queue.
    AddQueue(cmd::add_queue::Args),
    /// Edit a queue's limits.
    EditQueue(cmd::edit_queue::Args),
    /// Remove a queue.
    DeleteQueue(cmd::delete_queue::Args),
    /// Show a queue.
    ViewQueue(cmd::view_queue::Args),
    /// List the queues.
    ListQueues(cmd::list_queues::Args),
    /// Add a project.
    AddProject(cmd::add_project::Args),
    /// Remove a project.
    DeleteProject(cmd::delete_project::Args),
    /// Show a project.
    ViewProject(cmd::view_project::Args),
    /// List the projects.
    ListProjects(cmd::list_projects::Args),
    /// Show a priority factor weight.
    ViewFactor(cmd::view_factor::Args),
    /// Set a priority factor weight.
    EditFactor(cmd::edit_factor::Args),
    /// List the priority factor weights.
    ListFactors(cmd::list_factors::Args),
    /// Reset the priority factor weights to their defaults.
    ResetFactors(cmd::reset_factors::Args),
    /// Add a config key.
    AddConfig(cmd::add_config::Args),
    /// Change config values.
    EditConfig(cmd::edit_config::Args),
    /// Remove a config key.
    DeleteConfig(cmd::delete_config::Args),
    /// Show a config key.
    ViewConfig(cmd::view_config::Args),
    /// List the config table.
    ListConfigs(cmd::list_configs::Args),
    /// Print the priority plugin's load-time config (one JSON line).
    ExportJson(cmd::export_json::Args),
    /// Print a shell completion script.
    Completions(cmd::completions::Args),
    /// Print the man page (roff).
    Man(cmd::man::Args),
    /// Build a sample site in a new ledger, run the accounting pipeline on it
    /// and show the result.
    Demo(cmd::demo::Args),
    /// Compute fair-share offline from a JSON hierarchy (as `export-db -F`
    /// prints it).
    FairshareEmulate(cmd::fairshare_emulate::Args),
    /// Hide job records older than WEEKS weeks from listings and reports
    /// (they stay in the log).
    ScrubOldJobs(cmd::scrub_old_jobs::Args),
    /// Give every association of a user the same, right uid.
    SyncUserids(cmd::sync_userids::Args),
    /// A user's jobs in the running instance, with their priority factors.
    Jobs(cmd::jobs::Args),
    /// Import a flux-accounting database into a new ledger.
    ImportDb(cmd::import_db::Args),
    /// Bring a database up to date: a flux-accounting database becomes a
    /// ledger; a ledger gets any pending schema upgrade.
    UpdateDb(cmd::update_db::Args),
    /// Write flux-accounting's tables as CSV files (or -F: the fair-share JSON).
    ExportDb(cmd::export_db::Args),
    /// Add banks or associations from a flux-accounting CSV file.
    PopDb(cmd::pop_db::Args),
    /// Serve the ledger as the instance's `accounting` service (flux
    /// account-service).
    Service(crate::service::Args),
    /// Add an allocation (a budget for a bank or project over a period).
    AddAllocation(cmd::add_allocation::Args),
    /// Deposit, withdraw, extend or change the policy of an allocation.
    EditAllocation(cmd::edit_allocation::Args),
    /// Delete an allocation (its history is kept).
    DeleteAllocation(cmd::delete_allocation::Args),
    /// List the allocations and their balances.
    ListAllocations(cmd::list_allocations::Args),
    /// Show an allocation's balance (and its charged jobs).
    ViewAllocation(cmd::view_allocation::Args),
    /// Print an allocation's statement.
    AllocationStatement(cmd::allocation_statement::Args),
    /// Copy the ledger's new events to the accounting centre (PostgreSQL).
    Ship(cmd::ship::Args),
}

impl Command {
    /// Whether the command appends to the ledger (and so refuses `--as-of`).
    pub fn is_write(&self) -> bool {
        // Exhaustive: a new command does not compile until it says which it is.
        match self {
            Command::CreateDb(_)
            | Command::AddBank(_)
            | Command::AddUser(_)
            | Command::FetchJobRecords(_)
            | Command::Follow(_)
            | Command::UpdateUsage(_)
            | Command::ClearUsage(_)
            | Command::UpdateFshare(_)
            | Command::EditBank(_)
            | Command::DeleteBank(_)
            | Command::EditUser(_)
            | Command::EditAllUsers(_)
            | Command::DeleteUser(_)
            | Command::AddQueue(_)
            | Command::EditQueue(_)
            | Command::DeleteQueue(_)
            | Command::AddProject(_)
            | Command::DeleteProject(_)
            | Command::EditFactor(_)
            | Command::ResetFactors(_)
            | Command::AddConfig(_)
            | Command::EditConfig(_)
            | Command::DeleteConfig(_)
            | Command::Demo(_)
            | Command::ScrubOldJobs(_)
            | Command::SyncUserids(_)
            | Command::ImportDb(_)
            | Command::PopDb(_)
            | Command::UpdateDb(_)
            | Command::Service(_)
            | Command::AddAllocation(_)
            | Command::EditAllocation(_)
            | Command::DeleteAllocation(_) => true,
            // Records the cluster name in the ledger's bookkeeping at the
            // first ship, and ships the live ledger, never the past.
            Command::Ship(_) => true,
            // Not appends, but they replace live state (projections, the
            // plugin's snapshot) and so must not run on the past.
            Command::Rebuild(_) | Command::PriorityUpdate(_) | Command::Repair(_) => true,
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
            | Command::Man(_) => false,
        }
    }
}

/// The id of the `--as-of` option.
pub const AS_OF: &str = "as_of";

/// The commands that read the ledger and so take `--as-of` after their
/// name (`flux-account view-user --as-of 3 alice`), as well as before it.
/// Every other command is a write ([`Command::is_write`]) or does not read
/// the ledger (`NO_LEDGER`); a unit test keeps the lists and `is_write` in
/// step.
pub const READ_COMMANDS: &[&str] = &[
    "view-bank",
    "log",
    "verify",
    "diff",
    "checkpoint",
    "shares",
    "view-job-records",
    "view-usage-report",
    "show-usage",
    "list-banks",
    "bank-info",
    "view-user",
    "list-users",
    "view-queue",
    "list-queues",
    "view-project",
    "list-projects",
    "view-factor",
    "list-factors",
    "view-config",
    "list-configs",
    "export-json",
    "export-db",
    "jobs",
    "list-allocations",
    "view-allocation",
    "allocation-statement",
];

/// Read commands that do not read the ledger's history (its log and
/// projections), and so take no `--as-of`: `follow-status` reads only the
/// follower's bookkeeping, which has no past.
pub const NO_LEDGER: &[&str] = &["completions", "man", "fairshare-emulate", "follow-status"];

/// Read commands that show the ledger as it is now only, and so take no
/// `--as-of`.
pub const LIVE_ONLY: &[&str] = &["metrics"];

/// The whole clap definition: [`Cli`] with `--as-of` offered by the
/// [`READ_COMMANDS`] (in their help, usage and man pages), and by no other.
pub fn clap_command() -> clap::Command {
    let root = Cli::command();
    let Some(as_of) = root.get_arguments().find(|a| a.get_id() == AS_OF).cloned() else { return root };
    // `man SUBCOMMAND` takes the subcommands' names (any other is a usage error).
    let names: Vec<String> = root.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let root = root.mut_subcommand("man", |man| {
        man.mut_arg("subcommand", |a| {
            a.value_parser(move |s: &str| match names.iter().any(|n| n == s) {
                true => Ok(s.to_string()),
                false => Err(format!("no such subcommand (one of: {})", names.join(", "))),
            })
        })
    });
    root.mut_subcommands(move |sub| if READ_COMMANDS.contains(&sub.get_name()) { sub.arg(as_of.clone()) } else { sub })
}

/// Runs a parsed command line.
pub fn run(ctx: &Context, command: &Command) -> Result<Output> {
    if ctx.as_of.is_some() && command.is_write() {
        return Err(crate::error::Error::invalid("--as-of cannot be used with commands that change the ledger"));
    }
    match command {
        Command::CreateDb(a) => cmd::create_db::cmd_create_db(ctx, a),
        Command::Ship(a) => cmd::ship::cmd_ship(ctx, a),
        Command::AddBank(a) => cmd::add_bank::cmd_add_bank(ctx, a),
        Command::AddAllocation(a) => cmd::add_allocation::cmd_add_allocation(ctx, a),
        Command::EditAllocation(a) => cmd::edit_allocation::cmd_edit_allocation(ctx, a),
        Command::DeleteAllocation(a) => cmd::delete_allocation::cmd_delete_allocation(ctx, a),
        Command::ListAllocations(a) => cmd::list_allocations::cmd_list_allocations(ctx, a),
        Command::ViewAllocation(a) => cmd::view_allocation::cmd_view_allocation(ctx, a),
        Command::AllocationStatement(a) => cmd::allocation_statement::cmd_allocation_statement(ctx, a),
        Command::ViewBank(a) => cmd::view_bank::cmd_view_bank(ctx, a),
        Command::AddUser(a) => cmd::add_user::cmd_add_user(ctx, a),
        Command::Log(a) => cmd::log::cmd_log(ctx, a),
        Command::Verify(a) => cmd::verify::cmd_verify(ctx, a),
        Command::Rebuild(a) => cmd::rebuild::cmd_rebuild(ctx, a),
        Command::Repair(a) => cmd::repair::cmd_repair(ctx, a),
        Command::Diff(a) => cmd::diff::cmd_diff(ctx, a),
        Command::Checkpoint(a) => cmd::checkpoint::cmd_checkpoint(ctx, a),
        Command::PriorityUpdate(a) => stage(ctx, "priority-update", cmd::priority_update::cmd_priority_update(ctx, a)),
        Command::FetchJobRecords(a) => {
            stage(ctx, "fetch-job-records", cmd::fetch_job_records::cmd_fetch_job_records(ctx, a))
        }
        Command::Follow(a) => cmd::follow::cmd_follow(ctx, a),
        Command::FollowStatus(a) => cmd::follow_status::cmd_follow_status(ctx, a),
        Command::UpdateUsage(a) => stage(ctx, "update-usage", cmd::update_usage::cmd_update_usage(ctx, a)),
        Command::ClearUsage(a) => cmd::clear_usage::cmd_clear_usage(ctx, a),
        Command::UpdateFshare(a) => stage(ctx, "update-fshare", cmd::update_fshare::cmd_update_fshare(ctx, a)),
        Command::Shares(a) => cmd::shares::cmd_shares(ctx, a),
        Command::ViewJobRecords(a) => cmd::view_job_records::cmd_view_job_records(ctx, a),
        Command::ViewUsageReport(a) => cmd::view_usage_report::cmd_view_usage_report(ctx, a),
        Command::ShowUsage(a) => cmd::show_usage::cmd_show_usage(ctx, a),
        Command::Metrics(a) => cmd::metrics::cmd_metrics(ctx, a),
        Command::EditBank(a) => cmd::edit_bank::cmd_edit_bank(ctx, a),
        Command::DeleteBank(a) => cmd::delete_bank::cmd_delete_bank(ctx, a),
        Command::ListBanks(a) => cmd::list_banks::cmd_list_banks(ctx, a),
        Command::BankInfo(a) => cmd::bank_info::cmd_bank_info(ctx, a),
        Command::EditUser(a) => cmd::edit_user::cmd_edit_user(ctx, a),
        Command::EditAllUsers(a) => cmd::edit_all_users::cmd_edit_all_users(ctx, a),
        Command::DeleteUser(a) => cmd::delete_user::cmd_delete_user(ctx, a),
        Command::ViewUser(a) => cmd::view_user::cmd_view_user(ctx, a),
        Command::ListUsers(a) => cmd::list_users::cmd_list_users(ctx, a),
        Command::AddQueue(a) => cmd::add_queue::cmd_add_queue(ctx, a),
        Command::EditQueue(a) => cmd::edit_queue::cmd_edit_queue(ctx, a),
        Command::DeleteQueue(a) => cmd::delete_queue::cmd_delete_queue(ctx, a),
        Command::ViewQueue(a) => cmd::view_queue::cmd_view_queue(ctx, a),
        Command::ListQueues(a) => cmd::list_queues::cmd_list_queues(ctx, a),
        Command::AddProject(a) => cmd::add_project::cmd_add_project(ctx, a),
        Command::DeleteProject(a) => cmd::delete_project::cmd_delete_project(ctx, a),
        Command::ViewProject(a) => cmd::view_project::cmd_view_project(ctx, a),
        Command::ListProjects(a) => cmd::list_projects::cmd_list_projects(ctx, a),
        Command::ViewFactor(a) => cmd::view_factor::cmd_view_factor(ctx, a),
        Command::EditFactor(a) => cmd::edit_factor::cmd_edit_factor(ctx, a),
        Command::ListFactors(a) => cmd::list_factors::cmd_list_factors(ctx, a),
        Command::ResetFactors(a) => cmd::reset_factors::cmd_reset_factors(ctx, a),
        Command::AddConfig(a) => cmd::add_config::cmd_add_config(ctx, a),
        Command::EditConfig(a) => cmd::edit_config::cmd_edit_config(ctx, a),
        Command::DeleteConfig(a) => cmd::delete_config::cmd_delete_config(ctx, a),
        Command::ViewConfig(a) => cmd::view_config::cmd_view_config(ctx, a),
        Command::ListConfigs(a) => cmd::list_configs::cmd_list_configs(ctx, a),
        Command::Demo(a) => cmd::demo::cmd_demo(ctx, a),
        Command::ExportJson(a) => cmd::export_json::cmd_export_json(ctx, a),
        Command::ImportDb(a) => cmd::import_db::cmd_import_db(ctx, a),
        Command::UpdateDb(a) => cmd::update_db::cmd_update_db(ctx, a),
        Command::ExportDb(a) => cmd::export_db::cmd_export_db(ctx, a),
        Command::PopDb(a) => cmd::pop_db::cmd_pop_db(ctx, a),
        Command::Completions(a) => cmd::completions::cmd_completions(ctx, a, clap_command()),
        Command::Man(a) => cmd::man::cmd_man(ctx, a, clap_command()),
        Command::FairshareEmulate(a) => cmd::fairshare_emulate::cmd_fairshare_emulate(ctx, a),
        Command::ScrubOldJobs(a) => cmd::scrub_old_jobs::cmd_scrub_old_jobs(ctx, a),
        Command::SyncUserids(a) => cmd::sync_userids::cmd_sync_userids(ctx, a),
        Command::Jobs(a) => cmd::jobs::cmd_jobs(ctx, a),
        // It connects to the broker and runs until stopped: the binary
        // runs it (`app.rs`), with the passwd and the command runner.
        Command::Service(_) => {
            Err(crate::error::Error::invalid("`service` runs from the flux-account program (flux account-service)"))
        }
    }
}

/// A pipeline stage's outcome, recorded in the ledger's bookkeeping
/// (after the command's own transaction) for `metrics`.
fn stage(ctx: &Context, name: &str, outcome: Result<Output>) -> Result<Output> {
    crate::pipeline_runs::record(ctx, name, &outcome);
    outcome
}

/// Maps an alias executable name (`flux-account-update-usage`) to the
/// subcommand it stands for (`update-usage`).
pub fn alias_subcommand(argv0: &str) -> Option<String> {
    let base = std::path::Path::new(argv0).file_name()?.to_str()?;
    let sub = base.strip_prefix("flux-account-")?;
    Some(sub.to_string())
}

/// flux-accounting's multi-character short options (argparse allows them,
/// clap does not): `(subcommand, short, long)`.
pub const MULTI_CHAR_SHORTS: &[(&str, &str, &str)] = &[
    ("add-queue", "-msn", "--max-sched-nodes-per-assoc"),
    ("add-queue", "-msc", "--max-sched-cores-per-assoc"),
    ("edit-queue", "-msn", "--max-sched-nodes-per-assoc"),
    ("edit-queue", "-msc", "--max-sched-cores-per-assoc"),
];

/// Rewrites flux-accounting's multi-character short options (`-msn 5`,
/// `-msn=5`, `-msn5` after `add-queue` / `edit-queue`) into their long
/// forms before clap parses the command line. Words after `--` are left
/// alone.
pub fn expand_multi_char_shorts(argv: Vec<String>) -> Vec<String> {
    let mut sub: Option<&str> = None;
    let mut out = Vec::with_capacity(argv.len());
    let mut rest = false;
    for (i, word) in argv.into_iter().enumerate() {
        if rest || i == 0 {
            out.push(word);
            continue;
        }
        if word == "--" {
            rest = true;
            out.push(word);
            continue;
        }
        if sub.is_none() {
            sub = MULTI_CHAR_SHORTS.iter().map(|m| m.0).find(|s| *s == word);
            out.push(word);
            continue;
        }
        let mut replaced = None;
        for (s, short, long) in MULTI_CHAR_SHORTS {
            if Some(*s) != sub {
                continue;
            }
            if let Some(tail) = word.strip_prefix(short) {
                if tail.is_empty() {
                    replaced = Some(long.to_string());
                } else if let Some(v) = tail.strip_prefix('=') {
                    replaced = Some(format!("{long}={v}"));
                } else if tail.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    replaced = Some(format!("{long}={tail}"));
                }
            }
        }
        out.push(replaced.unwrap_or(word));
    }
    out
}

#[cfg(test)]
mod multi_char_short_tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn msn_and_msc_become_long_options_after_queue_commands() {
        assert_eq!(
            expand_multi_char_shorts(words("fa -p x.db add-queue q -msn 5 -msc=6")),
            words("fa -p x.db add-queue q --max-sched-nodes-per-assoc 5 --max-sched-cores-per-assoc=6")
        );
        assert_eq!(
            expand_multi_char_shorts(words("fa edit-queue q -msn-1 -msc7")),
            words("fa edit-queue q --max-sched-nodes-per-assoc=-1 --max-sched-cores-per-assoc=7")
        );
        // Other commands, other words and words after `--` are untouched.
        assert_eq!(expand_multi_char_shorts(words("fa add-user -msn 5")), words("fa add-user -msn 5"));
        assert_eq!(expand_multi_char_shorts(words("fa add-queue -- -msn")), words("fa add-queue -- -msn"));
        assert_eq!(expand_multi_char_shorts(words("fa add-queue -msnx")), words("fa add-queue -msnx"));
    }

    /// `-v` where flux-accounting has it (update-usage, update-fshare and
    /// priority-update have their own tests).
    #[test]
    fn verbose_flags_where_flux_accounting_has_them() {
        for argv in [
            &["flux-account", "jobs", "u", "-v"][..],
            &["flux-account", "bank-info", "-v"],
            &["flux-account", "fetch-job-records", "-v"],
            &["flux-account", "scrub-old-jobs", "-v"],
            &["flux-account", "sync-userids", "-v"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }

    #[test]
    fn expanded_words_parse() {
        let argv = expand_multi_char_shorts(words("flux-account add-queue q -msn 5 -msc 6"));
        let cli = Cli::try_parse_from(argv).expect("parses");
        match cli.command {
            Command::AddQueue(a) => {
                assert_eq!(a.max_sched_nodes_per_assoc, "5");
                assert_eq!(a.max_sched_cores_per_assoc, "6");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completions_come_from_the_cli_definition() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let bash = cmd::completions::cmd_completions(
            &ctx,
            &cmd::completions::Args { shell: clap_complete::Shell::Bash },
            Cli::command(),
        )
        .unwrap()
        .stdout;
        assert!(bash.contains("view-job-records") && bash.contains("--parent-bank"));
    }

    #[test]
    fn man_comes_from_the_cli_definition() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let man = cmd::man::cmd_man(&ctx, &cmd::man::Args::default(), clap_command()).unwrap().stdout;
        assert!(man.contains("flux\\-account") && man.contains("add\\-user"), "{man}");
    }
}

#[cfg(test)]
mod as_of_tests {
    use super::*;

    /// A command line for subcommand `sub` with every required argument
    /// given (its first possible value, a valid config pair, or `1`).
    fn minimal_argv(sub: &clap::Command, positionals: bool) -> Vec<String> {
        let mut argv = vec!["flux-account".to_string(), sub.get_name().to_string()];
        for a in sub.get_arguments().filter(|a| a.is_required_set() || (positionals && a.is_positional())) {
            let value = match a.get_possible_values().first() {
                Some(v) => v.get_name().to_string(),
                // `edit-config`'s pairs are checked when parsed.
                None if a.get_id() == "pairs" => "decay_factor=0.5".into(),
                None => "1".into(),
            };
            if let Some(long) = a.get_long() {
                argv.push(format!("--{long}"));
            }
            argv.push(value);
        }
        argv
    }

    /// `--as-of` is offered by exactly the commands that read the ledger
    /// (not writes, not completions, man or fairshare-emulate).
    #[test]
    fn as_of_is_offered_by_read_commands_only() {
        let root = clap_command();
        let mut seen = Vec::new();
        for sub in root.get_subcommands() {
            let name = sub.get_name();
            let cli = Cli::try_parse_from(minimal_argv(sub, false))
                .or_else(|_| Cli::try_parse_from(minimal_argv(sub, true)))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let offers = sub.get_arguments().any(|a| a.get_id() == AS_OF);
            let reads = !cli.command.is_write() && !NO_LEDGER.contains(&name) && !LIVE_ONLY.contains(&name);
            assert_eq!(offers, reads, "{name}: --as-of offered {offers}, reads the ledger {reads}");
            seen.push(name.to_string());
        }
        for name in READ_COMMANDS.iter().chain(NO_LEDGER).chain(LIVE_ONLY) {
            assert!(seen.iter().any(|s| s == name), "{name} is not a subcommand");
        }
        // The help of a write command does not mention it.
        let mut root = clap_command();
        let help = root.find_subcommand_mut("add-user").expect("add-user").render_help().to_string();
        assert!(!help.contains("--as-of"), "{help}");
    }
}
